"""Bounds that see the whole model: :func:`tighten`, optimisation-based bound tightening of
every network embedded in a HiGHS model over the LP relaxation of the *whole* model.

A network's big-M rows (``network.py``) are only as tight as the bounds it was added with,
and those hold on its input box. In a model the inputs are far from free: the user's rows, a
budget, other networks, the previous weeks of a chained plan restrict them. :func:`tighten`
bounds the pre-activation of every unstable unit (and every output) by two LPs over the
relaxation of the whole model (every row of ``h``, binaries relaxed to [0, 1]), layer by
layer, so that a layer's tighter big-Ms tighten the next layers', and repeats while a round
improves. Every LP value is certified from its duals (Neumaier-Shcherbina, as
:func:`emlpress.bounds.lp` is: for *any* multipliers ``y``, ``sum_i min(y_i L_i, y_i U_i) +
sum_j min(d_j l_j, d_j u_j)`` with ``d = c - A^T y`` is a lower bound of ``c.x`` over the
rows and column bounds, widened by its float64 rounding error, :func:`safe_lower_bound`),
then widened by the rounding a float64 forward pass makes
(:func:`emlpress.bounds.rounding.forward_rounding`); HiGHS' LP value is never taken as it
comes. The model is then rewritten: the big-M coefficients of each unit's rows
(``NetworkHandle.bigm_rows``) and its columns' bounds; a unit proven stable gets its binary
fixed (HiGHS' presolve removes it and simplifies its rows). The handle's ``bounds`` become the
tightened ones (they hold on the model's feasible points, not on the whole input box).

No feasible point of the model is cut off (every new bound holds at every point of the
model's rows, exactly), so the MILP's optimum is unchanged. An LP relaxation that is
infeasible is reported as ``INFEASIBLE`` with its Farkas certificate checked
(:func:`safe_lower_bound` of the zero objective > 0), and nothing is rewritten after it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import highspy
import numpy as np
import scipy.sparse as sp

from emlpress import _highs, _options
from emlpress._highs import option_value
from emlpress.bounds.conditioning import integrality_error
from emlpress.bounds.rounding import forward_rounding, gamma_slack

__all__ = ["tighten", "TightenReport", "safe_lower_bound", "STATUS"]

_INF = highspy.kHighsInf
_SUBNORMAL = 2.0 ** -1074
#: what :func:`tighten` reports: the model was tightened (or nothing could be), or its LP
#: relaxation is infeasible with a checked certificate (so is the MILP)
STATUS = ("TIGHTENED", "INFEASIBLE")
#: a round counts as an improvement when some bound moved by more than this relative to
#: max(1, the unit's width before), or a unit became stable
MIN_IMPROVEMENT = 1e-3
#: the smallest big-M written into a row: HiGHS drops coefficients below 1e-9 (the unit's
#: columns keep the exact bounds)
BIGM_FLOOR = 1e-8


@dataclass
class TightenReport:
    """What :func:`tighten` did. ``status``: one of ``STATUS``. ``rounds``: rounds run;
    ``lps``: LPs solved; ``uncertified``: LPs whose value could not be certified (their
    bounds kept); ``stabilised``: units proven stable (binaries fixed); ``binaries``:
    (free binaries before, after); ``max_bigm``: (largest big-M before, after), over the
    networks' hidden units; ``stop``: why the rounds ended (``"converged"``, ``"rounds"``,
    ``"time_limit"``, ``"infeasible"``); ``certificate``: the row multipliers of an
    infeasible relaxation's Farkas proof (shape ``(n_rows,)``, checked) and ``farkas_bound``
    its certified value (> 0), or ``crossed``: the unit whose certified min and max cross
    (each from its own checked duals); ``per_round``: per round, (unit sides tightened, units
    stabilised, seconds)."""

    status: str
    rounds: int = 0
    lps: int = 0
    uncertified: int = 0
    stabilised: int = 0
    binaries: tuple = (0, 0)
    max_bigm: tuple = (0.0, 0.0)
    seconds: float = 0.0
    stop: str = ""
    certificate: np.ndarray | None = None
    farkas_bound: float = math.nan
    per_round: list = field(default_factory=list)
    #: the proof of infeasibility when it is a unit's certified bounds crossing instead
    crossed: str = ""

    def __str__(self) -> str:
        if self.status == "INFEASIBLE" and self.crossed:
            return f"INFEASIBLE: {self.crossed} (over the model's LP relaxation)"
        if self.status == "INFEASIBLE":
            return (f"INFEASIBLE: the model's LP relaxation has no point (Farkas certificate, "
                    f"certified bound {self.farkas_bound:.3g} > 0); nothing tightened after it")
        return (f"{self.status}: {self.rounds} rounds, {self.lps} LPs in {self.seconds:.2f} s "
                f"({self.stop}); {self.stabilised} units proven stable, free binaries "
                f"{self.binaries[0]} -> {self.binaries[1]}, largest big-M "
                f"{self.max_bigm[0]:.3g} -> {self.max_bigm[1]:.3g}"
                + (f"; {self.uncertified} LPs uncertified (their bounds kept)" if self.uncertified else ""))


def safe_lower_bound(A: sp.csr_matrix, absA: sp.csr_matrix, row_lo, row_hi, col_lo, col_hi,
                     cost_idx, cost_val, y, AT: sp.csr_matrix | None = None,
                     absAT: sp.csr_matrix | None = None) -> float:
    """A rigorous lower bound of ``min c.x`` over ``row_lo <= A x <= row_hi``,
    ``col_lo <= x <= col_hi`` from any row multipliers ``y`` (shape ``(n_rows,)``, either
    sign convention: ``y`` and ``-y`` are tried), ``c`` sparse (``cost_idx``, ``cost_val``):
    the vectorised twin of the C++ ``safe_lower_bound`` (``cpp/src/lp_relaxation.cpp``),
    with the same rounding slack, one float further down. ``absA`` is ``|A|`` (same
    structure); ``AT``, ``absAT`` their transposes in CSR, when kept (faster). A multiplier on an infinite row side is taken as 0 (still valid); ``-inf``
    when a column with a nonzero reduced cost has an infinite bound. The zero objective
    gives a Farkas check: a value > 0 proves the rows and bounds have no common point."""
    y = np.asarray(y, float)
    n_rows, n_cols = A.shape
    AT = A.T if AT is None else AT
    absAT = absA.T if absAT is None else absAT
    c = np.zeros(n_cols)
    np.add.at(c, np.asarray(cost_idx, np.int64), np.asarray(cost_val, float))
    xm = np.maximum(np.abs(col_lo), np.abs(col_hi))
    xm = np.where(np.isfinite(xm), xm, 0.0)
    rm = np.maximum(np.where(np.isfinite(row_lo), np.abs(row_lo), 0.0),
                    np.where(np.isfinite(row_hi), np.abs(row_hi), 0.0))
    row_len = np.diff(A.indptr)
    best = -math.inf
    for sign in (1.0, -1.0):
        yy = sign * y
        # a multiplier of the wrong sign on a one-sided row would give -inf: drop it
        yy = np.where(((yy > 0) & ~np.isfinite(row_lo)) | ((yy < 0) & ~np.isfinite(row_hi)), 0.0, yy)
        rt = np.zeros(n_rows)
        pos, neg = yy > 0, yy < 0
        rt[pos] = yy[pos] * row_lo[pos]
        rt[neg] = yy[neg] * row_hi[neg]
        d = c - AT @ yy
        ct = np.zeros(n_cols)
        dp, dn = d > 0, d < 0
        ct[dp] = d[dp] * col_lo[dp]
        ct[dn] = d[dn] * col_hi[dn]
        bound = float(np.sum(rt)) + float(np.sum(ct))
        if not math.isfinite(bound):
            continue
        dabs = absAT @ np.abs(yy)
        mag = float(np.sum(np.abs(rt)) + np.sum(np.abs(ct)) + np.sum((dabs + np.abs(c)) * xm))
        max_len = float(row_len[yy != 0].max(initial=0))
        n_ops = max_len + n_rows + n_cols
        amp = max(1.0, float(xm.max(initial=0.0)), float(np.abs(yy).max(initial=0.0)),
                  float(rm.max(initial=0.0)))
        # gamma(n) covers the rounding of every sum above (numpy's pairwise sums round less)
        bound -= gamma_slack(n_ops) * mag * (1.0 + 1e-9) + (
            2.0 * (n_ops + 3.0) * _SUBNORMAL * amp * amp if mag > 0 else 0.0)
        best = max(best, math.nextafter(bound, -math.inf))
    return best


def _as_written(A: sp.csr_matrix, networks) -> sp.csr_matrix:
    """``A`` (HiGHS' rows) with every network's rows as the encoding wrote them
    (``row_block``): HiGHS drops coefficients below 1e-9 (trained weights of 1e-13 exist), and
    bounds certified over its rows would miss the network's own forward pass by their sum."""
    coo = A.tocoo()
    keep = np.ones(coo.nnz, bool)
    rows, cols, vals = [], [], []
    for hd in networks:
        if getattr(hd, "row_block", None) is None:
            continue
        first, st, ix, v = hd.row_block
        nr = st.size - 1
        mine = (coo.row >= first) & (coo.row < first + nr)
        keep &= ~mine
        r = first + np.repeat(np.arange(nr), np.diff(st))
        # HiGHS' entries there must be the block's (less the ones it dropped): else the rows
        # were changed or deleted since add_network, and the block is no longer the model
        kb = r * A.shape[1] + ix
        kh = coo.row[mine].astype(np.int64) * A.shape[1] + coo.col[mine]
        order = np.argsort(kb)
        pos = np.clip(np.searchsorted(kb[order], kh), 0, max(kb.size - 1, 0))
        if first + nr > A.shape[0] or (kh.size and not (
                np.array_equal(kb[order][pos], kh) and np.array_equal(v[order][pos], coo.data[mine]))):
            raise ValueError(f"network {hd.name!r}: its rows in the model are not those add_network "
                             "wrote (changed or deleted since?): tighten cannot certify over them")
        rows.append(r)
        cols.append(ix)
        vals.append(v)
    out = sp.csr_matrix((np.concatenate([coo.data[keep], *vals]),
                         (np.concatenate([coo.row[keep], *rows]), np.concatenate([coo.col[keep], *cols]))),
                        shape=A.shape)
    out.sort_indices()
    return out


def _set_block(hd, row: int, col: int, value: float) -> None:
    """Keep the handle's ``row_block`` what the model now holds at (``row``, ``col``)."""
    if getattr(hd, "row_block", None) is None:
        return
    first, st, ix, v = hd.row_block
    s, e = st[row - first], st[row - first + 1]
    k = s + np.flatnonzero(ix[s:e] == col)
    if k.size != 1:
        raise ValueError(f"network {hd.name!r}: row {row} has no entry in column {col}")
    v[k[0]] = value


class _Model:
    """The whole model's LP relaxation: a second HiGHS instance (no integrality, no
    presolve, warm-started between objectives) and a CSR copy of its rows for the
    certificates, both kept in step with ``h`` as rows are rewritten."""

    def __init__(self, h, networks):
        lp = h.getLp()
        m = lp.a_matrix_
        n, r = lp.num_col_, lp.num_row_
        data = (np.asarray(m.value_, float), np.asarray(m.index_, np.int64), np.asarray(m.start_, np.int64))
        A = sp.csr_matrix(data, shape=(r, n)) if m.format_.name == "kRowwise" else \
            sp.csc_matrix(data, shape=(r, n)).tocsr()
        A = _as_written(A, networks)
        self.A, self.absA = A, abs(A)
        self.AT = A.T.tocsr()
        self.AT.sort_indices()
        self.absAT = abs(self.AT)
        self.row_lo = np.asarray(lp.row_lower_, float).copy()
        self.row_hi = np.asarray(lp.row_upper_, float).copy()
        self.col_lo = np.asarray(lp.col_lower_, float).copy()
        self.col_hi = np.asarray(lp.col_upper_, float).copy()
        self.n_cols = n
        lp.integrality_ = []
        lp.col_cost_ = np.zeros(n)
        lp.offset_ = 0.0
        lp.sense_ = highspy.ObjSense.kMinimize
        self.lp = _highs.highs()
        self.lp.setOptionValue("presolve", "off")  # it would discard the warm-start basis
        if self.lp.passModel(lp) != highspy.HighsStatus.kOk:
            raise ValueError("HiGHS refused a copy of the model's LP relaxation (passModel)")
        self._cost_col = -1

    def coeff(self, row: int, col: int, value: float) -> None:
        for A, absA, i, j in ((self.A, self.absA, row, col), (self.AT, self.absAT, col, row)):
            s, e = A.indptr[i], A.indptr[i + 1]
            k = s + int(np.searchsorted(A.indices[s:e], j))
            if k >= e or A.indices[k] != j:
                raise ValueError(f"row {row} has no entry in column {col}: not a big-M row of this unit")
            A.data[k], absA.data[k] = value, abs(value)
        self.lp.changeCoeff(int(row), int(col), float(value))

    def row_upper(self, row: int, value: float) -> None:
        self.row_hi[row] = value
        self.lp.changeRowBounds(int(row), float(self.row_lo[row]), float(value))

    def col_bounds(self, col: int, lo: float, hi: float) -> None:
        self.col_lo[col], self.col_hi[col] = lo, hi
        self.lp.changeColBounds(int(col), float(lo), float(hi))

    def minimise(self, col: int, sign: float, deadline: float | None):
        """(certified lower bound of ``sign * x[col]`` over the relaxation or None, Farkas
        certificate (y, value) when HiGHS found the relaxation infeasible and the ray checks)."""
        h = self.lp
        if self._cost_col >= 0:
            h.changeColCost(self._cost_col, 0.0)
        h.changeColCost(int(col), float(sign))
        self._cost_col = int(col)
        for _attempt in range(2):
            if deadline is not None:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return None, None
                h.setOptionValue("time_limit", float(left))
            h.run()
            st = h.getModelStatus()
            if st == highspy.HighsModelStatus.kInfeasible:
                return None, self._farkas()
            if st == highspy.HighsModelStatus.kOptimal:
                break
            h.clearSolver()  # a warm start can come back kUnknown: once more from scratch
        y = np.asarray(h.getSolution().row_dual, float)
        if y.size != self.A.shape[0] or not np.all(np.isfinite(y)):
            return None, None
        v = self.safe(y, [col], [sign])
        return (v if math.isfinite(v) else None), None

    def safe(self, y, idx, val) -> float:
        return safe_lower_bound(self.A, self.absA, self.row_lo, self.row_hi, self.col_lo,
                                self.col_hi, idx, val, y, self.AT, self.absAT)

    def _farkas(self):
        try:
            _, has_ray, ray = self.lp.getDualRay()
        except Exception:  # noqa: BLE001 - no ray: not certified
            return None
        if not has_ray:
            return None
        ray = np.asarray(ray, float)
        v = self.safe(ray, [], [])
        return (ray, v) if v > 0 else None


@dataclass
class _Unit:
    """One unit to bound: its handle, layer, index, the column whose value it is (``z`` for
    an unstable hidden unit, ``y`` for an output) and its forward-rounding slack."""

    hd: object
    l: int
    i: int
    col: int
    slack: float


def _units(hd, l: int, slacks) -> list:
    hidden = l < len(hd.layer_cols) - 1
    if hidden and (getattr(hd, "bigm_rows", None) is None
                   or getattr(hd, "formulation", "bigm") != "bigm"):
        return []  # not a big-M encoding (add_network's formulation=): its outputs only
    if hidden:
        cols = hd.pre_cols[l]
        b = hd.bounds
        live = (cols >= 0) & (b.lower[l] < 0) & (b.upper[l] > 0)
    else:
        cols = hd.layer_cols[l]
        live = cols >= 0
    return [_Unit(hd, l, int(i), int(cols[i]), float(slacks[l][i])) for i in np.flatnonzero(live)]


def _free_binaries(hd) -> int:
    b = hd.bounds
    return int(sum(int(((bc >= 0) & (b.lower[l] < 0) & (b.upper[l] > 0)).sum())
                   for l, bc in enumerate(hd.binary_cols)))


def _max_bigm(hd) -> float:
    b = hd.bounds
    m = 0.0
    for l in range(len(hd.binary_cols)):
        un = (b.lower[l] < 0) & (b.upper[l] > 0)
        if un.any():
            m = max(m, float(np.max(np.maximum(-b.lower[l][un], b.upper[l][un]))))
    return m


def tighten(h, time_limit: float | None = 60.0, rounds: int = 3, handles=None, layers=None,
            min_improvement: float = MIN_IMPROVEMENT) -> TightenReport:
    """Optimisation-based bound tightening of every network added to the ``highspy.Highs``
    model ``h`` by :func:`~emlpress.milp.add_network` (or of ``handles``, a subset of
    :func:`~emlpress.milp.registered_handles`; ``layers``: only these layers of each, as
    ``Bounds`` numbers them, -1 the outputs), over the LP relaxation of the whole model:
    per unstable hidden unit and per output, min and max of its value subject to every row
    of ``h`` (binaries in [0, 1]), certified from the LP duals, layer by layer (each layer's
    new big-Ms are in the LP of the next), networks in the order they were added; repeated
    while a round improves (``min_improvement``), at most ``rounds`` rounds and
    ``time_limit`` seconds (None: no limit; a limit stops between LPs, with every bound found
    so far applied, all sound).

    Rewrites ``h``: each unstable unit's big-M rows ``a <= z - l (1 - d)``, ``a <= u d``
    with its new ``l``, ``u``, the bounds of its ``z`` and ``a`` columns; a unit proven
    stable gets its binary fixed (1 active, 0 inactive) and ``a`` fixed at 0 if inactive;
    outputs get their new column bounds (the next network's inputs, in a chained model).
    A network encoded otherwise than by big-M rows (no ``bigm_rows`` on its handle) has its
    outputs tightened only.
    Every handle's ``bounds`` (``method`` + ``"+obbt"``; they hold on the model's feasible
    points), ``max_bigm`` and ``tolerance_error`` follow. The model's feasible points, hence
    its optimum, are unchanged. Returns a :class:`TightenReport`; an infeasible relaxation
    gives status ``INFEASIBLE`` with its checked certificate (nothing is rewritten after it)."""
    from emlpress.milp.handle import registered_handles
    from emlpress.milp.network import NetworkHandle

    time_limit = _options.seconds("time_limit", time_limit)
    if time_limit is not None and not math.isfinite(time_limit):
        time_limit = None
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
        raise ValueError(f"rounds = {rounds!r}: the most rounds of bound tightening, an integer >= 1")
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + float(time_limit)
    regs = registered_handles(h)
    if handles is None:
        handles = [hd for hd in regs if isinstance(hd, NetworkHandle)]
    for hd in handles:
        if not isinstance(hd, NetworkHandle) or not any(hd is r for r in regs):
            raise ValueError(f"handles: {getattr(hd, 'name', hd)!r} is not a network added to this "
                             "model by add_network")
    rep = TightenReport("TIGHTENED")
    rep.binaries = (sum(_free_binaries(hd) for hd in handles),) * 2
    rep.max_bigm = (max((_max_bigm(hd) for hd in handles), default=0.0),) * 2
    if not handles or h.getNumRow() == 0:
        rep.stop = "nothing to tighten"
        return rep
    M = _Model(h, [hd for hd in regs if isinstance(hd, NetworkHandle)])
    # a float64 forward pass is off the exact value the LP bounds by at most this, per unit
    slacks = {id(hd): forward_rounding(hd.net, hd.bounds.lo, hd.bounds.hi) for hd in handles}
    mip_tol = option_value(h, "mip_feasibility_tolerance")
    stop = "rounds"
    for _ in range(int(rounds)):
        tr = time.perf_counter()
        moved = stabilised = 0
        improved = False
        for hd in handles:
            n_l = len(hd.layer_cols)
            for l in (range(n_l) if layers is None else sorted({int(k) % n_l for k in layers})):
                units = _units(hd, l, slacks[id(hd)])
                if not units:
                    continue
                lower, upper = hd.bounds.lower[l].copy(), hd.bounds.upper[l].copy()
                for u in units:
                    for sign in (1.0, -1.0):
                        v, farkas = M.minimise(u.col, sign, deadline)
                        if deadline is not None and v is None and farkas is None \
                                and time.perf_counter() >= deadline:
                            break
                        rep.lps += 1
                        if farkas is not None:
                            rep.status, rep.stop = "INFEASIBLE", "infeasible"
                            rep.certificate, rep.farkas_bound = farkas
                            rep.seconds = time.perf_counter() - t0
                            return rep
                        if v is None:
                            rep.uncertified += 1
                            continue
                        old_w = max(1.0, upper[u.i] - lower[u.i])
                        if sign > 0:
                            new = math.nextafter(v - u.slack, -math.inf)  # outward
                            if new > lower[u.i]:
                                improved |= new - lower[u.i] > min_improvement * old_w
                                lower[u.i] = new
                                moved += 1
                        else:
                            new = math.nextafter(-v + u.slack, math.inf)
                            if new < upper[u.i]:
                                improved |= upper[u.i] - new > min_improvement * old_w
                                upper[u.i] = new
                                moved += 1
                    if lower[u.i] > upper[u.i]:  # both certified: no point of the model
                        rep.status, rep.stop = "INFEASIBLE", "infeasible"
                        rep.crossed = (f"network {hd.name!r}, layer {l}, unit {u.i}: certified "
                                       f"min {lower[u.i]!r} > certified max {upper[u.i]!r}")
                        rep.seconds = time.perf_counter() - t0
                        return rep
                stabilised += _apply(h, M, hd, l, units, lower, upper)
                if deadline is not None and time.perf_counter() >= deadline:
                    break
            if deadline is not None and time.perf_counter() >= deadline:
                break
        rep.rounds += 1
        rep.stabilised += stabilised
        rep.per_round.append((moved, stabilised, time.perf_counter() - tr))
        if deadline is not None and time.perf_counter() >= deadline:
            stop = "time_limit"
            break
        if not (improved or stabilised):
            stop = "converged"
            break
    for hd in handles:
        e, _, m = integrality_error(hd.net, hd.bounds, mip_tol)
        hd.tolerance_error, hd.max_bigm = float(e.max(initial=0.0)), m
    rep.stop = stop
    rep.binaries = (rep.binaries[0], sum(_free_binaries(hd) for hd in handles))
    rep.max_bigm = (rep.max_bigm[0], max((_max_bigm(hd) for hd in handles), default=0.0))
    rep.seconds = time.perf_counter() - t0
    return rep


def _apply(h, M: _Model, hd, l: int, units, lower, upper) -> int:
    """Write layer ``l``'s new bounds (arrays over the layer) of ``units`` into ``h``, the
    LP copy ``M`` and the handle's ``bounds``; the number of units that became stable."""
    b = hd.bounds
    hidden = l < len(hd.layer_cols) - 1
    rows = hd.bigm_rows if hidden else None
    stable = 0
    for u in units:
        lo, hi = float(lower[u.i]), float(upper[u.i])
        if lo == b.lower[l][u.i] and hi == b.upper[l][u.i]:
            continue
        for tgt in (h, M):
            (tgt.changeColBounds if tgt is h else tgt.col_bounds)(u.col, lo, hi)
        if not hidden:
            continue
        a, d = int(hd.layer_cols[l][u.i]), int(hd.binary_cols[l][u.i])
        if lo >= 0.0 or hi <= 0.0:  # stable: the binary fixed, its big-M rows then exact
            stable += 1
            fix = 1.0 if lo >= 0.0 else 0.0
            alo, ahi = (lo, hi) if lo >= 0.0 else (0.0, 0.0)
            for c, clo, chi in ((d, fix, fix), (a, alo, ahi)):
                h.changeColBounds(c, clo, chi)
                M.col_bounds(c, clo, chi)
            continue
        h.changeColBounds(a, 0.0, hi)
        M.col_bounds(a, 0.0, hi)
        r2, r3 = (int(v) for v in rows[l][u.i])
        # a - z - L d <= -L and a - U d <= 0 with L <= l, U >= u: valid, and never a
        # coefficient HiGHS would drop (a dropped U would force a = 0)
        L, U = min(lo, -BIGM_FLOOR), max(hi, BIGM_FLOOR)
        for row, val in ((r2, -L), (r3, -U)):
            h.changeCoeff(row, d, val)
            M.coeff(row, d, val)
            _set_block(hd, row, d, val)
        h.changeRowBounds(r2, -_INF, -L)
        M.row_upper(r2, -L)
    new_lower = list(b.lower)
    new_upper = list(b.upper)
    new_lower[l], new_upper[l] = np.asarray(lower, float), np.asarray(upper, float)
    method = b.method if b.method.endswith("+obbt") else b.method + "+obbt"
    settled = list(b.settled_by)
    changed = (new_lower[l] != b.lower[l]) | (new_upper[l] != b.upper[l])
    settled[l] = np.where(changed, "obbt", settled[l])
    hd.bounds = dataclasses.replace(b, lower=tuple(new_lower), upper=tuple(new_upper),
                                    method=method, settled=tuple(settled))
    return stable
