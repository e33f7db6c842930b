"""Hypothesis strategies for random ReLU networks and input boxes, and sampling helpers."""

import itertools

import numpy as np
import pytest
from hypothesis import strategies as st

from emlpress import Network
from emlpress.testing import trained_like


@st.composite
def network_and_box(draw, max_depth=6, max_width=64, max_in=None):
    """A random network (depth 1..max_depth, widths 1..max_width) with exact zeros in its
    weights, large or tiny scales, and an input box that may be degenerate (lo == hi).
    Some draws add exact-zero units like L1/L2 training leaves (``exact_zero``). Drawn
    through :func:`emlpress.testing.trained_like`: every weight at scale
    ``w_scale / sqrt(n_in)``, no near-dead unit, no per-layer scale."""
    depth = draw(st.integers(1, max_depth))
    n_in = draw(st.integers(1, max_in or max_width))
    sizes = [n_in] + [draw(st.integers(1, max_width)) for _ in range(depth)]
    seed = draw(st.integers(0, 2**32 - 1))
    w_scale = draw(st.sampled_from([1e-6, 1e-2, 1.0, 1.0, 1.0, 1e2, 1e5]))
    zero_frac = draw(st.sampled_from([0.0, 0.0, 0.3, 0.8, 1.0]))
    bias_mode = draw(st.sampled_from(["normal", "zero", "positive", "negative"]))
    box_mode = draw(st.sampled_from(["normal", "normal", "some_degenerate", "all_degenerate"]))
    x_scale = draw(st.sampled_from([1e-4, 1.0, 1.0, 1e3]))
    zero_units = draw(st.sampled_from([0.0, 0.0, 0.3, 1.0]))
    rng = np.random.default_rng([seed, 2])  # the box (trained_like draws from seed itself)
    lo = rng.uniform(-1, 1, n_in) * x_scale
    hi = lo + rng.uniform(0, 2, n_in) * x_scale
    if box_mode == "all_degenerate":
        hi = lo.copy()
    elif box_mode == "some_degenerate":
        mask = rng.random(n_in) < 0.5
        hi[mask] = lo[mask]
    net = trained_like(sizes, seed, big=1.0, big_scale=[w_scale / np.sqrt(n) for n in sizes[:-1]],
                       bias=w_scale * (1 if bias_mode == "normal" else 3),
                       bias_sign=None if bias_mode == "normal" else bias_mode, near_dead=0,
                       layer_scale=1.0, zero_weights=zero_frac, exact_zero=zero_units, lo=lo, hi=hi)
    return Network(net.weights, net.biases), lo, hi, seed


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


def numpy_preactivations(net, X):
    """Every layer's pre-activations by plain numpy (independent of the C++ kernels)."""
    out, a = [], np.asarray(X, float)
    for W, b in zip(net.weights, net.biases):
        z = a @ W.T + b
        out.append(z)
        a = np.maximum(z, 0.0)
    return out


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
