"""Lossless compression of the large Goldstein-Price networks, given their bounds.

Run: emlpress bench --only lossless (or: python -m pytest benches/suites/bench_lossless.py -s)

Timed: `lossless(net, bounds=b, verify=False)` (bounds computed beforehand, as the issue
asks); the 100,000-point verification that `lossless` runs by default is timed once per case
and printed beside, together with the neurons removed per layer.
"""

import numpy as np
import pytest

from conftest import label, quick, shared
from emlpress import Network, bounds
from emlpress.bounds import Bounds
from emlpress.compress import lossless
from tools.trained import trained


def reference_lp(net: Network) -> Bounds:
    """The study network's reference LP bounds (../shared/data/seed_gp/lp_bounds.npz)."""
    z = np.load(shared("seed_gp", "lp_bounds.npz"))
    L = tuple(z[f"L{l}"] for l in range(net.n_layers))
    U = tuple(z[f"U{l}"] for l in range(net.n_layers))
    return Bounds(L, U, net.lo, net.hi, "lp (reference file)")


NETS = {
    "seed_gp_2-1024-512-512-256-1": lambda: Network.load(shared("seed_gp", "model.npz")),
    "gp_2-1024-512-512-256-1": lambda: trained("gp_2-1024-512-512-256-1"),
}
_cache = {}


def case(name, method):
    key = (name, method)
    if key not in _cache:
        net = NETS[name]()
        if method == "lp" and name.startswith("seed_gp"):
            b = reference_lp(net)
        else:
            b = bounds.tighten(net, method=method)
        _cache[key] = net, b
    return _cache[key]


@pytest.mark.parametrize("method", ["interval", "crown", "lp"])
@pytest.mark.parametrize("name", [pytest.param(n, marks=[quick] if n.startswith("seed_gp") else [])
                                  for n in sorted(NETS)])
def test_lossless(benchmark, name, method):
    net, b = case(name, method)
    label(benchmark, f"lossless {name}", f"{method} bounds")
    small, rep = benchmark(lossless, net, bounds=b, verify=False)
    _, checked = lossless(net, bounds=b)  # the default call: raises unless equal
    removed = (rep.layers.units_before - rep.layers.units_after).tolist()
    benchmark.extra_info.update(neurons_after=rep.neurons_after, removed_per_layer=removed,
                                params_after=rep.params_after, verify_s=checked.seconds["verify"],
                                rel_diff=checked.rel_diff)
    print(f"\n{name} [{b.method}] neurons {rep.neurons_before} -> {rep.neurons_after}, "
          f"params {rep.params_before} -> {rep.params_after}, "
          f"verify {checked.seconds['verify']:.2f} s on {checked.n_points} points, "
          f"max diff {checked.max_abs_diff:.2e} (relative {checked.rel_diff:.1e})")
    print(rep.layers.to_string())
