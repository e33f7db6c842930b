"""Split-conformal margins.

A margin is the ``ceil((n + 1) * coverage)``-th smallest of ``n`` held-out residuals (residual:
how much the surrogate is optimistic about a constraint, e.g. predicted ``-log10(error)`` minus
the measured one). For a new point exchangeable with the calibration points, the residual is at
most the margin with probability at least ``coverage`` (Vovk et al.; Lei et al. 2018). The
optimizer does not draw its answers like the data (it seeks the surrogate's most optimistic
corner), so the loop measures every answer and adds held-out measurements of its own answers
to the calibration residuals: the margins then also learn the optimizer's bias.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["conformal_margin", "margins", "check_coverage"]


def check_coverage(coverage) -> float:
    """``coverage`` as a float in (0, 1), else a ValueError naming it."""
    if isinstance(coverage, bool) or not isinstance(coverage, numbers.Real) or not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage = {coverage!r} must lie in (0, 1), e.g. 0.9")
    return float(coverage)


def conformal_margin(residuals, coverage: float) -> float:
    """Split-conformal margin of ``residuals`` (1-D, any units; NaN refused): the
    ``ceil((n+1) * coverage)``-th smallest, so that a new residual exchangeable with these is at
    most the margin with probability >= ``coverage``. Too few residuals for the coverage asked
    (``n < coverage / (1 - coverage)``) is a ValueError saying how many are needed."""
    check_coverage(coverage)
    r = np.sort(np.asarray(residuals, dtype=float).ravel())
    if np.isnan(r).any():
        raise ValueError(f"residuals: {int(np.isnan(r).sum())} of {len(r)} are NaN")
    k = math.ceil((len(r) + 1) * coverage)
    if k > len(r):
        raise ValueError(f"{len(r)} calibration rows cannot give a {coverage:.0%} margin "
                         f"(at least {math.ceil(coverage / (1 - coverage))} needed): "
                         "lower coverage or raise calibration_size")
    return float(r[k - 1])


def margins(residuals: dict, coverage: float) -> dict:
    """{constraint name: margin} from {constraint name: held-out residuals}."""
    return {name: conformal_margin(r, coverage) for name, r in residuals.items()}
