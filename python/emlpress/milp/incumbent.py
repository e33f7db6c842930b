"""An incumbent at once: verified points of a HiGHS model with embedded networks, found from
the networks themselves and passed to HiGHS as a MIP start (:func:`find_incumbent`,
:func:`mip_start`; :func:`emlpress.milp.solve` calls the latter before HiGHS runs).

Branch and bound on big-M networks can run for minutes without a feasible point (the optimal
adversary on Serra's MNIST 784-100-100-10 with an l1 ball of radius 5: none in 60 s although
the image itself is feasible). The points come from these sources, run in the order (0),
(c) from (0)'s point, (b) from the best point so far, then (a) on the relaxation's optimum
and (b) again where that is better (the attacks need only LPs over the input rows, cheap
next to one LP of the whole model):

(0) the cheapest: a point of the rows that involve no model's columns (one feasibility LP
    over them, or the middle of their box) with every model evaluated exactly there: a
    verified point already where no row of the user's binds the models' outputs;
(a) **completion**: a point that satisfies the relaxation of the models' encodings (its
    optimum, the user's own integer columns kept integer; or a start the user gave with
    ``h.setSolution``) has every embedded model evaluated exactly at its inputs
    (:func:`emlpress.milp.repair.exact_point`), and the integer columns those models own (a
    network's binaries: its phases) are fixed there; the LP re-solved with them fixed is then
    a true point of the MILP, because with a network's phases fixed its big-M rows are exactly
    its linear region. The user's own integer columns stay integer (a small MILP then). Where
    fixing every model at once leaves no feasible LP (chained networks whose later inputs
    moved), the models are fixed one after another, each at the phases of its inputs in the
    previous LP's point.
(b) **local search over activation regions**: at a region's LP optimum, a unit whose
    pre-activation is 0 can flip its phase without leaving the point's feasibility, and the
    reduced cost of its binary says whether the objective improves that way; the improving
    flips are made (all at once, else one by one) and the LP re-solved, while it improves.
(c) **attacks**: conditional-gradient ascent (Frank-Wolfe) of the objective through the
    networks over the model's linear rows on the networks' inputs: the gradient of a ReLU
    network by one masked backward pass (:func:`emlpress.bounds.witnesses.values_and_gradients`),
    the step toward the vertex an LP over those rows gives (closed form on a box), so every
    iterate is feasible for those rows without a projection; several seeded starts, a line
    search by forward passes. Each start's best point is completed as in (a).

Every point is verified as :func:`~emlpress.milp.solve` verifies HiGHS' answers
(:func:`emlpress.milp.repair.verified`: every row within the model's primal feasibility
tolerance, every registered model against its own evaluation); nothing unverified is returned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import highspy
import numpy as np
import scipy.sparse as sp

from emlpress._highs import option_value
from emlpress.bounds.witnesses import values_and_gradients
from emlpress.milp import repair as R
from emlpress.milp.handle import registered_handles

__all__ = ["Incumbent", "find_incumbent", "mip_start", "START_SHARE", "START_MIN_S", "START_MAX_S",
           "SMALL_MODEL"]

#: :func:`mip_start`'s budget: this share of solve()'s time limit, at least START_MIN_S (a
#: trivially feasible model gets its point even under a limit of ~0) and at most START_MAX_S
START_SHARE, START_MIN_S, START_MAX_S = 0.1, 1.0, 10.0
#: a model whose embedded models have at most this many binaries (``n_binaries``: a
#: network's unstable units) gets no start unless its time limit is under START_MIN_S: HiGHS
#: finds its own incumbent at once there, and solve() stays as fast
SMALL_MODEL = 64
#: attacks: seeded starts, conditional-gradient steps per start, and the step lengths tried
ATTACK_STARTS, ATTACK_STEPS = 4, 15
_STEPS = np.array([1.0, 0.5, 0.25, 0.1, 0.03])
#: the attacks' share of the budget left after (a) (the rest is the local search's)
ATTACK_SHARE = 0.4
#: a pre-activation within this (relative to max(1, its big-M)) of 0 can flip its phase
TIGHT_RTOL = 1e-7
#: single flips tried per local-search step when flipping every improving unit at once fails
SINGLE_FLIPS = 8
#: the LPs' feasibility tolerances (the points must pass solve()'s verification)
LP_TOL = 1e-9


@dataclass
class Incumbent:
    """A verified point of the whole model, or why there is none. ``values`` holds every
    column's value (shape ``(num_col,)``; None when nothing was found), ``objective`` the
    model's objective there (``c^T x + offset``), ``how`` the source that found it
    ("completion of the LP relaxation", "local search", "attack", "completion of the start
    given"), ``reason`` why none was found, ``seconds`` the time spent and ``tried`` each
    source's (name, verified objective or why it failed, seconds since the start) in the
    order they ran."""

    values: np.ndarray | None
    objective: float
    how: str = ""
    reason: str = ""
    seconds: float = 0.0
    tried: list = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.values is not None


class _Search:
    """The model read once, and one warm-started LP instance of its relaxation."""

    def __init__(self, h, deadline: float, tol: float):
        self.h, self.deadline, self.tol = h, deadline, tol
        self.M = R.model_arrays(h)
        self.handles = registered_handles(h)
        self.maximize = h.getObjectiveSense()[1] == highspy.ObjSense.kMaximize
        self.sign = 1.0 if self.maximize else -1.0  # sign * objective is maximised
        n = self.M.col_lo.size
        # the columns each model's encoding sets (inputs excluded): from one evaluation
        mid = np.clip(np.where(np.isfinite(self.M.col_lo), self.M.col_lo, 0.0), None, self.M.col_hi)
        self.owned, self.internal = [], np.zeros(n, bool)
        for hd in self.handles:
            ec = hd._exact_columns(mid[hd.input_cols])
            if ec is None:
                self.owned = None  # a model that cannot be evaluated column by column
                return
            cols = np.setdiff1d(np.asarray(ec[0], np.int64), hd.input_cols)
            self.internal[cols] = True
            self.owned.append(cols[self.M.integer[cols]])
        self.fixable = np.zeros(n, bool)
        for cols in self.owned:
            self.fixable[cols] = True
        self.user_int = np.flatnonzero(self.M.integer & ~self.fixable).astype(np.int32)
        lp = self.M.lp
        lp.integrality_ = []
        try:
            self.lp = highspy.Highs()
            self.lp.silent()
            for opt in ("primal_feasibility_tolerance", "dual_feasibility_tolerance"):
                self.lp.setOptionValue(opt, LP_TOL)
            self.lp.passModel(lp)
        finally:  # the copy is the repair's too
            lp.integrality_ = self.M.integrality
        self.fixed = np.zeros(n, bool)
        self.last, self.status = None, ""  # the last run's (values, duals) when optimal

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def objective(self, v) -> float:
        return float(self.M.cost @ v + self.M.offset)

    def _run(self, mip: bool = False) -> np.ndarray | None:
        """Solve the instance as it stands (the user's integers integer when ``mip``)."""
        if self.left() <= 0:
            return None
        g = self.lp
        if mip and self.user_int.size:
            g.changeColsIntegrality(self.user_int.size, self.user_int,
                                    np.full(self.user_int.size, highspy.HighsVarType.kInteger))
        # HiGHS' clock runs on across the runs of one instance: the limit is on its total
        g.setOptionValue("time_limit", g.getRunTime() + max(1e-3, self.left()))
        self.last = None
        try:
            g.run()
            if g.getModelStatus().name == "kUnknown":  # a warm start gone wrong: once more
                g.clearSolver()
                g.run()
            self.status = g.getModelStatus().name
            if self.status == "kOptimal":  # read before the integrality is reset (kNotset)
                sol = g.getSolution()
                lp = not (mip and self.user_int.size)  # a MIP's duals mean nothing
                self.last = (np.asarray(sol.col_value, np.float64),
                             np.asarray(sol.col_dual, np.float64) if lp else None)
        finally:
            if mip and self.user_int.size:
                g.changeColsIntegrality(self.user_int.size, self.user_int,
                                        np.full(self.user_int.size, highspy.HighsVarType.kContinuous))
        return None if self.last is None else self.last[0]

    def fix(self, cols, vals) -> None:
        """Fix ``cols`` at ``vals`` and free every other owned integer column."""
        free = np.flatnonzero(self.fixed)
        if free.size:
            self.lp.changeColsBounds(free.size, free.astype(np.int32), self.M.col_lo[free],
                                     self.M.col_hi[free])
            self.fixed[:] = False
        cols = np.asarray(cols, np.int32)
        if cols.size:
            v = np.rint(vals)
            self.lp.changeColsBounds(cols.size, cols, v, v)
            self.fixed[cols] = True

    def verified(self, w, how) -> R.Candidate | None:
        return R.verified(self.M, self.handles, R.exact_point(self.M, self.handles, w), self.tol, how)

    def complete(self, v: np.ndarray, how: str) -> tuple[R.Candidate | None, str]:
        """(a): the point of the LP with the owned integers fixed at the phases of ``v``'s
        inputs, verified (with the reason when there is none)."""
        e = R.exact_point(self.M, self.handles, v)
        if e is None:
            return None, "a model cannot be evaluated column by column"
        # the point itself with every model evaluated exactly: a verified point already where
        # no row of the user's binds the models' outputs (no LP needed)
        c0 = R.verified(self.M, self.handles, e, self.tol, how)
        c, why = self._fixed(e, how)
        return R.better(c0, c, self.maximize), ("" if c0 is not None else why)

    def _fixed(self, e, how):
        """The LP with the owned integers fixed at their values in ``e``, verified."""
        fix = np.flatnonzero(self.fixable)
        self.fix(fix, e[fix])
        w = self._run(mip=True)
        if w is None:  # chained models: fix them one after another
            for k, cols in enumerate(self.owned):
                done = np.concatenate([np.zeros(0, np.int64)] + self.owned[:k + 1])
                self.fix(done, e[done])
                w = self._run(mip=True)
                if w is None:
                    name = self.handles[k].name
                    return None, (f"the phases of model {name!r} at the point leave no feasible "
                                  "LP" if self.left() > 0 else "out of time")
                if k + 1 < len(self.owned):
                    e2 = R.exact_point(self.M, self.handles, w)
                    nxt = self.owned[k + 1]
                    e[nxt] = e2[nxt]
        c = self.verified(w, how)
        return c, "" if c is not None else "the fixed LP's point failed verification"

    def relaxation(self) -> np.ndarray | None:
        """The relaxation of the models' encodings only: the user's integers stay integer
        (a one-hot choice feeding a network must pick one value, or no phase fits the point),
        else, out of time for that, the LP relaxation."""
        self.fix([], [])
        v = self._run(mip=True) if self.user_int.size else None
        return v if v is not None else self._run()

    # --- (b) local search over activation regions ------------------------------------
    def local_search(self, cand: R.Candidate) -> R.Candidate:
        """Walk from ``cand``'s region to neighbouring ones while the objective improves
        (module docstring, (b)). The instance holds ``cand``'s phases fixed."""
        best = cand
        nets = [hd for hd in self.handles if hasattr(hd, "pre_cols")]
        pairs = [(np.concatenate([b[b >= 0] for b in hd.binary_cols] or [np.zeros(0, np.int64)]),
                  np.concatenate([p[b >= 0] for b, p in zip(hd.binary_cols, hd.pre_cols)]
                                 or [np.zeros(0, np.int64)])) for hd in nets]
        if not pairs:
            return best
        bcols = np.concatenate([p[0] for p in pairs]).astype(np.int64)
        pcols = np.concatenate([p[1] for p in pairs]).astype(np.int64)
        scale = np.maximum(1.0, np.maximum(np.abs(self.M.col_lo[pcols]), np.abs(self.M.col_hi[pcols])))
        fix = np.flatnonzero(self.fixable)
        phase = np.rint(best.values[fix])
        pos = np.searchsorted(fix, bcols)
        while self.left() > 0 and self.last is not None:
            w, dual = self.last
            if dual is None:  # the user's integers: no reduced costs, single flips in order
                dual = np.zeros_like(w)
            z = w[pcols]
            tight = np.abs(z) <= TIGHT_RTOL * scale
            d = phase[pos]
            # objective rate (maximised) of moving the binary toward its other value
            rate = self.sign * dual[bcols] * np.where(d > 0.5, -1.0, 1.0)
            # the reduced cost is 0 where the point is degenerate (the unit's output column
            # at its bound 0 carries the dual): those flips are tried singly, after
            gain = np.where(tight, rate, -np.inf)
            order = np.argsort(-gain)
            order = order[gain[order] >= -1e-12]
            if not order.size:
                break
            up = order[gain[order] > 1e-9 * max(1.0, abs(best.objective))]
            moved = False
            tries = ([up] if up.size > 1 else []) + [order[i:i + 1] for i in
                                                     range(min(SINGLE_FLIPS, order.size))]
            for flip in tries:
                trial = phase.copy()
                trial[pos[flip]] = 1.0 - trial[pos[flip]]
                self.fix(fix, trial)
                w2 = self._run(mip=True)
                if w2 is None:
                    continue
                c = self.verified(w2, "local search")
                if c is not None and self.sign * (c.objective - best.objective) > 1e-9 * max(1.0, abs(best.objective)):
                    best, phase, moved = c, trial, True
                    break
                if self.left() <= 0:
                    break
            if not moved:  # a local optimum (or out of time)
                break
            # the instance now holds the move's region and self.last its optimum: go on
        return best

    # --- (c) attacks ---------------------------------------------------------------
    def polytope(self):
        """(F: the columns no model sets, the position of each column in F (-1: none), the
        linear maximisation oracle over the rows on F alone (None: F's box only), F's box)."""
        if getattr(self, "_poly", None) is None:
            M, free = self.M, ~self.internal
            F = np.flatnonzero(free)
            where = np.full(free.size, -1)
            where[F] = np.arange(F.size)
            rows_in = np.flatnonzero(np.asarray((abs(M.A[:, ~free]) > 0).sum(1)).ravel() == 0)
            A = M.A[rows_in][:, F]
            lo, hi = M.col_lo[F], M.col_hi[F]
            lmo = _Vertex(A, M.row_lo[rows_in], M.row_hi[rows_in], lo, hi) if A.nnz else None
            self._poly = (F, where, lmo, lo, hi)
        return self._poly

    def quick_point(self) -> np.ndarray | None:
        """A point of the rows on the columns no model sets (a feasibility LP over them, or
        the middle of their box), the models' columns left to the exact evaluation."""
        F, _, lmo, lo, hi = self.polytope()
        if lmo is None:
            p = np.where(np.isfinite(lo) & np.isfinite(hi), (lo + hi) / 2,
                         np.clip(0.0, lo, hi))
        else:
            p = lmo.argmax(np.zeros(F.size), self.deadline)
            if p is None:
                return None
        v = np.zeros(self.M.col_lo.size)
        v[F] = p
        return v

    def attack(self, base: np.ndarray, seed: int, deadline: float) -> list[np.ndarray]:
        """Conditional-gradient ascent from seeded starts (module docstring, (c)); the best
        point of each start, as a full column vector (``base`` elsewhere)."""
        M = self.M
        free = ~self.internal
        nets = [hd for hd in self.handles if hasattr(hd, "net") and free[hd.input_cols].all()
                and np.any(M.cost[hd.output_cols] != 0)]
        F, where, lmo, lo, hi = self.polytope()
        if not nets or (lmo is None and not (np.isfinite(lo).all() and np.isfinite(hi).all())):
            return []
        c_free = self.sign * M.cost[F]

        def value(X):  # (S, |F|) -> the objective the networks see, maximised
            val = X @ c_free
            for hd in nets:
                val = val + self.sign * (hd.net.forward(X[:, where[hd.input_cols]]) @ M.cost[hd.output_cols])
            return val

        def gradient(X):
            G = np.tile(c_free, (len(X), 1))
            for hd in nets:
                k, cy = len(hd.net.weights) - 1, M.cost[hd.output_cols]
                for j in np.flatnonzero(cy):
                    _, g = values_and_gradients(hd.net, X[:, where[hd.input_cols]], k, int(j))
                    G[:, where[hd.input_cols]] += self.sign * cy[j] * g
            return G

        def vertex(g):
            if lmo is None:
                return np.where(g > 0, hi, lo)
            return lmo.argmax(g, deadline)

        rng = np.random.default_rng(seed)
        X = [base[F]]
        for _ in range(ATTACK_STARTS - 1):
            s = vertex(rng.standard_normal(F.size))
            if s is not None:  # between the relaxation's point and a random vertex
                X.append(base[F] + rng.uniform(0.3, 1.0) * (s - base[F]))
        X = np.array(X)
        val = value(X)
        for _ in range(ATTACK_STEPS):
            if time.perf_counter() > deadline:
                break
            G = gradient(X)
            S = []
            for i in range(len(X)):
                s = vertex(G[i])
                S.append(X[i] if s is None else s)
            D = np.array(S) - X
            trial = X[:, None, :] + _STEPS[None, :, None] * D[:, None, :]  # (S, steps, |F|)
            tv = value(trial.reshape(-1, F.size)).reshape(len(X), -1)
            k = np.argmax(tv, axis=1)
            up = tv[np.arange(len(X)), k] > val
            if not up.any():
                break
            X[up] = trial[np.flatnonzero(up), k[up]]
            val[up] = tv[np.flatnonzero(up), k[up]]
        out = []
        for i in np.argsort(-val):
            v = base.copy()
            v[F] = X[i]
            out.append(v)
        return out


class _Vertex:
    """The linear maximisation oracle of the attacks: a vertex of ``{x in [lo, hi] :
    row_lo <= A x <= row_hi}`` maximising ``g . x``, on one warm-started instance."""

    def __init__(self, A, row_lo, row_hi, lo, hi):
        self.h = highspy.Highs()
        self.h.silent()
        self.h.setOptionValue("presolve", "off")  # warm starts across objectives
        n = A.shape[1]
        A = sp.csr_matrix(A)
        self.h.addCols(n, np.zeros(n), lo, hi, 0, np.array([], np.int32), np.array([], np.int32),
                       np.array([], np.float64))
        self.h.addRows(A.shape[0], row_lo, row_hi, A.nnz, A.indptr[:-1].astype(np.int32),
                       A.indices.astype(np.int32), A.data.astype(np.float64))
        self.h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        self.idx = np.arange(n, dtype=np.int32)

    def argmax(self, g, deadline: float) -> np.ndarray | None:
        left = deadline - time.perf_counter()
        if left <= 0:
            return None
        self.h.changeColsCost(self.idx.size, self.idx, np.asarray(g, np.float64))
        self.h.setOptionValue("time_limit", self.h.getRunTime() + max(1e-3, left))  # its clock runs on
        self.h.run()
        if self.h.getModelStatus().name != "kOptimal":
            return None
        return np.asarray(self.h.getSolution().col_value, np.float64)


def find_incumbent(h, time_limit: float = START_MAX_S, seed: int = 0,
                   tol: float | None = None, first_limit: float | None = None) -> Incumbent:
    """A verified point of the HiGHS model ``h`` (every column: the user's and every
    registered model's), found by the sources of the module docstring within ``time_limit``
    seconds (a limit each LP also gets: the search stops at it), the attacks seeded by
    ``seed``; the first point may take up to
    ``first_limit`` seconds (default ``time_limit``) where that is longer: a model with a
    point at hand is not left without one because the budget was small. ``tol``: the relative row violation a point may have (default: ``h``'s
    ``primal_feasibility_tolerance``, what :func:`~emlpress.milp.solve` verifies with).

    Returns an :class:`Incumbent`; when nothing is found its ``values`` are None and
    ``reason`` says why (the LP relaxation infeasible, out of time, a model that cannot be
    evaluated column by column...). ``h`` itself is not changed."""
    t0 = time.perf_counter()
    deadline = t0 + float(time_limit)
    tol = option_value(h, "primal_feasibility_tolerance") if tol is None else float(tol)
    nan = float("nan")
    given = h.getSolution()
    given = np.asarray(given.col_value, np.float64) if given.value_valid else None
    first = max(deadline, t0 + float(first_limit if first_limit is not None else time_limit))
    s = _Search(h, first, tol)
    if s.owned is None:
        return Incumbent(None, nan, reason="a registered model cannot be evaluated column by "
                         "column (no _exact_columns)", seconds=time.perf_counter() - t0)
    best, tried = None, []

    def take(c, how_failed):
        nonlocal best
        at = time.perf_counter() - t0
        tried.append((c.how, c.objective, at) if c is not None else how_failed + (at,))
        if c is not None and (best is None or s.sign * (c.objective - best.objective) > 0):
            best = c
        return c

    def climb():  # (b) from the best point: its region's optimum, then the neighbours'
        if best is not None and s.left() > 0:
            s.fix(np.flatnonzero(s.fixable), best.values[s.fixable])
            if s._run(mip=True) is not None:
                take(s.local_search(best), ("local search", "no point"))

    if given is not None and given.size == s.M.col_lo.size:
        c, why = s.complete(given, "completion of the start given")
        take(c, ("completion of the start given", why))
    # (0) the cheapest: a point of the rows the models do not enter, the models evaluated
    q = s.quick_point()
    if q is not None and best is None:
        take(s.verified(q, "exact evaluation at a point of the input rows"),
             ("exact evaluation at a point of the input rows", "a row binds the models' outputs"))
    if best is not None:
        s.deadline = deadline  # past the first point, the budget
    # (c) attacks from there (LPs over the input rows only: cheap), each completed as in (a)
    if q is not None and s.left() > 0:
        points = s.attack(q, seed, time.perf_counter() + ATTACK_SHARE * s.left())
        for p in points:  # the points themselves, the models evaluated: no LP
            take(s.verified(p, "attack"), ("attack", "a row binds the models' outputs"))
        if best is not None:
            s.deadline = deadline
        for p in points:  # then each one's region optimum (one LP of the whole model each)
            if s.left() <= 0:
                break
            c, why = s.complete(p, "attack, its region's optimum")
            take(c, ("attack, its region's optimum", why))
            if best is not None:
                s.deadline = deadline
    climb()
    # (a) the relaxation completed: the source where the user's rows bind the models'
    # outputs (chained weeks, a budget on outputs), and the reason when there is no point
    if best is None or s.left() > 0:
        v = s.relaxation()
        if v is None:
            status = s.status
            why = ("the LP relaxation is infeasible: the model has no point" if status == "kInfeasible"
                   else f"the LP relaxation ended {status.removeprefix('k') or 'out of time'}")
            tried.append(("LP relaxation", why, time.perf_counter() - t0))
        else:
            before = best
            c, why = s.complete(v, "completion of the LP relaxation")
            take(c, ("completion of the LP relaxation", why))
            s.deadline = deadline
            if best is not before:
                climb()
    seconds = time.perf_counter() - t0
    if best is None:
        reasons = "; ".join(f"{a}: {b}" for a, b, _ in tried if isinstance(b, str))
        return Incumbent(None, nan, reason=reasons or "out of time", seconds=seconds, tried=tried)
    return Incumbent(best.values, best.objective, best.how, "", seconds, tried)


def check_start(start):
    """``start`` as :func:`mip_start` takes it: "auto" (or True), or None (or False: off);
    anything else a ValueError naming the option."""
    if start is None or start is False:
        return None
    if start is True or (isinstance(start, str) and start == "auto"):
        return "auto"
    raise ValueError(f"start must be 'auto' or None, got {start!r}")


def mip_start(h, start="auto", time_limit: float | None = None) -> Incumbent | None:
    """What :func:`~emlpress.milp.solve` runs before HiGHS: with ``start="auto"`` and a model
    holding registered models and integer columns, :func:`find_incumbent` within
    ``START_SHARE`` of ``time_limit`` (at least ``START_MIN_S``, at most ``START_MAX_S``
    seconds; the first point up to ``START_MAX_S`` in any case), its point passed to HiGHS by ``h.setSolution``. None when ``start`` is None or
    False, or there is nothing to start (no registered model, no integer column, at most
    ``SMALL_MODEL`` binaries in the models and a time limit of at least ``START_MIN_S``, or
    every model's inputs fixed)."""
    if check_start(start) is None:
        return None
    if not registered_handles(h):
        return None
    lp = h.getLp()
    if not any(int(t) != 0 for t in lp.integrality_):
        return None
    # the models' own binaries (a network's phases): what makes HiGHS slow to a first point
    n_bin = sum(int(getattr(hd, "n_binaries", 0)) for hd in registered_handles(h))
    if n_bin <= SMALL_MODEL and (time_limit is None or time_limit >= START_MIN_S):
        return None
    ins = np.concatenate([hd.input_cols for hd in registered_handles(h)]).astype(np.int64)
    if np.all(np.asarray(lp.col_lower_)[ins] == np.asarray(lp.col_upper_)[ins]):
        return None  # every model's input fixed: HiGHS' own propagation gives the point
    budget = START_MAX_S if time_limit is None else START_SHARE * float(time_limit)
    inc = find_incumbent(h, time_limit=min(START_MAX_S, max(START_MIN_S, budget)),
                         first_limit=START_MAX_S)
    if inc:
        st = h.setSolution(int(inc.values.size), np.arange(inc.values.size, dtype=np.int32), inc.values)
        if st != highspy.HighsStatus.kOk:  # still solve()'s answer if HiGHS ends without one
            inc.reason = f"HiGHS did not take the start ({st.name})"
    return inc
