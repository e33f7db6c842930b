"""The transprecision (TPC) pipeline: data -> surrogates (baseline, pruned, and their lossless
compressions) -> MILP choosing the fewest total bits under error/time limits -> the answer
measured by an oracle -> if infeasible: measurement added, configuration cut off, surrogate
refit, solved again -> run folder with ``run.summary.csv``, JSON logs, models and plots.

Surrogates, per benchmark, topology and variant (inputs ``var_*`` bits and one-hot hardware,
raw units: the min-max normalisation fit on the training split is folded into the first and
last layers):

- the *error* network predicts ``-log10(error)`` (one output, trained alone: shared with the
  noisy time it fit worse);
- the *resource* network predicts time, memory_mean and memory_peak. An output is used in the
  MILP only when its held-out R2 is at least ``Config.resource_r2_min``; otherwise its limit is
  imposed by the documented fallback: the largest time (memory) measured on each hardware in
  the training split must be within the limit, else that hardware is not chosen.

Margins are split conformal: the data is split into training, calibration and test rows; the
``coverage`` quantile of the calibration residuals (over-prediction of ``-log10(error)``,
under-prediction of time and memory) is added to each constraint, so that a configuration
drawn like the data meets the limits with probability about ``coverage``. The optimizer does
not draw like the data (it looks for the surrogate's most optimistic corner), so the answer is
then measured: the *closed loop* (:func:`solve_loop`) cuts off each measured-infeasible
configuration, adds its measurement to the training rows (weighted ``refit_weight`` times),
refits the surrogate warm-started from its weights, recompresses it, re-computes the margins,
and solves again, until an answer is measured feasible or the budget (``max_iterations``
corrections, ``loop_seconds``) is spent. ``max_iterations=0`` is the open loop: one answer,
measured, never corrected. After a feasible answer, up to ``improve_probes`` probes ask the
surrogate, without margin, for fewer bits than the best feasible answer so far; a probe
replaces it only when measured feasible (so the final answer is always a measured one).

Oracles (:mod:`emlpress.data.tpc_oracle`): a kernel re-run where the data folder's manifest
says the data was measured by this kernel version on a host like this one, else the table (an
answer not in the table is *unmeasured*, no verdict). ``measured_only`` restricts the MILP to
configurations in the table (the default when the table is the oracle, so every answer gets a
verdict).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import sys
import time
import warnings
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from pathlib import Path

import numpy as np
import pandas as pd

from emlpress._atomic import (save_figure_atomic, write_atomic, write_bytes_atomic,
                              write_csv_atomic, write_json_atomic, write_text_atomic)
from emlpress.compress import lossless
from emlpress.data import tpc
from emlpress.data.tpc_oracle import Oracle, brute_force
from emlpress.network import Network

__all__ = ["PRESETS", "Config", "Surrogate", "run", "load_config", "truth_task", "job_task",
           "optimize", "solve_loop", "conformal_margin",
           "solver_time_ratios", "DEFAULT_DATA", "VARIANTS", "QUANTIZED_VARIANTS", "variants"]

# The study's topology catalogue (hidden layer widths), as named presets.
PRESETS = {
    "12-60": [12, 60],
    "21-127": [21, 127],
    "21-508": [21, 508],
    "9-7": [9, 7],
    "12-15": [12, 15],
    "9-28": [9, 28],
    "16-16-16-16": [16, 16, 16, 16],
}
DEFAULT_DATA = Path(__file__).resolve().parents[1] / "default_data" / "tpc"  # installed copy of data/tpc
VARIANTS = ("baseline", "pruned", "baseline+lossless", "pruned+lossless")
#: with ``Config.quantized``: the baseline's full-integer int8 model (TFLite, calibrated on the
#: training rows), embedded by its dequantized weights or exactly as the int8 interpreter
QUANTIZED_VARIANTS = ("baseline+int8-dequantized", "baseline+int8-exact")
ANSWER_MODELS = {
    "float": "the float network (the MILP's outputs equal its forward pass)",
    "dequantized": "the int8 model's dequantized weights; the deployed int8 interpreter differs "
                   "(interpreter_predicted_error)",
    "exact": "the int8 model exactly: its MILP outputs equal LiteRT's reference interpreter bit for bit",
}


def embedding(variant: str) -> str:
    """How a variant's networks are embedded: ``float``, ``dequantized`` or ``exact``."""
    return variant.split("+int8-")[1] if "+int8-" in variant else "float"


def variants(cfg: "Config") -> tuple:
    """The variants a run answers for, in order."""
    return VARIANTS + (QUANTIZED_VARIANTS if cfg.quantized else ())
RESOURCES = ("time", "memory_mean", "memory_peak")
R2_ERROR_GOAL = 0.9


@dataclass
class Config:
    data: Path = DEFAULT_DATA
    benchmarks: list | None = None
    topologies: list = field(default_factory=lambda: ["9-7", "12-15"])
    hw: str | None = None
    max_error: float = 0.01
    max_time: float = 100.0
    max_memory_peak: float | None = None
    max_memory_mean: float | None = None
    time_limit: float = 20.0          # seconds per MILP (then its incumbent, measured like any)
    epochs: int = 200                 # at most (early stopping on a validation split)
    patience: int = 20
    learning_rate: float = 3e-3
    batch_size: int = 32
    prune_epochs: int = 30            # fine-tuning of the trained baseline with TMOT pruning
    resource_epochs: int = 100        # the resource network (time is mostly noise)
    seed: int = 0
    test_size: float = 0.2            # share of all rows
    calibration_size: float = 0.2     # share of the rest, for the conformal margins
    coverage: float = 0.9             # of the conformal margins
    resource_r2_min: float = 0.5      # below: the per-hardware fallback for that limit
    max_iterations: int = 10          # corrections of the closed loop (0: open loop)
    loop_seconds: float = 120.0       # per answer
    improve_probes: int = 2           # after a feasible answer: tries at fewer bits, no margin
    probe_time_limit: float = 5.0     # seconds per probe MILP
    refit_epochs: int = 20
    refit_weight: int = 50            # copies of each measured answer in the refit's rows
    oracle: str = "auto"              # auto | kernel | data
    measured_only: bool | None = None  # default: when the table is the oracle
    truth_seconds: float = 20.0       # brute force per benchmark (kernel oracle only; 0: none)
    timing_repeats: int = 5           # solves of each first MILP for the solver-time comparison
    timing_seconds: float = 10.0      # at most per MILP (at least 3 solves)
    initial_sparsity: float = 0.0
    final_sparsity: float = 0.5
    compression_bounds: str = "lp"
    quantized: bool = False           # also the int8 variants (QUANTIZED_VARIANTS)
    rerun_kernels: bool | None = None  # deprecated: True is oracle="kernel", False "data"
    out: Path = Path("runs")
    progress: bool = True


