"""The measure-learn-improve loop of Empirical Model Learning: :func:`run_loop`.

Each iteration: the *problem* builds and solves the MILP for the current surrogate, margins
and cuts and proposes a configuration; the *oracle* measures it; the measurement joins the
data; the *refit* updates the surrogate; the configuration is cut off (no-good cut), and once
an answer is measured feasible every later answer must have a strictly better objective than
the best measured one (improvement cut); the conformal margins are recomputed on the grown
held-out data. The loop stops when the MILP with its margins and cuts is infeasible (a proof,
within the margins, that no better answer exists), or when a budget of oracle calls or
seconds is spent. Every answer is labelled: ``measured feasible``, ``measured infeasible`` or
``unmeasured`` (with the reason: the oracle raised, returned NaN, or the budget was 0).
An optional ``local`` search then tries neighbours of the best measured answer (each
measured; :mod:`emlpress.eml.local`), where the surrogate's error keeps the MILP away from
the optimum.

The three callables (any pipeline or user code)::

    problem(ctx: Context) -> Proposal   # solve; config=None with status "INFEASIBLE" = proof
    oracle(config) -> Measurement | {"feasible": bool, "objective": ..., **values} | bool
    refit(model, train: list[Observation]) -> model       # warm-started, or re-weighted

and optionally ``residuals(model, calibration: list[Observation]) -> {name: residuals}``,
the held-out residuals (surrogate optimism per constraint) the margins are the
``coverage`` conformal quantiles of (:mod:`emlpress.eml.conformal`); it should include the
pipeline's own calibration rows and the loop's held-out observations.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field

import numpy as np

from emlpress.eml.conformal import check_coverage, margins as conformal_margins
from emlpress.eml.oracle import Measurement, measure

__all__ = ["Proposal", "Context", "Observation", "Answer", "LoopResult", "run_loop",
           "FEASIBLE", "INFEASIBLE", "UNMEASURED"]

FEASIBLE, INFEASIBLE, UNMEASURED = "measured feasible", "measured infeasible", "unmeasured"


@dataclass
class Proposal:
    """What the problem returns: the MILP's answer. ``config``: the integer configuration
    (a tuple, hashable; None when the MILP has no answer), ``objective``: its objective as the
    MILP computes it, ``status``: the solver's status name (``INFEASIBLE`` with
    ``config=None`` is the proof that stops the loop), ``predicted``: the surrogate's
    predictions at the answer ({name: float}), ``info``: anything else for the log."""

    config: tuple | None
    objective: float | None = None
    status: str = "OPTIMAL"
    predicted: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


@dataclass
class Observation:
    """A measured answer in the loop's data. ``role``: ``train`` (given to the refit) or
    ``calibration`` (held out for the margins)."""

    iteration: int
    config: tuple
    proposal: Proposal
    measurement: Measurement
    role: str


@dataclass
class Context:
    """What the problem gets each iteration. It must cut off every configuration in
    ``excluded`` (no-good cuts) and, when ``better_than`` is not None, require an objective
    strictly better than it (below for ``sense="min"``, above for ``"max"``)."""

    iteration: int
    model: object
    margins: dict
    excluded: list
    better_than: float | None
    sense: str
    observations: list
    best: tuple | None = None  # the best measured-feasible configuration (for ``local``)

    def improves(self, objective: float) -> bool:
        """Whether ``objective`` meets the improvement cut (True when there is none)."""
        if self.better_than is None:
            return True
        return objective < self.better_than if self.sense == "min" else objective > self.better_than

    def allowed(self, config) -> bool:
        """Whether ``config`` survives the no-good cuts."""
        return _key(config) not in set(self.excluded)


@dataclass
class Answer:
    """One labelled answer: ``label`` is ``measured feasible``, ``measured infeasible`` or
    ``unmeasured``; ``reason`` says why it is unmeasured. ``objective``: the measured one where
    the oracle measures it, else the MILP's."""

    iteration: int
    config: tuple
    objective: float | None
    label: str
    reason: str
    proposal: Proposal
    measurement: Measurement | None

    @property
    def feasible(self) -> bool:
        return self.label == FEASIBLE

    @property
    def measured(self) -> bool:
        return self.label != UNMEASURED


