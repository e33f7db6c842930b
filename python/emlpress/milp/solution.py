"""Solving a HiGHS model with embedded models: :func:`solve` and its :class:`Solution`,
every answer verified against each model's own evaluation and repaired where it fails
(:mod:`emlpress.milp.repair`)."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import highspy
import numpy as np

from emlpress import _options
from emlpress._highs import MagnitudeError, col_name, option_value, tighten_tolerances
from emlpress.milp import bnb as _bnb
from emlpress.milp import incumbent as _incumbent
from emlpress.milp import obbt as _obbt
from emlpress.milp import repair as _repair_mod
from emlpress.milp.handle import VERIFY_RTOL, registered_handles

__all__ = ["solve", "Solution", "MIP_GAP", "MIP_ABS_GAP"]


_STATUS = {
    "kOptimal": "OPTIMAL",
    "kInfeasible": "INFEASIBLE",
    "kUnbounded": "UNBOUNDED",
    "kUnboundedOrInfeasible": "INFEASIBLE_OR_UNBOUNDED",
    "kTimeLimit": "TIME_LIMIT",
    "kIterationLimit": "ITERATION_LIMIT",
    "kSolutionLimit": "SOLUTION_LIMIT",
    "kInterrupt": "INTERRUPTED",
    "kHighsInterrupt": "INTERRUPTED",
    "kObjectiveBound": "OBJECTIVE_BOUND",
    "kObjectiveTarget": "OBJECTIVE_TARGET",
    "kMemoryLimit": "MEMORY_LIMIT",
    "kModelEmpty": "MODEL_EMPTY",
}


@dataclass
class Solution:
    """Result of :func:`solve`. ``status`` is a name such as ``OPTIMAL`` (a verified answer
    within the MIP gap asked for), ``FEASIBLE`` (verified, not proven within the gap),
    ``INFEASIBLE``, ``TIME_LIMIT`` (with the verified incumbent when one was found:
    ``has_solution``), ``INFEASIBLE_OR_UNBOUNDED``, ``NUMERICAL`` (HiGHS' answer failed its
    check and no verified point was found: ``mismatch`` says by how much). ``objective`` is
    always that of a verified point; ``repaired`` names the repair that found it ("" when
    HiGHS' answer passed as it came); ``probed`` names the probe of HiGHS' bound that
    replaced the answer by a better verified point ("" when none). ``solver`` says who
    answered: ``"highs"`` or ``"emlpress-bab"`` (:mod:`emlpress.milp.bnb`, whose
    ``best_bound`` is certified from its own rigorous LPs and whose INFEASIBLE carries its
    checked ``certificate``)."""

    status: str
    objective: float
    best_bound: float
    gap: float
    nodes: int
    encode_s: float
    solve_s: float
    has_solution: bool
    col_values: np.ndarray | None
    inputs: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    verify_diff: dict = field(default_factory=dict)
    repaired: str = ""
    mismatch: float = 0.0
    #: which solver answered: "highs", or "emlpress-bab" (emlpress' own certified
    #: branch-and-bound, milp/bnb.py)
    solver: str = "highs"
    #: an INFEASIBLE verdict's checked certificate where the branch-and-bound gives one (the
    #: bounds.domain.EmptyDomainError: row multipliers and the violation bound they prove)
    certificate: object = None
    #: the MIP start of :mod:`emlpress.milp.incumbent` ("" when none: how it was found), its
    #: verified objective, and whether it was used (HiGHS' answer no worse, or the answer)
    start: str = ""
    start_objective: float = float("nan")
    start_used: bool = False
    #: the probe of HiGHS' bound (issue 34, :func:`emlpress.milp.repair.probe`): how the
    #: verified point that replaced HiGHS' answer was found ("" when none did)
    probed: str = ""
    #: ``solve(tighten=True)``'s :class:`~emlpress.milp.obbt.TightenReport` (None: not run)
    tighten_report: object = None

    def __repr__(self) -> str:
        return (
            f"Solution(status={self.status}, objective={self.objective:.6g}, "
            f"best_bound={self.best_bound:.6g}, gap={self.gap:.3g}, nodes={self.nodes}, "
            f"encode_s={self.encode_s:.4f}, solve_s={self.solve_s:.4f})"
        )


#: solve()'s default gaps: HiGHS 1.x's own defaults, set explicitly so that no result
#: depends on what a HiGHS release chooses
MIP_GAP = 1e-4
MIP_ABS_GAP = 1e-6


def solve(h, time_limit: float | None = None, mip_gap: float = MIP_GAP,
          threads: int | None = None, verbose: bool = False,
          confirm_infeasible: bool = True, mip_abs_gap: float = MIP_ABS_GAP,
          solver: str = "auto",
          start: str | None = "auto", tighten: bool = False) -> Solution:
    """Run HiGHS on ``h`` and return a :class:`Solution` with the values of every network's
    inputs and outputs. The answer is optimal within the relative ``mip_gap`` (default
    ``MIP_GAP`` = 1e-4) or the absolute ``mip_abs_gap`` (default 1e-6), both always passed
    to HiGHS; pass ``mip_gap=0`` to compare optima more closely.

    Every answer is verified: each network added with :func:`add_network` against its
    forward pass, a tree against ``predict``, a quantized network from
    :func:`add_quantized_network` against LiteRT's reference interpreter (bit for bit). An
    answer that differs by more than ``VERIFY_RTOL`` (relative to max(1, |output|); HiGHS'
    tolerances can make a big-M encoding lie) is repaired as :mod:`emlpress.milp.repair`
    describes (exact evaluation at the MILP's inputs, the LP with the integers fixed, a
    re-solve at tolerance 1e-9), with a warning naming the model: the objective reported is
    then that of the verified point, ``Solution.repaired`` says how it was found and
    ``Solution.mismatch`` how far HiGHS' own answer was. The status is ``OPTIMAL`` only when
    the verified objective is within the gaps of HiGHS' bound, else ``FEASIBLE`` (or the time
    limit's status); when no point can be verified it is ``NUMERICAL`` with no solution and a
    ``nan`` objective. ``threads`` sets HiGHS' process-wide scheduler: give it once per process.

    HiGHS and the model's scale (issue 34): HiGHS checks rows absolutely, so where rows reach
    ~1e11 float64 rounding alone exceeds its ``mip_feasibility_tolerance`` at the true
    optimum, and HiGHS 1.16 cut it off and called a worse point OPTIMAL. HiGHS is therefore
    never run below :func:`emlpress.milp.repair.rounding_floor` (the option is raised for
    the run, with a warning naming the network, and put back); a model that would need more
    than ``repair.MAX_TOLERANCE`` is refused (``MagnitudeError``, one line naming the
    network and the coefficient). After HiGHS, verified points near its answer
    (:func:`emlpress.milp.repair.probe`) check its bound: one that beats the bound (beyond
    ``VERIFY_RTOL``) proves HiGHS' OPTIMAL wrong, and the answer then carries that point, a
    warning naming the models and both numbers, and the LP relaxation's bound certified from
    its duals (:func:`emlpress.milp.repair.certified_bound`; OPTIMAL only within its gaps) or
    none (``+inf`` for a maximisation). After a HiGHS failure (``SOLVEERROR``, ...) the
    bound reported is that certified one, never HiGHS' 0.

    With ``confirm_infeasible`` (default), an ``INFEASIBLE`` verdict is re-checked by a
    second run without presolve: HiGHS 1.15's MIP presolve was seen declaring nearly
    constant networks (bounds of width ~1e-9 on outputs of ~1e3) infeasible although every
    forward pass satisfies the encoding to 1e-11; the re-run found the optimum. If the
    verdicts differ, the second one is returned with a warning.

    ``solver``: ``"auto"`` (default) answers a model of one network (:func:`add_network`),
    linear rows over its inputs (an l1 ball with auxiliary columns included) and a linear
    objective over its outputs by emlpress' own certified branch-and-bound
    (:mod:`emlpress.milp.bnb`: on the small trained regressors of benches/README.md it was
    faster than HiGHS on every problem), any other model by HiGHS; ``"bab"`` insists on the
    branch-and-bound (``ValueError`` saying why a model is not of its form); ``"highs"``
    HiGHS always. The branch-and-bound's answer is verified as HiGHS' is; its
    ``best_bound`` is certified, OPTIMAL means within the gaps (at least 1e-9 relative: the
    rounding a certified bound carries), TIME_LIMIT gives the verified incumbent and the
    certified bound, and HiGHS options set on ``h`` do not apply to it.

    ``start="auto"`` (default; None: off): before HiGHS runs (and before the
    branch-and-bound, which takes it as its first incumbent), a
    verified point found from the networks themselves (:mod:`emlpress.milp.incumbent`: the
    LP relaxation completed, attacks, local search over activation regions), within a tenth
    of ``time_limit`` (1 to 10 s, taken from HiGHS' share), is given to HiGHS as a MIP start; where HiGHS ends without a
    point as good (a time limit with no incumbent), that point is the answer. Models whose
    embedded models have at most ``incumbent.SMALL_MODEL`` binaries get it only under a
    time limit below a second (HiGHS finds their first point at once; the branch-and-bound
    takes it on every model with rows besides the box, where its own samples do worse).
    ``Solution.start``/``start_objective``/``start_used`` say what it was and whether it was
    used.

    ``tighten=True``: before HiGHS runs (not before the branch-and-bound, which bounds its own
    nodes), :func:`emlpress.milp.tighten` bounds every unstable unit over the LP relaxation
    of the whole model, certified from its duals, and rewrites the big-M rows, within a
    quarter of ``time_limit`` (the rest for HiGHS); ``Solution.tighten_report`` is its
    :class:`~emlpress.milp.obbt.TightenReport`. A relaxation it proves infeasible gives
    ``INFEASIBLE`` with the checked Farkas ``certificate``, without running HiGHS. Off by
    default: on the chained epidemics weeks of benches/README.md it cost LPs without closing
    more of the gap.

    The answer is also kept on ``h``: :meth:`NetworkHandle.get_error` without an argument
    reads it (HiGHS' own solution is not the answer after the branch-and-bound or a
    repair)."""
    time_limit = _options.seconds("time_limit", time_limit)
    mip_gap = _options.gap("mip_gap", mip_gap)
    mip_abs_gap = _options.gap("mip_abs_gap", mip_abs_gap)
    if mip_gap is None or mip_abs_gap is None:
        raise ValueError("mip_gap and mip_abs_gap must be numbers >= 0 (HiGHS' defaults vary by release)")
    threads = _options.threads(threads)
    _incumbent.check_start(start)  # MIP start (issue 34): a bad value refused whoever answers
    # --- emlpress' own branch-and-bound (milp/bnb.py): models of its form, unless "highs" ---
    sol = _bnb.solve(h, solver, time_limit, mip_gap, mip_abs_gap, start)  # seeded by the start
    if sol is not None:
        return _remember(h, sol)
    # --- end of the branch-and-bound dispatch ---
    h.setOptionValue("output_flag", bool(verbose))
    if time_limit is not None:
        h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", float(mip_gap))
    h.setOptionValue("mip_abs_gap", float(mip_abs_gap))
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    t0 = time.perf_counter()
    report, spent = None, 0.0
    if tighten:  # whole-model bound tightening (issue 34: emlpress.milp.obbt)
        report = _obbt.tighten(h, time_limit=None if time_limit is None else time_limit / 4)
        spent = time.perf_counter() - t0
        if report.status == "INFEASIBLE":
            maximize = h.getObjectiveSense()[1] == highspy.ObjSense.kMaximize
            sol = Solution(status="INFEASIBLE", objective=float("nan"),
                           best_bound=-np.inf if maximize else np.inf, gap=float("inf"), nodes=0,
                           encode_s=float(sum(hd.encode_s for hd in registered_handles(h))),
                           solve_s=spent, has_solution=False, col_values=None,
                           certificate=report, tighten_report=report)
            return _remember(h, sol)
    left = None if time_limit is None else max(0.0, float(time_limit) - spent)
    # --- MIP start (issue 34: emlpress.milp.incumbent) ---
    inc = _incumbent.mip_start(h, start, left)
    if time_limit is not None:
        h.setOptionValue("time_limit", max(0.0, left - (inc.seconds if inc is not None else 0.0)))
    # ---
    handles = registered_handles(h)
    M = _repair_mod.model_arrays(h)
    # answers are verified at HiGHS' primal tolerance (relative to each row's magnitude)
    verify_tol = option_value(h, "primal_feasibility_tolerance")
    floor, saved = _scale_tolerances(h, M, handles)
    try:
        sol = _run_highs(h, M, handles, inc, t0, time_limit, mip_gap, mip_abs_gap,
                         confirm_infeasible, verify_tol, floor)
        sol.tighten_report = report
        return _remember(h, sol)
    finally:  # the user's tolerances back on h
        for o, val in saved.items():
            h.setOptionValue(o, val)


#: a probe's point replaces HiGHS' answer when better by more than this, relative to
#: max(1, |objective|): float64 noise, not an improvement
PROBE_NOISE = 1e-12
#: HiGHS statuses after which its dual bound means nothing (it reports 0)
_NO_BOUND = ("SOLVEERROR", "MODELERROR", "PRESOLVEERROR", "POSTSOLVEERROR", "LOADERROR",
             "NOTSET", "UNKNOWN", "MODEL_EMPTY", "MEMORY_LIMIT")


#: the tolerance _scale_tolerances raises: HiGHS checks an incumbent's rows against it (the
#: primal one, of its LPs, did not matter on the drawn networks of tests/test_highs_path.py:
#: 0 wrong answers in 660 either way; it stays what answers are verified at)
_SCALED = ("mip_feasibility_tolerance",)


def _owner(h, handles, row: int, col: int) -> str:
    """Who wrote ``row``: "network 'nn'" (its rows as add_network wrote them, or one of its
    columns in the row), else "row k of the model"."""
    for hd in handles:
        blk = getattr(hd, "row_block", None)
        if blk is not None and blk[0] <= row < blk[0] + blk[1].size - 1:
            return f"network {hd.name!r}"
    for hd in handles:
        own = [np.asarray(hd.input_cols), np.asarray(hd.output_cols)]
        own += [np.asarray(c) for c in getattr(hd, "layer_cols", [])]
        if col >= 0 and any(np.any(c == col) for c in own):
            return f"model {hd.name!r}"
    return f"row {row} of the model"


def _scale_tolerances(h, M, handles) -> tuple[float, dict]:
    """Raise HiGHS' MIP feasibility tolerance of ``h`` to the model's
    :func:`~emlpress.milp.repair.rounding_floor` where it is below it, with a warning
    naming the model (returns the floor and the old value, which solve() puts back);
    refuse (``MagnitudeError``, one line) a model whose rounding exceeds ``MAX_TOLERANCE``.
    HiGHS checks rows absolutely: below the floor it rejects exactly computed points and
    (HiGHS 1.16) cuts the optimum off, reporting a worse point OPTIMAL (issue 34)."""
    R = _repair_mod
    floor, row, col = R.rounding_floor(M)
    if row < 0:
        return floor, {}
    where = _owner(h, handles, row, col)
    mag = floor / R.ROUNDING_RTOL  # exact: a power of two
    j = M.A.indices[M.A.indptr[row]:M.A.indptr[row + 1]] == col
    coef = float(M.A.data[M.A.indptr[row]:M.A.indptr[row + 1]][j][0]) if col >= 0 else 0.0
    term = (f"coefficient {coef:.3g} on {col_name(h, col)} bounded by "
            f"{max(abs(M.col_lo[col]), abs(M.col_hi[col])):.3g}") if col >= 0 else "its bounds"
    if floor > R.MAX_TOLERANCE:
        raise MagnitudeError(
            f"{where}: a row reaches {mag:.3g} in magnitude ({term}); float64 rounds it by up "
            f"to {floor:.2g}, above the largest feasibility tolerance HiGHS' MIP is given "
            f"({R.MAX_TOLERANCE:g}: beyond it a binary no longer says a unit's phase): scale "
            "the inputs or outputs, or tighten the bounds")
    saved = {}
    for opt in _SCALED:
        old = option_value(h, opt)
        if old < floor:
            saved[opt] = old
            h.setOptionValue(opt, float(floor))
    if saved:
        old = ", ".join(f"{o} {v:g}" for o, v in saved.items())
        R.warn(f"{where}: a row reaches {mag:.3g} in magnitude ({term}), where float64 rounds by "
               f"up to {floor:.2g}: HiGHS' {old} raised to {floor:.2g} for this solve (below it "
               "HiGHS rejects exactly computed points and can cut the optimum off); answers are "
               "still verified at primal_feasibility_tolerance", stacklevel=4)
    return floor, saved


def _run_highs(h, M, handles, inc, t0, time_limit, mip_gap, mip_abs_gap, confirm_infeasible,
               verify_tol, floor) -> Solution:
    """HiGHS' run and everything after it: the INFEASIBLE re-check, verification, repair,
    the MIP start, the probe of HiGHS' bound."""
    R = _repair_mod
    lp_tol = max(R.REPAIR_TOL, floor)
    h.run()
    ms = h.getModelStatus()
    status = _STATUS.get(ms.name, ms.name.removeprefix("k").upper())
    if confirm_infeasible and status in ("INFEASIBLE", "INFEASIBLE_OR_UNBOUNDED"):
        presolve = option_value(h, "presolve")
        h.setOptionValue("presolve", "off")
        if time_limit is not None:
            h.setOptionValue("time_limit", max(0.0, float(time_limit) - (time.perf_counter() - t0)))
        h.clearSolver()
        h.run()
        h.setOptionValue("presolve", presolve)
        if time_limit is not None:
            h.setOptionValue("time_limit", float(time_limit))
        ms2 = h.getModelStatus()
        status2 = _STATUS.get(ms2.name, ms2.name.removeprefix("k").upper())
        if status2 != status:
            warnings.warn(
                f"HiGHS reported {status} with presolve and {status2} without; returning the "
                "latter (presolve tolerances on nearly degenerate bounds)", RuntimeWarning,
                stacklevel=3,
            )
            status = status2
    info = h.getInfo()
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    mip = bool(M.integer.any())
    col_values = np.asarray(h.getSolution().col_value) if has_solution else None
    nodes = int(info.mip_node_count) if info.mip_node_count >= 0 else 0
    sense_max = h.getObjectiveSense()[1] == highspy.ObjSense.kMaximize
    trivial = np.inf if sense_max else -np.inf
    best = info.mip_dual_bound if mip else info.objective_function_value
    if status == "INFEASIBLE":
        best = -trivial
    elif status in _NO_BOUND:  # HiGHS failed: its "bound" (0) is no bound
        best = trivial
    objective = float(info.objective_function_value) if has_solution else float("nan")
    gap = float(info.mip_gap) if mip and has_solution else (0.0 if has_solution else float("inf"))
    repaired, mismatch, probed = "", 0.0, ""
    names = ", ".join(repr(hd.name) for hd in handles) or "(no embedded model)"
    sound = _SoundBound(M, handles, sense_max, time_limit, t0)
    # (inputs, outputs, (max |difference|, scale)) of every model: one evaluation each
    checks = {}
    if has_solution:
        for hd in handles:
            x, y = hd.values_at(col_values)
            checks[hd.name] = (x, y, hd._check(x, y))
    failed = {n: c[2] for n, c in checks.items()
              if next(hd for hd in handles if hd.name == n)._mismatch(*c[2]) is not None}
    if failed:
        mismatch = max(d / s for d, s in failed.values())
        cand, best, nodes = _repair(h, M, handles, col_values, status, best, nodes, sense_max,
                                    mip_gap, mip_abs_gap, time_limit, t0, verify_tol, lp_tol)
        names_d = ", ".join(f"network {n!r} by {d:.3g} (relative {d / s:.3g})"
                            for n, (d, s) in failed.items())
        head = (f"{names_d}: the MILP's outputs differ from the model's own evaluation at the "
                f"MILP's inputs, so HiGHS' objective {objective:.9g} is not verified (its "
                "feasibility tolerances let a big-M encoding move)")
        if cand is None:
            status, has_solution, objective, gap = "NUMERICAL", False, float("nan"), float("inf")
            R.warn(f"{head}; no verified point was found (exact evaluation, the LP "
                   f"with the integers fixed, a re-solve at tolerance "
                   f"{max(R.REPAIR_TOL, floor):g}): status NUMERICAL")
        else:
            col_values, objective, repaired = cand.values, cand.objective, cand.how
            checks = {}  # the repaired point's, below
            status, best, gap = _verified_status(status, objective, best, sense_max, mip_gap,
                                                 mip_abs_gap, names, sound)
            R.warn(f"{head}; repaired by {repaired}: verified objective "
                   f"{objective:.9g}, status {status}")
    # --- MIP start (issue 34): the verified start where HiGHS ended without a point as good ---
    # (never against INFEASIBLE: HiGHS then rejected the start at its own tolerances, and a
    # point verified relative to its rows' magnitude is no proof against them: tree
    # encodings at 1e-9 exclude such points on purpose, tests/test_ensemble.py)
    if inc and status not in ("INFEASIBLE", "INFEASIBLE_OR_UNBOUNDED"):
        better = not has_solution or (inc.objective - objective) * (1 if sense_max else -1) > 0
        if better:
            col_values, objective, has_solution, checks = inc.values, inc.objective, True, {}
            repaired = f"MIP start ({inc.how})" if mismatch else repaired
            status, best, gap = _verified_status("FEASIBLE" if status == "NUMERICAL" else status,
                                                 objective, best, sense_max, mip_gap, mip_abs_gap,
                                                 names, sound)
    # --- the probe of HiGHS' bound (issue 34): verified points near its answer that beat it ---
    if status not in ("INFEASIBLE", "INFEASIBLE_OR_UNBOUNDED", "UNBOUNDED") and handles:
        raw = None if has_solution else np.asarray(h.getSolution().col_value, np.float64)
        if raw is not None and raw.size != M.cost.size:
            raw = None
        cur = R.Candidate(col_values, objective, repaired) if has_solution else None
        found = R.probe(M, handles, cur, raw, verify_tol, _grace(time_limit, t0), sense_max,
                        lp_tol)
        # taken where HiGHS had no point, or better beyond float64 noise: the answer is then
        # that point, and HiGHS' bound is never left below it (_verified_status)
        gain = float("inf") if cur is None or found is None else \
            (found.objective - objective) * (1 if sense_max else -1)
        if found is not None and gain > PROBE_NOISE * max(1.0, abs(objective)):
            if not has_solution and status in _NO_BOUND:
                status = "FEASIBLE"
            if cur is None:  # a repair of HiGHS' failed answer
                repaired = found.how
            col_values, objective, has_solution, checks = found.values, found.objective, True, {}
            probed = found.how
            status, best, gap = _verified_status(status, objective, best, sense_max, mip_gap,
                                                 mip_abs_gap, names, sound)
    if status in _NO_BOUND or (status == "FEASIBLE" and not np.isfinite(best)):
        best = sound.value(objective)  # HiGHS gave no usable bound: the certified relaxation's
        if has_solution:
            gap = _gap(objective, best) if np.isfinite(best) else float("inf")
    # ---
    solve_s = time.perf_counter() - t0
    sol = Solution(
        status=status,
        objective=objective,
        best_bound=float(best),
        gap=gap,
        nodes=nodes,
        encode_s=float(sum(hd.encode_s for hd in handles)),
        solve_s=solve_s,
        has_solution=has_solution,
        col_values=col_values,
        repaired=repaired,
        mismatch=mismatch,
        probed=probed,
    )
    if inc is not None:  # MIP start (issue 34)
        sol.start, sol.start_objective = inc.how, inc.objective
        sol.start_used = bool(inc) and (objective - inc.objective) * (1 if sense_max else -1) >= 0
    if col_values is not None:
        for hd in handles:
            if hd.name not in checks:
                x, y = hd.values_at(col_values)
                checks[hd.name] = (x, y, hd._check(x, y))
            x, y, (diff, _) = checks[hd.name]
            sol.inputs[hd.name], sol.outputs[hd.name], sol.verify_diff[hd.name] = x, y, diff
    return sol


def _grace(time_limit, t0) -> float | None:
    """The deadline of the checks after HiGHS (the probe, the certified bound): the time
    limit's end, but at least a second from now (each is about one LP)."""
    return None if time_limit is None else max(t0 + float(time_limit), time.perf_counter() + 1.0)


class _SoundBound:
    """:func:`~emlpress.milp.repair.certified_bound` of the model, computed once, when asked."""

    def __init__(self, M, handles, sense_max, time_limit, t0):
        self.args = (M, handles, sense_max)
        self.deadline = _grace(time_limit, t0)
        self._value = None

    def value(self, objective: float = float("nan")) -> float:
        """The certified bound, or the trivial one where a verified ``objective`` beats it
        (then something is wrong with the certificate: never report a bound below a point)."""
        if self._value is None:
            self._value = _repair_mod.certified_bound(*self.args, self.deadline)
        sense_max = self.args[2]
        if (objective - self._value if sense_max else self._value - objective) > 0:
            return np.inf if sense_max else -np.inf
        return self._value


#: where solve() keeps its last answer on the Highs object (NetworkHandle.get_error reads it)
LAST_SOLUTION_ATTR = "_emlpress_last_solution"


def _remember(h, sol: Solution) -> Solution:
    """``sol``, kept on ``h`` as its last answer."""
    h.__dict__[LAST_SOLUTION_ATTR] = sol
    return sol


def _gap(objective: float, bound: float) -> float:
    """HiGHS' relative gap: |bound - objective| / |objective| (inf at objective 0 unless equal)."""
    d = abs(bound - objective)
    if d == 0.0:
        return 0.0
    return d / abs(objective) if objective != 0.0 else float("inf")


def _within(objective: float, best: float, sense_max: bool, mip_gap: float, mip_abs_gap: float) -> bool:
    """Whether ``objective`` is within the gaps asked for of the bound ``best`` (and does not
    beat it beyond them)."""
    d = (best - objective) if sense_max else (objective - best)
    tol = max(mip_abs_gap, mip_gap * abs(objective))
    return abs(d) <= tol or (d >= 0 and _gap(objective, best) <= mip_gap)


def _verified_status(status: str, objective: float, best: float, sense_max: bool,
                     mip_gap: float, mip_abs_gap: float, names: str = "",
                     sound: _SoundBound | None = None) -> tuple[str, float, float]:
    """(status, bound, gap) for a verified objective against HiGHS' bound: OPTIMAL only
    within the gaps asked for. A bound the verified point beats by more than ``VERIFY_RTOL``
    relative (and ``mip_abs_gap``) is proven wrong (HiGHS cut the
    optimum off): never OPTIMAL on it; the bound becomes ``sound``'s certified one (OPTIMAL
    only within the gaps of that), else the trivial one, with a warning naming the models
    (``names``) and both numbers."""
    beats = objective - best if sense_max else best - objective
    # within VERIFY_RTOL, HiGHS' tolerances (1e-6 integrality, 1e-7 rows) explain it: the
    # precision answers are verified at; the bound is then moved to the point
    if beats > max(mip_abs_gap, VERIFY_RTOL * max(1.0, abs(objective))):
        cert = sound.value(objective) if sound is not None else (np.inf if sense_max else -np.inf)
        said = "HiGHS' OPTIMAL" if status == "OPTIMAL" else "HiGHS' bound"
        _repair_mod.warn(
            f"models {names}: the verified objective {objective:.9g} beats HiGHS' bound "
            f"{best:.9g}, so {said} is wrong (HiGHS cut the optimum off): "
            + (f"the bound reported is the certified LP relaxation's {cert:.9g}"
               if np.isfinite(cert) else "the bound is dropped"))
        gap = _gap(objective, cert) if np.isfinite(cert) else float("inf")
        if np.isfinite(cert) and _within(objective, cert, sense_max, mip_gap, mip_abs_gap):
            return ("OPTIMAL" if status in ("OPTIMAL", "FEASIBLE") else status), cert, gap
        return ("FEASIBLE" if status == "OPTIMAL" else status), cert, gap
    best = max(best, objective) if sense_max else min(best, objective)
    gap = _gap(objective, best)
    if _within(objective, best, sense_max, mip_gap, mip_abs_gap):
        return ("OPTIMAL" if status == "OPTIMAL" else status), best, gap
    return ("FEASIBLE" if status == "OPTIMAL" else status), best, gap


def _repair(h, M, handles, raw, status, best, nodes, sense_max, mip_gap, mip_abs_gap, time_limit,
            t0, tol, lp_tol):
    """(the best verified point or None, HiGHS' bound, nodes) after the steps of
    :mod:`emlpress.milp.repair` on the model's arrays ``M``: points verified at ``tol``
    (HiGHS' primal tolerance), LPs and re-solves at ``lp_tol`` (``REPAIR_TOL``, never below the
    model's :func:`~emlpress.milp.repair.rounding_floor`)."""
    R = _repair_mod
    deadline = None if time_limit is None else t0 + float(time_limit)
    cand = R.repair(M, handles, raw, tol, deadline, lp_tol)
    good = cand is not None and _within(cand.objective, best, sense_max, mip_gap, mip_abs_gap)
    left = None if deadline is None else deadline - time.perf_counter()
    if good or (left is not None and left <= 0.05):
        return cand, best, nodes
    # step 3: the MILP again, tolerances tight (never below the rounding floor), from the
    # verified point
    saved = {o: option_value(h, o) for o in ("mip_feasibility_tolerance", "primal_feasibility_tolerance",
                                        "time_limit")}
    try:
        tighten_tolerances(h, lp_tol)
        if left is not None:
            h.setOptionValue("time_limit", float(left))
        if cand is not None:
            h.setSolution(int(cand.values.size), np.arange(cand.values.size, dtype=np.int32),
                          cand.values)
        h.run()
        info = h.getInfo()
        nodes += max(0, int(info.mip_node_count))
        if h.getModelStatus().name in ("kOptimal", "kTimeLimit", "kInterrupt", "kHighsInterrupt"):
            b2 = info.mip_dual_bound
            if np.isfinite(b2):
                best = min(best, b2) if sense_max else max(best, b2)
        if info.primal_solution_status == 2:
            raw2 = np.asarray(h.getSolution().col_value)
            # the LP of step 2 gets at least a second even when the re-solve used the rest
            lp_deadline = None if deadline is None else max(deadline, time.perf_counter() + 1.0)
            c2 = R.repair(M, handles, raw2, tol, lp_deadline, lp_tol)
            cand = R.better(cand, c2, sense_max)
    finally:
        for o, val in saved.items():
            h.setOptionValue(o, val)
    return cand, best, nodes