@dataclass
class Surrogate:
    """What the MILP embeds for one variant: the error network, the resource network (None
    when no resource output is used), their bounds (from lossless compression), the margins and
    the fallback maxima per hardware."""

    error_net: Network
    resource_net: Network | None
    error_bounds: object = None
    resource_bounds: object = None
    margin_error: float = 0.0
    margins: dict = field(default_factory=dict)   # resource name -> margin (used outputs)
    fallback: dict = field(default_factory=dict)  # resource name -> {hw: max measured}
    error_q: object = None      # QuantizedNetwork: embedded exactly instead of error_net
    resource_q: object = None
    tflite: dict = field(default_factory=dict)    # "error"/"resources" -> int8 .tflite bytes
    deployed: dict = field(default_factory=dict)  # the int8 models as the interpreter runs them

    def error_prediction(self, X) -> np.ndarray:
        """-log10(error) as the MILP's model predicts it (the interpreter for exact ones)."""
        return (self.error_q.forward(X) if self.error_q is not None else self.error_net.forward(X))[:, 0]

    def resource_prediction(self, X) -> np.ndarray:
        return self.resource_q.forward(X) if self.resource_q is not None else self.resource_net.forward(X)


def _log(folder: Path, step: str, payload: dict) -> None:
    write_json_atomic(folder / "logs" / f"{step}.json", payload, default=_json)

def _write_summary(folder: Path, rows: list) -> None:
    write_csv_atomic(folder / "run.summary.csv", pd.DataFrame(rows))


def _written(folder: Path, jobs: list, cfg: Config) -> tuple[list, dict]:
    """The answers a stopped run wrote to ``run.summary.csv``: (rows of its finished groups
    (answers and timings), {(benchmark, topology): {variant: row}} of the others)."""
    path = folder / "run.summary.csv"
    if not path.exists() or path.stat().st_size == 0:
        return [], {}
    done = pd.read_csv(path, dtype={"topology": str})
    finished, partial = [], {}
    for (b, t), g in done.groupby(["benchmark", "topology"], sort=False):
        if (b, t) not in jobs:
            continue
        rows = {r["variant"]: r for r in g.to_dict("records") if r["variant"] in variants(cfg)}
        complete = "group_done" in g and g["group_done"].fillna(False).astype(bool).all()
        if len(rows) == len(variants(cfg)) and complete:
            finished += [rows[v] for v in variants(cfg)]
        else:
            partial[(b, t)] = rows
    return finished, partial


def _json(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    return str(o)


def _r2(p: np.ndarray, y: np.ndarray) -> float:
    ss = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((p - y) ** 2)) / ss if ss > 0 else float("nan")


def conformal_margin(residuals, coverage: float) -> float:
    """Split-conformal margin: the ceil((n+1) * coverage)-th smallest residual, so that a new
    residual exchangeable with these is at most the margin with probability >= coverage."""
    r = np.sort(np.asarray(residuals, dtype=float))
    k = math.ceil((len(r) + 1) * coverage)
    if k > len(r):
        raise ValueError(f"{len(r)} calibration rows cannot give a {coverage:.0%} margin "
                         f"(at least {math.ceil(coverage / (1 - coverage))} needed): "
                         "lower coverage or raise calibration_size")
    return float(r[k - 1])


def _domain(data: tpc.TPCData):
    blo, bhi = data.bit_range()
    lo = np.concatenate([blo.astype(float), np.zeros(len(data.hardware))])
    hi = np.concatenate([bhi.astype(float), np.ones(len(data.hardware))])
    return lo, hi


def _check_hw(cfg: Config, data: tpc.TPCData) -> None:
    if cfg.hw is not None and cfg.hw not in data.hardware:
        raise ValueError(f"--hw {cfg.hw!r}: {data.benchmark} has data for {data.hardware} only")


def _limits(cfg: Config) -> dict:
    return {"error": cfg.max_error, "time": cfg.max_time, "memory_peak": cfg.max_memory_peak,
            "memory_mean": cfg.max_memory_mean}


def optimize(sur: Surrogate, data: tpc.TPCData, cfg: Config, excluded=(), candidates=None,
             max_total: int | None = None, margin_scale: float = 1.0):
    """Build and solve the bit-selection MILP; returns (Solution, error-network handle).
    ``max_total`` bounds the total bits; ``margin_scale`` multiplies every margin.

    ``excluded``: (bits, hw) pairs cut off (no-good cuts: some variable differs by at least one
    bit, or another hardware). ``candidates``: restrict to these (bits, hw) pairs (one binary
    each), e.g. the measured configurations."""
    import highspy

    from emlpress import _highs
    from emlpress.milp import add_predictor, solve

    h = _highs.highs()
    blo, bhi = data.bit_range()
    nv, nh = data.n_vars, len(data.hardware)
    bits = h.addVariables(nv, lb=[float(v) for v in blo], ub=[float(v) for v in bhi])
    hw = h.addVariables(nh, lb=0.0, ub=1.0)
    h.changeColsIntegrality(nv + nh, np.arange(nv + nh, dtype=np.int32), np.ones(nv + nh, np.uint8))
    h.addConstr(sum(hw[i] for i in range(nh)) == 1)
    if cfg.hw is not None:
        _check_hw(cfg, data)
        h.addConstr(hw[data.hardware.index(cfg.hw)] == 1)
    excluded = {(tuple(int(v) for v in b), w) for b, w in excluded}
    if candidates is not None:
        cand = [c for c in candidates if (tuple(c[0]), c[1]) not in excluded]
        if not cand:
            raise _NoCandidates()
        z = h.addVariables(len(cand), lb=0.0, ub=1.0)
        h.changeColsIntegrality(len(cand), np.array([z[k].index for k in range(len(cand))], np.int32),
                                np.ones(len(cand), np.uint8))
        h.addConstr(sum(z[k] for k in range(len(cand))) == 1)
        for i in range(nv):
            h.addConstr(bits[i] - sum(float(c[0][i]) * z[k] for k, c in enumerate(cand)) == 0)
        for j, name in enumerate(data.hardware):
            on = [k for k, c in enumerate(cand) if c[1] == name]
            h.addConstr(hw[j] - sum(z[k] for k in on) == 0 if on else hw[j] == 0)
    else:
        for c, name in sorted(excluded):
            if name not in data.hardware:
                continue
            a = h.addVariables(nv, lb=0.0, ub=1.0)
            b = h.addVariables(nv, lb=0.0, ub=1.0)
            idx = np.array([a[i].index for i in range(nv)] + [b[i].index for i in range(nv)], np.int32)
            h.changeColsIntegrality(len(idx), idx, np.ones(len(idx), np.uint8))
            for i in range(nv):
                L, U = float(blo[i]), float(bhi[i])
                h.addConstr(bits[i] + (U - c[i] + 1) * a[i] <= U)        # a_i = 1: bits_i <= c_i - 1
                h.addConstr(bits[i] - (c[i] + 1 - L) * b[i] >= L)        # b_i = 1: bits_i >= c_i + 1
            h.addConstr(sum(a[i] + b[i] for i in range(nv)) - hw[data.hardware.index(name)] >= 0)
    inputs = [*[bits[i] for i in range(nv)], *[hw[i] for i in range(nh)]]

    def embed(net, qnet, net_bounds, name):  # the int8 model where the surrogate has one
        if qnet is not None:
            return add_predictor(h, qnet, inputs, name=name)
        return add_predictor(h, net, inputs, bounds=net_bounds, name=name)

    err = embed(sur.error_net, sur.error_q, sur.error_bounds, "error")
    h.addConstr(err.outputs[0] >= -math.log10(cfg.max_error) + margin_scale * sur.margin_error)
    limits = _limits(cfg)
    if sur.resource_net is not None:
        res = embed(sur.resource_net, sur.resource_q, sur.resource_bounds, "resources")
        for k, name in enumerate(RESOURCES):
            if name in sur.margins:
                h.addConstr(res.outputs[k] + margin_scale * sur.margins[name] <= limits[name])
    for name, worst in sur.fallback.items():  # hardware whose measurements break the limit
        for j, w in enumerate(data.hardware):
            if not worst[w] <= limits[name]:
                h.addConstr(hw[j] == 0)
    if max_total is not None:
        h.addConstr(sum(bits[i] for i in range(nv)) <= float(max_total))
    h.setObjective(sum(bits[i] for i in range(nv)), sense=highspy.ObjSense.kMinimize)
    sol = solve(h, time_limit=cfg.time_limit)
    return sol, err


