"""Regression metrics shared by the pipelines, the study and lossy compression (numpy only).

One definition of R2 and RMSE, so that every table that reports them means the same thing:
R2 is ``1 - SS_res / SS_tot`` about the targets' own mean (nan when the targets are constant),
RMSE the root of the mean squared error, both in the targets' units.
"""

from __future__ import annotations

import numpy as np


def rmse(pred, target) -> float:
    """Root mean squared error of ``pred`` against ``target`` (same shape, any)."""
    e = np.asarray(pred, dtype=float) - np.asarray(target, dtype=float)
    return float(np.sqrt(np.mean(e ** 2)))


def r2(pred, target) -> float:
    """Coefficient of determination of ``pred`` for ``target`` (1-D, same length): nan when
    ``target`` is constant (R2 is undefined there)."""
    p = np.asarray(pred, dtype=float)
    y = np.asarray(target, dtype=float)
    ss = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((p - y) ** 2)) / ss if ss > 0 else float("nan")
