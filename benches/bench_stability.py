"""Stable units and time of every bound method beside bounds.stability (issue 23), on the same
networks in one run, and the parameters lossless compression leaves with each.

Run: emlpress bench --only stability (or, by hand, cd benches && python -m pytest
bench_stability.py --benchmark-columns=min,rounds -s); --quick: the random and the 256-wide
networks.

Networks: seeded He-initialised [2,32,32,16,1] (per-neuron exact bounds finish there), the
trained Goldstein-Price [2,256,128,128,64,1] and [2,1024,512,512,256,1] (trained.py) and the
study's own network (seed_gp). Methods: interval, crown, lp (from CROWN), exact (bounds.milp
in sign mode, per neuron and side, from the LP bounds; its time includes the LP start, a
limit per side where it would not finish) and stability (from CROWN, no limit). Every
stable unit of every method is checked on 200,000 uniform points plus the corners; where
exact leaves nothing unresolved, stability's stable sets must equal its.
"""

import numpy as np
import pandas as pd
import pytest

from conftest import label, quick, random_network, shared
from emlpress import Network, bounds
from emlpress.compress import lossless
from emlpress.network import box_points
from trained import trained

NETS = {
    "random_2-32-32-16-1": lambda: random_network([2, 32, 32, 16, 1]),
    "gp_2-256-128-128-64-1": lambda: trained("gp_2-256-128-128-64-1"),
    "gp_2-1024-512-512-256-1": lambda: trained("gp_2-1024-512-512-256-1"),
    "seed_gp_2-1024-512-512-256-1": lambda: Network.load(shared("seed_gp", "model.npz")),
}
#: exact bounds' limit per neuron and side where they would not finish otherwise
EXACT_LIMIT = {"gp_2-1024-512-512-256-1": 0.5, "seed_gp_2-1024-512-512-256-1": 0.5}
METHODS = ["interval", "crown", "lp", "exact", "stability"]
_RESULTS: dict = {}  # (net, method) -> per-layer stable masks, for the equality check


def _run(method, net):
    if method in ("interval", "crown"):
        return getattr(bounds, method)(net)
    if method == "lp":
        return bounds.lp(net)
    if method == "exact":
        init = bounds.lp(net)
        return bounds.milp(net, init=init, time_limit=EXACT_LIMIT.get(_run.name, 60.0))
    return bounds.stability(net)


def _masks(res, n_hidden):
    if isinstance(res, bounds.Stability):
        return [(res.stably_active(l), res.stably_inactive(l)) for l in range(n_hidden)]
    return [(res.stably_active(l) & ~res.stably_inactive(l), res.stably_inactive(l))
            for l in range(n_hidden)]


QUICK = {"random_2-32-32-16-1", "gp_2-256-128-128-64-1"}


@pytest.fixture(scope="module",
                params=[pytest.param(n, marks=quick) if n in QUICK else n for n in sorted(NETS)])
def net(request):
    return request.param, NETS[request.param]()


@pytest.mark.parametrize("method", METHODS)
def test_stability_methods(benchmark, net, method):
    name, n = net
    label(benchmark, f"stable units {name}", f"emlpress {method}")
    _run.name = name
    res = benchmark.pedantic(_run, args=(method, n), rounds=1, iterations=1)
    H = n.n_layers - 1
    masks = _masks(res, H)
    X = box_points(n.lo, n.hi, 200_000, seed=1)
    Z = n.preactivations(X)
    wrong = sum(int((Z[l][:, a] < 0).any(0).sum() + (Z[l][:, i] > 0).any(0).sum())
                for l, (a, i) in enumerate(masks))
    assert wrong == 0, f"{method}: {wrong} units called stable that a sample contradicts"
    b = res.bounds if isinstance(res, bounds.Stability) else res
    small, rep = lossless(n, bounds=b)
    per_layer = [f"({int(i.sum())},{int(a.sum())})" for a, i in masks]
    stable = sum(int(a.sum() + i.sum()) for a, i in masks)
    unresolved = (res.n_unresolved if isinstance(res, bounds.Stability) else
                  int(res.search["unresolved"][:-1].sum()) if method == "exact" else None)
    info = {"stable": stable, "(inactive,active) per layer": " ".join(per_layer),
            "params left": rep.params_after}
    if unresolved is not None:
        info["unresolved"] = unresolved
    if isinstance(res, bounds.Stability):
        info["boxes"] = res.boxes["boxes"]
        info["box depth"] = res.boxes["depth"]
    benchmark.extra_info.update(info)
    _RESULTS[(name, method)] = (masks, unresolved)
    if method == "stability" and (name, "exact") in _RESULTS:
        ex_masks, ex_unres = _RESULTS[(name, "exact")]
        same = all((a == ea).all() and (i == ei).all() for (a, i), (ea, ei) in zip(masks, ex_masks))
        info["same stable sets as exact"] = same
        benchmark.extra_info["same stable sets as exact"] = same
        if ex_unres == 0:
            assert same, "stability and finished exact bounds disagree on the stable sets"
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"\n{name} {method}: {info}")
