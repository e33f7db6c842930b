"""LP and progressive bound tightening beside the plain highspy loop (peers/naive_lp.py).

Run: emlpress bench --only tighten (or: python -m pytest benches/suites/bench_tighten.py -s)

Networks: the two trained Goldstein-Price regressors of tools/trained.py and the study's own
network (../shared/data/seed_gp), the hard case. The figure is a ratio measured in the same
run: `lp` against the plain highspy loop with the same stable units (asserted, layer by
layer), at least 20x. The loop runs on the two smaller trained networks (--quick: both);
on the 1024-wide ones it takes hours (EMLPRESS_BENCH_NAIVE_LARGE=1 adds the trained one;
seed_gp: 4,240 s on the project's VM, measured by the reference in
../shared/data/seed_gp/README.md), so there `lp` runs alone and, on seed_gp, is compared
neuron by neuron with that reference's LP bounds.
"""

import os

import numpy as np
import pytest

from conftest import label, quick, shared
from emlpress import Network, bounds
from peers import naive_lp
from tools.trained import HIDDEN, trained

NETS = {name: (lambda name=name: trained(name)) for name in HIDDEN}
NETS["seed_gp_2-1024-512-512-256-1"] = lambda: Network.load(shared("seed_gp", "model.npz"))
NAIVE = {"gp_2-256-128-128-64-1", "gp_2-128-128-64-1"}
if os.environ.get("EMLPRESS_BENCH_NAIVE_LARGE"):  # hours: the trained 1024-wide network too
    NAIVE.add("gp_2-1024-512-512-256-1")


def stable_per_layer(lower, upper):
    """(inactive, active) per hidden layer."""
    return [(int((u <= 0).sum()), int((l >= 0).sum())) for l, u in zip(lower[:-1], upper[:-1])]


QUICK = {"gp_2-256-128-128-64-1", "gp_2-128-128-64-1"}
_stable = {}  # (network, impl) -> stable units per layer, for the side-by-side check


@pytest.fixture(scope="module", params=[pytest.param(n, marks=[quick] if n in QUICK else [])
                                        for n in sorted(NETS)])
def net(request):
    return request.param, NETS[request.param]()


@pytest.mark.parametrize("impl", ["lp", "progressive", "naive"])
def test_lp(benchmark, net, impl):
    name, n = net
    label(benchmark, f"LP bounds {name}", impl, peer=impl == "naive")
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
    _stable[name, impl] = per_layer
    benchmark.extra_info["stable"] = sum(a + b for a, b in per_layer)
    benchmark.extra_info["stable (inactive, active) per layer"] = per_layer
    if impl == "naive":  # the ratio holds only for the same stable units
        assert per_layer == _stable.get((name, "lp"), per_layer), (name, per_layer, _stable[name, "lp"])
        benchmark.extra_info["same stable units as lp"] = (name, "lp") in _stable
    print(f"\n{name} {impl}: stable {sum(a + b for a, b in per_layer)} {per_layer}")
    bi, bc = bounds.interval(n), bounds.crown(n)
    for method, bb in (("interval", bi), ("crown", bc)):
        pl = stable_per_layer(bb.lower, bb.upper)
        print(f"{name} {method}: stable {sum(a + b for a, b in pl)} {pl}")
    if name.startswith("seed_gp") and impl != "naive":
        ref = np.load(shared("seed_gp", "lp_bounds.npz"))
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
