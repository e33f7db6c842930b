"""The TPC closed loop: :func:`solve_loop` (solve, measure, cut off, refit, solve again;
then probe for fewer bits), the answers' verdicts, the repeated solves of the solver-time
comparison, and the brute-force truth an answer is compared with."""

from __future__ import annotations

import math
import time
from dataclasses import replace as _replace

import numpy as np

from emlpress import train as training
from emlpress.data import tpc
from emlpress.data.tpc_oracle import Oracle, brute_force
from emlpress.pipelines.tpc.config import Config, _domain, _limits
from emlpress.pipelines.tpc.model import _answer, _NoCandidates, optimize
from emlpress.pipelines.tpc.surrogate import Surrogate, _Model, _surrogate


def solve_loop(m: _Model, data: tpc.TPCData, split, cfg: Config, oracle: Oracle, res_use: dict,
               fallback: dict, measured_only: bool, on_iteration=None) -> dict:
    """Solve, measure, and (closed loop) cut off, refit and solve again until an answer is
    measured feasible; then probe for fewer bits. Returns the row's loop fields, the
    per-iteration log and the first MILP's surrogate."""
    train, _, _ = split
    lo, hi = _domain(data)
    limits = _limits(cfg)
    hidden = list(m.err_fit.net.sizes[1:-1])
    allowed = [cfg.hw] if cfg.hw else data.hardware
    candidates = _candidates(oracle, allowed, measured_only)
    excluded, extra, log = [], [], []
    t_start = time.perf_counter()
    out = {"loop_stop": ""}
    first = best = None
    sur = _surrogate(m, data, split, cfg, res_use, fallback, lo, hi)

    def step(kind, **opt):
        """One solve and its measurement; None when the MILP has no answer."""
        c = cfg if kind == "solve" else _replace(cfg, time_limit=min(
            cfg.time_limit or math.inf, cfg.probe_time_limit or math.inf))
        try:
            sol, handle = optimize(sur, data, c, excluded, candidates, **opt)
        except _NoCandidates:
            return None, "every measured configuration was cut off"
        it = {"iteration": len(log), "kind": kind, "status": sol.status, "solver_ms": sol.solve_s * 1e3,
              "encode_ms": sol.encode_s * 1e3, "margin_error": sur.margin_error,
              **{f"margin_{k}": v for k, v in sur.margins.items()}}
        log.append(it)
        if not sol.has_solution:
            return None, f"no answer ({sol.status})"
        bits, hw, pred, diff = _answer(sol, data, sur)
        meas = oracle.measure(bits, hw, limits)
        it.update(bits=" ".join(map(str, bits)), total_bits=int(bits.sum()), chosen_hardware=hw, **pred,
                  milp_forward_diff=diff, measured_error=meas.error, measured_time=meas.time,
                  measured_memory_peak=meas.memory_peak, measured_memory_mean=meas.memory_mean,
                  measured_source=meas.source, verdict=_verdict(meas))
        if on_iteration is not None:
            on_iteration(it)
        return (sol, handle, bits, hw, meas, it), None

    def over_budget():
        if cfg.loop_seconds is not None and time.perf_counter() - t_start > cfg.loop_seconds:
            return f"time budget ({cfg.loop_seconds:g} s) spent"
        return None

    # 1. correct until an answer is measured feasible
    while True:
        r, why = step("solve")
        if r is None:
            out["loop_stop"] = why
            break
        sol, handle, bits, hw, meas, it = r
        if first is None:
            first = (sol, sur, handle, candidates)
        if cfg.max_iterations == 0:
            best = it if meas.feasible else None
            out["loop_stop"] = "open loop (max_iterations=0): the answer is measured, not corrected"
            break
        if meas.feasible:
            best = it
            out["loop_stop"] = "measured feasible"
            break
        if not meas.measured:
            out["loop_stop"] = "unmeasured answer (no oracle can measure it; see measured_only)"
            break
        if len(log) > cfg.max_iterations:
            out["loop_stop"] = f"iteration budget ({cfg.max_iterations} corrections) spent"
            break
        if (why := over_budget()) is not None:
            out["loop_stop"] = why
            break
        # cut the configuration off, learn its measurement, refit warm-started
        excluded.append((bits, hw))
        x = np.concatenate([bits.astype(float), [1.0 if w == hw else 0.0 for w in data.hardware]])
        extra.append((x, [tpc.neg_log_error(meas.error)[()], meas.time, meas.memory_mean,
                          meas.memory_peak]))
        Xe = np.repeat(np.array([e[0] for e in extra]), cfg.refit_weight, axis=0)
        Ye = np.repeat(np.array([e[1] for e in extra]), cfg.refit_weight, axis=0)
        X = np.vstack([data.X(train), Xe])
        Y = np.vstack([data.Y(train), Ye])
        common = dict(epochs=cfg.refit_epochs, batch_size=cfg.batch_size, seed=cfg.seed + len(log),
                      lo=lo, hi=hi, learning_rate=cfg.learning_rate, early_stopping=False)
        m.err_fit = training.fit_regressor(X, Y[:, :1], hidden, init=m.err_fit, **common)
        if res_use:
            m.res_fit = training.fit_regressor(X, Y[:, 1:], hidden, init=m.res_fit, **common)
        sur = _surrogate(m, data, split, cfg, res_use, fallback, lo, hi)
    # 2. probe: fewer bits than the measured-feasible answer, on the surrogate's own prediction
    # (no margin); a probe is kept only if it is measured feasible
    probes = 0
    while (best is not None and cfg.max_iterations > 0 and probes < cfg.improve_probes
           and over_budget() is None):
        probes += 1
        r, why = step("probe", max_total=best["total_bits"] - 1, margin_scale=0.0)
        if r is None:
            break
        *_, bits, hw, meas, it = r
        if meas.feasible:
            best = it
        else:
            excluded.append((bits, hw))
    out["iterations"] = len(log)
    out["probes"] = probes
    out["loop_s"] = time.perf_counter() - t_start
    answered = [it for it in log if "bits" in it]
    final = best if best is not None else (answered[-1] if answered else None)
    return {"out": out, "log": log, "first": first, "final": final, "final_sur": sur}


def _candidates(oracle: Oracle, allowed, measured_only: bool):
    """The (bits, hardware) pairs the MILP may choose from (None: any configuration)."""
    return [(k, w) for k, w in oracle.measured_configurations(allowed)] if measured_only else None


def _verdict(meas) -> str:
    if not meas.measured:
        return "unmeasured"
    return "feasible" if meas.feasible else "infeasible"


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
    if row["measured_feasible"] and truth.get("proven") and truth.get("total_bits") is not None:
        row["bits_above_optimum"] = int(row["total_bits"]) - int(truth["total_bits"])


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