@dataclass
class LoopResult:
    """``answers`` in the order found; ``best``: the best measured-feasible answer (None:
    none); ``log``: one row per iteration (dicts: iteration, status, config, predicted,
    measured, margins, cut, oracle_calls, seconds, ...); ``stop``: why it stopped;
    ``proven``: it stopped because the MILP with its margins and cuts was infeasible."""

    answers: list
    best: Answer | None
    log: list
    stop: str
    proven: bool
    oracle_calls: int
    seconds: float
    model: object
    margins: dict
    observations: list

    def frame(self):
        """The log as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.log)


def _key(config):
    """A configuration as a hashable tuple of Python scalars."""
    if isinstance(config, np.ndarray) or isinstance(config, list):
        config = tuple(config)
    if isinstance(config, tuple):
        return tuple(v.item() if isinstance(v, np.generic) else v for v in config)
    return config


def _check(problem, oracle, refit, residuals, coverage, sense, max_calls, max_seconds, holdout):
    for name, f in (("problem", problem), ("oracle", oracle)):
        if not callable(f):
            raise TypeError(f"{name} must be callable, got {type(f).__name__}")
    for name, f in (("refit", refit), ("residuals", residuals)):
        if f is not None and not callable(f):
            raise TypeError(f"{name} must be callable or None, got {type(f).__name__}")
    if sense not in ("min", "max"):
        raise ValueError(f"sense must be 'min' or 'max', got {sense!r}")
    _check_count("max_calls", max_calls)
    _check_seconds("max_seconds", max_seconds)
    if isinstance(holdout, bool) or not isinstance(holdout, numbers.Integral) or holdout < 0 or holdout == 1:
        raise ValueError(f"holdout must be 0 (none) or an integer >= 2 (every holdout-th measured "
                         f"answer is held out for the margins), got {holdout!r}")
    if not coverage:
        raise ValueError("coverage: give a coverage in (0, 1) or a decreasing sequence of them")
    for c in coverage:
        check_coverage(c)
    if any(b >= a for a, b in zip(coverage, coverage[1:])):
        raise ValueError(f"coverage stages must decrease, got {list(coverage)}")


def _check_local(local, local_calls, local_seconds, local_after):
    if local is not None and not callable(local):
        raise TypeError(f"local must be callable or None, got {type(local).__name__}")
    _check_count("local_calls", local_calls)
    _check_seconds("local_seconds", local_seconds)
    _check_count("local_after", local_after)


def _check_count(name: str, value) -> None:
    """``value``: None or an integer >= 0 (a bool is not one)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0):
        raise ValueError(f"{name} must be an integer >= 0 or None, got {value!r}")


