"""The TPC pipeline's battery tasks (run by :mod:`emlpress.pipelines.runner`, in this
process or on Dask): :func:`truth_task` (a benchmark's brute force) and :func:`job_task` (one
benchmark and topology: train, compress, answer every variant through the closed loop, time
the compressed against the uncompressed MILPs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emlpress import train as training
from emlpress._atomic import write_atomic, write_bytes_atomic
from emlpress.data import tpc
from emlpress.data.tpc_oracle import Oracle
from emlpress.metrics import r2, rmse
from emlpress.pipelines.checkpoints import load_fits as _load_fits
from emlpress.pipelines.checkpoints import save_fits as _save_fits
from emlpress.pipelines.tpc.config import (ANSWER_MODELS, PRESETS, R2_ERROR_GOAL, RESOURCES, Config,
                                           _config_from, _domain, _limits, _splits, embedding,
                                           variants)
from emlpress.pipelines.tpc.loop import (_apply_truth, _candidates, _timings, _truth,
                                         best_measured_bits, solve_loop)
from emlpress.pipelines.tpc.report import _log
from emlpress.pipelines.tpc.surrogate import _Model, _surrogate, _tflite_bytes


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


def job_task(cfg: dict, folder: str, bench: str, topo: str, threads: int = 1, done=None,
             bar=None, on_row=None) -> dict:
    """A battery task: one benchmark and topology (see :func:`_job`); models and logs go
    into ``folder``. ``done``: {variant: row} written before an interruption (kept, not
    solved again); ``bar`` (a progress bar of answers) and ``on_row(row)`` (each answer as
    it is final) only in this process (the runner's ``workers=0``)."""
    c, data, oracle = _task_inputs(cfg, bench)
    notes = []
    rows = _job(c, Path(folder), bench, topo, data, oracle, _splits(data, c), None, notes,
                bar, on_row, done)
    return {"benchmark": bench, "topology": topo, "rows": rows, "notes": notes}


def _job_key(bench: str, topo: str) -> str:
    return f"{bench}_{topo}"


def _fits_path(folder: Path, bench: str, topo: str, base: str) -> Path:
    return folder / "models" / f"{bench}_{topo}_{base}_fits.npz"


def _job(cfg: Config, folder: Path, bench: str, topo: str, data, oracle: Oracle, split,
         truth: dict | None, notes: list, bar=None, on_row=None, done=None) -> list[dict]:
    """One benchmark and topology: train the baseline and pruned networks, answer for every
    variant (closed loop, measured), time the compressed against the uncompressed MILPs.
    Returns the variants' summary rows (``truth``: the benchmark's brute force, or None to
    join it later).

    The trained networks are checkpointed in ``models/<bench>_<topo>_<base>_fits.npz`` and
    taken from there when present (a resumed group is not trained again); ``done`` maps a
    variant to its row already written (a resume): it is kept as it is, not solved again."""
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
            fits[base] = (training.fit_regressor(Xtr, Ytr[:, :1], hidden, **common),
                          training.fit_regressor(Xtr, Ytr[:, 1:], hidden, **res_common))
        else:
            fits[base] = (training.fit_regressor(Xtr, Ytr[:, :1], hidden, init=fits["baseline"][0], **prune),
                          training.fit_regressor(Xtr, Ytr[:, 1:], hidden, init=fits["baseline"][1], **prune))
        _save_fits(path, fits[base])
    # which resource outputs the MILP uses: held-out R2 of the baseline resource network
    Xte = data.X(test)
    Pres = fits["baseline"][1].net.forward(Xte)
    r2_res = {name: r2(Pres[:, k], test[name].to_numpy()) for k, name in enumerate(RESOURCES)}
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
        r2_err = r2(pe, test["neg_log_error"].to_numpy())
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

        def on_iteration(it, bar=bar, variant=variant):
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
               "r2_error": r2_err, "rmse_error": rmse(pe, test["neg_log_error"].to_numpy()),
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
            row.update(r2_error=r2(pq, test["neg_log_error"].to_numpy()),
                       rmse_error=rmse(pq, test["neg_log_error"].to_numpy()))
        if res["first"] is not None:
            fsol, fsur, fhandle, fcand = res["first"]
            row.update(binaries=fhandle.n_binaries, status_first=fsol.status, nodes=fsol.nodes,
                       encode_ms=fsol.encode_s * 1e3, solver_ms=fsol.solve_s * 1e3,
                       solver_ms_median=fsol.solve_s * 1e3, timing_solves=1)
            firsts[variant] = (fsur, row, fcand)
        answered = [it for it in log if "bits" in it]
        last = res["final"]
        if answered:
            f = answered[0]
            for k in ("bits", "total_bits", "predicted_error", "measured_error", "measured_time",
                      "verdict", "measured_source"):
                row[f"first_{k}"] = f.get(k)
            for k in ("chosen_hardware", "bits", "total_bits", "predicted_error", "predicted_time",
                      "interpreter_predicted_error", "interpreter_predicted_time",
                      "measured_error", "measured_time", "measured_memory_peak", "measured_source",
                      "verdict", "milp_forward_diff"):
                row[k] = last.get(k)
            row["status"] = last["status"]
            # the MILP's outputs against the embedded model at its answers (a local-search answer has no MILP)
            diffs = [it["milp_forward_diff"] for it in answered if it.get("phase") == "milp"]
            row["milp_forward_diff"] = max(diffs) if diffs else float("nan")
        else:
            row["verdict"] = "no answer"
            row["status"] = log[-1]["status"] if log else "NO_CANDIDATES"
        row["measured_feasible"] = row.get("verdict") == "feasible"
        row.update(iterations=res["out"]["iterations"], oracle_calls=res["out"]["oracle_calls"],
                   oracle_calls_to_answer=(last or {}).get("oracle_calls_to_answer"),
                   loop_s=res["out"]["loop_s"], loop_stop=res["out"]["loop_stop"],
                   loop_proven=res["out"]["loop_proven"],
                   **{k: res["out"][k] for k in ("refits_error", "refits_resources", "refits_skipped",
                                                 "milp_best_bits", "milp_oracle_calls", "local_oracle_calls")})
        if truth is not None:
            _apply_truth(row, truth)
        feasible = row["measured_feasible"]
        row["best_measured_bits"] = best_in_data
        if feasible and row["best_measured_bits"] is not None:
            row["bits_above_best_measured"] = int(row["total_bits"]) - row["best_measured_bits"]
            if row.get("milp_best_bits") is not None and not pd.isna(row["milp_best_bits"]):
                row["milp_bits_above_best_measured"] = int(row["milp_best_bits"]) - row["best_measured_bits"]
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