class _NoCandidates(Exception):
    """Every measured configuration has been cut off."""


def _answer(sol, data: tpc.TPCData, sur: Surrogate):
    x = sol.inputs["error"]
    bits = np.round(x[: data.n_vars]).astype(int)
    hw = data.hardware[int(np.argmax(x[data.n_vars:]))]
    pred = {"predicted_error": float(10 ** -sol.outputs["error"][0])}
    if "resources" in sol.outputs:
        for k, name in enumerate(RESOURCES):
            pred[f"predicted_{name}"] = float(sol.outputs["resources"][k])
    for name, worst in sur.fallback.items():  # the fallback's prediction: the largest measured
        pred[f"predicted_{name}"] = worst[hw]
    if "error" in sur.deployed:  # what the deployed int8 model says at the answer
        xin = np.asarray(x, float)[None, :]
        pred["interpreter_predicted_error"] = float(10 ** -sur.deployed["error"].interpreter_float(xin)[0, 0])
        if "resources" in sur.deployed and "resources" in sol.outputs:
            pred["interpreter_predicted_time"] = float(sur.deployed["resources"].interpreter_float(xin)[0, 0])
    diff = max(sol.verify_diff.values()) if sol.verify_diff else float("nan")
    return bits, hw, pred, diff


class _Model:
    """One variant's surrogates: their training results (to refit from) and how they are used."""

    def __init__(self, err_fit, res_fit, lossless_: bool, embed: str = "float"):
        self.err_fit, self.res_fit, self.lossless = err_fit, res_fit, lossless_
        self.embed = embed  # float | dequantized | exact
        self.compress_ms = float("nan")
        self.reports = {}


def _surrogate(m: _Model, data, split, cfg: Config, res_use: dict, fallback: dict,
               lo, hi) -> Surrogate:
    """Compress (lossless variants) and calibrate the margins of a variant's networks."""
    _, cal, _ = split
    err_net = m.err_fit.net
    res_net = m.res_fit.net if res_use else None
    sur = Surrogate(err_net, res_net, fallback={k: v for k, v in fallback.items()})
    if m.lossless:
        t0 = time.perf_counter()
        sur.error_net, rep = lossless(err_net, lo, hi, bounds=cfg.compression_bounds)
        sur.error_bounds = rep.bounds
        m.reports["error"] = rep
        if res_net is not None:
            sur.resource_net, rep = lossless(res_net, lo, hi, bounds=cfg.compression_bounds)
            sur.resource_bounds = rep.bounds
            m.reports["resources"] = rep
        m.compress_ms = (time.perf_counter() - t0) * 1e3
    if m.embed != "float":
        _quantize(sur, m, data, split, lo, hi)
    Xc = data.X(cal)
    sur.margin_error = conformal_margin(sur.error_prediction(Xc) - cal["neg_log_error"].to_numpy(),
                                        cfg.coverage)
    if sur.resource_net is not None:
        P = sur.resource_prediction(Xc)
        for k, name in enumerate(RESOURCES):
            if name in res_use:
                sur.margins[name] = conformal_margin(cal[name].to_numpy() - P[:, k], cfg.coverage)
    return sur


def _quantize(sur: Surrogate, m: _Model, data, split, lo, hi) -> None:
    """The variant's int8 models (full integer, float I/O, calibrated on the training rows):
    embedded by their dequantized weights or exactly; margins then follow the embedded model."""
    from emlpress.compress.lossy import quantize
    from emlpress.io.tflite import QuantizedNetwork, from_tflite

    train = split[0]
    Xtr = data.X(train)
    t0 = time.perf_counter()
    for key, net in (("error", sur.error_net), ("resources", sur.resource_net)):
        if net is None:
            continue
        content = quantize(net, "int8-fallback", representative=Xtr)
        sur.tflite[key] = content
        q = QuantizedNetwork.from_tflite(content)
        sur.deployed[key] = q
        if m.embed == "exact":
            setattr(sur, "error_q" if key == "error" else "resource_q", q)
        deq = from_tflite(content).with_domain(lo, hi)
        if key == "error":
            sur.error_net = deq
        else:
            sur.resource_net = deq
    m.compress_ms = (time.perf_counter() - t0) * 1e3


def solve_loop(m: _Model, data: tpc.TPCData, split, cfg: Config, oracle: Oracle, res_use: dict,
               fallback: dict, measured_only: bool, on_iteration=None) -> dict:
    """Solve, measure, and (closed loop) cut off, refit and solve again until an answer is
    measured feasible; then probe for fewer bits. Returns the row's loop fields, the
    per-iteration log and the first MILP's surrogate."""
    from emlpress.train import fit_regressor

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
        m.err_fit = fit_regressor(X, Y[:, :1], hidden, init=m.err_fit, **common)
        if res_use:
            m.res_fit = fit_regressor(X, Y[:, 1:], hidden, init=m.res_fit, **common)
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


