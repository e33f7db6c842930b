"""The rounding policy's arithmetic: the slack every bound method widens by, so that a
float64 forward pass never leaves a bound (the tolerance policy of :mod:`emlpress.bounds`;
``cpp/include/emlpress/rounding.hpp`` is its C++ side).

``gamma_slack(n)`` times the magnitude of the terms bounds the rounding of an n-term sum;
``forward_rounding`` composes it over the layers of a network; ``round_up`` covers the
rounding of numpy's own arithmetic on an error bound; ``_down``/``_up`` step one float
outward after a rounded operation.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["gamma_slack", "forward_rounding", "round_up"]

_UNIT = np.finfo(np.float64).eps / 2.0  # unit roundoff
_SUBNORMAL = 2.0**-1074  # the spacing of float64 values below 2^-1022


def gamma_slack(n_terms) -> float:
    """gamma(n) = 2 (n + 3) u of ``cpp/include/emlpress/rounding.hpp``: times the magnitude
    of the terms, the rounding of an n-term float64 sum and of the forward pass beside it."""
    return 2.0 * (n_terms + 3.0) * _UNIT


def forward_rounding(net, lo, hi, upper=None) -> list[np.ndarray]:
    """Per layer, how far a float64 forward pass can round away from the exact
    pre-activation over the box [lo, hi]: gamma(n) (n the inputs summed up to that layer)
    times the composed magnitude |W_k| (... (|W_0| max(|lo|, |hi|) + |b_0|) ...) + |b_k|,
    over the units that `upper` (per layer, optional) does not prove inactive. The
    one-layer magnitude |W_k| |a_{k-1}| is far smaller when a layer's outputs cancel.
    Plus the absolute error of subnormal results, which the relative gamma does not
    cover: each product and sum may be off by half the subnormal spacing 2^-1074, so
    (n + 1) 2^-1074 per unit of a layer with n inputs, carried on by |W| (a review found
    bounds ulps inside a forward pass at values ~1e-320)."""
    cm = np.maximum(np.abs(lo), np.abs(hi))
    tiny = np.zeros(len(cm))  # the subnormal error carried so far
    n_terms, out = 0, []
    for k, (W, b) in enumerate(zip(net.weights, net.biases)):
        if k and upper is not None:
            cm = np.where(upper[k - 1] > 0, cm, 0.0)
        cm = np.abs(W) @ cm + np.abs(b)
        tiny = 2.0 * (np.abs(W) @ tiny) + (W.shape[1] + 1) * _SUBNORMAL
        n_terms += W.shape[1]
        out.append(round_up(gamma_slack(n_terms) * cm + tiny))
    return out


def round_up(v: np.ndarray) -> np.ndarray:
    """Round a nonnegative error bound up past the rounding of the numpy arithmetic that
    computed it (relative error below n u << 1e-9 for any realistic width n)."""
    return v * (1.0 + 1e-9)


def _down(x: float) -> float:
    return math.nextafter(x, -math.inf)


def _up(x: float) -> float:
    return math.nextafter(x, math.inf)
