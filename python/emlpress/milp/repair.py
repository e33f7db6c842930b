"""Every answer :func:`emlpress.milp.solve` returns is checked, and repaired where it fails.

HiGHS accepts a binary within ``mip_feasibility_tolerance`` (1e-6) of 0 or 1 and a row within
``primal_feasibility_tolerance`` (1e-7). In a big-M row ``a <= z - l (1 - d)`` a binary off by
1e-6 lets a unit's output move by ``|l| * 1e-6``: with the pre-activation bounds of 1e4 that
folding can create, the MILP's outputs (and its "optimal" objective) can differ from what the
network computes at the MILP's inputs by 1e-2. So an answer whose embedded models disagree with
their own evaluation (``forward``, ``predict``, the int8 interpreter) by more than
``VERIFY_RTOL`` relative to ``max(1, |output|)`` is never reported as it came:

1. **exact evaluation**: the inputs of every embedded model are kept (integer columns
   rounded, every column clipped into its bounds), every model is evaluated exactly there
   (networks in the order they were added, so chained networks see exact inputs) and its
   columns (units, binaries, outputs) overwritten; the point is accepted when every row of
   the model holds within HiGHS' primal feasibility tolerance relative to ``max(1, sum |a_ij
   x_j|)`` and every column within its bounds;
2. **LP with the integers fixed**: else every integer column is fixed at that point's value
   (the activation pattern the exact evaluation chose) and the LP is solved with
   feasibility tolerances of ``REPAIR_TOL``; with the binaries exact, the big-M rows are
   exact, and the LP's answer is evaluated and checked as in 1;
3. **re-solve with tight tolerances**: when the verified point found so far is not within the
   requested gap of HiGHS' bound (or none was found), the MILP is solved again, within what
   is left of the time limit, with HiGHS' MIP and primal feasibility tolerances at
   ``REPAIR_TOL`` and the verified point (if any) as a MIP start, and its answer goes through
   1 and 2 again.

The objective :func:`solve` reports is always that of a verified point (``c^T x + offset``
computed at the repaired point). When no point passes, the status is ``NUMERICAL``, the
objective is ``nan`` and ``Solution.mismatch`` holds the measured difference. HiGHS' bound
stays the reported bound (the tighter of the runs'); if a verified point contradicts it, it is
replaced by the trivial bound (``+inf`` for a maximisation) and the status is ``FEASIBLE``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

__all__ = ["REPAIR_TOL", "Candidate", "model_arrays", "exact_point", "verified", "fixed_lp_point",
           "violation"]

#: HiGHS' feasibility tolerances in the repair's LP and MILP re-solves
REPAIR_TOL = 1e-9


@dataclass
class ModelArrays:
    """The model's data, read once (``h.getLp()`` copies it)."""

    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    cost: np.ndarray
    offset: float
    integer: np.ndarray  # bool per column
    lp: object
    integrality: list  # lp.integrality_ as HiGHS gave it


@dataclass
class Candidate:
    """A point of the model checked against every embedded model and every row."""

    values: np.ndarray
    objective: float
    how: str


def model_arrays(h) -> ModelArrays:
    lp = h.getLp()
    m = lp.a_matrix_
    n, r = lp.num_col_, lp.num_row_
    data = (np.asarray(m.value_, float), np.asarray(m.index_, np.int64), np.asarray(m.start_, np.int64))
    if m.format_.name == "kRowwise":
        A = sp.csr_matrix(data, shape=(r, n))
    else:
        A = sp.csc_matrix(data, shape=(r, n)).tocsr()
    integ = np.asarray(lp.integrality_, np.int64) if len(lp.integrality_) else np.zeros(n, np.int64)
    return ModelArrays(A, np.asarray(lp.row_lower_, float), np.asarray(lp.row_upper_, float),
                       np.asarray(lp.col_lower_, float), np.asarray(lp.col_upper_, float),
                       np.asarray(lp.col_cost_, float), float(lp.offset_), integ != 0, lp,
                       list(lp.integrality_))