def solver_time_ratios(summary: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark, topology and base variant (baseline, pruned) where lossless compression
    removed neurons: median solver time of the first MILP (the same problem, before any cut)
    with the uncompressed network over that with the compressed one (> 1: faster compressed),
    with the ratio's range from the repeated timings."""
    rows = []
    s = summary.assign(base=summary["variant"].str.split("+").str[0])
    for (bench, topo, base), g in s.groupby(["benchmark", "topology", "base"], sort=False):
        plain = g[g["variant"] == base]
        comp = g[g["variant"] == f"{base}+lossless"]
        if not len(plain) or not len(comp) or "timing_solves" not in g:
            continue
        p, c = plain.iloc[0], comp.iloc[0]
        if not (p["timing_solves"] >= 3 and c["timing_solves"] >= 3):
            continue  # not timed again: compression removed nothing, or no answer
        rows.append({"benchmark": bench, "topology": topo, "base": base,
                     "neurons_removed": int(p["neurons_after"] - c["neurons_after"]),
                     "ratio": float(p["solver_ms_median"] / c["solver_ms_median"]),
                     "ratio_min": float(p["solver_ms_min"] / c["solver_ms_max"]),
                     "ratio_max": float(p["solver_ms_max"] / c["solver_ms_min"]),
                     "repeats": int(min(p["timing_solves"], c["timing_solves"]))})
    return pd.DataFrame(rows, columns=["benchmark", "topology", "base", "neurons_removed", "ratio",
                                       "ratio_min", "ratio_max", "repeats"])


def _plots(folder: Path, summary: pd.DataFrame) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    colours = {"feasible": "tab:green", "infeasible": "tab:red", "unmeasured": "tab:gray",
               "no answer": "black"}
    markers = dict(zip(VARIANTS + QUANTIZED_VARIANTS, "os^Dvx"))
    for bench, g in summary.groupby("benchmark"):
        if "solver_ms_median" not in g or g["solver_ms_median"].isna().all():
            continue  # no first MILP was solved: nothing to plot
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for (variant, verdict), gs in g.groupby(["variant", "verdict"]):
            ax.scatter(gs["weights"], gs["solver_ms_median"], c=colours.get(verdict, "tab:gray"),
                       marker=markers.get(variant, "o"), label=f"{variant}, {verdict}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("weights of the embedded networks")
        ax.set_ylabel("solver time of the first MILP (ms)\n(median of repeats where compared)")
        ax.set_title(f"{bench}: solver time; colour = final answer's measured verdict", fontsize=9)
        ax.legend(fontsize=7)
        p = folder / f"solver_time_{bench}.png"
        fig.tight_layout()
        save_figure_atomic(fig, p, dpi=100)
        plt.close(fig)
        paths.append(p)
    ratios = solver_time_ratios(summary)
    if len(ratios):
        fig, ax = plt.subplots(figsize=(max(5, len(ratios) * 0.9), 4))
        x = np.arange(len(ratios))
        ax.bar(x, ratios["ratio"])
        ax.errorbar(x, ratios["ratio"], yerr=[ratios["ratio"] - ratios["ratio_min"],
                                              ratios["ratio_max"] - ratios["ratio"]],
                    fmt="none", ecolor="k", capsize=3)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(x, [f"{r.benchmark}\n{r.topology}\n{r.base}\n-{r.neurons_removed} units"
                          for r in ratios.itertuples()], fontsize=7)
        ax.set_ylabel("solver time: uncompressed / lossless")
        ax.set_title(f"Lossless compression and solve time (median of {int(ratios['repeats'].iloc[0])} "
                     "solves; bars: min-max)", fontsize=9)
        p = folder / "solver_time_ratio.png"
        fig.tight_layout()
        save_figure_atomic(fig, p, dpi=100)
        plt.close(fig)
        paths.append(p)
    return paths


def _check(cfg: Config) -> None:
    """Reject a configuration that could only fail or mislead later (after models have been
    trained): each error names the setting and its value."""
    from emlpress import _options
    from emlpress.bounds import METHODS
    from emlpress.data.tpc_oracle import MODES
    from emlpress.train import check_sparsities

    for t in cfg.topologies:
        if t not in PRESETS:
            raise ValueError(f"unknown topology {t!r}: presets are {sorted(PRESETS)}")
    for name in ("max_error", "max_time", "max_memory_peak", "max_memory_mean"):
        v = getattr(cfg, name)
        if v is None and name.startswith("max_memory"):
            continue
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (v > 0 and math.isfinite(v)):
            raise ValueError(f"{name} must be a finite limit > 0 in raw units, got {v!r}")
    _options.seconds("time_limit", cfg.time_limit)
    _options.seconds("loop_seconds", cfg.loop_seconds)
    _options.seconds("timing_seconds", cfg.timing_seconds)
    _options.seconds("probe_time_limit", cfg.probe_time_limit)
    for name in ("epochs", "batch_size", "prune_epochs", "resource_epochs", "refit_epochs",
                 "refit_weight", "timing_repeats", "patience"):
        _options.positive_int(name, getattr(cfg, name))
    if cfg.timing_repeats < 3:
        raise ValueError(f"timing_repeats must be at least 3 (a median of repeated solves), "
                         f"got {cfg.timing_repeats}")
    for name in ("max_iterations", "improve_probes"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
    if not (isinstance(cfg.truth_seconds, numbers.Real) and cfg.truth_seconds >= 0):
        raise ValueError(f"truth_seconds must be >= 0 (0: no brute force), got {cfg.truth_seconds!r}")
    tpc.check_test_size(cfg.test_size)
    if not 0.0 < cfg.calibration_size < 1.0:
        raise ValueError(f"calibration_size = {cfg.calibration_size!r} must lie in (0, 1)")
    if not 0.0 < cfg.coverage < 1.0:
        raise ValueError(f"coverage = {cfg.coverage!r} must lie in (0, 1), e.g. 0.9")
    if not cfg.learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {cfg.learning_rate!r}")
    check_sparsities(cfg.initial_sparsity, cfg.final_sparsity)
    if cfg.compression_bounds not in METHODS:
        raise ValueError(f"unknown compression_bounds {cfg.compression_bounds!r}: expected one of {METHODS}")
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {out}: is a file; give the directory the run folders go to")
    if cfg.quantized:
        try:
            import ai_edge_litert  # noqa: F401
        except ImportError:
            raise ValueError("quantized=True needs LiteRT: pip install 'emlpress[keras]'") from None
    if cfg.oracle not in MODES:
        raise ValueError(f"unknown oracle {cfg.oracle!r}: expected one of {MODES}")


def _enough_calibration(n_rows: int, cfg: Config) -> bool:
    """Whether ``n_rows`` rows leave enough calibration rows for the coverage asked."""
    n_test = max(1, int(round(cfg.test_size * n_rows)))
    n_cal = max(1, int(round(cfg.calibration_size * (n_rows - n_test))))
    return math.ceil((n_cal + 1) * cfg.coverage) <= n_cal and n_rows - n_test - n_cal >= 10


def _splits(data: tpc.TPCData, cfg: Config):
    rest, test = data.split(cfg.test_size, cfg.seed)
    perm = np.random.default_rng(cfg.seed + 1).permutation(len(rest))
    n_cal = max(1, int(round(cfg.calibration_size * len(rest))))
    cal = rest.iloc[np.sort(perm[:n_cal])]
    train = rest.iloc[np.sort(perm[n_cal:])]
    return train, cal, test


INCOMPLETE = "INCOMPLETE"
last_folder: Path | None = None  # the folder of the latest run (the CLI names it on Ctrl-C)


def load_config(folder) -> Config:
    """The settings of a run folder (``logs/config.json``), to resume it."""
    folder = Path(folder)
    path = folder / "logs" / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{folder}: not a tpc run folder (no logs/config.json)")
    return _config_from(json.loads(path.read_text()))


def _prepare(cfg: Config):
    """Checks, data, oracles and splits, before any training."""
    _check(cfg)
    datasets = tpc.load_dir(cfg.data, cfg.benchmarks)
    oracles, splits = {}, {}
    for name, data in datasets.items():  # before any training, not at the first MILP
        _check_hw(cfg, data)
        oracles[name] = Oracle(data, cfg.oracle, cfg.data, hardware=[cfg.hw] if cfg.hw else None)
        splits[name] = _splits(data, cfg)
        n_cal = len(splits[name][1])
        if math.ceil((n_cal + 1) * cfg.coverage) > n_cal or len(splits[name][0]) < 10:
            need = next(n for n in range(len(data.frame) + 1, 10**7)
                        if _enough_calibration(n, cfg))
            raise ValueError(f"{data.source}: {name} has {len(data.frame)} rows, {n_cal} for calibration "
                             f"and {len(splits[name][0])} for training: too few for a {cfg.coverage:.0%} "
                             f"margin and a fit (at least {need} rows; or change coverage, "
                             "calibration_size, test_size)")
    return datasets, oracles, splits


def _new_folder(cfg: Config) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d%H%M%S")
    folder = Path(cfg.out) / f"run{stamp}"
    k = 0
    while folder.exists():  # two runs in one second
        k += 1
        folder = Path(cfg.out) / f"run{stamp}_{k}"
    return folder


def _config_payload(cfg: Config) -> dict:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(cfg).items()}


def _start_folder(folder: Path, cfg: Config) -> None:
    (folder / "models").mkdir(parents=True, exist_ok=True)
    _log(folder, "config", _config_payload(cfg))


def run(cfg: Config, resume=None, *, workers: int | None = None, threads_per_worker: int = 1,
        native_threads: int | None = None, scheduler: str | None = None,
        timeout: float = 10.0, folder=None) -> tuple[Path, pd.DataFrame]:
    """The whole pipeline; returns the run folder and the summary table (also written, row by
    row as answers are final, to ``run.summary.csv``). While it runs, the folder holds a file
    ``INCOMPLETE`` saying how far it got; ``resume=FOLDER`` continues such a run with its own
    settings (``cfg`` then only sets ``progress``): every answer written is kept, not solved
    again, and a benchmark and topology whose networks were trained (the checkpoints
    ``models/<benchmark>_<topology>_<baseline|pruned>_fits.npz``) is not trained again; what
    is left (answers, and the solver-time comparison of a group) is computed. Every file the
    run writes is replaced atomically, so a kill (even SIGKILL) leaves whole files.

    ``workers`` or ``scheduler``: the benchmarks and topologies run as tasks of a battery on
    Dask (:mod:`emlpress.pipelines.battery`: a LocalCluster of ``workers`` processes, or the
    cluster at ``scheduler``), one task per benchmark and topology plus one brute force per
    benchmark; each task writes its answers to ``tasks/``, and ``resume=FOLDER``, or the same
    call again with ``folder=FOLDER`` (the run folder to use instead of a new
    ``run<time>``), skips the finished ones."""
    if resume is not None:
        progress = cfg.progress
        cfg = load_config(resume)
        cfg.progress = progress
        if (Path(resume) / "battery.json").exists() and workers is None and scheduler is None:
            workers = 1  # a battery's folder resumes as a battery
    cfg.data = Path(cfg.data)
    if cfg.rerun_kernels is not None:
        warnings.warn("Config.rerun_kernels is deprecated: use oracle='kernel' or 'data'",
                      DeprecationWarning, stacklevel=2)
        cfg.oracle = "kernel" if cfg.rerun_kernels else "data"
    if folder is not None and workers is None and scheduler is None:
        raise ValueError("folder= is for batteries (workers= or scheduler=); a run in this "
                         "process writes a new run folder, resume=FOLDER continues one")
    if workers is not None or scheduler is not None:
        return _run_battery(cfg, resume if resume is not None else folder,
                            1 if workers is None else workers, threads_per_worker,
                            native_threads, scheduler, timeout)
    datasets, oracles, splits = _prepare(cfg)
    jobs = [(b, t) for b in datasets for t in cfg.topologies]
    finished, partial = [], {}
    if resume is not None:
        folder = Path(resume)
        finished, partial = _written(folder, jobs, cfg)
        n_kept = len(finished) + sum(len(p) for p in partial.values())
        print(f"resuming {folder}: {n_kept} answers already written are kept, not computed "
              f"again (skipped: {_skipped(finished, partial)})", file=sys.stderr)
        done_groups = {(r["benchmark"], r["topology"]) for r in finished}
        jobs_left = [j for j in jobs if j not in done_groups]
    else:
        folder = _new_folder(cfg)
        _start_folder(folder, cfg)
        jobs_left = jobs
    per_group = len(variants(cfg))
    total = len(jobs) * per_group
    global last_folder
    last_folder = folder
    rows = finished + [r for p in partial.values() for r in p.values()]
    groups_done = [len(jobs) - len(jobs_left)]

    def mark() -> None:
        text = (f"this run stopped before its end: {len(rows)} of {total} answers written to "
                f"run.summary.csv (a resume keeps them); {groups_done[0]} of {len(jobs)} "
                "benchmark-topology groups finished with their solver timings\n"
                f"resume with: emlpress tpc run --resume {folder}\n")
        write_text_atomic(folder / INCOMPLETE, text)
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=len(rows), desc="tpc run", unit="answer")
    notes = []
    mark()
    truths = {}

    def on_row(row) -> None:
        rows.append(row)
        _write_summary(folder, rows)
        mark()
        if bar is not None:
            bar.update(1)

    for bench, topo in jobs_left:
        data, oracle = datasets[bench], oracles[bench]
        if bench not in truths:
            truths[bench] = _truth(bench, data, oracle, cfg, [cfg.hw] if cfg.hw else data.hardware)
        _job(cfg, folder, bench, topo, data, oracle, splits[bench], truths[bench], notes, bar, on_row,
             done=partial.get((bench, topo)))
        groups_done[0] += 1
        _write_summary(folder, rows)  # group_done
        mark()
    if bar is not None:
        bar.close()
    order = {(b, t, v): k for k, (b, t, v) in enumerate(
        (b, t, v) for b, t in jobs for v in variants(cfg))}
    rows.sort(key=lambda r: order[(r["benchmark"], str(r["topology"]), r["variant"])])
    summary = _finish(folder, cfg, rows, notes)
    (folder / INCOMPLETE).unlink(missing_ok=True)
    return folder, summary


def _skipped(finished: list, partial: dict) -> str:
    """Which answers a resume keeps, by benchmark and topology."""
    groups = {}
    for r in finished:
        groups.setdefault((r["benchmark"], r["topology"]), []).append(r["variant"])
    for (b, t), p in partial.items():
        groups.setdefault((b, t), []).extend(p)
    return "; ".join(f"{b} {t}: {', '.join(v)}" for (b, t), v in groups.items()) or "none"


def _config_from(payload: dict) -> Config:
    known = set(Config.__dataclass_fields__)
    cfg = Config(**{k: v for k, v in payload.items() if k in known and k != "rerun_kernels"})
    cfg.data, cfg.out = Path(cfg.data), Path(cfg.out)
    return cfg


def _task_inputs(cfg: dict, bench: str):
    """In a battery task: the run's settings, the benchmark's data and its oracle."""
    c = _config_from(cfg)
    c.progress = False
    data = tpc.load_dir(c.data, [bench])[bench]
    return c, data, Oracle(data, c.oracle, c.data, hardware=[c.hw] if c.hw else None)


def truth_task(cfg: dict, bench: str, threads: int = 1) -> dict:
    """A battery task: the benchmark's brute force (see :func:`_truth`)."""
    c, data, oracle = _task_inputs(cfg, bench)
    return {"benchmark": bench,
            "truth": _truth(bench, data, oracle, c, [c.hw] if c.hw else data.hardware)}


def job_task(cfg: dict, folder: str, bench: str, topo: str, threads: int = 1) -> dict:
    """A battery task: one benchmark and topology (see :func:`_job`); models and logs go
    into ``folder`` as in a sequential run."""
    c, data, oracle = _task_inputs(cfg, bench)
    notes = []
    rows = _job(c, Path(folder), bench, topo, data, oracle, _splits(data, c), None, notes)
    return {"benchmark": bench, "topology": topo, "rows": rows, "notes": notes}


def _job_key(bench: str, topo: str) -> str:
    return f"{bench}_{topo}"


def _run_battery(cfg: Config, resume, workers: int, threads_per_worker: int,
                 native_threads: int | None, scheduler: str | None,
                 timeout: float) -> tuple[Path, pd.DataFrame]:
    from emlpress.pipelines import battery

    datasets, _, _ = _prepare(cfg)  # every check before a worker starts
    folder = Path(resume) if resume is not None else _new_folder(cfg)
    global last_folder
    last_folder = folder
    payload = _config_payload(cfg)
    payload.pop("progress", None)  # how it is shown does not change the answers
    jobs = [(b, t) for b in datasets for t in cfg.topologies]
    tasks = [battery.Task(f"truth_{b}", truth_task, dict(cfg=payload, bench=b)) for b in datasets]
    tasks += [battery.Task(_job_key(b, t), job_task,
                           dict(cfg=payload, folder=str(folder.resolve()), bench=b, topo=t))
              for b, t in jobs]

    def summarize(folder, results):
        rows, notes = [], []
        for b, t in jobs:
            r = results.get(_job_key(b, t))
            if r is None:
                continue
            truth = results.get(f"truth_{b}", {}).get("truth")
            for row in r["rows"]:
                row = dict(row)
                if truth is not None:
                    _apply_truth(row, truth)
                rows.append(row)
            notes += r["notes"]
        if not rows:
            return pd.DataFrame()
        return _finish(Path(folder), cfg, rows, notes)

    res = battery.run(folder, "tpc", payload, tasks, summarize=summarize, workers=workers,
                      threads_per_worker=threads_per_worker, native_threads=native_threads,
                      scheduler=scheduler, timeout=timeout, progress=cfg.progress, desc="tpc run",
                      on_start=lambda f: _start_folder(f, cfg),
                      resume_hint=f"run emlpress tpc run --resume {folder}")
    if res.interrupted:
        raise KeyboardInterrupt
    if res.failed:
        raise RuntimeError(f"{len(res.failed)} of {len(tasks)} tasks failed "
                           f"({', '.join(res.failed)}); why: {folder}/tasks/<task>.error; "
                           f"rerun with --resume {folder} to retry them")
    return folder, res.summary


def _apply_truth(row: dict, truth: dict) -> None:
    """The brute force's optimum beside an answer (distances only for measured-feasible
    answers: an infeasible one can be "below")."""
    row["optimum_bits"] = truth.get("total_bits")
    row["optimum_proven"] = truth.get("proven")
    if row["measured_feasible"] and truth.get("proven") and truth.get("total_bits") is not None:
        row["bits_above_optimum"] = int(row["total_bits"]) - int(truth["total_bits"])


# -- checkpoints of a group's trained networks (so that a resume does not train them again) --

#: Keras layer classes a checkpoint may hold: what fit_regressor builds (nothing executable)
_CHECKPOINT_LAYERS = {"InputLayer", "Dense", "PruneLowMagnitude"}
_CHECKPOINT_ACTIVATIONS = {"relu", "linear"}


def _fits_path(folder: Path, bench: str, topo: str, base: str) -> Path:
    return folder / "models" / f"{bench}_{topo}_{base}_fits.npz"


def _save_fits(path: Path, fits) -> None:
    """Write a base's trained (error, resources) FitResults to ``path`` atomically: networks,
    scalings, Keras weights (with pruning masks and step) and the layer configuration."""
    from emlpress.pipelines.battery import write_atomic

    arrays, meta = {}, []
    for k, f in enumerate(fits):
        for l, (W, b) in enumerate(zip(f.net.weights, f.net.biases)):
            arrays[f"f{k}_W{l}"], arrays[f"f{k}_b{l}"] = W, b
        arrays[f"f{k}_lo"], arrays[f"f{k}_hi"] = f.net.lo, f.net.hi
        for name, (a, b) in (("x", f.x_range), ("y", f.y_range)):
            arrays[f"f{k}_{name}lo"], arrays[f"f{k}_{name}hi"] = np.asarray(a), np.asarray(b)
        for j, w in enumerate(f.model.get_weights()):
            arrays[f"f{k}_keras{j}"] = w
        meta.append({"layers": len(f.net.weights), "keras_weights": len(f.model.get_weights()),
                     "train_s": f.train_s, "epochs": f.epochs, "sparsity": f.sparsity,
                     "pruned": f.pruned, "history": f.history,
                     "keras_config": f.model.get_config()})
    arrays["meta"] = np.array(json.dumps(meta, default=_json))

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    write_atomic(path, write)


def _load_fits(path: Path) -> tuple:
    """The FitResults :func:`_save_fits` wrote (their Keras models rebuilt from the layer
    configuration, refused unless it holds only the layers training makes)."""
    import zipfile

    from emlpress.io.keras import tf_keras
    from emlpress.train import FitResult

    keras = tf_keras()
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays["meta"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a readable checkpoint of trained networks ({e}); "
                         "delete it to train them again") from None
    fits = []
    for k, m in enumerate(meta):
        cfg = m["keras_config"]
        for layer in cfg.get("layers", []):
            inner = layer.get("config", {}).get("layer", layer)  # PruneLowMagnitude wraps a Dense
            for lay in (layer, inner):
                act = lay.get("config", {}).get("activation", "linear")
                if (lay.get("class_name") not in _CHECKPOINT_LAYERS
                        or act not in _CHECKPOINT_ACTIVATIONS):
                    raise ValueError(f"{path}: layer {lay.get('class_name')!r} (activation "
                                     f"{act!r}) is not one training makes; refused")
        if m["pruned"]:
            import tensorflow_model_optimization as tfmot

            with tfmot.sparsity.keras.prune_scope():
                model = keras.Sequential.from_config(cfg)
        else:
            model = keras.Sequential.from_config(cfg)
        model.set_weights([arrays[f"f{k}_keras{j}"] for j in range(m["keras_weights"])])
        net = Network([arrays[f"f{k}_W{l}"] for l in range(m["layers"])],
                      [arrays[f"f{k}_b{l}"] for l in range(m["layers"])],
                      arrays[f"f{k}_lo"], arrays[f"f{k}_hi"])
        fits.append(FitResult(net, m["train_s"], m["epochs"], m["history"], m["sparsity"],
                              (arrays[f"f{k}_xlo"], arrays[f"f{k}_xhi"]),
                              (arrays[f"f{k}_ylo"], arrays[f"f{k}_yhi"]), model, m["pruned"]))
    return tuple(fits)


def _job(cfg: Config, folder: Path, bench: str, topo: str, data, oracle: Oracle, split,
         truth: dict | None, notes: list, bar=None, on_row=None, done=None) -> list[dict]:
    """One benchmark and topology: train the baseline and pruned networks, answer for every
    variant (closed loop, measured), time the compressed against the uncompressed MILPs.
    Returns the variants' summary rows (``truth``: the benchmark's brute force, or None to
    join it later).

    The trained networks are checkpointed in ``models/<bench>_<topo>_<base>_fits.npz`` and
    taken from there when present (a resumed group is not trained again); ``done`` maps a
    variant to its row already written (a resume): it is kept as it is, not solved again."""
    from emlpress.train import fit_regressor

    limits = _limits(cfg)
    allowed = [cfg.hw] if cfg.hw else data.hardware
    measured_only = cfg.measured_only
    if measured_only is None:
        measured_only = any(oracle.source(w) == "data" for w in allowed)
    best_in_data = best_measured_bits(oracle, allowed, limits)
    for w in allowed:
        if oracle.source(w) == "data":
            notes.append(f"{bench} on {w}: answers measured by {oracle.reason[w]}"
                         + ("; answers restricted to its configurations" if measured_only else ""))
    train, cal, test = split
    lo, hi = _domain(data)
    hidden = PRESETS[topo]
    Xtr, Ytr = data.X(train), data.Y(train)
    common = dict(epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed, lo=lo, hi=hi,
                  learning_rate=cfg.learning_rate, patience=cfg.patience)
    prune = dict(epochs=cfg.prune_epochs, batch_size=cfg.batch_size, seed=cfg.seed, lo=lo, hi=hi,
                 learning_rate=cfg.learning_rate, pruning=(cfg.initial_sparsity, cfg.final_sparsity))
    res_common = {**common, "epochs": cfg.resource_epochs, "patience": min(cfg.patience, 10)}
    done = done or {}
    fits = {}
    for base in ("baseline", "pruned"):
        path = _fits_path(folder, bench, topo, base)
        if path.exists():
            fits[base] = _load_fits(path)
            continue
        if base == "baseline":
            fits[base] = (fit_regressor(Xtr, Ytr[:, :1], hidden, **common),
                          fit_regressor(Xtr, Ytr[:, 1:], hidden, **res_common))
        else:
            fits[base] = (fit_regressor(Xtr, Ytr[:, :1], hidden, init=fits["baseline"][0], **prune),
                          fit_regressor(Xtr, Ytr[:, 1:], hidden, init=fits["baseline"][1], **prune))
        _save_fits(path, fits[base])
    # which resource outputs the MILP uses: held-out R2 of the baseline resource network
    Xte = data.X(test)
    Pres = fits["baseline"][1].net.forward(Xte)
    r2_res = {name: _r2(Pres[:, k], test[name].to_numpy()) for k, name in enumerate(RESOURCES)}
    res_use, fallback = {}, {}
    for name in RESOURCES:
        if limits[name] is None:
            continue
        if r2_res[name] >= cfg.resource_r2_min:
            res_use[name] = True
        else:
            fallback[name] = {w: float(train.loc[train["hardware"] == w, name].max())
                              if (train["hardware"] == w).any() else float("inf")
                              for w in data.hardware}
    _log(folder, f"{bench}_{topo}_data", {
        "rows": len(data.frame), "train": len(train), "calibration": len(cal), "test": len(test),
        "hardware": data.hardware, "oracle": oracle.reason, "measured_only": measured_only,
        "r2_resources": r2_res, "resource_constraints": {
            n: ("surrogate" if n in res_use else "fallback: max measured per hardware")
            for n in RESOURCES if limits[n] is not None}, "fallback": fallback,
        "truth": truth if truth is not None else "see tasks/truth_<benchmark>.json"})
    firsts = {}
    rows = []
    for variant in variants(cfg):
        base = variant.split("+")[0]
        m = _Model(*fits[base], variant.endswith("+lossless"), embedding(variant))
        tag = f"{bench}_{topo}_{variant.replace('+', '_')}"
        pe = m.err_fit.net.forward(Xte)[:, 0]
        r2_err = _r2(pe, test["neg_log_error"].to_numpy())
        if r2_err < R2_ERROR_GOAL and "+" not in variant:  # the same network, or close
            notes.append(f"{bench} {topo} {variant} (and its lossless compression): held-out R2 "
                         f"of -log10(error) {r2_err:.3f} < "
                         f"{R2_ERROR_GOAL} (the data or the topology does not allow more here); "
                         "its answers rest on the closed loop")
        if variant in done:  # written before an interruption: kept, not solved again
            row = done[variant]
            rows.append(row)
            if m.embed == "float" and not pd.isna(row.get("status_first")):
                # the first MILP again for the timings below: the surrogate it embedded
                firsts[variant] = (lambda m=m: _surrogate(m, data, split, cfg, res_use, fallback, lo, hi),
                                   row, _candidates(oracle, allowed, measured_only))
            continue
        if bar is not None:
            bar.set_postfix(benchmark=bench, topology=topo, variant=variant)

        def on_iteration(it, bar=bar):
            if bar is not None:
                bar.set_postfix(benchmark=bench, topology=topo, variant=variant,
                                iteration=it["iteration"], verdict=it["verdict"])

        res = solve_loop(m, data, split, cfg, oracle, res_use, fallback, measured_only, on_iteration)
        log = res["log"]
        row = {"benchmark": bench, "topology": topo, "variant": variant,
               "hardware": cfg.hw or "any", "oracle": "/".join(sorted({oracle.source(w) for w in allowed})),
               "measured_only": measured_only,
               "oracle_reason": "; ".join(f"{w}: {oracle.reason[w]}" for w in allowed),
               "train_ms": (fits[base][0].train_s + fits[base][1].train_s) * 1e3,
               "epochs_trained": fits[base][0].epochs, "sparsity": fits[base][0].sparsity,
               "r2_error": r2_err, "rmse_error": float(np.sqrt(np.mean((pe - test["neg_log_error"].to_numpy()) ** 2))),
               "r2_time": r2_res["time"],
               "time_constraint": ("surrogate" if "time" in res_use else "fallback: max measured per hardware"),
               }
        sur = res["final_sur"]
        nets = [sur.error_net] + ([sur.resource_net] if sur.resource_net is not None else [])
        path = folder / "models" / f"{tag}_error.npz"
        write_atomic(path, sur.error_net.save)
        if sur.resource_net is not None:
            write_atomic(folder / "models" / f"{tag}_resources.npz", sur.resource_net.save)
        for key, content in sur.tflite.items():
            write_bytes_atomic(folder / "models" / f"{tag}_{key}.tflite", content)
        row.update(weights=int(sum(W.size for n in nets for W in n.weights)),
                   size_bytes=path.stat().st_size,
                   # the same file format for every variant, where int8 ones are compared
                   tflite_bytes=_tflite_bytes(sur, nets) if cfg.quantized else None,
                   answer_model=ANSWER_MODELS[m.embed],
                   neurons_before=m.err_fit.net.n_neurons + (m.res_fit.net.n_neurons if res_use else 0),
                   neurons_after=sum(n.n_neurons for n in nets),
                   compress_ms=m.compress_ms,
                   margin_error=sur.margin_error,
                   test_coverage_error=float(np.mean(
                       test["neg_log_error"].to_numpy() >= sur.error_prediction(Xte) - sur.margin_error)))
        if res["first"] is not None and m.embed != "float":
            # the variant's own (int8) model on the held-out rows, as its MILP embeds it
            pq = res["first"][1].error_prediction(Xte)
            row.update(r2_error=_r2(pq, test["neg_log_error"].to_numpy()), rmse_error=float(
                np.sqrt(np.mean((pq - test["neg_log_error"].to_numpy()) ** 2))))
        if res["first"] is not None:
            fsol, fsur, fhandle, fcand = res["first"]
            row.update(binaries=fhandle.n_binaries, status_first=fsol.status, nodes=fsol.nodes,
                       encode_ms=fsol.encode_s * 1e3, solver_ms=fsol.solve_s * 1e3,
                       solver_ms_median=fsol.solve_s * 1e3, timing_solves=1)
            firsts[variant] = (fsur, row, fcand)
        answered = [it for it in log if "bits" in it]
        if answered:
            f, last = answered[0], res["final"]
            for k in ("bits", "total_bits", "predicted_error", "measured_error", "measured_time",
                      "verdict", "measured_source"):
                row[f"first_{k}"] = f.get(k)
            for k in ("chosen_hardware", "bits", "total_bits", "predicted_error", "predicted_time",
                      "interpreter_predicted_error", "interpreter_predicted_time",
                      "measured_error", "measured_time", "measured_memory_peak", "measured_source",
                      "verdict", "milp_forward_diff"):
                row[k] = last.get(k)
            row["status"] = last["status"]
        else:
            row["verdict"] = "no answer"
            row["status"] = log[-1]["status"] if log else "NO_CANDIDATES"
        row["measured_feasible"] = row.get("verdict") == "feasible"
        row.update(iterations=res["out"]["iterations"], probes=res["out"]["probes"],
                   loop_s=res["out"]["loop_s"], loop_stop=res["out"]["loop_stop"])
        if truth is not None:
            _apply_truth(row, truth)
        feasible = row["measured_feasible"]
        row["best_measured_bits"] = best_in_data
        if feasible and row["best_measured_bits"] is not None:
            row["bits_above_best_measured"] = int(row["total_bits"]) - row["best_measured_bits"]
        rows.append(row)
        _log(folder, tag, {"row": row, "iterations": log, "oracle": oracle.reason,
                           "lossless": {k: str(v) for k, v in m.reports.items()}})
        if on_row is not None:
            on_row(row)
    # solver time, compressed against uncompressed: the same first MILP, solved again,
    # only where compression removed something
    for base in ("baseline", "pruned"):
        pair = firsts.get(base), firsts.get(f"{base}+lossless")
        if None in pair or pair[1][1]["neurons_after"] >= pair[0][1]["neurons_after"]:
            continue
        if bar is not None:
            bar.set_postfix(benchmark=bench, topology=topo, timing=base)
        for fsur, row, fcand in pair:
            t = _timings(fsur() if callable(fsur) else fsur, data, cfg, fcand)
            row.update(solver_ms_median=float(np.median(t)), solver_ms_min=min(t),
                       solver_ms_max=max(t), timing_solves=len(t))
    for row in rows:
        row["group_done"] = True  # answers and timings of this benchmark and topology
    return rows


def _finish(folder: Path, cfg: Config, rows: list, notes: list) -> pd.DataFrame:
    """The summary table from every answer's row: coverage, notes, plots, run.summary.csv."""
    summary = pd.DataFrame(rows)
    cov = {"coverage_asked": cfg.coverage,
           "first_answers_measured": int(summary["first_verdict"].isin(["feasible", "infeasible"]).sum())
           if "first_verdict" in summary else 0,
           "first_answers_feasible": int((summary.get("first_verdict") == "feasible").sum())
           if "first_verdict" in summary else 0,
           "test_coverage_error_mean": float(summary["test_coverage_error"].mean())}
    _log(folder, "coverage", cov)
    if cfg.max_iterations == 0:
        notes.append("open loop (max_iterations=0): every answer is measured, none is corrected")
    summary.attrs["notes"] = list(dict.fromkeys(notes))
    summary.attrs["coverage"] = cov
    _plots(folder, summary)
    write_csv_atomic(folder / "run.summary.csv", summary)
    return summary


def _tflite_bytes(sur: Surrogate, nets) -> int:
    """The variant's models as .tflite files (same format for every variant): its int8 files,
    or the float32 conversion of its float networks."""
    if sur.tflite:
        return int(sum(len(c) for c in sur.tflite.values()))
    try:
        from emlpress.compress.lossy import quantize
    except ImportError:  # pragma: no cover - the pipeline trains with TensorFlow anyway
        return -1
    return int(sum(len(quantize(n, "float32")) for n in nets))


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
