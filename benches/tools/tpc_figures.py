"""The transprecision figures of benches/README.md from a run folder, as markdown tables.

Run: python benches/tools/tpc_figures.py RUN_DIR   (RUN_DIR holds run.summary.csv, written by
`emlpress tpc run ...`)

Per benchmark and variant: answers, verdicts of the first and of the final answers (measured
by the oracle named), corrections of the loop, bits above the brute-force optimum (when the
run computed it) and above the best measured configuration, solver time; then the
solver-time ratio uncompressed / lossless of the same first MILP, where compression removed
units and the MILPs were timed again.
"""

import sys
from pathlib import Path

import pandas as pd

from emlpress.pipelines.tpc import solver_time_ratios


def markdown(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _span(v: pd.Series) -> str:
    v = v.dropna()
    return f"{v.min():+.0f} / {v.median():+.0f} / {v.max():+.0f}" if len(v) else "-"


def tables(run: Path) -> str:
    df = pd.read_csv(run / "run.summary.csv")
    rows = []
    for (bench, variant), g in df.groupby(["benchmark", "variant"], sort=False):
        row = {
            "benchmark": bench, "variant": variant, "answers": len(g),
            "measured by": ", ".join(sorted(set(g["measured_source"].dropna().str.split(" \\(").str[0]))),
            "first feasible": f"{int((g['first_verdict'] == 'feasible').sum())} of {len(g)}",
            "final feasible": f"{int((g['verdict'] == 'feasible').sum())} of {len(g)}",
            "solves (median / max)": f"{g['iterations'].median():.0f} / {g['iterations'].max():.0f}",
            "R2 -log10(error) (min / max)": f"{g['r2_error'].min():.3f} / {g['r2_error'].max():.3f}",
            "bits above optimum (min / median / max)": _span(g.get("bits_above_optimum", pd.Series(dtype=float))),
            "bits above best measured": _span(g["bits_above_best_measured"]),
            "solver ms (median)": f"{g['solver_ms'].median():.1f}",
        }
        rows.append(row)
    out = [markdown(pd.DataFrame(rows))]
    r = solver_time_ratios(df)
    if len(r):
        r = r.assign(ratio=r["ratio"].map("{:.2f}".format),
                     range=[f"{a:.2f}-{b:.2f}" for a, b in zip(r["ratio_min"], r["ratio_max"])])
        out.append(markdown(r[["benchmark", "topology", "base", "neurons_removed", "ratio", "range", "repeats"]]))
    return "\n\n".join(out)


if __name__ == "__main__":
    print(tables(Path(sys.argv[1])))