def violation(M: ModelArrays, v: np.ndarray) -> float:
    """The largest violation of a row or column bound at ``v``, each relative to
    ``max(1, sum_j |a_ij v_j|)`` (rows) or ``max(1, |v_j|)`` (columns)."""
    act = M.A @ v
    mag = np.maximum(1.0, abs(M.A) @ np.abs(v)) if M.A.nnz else np.ones(M.row_lo.size)
    rows = np.maximum(M.row_lo - act, act - M.row_hi) / mag
    cols = np.maximum(M.col_lo - v, v - M.col_hi) / np.maximum(1.0, np.abs(v))
    worst = 0.0
    for part in (rows, cols):
        if part.size:
            worst = max(worst, float(np.max(part)))
    return worst


def exact_point(M: ModelArrays, handles, v: np.ndarray) -> np.ndarray | None:
    """``v`` with integer columns rounded, every column clipped into its bounds and every
    embedded model's columns set to its exact evaluation at its inputs there (``None`` when a
    model cannot be evaluated column by column)."""
    v = np.array(v, dtype=np.float64)
    v[M.integer] = np.rint(v[M.integer])
    v = np.clip(v, M.col_lo, M.col_hi)
    for hd in handles:
        ec = hd._exact_columns(v[hd.input_cols])
        if ec is None:
            return None
        cols, vals = ec
        v[cols] = vals
    return v


def verified(M: ModelArrays, handles, v: np.ndarray | None, tol: float, how: str) -> Candidate | None:
    """A :class:`Candidate` if ``v`` holds every row within ``tol`` (relative) and every
    model agrees with its own evaluation (``_check`` within its ``_mismatch`` rule)."""
    if v is None or not np.all(np.isfinite(v)) or violation(M, v) > tol:
        return None
    for hd in handles:
        x, y = v[hd.input_cols], v[hd.output_cols]
        if hd._mismatch(*hd._check(x, y)) is not None:
            return None
    return Candidate(v, float(M.cost @ v + M.offset), how)


def fixed_lp_point(M: ModelArrays, v: np.ndarray, time_limit: float | None) -> np.ndarray | None:
    """The LP of the model with every integer column fixed at its value in ``v``, solved with
    feasibility tolerances of ``REPAIR_TOL``; its optimal point, or None."""
    if not M.integer.any():
        return None
    lp = M.lp
    lo, hi = M.col_lo.copy(), M.col_hi.copy()
    lo[M.integer] = hi[M.integer] = np.rint(v[M.integer])
    lp.col_lower_, lp.col_upper_ = lo, hi
    lp.integrality_ = []
    try:
        h = highspy.Highs()
        h.silent()
        for opt in ("primal_feasibility_tolerance", "dual_feasibility_tolerance"):
            h.setOptionValue(opt, REPAIR_TOL)
        if time_limit is not None:
            h.setOptionValue("time_limit", max(0.0, float(time_limit)))
        h.passModel(lp)
        h.run()
    finally:  # the copy is reused by later steps
        lp.col_lower_, lp.col_upper_ = M.col_lo, M.col_hi
        lp.integrality_ = M.integrality
    if h.getModelStatus().name != "kOptimal":
        return None
    return np.asarray(h.getSolution().col_value, np.float64)


def repair(M: ModelArrays, handles, raw: np.ndarray, tol: float, deadline: float | None) -> Candidate | None:
    """Steps 1 and 2 of the module docstring on HiGHS' point ``raw``."""
    v = exact_point(M, handles, raw)
    c = verified(M, handles, v, tol, "exact evaluation")
    if c is not None or v is None:
        return c
    left = None if deadline is None else deadline - time.perf_counter()
    if left is not None and left <= 0:
        return None
    w = fixed_lp_point(M, v, left)
    if w is None:
        return None
    return verified(M, handles, exact_point(M, handles, w), tol, "LP with the integers fixed")


def better(a: Candidate | None, b: Candidate | None, maximize: bool) -> Candidate | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if (b.objective > a.objective if maximize else b.objective < a.objective) else a


def warn(message: str, stacklevel: int = 3) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=stacklevel)
