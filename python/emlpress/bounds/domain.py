"""Input domains: a box with, optionally, linear constraints and an l1 ball.

``Domain(lo, hi, A_ub, b_ub, A_eq, b_eq, l1=(center, eps))`` is the set of inputs ``x`` with
``lo <= x <= hi``, ``A_ub x <= b_ub``, ``A_eq x = b_eq`` and ``||x - center||_1 <= eps``.
Every bound method takes one (``domain=``, or the same keywords); its bounds are sound on
that set only, and :class:`~emlpress.bounds.Bounds` records it so that they are refused on a
larger one.

On construction the arguments are checked (one line naming the argument at fault), the
domain is proven non-empty or refused with :class:`EmptyDomainError` carrying a checked
certificate, and the box is tightened to a rigorous outer box of the domain (``box_lo``,
``box_hi``): per input, the closed form over the l1 ball and an LP over the linear rows,
each LP value certified from its duals (Neumaier-Shcherbina, ``kernels.safe_lower_bound``),
so every box method gains from the constraints. ``sample`` draws points of the domain
(rejection from the box, else hit-and-run) for verification and tests. For the exact
searches: ``holds`` (membership in exact arithmetic, the test every witness passes),
``admit`` (points pulled into the domain toward its interior point, or dropped) and
``excludes_boxes`` (sub-boxes certified to miss the domain, in closed form).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from emlpress import _highs, kernels
from emlpress.bounds.rounding import _UNIT
from emlpress.network import Network, check_box

__all__ = ["Domain", "EmptyDomainError", "resolve"]

#: HiGHS statuses whose row duals are a valid (optimal) dual solution
_OK = {"Optimal"}
#: the box is tightened by two certified LPs per input a linear row involves when at most
#: this many inputs are; beyond, by bound propagation over the rows alone (an MNIST budget
#: row over 784 pixels: 1,568 LPs took 5 s, 19 s with an l1 ball, on 2 loaded cores)
LP_TIGHTEN_MAX = 64


class EmptyDomainError(ValueError):
    """The constraints admit no input. ``certificate`` holds the row multipliers ``y`` over
    :meth:`Domain.rows` (with a violation column per constraint, the elastic LP) and
    ``bound`` the rigorous lower bound > 0 they prove on the total violation: no input
    satisfies every constraint."""

    def __init__(self, message: str, certificate: np.ndarray | None = None, bound: float = math.nan):
        super().__init__(message)
        self.certificate, self.bound = certificate, bound


def _matrix(name: str, A, n: int) -> np.ndarray:
    A = np.array(A, dtype=np.float64, copy=True)
    if A.ndim == 1 and n and A.size == n:
        A = A[None, :]
    if A.ndim != 2 or A.shape[1] != n:
        raise ValueError(f"{name} has shape {A.shape}, expected (m, {n}) (one row per constraint)")
    bad = np.argwhere(~np.isfinite(A))
    if bad.size:
        r, c = (int(v) for v in bad[0])
        raise ValueError(f"{name}[{r}, {c}] = {A[r, c]} is not finite")
    return A


def _vector(name: str, b, m: int) -> np.ndarray:
    b = np.array(b, dtype=np.float64, copy=True).reshape(-1) if np.ndim(b) <= 1 else np.asarray(b)
    if b.shape != (m,):
        raise ValueError(f"{name} has shape {np.shape(b)}, expected ({m},) (one value per row)")
    bad = np.flatnonzero(~np.isfinite(b))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] = {b[bad[0]]} is not finite")
    return b


def _pair(A_name, A, b_name, b, n):
    if A is None and b is None:
        return None, None
    if A is None or b is None:
        raise ValueError(f"give both {A_name} and {b_name}, or neither")
    A = _matrix(A_name, A, n)
    return A, _vector(b_name, b, A.shape[0])


def _frozen(*arrays):
    for a in arrays:
        if a is not None:
            a.flags.writeable = False


class Domain:
    """The inputs ``x`` with ``lo <= x <= hi``, ``A_ub x <= b_ub``, ``A_eq x = b_eq`` and
    ``||x - center||_1 <= eps`` (``l1=(center, eps)``); every constraint but the box optional.

    Shapes: ``lo``, ``hi``, ``center`` ``(n,)``; ``A_ub`` ``(m_ub, n)``, ``b_ub`` ``(m_ub,)``;
    ``A_eq`` ``(m_eq, n)``, ``b_eq`` ``(m_eq,)``; ``eps >= 0`` a float, in the inputs' units.
    Immutable. Attributes: ``lo``/``hi`` (the box given), ``box_lo``/``box_hi`` (a rigorous
    box around the domain, inside ``[lo, hi]``), ``point`` (an input of the domain, up to
    the LP's feasibility tolerance 1e-9 for equality rows). Raises ``ValueError`` naming
    the argument for NaN/inf, wrong shapes or ``eps < 0``, :class:`EmptyDomainError` when
    the constraints are proven to admit no input."""

    def __init__(self, lo, hi, A_ub=None, b_ub=None, A_eq=None, b_eq=None, l1=None):
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        if lo.ndim != 1:
            raise ValueError(f"lo must be a vector, got shape {lo.shape}")
        n = lo.size
        lo, hi = check_box(n, lo, hi, "domain")
        self.lo, self.hi = lo.copy(), hi.copy()
        self.A_ub, self.b_ub = _pair("A_ub", A_ub, "b_ub", b_ub, n)
        self.A_eq, self.b_eq = _pair("A_eq", A_eq, "b_eq", b_eq, n)
        self.center, self.eps = None, None
        if l1 is not None:
            try:
                center, eps = l1
            except (TypeError, ValueError):
                raise ValueError("l1 must be a pair (center, eps)") from None
            center = np.array(center, dtype=np.float64, copy=True)
            if center.shape != (n,):
                raise ValueError(f"l1 center has shape {center.shape}, expected ({n},)")
            bad = np.flatnonzero(~np.isfinite(center))
            if bad.size:
                raise ValueError(f"l1 center[{bad[0]}] = {center[bad[0]]} is not finite")
            eps = float(eps)
            if not (math.isfinite(eps) and eps >= 0):
                raise ValueError(f"l1 eps = {eps!r} must be a finite number >= 0")
            self.center, self.eps = center, eps
        _frozen(self.lo, self.hi, self.A_ub, self.b_ub, self.A_eq, self.b_eq, self.center)
        self.box_lo, self.box_hi = self.lo.copy(), self.hi.copy()
        self.point = np.clip((lo + hi) / 2, lo, hi)
        self._vertices = np.empty((0, n))
        self._lp = None
        self._inner = None  # a point deep inside (hit-and-run's start), computed on demand
        self._radius = 0.0  # the Chebyshev radius found with it (0: none, or a flat domain)
        if self.center is not None:
            self._tighten_l1()
        if self.n_rows_linear:
            self._tighten_lp()
        self.box_lo = np.minimum(self.box_lo, self.box_hi)  # equal when the domain is a point
        if self.A_eq is not None:  # LP solutions meet the rows within HiGHS' tolerance (1e-7,
            # far from 1e-9 on domains of scale 1e-5): onto the equality rows by least squares
            r = self.A_eq @ self.point - self.b_eq
            q = np.clip(self.point - self.A_eq.T @ np.linalg.lstsq(self.A_eq @ self.A_eq.T, r, rcond=None)[0],
                        self.lo, self.hi)
            if self._violation(q) < self._violation(self.point):
                self.point = q
        # LP solutions meet the rows within HiGHS' tolerance: prefer a point exactly inside
        for x in [self.point] + ([np.clip(self.center, self.lo, self.hi)] if self.center is not None else []):
            if self.certainly_contains(x[None, :])[0]:
                self.point = np.array(x)
                break
        _frozen(self.box_lo, self.box_hi, self.point)

    def __getstate__(self):  # the cached HiGHS instance does not pickle (Dask, processes)
        state = dict(self.__dict__)
        state["_lp"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        _frozen(self.lo, self.hi, self.A_ub, self.b_ub, self.A_eq, self.b_eq, self.center,
                self.box_lo, self.box_hi, self.point)

    # ---- construction helpers -------------------------------------------------------
    @classmethod
    def l1_ball(cls, center, eps: float, lo, hi) -> "Domain":
        """The inputs of the box ``[lo, hi]`` within l1 distance ``eps`` of ``center``."""
        return cls(lo, hi, l1=(center, eps))

    @property
    def n_in(self) -> int:
        return self.lo.size

    @property
    def n_rows_linear(self) -> int:
        return (0 if self.A_ub is None else self.A_ub.shape[0]) + (0 if self.A_eq is None else self.A_eq.shape[0])

    @property
    def constrained(self) -> bool:
        """True when anything but the box constrains the inputs."""
        return self.n_rows_linear > 0 or self.center is not None

    def __repr__(self) -> str:
        parts = [f"n_in={self.n_in}"]
        if self.A_ub is not None:
            parts.append(f"A_ub: {self.A_ub.shape[0]} rows")
        if self.A_eq is not None:
            parts.append(f"A_eq: {self.A_eq.shape[0]} rows")
        if self.center is not None:
            parts.append(f"l1 ball eps={self.eps:g}")
        return f"Domain({', '.join(parts)})"

    def rows(self) -> dict:
        """The constraints as LP rows over the columns ``x`` (``n_in``, in ``[lo, hi]``) and,
        with an l1 ball, ``t`` (``n_in``, in ``[0, eps]``, ``t_i >= |x_i - center_i|``,
        ``sum t <= eps``): ``aux_lower``, ``aux_upper`` (the ``t`` columns), ``row_lower``,
        ``row_upper`` and CSR ``starts``, ``indices``, ``values``: the arguments of
        ``kernels.LpRelaxation.add_domain``."""
        n = self.n_in
        starts, idx, val, rl, ru = [0], [], [], [], []

        def row(cols, coefs, lo_, hi_):
            idx.extend(int(c) for c in cols)
            val.extend(float(v) for v in coefs)
            starts.append(len(idx))
            rl.append(lo_)
            ru.append(hi_)

        for A, b, eq in ((self.A_ub, self.b_ub, False), (self.A_eq, self.b_eq, True)):
            if A is None:
                continue
            for i in range(A.shape[0]):
                nz = np.flatnonzero(A[i])
                row(nz, A[i, nz], float(b[i]) if eq else -math.inf, float(b[i]))
        aux_lo, aux_hi = [], []
        if self.center is not None:
            aux_lo, aux_hi = [0.0] * n, [self.eps] * n
            for i in range(n):  # t_i - x_i >= -c_i and t_i + x_i >= c_i
                row([n + i, i], [1.0, -1.0], -float(self.center[i]), math.inf)
                row([n + i, i], [1.0, 1.0], float(self.center[i]), math.inf)
            row(range(n, 2 * n), [1.0] * n, -math.inf, self.eps)
        return {"aux_lower": aux_lo, "aux_upper": aux_hi, "row_lower": rl, "row_upper": ru,
                "starts": starts, "indices": idx, "values": val}

    def _tighten_l1(self) -> None:
        """Closed form: with d_j the distance of center_j to [lo_j, hi_j] and S their sum,
        x_i ranges over [c_i - r_i, c_i + r_i] with r_i = eps - (S - d_i) (the other inputs at
        their points nearest the centre); empty when S > eps. Rounded outward: the box is
        widened and emptiness claimed only past the rounding of S."""
        c, eps = self.center, self.eps
        d = np.maximum(np.maximum(self.lo - c, c - self.hi), 0.0)
        S = float(np.sum(d))
        err = 2 * (self.n_in + 3) * _UNIT * (S + eps + float(np.abs(c).sum()) + 1e-300)
        if S - err > eps:
            raise EmptyDomainError(
                f"l1: the ball ||x - center||_1 <= {eps!r} does not meet the box [lo, hi]: "
                f"its l1 distance from the centre is {S!r} (certificate: the closed form, "
                f"rounding error below {err:.2g})", None, S - err - eps)
        r = eps - (S - d) + err
        self.box_lo = np.maximum(self.box_lo, np.nextafter(c - r, -np.inf))
        self.box_hi = np.minimum(self.box_hi, np.nextafter(c + r, np.inf))
        self.point = np.clip(c, self.lo, self.hi)  # the box point nearest the centre

    def _columns(self):
        rows = self.rows()
        col_lo = np.concatenate([self.box_lo, rows["aux_lower"]])
        col_hi = np.concatenate([self.box_hi, rows["aux_upper"]])
        return rows, col_lo, col_hi

    def _tighten_lp(self) -> None:
        """Emptiness (elastic LP, certified), bound propagation over the rows and, when at
        most LP_TIGHTEN_MAX inputs are involved, per such input its least and greatest value
        over the domain (:meth:`min_linear`)."""
        self._propagate()
        rows, col_lo, col_hi = self._columns()
        self._check_nonempty(rows, col_lo, col_hi)
        targets = set()
        for A in (self.A_ub, self.A_eq):
            if A is not None:
                targets.update(np.flatnonzero(np.any(A != 0, axis=0)).tolist())
        targets = np.array(sorted(targets), dtype=np.intp)
        if not targets.size or targets.size > LP_TIGHTEN_MAX:
            return
        E = np.zeros((2 * targets.size, self.n_in))
        E[np.arange(targets.size), targets] = 1.0
        E[targets.size + np.arange(targets.size), targets] = -1.0
        verts = []
        v = self.min_linear(E, points=verts)
        self.box_lo[targets] = np.maximum(self.box_lo[targets], v[: targets.size])
        self.box_hi[targets] = np.minimum(self.box_hi[targets], -v[targets.size:])
        self._lp = None  # rebuilt on the tightened box when next needed
        if verts:
            self._vertices = np.array(verts)
            # a convex combination of optima: inside the domain (up to the LP tolerance),
            # unless it is farther out than the emptiness LP's point
            mean = np.clip(self._vertices.mean(0), self.box_lo, self.box_hi)
            if self._violation(mean) <= self._violation(self.point):
                self.point = mean

    def _propagate(self, passes: int = 2) -> None:
        """Bound propagation, rounded outward: for a row a.x <= b and a_j != 0,
        a_j x_j <= b - sum_{i != j} min(a_i x_i) over the box (equality rows both ways).
        A box that crosses (an empty domain) is put back: the elastic LP then proves it empty
        with its multipliers."""
        before = self.box_lo.copy(), self.box_hi.copy()
        rows = []
        if self.A_ub is not None:
            rows += list(zip(self.A_ub, self.b_ub))
        if self.A_eq is not None:
            rows += list(zip(self.A_eq, self.b_eq)) + list(zip(-self.A_eq, -self.b_eq))
        g = 2 * (self.n_in + 4) * _UNIT
        for _ in range(passes):
            for a, b in rows:
                t = np.minimum(a * self.box_lo, a * self.box_hi)
                err = g * (abs(b) + float(np.abs(t).sum())) + (self.n_in + 2) * 5e-324
                R = b - (float(t.sum()) - t) + err  # a_j x_j <= R_j, rounding included
                with np.errstate(divide="ignore", invalid="ignore"):
                    q = R / a
                pos, neg = a > 0, a < 0
                self.box_hi[pos] = np.minimum(self.box_hi[pos], np.nextafter(q[pos], np.inf))
                self.box_lo[neg] = np.maximum(self.box_lo[neg], np.nextafter(q[neg], -np.inf))
                if np.any(self.box_lo > self.box_hi):
                    self.box_lo, self.box_hi = before
                    return

    def _lp_instance(self):
        """(HiGHS instance over the domain's rows, safe_lower_bound's arguments but the
        cost), built once per box."""
        if getattr(self, "_lp", None) is None:
            rows, col_lo, col_hi = self._columns()
            nc, nr = len(col_lo), len(rows["row_lower"])
            starts = np.asarray(rows["starts"], dtype=np.int32)
            idx = np.asarray(rows["indices"], dtype=np.int32)
            val = np.asarray(rows["values"], dtype=np.float64)
            h = _highs.highs()
            h.setOptionValue("presolve", "off")  # the next objective starts from the last basis
            # optima within 1e-10 of the rows (HiGHS' default 1e-7): they make the domain's
            # point and witnesses; the values are certified from the duals either way
            h.setOptionValue("primal_feasibility_tolerance", 1e-10)
            h.setOptionValue("dual_feasibility_tolerance", 1e-10)
            h.addCols(nc, np.zeros(nc), col_lo, col_hi, 0, np.array([], np.int32),
                      np.array([], np.int32), np.array([], np.float64))
            h.addRows(nr, np.asarray(rows["row_lower"]), np.asarray(rows["row_upper"]), len(val),
                      starts[:-1], idx, val)
            args = (col_lo.tolist(), col_hi.tolist(), list(rows["row_lower"]),
                    list(rows["row_upper"]), starts.tolist(), idx.tolist(), val.tolist())
            self._lp = (h, args)
        return self._lp

    def min_linear(self, A, points: list | None = None) -> np.ndarray:
        """Rigorous lower bounds of ``min A[i] @ x`` over the domain, one per row of ``A``
        ``(k, n_in)``: an LP over the domain's rows per row, its value certified from the
        duals (``kernels.safe_lower_bound``), never below the box's closed form (kept where
        HiGHS fails). ``points``, when given, receives the inputs of the LP optima.
        Not thread-safe (one HiGHS instance per domain)."""
        A = np.atleast_2d(np.asarray(A, dtype=np.float64))
        out = np.array([self._box_min(a) for a in A])
        if not self.constrained:
            return out
        h, args = self._lp_instance()
        nc = len(args[0])
        cols = np.arange(nc, dtype=np.int32)
        for i, a in enumerate(A):
            amax = float(np.abs(a).max())
            if amax == 0.0:
                continue
            # a power-of-two scale (exact) so that max |cost| is about 1
            scale = 2.0 ** min(math.frexp(amax)[1], 1000)
            cost = np.zeros(nc)
            cost[: self.n_in] = a / scale
            if not np.array_equal(cost[: self.n_in] * scale, a):  # a subnormal was rounded
                scale = 1.0
                cost[: self.n_in] = a
            h.changeColsCost(nc, cols, cost)
            h.run()
            if h.modelStatusToString(h.getModelStatus()) not in _OK:
                h.clearSolver()  # the box's value stands: sound
                continue
            sol = h.getSolution()
            if points is not None:
                points.append(np.asarray(sol.col_value)[: self.n_in])
            y = np.asarray(sol.row_dual, dtype=np.float64)
            v = kernels.safe_lower_bound(cost.tolist(), *args, y) * scale
            if math.isfinite(v):
                out[i] = max(out[i], v)
        return out

    def _box_min(self, a: np.ndarray) -> float:
        """min a.x over [box_lo, box_hi], rounded down past its float64 evaluation."""
        t = np.minimum(a * self.box_lo, a * self.box_hi)
        n = t.size
        return float(t.sum()) - 2 * (n + 3) * _UNIT * float(np.abs(t).sum()) - (n + 1) * 5e-324

    def _check_nonempty(self, rows, col_lo, col_hi) -> None:
        """Minimise the total violation v of the constraints (the elastic LP: one column
        v >= 0 per row side, so that it is always feasible). A certified lower bound > 0 of
        that minimum proves that no input meets the constraints: raise EmptyDomainError with
        the multipliers. A minimum of 0 gives a point of the domain."""
        n_x = len(col_lo)
        rl = list(rows["row_lower"])
        ru = list(rows["row_upper"])
        starts, idx, val = list(rows["starts"]), list(rows["indices"]), list(rows["values"])
        # violation columns: one per finite side; each row gets +v (lower side) / -v (upper)
        xmax = np.maximum(np.abs(col_lo), np.abs(col_hi))
        new_idx, new_val, new_starts = [], [], [0]
        v_hi = []
        k = n_x
        for r in range(len(rl)):
            cols, coefs = idx[starts[r]:starts[r + 1]], val[starts[r]:starts[r + 1]]
            # the largest violation any column value can give (a finite cap: sound, v = 0
            # at every point of the domain)
            cap = float(np.dot(np.abs(coefs), xmax[cols])) + max(
                abs(rl[r]) if math.isfinite(rl[r]) else 0.0, abs(ru[r]) if math.isfinite(ru[r]) else 0.0) + 1.0
            extra_c, extra_v = [], []
            if math.isfinite(rl[r]):
                extra_c.append(k), extra_v.append(1.0), v_hi.append(cap)
                k += 1
            if math.isfinite(ru[r]):
                extra_c.append(k), extra_v.append(-1.0), v_hi.append(cap)
                k += 1
            new_idx.extend(cols + extra_c)
            new_val.extend(coefs + extra_v)
            new_starts.append(len(new_idx))
        n_v = k - n_x
        cl = np.concatenate([col_lo, np.zeros(n_v)])
        cu = np.concatenate([col_hi, v_hi])
        cost = np.concatenate([np.zeros(n_x), np.ones(n_v)])
        h = _highs.highs()
        # its optimum is the domain's point: within 1e-10 of every row, not HiGHS' default
        # 1e-7 (a thin domain of scale 1e-5 has no sample within contains' 1e-9 otherwise)
        h.setOptionValue("primal_feasibility_tolerance", 1e-10)
        h.setOptionValue("dual_feasibility_tolerance", 1e-10)
        h.addCols(len(cl), cost, cl, cu, 0, np.array([], np.int32), np.array([], np.int32),
                  np.array([], np.float64))
        h.addRows(len(rl), np.array(rl), np.array(ru), len(new_val),
                  np.array(new_starts[:-1], np.int32), np.array(new_idx, np.int32), np.array(new_val))
        h.run()
        status = h.modelStatusToString(h.getModelStatus())
        if status not in _OK:
            raise RuntimeError(f"domain: HiGHS could not decide whether the constraints are "
                               f"feasible (status {status!r})")
        sol = h.getSolution()
        y = np.asarray(sol.row_dual, dtype=np.float64)
        bound = kernels.safe_lower_bound(cost.tolist(), cl.tolist(), cu.tolist(), rl, ru,
                                       new_starts, new_idx, new_val, y)
        if bound > 0:
            worst = int(np.argmax(np.abs(y)))
            raise EmptyDomainError(
                f"the constraints admit no input: their total violation is at least {bound:.3g} "
                f"everywhere in the box (certified from LP duals; row {worst} of "
                f"[A_ub; A_eq; l1] carries the largest multiplier)", y, bound)
        self.point = np.clip(np.asarray(sol.col_value)[: self.n_in], self.lo, self.hi)

    # ---- queries --------------------------------------------------------------------
    def _violation(self, x) -> float:
        """The largest violation of a constraint at ``x``, relative to 1 + |right-hand side|."""
        v = [np.max(np.maximum(self.lo - x, x - self.hi) / (1 + np.maximum(np.abs(self.lo), np.abs(self.hi))))]
        if self.A_ub is not None:
            v.append(np.max((self.A_ub @ x - self.b_ub) / (1 + np.abs(self.b_ub))))
        if self.A_eq is not None:
            v.append(np.max(np.abs(self.A_eq @ x - self.b_eq) / (1 + np.abs(self.b_eq))))
        if self.center is not None:
            v.append((np.abs(x - self.center).sum() - self.eps) / (1 + self.eps))
        return float(max(v))

    def contains(self, X, tol: float = 1e-9) -> np.ndarray:
        """Per row of ``X`` ``(k, n_in)``: whether it lies in the domain, each constraint
        allowed ``tol * (1 + |right-hand side|)``."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        ok = np.all((X >= self.lo - tol * (1 + np.abs(self.lo))) &
                    (X <= self.hi + tol * (1 + np.abs(self.hi))), axis=1)
        if self.A_ub is not None:
            ok &= np.all(X @ self.A_ub.T <= self.b_ub + tol * (1 + np.abs(self.b_ub)), axis=1)
        if self.A_eq is not None:
            ok &= np.all(np.abs(X @ self.A_eq.T - self.b_eq) <= tol * (1 + np.abs(self.b_eq)), axis=1)
        if self.center is not None:
            ok &= np.abs(X - self.center).sum(1) <= self.eps + tol * (1 + self.eps)
        return ok

    def certainly_contains(self, X) -> np.ndarray:
        """Per row of ``X``: whether it lies in the domain in exact arithmetic, each
        constraint evaluated with a margin for its float64 rounding (so False on a boundary
        the rounding can hide, and on every equality row but an exact ``lo == hi`` fit)."""
        return self._certainly(np.atleast_2d(np.asarray(X, dtype=np.float64)), equality=True)

    def _certainly(self, X, equality: bool) -> np.ndarray:
        """certainly_contains; without ``equality`` the ``A_eq`` rows are left out."""
        g = 2 * (self.n_in + 4) * _UNIT
        ok = np.all((X >= self.lo) & (X <= self.hi), axis=1)
        if self.A_ub is not None:
            mag = np.abs(X) @ np.abs(self.A_ub).T + np.abs(self.b_ub)
            ok &= np.all(X @ self.A_ub.T + g * mag + (self.n_in + 2) * 5e-324 <= self.b_ub, axis=1)
        if self.A_eq is not None and equality:
            ok &= False
        if self.center is not None:
            s = np.abs(X - self.center).sum(1)
            # s == 0 only at x == center exactly (a difference of floats is 0 only when they
            # are equal): no underflow margin there, so the ball of radius 0 holds its centre
            ok &= s * (1 + g) + np.where(s > 0, (self.n_in + 2) * 5e-324, 0.0) <= self.eps
        return ok

    def holds(self, X) -> np.ndarray:
        """Per row of ``X`` ``(k, n_in)``: whether the float64 point lies in the domain in
        exact arithmetic, the test a witness must pass (the witness policy of
        ``bab``/``stability``: no tolerance). Box, ``A_ub`` rows and the l1 ball as
        :meth:`certainly_contains` (each evaluated with a margin for its rounding, so a
        point within that margin of a boundary is refused, never wrongly accepted);
        ``A_eq`` rows checked in rational arithmetic (``fractions``) on the points whose
        float64 residual is within rounding of 0: with equality rows few float64 points
        lie in the domain, and the others are not witnesses."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        ok = self._certainly(X, equality=False)
        if self.A_eq is None or not ok.any():
            return ok
        g = 2 * (self.n_in + 4) * _UNIT
        r = np.abs(X @ self.A_eq.T - self.b_eq)
        mag = np.abs(X) @ np.abs(self.A_eq).T + np.abs(self.b_eq)
        ok &= np.all(r <= g * mag + (self.n_in + 2) * 5e-324, axis=1)
        idx = np.flatnonzero(ok)
        for a, b in zip(self.A_eq, self.b_eq):
            ok[idx] &= _exact_row(a, X[idx], float(b))
        return ok

    def admit(self, X) -> np.ndarray:
        """The rows of ``X`` made witnesses of the domain: each row that :meth:`holds` as it
        is, else moved toward :meth:`interior_point` (``p + t (x - p)``, the largest ``t`` in
        [0, 1] the box, ``A_ub`` rows and l1 ball allow, then shrunk by up to 1e-6 of it to
        clear rounding) when that point holds; the rows that do not are dropped. The points
        of a convex domain on that segment are its points nearest ``x`` along it, so an
        attack step or an LP vertex outside stays close to where it was."""
        Y, ok = self.pull(X)
        return Y[ok]

    def pull(self, X) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`admit` without dropping: (every row, moved where it was, and whether it
        now :meth:`holds`)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if not self.constrained or not len(X):
            return X, np.ones(len(X), dtype=bool)
        X = np.clip(X, self.lo, self.hi)
        ok = self.holds(X)
        if ok.all():
            return X, ok
        p = self.interior_point()
        Y = X[~ok]
        D = Y - p
        P = np.repeat(p[None, :], len(Y), axis=0)
        _, thi = self._line(P, D)
        t = np.clip(np.nan_to_num(thi, posinf=1.0), 0.0, 1.0)
        got = np.zeros(len(Y), dtype=bool)
        Z = Y.copy()
        for shrink in (0.0, 1e-12, 1e-9, 1e-6):
            todo = ~got
            if not todo.any():
                break
            C = np.clip(P[todo] + (t[todo] * (1 - shrink))[:, None] * D[todo], self.lo, self.hi)
            h = self.holds(C)
            idx = np.flatnonzero(todo)[h]
            Z[idx], got[idx] = C[h], True
        bad = np.flatnonzero(~ok)
        X[bad] = Z
        ok[bad] = got
        return X, ok

    def excludes_boxes(self, LO, HI) -> np.ndarray:
        """Per row of the boxes ``[LO[k], HI[k]]`` ``(m, n_in)``: True when the box is proven
        to hold no point of the domain, by a checked certificate in closed form (one
        ``A_ub`` row whose least value over the box exceeds its right-hand side, an
        ``A_eq`` row whose range over the box misses it, or the box farther than ``eps``
        from the l1 ball's centre), each value rounded against the claim. False proves
        nothing (a box outside only by a combination of rows)."""
        LO, HI = np.atleast_2d(LO), np.atleast_2d(HI)
        out = np.any((HI < self.box_lo) | (LO > self.box_hi), axis=1)  # the rigorous outer box
        g = 2 * (self.n_in + 3) * _UNIT
        tiny = (self.n_in + 2) * 5e-324

        def least(A):  # (m, rows) rigorous lower bounds of min A x over each box
            T = np.minimum(A[None, :, :] * LO[:, None, :], A[None, :, :] * HI[:, None, :])
            return T.sum(2) - g * np.abs(T).sum(2) - tiny

        if self.A_ub is not None:
            out |= np.any(least(self.A_ub) > self.b_ub, axis=1)
        if self.A_eq is not None:
            out |= np.any(least(self.A_eq) > self.b_eq, axis=1)
            out |= np.any(least(-self.A_eq) > -self.b_eq, axis=1)
        if self.center is not None:
            dist = np.maximum(np.maximum(LO - self.center, self.center - HI), 0.0).sum(1)
            out |= dist * (1 - g) - tiny > self.eps
        return out

    def contains_box(self, lo, hi) -> bool:
        """Whether every input of the box [lo, hi] lies in the domain (rigorous: the box's
        extreme values of each constraint in closed form, rounded against the answer)."""
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        if np.any(lo < self.lo) or np.any(hi > self.hi):
            return False
        g = 2 * (self.n_in + 3) * _UNIT
        if self.A_eq is not None:
            return False if np.any(lo < hi) or not self.certainly_contains(lo[None])[0] else \
                self._ub_and_l1_hold(lo, hi, g)
        return self._ub_and_l1_hold(lo, hi, g)

    def _ub_and_l1_hold(self, lo, hi, g) -> bool:
        if self.A_ub is not None:
            top = np.maximum(self.A_ub * lo, self.A_ub * hi)
            mx = top.sum(1) + g * np.abs(top).sum(1)
            if np.any(mx > self.b_ub):
                return False
        if self.center is not None:
            far = np.maximum(np.abs(lo - self.center), np.abs(hi - self.center)).sum()
            if far * (1 + g) > self.eps:
                return False
        return True

    def within(self, other: "Domain") -> bool:
        """A sufficient test of ``self`` being a subset of ``other``: ``other`` is a box
        containing this domain's box, or ``other`` contains this domain's box, or both have
        the same constraints and this box lies in the other's."""
        if other is self:
            return True
        in_box = bool(np.all(self.box_lo >= other.lo) and np.all(self.box_hi <= other.hi))
        if not other.constrained:
            return in_box
        if other.contains_box(self.box_lo, self.box_hi):
            return True
        same = (_same(self.A_ub, other.A_ub) and _same(self.b_ub, other.b_ub)
                and _same(self.A_eq, other.A_eq) and _same(self.b_eq, other.b_eq))
        if self.center is None and other.center is not None:
            same = False
        elif other.center is not None:
            # a smaller ball inside the other: ||c - c'||_1 + eps <= eps'
            gap = float(np.abs(self.center - other.center).sum())
            same = same and (gap + self.eps) * (1 + 4 * self.n_in * _UNIT) <= other.eps
        return same and in_box

    # ---- sampling -------------------------------------------------------------------
    def sample(self, n: int, seed: int = 0, method: str = "auto") -> np.ndarray:
        """``n`` seeded points of the domain, ``(n, n_in)``: ``"rejection"`` (uniform on
        the domain: uniform points of ``[box_lo, box_hi]`` kept when inside), ``"hit-and-run"``
        (a random walk along random lines through the domain, in the null space of ``A_eq``;
        for thin domains and equality rows), ``"auto"``: rejection unless there are equality
        rows or fewer than 2% of the box's points are inside. Without equality rows every
        point returned lies in the domain in exact arithmetic (``certainly_contains``),
        unless no such point was found (e.g. a domain of one point known from an LP);
        equality rows hold within the rounding of float64 (about 1e-16 relative)."""
        rng = np.random.default_rng(seed)
        n = int(n)
        if method not in ("auto", "rejection", "hit-and-run"):
            raise ValueError(f"method = {method!r}: expected 'auto', 'rejection' or 'hit-and-run'")
        if method != "hit-and-run" and self.A_eq is None:
            out, tries = [], 0
            while sum(len(o) for o in out) < n and tries < 20:
                m = max(1024, 2 * n)
                X = self.box_lo + (self.box_hi - self.box_lo) * rng.random((m, self.n_in))
                X = X[self.certainly_contains(X)]
                out.append(X)
                tries += 1
                if method == "auto" and tries == 1 and len(X) < 0.02 * m:
                    break
            got = np.vstack(out) if out else np.empty((0, self.n_in))
            if len(got) >= n:
                return got[:n]
            if method == "rejection":
                raise RuntimeError(f"rejection sampling found {len(got)} of {n} points: use "
                                   "method='hit-and-run'")
        X = self._hit_and_run(n, rng)
        if self.A_eq is not None:
            return X
        # keep the points exactly inside (a line's end is computed within rounding)
        keep = [X[self.certainly_contains(X)]]
        for _ in range(4):
            if sum(len(k) for k in keep) >= n:
                break
            X = self._hit_and_run(n, rng)
            keep.append(X[self.certainly_contains(X)])
        got = np.vstack(keep)
        if len(got) == 0:
            return X  # no exact point found: within the LP's tolerance
        return np.resize(got, (n, self.n_in)) if len(got) < n else got[:n]

    def interior_point(self) -> np.ndarray:
        """A point of the domain away from its boundary where it can be (hit-and-run's
        start: from a vertex nearly every line leaves the domain at once): the Chebyshev
        LP max s with A_ub x + ||a_i|| s <= b_ub, A_eq x = b_eq, ||x - c||_1 + s <= eps and
        lo + s <= x <= hi on the box's non-degenerate inputs; ``point`` if it fails."""
        if self._inner is not None:
            return self._inner
        n = self.n_in
        self._inner = self.point
        if not self.constrained:
            return self._inner
        rows, col_lo, col_hi = self._columns()
        nc = len(col_lo)
        width = float(np.max(self.hi - self.lo, initial=0.0)) + 1.0
        starts, idx, val = list(rows["starts"]), list(rows["indices"]), list(rows["values"])
        rl, ru = list(rows["row_lower"]), list(rows["row_upper"])
        n_ub = 0 if self.A_ub is None else self.A_ub.shape[0]
        new_idx, new_val, new_starts = [], [], [0]
        for r in range(len(rl)):
            c, v = idx[starts[r]:starts[r + 1]], val[starts[r]:starts[r + 1]]
            if r < n_ub:  # a x + ||a|| s <= b
                c, v = c + [nc], v + [float(np.linalg.norm(self.A_ub[r]))]
            elif r == len(rl) - 1 and self.center is not None:  # sum t + s <= eps
                c, v = c + [nc], v + [1.0]
            new_idx += c
            new_val += v
            new_starts.append(len(new_idx))
        for j in np.flatnonzero(self.hi > self.lo):  # lo + s <= x <= hi - s
            new_idx += [int(j), nc]
            new_val += [1.0, -1.0]
            new_starts.append(len(new_idx))
            rl.append(float(self.lo[j]))
            ru.append(math.inf)
            new_idx += [int(j), nc]
            new_val += [1.0, 1.0]
            new_starts.append(len(new_idx))
            rl.append(-math.inf)
            ru.append(float(self.hi[j]))
        h = _highs.highs()
        cost = np.zeros(nc + 1)
        cost[nc] = -1.0  # max s
        h.addCols(nc + 1, cost, np.append(col_lo, 0.0), np.append(col_hi, width), 0,
                  np.array([], np.int32), np.array([], np.int32), np.array([], np.float64))
        h.addRows(len(rl), np.array(rl), np.array(ru), len(new_val),
                  np.array(new_starts[:-1], np.int32), np.array(new_idx, np.int32),
                  np.array(new_val, np.float64))
        h.run()
        if h.modelStatusToString(h.getModelStatus()) in _OK:
            x = np.asarray(h.getSolution().col_value)
            if x[nc] > 0:
                self._inner = np.clip(x[:n], self.lo, self.hi)
                self._radius = float(x[nc])
        self._inner.flags.writeable = False
        return self._inner

    def thin(self, rel: float = 1e-6) -> bool:
        """Whether the domain is flat or thin: equality rows, or no ball of radius ``rel``
        times the box's widest side fits in it (:meth:`interior_point`'s Chebyshev LP;
        a slab between nearly parallel rows). Searches that split the box cannot see such
        a domain's rows and should branch on phases with the rows in every LP instead."""
        if self.A_eq is not None:
            return True
        if not self.constrained:
            return False
        self.interior_point()
        return self._radius <= rel * float(np.max(self.hi - self.lo, initial=0.0))

    def _hit_and_run(self, n: int, rng, burn: int = 50, thin: int = 5) -> np.ndarray:
        x0 = self.interior_point()
        chains = max(64, min(4096, n // 50))  # vectorised walks: numpy calls per step, not per point
        if self.A_eq is not None:
            from scipy.linalg import null_space

            N = null_space(self.A_eq)
        else:
            N = None  # every direction
        X = np.repeat(x0[None, :], chains, axis=0)
        out = []
        steps = burn + thin * math.ceil(n / chains)
        for s in range(steps):
            if N is not None and N.shape[1] == 0:  # the domain is a point
                break
            D = rng.standard_normal((chains, self.n_in if N is None else N.shape[1]))
            if N is not None:  # directions within A_eq x = b_eq
                D = D @ N.T
            D /= np.linalg.norm(D, axis=1, keepdims=True)
            tlo, thi = self._line(X, D)
            T = tlo + (thi - tlo) * rng.random(chains)
            X = X + T[:, None] * D
            if s >= burn and (s - burn) % thin == thin - 1:
                out.append(X.copy())
        if not out:
            return np.repeat(x0[None, :], n, axis=0)
        return np.vstack(out)[:n]

    def _line(self, X, D):
        """Per chain, the interval [tlo, thi] (containing 0) of t with X + t D in the domain."""
        big = np.inf
        tlo = np.full(len(X), -big)
        thi = np.full(len(X), big)

        def cut(s, r):  # t s <= r, r >= 0 (clipped: a point on the boundary stays put)
            r = np.maximum(r, 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                q = r / s
            np.minimum(thi, np.where(s > 0, q, big).min(1), out=thi)
            np.maximum(tlo, np.where(s < 0, q, -big).max(1), out=tlo)

        cut(D, self.hi - X)
        cut(-D, X - self.lo)
        if self.A_ub is not None:
            cut(D @ self.A_ub.T, self.b_ub - X @ self.A_ub.T)
        if self.center is not None:  # ||X + t D - c||_1 <= eps: exact ends of a convex PL function
            R = X - self.center
            np.minimum(thi, _l1_reach(R, D, self.eps), out=thi)
            np.maximum(tlo, -_l1_reach(R, -D, self.eps), out=tlo)
        return tlo, thi


def _l1_reach(R: np.ndarray, D: np.ndarray, eps: float) -> np.ndarray:
    """Per row, the largest t >= 0 with ||R + t D||_1 <= eps (0 when R is outside already).
    f(t) = C + sum_i w_i |t - B_i| (w_i = |D_i|, B_i = -R_i / D_i) is convex and piecewise
    linear: its values at the sorted breakpoints come from cumulative sums, and the end is
    found on the first segment past 0 where f crosses eps."""
    m = len(R)
    rows = np.arange(m)
    nz = D != 0
    w = np.abs(D)
    C = np.where(nz, 0.0, np.abs(R)).sum(1)
    B = np.where(nz, -R / np.where(nz, D, 1.0), 0.0)
    order = np.argsort(B, axis=1)
    Bs, ws = np.take_along_axis(B, order, 1), np.take_along_axis(w, order, 1)
    W, S = np.cumsum(ws, 1), np.cumsum(ws * Bs, 1)
    Wt, St = W[:, -1:], S[:, -1:]
    F = C[:, None] + Bs * W - S + (St - S) - Bs * (Wt - W)  # f at each breakpoint
    over = (Bs > 0) & (F > eps)
    has = over.any(1)
    k = np.argmax(over, 1)
    kp = np.maximum(k - 1, 0)
    t0 = np.where(has, np.where(k > 0, Bs[rows, kp], 0.0), Bs[:, -1])
    t0 = np.maximum(t0, 0.0)
    # slope past t0: weights of breakpoints at or before t0 minus the others
    Wle = np.where(has, np.where(k > 0, W[rows, kp], 0.0), Wt[:, 0])
    slope = 2 * Wle - Wt[:, 0]
    f0 = C + (w * np.abs(t0[:, None] - B)).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(slope > 0, np.maximum(eps - f0, 0.0) / slope, 0.0)
    out = np.where(f0 <= eps, t0 + step, 0.0)
    # the cumulative sums put t0 inside and its direct sum rounds just outside (a point on the
    # sphere, 10 + 2e-15): bisect [0, t0] on direct sums rather than answer 0 (which sent an
    # optimal point of the digits adversary back to the interior point)
    fix = np.flatnonzero((f0 > eps) & (t0 > 0) & (np.abs(R).sum(1) <= eps))
    if len(fix):
        Rf, Df, lo, hi = R[fix], D[fix], np.zeros(len(fix)), t0[fix].copy()
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            inside = np.abs(Rf + mid[:, None] * Df).sum(1) <= eps
            lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
        out[fix] = lo
    return out


def _exact_row(a: np.ndarray, X: np.ndarray, b: float) -> np.ndarray:
    """Per row x of X, whether a.x == b holds exactly on the float64 values: each product
    split into two floats exactly (Dekker's two-product) and the products' sum compared
    with b by ``math.fsum`` (correctly rounded, so 0 exactly when the exact sum is 0);
    rational arithmetic (``fractions``) where the split could lose bits (a product near
    underflow, a factor near overflow)."""
    nz = np.flatnonzero(a)
    a, X = a[nz], X[:, nz]
    P = a * X
    f = 134217729.0  # 2^27 + 1

    def split(v):
        c = f * v
        h = c - (c - v)
        return h, v - h

    ah, al = split(a)
    xh, xl = split(X)
    E = ((ah * xh - P) + ah * xl + al * xh) + al * xl
    # (a product that underflowed to 0 is not an exact 0: only a zero factor gives one)
    safe = np.all((X == 0) | (np.abs(P) >= 2.0**-960), axis=1) & np.all(np.abs(X) < 2.0**995, axis=1) \
        & bool(np.all(np.abs(a) < 2.0**995))
    out = np.empty(len(X), dtype=bool)
    for r in range(len(X)):
        if safe[r]:
            out[r] = math.fsum(np.concatenate([P[r], E[r], [-b]]).tolist()) == 0.0
        else:
            out[r] = sum((Fraction(float(u)) * Fraction(float(v)) for u, v in zip(a, X[r])),
                         Fraction(0)) == Fraction(b)
    return out


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(np.array_equal(a, b))


def resolve(n_in: int, lo, hi, domain=None, A_ub=None, b_ub=None, A_eq=None, b_eq=None,
            l1=None) -> Domain | None:
    """The domain a bound method was given: ``domain`` or the keyword constraints on the box
    ``lo``/``hi`` (already resolved), or None when nothing but the box constrains the inputs."""
    given = any(v is not None for v in (A_ub, b_ub, A_eq, b_eq, l1))
    if domain is not None:
        if given:
            raise ValueError("give the constraints in domain= or as A_ub=/b_ub=/A_eq=/b_eq=/l1=, not both")
        if not isinstance(domain, Domain):
            raise TypeError(f"domain must be an emlpress.bounds.Domain, got {type(domain).__name__}")
        if domain.n_in != n_in:
            raise ValueError(f"domain has {domain.n_in} inputs, the network {n_in}")
        return domain
    if not given:
        return None
    return Domain(lo, hi, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, l1=l1)


def domain_and_box(net: Network, lo, hi, domain, A_ub, b_ub, A_eq, b_eq, l1):
    """(Domain or None, lo, hi): the constrained domain a method was given (None for a
    plain box) and the box to run on (the domain's tightened box)."""
    if domain is not None:
        if lo is not None or hi is not None:
            raise ValueError("give the box in domain= or as lo/hi, not both")
        d = resolve(net.n_in, None, None, domain, A_ub, b_ub, A_eq, b_eq, l1)
    else:
        lo, hi = net.domain(lo, hi)
        d = resolve(net.n_in, lo, hi, None, A_ub, b_ub, A_eq, b_eq, l1)
        if d is None:
            return None, lo, hi
    if not d.constrained:
        return None, d.lo, d.hi
    return d, d.box_lo, d.box_hi

