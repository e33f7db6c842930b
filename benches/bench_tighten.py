"""LP and progressive bound tightening beside the naive highspy baseline (naive_lp.py).

Run: python -m pytest bench_tighten.py -o python_files='bench_*.py' --benchmark-columns=min,rounds -s

Networks: the two trained Goldstein-Price regressors of trained.py and the study's own
network (../shared/data/seed_gp), the hard case. The naive baseline is run on the small
trained networks only (EMLPRESS_BENCH_NAIVE_LARGE=1 adds the trained 1024-wide one): on
the large ones it takes hours (seed_gp: 4,240 s on this machine, measured by the reference
in ../shared/data/seed_gp/README.md); for seed_gp the
result is also compared, neuron by neuron, with that reference's LP bounds.
"""

import os

import numpy as np
import pytest

import naive_lp
from conftest import SHARED
from emlpress import Network, bounds
from trained import HIDDEN, trained

NETS = {name: (lambda name=name: trained(name)) for name in HIDDEN}
NETS["seed_gp_2-1024-512-512-256-1"] = lambda: Network.load(SHARED / "seed_gp" / "model.npz")
NAIVE = {"gp_2-256-128-128-64-1", "gp_2-128-128-64-1"}
if os.environ.get("EMLPRESS_BENCH_NAIVE_LARGE"):  # hours: the trained 1024-wide network too
    NAIVE.add("gp_2-1024-512-512-256-1")


def stable_per_layer(lower, upper):
    """(inactive, active) per hidden layer."""
    return [(int((u <= 0).sum()), int((l >= 0).sum())) for l, u in zip(lower[:-1], upper[:-1])]


@pytest.fixture(scope="module", params=sorted(NETS))
def net(request):
    return request.param, NETS[request.param]()


@pytest.mark.parametrize("impl", ["lp", "progressive", "naive"])
def test_lp(benchmark, net, impl):
    name, n = net
    benchmark.group = f"LP bounds {name}"
    if impl == "progressive" and name not in NAIVE:
        pytest.skip("progressive does the same LPs as lp (after interval and CROWN): timed on the small network")
    if impl == "naive":
        if name not in NAIVE:
            pytest.skip("the naive baseline takes hours on this network (EMLPRESS_BENCH_NAIVE_LARGE=1)")
        L, U = benchmark.pedantic(naive_lp.lp_bounds, args=(n, n.lo, n.hi), rounds=1, iterations=1)
    else:
        rounds = 1 if name.startswith(("seed_gp", "gp_2-1024")) else 3
        b = benchmark.pedantic(bounds.tighten, args=(n,), kwargs={"method": impl}, rounds=rounds,
                               iterations=1)
        L, U = b.lower, b.upper
    per_layer = stable_per_layer(L, U)
    benchmark.extra_info["stable (inactive, active) per layer"] = per_layer
    print(f"\n{name} {impl}: stable {sum(a + b for a, b in per_layer)} {per_layer}")
    bi, bc = bounds.interval(n), bounds.crown(n)
    for method, bb in (("interval", bi), ("crown", bc)):
        pl = stable_per_layer(bb.lower, bb.upper)
        print(f"{name} {method}: stable {sum(a + b for a, b in pl)} {pl}")
    if name.startswith("seed_gp") and impl != "naive":
        ref = np.load(SHARED / "seed_gp" / "lp_bounds.npz")
        rl = [ref[f"L{l}"] for l in range(n.n_layers)]
        ru = [ref[f"U{l}"] for l in range(n.n_layers)]
        pl = stable_per_layer(rl, ru)
        print(f"{name} reference LP: stable {sum(a + b for a, b in pl)} {pl}")
        for what, keep in (("unstable", lambda l, u: (l < 0) & (u > 0)),
                           ("stable", lambda l, u: (l >= 0) | (u <= 0))):
            d = [np.maximum(l_ref - l, u - u_ref)[keep(l, u)] / (1 + np.abs(l_ref) + np.abs(u_ref))[keep(l, u)]
                 for l, u, l_ref, u_ref in zip(L[:-1], U[:-1], rl[:-1], ru[:-1])]
            d = np.concatenate(d)
            print(f"{name}: {what} hidden units ({d.size}): largest relative looseness against the "
                  f"reference LP {d.max(initial=0):.3g}, largest tightness {-d.min(initial=0):.3g}")
