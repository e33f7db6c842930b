"""The TPC closed loop: :func:`solve_loop` (the TPC problem, oracle and refit on
:func:`emlpress.eml.run_loop`), the answers' verdicts, the repeated solves of the solver-time
comparison, and the brute-force truth an answer is compared with."""

from __future__ import annotations

from dataclasses import replace as _replace

import numpy as np

from emlpress import eml
from emlpress import train as training
from emlpress.data import tpc
from emlpress.data.tpc_oracle import Oracle, brute_force
from emlpress.eml import margins
from emlpress.pipelines.tpc.config import RESOURCES, Config, _domain, _limits
from emlpress.pipelines.tpc.model import _answer, _NoCandidates, optimize
from emlpress.pipelines.tpc.surrogate import Surrogate, _Model, _residuals, _surrogate


def solve_loop(m: _Model, data: tpc.TPCData, split, cfg: Config, oracle: Oracle, res_use: dict,
               fallback: dict, measured_only: bool, on_iteration=None) -> dict:
    """One answer by :func:`emlpress.eml.run_loop`: solve the MILP, measure the answer with
    ``oracle``, learn the measurement (warm-started refit, the answer weighted
    ``cfg.refit_weight`` times), cut the configuration off and, after a measured-feasible
    answer, ask for fewer total bits than the best measured one; margins are split conformal
    (``cfg.coverage``) on the calibration rows and every ``cfg.holdout``-th measured answer.
    When the MILP with these margins is infeasible the loop goes on with the smaller margins of
    ``cfg.improve_coverage`` where it is below ``cfg.coverage`` (every answer is measured, so they cost oracle calls, never a
    wrong answer); it stops when the MILP is infeasible with those (no answer with fewer bits
    within the margins), or after ``cfg.max_iterations + 1`` oracle calls or ``cfg.loop_seconds``.
    ``cfg.max_iterations == 0`` is the open loop: one answer, measured, not corrected.

    Returns the row's loop fields (``out``), the per-iteration log, the first MILP's
    (solution, surrogate, handle, candidates), the final answer's log row and the final
    surrogate."""
    train, cal, _ = split
    lo, hi = _domain(data)
    limits = _limits(cfg)
    hidden = list(m.err_fit.net.sizes[1:-1])
    allowed = [cfg.hw] if cfg.hw else data.hardware
    candidates = _candidates(oracle, allowed, measured_only)
    first = []
    refits = {"error": 0, "resources": 0, "skipped": 0}  # the networks refit, the refits skipped
    blo, bhi = data.bit_range()
    open_loop = cfg.max_iterations == 0

    def x_of(config) -> np.ndarray:
        return np.concatenate([np.asarray(config[:-1], float),
                               [1.0 if w == config[-1] else 0.0 for w in data.hardware]])

    def problem(ctx: eml.Context) -> eml.Proposal:
        sur = _replace(ctx.model, margin_error=ctx.margins.get("error", 0.0),
                       margins={k: v for k, v in ctx.margins.items() if k != "error"})
        excluded = [(np.asarray(c[:-1]), c[-1]) for c in ctx.excluded]
        max_total = None if ctx.better_than is None else int(round(ctx.better_than)) - 1
        try:
            sol, handle = optimize(sur, data, cfg, excluded, candidates, max_total=max_total)
        except _NoCandidates:
            return eml.Proposal(None, status="INFEASIBLE",
                                info={"why": "every measured configuration was cut off"})
        if not first:
            first.append((sol, sur, handle, candidates))
        info = {"solver_ms": sol.solve_s * 1e3, "encode_ms": sol.encode_s * 1e3,
                # the table's configurations are enumerated with the surrogate, not solved by MILP
                "method": "MILP" if candidates is None else f"enumeration of {len(candidates)} candidates"}
        if not sol.has_solution:
            return eml.Proposal(None, status=sol.status, info=info)
        bits, hw, pred, diff = _answer(sol, data, sur)
        info.update(bits=" ".join(map(str, bits)), total_bits=int(bits.sum()), chosen_hardware=hw,
                    milp_forward_diff=diff)
        return eml.Proposal((*map(int, bits), hw), float(bits.sum()), sol.status,
                            predicted={k.removeprefix("predicted_"): v for k, v in pred.items()}, info=info)

    def measure(config) -> eml.Measurement:
        meas = oracle.measure(np.asarray(config[:-1]), config[-1], limits)
        if not meas.measured:
            return eml.Measurement(None, source=meas.source, reason=meas.source)
        return eml.Measurement(meas.feasible, source=meas.source, values={
            k: getattr(meas, k) for k in ("error", "time", "memory_mean", "memory_peak")})

    def refit(sur: Surrogate, observed: list) -> Surrogate:
        xs = np.array([x_of(o.config) for o in observed])
        ys = np.array([[tpc.neg_log_error(o.measurement.values["error"])[()],
                        *(o.measurement.values[k] for k in RESOURCES)] for o in observed], float)
        err_miss, res_miss = _missed(sur, xs[-1:], ys[-1])
        if cfg.refit_on == "every":
            err_miss, res_miss = True, bool(res_use)
        refits["error"] += err_miss
        refits["resources"] += res_miss
        if not (err_miss or res_miss):  # the surrogate was right within its band: nothing to learn
            refits["skipped"] += 1
            return sur
        X = np.vstack([data.X(train), np.repeat(xs, cfg.refit_weight, axis=0)])
        Y = np.vstack([data.Y(train), np.repeat(ys, cfg.refit_weight, axis=0)])
        # every row trains (validation=0): no early stopping here, so a held-out split only cost an evaluation per epoch
        common = dict(epochs=cfg.refit_epochs, batch_size=cfg.batch_size, seed=cfg.seed + len(observed),
                      lo=lo, hi=hi, learning_rate=cfg.learning_rate, early_stopping=False, validation=0.0)
        if err_miss:
            m.err_fit = training.fit_regressor(X, Y[:, :1], hidden, init=m.err_fit, **common)
        if res_miss:
            m.res_fit = training.fit_regressor(X, Y[:, 1:], hidden, init=m.res_fit, **common)
        return _surrogate(m, data, split, cfg, res_use, fallback, lo, hi)

    def _missed(sur: Surrogate, x, y) -> tuple[bool, bool]:
        """Whether the error network, and the resource network, missed at the measured answer
        ``x`` (1, n_in) with targets ``y`` (-log10 error, time, memory_mean, memory_peak): the
        measurement breaks a limit the MILP's answer was predicted to meet, or the prediction
        lies outside the surrogate's two-sided ``cfg.coverage`` conformal band (the quantile of
        |predicted - measured| on the calibration rows)."""
        band = margins({k: np.abs(v) for k, v in _residuals(sur, data, cal, res_use).items()}, cfg.coverage)
        broke = {"error": y[0] < -np.log10(cfg.max_error)} | {
            name: limits[name] is not None and y[1 + k] > limits[name] for k, name in enumerate(RESOURCES)}
        err = bool(broke["error"] or abs(sur.error_prediction(x)[0] - y[0]) > band["error"])
        res = False
        if res_use:
            P = sur.resource_prediction(x)[0]
            res = any(broke[name] or abs(P[k] - y[1 + k]) > band[name]
                      for k, name in enumerate(RESOURCES) if name in res_use)
        return err, res

    current = {}  # the surrogate of the local search's current call, for its ranking

    def slack(configs) -> np.ndarray:
        """The surrogate's predicted -log10(error) above the limit (no margin): larger first."""
        X = np.array([x_of(c) for c in configs])
        return current["sur"].error_prediction(X) + np.log10(cfg.max_error)

    descent = (_TableDescent(candidates, slack) if candidates is not None
               else eml.CoordinateDescent(blo, bhi, data.n_vars, score=slack))

    def local(ctx: eml.Context) -> eml.Proposal | None:
        current["sur"] = ctx.model
        prop = descent(ctx)
        if prop is None:
            return None
        bits, hw = np.asarray(prop.config[:-1]), prop.config[-1]
        prop.predicted = _predicted(ctx.model, x_of(prop.config)[None, :], hw)
        prop.info.update(bits=" ".join(map(str, bits)), total_bits=int(bits.sum()), chosen_hardware=hw,
                         method="local search")
        return prop

    def residuals(sur: Surrogate, held_out: list) -> dict:
        extra = [(x_of(o.config), o.measurement.values) for o in held_out]
        return _residuals(sur, data, cal, res_use, extra)

    def on_row(row: dict) -> None:  # the pipeline's names beside the library's
        row["verdict"] = _VERDICTS.get(row.get("label"), row.get("label"))
        if "source" in row:
            row["measured_source"] = row["source"]
        for k in ("interpreter_predicted_error", "interpreter_predicted_time"):  # the library prefixes predicted_
            if f"predicted_{k}" in row:
                row[k] = row[f"predicted_{k}"]
        if on_iteration is not None and "bits" in row:
            on_iteration(row)

    r = eml.run_loop(problem, measure, model=_surrogate(m, data, split, cfg, res_use, fallback, lo, hi),
                     refit=None if open_loop else refit, residuals=residuals,
                     coverage=_stages(cfg),
                     max_calls=cfg.max_iterations + 1, max_seconds=cfg.loop_seconds,
                     holdout=cfg.holdout, on_iteration=on_row,
                     local=None if open_loop or cfg.local_calls == 0 else local, local_calls=cfg.local_calls,
                     local_after=cfg.local_after)
    stop = ("open loop (max_iterations=0): the answer is measured, not corrected" if open_loop
            else r.stop)
    out = {"loop_stop": stop, "loop_proven": r.proven, "iterations": len(r.log),
           "oracle_calls": r.oracle_calls, "loop_s": r.seconds, "refits_error": refits["error"],
           "refits_resources": refits["resources"], "refits_skipped": refits["skipped"]}
    answered = [row for row in r.log if "bits" in row]
    # before and after the local search, in one run: the MILP phase's best and its calls
    milp = [row for row in answered if row.get("phase") == "milp"]
    milp_best = [row["total_bits"] for row in milp if row.get("label") == eml.FEASIBLE]
    out.update(milp_best_bits=min(milp_best) if milp_best else None,
               milp_oracle_calls=milp[-1]["oracle_calls"] if milp else 0,
               local_oracle_calls=r.oracle_calls - (milp[-1]["oracle_calls"] if milp else 0))
    final = (answered[r.answers.index(r.best)] if r.best is not None
             else answered[-1] if answered else None)
    if final is not None:
        final["oracle_calls_to_answer"] = final["oracle_calls"]
    return {"out": out, "log": r.log, "first": first[0] if first else None, "final": final,
            "final_sur": r.model}