def _check_seconds(name: str, value) -> None:
    """``value``: None or a number of seconds >= 0 (a bool is not one; NaN is refused)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                              or not value >= 0):
        raise ValueError(f"{name} must be a number of seconds >= 0 or None, got {value!r}")


def run_loop(problem, oracle, *, model=None, refit=None, residuals=None, coverage=0.9,
             sense: str = "min", max_calls: int | None = None, max_seconds: float | None = None,
             holdout: int = 0, on_iteration=None, local=None, local_calls: int | None = None,
             local_seconds: float | None = None, local_after: int | None = None) -> LoopResult:
    """Solve, measure, learn, cut, improve until the MILP proves no better answer exists
    within its margins, or a budget ends the loop (see the module's documentation).

    ``model``: the surrogate the first MILP embeds (passed to ``problem`` as ``ctx.model`` and
    to ``refit``/``residuals``). ``max_calls``: oracle calls at most (``0``: the open loop —
    one MILP answer, returned unmeasured, and the stop reason says so; None: no limit).
    ``max_seconds``: wall seconds after which no new MILP is started (the first always is).
    ``holdout``: every ``holdout``-th measured answer is held out from the refit and given to
    ``residuals`` as calibration data (0: none; the margins are then recomputed on the
    pipeline's own calibration rows under each refit surrogate). ``on_iteration(row)``: called
    with each log row. The problem's exceptions and the refit's propagate (they are bugs);
    the oracle's are labels.

    Margins: {name: the ``coverage`` split-conformal quantile of ``residuals(model,
    calibration)[name]``}: a configuration exchangeable with the calibration points violates
    that constraint by more than the surrogate's error with probability at most
    ``1 - coverage``. ``coverage`` may be a decreasing sequence of stages, e.g. ``(0.9, 0.5)``:
    when the MILP is infeasible at one stage's margins the loop goes on at the next (smaller
    margins: answers the surrogate is less sure of, each measured), and the proof that stops
    it is the last stage's; the log's ``coverage`` column says which stage an iteration ran.

    ``local(ctx) -> Proposal | None``: after the MILP phase ends (by its proof or a budget), a
    local search around the best measured-feasible answer (``ctx.best``; None when there is
    none yet: the search may then repair, from the measured answers): each proposal (strictly
    better than ``ctx.better_than`` when there is a best, not in ``ctx.excluded``) is measured like the MILP's answers and becomes the best when measured
    feasible; no refit (measurements join ``observations``). It ends when ``local`` returns
    None, or after ``local_calls`` oracle calls (None: no limit) or ``local_seconds``; its
    calls count in ``oracle_calls`` (the MILP phase's ``max_calls`` does not bound them), the
    log's ``phase`` says ``local``, and ``stop`` says how it ended
    (e.g. :class:`emlpress.eml.local.CoordinateDescent`). ``local_after``: the MILP phase hands
    over to ``local`` this many oracle calls after its first measured-feasible answer (None:
    at its proof or budget), sparing the refits whose MILPs the local search out-does."""
    coverages = (coverage,) if isinstance(coverage, numbers.Real) else tuple(coverage)
    _check(problem, oracle, refit, residuals, coverages, sense, max_calls, max_seconds, holdout)
    _check_local(local, local_calls, local_seconds, local_after)
    stage = 0
    t0 = time.perf_counter()
    excluded, answers, log, observations = [], [], [], []
    best = None
    calls = 0
    n_measured = 0
    stop, proven = "", False
    first_feasible = None  # oracle calls when the first measured-feasible answer came

    def recompute(model):
        if residuals is None:
            return {}
        return conformal_margins(residuals(model, [o for o in observations if o.role == "calibration"]),
                                 coverages[stage])

    margins = recompute(model)
    better = (lambda a, b: a < b) if sense == "min" else (lambda a, b: a > b)
    while True:
        it = len(log)
        if it > 0 and max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
            stop = f"time budget ({max_seconds:g} s) spent"
            break
        if max_calls is not None and max_calls > 0 and calls >= max_calls:
            stop = f"oracle budget ({max_calls} calls) spent"
            break
        if local is not None and local_after is not None and first_feasible is not None \
                and calls - first_feasible >= local_after:
            stop = (f"handed over to the local search {local_after} MILP answer"
                    f"{'s' if local_after != 1 else ''} after the first measured-feasible one")
            break
        bound = None if best is None else best.objective
        ctx = Context(it, model, dict(margins), list(excluded), bound, sense, list(observations))
        prop = problem(ctx)
        if not isinstance(prop, Proposal):
            raise TypeError(f"problem returned {type(prop).__name__}; expected emlpress.eml.Proposal")
        cut = f"{len(excluded)} no-good" + ("" if bound is None else
                                             f"; improvement: objective {'<' if sense == 'min' else '>'} {bound:g}")
        row = {"iteration": it, "phase": "milp", "status": prop.status, "cuts": cut, "better_than": bound,
               "coverage": coverages[stage], **{f"margin_{k}": v for k, v in margins.items()}}
        if prop.config is None:
            row.update(oracle_calls=calls, seconds=time.perf_counter() - t0, label="no answer")
            log.append(row)
            if on_iteration is not None:
                on_iteration(row)
            unmeasured = sum(not a.measured for a in answers)
            left = (f" ({unmeasured} unmeasured configuration{'s' if unmeasured != 1 else ''} cut off "
                    "without a verdict)") if unmeasured else ""
            if prop.status == "INFEASIBLE" and stage + 1 < len(coverages):
                stage += 1  # the next stage: smaller margins
                margins = recompute(model)
                continue
            if prop.status == "INFEASIBLE":
                proven = True
                within = (f"within the margins ({coverages[stage]:.0%} coverage){left}" if residuals
                          else f"by the surrogate (no margins: no residuals given){left}")
                stop = (f"proven: no answer better than the best measured one ({best.objective:g}) "
                        f"{within}" if best is not None else f"proven: no feasible answer {within}")
            else:
                stop = f"no answer from the MILP ({prop.status})"
            break
        config = _key(prop.config)
        if config in set(excluded):
            raise ValueError(f"problem returned configuration {config}, which was cut off at an "
                             "earlier iteration: it must honour ctx.excluded (no-good cuts)")
        row.update(config=str(config), predicted_objective=prop.objective,
                   **{f"predicted_{k}": v for k, v in prop.predicted.items()}, **prop.info)
        if max_calls == 0:
            why = "oracle budget 0: the open loop's MILP answer, not measured"
            answers.append(Answer(it, config, prop.objective, UNMEASURED, why, prop, None))
            row.update(label=UNMEASURED, reason=why, oracle_calls=0, seconds=time.perf_counter() - t0)
            log.append(row)
            if on_iteration is not None:
                on_iteration(row)
            stop = "open loop (oracle budget 0): one MILP answer, not measured, not corrected"
            break
        meas = measure(oracle, config)
        calls += 1
        excluded.append(config)
        obj = meas.objective if meas.objective is not None else prop.objective
        if not meas.measured:
            a = Answer(it, config, prop.objective, UNMEASURED, meas.reason, prop, meas)
        else:
            a = Answer(it, config, obj, FEASIBLE if meas.feasible else INFEASIBLE, "", prop, meas)
        answers.append(a)
        row.update(label=a.label, reason=a.reason, source=meas.source, measured_objective=meas.objective,
                   **{f"measured_{k}": v for k, v in meas.values.items()})
        if a.measured:
            role = "calibration" if holdout and n_measured % holdout == holdout - 1 else "train"
            n_measured += 1
            observations.append(Observation(it, config, prop, meas, role))
            row["role"] = role
            if a.feasible and obj is not None and (best is None or better(obj, best.objective)):
                best = a
                first_feasible = calls if first_feasible is None else first_feasible
            # the MILP phase ends here when it hands over: no next MILP would use a refit
            handing_over = (local is not None and local_after is not None and first_feasible is not None
                            and calls - first_feasible >= local_after)
            if refit is not None and role == "train" and not handing_over:
                model = refit(model, [o for o in observations if o.role == "train"])
            margins = recompute(model)
        row.update(oracle_calls=calls, seconds=time.perf_counter() - t0)
        log.append(row)
        if on_iteration is not None:
            on_iteration(row)
    if local is not None and max_calls != 0:
        t_local, calls_local, start = time.perf_counter(), calls, None if best is None else best.objective
        why = ""
        while True:
            if local_calls is not None and calls - calls_local >= local_calls:
                why = f"its budget ({local_calls} calls) spent"
                break
            if local_seconds is not None and time.perf_counter() - t_local >= local_seconds:
                why = f"its time budget ({local_seconds:g} s) spent"
                break
            ctx = Context(len(log), model, dict(margins), list(excluded), None if best is None else best.objective,
                          sense, list(observations), best=None if best is None else best.config)
            prop = local(ctx)
            if prop is None or prop.config is None:
                why = ("no neighbour of the best left to try" if best is not None
                       else "nothing left to try, none measured feasible")
                break
            if not isinstance(prop, Proposal):
                raise TypeError(f"local returned {type(prop).__name__}; expected emlpress.eml.Proposal or None")
            config = _key(prop.config)
            if config in set(excluded):
                raise ValueError(f"local returned configuration {config}, which was measured or cut "
                                 "off before: it must honour ctx.excluded")
            if prop.objective is None or not ctx.improves(prop.objective):
                raise ValueError(f"local returned configuration {config} with objective "
                                 f"{prop.objective!r}, not better than the best ({ctx.better_than:g})")
            row = {"iteration": len(log), "phase": "local", "status": prop.status, "better_than": ctx.better_than,
                   "cuts": f"{len(excluded)} no-good" + ("" if best is None else
                                                         f"; local: objective {'<' if sense == 'min' else '>'} "
                                                         f"{best.objective:g}"), "coverage": coverages[stage],
                   **{f"margin_{k}": v for k, v in margins.items()}, "config": str(config),
                   "predicted_objective": prop.objective,
                   **{f"predicted_{k}": v for k, v in prop.predicted.items()}, **prop.info}
            meas = measure(oracle, config)
            calls += 1
            excluded.append(config)
            obj = meas.objective if meas.objective is not None else prop.objective
            if not meas.measured:
                a = Answer(len(log), config, prop.objective, UNMEASURED, meas.reason, prop, meas)
            else:
                a = Answer(len(log), config, obj, FEASIBLE if meas.feasible else INFEASIBLE, "", prop, meas)
                observations.append(Observation(len(log), config, prop, meas, "train"))
                row["role"] = "train"
                if a.feasible and (best is None or better(obj, best.objective)):
                    best = a
            answers.append(a)
            row.update(label=a.label, reason=a.reason, source=meas.source, measured_objective=meas.objective,
                       **{f"measured_{k}": v for k, v in meas.values.items()},
                       oracle_calls=calls, seconds=time.perf_counter() - t0)
            log.append(row)
            if on_iteration is not None:
                on_iteration(row)
        stop += (f"; then a local search: {calls - calls_local} oracle call"
                 f"{'s' if calls - calls_local != 1 else ''}, best {'none' if start is None else f'{start:g}'} -> "
                 f"{'none' if best is None else f'{best.objective:g}'}, ended: {why}")
    return LoopResult(answers, best, log, stop, proven, calls, time.perf_counter() - t0, model,
                      margins, observations)

