"""Hypothesis strategies for random ReLU networks and input boxes, and sampling helpers."""

import itertools

import numpy as np
import pytest
from hypothesis import strategies as st

from emlpress import Network


@st.composite
def network_and_box(draw, max_depth=6, max_width=64, max_in=None):
    """A random network (depth 1..max_depth, widths 1..max_width) with exact zeros in its
    weights, large or tiny scales, and an input box that may be degenerate (lo == hi)."""
    depth = draw(st.integers(1, max_depth))
    n_in = draw(st.integers(1, max_in or max_width))
    sizes = [n_in] + [draw(st.integers(1, max_width)) for _ in range(depth)]
    seed = draw(st.integers(0, 2**32 - 1))
    w_scale = draw(st.sampled_from([1e-6, 1e-2, 1.0, 1.0, 1.0, 1e2, 1e5]))
    zero_frac = draw(st.sampled_from([0.0, 0.0, 0.3, 0.8, 1.0]))
    bias_mode = draw(st.sampled_from(["normal", "zero", "positive", "negative"]))
    box_mode = draw(st.sampled_from(["normal", "normal", "some_degenerate", "all_degenerate"]))
    x_scale = draw(st.sampled_from([1e-4, 1.0, 1.0, 1e3]))
    rng = np.random.default_rng(seed)
    Ws, bs = [], []
    for n_i, n_o in zip(sizes[:-1], sizes[1:]):
        W = rng.normal(size=(n_o, n_i)) * w_scale / np.sqrt(n_i)
        W[rng.random(W.shape) < zero_frac] = 0.0
        b = rng.normal(size=n_o) * w_scale
        if bias_mode == "zero":
            b[:] = 0.0
        elif bias_mode == "positive":
            b = np.abs(b) * 3
        elif bias_mode == "negative":
            b = -np.abs(b) * 3
        Ws.append(W)
        bs.append(b)
    lo = rng.uniform(-1, 1, n_in) * x_scale
    hi = lo + rng.uniform(0, 2, n_in) * x_scale
    if box_mode == "all_degenerate":
        hi = lo.copy()
    elif box_mode == "some_degenerate":
        mask = rng.random(n_in) < 0.5
        hi[mask] = lo[mask]
    return Network(Ws, bs), lo, hi, seed


def sample_box(lo, hi, n, seed, max_corners=4096):
    """``n`` uniform points of the box plus its corners (all of them when there are at most
    ``max_corners``, else that many random ones)."""
    rng = np.random.default_rng(seed)
    d = lo.size
    pts = [rng.uniform(lo, hi, size=(n, d))]
    if 2**d <= max_corners:
        bits = np.array(list(itertools.product([0, 1], repeat=d)), dtype=bool)
    else:
        bits = rng.random((max_corners, d)) < 0.5
    pts.append(np.where(bits, hi, lo))
    return np.vstack(pts)


def interval_numpy(net, lo, hi):
    """Textbook interval arithmetic in numpy: W+ u + W- l, independent of emlpress."""
    lowers, uppers = [], []
    l, u = np.asarray(lo, float), np.asarray(hi, float)
    for W, b in zip(net.weights, net.biases):
        Wp, Wn = np.maximum(W, 0), np.minimum(W, 0)
        zl = Wp @ l + Wn @ u + b
        zu = Wp @ u + Wn @ l + b
        lowers.append(zl)
        uppers.append(zu)
        l, u = np.maximum(zl, 0), np.maximum(zu, 0)
    return lowers, uppers


def assert_inside(b, net, X):
    """Every pre-activation of every sampled input lies within the bounds (no tolerance:
    the bounds carry their own rounding slack)."""
    for l, z in enumerate(net.preactivations(X)):
        below = z < b.lower[l]
        above = z > b.upper[l]
        if below.any() or above.any():
            i, j = np.argwhere(below | above)[0]
            pytest.fail(
                f"{b.method}: layer {l} neuron {j}: value {z[i, j]!r} outside "
                f"[{b.lower[l][j]!r}, {b.upper[l][j]!r}]"
            )