def _predicted(sur: Surrogate, x: np.ndarray, hw: str) -> dict:
    """The surrogate's predictions at one configuration ``x`` (1, n_in), as the MILP's
    answers carry them (``error`` raw, resources in their units, fallbacks' maxima, the
    deployed int8 interpreter's)."""
    pred = {"error": float(10 ** -sur.error_prediction(x)[0])}
    if sur.resource_net is not None:
        P = sur.resource_prediction(x)[0]
        pred.update({name: float(P[k]) for k, name in enumerate(RESOURCES)})
    for name, worst in sur.fallback.items():
        pred[name] = worst[hw]
    if "error" in sur.deployed:  # what the deployed int8 model says there, as for the MILP's answers
        pred["interpreter_predicted_error"] = float(10 ** -sur.deployed["error"].interpreter_float(x)[0, 0])
        if "resources" in sur.deployed and sur.resource_net is not None:
            pred["interpreter_predicted_time"] = float(sur.deployed["resources"].interpreter_float(x)[0, 0])
    return pred


class _TableDescent:
    """The local search when answers are restricted to the table's configurations (a neighbour
    one bit away is rarely in it): the table's configurations with fewer total bits than the
    best, none at or below a measured-infeasible one (more bits never increase the error),
    the surrogate's most confident first (``score``: predicted slack)."""

    def __init__(self, candidates, score):
        self.candidates = [(tuple(int(v) for v in b), w) for b, w in candidates]
        self.score = score

    def __call__(self, ctx: eml.Context) -> eml.Proposal | None:
        total = sum(ctx.best[:-1])
        seen = {tuple(c) for c in ctx.excluded}
        bad = {}
        for o in ctx.observations:
            if o.measurement.feasible is False:
                bad.setdefault(o.config[-1], []).append(o.config[:-1])
        bad = {w: np.array(v) for w, v in bad.items()}
        left = [(*b, w) for b, w in self.candidates if sum(b) < total and (*b, w) not in seen
                and not (w in bad and (np.asarray(b) <= bad[w]).all(axis=1).any())]
        if not left:
            return None
        pick = left[int(np.argmax(self.score(left)))]
        return eml.Proposal(pick, float(sum(pick[:-1])), "LOCAL", info={"move": "table: fewer bits"})


