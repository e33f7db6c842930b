"""interval and CROWN: emlpress (C++/Eigen) beside the same methods in plain numpy and, when
it is installed, auto_LiRPA (IBP and CROWN, peers/lirpa_peer.py).

Run: emlpress bench --only bounds (or: python -m pytest benches/suites/bench_bounds.py)

Checked: emlpress' bounds equal numpy's (same algorithm); auto_LiRPA's output bounds must
contain the network's outputs at 10,000 points of the box and its corners (it computes its
own intermediate bounds, so they are not compared with emlpress' number for number), and its
IBP bounds equal emlpress' interval output.
"""

import numpy as np
import pytest

from conftest import label
from emlpress import bounds
from emlpress.network import box_points
from peers import lirpa_peer
from peers import numpy_bounds

IMPLS = ["emlpress", "numpy", "auto_lirpa"]


def _agree(ours, ref_l, ref_u, rtol=1e-9):
    for l, (a, b) in enumerate(zip(ours.lower, ref_l)):
        scale = 1 + np.abs(b).max()
        assert np.allclose(a, b, rtol=rtol, atol=rtol * scale), f"lower, layer {l}"
    for l, (a, b) in enumerate(zip(ours.upper, ref_u)):
        scale = 1 + np.abs(b).max()
        assert np.allclose(a, b, rtol=rtol, atol=rtol * scale), f"upper, layer {l}"


def _output_agrees(ours, lu, rtol):
    (l, u), a, b = lu, ours.lower[-1], ours.upper[-1]
    scale = 1 + np.abs(np.r_[a, b]).max()
    assert np.allclose(l, a, rtol=rtol, atol=rtol * scale) and np.allclose(u, b, rtol=rtol, atol=rtol * scale)


def _contains_outputs(net, lu, n_points=10_000):
    """The output bounds `lu` hold the network's outputs at sampled points and the corners."""
    l, u = (np.asarray(v, dtype=float) for v in lu)
    y = net.forward(box_points(net.lo, net.hi, n_points, seed=0))
    slack = 1e-9 * (1 + np.abs(y).max())  # torch's float64 rounding, not the bound's looseness
    assert (y >= l - slack).all() and (y <= u + slack).all(), "output bounds exclude outputs the network takes"


@pytest.mark.parametrize("impl", IMPLS)
def test_interval(benchmark, network, impl):
    name, net = network
    label(benchmark, f"interval {name}", impl, peer=impl != "emlpress")
    Ws, bs = list(net.weights), list(net.biases)
    if impl == "emlpress":
        b = benchmark(bounds.interval, net)
        _agree(b, *numpy_bounds.interval(Ws, bs, net.lo, net.hi))
    elif impl == "numpy":
        benchmark(numpy_bounds.interval, Ws, bs, net.lo, net.hi)
    else:
        compute = lirpa_peer.bounded(net)
        _output_agrees(bounds.interval(net), benchmark(compute, "IBP"), 1e-7)


@pytest.mark.parametrize("impl", IMPLS)
def test_crown(benchmark, network, impl):
    name, net = network
    label(benchmark, f"crown {name}", impl, peer=impl != "emlpress")
    Ws, bs = list(net.weights), list(net.biases)
    if impl == "emlpress":
        b = benchmark(bounds.crown, net)
        benchmark.extra_info["stable"] = b.n_stable
        _agree(b, *numpy_bounds.crown(Ws, bs, net.lo, net.hi), rtol=1e-7)
    elif impl == "numpy":
        benchmark(numpy_bounds.crown, Ws, bs, net.lo, net.hi)
    else:  # auto_LiRPA's CROWN: its own intermediate bounds, so only the output is timed and shown
        compute = lirpa_peer.bounded(net)
        lo, hi = benchmark(compute, "CROWN")
        _contains_outputs(net, (lo, hi))
        benchmark.extra_info["output width"] = float(np.max(hi - lo))
