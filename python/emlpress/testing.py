"""Networks that look trained, for tests and benchmarks (numpy only, like ``numpy.testing``).

Random He-style networks are easy cases for bounds: trained ReLU networks are not. They carry
near-zero weights beside O(1) ones, per-layer scales, units whose pre-activations stay within
~1e-11 of 0 ("near-dead"), units that are dead on the whole input box, and, after L1/L2
training, units that are exactly 0 wherever their inputs are (bias 0, weights <= 0 on ReLU
outputs). :func:`trained_like` draws such a network from its sizes and a seed; the tests, their
hypothesis strategies and the benches all draw through it.

>>> from emlpress.testing import trained_like
>>> net = trained_like([2, 16, 16, 8, 1], seed=3)                 # domain [-1, 1]^2
>>> net = trained_like([3, 16, 12, 2], seed=1, dead=0.2, near_dead=0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emlpress.network import Network

__all__ = ["trained_like", "exact_zero_units"]

#: pre-activation scale of a near-dead unit's bias (its weights are scaled by near_dead_scale)
NEAR_DEAD_BIAS = 1e-11


def _layer(value, j: int):
    """A per-layer option: a number for every layer, or a sequence whose last entry repeats."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return value[min(j, len(value) - 1)]
    return value


def trained_like(sizes, seed: int = 0, *, big=0.6, big_scale=1.0, small: float = 1e-4,
                 bias: float = 0.8, bias_sign: str | None = None, near_dead=1,
                 near_dead_scale: float = 1e-7, layer_scale=None, out_scale: float = 1.0,
                 dead: float = 0.0, exact_zero: float = 0.0, zero_weights: float = 0.0,
                 lo=-1.0, hi=1.0) -> Network:
    """A ReLU network of layer widths ``sizes`` (``[n_in, *hidden, n_out]``) that looks
    trained, on the input box ``[lo, hi]`` (numbers or arrays of ``n_in``; lo == hi allowed).

    Per layer ``j`` (weights ``(n_out, n_in)``), from ``numpy.random.default_rng(seed)``:

    - weights ``small * N(0, 1)``, of which a share ``big`` is redrawn as ``big_scale * N(0, 1)``
      (near-zero weights beside large ones);
    - biases ``bias * N(0, 1)``; ``bias_sign`` ``"zero"``, ``"positive"`` (``|b|``) or
      ``"negative"`` (``-|b|``) forces their sign;
    - hidden layers: the first ``near_dead`` units (at most ``n_out - 2``) get weights times
      ``near_dead_scale`` and biases ``1e-11 * N(0, 1)``, so their pre-activations stay
      near 0 on the box; then weights and biases are times ``layer_scale`` (default
      ``0.5 * (j + 1)``); the output layer's weights are times ``out_scale``.

    ``big``, ``big_scale``, ``near_dead`` and ``layer_scale`` take a number for every layer or a
    sequence per layer (its last entry repeats). The rest draws from a second stream
    (``default_rng([seed, 1])``), so asking for it leaves the draws above unchanged:

    - ``zero_weights``: that share of the weights is exactly 0 (pruning, L1);
    - ``exact_zero``: that share of units are exact-zero units (:func:`exact_zero_units`);
    - ``dead``: that share of hidden units are dead on the box: their bias is set below
      ``-1.5`` times the interval-arithmetic maximum of their weighted inputs, minus 1, so
      their pre-activation is below -1 at every input of the box.

    The same arguments give the same network."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must be at least [n_in, n_out], all >= 1, got {sizes}")
    if bias_sign not in (None, "zero", "positive", "negative"):
        raise ValueError(f"bias_sign must be None, 'zero', 'positive' or 'negative', got {bias_sign!r}")
    rng = np.random.default_rng(seed)
    extra = np.random.default_rng([seed, 1])
    n_in, depth = sizes[0], len(sizes) - 1
    lo = np.broadcast_to(np.asarray(lo, float), (n_in,)).copy()
    hi = np.broadcast_to(np.asarray(hi, float), (n_in,)).copy()
    l, u = lo, hi  # interval of the current layer's inputs (for dead units)
    Ws, bs = [], []
    for j, (n_i, n_o) in enumerate(zip(sizes[:-1], sizes[1:])):
        hidden = j < depth - 1
        W = rng.normal(size=(n_o, n_i)) * small
        large = rng.random(W.shape) < _layer(big, j)
        W[large] = rng.normal(size=int(large.sum())) * _layer(big_scale, j)
        b = rng.normal(size=n_o) * bias
        if bias_sign == "zero":
            b[:] = 0.0
        elif bias_sign == "positive":
            b = np.abs(b)
        elif bias_sign == "negative":
            b = -np.abs(b)
        if hidden:
            k = min(int(_layer(near_dead, j)), max(n_o - 2, 0))
            if k:
                W[:k] *= near_dead_scale
                b[:k] = rng.normal(size=k) * NEAR_DEAD_BIAS
            s = 0.5 * (j + 1) if layer_scale is None else _layer(layer_scale, j)
            W *= s
            b *= s
        else:
            W *= out_scale
        if zero_weights:
            W[extra.random(W.shape) < zero_weights] = 0.0
        if exact_zero:
            exact_zero_units(extra, W, b, exact_zero, after_relu=j > 0)
        if hidden and dead:
            Wp, Wn = np.maximum(W, 0.0), np.minimum(W, 0.0)
            units = extra.random(n_o) < dead
            top = Wp[units] @ u + Wn[units] @ l  # >= every W x on the box
            b[units] = -(1.5 * np.maximum(top, 0.0) + 1.0)
            # interval arithmetic: the next layer's inputs lie in [l, u]
            l, u = np.maximum(Wp @ l + Wn @ u + b, 0.0), np.maximum(Wp @ u + Wn @ l + b, 0.0)
        Ws.append(W)
        bs.append(b)
    return Network(Ws, bs, lo, hi)


def exact_zero_units(rng, W, b, frac, after_relu=True):
    """Turn about ``frac`` of the units of the layer (W, b) into units like L1/L2 training
    leaves, in place: bias exactly 0 and, on ReLU outputs (``after_relu``), weights <= 0 with
    exact zeros (the unit is exactly 0 wherever its inputs are, else negative), some of them
    also with a few +1e-30 weights beside large ones (positive only by 1e-30, below any
    rounding slack). In the first layer (inputs of either sign), all-zero rows: a constant 0."""
    units = np.flatnonzero(rng.random(W.shape[0]) < frac)
    for i in units:
        b[i] = 0.0
        if not after_relu:
            W[i] = 0.0
            continue
        W[i] = -np.abs(W[i])
        W[i, rng.random(W.shape[1]) < 0.5] = 0.0
        if rng.random() < 0.5:
            W[i, rng.random(W.shape[1]) < 0.2] = 1e-30