def _stages(cfg: Config) -> tuple:
    """The loop's coverage stages: ``coverage``, then ``improve_coverage`` when smaller."""
    more = cfg.improve_coverage is not None and cfg.improve_coverage < cfg.coverage
    return (cfg.coverage, cfg.improve_coverage) if more else (cfg.coverage,)


_VERDICTS = {eml.FEASIBLE: "feasible", eml.INFEASIBLE: "infeasible", eml.UNMEASURED: "unmeasured"}


def _candidates(oracle: Oracle, allowed, measured_only: bool):
    """The (bits, hardware) pairs the MILP may choose from (None: any configuration)."""
    return [(k, w) for k, w in oracle.measured_configurations(allowed)] if measured_only else None


def _timings(sur: Surrogate, data, cfg: Config, candidates=None) -> list[float]:
    """Solve times (ms) of the same MILP: ``timing_repeats`` solves, fewer (at least 3) when
    they would take more than ``timing_seconds``."""
    t = []
    while len(t) < cfg.timing_repeats and (len(t) < 3 or sum(t) < cfg.timing_seconds * 1e3):
        t.append(optimize(sur, data, cfg, candidates=candidates)[0].solve_s * 1e3)
    return t


def _apply_truth(row: dict, truth: dict) -> None:
    """The brute force's optimum beside an answer (distances only for measured-feasible
    answers: an infeasible one can be "below")."""
    row["optimum_bits"] = truth.get("total_bits")
    row["optimum_proven"] = truth.get("proven")
    # the increasing-bits brute force's kernel runs, beside the loop's oracle calls
    row["brute_force_evaluated"] = truth.get("evaluated")
    if row["measured_feasible"] and truth.get("proven") and truth.get("total_bits") is not None:
        row["bits_above_optimum"] = int(row["total_bits"]) - int(truth["total_bits"])
        milp = row.get("milp_best_bits")  # the MILP phase's best, before the local search
        if milp is not None and not (isinstance(milp, float) and np.isnan(milp)):
            row["milp_bits_above_optimum"] = int(milp) - int(truth["total_bits"])


