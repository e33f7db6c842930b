"""Exact bounds (emlpress.bounds.milp, the certified branch-and-bound) beside the
per-neuron HiGHS MIP that it replaced (peers/highs_milp.py).

Run: emlpress bench --only exact (or: python -m pytest benches/suites/bench_exact.py -s)

Networks: seeded He-initialised [2,32,32,1] and [2,32,32,16,1] on [-1,1]^2 (every unit
unstable under CROWN), the trained L2 network of issue 18 (trained.L2_NET) and the
study's seed_gp network (the hard case: a 0.2 s limit per neuron and side, and the units
left unresolved reported). Every result is checked on 200,000 uniform points plus the
corners; where HiGHS' MIP runs, the bounds are compared neuron by neuron. Per layer the
search's table (sides searched, nodes, sub-boxes handed to LPs, witnesses, proofs,
unresolved, seconds) is printed and kept in extra_info. HiGHS' MIP runs on [2,32,32,1]
only by default (EMLPRESS_BENCH_HIGHS_LARGE=1: [2,32,32,16,1] too, some minutes).
"""

import os

import numpy as np
import pandas as pd
import pytest

from conftest import label, quick, random_network, shared
from emlpress import Network, bounds
from emlpress.network import box_points
from peers import highs_milp
from tools.trained import L2_NET, trained

NETS = {
    "random_2-32-32-1": lambda: random_network([2, 32, 32, 1]),
    "random_2-32-32-16-1": lambda: random_network([2, 32, 32, 16, 1]),
    L2_NET: lambda: trained(L2_NET),
    "seed_gp_2-1024-512-512-256-1": lambda: Network.load(shared("seed_gp", "model.npz")),
}
HIGHS = {"random_2-32-32-1"}
if os.environ.get("EMLPRESS_BENCH_HIGHS_LARGE"):
    HIGHS.add("random_2-32-32-16-1")
LIMITS = {"seed_gp_2-1024-512-512-256-1": dict(time_limit=0.2), L2_NET: dict(time_limit=2.0)}


def violations(net, lower, upper):
    X = box_points(net.lo, net.hi, 200_000, seed=1)  # and the corners
    return int(sum(((z < lo) | (z > up)).sum() for z, lo, up in zip(net.preactivations(X), lower, upper)))


@pytest.fixture(scope="module", params=[pytest.param(n, marks=[quick] if n == "random_2-32-32-1" else [])
                                        for n in sorted(NETS)])
def net(request):
    return request.param, NETS[request.param]()


@pytest.mark.parametrize("mode", ["sign", "full", "highs-full"])
def test_exact(benchmark, net, mode):
    name, n = net
    label(benchmark, f"exact bounds {name}", "emlpress " + mode if mode != "highs-full" else "HiGHS MIP per neuron, full",
          peer=mode == "highs-full", against=["emlpress full"])
    if mode == "highs-full":
        if name not in HIGHS:
            pytest.skip("HiGHS' per-neuron MIP takes too long here (EMLPRESS_BENCH_HIGHS_LARGE=1)")
        L, U = benchmark.pedantic(highs_milp.milp_bounds, args=(n, n.lo, n.hi), rounds=1, iterations=1)
        benchmark.extra_info["violations"] = violations(n, L, U)
        b = bounds.milp(n, full=True, time_limit=60)
        rel = max(float(np.max(np.abs(np.r_[b.lower[k] - L[k], b.upper[k] - U[k]]) /
                               np.maximum(1.0, np.abs(np.r_[L[k], U[k]]))))
                  for k in range(n.n_layers))
        benchmark.extra_info["max relative difference to emlpress full"] = rel
        print(f"\n{name} HiGHS MIP: {benchmark.extra_info}")
        return
    if mode == "full" and name in LIMITS:
        pytest.skip("every side exact: the random networks only")
    kw = dict(LIMITS.get(name, {"time_limit": 60}), full=mode == "full")
    init = bounds.lp(n)  # milp's default start, outside the timing
    b = benchmark.pedantic(bounds.milp, args=(n,), kwargs=dict(kw, init=init), rounds=1, iterations=1)
    v = violations(n, b.lower, b.upper)
    benchmark.extra_info["violations"] = v
    benchmark.extra_info["stable"] = b.n_stable
    benchmark.extra_info["lp stable"] = init.n_stable
    benchmark.extra_info["search"] = b.search.reset_index().to_dict("records")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"\n{name} {mode}: stable {b.n_stable} (LP {init.n_stable}), violations {v}\n{b.search}")
    assert v == 0
