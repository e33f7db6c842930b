"""LP-relaxation bounds (:func:`lp`): the threaded driver and the per-neuron LP bound problems
on HiGHS, built layer by layer from C++ rows (exact bounds: bab.py). The bulk add of C++
rows into a HiGHS model (``add_block``, ``MagnitudeError``) lives in ``emlpress._highs``;
those names, and ``_down``/``_up`` (``rounding``), stay importable from here.

One `Highs` instance per worker thread; the rows come from a shared C++ store
(`kernels.LpRelaxation`), added in one bulk call per layer. Each neuron's min and max re-use
the instance with a changed objective; an LP starts from a dual feasible basis built from
CROWN's backward pass with the sides of alpha-CROWN (optimised for all of a layer's LPs at
once) or of the instance's last solutions (presolve off); when that basis is already
optimal (its primal point inside every bound), or its duals already prove the sign asked
for, HiGHS is not run at all; when the optimum of the instance's previous LP (a vertex of
the same polytope) is near, the LP goes on from it with the primal simplex instead
(`_primal_start`). LP values are made rigorous from the row duals (`safe_bound`).
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import highspy
import numpy as np
from tqdm import tqdm

from emlpress import _highs, kernels, _options

# checked is not used here: it stays importable from here, where it used to live
from emlpress._highs import EMPTY_F, EMPTY_I, MagnitudeError, checked, add_block  # noqa: F401
from emlpress.bounds.domain import Domain, domain_and_box
from emlpress.bounds.linear import crown
from emlpress.bounds.result import Bounds
from emlpress.bounds.rounding import _down, _up, forward_rounding
from emlpress.network import Network

__all__ = ["lp", "NeuronProblems", "BoundError", "MagnitudeError", "add_block",
           "run_on_free_workers", "nearest_neighbour_order"]


#: earlier solutions of the instance tried as hints for each LP's starting basis, beside
#: alpha-CROWN's sides (each try is one backward pass over the rows, ~0.5 ms on seed_gp's
#: layer 4). With the alpha-CROWN hint, 4 took seed_gp 9.8 s (0: 10.0 s, 16: 10.6 s) and
#: the trained 1024-wide network 36.8 s (0: 38.7 s).
N_HINTS = 4
#: alpha-CROWN (LpRelaxation.alpha_hints) for each target layer's LPs: Adam steps and
#: step size. On 60 layer-4 LPs of seed_gp: 100 steps 3,589 simplex iterations in all
#: (best of the last 16 solutions alone: ~6,400; 300 steps: ~3,300).
ALPHA_ITERATIONS = 100
ALPHA_STEP = 1.0
#: a starting basis whose primal point is inside every bound by this much is optimal and
#: no simplex runs (HiGHS' default primal feasibility tolerance; scaling is off)
PRIMAL_TOL = 1e-7
#: an LP goes on with the primal simplex from HiGHS' current basis (the optimum of the
#: instance's previous LP: a vertex of the same polytope) instead of the dual simplex from
#: its own starting basis when that optimum's objective is within PRIMAL_REACH times the
#: expected distance of the starting basis' dual objective from the optimum (the
#: instance's recent LPs' distance, relative, averaged with weight GAP_WEIGHT on the last).
#: Trained 1024-wide network: 3 -> 27.3 s (1.5: 28.0 s, 6: 27.6 s, never: 32.6 s); seed_gp
#: 9.3 s (1.5: 9.3 s, 6: 10.0 s).
PRIMAL_REACH = 3.0
GAP_WEIGHT = 0.3
#: HiGHS' simplex_strategy values
SIMPLEX_DUAL, SIMPLEX_PRIMAL = 1, 4
#: HiGHS basis status by code (LpRelaxation.dual_feasible_basis)
_STATUS = (highspy.HighsBasisStatus.kLower, highspy.HighsBasisStatus.kBasic,
           highspy.HighsBasisStatus.kUpper)

_OK_LP = {"Optimal", "Bound on objective reached"}


class BoundError(RuntimeError):
    """A per-neuron bound problem failed (solver status named in the message)."""


class NeuronProblems:
    """The relaxation of the layers before the current one, in one HiGHS instance."""

    def __init__(self, net, lo, hi, store):
        self.net, self.store = net, store
        h = _highs.highs()
        h.setOptionValue("presolve", "off")  # presolve would discard the starting basis
        # Each LP starts from a new basis (_start_basis); HiGHS would compute exact
        # steepest-edge weights for it (one BTRAN per row) and scale the LP anew. Devex
        # weights and no scaling: ~2.3x faster per LP on seed_gp's layer 4 (the iterations
        # rise by 6%, each costs 30% less, the ~45 ms set-up per LP drops to ~8 ms).
        h.setOptionValue("simplex_dual_edge_weight_strategy", 1)
        h.setOptionValue("simplex_scale_strategy", 0)
        h.addCols(len(lo), np.zeros(len(lo)), lo, hi, 0, EMPTY_I, EMPTY_I, EMPTY_F)
        self.h = h
        self.cost_idx = EMPTY_I
        # column values of the last LP solutions (see _start_basis): a ring of N_HINTS rows
        self._hints = np.empty((N_HINTS, 0))
        self._n_hints = 0  # rows filled
        self._next_hint = 0  # row to overwrite next
        #: column values of the optimum that HiGHS' current basis holds (None when that
        #: basis is not an optimum of the present rows): the primal simplex's start
        self._basis_x = None
        #: the relative distance of the recent LPs' starting dual objectives from their
        #: optima (None before the first LP of the layer)
        self._gap = None
        self.k = 0
        #: True when a forward pass of the network satisfies every bound in the problem
        self.witness = False

    def add_block(self, blk: dict) -> None:
        add_block(self.h, blk)
        self._basis_x = None  # new rows: the old optimum is not a basis of them

    def set_targets(self, k: int, aff: dict, slack: np.ndarray) -> None:
        """The next neurons to bound are layer k's: z = A v[ref] + c, |error| <= err
        (``LpRelaxation.pre_activation``). ``slack`` per neuron widens every bound found
        (the rounding a float64 forward pass makes, which the LP's exact rows do not see)."""
        h = self.h
        if len(self.cost_idx):
            h.changeColsCost(len(self.cost_idx), self.cost_idx, np.zeros(len(self.cost_idx)))
        self.k = k
        self.cost_idx = np.asarray(aff.ref, dtype=np.int32)
        self.A, self.c, self.err = aff.A, aff.c, aff.err
        self.slack = slack
        self.alpha, self._alpha_row = None, {}
        self._hint = None
        self._gap = None

    def set_alpha(self, hints: np.ndarray, rows: dict) -> None:
        """Hint rows from ``LpRelaxation.alpha_hints`` for this layer's LPs: ``rows`` maps
        (neuron, "min" / "max") to its row of ``hints``."""
        self.alpha, self._alpha_row = hints, rows

    def _solve(self, cost: np.ndarray, need: float, where: str, fresh: bool = True) -> float:
        """min cost.a over the relaxation; a rigorous lower bound of it, or -inf (with a
        warning naming the neuron and HiGHS' status) when HiGHS cannot solve it. The dual
        simplex may stop once its (dual feasible) objective passes `need` (with a margin):
        the value returned is then >= `need` but not the optimum. `fresh`: start the LP
        from its own basis (_start_basis), else go on from HiGHS' current one."""
        h = self.h
        # scale the objective by a power of two (exact) so that max |cost| is about 1:
        # HiGHS' dual simplex fails on large costs times large bounds
        scale = 2.0 ** min(math.frexp(float(np.abs(cost).max()))[1], 1000)  # 2.0**1024 overflows
        c = cost / scale
        h.changeColsCost(len(self.cost_idx), self.cost_idx, c)
        start, start_bound = None, None

        def fallback() -> float:
            """The starting basis' rigorous bound (its duals are CROWN's for the sides it
            took; computed once), else -inf (the caller keeps its starting bound)."""
            nonlocal start_bound
            if start is None:
                return -np.inf
            if start_bound is None:
                start_bound = self.store.safe_bound(self.cost_idx, c, start.row_dual) * scale
            return start_bound

        stop_at = need + 1e-9 * (1.0 + abs(need))
        h.setOptionValue("objective_bound", float(stop_at) / scale)
        if fresh:
            start = self._start_basis(c)
            optimal = start.violation <= PRIMAL_TOL
            if optimal or start.objective * scale >= stop_at:
                # the starting basis is optimal, or its duals already prove the sign:
                # no simplex run (HiGHS' set-up from a new basis alone costs ~10 ms)
                v = fallback()
                if optimal or v >= need:
                    if optimal:
                        self._remember(start.col_value)
                        self._learn_gap(0.0)
                    return v
            if self._primal_start(c, start.objective):
                h.setOptionValue("objective_bound", math.inf)
                h.setOptionValue("simplex_strategy", SIMPLEX_PRIMAL)
            else:
                self._set_basis(start)
                h.setOptionValue("simplex_strategy", SIMPLEX_DUAL)
        else:  # go on from where the dual simplex stopped
            h.setOptionValue("simplex_strategy", SIMPLEX_DUAL)
        self._basis_x = None
        for _attempt in range(2):
            run_status = h.run()
            status = h.modelStatusToString(h.getModelStatus())
            if status in _OK_LP:
                break
            if status == "Infeasible" and self.witness:
                # a network point satisfies every earlier bound, so the problem is
                # feasible and HiGHS' verdict is numerical (seen near 1e12)
                warnings.warn(f"{where}: HiGHS declared the bound problem infeasible "
                              "although a forward pass satisfies it; keeping the starting "
                              "bound (LP: its starting basis')", RuntimeWarning, stacklevel=4)
                h.clearSolver()
                return fallback()
            if status == "Infeasible":
                raise BoundError(f"{where}: the bound problem is infeasible; this cannot "
                                 "happen for a valid box and sound bounds of earlier layers")
            # every column is bounded, so 'Unbounded' is a numerical failure like 'Unknown'
            h.clearSolver()  # an LP can come back Unknown from its start: solve from scratch
        else:
            # Any row multipliers give a rigorous LP bound (safe_bound), so an LP whose
            # optimality HiGHS could not confirm ('Unknown', badly scaled) still yields a
            # sound, if looser, value. Without valid duals, keep the starting bound.
            if not h.getSolution().dual_valid:
                warnings.warn(f"{where}: HiGHS returned status '{status}' ({run_status}); "
                              "keeping the starting bound (LP: its starting basis')",
                              RuntimeWarning, stacklevel=4)
                h.clearSolver()
                return fallback()
        # rigorous from the duals
        sol = h.getSolution()
        y = np.asarray(sol.row_dual, dtype=np.float64)
        x = np.asarray(sol.col_value, dtype=np.float64)
        self._remember(x)
        if status == "Optimal":
            self._basis_x = x
            if start is not None:
                opt = h.getInfo().objective_function_value
                self._learn_gap((opt - start.objective) /
                                max(abs(opt), abs(start.objective), 1e-300))
        v = self.store.safe_bound(self.cost_idx, c, y) * scale
        if status not in _OK_LP:  # duals of an unconfirmed solve: the start's may be better
            v = max(v, fallback())
        if status == "Bound on objective reached" and v < need:
            # HiGHS stopped on its (perturbed) dual objective, but the rigorous value of
            # those duals does not prove the sign: finish the solve from where it stopped
            return self._solve(cost, np.inf, where, fresh=False)
        return v

    def _primal_start(self, c: np.ndarray, lower: float) -> bool:
        """Whether min c.x should go on with the primal simplex from HiGHS' current basis,
        the optimum of the instance's previous LP (a vertex of the same polytope), rather
        than run the dual simplex from its starting basis of dual objective `lower`: when
        that optimum's objective is within PRIMAL_REACH times the expected distance of
        `lower` from the optimum. On the trained 1024-wide network's last hidden layer the
        primal simplex then took ~55 ms where the dual took ~150 ms; on seed_gp's, where
        the starting bases are closer and neighbouring optima farther, the dual simplex was
        faster almost always (and this rule picks it)."""
        if self._basis_x is None or self._gap is None:
            return False
        upper = float(c @ self._basis_x[self.cost_idx])
        return upper - lower <= PRIMAL_REACH * self._gap * max(abs(lower), abs(upper))

    def _learn_gap(self, gap: float) -> None:
        """Fold an LP's relative distance from its starting dual objective to its optimum
        into the running estimate `_primal_start` uses."""
        self._gap = gap if self._gap is None else (1 - GAP_WEIGHT) * self._gap + GAP_WEIGHT * gap

    def _remember(self, x: np.ndarray) -> None:
        """Keep the column values x of an LP solution as a hint for the next starting bases."""
        if not N_HINTS:
            return
        if self._hints.shape != (N_HINTS, len(x)):  # first LP, or a layer was added
            self._hints, self._n_hints, self._next_hint = np.empty((N_HINTS, len(x))), 0, 0
        self._hints[self._next_hint] = x
        self._next_hint = (self._next_hint + 1) % N_HINTS
        self._n_hints = min(self._n_hints + 1, N_HINTS)

    def _start_basis(self, c: np.ndarray) -> dict:
        """The dual simplex's start for min c.x: CROWN's dual solution for this objective
        (``LpRelaxation.dual_feasible_basis``), each unit's lower side taken from whichever
        of alpha-CROWN's sides for this LP (``set_alpha``), the last ``N_HINTS`` solutions
        of this instance or CROWN's own sides gives the best starting bound. Keeping the
        previous optimal basis instead (a warm start for the previous objective) took 2-3x
        more time on seed_gp and was no faster on the small benchmark networks."""
        usable = self._n_hints and self._hints.shape[1] == self.h.getNumCol()
        hints = self._hints[: self._n_hints] if usable else None
        if self._hint is not None:
            hints = self._hint[None] if hints is None else np.vstack([self._hint[None], hints])
        return self.store.dual_feasible_basis(self.cost_idx, c, hints)

    def _set_basis(self, start: dict) -> None:
        """Hand a basis of ``_start_basis`` to HiGHS."""
        b = highspy.HighsBasis()
        b.col_status = [_STATUS[v] for v in start.col_status.tolist()]
        b.row_status = [_STATUS[v] for v in start.row_status.tolist()]
        b.valid = True
        # not 'alien': HiGHS would factor it in setBasis to check it (~7 ms on seed_gp's
        # layer 4); it is nonsingular by construction, and run() factors it anyway
        b.alien = False
        if self.h.setBasis(b) != highspy.HighsStatus.kOk:
            self.h.clearSolver()

    def side(self, i: int, side: str, bound: float, stop: bool) -> float:
        """A rigorous lower (``side="min"``) or upper (``"max"``) bound of pre-activation i
        of the target layer, never looser than ``bound``. With ``stop`` the solve may end
        as soon as the sign of that side is proven (the value is then not the optimum)."""
        w = self.A[i]
        c, e = float(self.c[i]), float(self.err[i])
        where = f"layer {self.k}, neuron {i}"
        r = self._alpha_row.get((i, side))
        self._hint = None if r is None else self.alpha[r]
        if not np.any(w):  # no live input: the pre-activation is the constant c (+- e)
            v = _down(c - e) if side == "min" else _up(c + e)
        else:
            # with `stop`, a value past `need` proves the sign (the margin covers the
            # two roundings below)
            slack = 1e-12 * (1.0 + abs(c) + e)
            if side == "min":  # lower = min w.a + c - e >= 0 once min w.a >= -c + e
                need = -c + e + slack if stop else np.inf
                v = _down(_down(self._solve(w, need, where) + c) - e)
            else:  # upper = -min(-w.a) + c + e <= 0 once min(-w.a) >= c + e
                need = c + e + slack if stop else np.inf
                v = _up(_up(-self._solve(-w, need, where) + c) + e)
        v = _down(v - self.slack[i]) if side == "min" else _up(v + self.slack[i])
        return max(bound, v) if side == "min" else min(bound, v)


def run_on_free_workers(pool, n_threads: int, tasks, lock, work, state=list, fixed: bool = False) -> list:
    """Run ``work(t, task, s)`` for every task, in order, each of ``n_threads`` threads of
    ``pool`` taking the next task when it is free (thread ``t`` uses its own HiGHS instance,
    ``s`` is its own ``state()``); returns the threads' states.

    ``fixed``: thread ``t`` takes the ``t``-th of ``n_threads`` contiguous slices of the tasks
    instead, so that each instance solves the same LPs in the same order on every run (its
    warm starts come from its own previous solutions): the results do not depend on timing.
    An exception in the calling thread (Ctrl-C) or in a task stops every thread after the
    task it is solving, not at the end of the list."""
    tasks = list(tasks)
    stop = threading.Event()
    if fixed:
        cuts = [len(tasks) * t // n_threads for t in range(n_threads + 1)]
        queues = [iter(tasks[cuts[t]:cuts[t + 1]]) for t in range(n_threads)]
    else:
        queues = [iter(tasks)] * n_threads  # one shared queue

    def run(t):
        s = state()
        while not stop.is_set():
            with lock:
                task = next(queues[t], None)
            if task is None:
                return s
            try:
                work(t, task, s)
            except BaseException:
                stop.set()
                raise
        return s

    futures = [pool.submit(run, t) for t in range(n_threads)]
    try:
        return [f.result() for f in futures]
    except BaseException:
        stop.set()  # the other threads end after their current task (one LP, or one search)
        raise


def nearest_neighbour_order(A: np.ndarray) -> np.ndarray:
    """An order of the rows of A in which each row is followed by the most similar
    remaining one (cosine, greedy): consecutive LPs then have similar objectives, so the
    solutions just before an LP are good hints for its starting basis."""
    n = A.shape[0]
    if n <= 2:
        return np.arange(n)
    norms = np.linalg.norm(A, axis=1)
    V = A / np.where(norms > 0, norms, 1.0)[:, None]
    S = V @ V.T
    order = np.empty(n, dtype=np.int64)
    free = np.ones(n, dtype=bool)
    cur = 0
    for t in range(n):
        order[t] = cur
        free[cur] = False
        if t + 1 < n:
            sims = np.where(free, S[cur], -np.inf)
            cur = int(np.argmax(sims))
    return order


def _per_neuron(net, lo, hi, init, method, *, threads, full, progress, d=None):
    """Layer by layer, tighten every target neuron with its own LP (NeuronProblems);
    ``d``: a constrained Domain whose rows join every LP (lo, hi its tightened box)."""
    if init is None:
        init = crown(net, lo, hi) if d is None else crown(net, domain=d)
    elif d is None:
        init.check(net, lo, hi)
    else:
        init.check(net, domain=d)
    n_threads = _options.threads(threads) or max(1, kernels.num_threads())
    lower = [np.array(a, dtype=np.float64) for a in init.lower]
    upper = [np.array(a, dtype=np.float64) for a in init.upper]
    settled = [np.array(a, dtype=object) for a in init.settled_by]
    store = kernels.LpRelaxation(lo, hi, False)
    workers = [NeuronProblems(net, lo, hi, store) for _ in range(n_threads)]
    if d is not None:  # the domain's rows, in every LP and in every certificate
        blk = store.add_domain(**d.rows())
        for w in workers:
            w.add_block(blk)
    t0 = time.perf_counter()
    fwd = forward_rounding(net, lo, hi, upper)  # exact LP values widened by it
    # a point of the domain (the box centre): a witness that the bound problems are feasible
    x0 = (lo + hi) / 2 if d is None else d.point
    zc = [z[0] for z in net.preactivations(x0[None, :])]
    # the first layer's interval bounds are exact on a box, not on a polytope
    layers = range(1 if d is None else 0, net.n_layers)
    bar = None
    if progress:
        bar = tqdm(total=net.n_layers - 1, desc=f"{method} bounds", unit="layer")
    lock = threading.Lock()
    with ThreadPoolExecutor(n_threads) as pool:
        for k in layers:
            blk = store.add_layer(net._core, k - 1, lower[k - 1], upper[k - 1]) if k else None
            aff = store.pre_activation(net._core, k)
            # a network point inside every bound so far proves the problem feasible
            witness = all(bool(np.all((lower[j] <= zc[j]) & (zc[j] <= upper[j]))) for j in range(k))
            for w in workers:
                if blk is not None:
                    w.add_block(blk)
                w.set_targets(k, aff, fwd[k])
                w.witness = witness
            hidden = k < net.n_layers - 1
            sign_only = hidden and not full
            if sign_only:
                targets = np.flatnonzero((lower[k] < 0) & (upper[k] > 0))
            else:
                targets = np.arange(lower[k].size)
            # similar objectives next to each other (each LP's starting basis also tries the
            # sides of the solutions just before it on the same thread)
            order = targets[nearest_neighbour_order(aff.A[targets])]
            if len(order):
                # a starting side per unstable unit for each LP, from alpha-CROWN
                live = order[np.any(aff.A[order] != 0, axis=1)]
                H = store.alpha_hints(workers[0].cost_idx, np.vstack([aff.A[live], -aff.A[live]]),
                                      ALPHA_ITERATIONS, ALPHA_STEP)
                rows = {(int(i), "min"): r for r, i in enumerate(live)}
                rows.update({(int(i), "max"): r + len(live) for r, i in enumerate(live)})
                for w in workers:
                    w.set_alpha(H, rows)
            solves, n_targets = [0], len(order)  # LPs solved in this layer, for the progress bar

            def phase(tasks, k=k, stop=sign_only, solves=solves, n_targets=n_targets):
                """Solve the (neuron, side) tasks in order, each thread taking the next one
                when it is free; then store the values."""
                def solve(t, task, out):
                    i, side = task
                    start = lower[k][i] if side == "min" else upper[k][i]
                    out.append((i, side, workers[t].side(i, side, float(start), stop)))
                    if bar is not None:
                        with lock:
                            solves[0] += 1
                            if solves[0] % 16 == 0:
                                bar.set_postfix(layer=k, targets=n_targets, solves=solves[0])

                # fixed slices: every run solves the same LPs from the same warm starts
                for part in run_on_free_workers(pool, n_threads, tasks, lock, solve, fixed=True):
                    for i, side, v in part:
                        bound = lower[k] if side == "min" else upper[k]
                        if v != bound[i]:
                            settled[k][i] = method
                        bound[i] = v

            # consecutive tasks keep one objective sign, so that the hints stay close
            if sign_only:
                # first the side more likely to prove the unit stable, then the other side
                # of the units it did not
                max_first = upper[k][order] < -lower[k][order]
                phase([(int(i), "min") for i in order[~max_first]] +
                      [(int(i), "max") for i in order[max_first]])
                open_ = (lower[k][order] < 0) & (upper[k][order] > 0)
                phase([(int(i), "max") for i in order[open_ & ~max_first]] +
                      [(int(i), "min") for i in order[open_ & max_first]])
            else:
                phase([(int(i), "min") for i in order] + [(int(i), "max") for i in order])
            if bar is not None:
                bar.set_postfix(layer=k, targets=n_targets, solves=solves[0])
                bar.update(1)
    if bar is not None:
        bar.close()
    seconds = dict(init.seconds)
    seconds[method] = time.perf_counter() - t0
    return Bounds(tuple(lower), tuple(upper), lo, hi, method, tuple(settled), seconds, domain=d)


def lp(net: Network, lo=None, hi=None, init: Bounds | None = None, threads: int | None = None,
       full: bool = False, progress: bool = False, *, domain: Domain | None = None, A_ub=None,
       b_ub=None, A_eq=None, b_eq=None, l1=None) -> Bounds:
    """LP-relaxation bounds, layer by layer: for each neuron, the min and max of its
    pre-activation over the triangle relaxation of every earlier unstable ReLU (the LP
    relaxation of the big-M encoding), using the tightest bounds known so far.

    ``init`` (default :func:`crown`) gives the starting bounds; neurons they already prove
    stable are not re-solved unless ``full=True``; without ``full`` a hidden neuron's
    second LP is skipped once the first proves it stable (its value then stays at
    ``init``'s) and the dual simplex stops as soon as the sign is proven. Stably inactive
    units are eliminated from the LP, stably active ones substituted. Every value is made
    rigorous from the LP's dual solution, whatever the solver's tolerances. ``threads``
    HiGHS instances (default: all cores) split each layer's neurons into fixed slices, so
    the result is the same on every run with the same ``threads`` (bit for bit; another
    thread count may differ in the last digits, each result sound).

    On a :class:`Domain` (keywords as :func:`interval`) the LPs run over its tightened box
    with its rows added to every LP (an l1 ball as ``t_i >= |x_i - center_i|``,
    ``sum t <= eps``), and the certificates count those rows' multipliers too; ``init``
    must hold on that domain.
    """
    d, lo, hi = domain_and_box(net, lo, hi, domain, A_ub, b_ub, A_eq, b_eq, l1)
    return _per_neuron(net, lo, hi, init, "lp", threads=threads, full=full, progress=progress, d=d)