def best_measured_bits(oracle: Oracle, allowed, limits: dict) -> int | None:
    """Fewest total bits of a configuration in the table that the table itself measures
    feasible (mean over its repeats, every limit), on the allowed hardware."""
    best = None
    for bits, hw in oracle.measured_configurations(allowed):
        total = sum(bits)
        if best is not None and total >= best:
            continue
        if oracle.measure_table(bits, hw, limits).feasible:
            best = total
    return best


def _truth(bench: str, data: tpc.TPCData, oracle: Oracle, cfg: Config, allowed) -> dict:
    """Brute force over the kernel when every allowed hardware is measured by re-runs."""
    if cfg.truth_seconds <= 0:
        return {"note": "brute force off (truth_seconds=0)"}
    if any(oracle.source(w) != "kernel re-run" for w in allowed):
        return {"note": "no brute force: the oracle is the data table"}
    seeds = {int(oracle.kernel_hw[w].get("seed", 0)) for w in allowed}
    repeats = {int(oracle.kernel_hw[w].get("repeats", 3)) for w in allowed}
    if len(seeds) != 1 or len(repeats) != 1:
        return {"note": "no brute force: the hardware's data used different kernel inputs or timings"}
    blo, bhi = data.bit_range()
    r = brute_force(bench, cfg.max_error, cfg.max_time, cfg.max_memory_peak, cfg.max_memory_mean,
                    seed=seeds.pop(), bit_range=(blo, bhi), max_seconds=cfg.truth_seconds,
                    repeats=repeats.pop())
    return {k: v for k, v in r.items()}
