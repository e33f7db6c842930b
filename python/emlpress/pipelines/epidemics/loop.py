"""An epidemics run (:func:`run`): train the models, plan every horizon with each (the MILP
of :func:`~emlpress.pipelines.epidemics.model.plan`), simulate every plan with the reference
SIR and compare with the brute force; each plan row recorded as it is made, so a stopped run
resumes. The run is a battery of the runner (:mod:`emlpress.pipelines.runner`), in this
process: one task per topology (and one for the tree), which owns the run folder, its lock,
``INCOMPLETE`` and the resume."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from emlpress._atomic import write_csv_atomic, write_json_atomic
from emlpress.bounds.relaxation import MagnitudeError
from emlpress.data import sir
from emlpress.pipelines import runner
from emlpress.pipelines.epidemics.config import (_FREE, CONFIG_FILE, Config, _config_payload,
                                                 _jobs, _model_names, _validate, differences,
                                                 load_config)
from emlpress.pipelines.epidemics.folder import (_incomplete, _log_path, _mark, _model_path,
                                                 _records)
from emlpress.network import Network
from emlpress.pipelines.epidemics.improve import chained_s, improve, trajectory as improve_trajectory
from emlpress.pipelines.epidemics.model import NotApplicable, Plan, plan
from emlpress.pipelines.epidemics.report import _finish, _summary_rows
from emlpress.pipelines.epidemics.surrogate import evaluate, train_models

#: the brute force runs where it simulates at most this many weeks (6 weeks of the course
#: instance: 1.5e8, about 2 minutes on 2 cores)
BRUTE_FORCE_MAX = 200_000_000
last_folder: Path | None = None  # the folder of the latest run (the CLI names it on Ctrl-C)
#: in this process: the data sets and brute forces that the tasks of a run share, by settings
_SHARED: dict = {}
#: in this process: the exception each failed task raised, by task key (run() raises it)
_RAISED: dict = {}


def run(cfg: Config | None = None, resume=None):
    """Train every model, evaluate it, plan every horizon with it, simulate each plan and
    compare with the brute force; returns (run folder, summary DataFrame).

    The run folder (``OUT/epidemics<time>``) holds ``config.json`` (the settings) from the
    start and, while the run is under way, ``INCOMPLETE`` (what is written, and the resume
    command). ``resume=FOLDER`` continues a stopped run: ``cfg`` may be None (the folder's
    settings) or must equal them but for ``out`` and ``progress`` (else ValueError naming
    the differences). A resume keeps every model in ``models/`` (not trained again: networks
    by :meth:`Network.load`, int8 models from their .tflite bytes; the seeded tree is refitted
    and checked equal to ``models/tree.npz``), every ``ptq_<topology>.csv`` and every plan row
    written: a row's record is its ``logs/<model>_<bounding>_<weeks>w.json``, and
    ``run.summary.csv`` is rebuilt from the records, so a kill between the two writes loses
    nothing. A resume of a finished run only rebuilds the summary and the plots. The runner
    keeps its own files beside them (``battery.json``, ``tasks/<topology>.json`` once a
    topology's models and rows are all written, ``.lock`` while a run holds the folder). A
    failed task is raised as it was, after the other topologies ran."""
    global last_folder
    if resume is not None:
        folder = Path(resume)
        saved = load_config(folder)
        if cfg is not None:
            diff = differences(cfg, saved)
            if diff:
                raise ValueError(f"resume {folder}: the run was started with other settings: "
                                 + "; ".join(f"{k} {a!r} (the run has {b!r})"
                                             for k, (a, b) in diff.items()))
            saved.progress = cfg.progress
        cfg = saved
    elif cfg is None:
        raise ValueError("cfg: give the settings of a new run (or resume=FOLDER)")
    _validate(cfg)
    if resume is not None:
        records = _records(folder, cfg)
        total = sum(len(_jobs(cfg, hz)) for hz in cfg.horizons)
        if len(records) == total and not (folder / runner.INCOMPLETE).exists():
            print(f"resuming {folder}: the run is finished ({total} plan rows written); nothing "
                  "to compute, run.summary.csv and the plots rebuilt from logs/", file=sys.stderr)
        else:
            models = [n for n in _model_names(cfg) if _model_path(folder, n).exists()]
            print(f"resuming {folder}: kept {len(models)} models ({', '.join(models) or 'none'}) "
                  f"and {len(records)} of {total} plan rows already written; computing the rest",
                  file=sys.stderr)
    else:
        stamp = f"epidemics{dt.datetime.now():%Y%m%d%H%M%S}"
        folder, k = Path(cfg.out) / stamp, 0
        while folder.exists():  # two runs in one second
            k += 1
            folder = Path(cfg.out) / f"{stamp}_{k}"
    last_folder = folder
    settings = _config_payload(cfg)["config"]
    tasks = [runner.Task(t, model_task, dict(cfg=settings, folder=str(folder), topology=t))
             for t in [*cfg.topologies, *(["tree"] if cfg.tree else [])]]
    res = runner.run(folder, "epidemics", {k: v for k, v in settings.items() if k not in _FREE},
                     tasks, summarize=lambda f, _: _summarize(f, cfg), workers=0,
                     progress=cfg.progress, desc="epidemics", on_start=lambda f: _start(f, cfg),
                     incomplete=lambda f, _: _incomplete(f, cfg))
    raised = [_RAISED.pop(key, None) for key in res.failed]
    if res.failed:  # the first failure as it was raised (the CLI's one line)
        raise raised[0] or RuntimeError(f"epidemics task {next(iter(res.failed))} failed: "
                                        + next(iter(res.failed.values())).strip().splitlines()[-1])
    if res.interrupted:
        raise runner.interruption(folder)
    return folder, res.summary


def _start(folder: Path, cfg: Config) -> None:
    """A new run folder: its settings (what ``--resume`` reads), models/ and logs/."""
    (folder / "models").mkdir()
    (folder / "logs").mkdir()
    write_json_atomic(folder / CONFIG_FILE, _config_payload(cfg))


def _summarize(folder: Path, cfg: Config):
    """The runner's end of every run: with every plan row, run.summary.csv with the best
    known plans and the plots (:func:`~.report._finish`); else the rows written so far."""
    records = _records(folder, cfg)
    if len(records) == sum(len(_jobs(cfg, hz)) for hz in cfg.horizons):
        return _finish(folder, cfg, records)
    if not records:
        return None
    summary = pd.DataFrame(_summary_rows(cfg, records))
    write_csv_atomic(folder / "run.summary.csv", summary)
    return summary


def model_task(cfg: dict, folder: str, topology: str, threads: int = 1) -> dict:
    """A task of the run's battery: the models of ``topology`` ("tree": the decision tree)
    trained, or read back from ``folder/models``, then each of their plan rows that has no
    record yet, planned, simulated and recorded (``logs/``; ``run.summary.csv`` rebuilt after
    each). ``cfg``: the run's :class:`Config` as a dict; ``threads`` is not used."""
    try:
        return _model_rows(Config(**cfg), Path(folder), topology)
    except Exception as e:
        _RAISED[topology] = e  # the runner records its text; run() raises it as it was
        raise


def _model_rows(cfg: Config, folder: Path, topology: str) -> dict:
    key = ("data", cfg.n_train, cfg.n_test, cfg.seed)
    if key not in _SHARED:
        _SHARED[key] = sir.dataset(cfg.n_train, cfg.n_test, seed=cfg.seed)
        for a in _SHARED[key]:  # shared by every task of the process: nobody may change it
            a.setflags(write=False)
    Xtr, Ytr, Xte, Yte = _SHARED[key]
    tree = topology == "tree"
    models = train_models(cfg, folder, Xtr, Ytr, Xte, Yte, [] if tree else [topology], tree)
    metrics, sizes = evaluate(models, Xte, Yte, cfg)
    for hz in cfg.horizons:
        inst = sir.Instance(weeks=hz, budget=cfg.budget_per_week * hz)
        jobs = [(n, b) for n, b in _jobs(cfg, hz)
                if n in models and not _log_path(folder, n, b, hz).exists()]
        if not jobs:
            continue
        key = ("truth", hz, inst.budget)
        if key not in _SHARED:
            n = sir.count_schedules(inst, simulated=True)
            _SHARED[key] = sir.brute_force(inst) if n is not None and n <= BRUTE_FORCE_MAX else None
        for name, bounding in jobs:
            if bounding == "loop":
                record = _loop_row(cfg, inst, hz, name, models[name], metrics[name], sizes[name],
                                   _SHARED[key], Xtr, Ytr)
            else:
                record = _plan_row(cfg, inst, hz, name, bounding, models[name], metrics[name],
                                   sizes[name], _SHARED[key])
            # the log is the row's record; the summary after it is rebuilt from the records
            write_json_atomic(_log_path(folder, name, bounding, hz), record, default=_json)
            write_csv_atomic(folder / "run.summary.csv",
                             pd.DataFrame(_summary_rows(cfg, _records(folder, cfg))))
            _mark(folder, cfg)
    return {"models": sorted(models)}


def _plan_row(cfg: Config, inst, hz: int, name: str, bounding: str, entry, metrics: dict,
              size: tuple, truth) -> dict:
    """One plan row's record: the model ``entry`` (model, train_s, path) planned on ``inst``
    with ``bounding``, simulated, and compared with the brute force ``truth`` (or None)."""
    model, train_s, path = entry
    try:
        if metrics.get("flag"):  # a pruned model that lost too much R2: said, not planned with
            p = Plan("NOT_PLANNED", None, None, None, None, None, None, message=metrics["flag"])
        else:
            p = plan(inst, model, time_limit=cfg.time_limit,
                     bounding="chained" if bounding == "-" else bounding)
    except NotApplicable as e:  # single-box on a network whose outputs leave the box
        p = Plan("NOT_APPLICABLE", None, None, None, None, None, None, message=str(e))
    except MagnitudeError as e:  # HiGHS refused the rows: bounds beyond 1e15 (chained
        # CROWN over many weeks of a deep network)
        p = Plan("ENCODING_REFUSED", None, None, None, None, None, None, message=str(e))
    row = {"model": name, "variant": name.split("+")[1] if "+" in name else "baseline",
           "bounding": bounding, "units_removed": " ".join(map(str, p.removed)),
           "message": p.message, "weeks": hz, "budget": inst.budget, "train_s": train_s,
           "size_bytes": size[0], "param_bytes": size[1], "file": path.name, **metrics,
           "status": p.status,
           "solve_s": p.solution.solve_s if p.solution else float("nan"),
           "gap": p.solution.gap if p.solution else float("nan"),
           "binaries": sum(getattr(hd, "n_binaries", 0) for hd in p.handles),
           "schedule": " ".join(map(str, p.schedule)) if p.schedule is not None else "",
           "cost": p.cost, "predicted_S": p.predicted_s, "simulated_S": p.simulated_s,
           "simulated_by": "reference SIR (DOP853, 1e-12)"}
    if p.search is not None:  # the MIP start, and the network's own optimum if known
        row.update(start_S=p.search[1], network_optimum_S=p.search[1] if p.search[2]
                   else float("nan"))
    if truth is not None:
        row.update(optimum_S=truth.best_s, optimum_by="brute force (every schedule)",
                   gap_to_optimum=(truth.best_s - p.simulated_s) / truth.best_s
                   if p.schedule is not None else float("nan"))
    return {"row": row, "predicted": None if p.predicted is None else p.predicted.tolist(),
            "simulated": None if p.simulated is None else p.simulated.tolist()}


def _loop_row(cfg: Config, inst, hz: int, name: str, entry, metrics: dict, size: tuple, truth,
              Xtr, Ytr) -> dict:
    """The loop row's record: the model ``entry`` improved by the planning loop
    (:func:`~.improve.improve`, the run's first bounding), its best simulated plan, the oracle
    calls it spent beside the brute force's simulations, and the loop's log."""
    model, train_s, path = entry
    # a network without hidden layer has no ReLU to bound: the reachable enumeration (minutes a
    # plan at 6 weeks) would buy nothing
    bounding = cfg.bounding[0] if isinstance(model, Network) and model.n_layers > 1 else "chained"
    row = {"model": name, "variant": name.split("+")[1] if "+" in name else "baseline",
           "bounding": "loop", "loop_bounding": bounding, "weeks": hz, "budget": inst.budget,
           "train_s": train_s, "size_bytes": size[0], "param_bytes": size[1], "file": path.name,
           **metrics, "units_removed": "", "message": "", "schedule": "", "cost": None,
           "predicted_S": float("nan"), "simulated_S": float("nan"),
           "simulated_by": "reference SIR (DOP853, 1e-12)"}
    log, predicted, simulated, polish_log = [], None, None, []
    try:
        if metrics.get("flag"):
            raise _Skip("NOT_PLANNED", metrics["flag"])
        out = improve(inst, model, Xtr, Ytr, bounding=bounding, oracle_calls=cfg.oracle_calls,
                      time_limit=cfg.time_limit, coverage=cfg.coverage, calibration=cfg.calibration,
                      refit_epochs=cfg.refit_epochs, seed=cfg.seed,
                      refit=isinstance(model, Network) or hasattr(model, "tree_"),
                      polish_calls=cfg.polish_calls)
    except _Skip as e:
        row.update(status=e.status, message=e.message)
    except NotApplicable as e:
        row.update(status="NOT_APPLICABLE", message=str(e))
    except MagnitudeError as e:
        row.update(status="ENCODING_REFUSED", message=str(e))
    else:
        r = out.result
        log = r.log
        first = next((a for a in r.answers if a.measured), None)
        status = ("OPEN_LOOP" if cfg.oracle_calls == 0 else "PROVEN" if r.proven
                  else "BUDGET" if "budget" in r.stop else "STOPPED")
        pol = out.polish
        polish_log = [{"schedule": " ".join(map(str, c)), "simulated_S": m.objective,
                       "label": "measured feasible" if m.feasible else
                       "measured infeasible" if m.measured else f"unmeasured: {m.reason}"}
                      for c, m in (pol.tried if pol else [])]
        row.update(status=status,
                   message=r.stop + (f"; local search: {pol.stop}" if pol else ""),
                   oracle_calls=out.oracle_calls, loop_calls=r.oracle_calls,
                   polish_calls=pol.calls if pol else 0, polish_moves=pol.moves if pol else 0,
                   loop_S=r.best.objective if r.best is not None else float("nan"),
                   calibration_simulations=out.calibration_simulations,
                   simulated_weeks=(out.oracle_calls + out.calibration_simulations) * hz,
                   refits=out.refits, loop_s=out.seconds, margin_S=r.margins.get("S", float("nan")),
                   open_loop_S=first.objective if first is not None else float("nan"),
                   unmeasured=sum(not a.measured for a in r.answers))
        if out.best is not None:
            config, meas = out.best
            simulated = improve_trajectory(inst, meas.values)
            # the simulations until the best: the loop's answers, then the local search's
            sims = [a.config for a in r.answers] + ([c for c, _ in pol.tried] if pol else [])
            row.update(schedule=" ".join(map(str, config)), cost=meas.values["cost"],
                       predicted_S=float(chained_s(r.model, inst, np.array([config], np.int64))[0])
                       if pol is not None and pol.moves else r.best.proposal.objective,
                       simulated_S=meas.objective, label="measured feasible",
                       found_by="local search" if pol is not None and pol.moves else "loop",
                       calls_to_best=1 + sims.index(tuple(config)))
        if out.best is None and r.answers and not r.answers[-1].measured:  # the open loop's plan
            a = r.answers[-1]
            row.update(schedule=" ".join(map(str, a.config)), predicted_S=a.proposal.objective,
                       label=f"{a.label}: {a.reason}")
        if truth is not None:
            row.update(brute_force_schedules=truth.n_schedules,
                       brute_force_weeks=truth.n_simulated_weeks)
    if truth is not None:
        row.update(optimum_S=truth.best_s, optimum_by="brute force (every schedule)",
                   gap_to_optimum=(truth.best_s - row["simulated_S"]) / truth.best_s)
    return {"row": row, "predicted": predicted,
            "simulated": None if simulated is None else simulated.tolist(),
            "loop": [{k: v for k, v in e.items()} for e in log],
            "polish": polish_log}


class _Skip(Exception):
    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _json(v):
    """numpy scalars as the Python numbers they are (a resume reads the rows back)."""
    if isinstance(v, np.generic):
        return v.item()
    return str(v)

