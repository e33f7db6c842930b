"""The TPC pipeline's :func:`run`: checks, then one task per benchmark and topology (and a
brute force per benchmark) on the runner (:mod:`emlpress.pipelines.runner`), which owns the
run folder (``battery.json``, ``tasks/``, ``INCOMPLETE``, the lock, resume), in this process or
on Dask; the summary is rebuilt from every task's answers."""

from __future__ import annotations

import datetime as _dt
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from emlpress.data import tpc
from emlpress.data.tpc_oracle import Oracle
from emlpress.pipelines import runner
from emlpress.pipelines.tpc.config import (Config, _check, _check_hw, _config_payload,
                                           _enough_calibration, _splits, load_config, variants)
from emlpress.pipelines.tpc.loop import _apply_truth
from emlpress.pipelines.tpc.report import _finish, _log, _write_summary
from emlpress.pipelines.tpc.tasks import _job_key, job_task, truth_task


INCOMPLETE = runner.INCOMPLETE


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
    run writes is replaced atomically, so a kill (even SIGKILL) leaves whole files. Ctrl-C
    raises KeyboardInterrupt with the run folder as its ``folder`` attribute.

    The run folder is the runner's (:mod:`emlpress.pipelines.runner`: ``battery.json``, one
    result per task in ``tasks/``, the lock): one task per benchmark and topology plus one
    brute force per benchmark, one after the other in this process by default. ``workers``
    or ``scheduler``: the tasks run on Dask instead (a LocalCluster of ``workers`` processes,
    or the cluster at ``scheduler``), and ``run.summary.csv`` is written when they end;
    ``resume=FOLDER``, or the same call again with ``folder=FOLDER`` (the run folder to use
    instead of a new ``run<time>``), skips the finished ones. A resume without ``workers``
    or ``scheduler`` runs in this process, whichever made the folder."""
    if resume is not None:
        progress = cfg.progress
        cfg = load_config(resume)
        cfg.progress = progress
    cfg.data = Path(cfg.data)
    if cfg.rerun_kernels is not None:
        warnings.warn("Config.rerun_kernels is deprecated: use oracle='kernel' or 'data'",
                      DeprecationWarning, stacklevel=2)
        cfg.oracle = "kernel" if cfg.rerun_kernels else "data"
    if folder is not None and workers is None and scheduler is None:
        raise ValueError("folder= is for batteries (workers= or scheduler=); a run in this "
                         "process writes a new run folder, resume=FOLDER continues one")
    here = workers is None and scheduler is None
    datasets, _, _ = _prepare(cfg)  # every check before a task starts
    if resume is not None:
        folder = Path(resume)
    folder = Path(folder) if folder is not None else _new_folder(cfg)
    payload = _config_payload(cfg)
    payload.pop("progress", None)  # how it is shown does not change the answers
    jobs = [(b, t) for b in datasets for t in cfg.topologies]
    if resume is not None and not (folder / "battery.json").exists():
        # a folder of a run in this process before the runner owned it: its answers are kept
        runner.write_json_atomic(folder / "battery.json", runner.config_of("tpc", payload))
    finished = runner.load_results(folder) if resume is not None else {}
    partial = _written(folder, jobs, finished, cfg)
    rows = [r for b, t in jobs for r in finished.get(_job_key(b, t), {}).get("rows", [])]
    if resume is not None and here:
        n_kept = len(rows) + sum(len(p) for p in partial.values())
        print(f"resuming {folder}: {n_kept} answers already written are kept, not computed "
              f"again (skipped: {_skipped(rows, partial)})", file=sys.stderr)
    rows += [r for p in partial.values() for r in p.values()]
    total = len(jobs) * len(variants(cfg))
    bar = (tqdm(total=total, initial=len(rows), desc="tpc run", unit="answer")
           if here and cfg.progress else None)

    def marker(folder, keys) -> str:
        groups = sum(_job_key(b, t) in keys for b, t in jobs)
        return (f"this run stopped before its end: {len(rows)} of {total} answers written to "
                f"run.summary.csv (a resume keeps them); {groups} of {len(jobs)} "
                "benchmark-topology groups finished with their solver timings\n"
                f"resume with: emlpress tpc run --resume {folder}\n")

    def on_row(row) -> None:  # in this process: each answer written as it is final
        rows.append(row)
        _write_summary(folder, rows)
        runner.mark_incomplete(folder, marker(folder, runner.finished(folder)))
        if bar is not None:
            bar.update(1)

    def group(b, t) -> runner.Task:
        kwargs = dict(cfg=payload, folder=str(folder.resolve()), bench=b, topo=t,
                      done=partial.get((b, t)))
        if here:
            kwargs.update(bar=bar, on_row=on_row)
        return runner.Task(_job_key(b, t), job_task, kwargs)

    truths = {b: runner.Task(f"truth_{b}", truth_task, dict(cfg=payload, bench=b)) for b in datasets}
    if here:  # as they are needed: a benchmark's brute force before its groups
        tasks = [x for b in datasets for x in (truths[b], *(group(b, t) for t in cfg.topologies))]
    else:
        tasks = [*truths.values(), *(group(b, t) for b, t in jobs)]

    def summarize(folder, results):
        rows, notes = [], []
        partial = _written(Path(folder), jobs, results, cfg)  # answers of unfinished groups
        for b, t in jobs:
            r = results.get(_job_key(b, t))
            truth = results.get(f"truth_{b}", {}).get("truth")
            for row in (r["rows"] if r is not None else partial.get((b, t), {}).values()):
                row = dict(row)
                if truth is not None:
                    _apply_truth(row, truth)
                rows.append(row)
            notes += r["notes"] if r is not None else []
        if not rows:
            return pd.DataFrame()
        # a missing value reads as NaN, as in run.summary.csv, also where a task result's JSON
        # held None: kept and new answers compare alike
        return _finish(Path(folder), cfg, rows, notes).fillna(np.nan)

    try:
        res = runner.run(folder, "tpc", payload, tasks, summarize=summarize,
                         workers=0 if here else 1 if workers is None else workers,
                         threads_per_worker=threads_per_worker, native_threads=native_threads,
                         scheduler=scheduler, timeout=timeout, progress=cfg.progress and not here,
                         desc="tpc run", on_start=lambda f: _start_folder(f, cfg),
                         resume_hint=f"run emlpress tpc run --resume {folder}",
                         incomplete=marker if here else None)
    finally:
        if bar is not None:
            bar.close()
    if res.interrupted:
        raise runner.interruption(folder)
    if res.failed:
        why = "" if not here else ": " + "; ".join(
            f"{k}: {e.strip().splitlines()[-1] if e.strip() else e}" for k, e in res.failed.items())
        raise RuntimeError(f"{len(res.failed)} of {len(tasks)} tasks failed "
                           f"({', '.join(res.failed)}){why}; why: {folder}/tasks/<task>.error; "
                           f"rerun with --resume {folder} to retry them")
    return folder, res.summary


def _written(folder: Path, jobs: list, results: dict, cfg: Config) -> dict:
    """The answers of the groups without a task result that a stopped run (in this process)
    wrote to ``run.summary.csv``: {(benchmark, topology): {variant: row}}."""
    path = folder / "run.summary.csv"
    if not path.exists() or path.stat().st_size == 0:
        return {}
    written = pd.read_csv(path, dtype={"topology": str})
    if "benchmark" not in written:
        return {}
    partial = {}
    for (b, t), g in written.groupby(["benchmark", "topology"], sort=False):
        if (b, t) not in jobs or _job_key(b, t) in results:
            continue
        partial[(b, t)] = {r["variant"]: r for r in g.to_dict("records")
                           if r["variant"] in variants(cfg)}
    return partial


def _skipped(finished: list, partial: dict) -> str:
    """Which answers a resume keeps, by benchmark and topology."""
    groups = {}
    for r in finished:
        groups.setdefault((r["benchmark"], r["topology"]), []).append(r["variant"])
    for (b, t), p in partial.items():
        groups.setdefault((b, t), []).extend(p)
    return "; ".join(f"{b} {t}: {', '.join(v)}" for (b, t), v in groups.items()) or "none"
