"""interval and CROWN: emlpress (C++/Eigen) beside the same methods in plain numpy.

Run: python -m pytest benches/bench_bounds.py --benchmark-columns=min,median,mean,rounds
"""

import numpy as np
import pytest

import numpy_bounds
from emlpress import bounds


def _agree(ours, ref_l, ref_u, rtol=1e-9):
    for l, (a, b) in enumerate(zip(ours.lower, ref_l)):
        scale = 1 + np.abs(b).max()
        assert np.allclose(a, b, rtol=rtol, atol=rtol * scale), f"lower, layer {l}"
    for l, (a, b) in enumerate(zip(ours.upper, ref_u)):
        scale = 1 + np.abs(b).max()
        assert np.allclose(a, b, rtol=rtol, atol=rtol * scale), f"upper, layer {l}"


@pytest.mark.parametrize("impl", ["emlpress", "numpy"])
def test_interval(benchmark, network, impl):
    name, net = network
    benchmark.group = f"interval {name}"
    Ws, bs = list(net.weights), list(net.biases)
    if impl == "emlpress":
        b = benchmark(bounds.interval, net)
        _agree(b, *numpy_bounds.interval(Ws, bs, net.lo, net.hi))
    else:
        benchmark(numpy_bounds.interval, Ws, bs, net.lo, net.hi)


@pytest.mark.parametrize("impl", ["emlpress", "numpy"])
def test_crown(benchmark, network, impl):
    name, net = network
    benchmark.group = f"crown {name}"
    Ws, bs = list(net.weights), list(net.biases)
    if impl == "emlpress":
        b = benchmark(bounds.crown, net)
        benchmark.extra_info["stable"] = b.n_stable
        _agree(b, *numpy_bounds.crown(Ws, bs, net.lo, net.hi), rtol=1e-7)
    else:
        benchmark(numpy_bounds.crown, Ws, bs, net.lo, net.hi)
