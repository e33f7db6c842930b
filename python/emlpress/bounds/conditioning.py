"""How exact a big-M encoding built from given bounds can be under a solver's tolerances.

A MILP solver accepts a binary within its integrality tolerance ``tol`` of 0 or 1 (HiGHS'
``mip_feasibility_tolerance``, 1e-6). In the rows ``a >= z``, ``a <= z - l (1 - d)``,
``a <= u d`` of an unstable unit with pre-activation bounds ``[l, u]``, a binary off by ``tol``
lets the output ``a`` move by up to ``max(-l, u) * tol`` from ``relu(z)``; the next layers carry
that movement through ``|W|`` (ReLU is 1-Lipschitz). :func:`integrality_error` adds it up:
a worst case, reached only if every unit moves in the worst direction at once, but the
measure of what folding (weights of 1e4) does to a MILP's exactness.
"""

from __future__ import annotations

import numpy as np

__all__ = ["integrality_error", "CONDITIONING_RTOL", "HIGHS_MIP_TOL"]

#: a big-M encoding is called ill-conditioned when the integrality tolerance can move an
#: output by more than this, relative to max(1, the output's bound)
CONDITIONING_RTOL = 1e-2
#: HiGHS' default mip_feasibility_tolerance, used where no model is at hand
HIGHS_MIP_TOL = 1e-6


def integrality_error(net, b, tol: float = 1e-6) -> tuple[np.ndarray, int, float]:
    """(the largest movement of each output, the layer with the largest big-M, that big-M)
    that an integrality tolerance ``tol`` allows in the big-M encoding of ``net`` with the
    bounds ``b`` (a :class:`~emlpress.bounds.Bounds`); layer -1 and 0.0 when no unit is
    unstable."""
    e = np.zeros(net.n_in)
    worst_layer, worst_m = -1, 0.0
    last = net.n_layers - 1
    for l, W in enumerate(net.weights):
        e = np.abs(np.asarray(W)) @ e
        if l == last:
            break
        lower, upper = np.asarray(b.lower[l]), np.asarray(b.upper[l])
        unstable = (lower < 0) & (upper > 0)
        m = np.where(unstable, np.maximum(-lower, upper), 0.0)
        if m.size and m.max() > worst_m:
            worst_layer, worst_m = l, float(m.max())
        e = np.where(upper <= 0, 0.0, e + tol * m)  # stably inactive units have no column
    return e, worst_layer, worst_m
