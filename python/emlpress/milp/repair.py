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
   feasibility tolerances of ``REPAIR_TOL`` (never below :func:`rounding_floor`); with the
   binaries exact, the big-M rows are exact, and the LP's answer is evaluated and checked as
   in 1;
3. **re-solve with tight tolerances**: when the verified point found so far is not within the
   requested gap of HiGHS' bound (or none was found), the MILP is solved again, within what
   is left of the time limit, with HiGHS' MIP and primal feasibility tolerances at
   ``REPAIR_TOL`` (never below :func:`rounding_floor`) and the verified point (if any) as a
   MIP start, and its answer goes through 1 and 2 again.

The objective :func:`solve` reports is always that of a verified point (``c^T x + offset``
computed at the repaired point). When no point passes, the status is ``NUMERICAL``, the
objective is ``nan`` and ``Solution.mismatch`` holds the measured difference. HiGHS' bound
stays the reported bound (the tighter of the runs'); if a verified point contradicts it, it is
replaced by a sound one (:func:`certified_bound`, the LP relaxation certified from its duals,
else the trivial ``+inf`` for a maximisation) and the status is ``FEASIBLE`` (``OPTIMAL`` only
within the gaps of the certified bound).

**HiGHS' tolerances and the model's scale** (issue 34). HiGHS checks a point's rows against
``mip_feasibility_tolerance`` *absolutely* (1e-6 by default), in the user's units. A row whose
terms reach 1e11 (a network with weights ~1e5 over inputs ~1e2) carries float64 rounding of
~1e-5 even at a point computed exactly, so HiGHS rejected the true optimum, closed its node
anyway (the node's LP solution was integral) and reported a worse point OPTIMAL with that
point's value as its bound (17x below the true maximum on a drawn [1, 2, 1] network), or
SOLVEERROR, or INFEASIBLE. :func:`rounding_floor` gives the tolerance below which this
happens (``ROUNDING_RTOL`` times the largest magnitude a row can reach in the columns'
bounds); :func:`emlpress.milp.solve` never runs HiGHS below it. A looser tolerance only
enlarges the set of points HiGHS accepts (it cuts nothing off for the tolerance's sake), and
every answer is verified as above, at HiGHS' primal tolerance relative to each row. What is
left is detected: :func:`probe` looks for verified points near HiGHS' answer (the LP with its
integers fixed, each model input moved to its bounds) that beat HiGHS' bound.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from emlpress.milp.obbt import _as_written, safe_lower_bound

__all__ = ["REPAIR_TOL", "Candidate", "model_arrays", "exact_point", "verified", "fixed_lp_point",
           "violation", "ROUNDING_RTOL", "MAX_TOLERANCE", "rounding_floor", "probe",
           "certified_bound", "PROBE_COLS", "CERTIFIED_SLACK"]

#: HiGHS' feasibility tolerances in the repair's LP and MILP re-solves (never below
#: :func:`rounding_floor`)
REPAIR_TOL = 1e-9
#: the float64 rounding of a row's activity at an exactly computed point, relative to the
#: largest magnitude the row's terms can reach: 4 eps (measured: HiGHS answers the two
#: networks of tests/test_partition.py's _HIGHS_FAILS right from 0.08 and 0.27 eps times that
#: magnitude; the rest is room for HiGHS' presolve and postsolve arithmetic)
ROUNDING_RTOL = 2.0 ** -50
#: the largest feasibility tolerance :func:`emlpress.milp.solve` gives HiGHS (a model whose
#: rounding needs more is refused): a binary within 0.1 of 0 or 1 still says a unit's phase,
#: at 0.5 none does. Measured on drawn 1- to 3-input networks: no wrong answer with floors up
#: to 0.5 (nor up to 80 on 1 input); wrong OPTIMAL and INFEASIBLE from 3.8e2 up
MAX_TOLERANCE = 0.1
#: :func:`certified_bound`'s widening, relative to the largest magnitude the objective's terms
#: reach in the columns' bounds: the rounding of the forward passes a verified point comes
#: from, with room for deep networks (a float64 forward pass rounds by ~1e-16 per operation)
CERTIFIED_SLACK = 1e-9
#: :func:`probe` moves each input of the models to its bounds when they have at most this many
PROBE_COLS = 16


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
                       # a copy: highspy 1.16 gives col_cost_ as a view of the LP's own
                       # vector, freed when the LP's costs are set (certified_bound does)
                       np.array(lp.col_cost_, float), float(lp.offset_), integ != 0, lp,
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


def fixed_lp_point(M: ModelArrays, v: np.ndarray, time_limit: float | None,
                   tol: float = REPAIR_TOL) -> np.ndarray | None:
    """The LP of the model with every integer column fixed at its value in ``v``, solved with
    feasibility tolerances of ``tol`` (default ``REPAIR_TOL``; :func:`rounding_floor` where that
    is larger); its optimal point, or None."""
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
            h.setOptionValue(opt, float(tol))
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


def repair(M: ModelArrays, handles, raw: np.ndarray, tol: float, deadline: float | None,
           lp_tol: float = REPAIR_TOL) -> Candidate | None:
    """Steps 1 and 2 of the module docstring on HiGHS' point ``raw`` (``tol``: the relative
    row tolerance of :func:`verified`; ``lp_tol``: the LP's, :func:`fixed_lp_point`)."""
    v = exact_point(M, handles, raw)
    c = verified(M, handles, v, tol, "exact evaluation")
    if c is not None or v is None:
        return c
    left = None if deadline is None else deadline - time.perf_counter()
    if left is not None and left <= 0:
        return None
    w = fixed_lp_point(M, v, left, lp_tol)
    if w is None:
        return None
    return verified(M, handles, exact_point(M, handles, w), tol, "LP with the integers fixed")


def row_magnitudes(M: ModelArrays) -> np.ndarray:
    """Per row, the largest magnitude its terms can reach in the columns' bounds:
    ``sum_j |a_ij| max(|lo_j|, |hi_j|) + |its finite bounds|`` (columns with an infinite
    bound count as 0: nothing is known of them)."""
    xm = np.maximum(np.abs(M.col_lo), np.abs(M.col_hi))
    xm = np.where(np.isfinite(xm), xm, 0.0)
    rb = np.maximum(np.where(np.isfinite(M.row_lo), np.abs(M.row_lo), 0.0),
                    np.where(np.isfinite(M.row_hi), np.abs(M.row_hi), 0.0))
    return (abs(M.A) @ xm if M.A.nnz else np.zeros(M.row_lo.size)) + rb


def rounding_floor(M: ModelArrays) -> tuple[float, int, int]:
    """(the smallest absolute feasibility tolerance HiGHS may be given on this model, the row
    that sets it, that row's largest term's column; -1, -1 for a model without rows):
    ``ROUNDING_RTOL`` times the largest :func:`row_magnitudes`. Below it, float64 rounding
    alone can make an exactly computed point violate a row by more than the tolerance, and
    HiGHS 1.16 then cuts the optimum off (module docstring)."""
    mag = row_magnitudes(M)
    if mag.size == 0:
        return 0.0, -1, -1
    r = int(np.argmax(mag))
    s, e = M.A.indptr[r], M.A.indptr[r + 1]
    xm = np.maximum(np.abs(M.col_lo[M.A.indices[s:e]]), np.abs(M.col_hi[M.A.indices[s:e]]))
    terms = np.abs(M.A.data[s:e]) * np.where(np.isfinite(xm), xm, 0.0)
    col = int(M.A.indices[s + int(np.argmax(terms))]) if e > s else -1
    return ROUNDING_RTOL * float(mag[r]), r, col


def probe(M: ModelArrays, handles, start: Candidate | None, raw: np.ndarray | None, tol: float,
          deadline: float | None, maximize: bool, lp_tol: float = REPAIR_TOL) -> Candidate | None:
    """A verified point near HiGHS' answer, better than ``start`` where one is found (else
    ``start``), the check of HiGHS' bound that costs about one LP: from ``start`` (or the
    exact evaluation at ``raw``), every input column of the models moved alone to its lower
    and its upper bound (where there are at most ``PROBE_COLS``: ``2 n`` forward passes), then
    the LP with the integers fixed at the best of those points' activation patterns."""
    best = start
    base = start.values if start is not None else \
        (None if raw is None else exact_point(M, handles, raw))
    if base is None:
        return best
    cols = np.unique(np.concatenate([np.asarray(hd.input_cols, np.int64) for hd in handles])) \
        if handles else np.zeros(0, np.int64)
    cols = cols[M.col_lo[cols] < M.col_hi[cols]]
    if cols.size <= PROBE_COLS:
        for j in cols:
            for value in (M.col_lo[j], M.col_hi[j]):
                if not np.isfinite(value):
                    continue
                v = base.copy()
                v[j] = value
                c = verified(M, handles, exact_point(M, handles, v), tol,
                             f"input column {j} moved to its bound {value:.9g}")
                best = better(best, c, maximize)
    left = None if deadline is None else deadline - time.perf_counter()
    at = exact_point(M, handles, best.values if best is not None else base)
    if at is not None and (left is None or left > 0):  # None: a model not rebuilt by columns
        w = fixed_lp_point(M, at, left, lp_tol)
        if w is not None:
            moved = best is not None and best is not start
            how = "LP with the integers fixed" + (f" after {best.how}" if moved else "")
            c = verified(M, handles, exact_point(M, handles, w), tol, how)
            best = better(best, c, maximize)
    return best


def certified_bound(M: ModelArrays, handles, maximize: bool, deadline: float | None) -> float:
    """A sound bound of the objective over the model: the optimum of its LP relaxation
    (integrality dropped), certified from HiGHS' duals by
    :func:`emlpress.milp.obbt.safe_lower_bound` over the rows as the encodings wrote them
    (HiGHS drops coefficients <= 1e-9), then widened by ``CERTIFIED_SLACK`` of the largest
    magnitude the objective can reach (the rounding of the forward passes its verified points
    come from). ``+inf`` for a maximisation (``-inf`` for a minimisation) where no certificate
    is had (the rows changed since they were added, the LP not solved, an infinite bound)."""
    trivial = np.inf if maximize else -np.inf
    try:
        A = _as_written(M.A, [hd for hd in handles if getattr(hd, "row_block", None) is not None])
    except ValueError:
        return trivial
    sign = -1.0 if maximize else 1.0  # minimise sign * c.x
    lp = M.lp
    saved = lp.integrality_, M.cost.copy(), lp.sense_, lp.offset_
    lp.integrality_, lp.col_cost_, lp.offset_ = [], sign * M.cost, 0.0
    lp.sense_ = highspy.ObjSense.kMinimize
    try:
        h = highspy.Highs()
        h.silent()
        if deadline is not None:
            h.setOptionValue("time_limit", max(0.05, deadline - time.perf_counter()))
        h.passModel(lp)
        h.run()
    finally:  # the copy is reused by later steps
        lp.integrality_, lp.col_cost_, lp.sense_, lp.offset_ = saved
    if h.getModelStatus().name != "kOptimal":
        return trivial
    y = np.asarray(h.getSolution().row_dual, float)
    if y.size != A.shape[0] or not np.all(np.isfinite(y)):
        return trivial
    idx = np.flatnonzero(M.cost)
    low = safe_lower_bound(A, abs(A), M.row_lo, M.row_hi, M.col_lo, M.col_hi, idx,
                           sign * M.cost[idx], y)
    if not np.isfinite(low):
        return trivial
    xm = np.maximum(np.abs(M.col_lo[idx]), np.abs(M.col_hi[idx]))
    slack = CERTIFIED_SLACK * float(np.sum(np.abs(M.cost[idx]) * xm))
    if not np.isfinite(slack):
        return trivial
    return float(-(low - slack) + M.offset) if maximize else float(low - slack + M.offset)


def better(a: Candidate | None, b: Candidate | None, maximize: bool) -> Candidate | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if (b.objective > a.objective if maximize else b.objective < a.objective) else a


def warn(message: str, stacklevel: int = 3) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=stacklevel)
