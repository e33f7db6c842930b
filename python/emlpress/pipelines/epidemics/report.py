"""What an epidemics run reports: ``run.summary.csv`` (rebuilt from the plan rows' records,
with the best known plans where no brute force ran), the plots, and the table that
``emlpress epidemics run`` prints (:func:`print_summary`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emlpress._atomic import save_figure_atomic, write_csv_atomic
from emlpress.data import sir
from emlpress.pipelines.epidemics.config import Config, _jobs
from emlpress.pipelines.epidemics.model import Plan


def _summary_rows(cfg: Config, records: dict) -> list[dict]:
    return [records[(n, b, hz)]["row"] for hz in cfg.horizons for n, b in _jobs(cfg, hz)
            if (n, b, hz) in records]


def _first_plans(cfg: Config, records: dict) -> dict:
    """The plotted plan per (model, weeks): the first bounding's with a schedule."""
    plans = {}
    for hz in cfg.horizons:
        for name, b in _jobs(cfg, hz):
            r = records.get((name, b, hz))
            if r and r["row"]["schedule"] and r["predicted"] is not None and (name, hz) not in plans:
                plans[(name, hz)] = Plan(r["row"]["status"], None, None, np.array(r["predicted"]),
                                         np.array(r["simulated"]), None, None)
    return plans


def _finish(folder: Path, cfg: Config, records: dict):
    """run.summary.csv (from the records, with the best known plans where no brute force
    ran) and the plots."""
    summary = pd.DataFrame(_summary_rows(cfg, records))
    for hz in cfg.horizons:
        if "optimum_S" in summary and summary.loc[summary["weeks"] == hz, "optimum_S"].notna().any():
            continue
        # no brute force: the best known plan, by a local search with the true simulator from
        # every plan's schedule, simulated again by the reference integrator
        inst = sir.Instance(weeks=hz, budget=cfg.budget_per_week * hz)
        at = summary["weeks"] == hz
        starts = {s for s in summary.loc[at, "schedule"] if isinstance(s, str) and s}
        found = [sir.local_search(inst, [int(v) for v in s.split()]) for s in sorted(starts)]
        if found:
            sched = max(found, key=lambda f: f[1])[0]
            best = float(sir.simulate(inst, sched, reference=True)[-1, 0])
            top = summary.loc[at, "simulated_S"].idxmax() if summary.loc[at, "simulated_S"].notna().any() else None
            if top is not None and summary.loc[top, "simulated_S"] > best:  # a plan itself
                best = float(summary.loc[top, "simulated_S"])
                sched = [int(v) for v in summary.loc[top, "schedule"].split()]
            summary.loc[at, "best_known_S"] = best
            summary.loc[at, "best_known_schedule"] = " ".join(map(str, sched))
            summary.loc[at, "best_known_by"] = ("local search (one- and two-week changes, true "
                                                "simulator) from every plan; reference SIR")
            summary.loc[at, "gap_to_best_known"] = (best - summary.loc[at, "simulated_S"]) / best
    write_csv_atomic(folder / "run.summary.csv", summary)
    _plots(folder, summary, _first_plans(cfg, records))
    return summary



def _plots(folder, summary, plans) -> None:
    import matplotlib  # slow to import: only when a run draws its plots

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for hz in sorted(summary["weeks"].unique()):
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharex=True)
        for (name, w), p in plans.items():
            if w != hz or p.predicted is None:
                continue
            for k, ax in enumerate(axes):
                line, = ax.plot(p.predicted[:, k], "--", label=f"{name} predicted")
                ax.plot(p.simulated[:, k], "-", color=line.get_color(), label=f"{name} simulated")
        for k, ax in enumerate(axes):
            ax.set_title("SIR"[k])
            ax.set_xlabel("week")
        axes[0].legend(fontsize=6)
        fig.suptitle(f"{hz} weeks: the chosen plans, predicted (dashed) and simulated (solid)", fontsize=9)
        fig.tight_layout()
        save_figure_atomic(fig, folder / f"trajectories_{hz}w.png", dpi=100)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for (hz, b), g in summary.groupby(["weeks", "bounding"]):
        ax.plot(g["model"], g["solve_s"], "o-", label=f"{hz} weeks, {b}")
    ax.set_yscale("log")
    ax.set_ylabel("solve seconds")
    ax.tick_params(axis="x", labelsize=6, rotation=30)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure_atomic(fig, folder / "solver_time.png", dpi=100)
    plt.close(fig)


def print_summary(folder: Path, summary: pd.DataFrame) -> None:
    """What ``emlpress epidemics run`` prints at the end: the summary's main columns (one row
    per model, bounding and horizon), what they mean, and the run folder."""
    cols = ["model", "bounding", "weeks", "r2_S", "sparsity", "status", "solve_s", "gap", "binaries",
            "schedule", "predicted_S", "simulated_S", "oracle_calls", "calls_to_best", "optimum_S",
            "gap_to_optimum", "best_known_S", "gap_to_best_known"]
    with pd.option_context("display.width", 250, "display.max_columns", 30,
                           "display.float_format", "{:.5g}".format):
        print(summary[[c for c in cols if c in summary]].to_string(index=False))
    print("predicted_S: the model's S after the last week at the MILP's plan; simulated_S: the plan "
          "simulated by the reference SIR integrator; optimum_S: brute force over every schedule "
          "within the budget (where it runs), else best_known_S: a local search with the true "
          "simulator from every plan")
    if "oracle_calls" in summary:
        print("loop rows: the planning loop (emlpress.eml: each plan simulated, learnt, cut; "
              "status PROVEN: no schedule left whose predicted S plus the margin beats the best, "
              "BUDGET: oracle calls spent), then a local search from its best plan (one NPI "
              "changed in one week or moved to another, each neighbour simulated); oracle_calls: plans simulated by "
              "both (calls_to_best: until the best), beside the brute force's brute_force_weeks "
              "in run.summary.csv")
    flagged = summary[summary["status"] == "NOT_PLANNED"] if "status" in summary else summary[:0]
    for name in dict.fromkeys(flagged["model"]):
        print(f"{name}: {flagged.loc[flagged['model'] == name, 'message'].iloc[0]}")
    print(f"run folder: {folder} (run.summary.csv, logs/, models/, plots, ptq_*.csv)")
