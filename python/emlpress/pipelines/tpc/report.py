"""The TPC run's report: the summary table (``run.summary.csv``), the coverage log, the
solver-time plots and ratios, and what ``emlpress tpc run`` prints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emlpress._atomic import json_default, save_figure_atomic, write_csv_atomic, write_json_atomic
from emlpress.pipelines.tpc.config import (ANSWER_MODELS, QUANTIZED_VARIANTS, VARIANTS, Config,
                                           embedding)


def _log(folder: Path, step: str, payload: dict) -> None:
    write_json_atomic(folder / "logs" / f"{step}.json", payload, default=json_default)


def _write_summary(folder: Path, rows: list) -> None:
    write_csv_atomic(folder / "run.summary.csv", pd.DataFrame(rows))


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
    import matplotlib  # heavy, and only for the plots

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


def print_summary(folder: Path, summary: pd.DataFrame, cfg: Config) -> None:
    """What ``emlpress tpc run`` prints at the end: the answers' table (and, with
    ``cfg.quantized``, the int8 variants'), how many were measured feasible, the optima and
    the notes, and the run folder."""
    cols = ["benchmark", "topology", "variant", "r2_error", "first_bits", "first_verdict",
            "bits", "total_bits", "predicted_error", "measured_error", "measured_time",
            "verdict", "measured_source", "oracle_calls", "brute_force_evaluated", "bits_above_optimum",
            "bits_above_best_measured"]
    table = summary[[c for c in cols if c in summary]].rename(columns={
        "first_bits": "first answer", "first_verdict": "first verdict", "measured_source": "measured by",
        "oracle_calls": "oracle calls", "brute_force_evaluated": "brute force",
        "bits_above_optimum": "above optimum", "bits_above_best_measured": "above best in data"})
    with pd.option_context("display.width", 250, "display.max_columns", 30,
                           "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))
        if cfg.quantized:  # per variant: the size and what its answer rests on
            q = summary[summary["variant"].isin(VARIANTS[:1] + QUANTIZED_VARIANTS)]
            qcols = ["benchmark", "topology", "variant", "tflite_bytes", "binaries", "solver_ms",
                     "predicted_error", "interpreter_predicted_error", "milp_forward_diff", "verdict"]
            print("quantized variants (sizes: .tflite bytes of every variant's models; "
                  "milp_forward_diff 0 on int8-exact: bit for bit):")
            print(q[[c for c in qcols if c in q]].to_string(index=False))
            for v in ("baseline",) + QUANTIZED_VARIANTS:
                print(f"  {v}: the answer rests on {ANSWER_MODELS[embedding(v)]}")
    ok = int(summary["measured_feasible"].sum())
    first = summary.get("first_verdict", pd.Series(dtype=object)).eq("feasible").sum()
    coverage = summary.attrs.get("coverage", {}).get("coverage_asked", cfg.coverage)
    print(f"final answers measured feasible: {ok} of {len(summary)}; first answers: {int(first)} "
          f"(margins at {coverage:.0%} coverage; on the test rows they cover "
          f"{summary['test_coverage_error'].mean():.0%})")
    for bench, g in summary.groupby("benchmark", sort=False):
        opt = g["optimum_bits"].iloc[0] if "optimum_bits" in g else None
        if opt is not None and not pd.isna(opt):
            kind = "optimum (brute force)" if g["optimum_proven"].iloc[0] else "optimum at least (brute force cut short)"
            print(f"{bench}: {kind} {int(opt)} bits; best in the data {g['best_measured_bits'].iloc[0]}")
        elif "best_measured_bits" in g and not pd.isna(g["best_measured_bits"].iloc[0]):
            # the table as the oracle: no kernel runs, no brute force; the table's own best instead
            above = g.get("bits_above_best_measured", pd.Series(dtype=float)).dropna()
            print(f"{bench}: no brute force ({g['oracle'].iloc[0]} oracle); fewest bits the table holds "
                  f"feasible {int(g['best_measured_bits'].iloc[0])}" + (
                      f"; answers above it by {int(above.min())}-{int(above.max())} (median {above.median():g})"
                      if len(above) else ""))
        if "milp_best_bits" in g:  # the same answers, before and after the local search
            ok = g[g["measured_feasible"].astype(bool)]
            milp = g["milp_best_bits"].dropna()
            none = len(g) - len(milp)
            if len(ok):
                before = (f"median {milp.median():g}, range {int(milp.min())}-{int(milp.max())}"
                          if len(milp) else "none")
                print(f"  {bench}: total bits of the loop's MILP phase ({before}"
                      + (f"; {none} answer{'s' if none != 1 else ''} with none measured feasible, repaired by "
                         "the local search" if none else "")
                      + f"), after the local search (median {ok['total_bits'].median():g}, range "
                      f"{int(ok['total_bits'].min())}-{int(ok['total_bits'].max())}) with "
                      f"{ok['local_oracle_calls'].median():g} more oracle calls (median)")
    if "loop_proven" in summary:
        proven = int(summary["loop_proven"].fillna(False).astype(bool).sum())
        print(f"loops that proved no answer with fewer bits exists within the margins: {proven} of "
              f"{len(summary)}; oracle calls per answer: median {summary['oracle_calls'].median():g}, "
              f"most {summary['oracle_calls'].max():g}")
    for note in summary.attrs.get("notes", []):
        print(f"note: {note}")
    print(f"run folder: {folder} (run.summary.csv, logs/, models/, plots)")
