"""Stable units and time of every bound method on a polytope input domain (issue 33, point 4):
the networks of bench_stability on [-1, 1]^2 cut by a budget row x0 + x1 <= 0.5 and an l1
ball ||x - (0.2, -0.1)||_1 <= 1.2, each method given the domain (its rows in every LP and
certificate). Every stable unit is checked on 200,000 points of the domain (Domain.sample)
and every witness of an unstable unit lies in it exactly (Domain.holds); stability must
prove at least what lp proves from the same start (CROWN on the domain), and where exact
leaves nothing unresolved, its stable sets unit by unit.

Run: emlpress bench --only polytope (or, by hand, python -m pytest
benches/suites/bench_polytope.py --benchmark-columns=min,rounds -s); --quick: the random network.
"""

import numpy as np
import pytest

from conftest import label, quick, random_network
from emlpress import bounds
from emlpress.bounds import Domain
from tools.trained import trained

NETS = {
    "random_2-32-32-16-1": lambda: random_network([2, 32, 32, 16, 1]),
    "gp_2-256-128-128-64-1": lambda: trained("gp_2-256-128-128-64-1"),
}
METHODS = ["crown", "lp", "exact", "stability"]
#: exact bounds' limit per neuron and side
EXACT_LIMIT = 10.0
_RESULTS: dict = {}  # (net, method) -> per-layer (active, inactive) masks


def _domain(net):
    """The budget row and the l1 ball on the network's box (its inputs in units of it)."""
    lo, hi = net.lo, net.hi
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    return Domain(lo, hi, A_ub=[1.0 / half], b_ub=[float(mid @ (1.0 / half)) + 0.5],
                  l1=(mid + half * np.array([0.2, -0.1]), 1.2 * float(half.mean())))


@pytest.fixture(scope="module", params=[pytest.param(n, marks=quick) if n.startswith("random") else n
                                        for n in sorted(NETS)])
def net(request):
    n = NETS[request.param]()
    return request.param, n, _domain(n)


def _run(method, net, d):
    if method == "crown":
        return bounds.crown(net, domain=d)
    init = bounds.crown(net, domain=d)
    if method == "lp":
        return bounds.lp(net, domain=d, init=init)
    if method == "exact":
        return bounds.milp(net, domain=d, init=bounds.lp(net, domain=d, init=init),
                           time_limit=EXACT_LIMIT)
    return bounds.stability(net, domain=d, init=init)


@pytest.mark.parametrize("method", METHODS)
def test_polytope_methods(benchmark, net, method):
    name, n, d = net
    label(benchmark, f"stable units on a polytope {name}", f"emlpress {method}")
    res = benchmark.pedantic(_run, args=(method, n, d), rounds=1, iterations=1)
    H = n.n_layers - 1
    if isinstance(res, bounds.Stability):
        masks = [(res.stably_active(l), res.stably_inactive(l)) for l in range(H)]
        for l, s in enumerate(res.status):
            u = s == 2  # unstable: both witnesses in the domain, exactly
            assert d.holds(res.positive[l][u]).all() and d.holds(res.negative[l][u]).all()
    else:
        masks = [(res.stably_active(l) & ~res.stably_inactive(l), res.stably_inactive(l))
                 for l in range(H)]
    Z = n.preactivations(d.sample(200_000, seed=1))
    wrong = sum(int((Z[l][:, a] < 0).any(0).sum() + (Z[l][:, i] > 0).any(0).sum())
                for l, (a, i) in enumerate(masks))
    assert wrong == 0, f"{method}: {wrong} units called stable that a point of the domain contradicts"
    stable = sum(int(a.sum() + i.sum()) for a, i in masks)
    info = {"stable": stable,
            "(inactive,active) per layer": " ".join(f"({int(i.sum())},{int(a.sum())})" for a, i in masks)}
    if isinstance(res, bounds.Stability):
        info["unresolved"] = res.n_unresolved
        info["split"] = res.split
    elif method == "exact":
        info["unresolved"] = int(res.search["unresolved"][:-1].sum())
    _RESULTS[(name, method)] = (masks, info.get("unresolved"))
    if method == "stability" and (name, "lp") in _RESULTS:
        lp_masks = _RESULTS[(name, "lp")][0]
        # every unit lp proves stable, stability proves so too (the same start)
        assert all((a | i)[la].all() and i[li].all()
                   for (a, i), (la, li) in zip(masks, lp_masks)), "stability proves less than lp"
    if method == "stability" and _RESULTS.get((name, "exact"), (None, None))[1] == 0:
        ex_masks = _RESULTS[(name, "exact")][0]  # finished exact bounds: the same stable sets
        assert all((a == ea).all() and (i == ei).all() for (a, i), (ea, ei) in zip(masks, ex_masks)), \
            "stability and finished exact bounds disagree on the stable sets"
    benchmark.extra_info.update(info)
    print(f"\n{name} {method}: {info}")
