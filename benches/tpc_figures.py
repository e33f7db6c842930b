"""Issue 6's figures from a transprecision run folder, as markdown tables.

Run: python tpc_figures.py RUN_DIR   (RUN_DIR holds run.summary.csv, written by
`emlpress tpc run --data ../../shared/data/tpc --topologies ...`)

Per benchmark and variant: solve status counts, solver time (median and max), share of
solutions truly feasible when checked against the measurements, bits above the best
measured feasible configuration; then the solver-time ratio baseline / compressed
(baseline vs baseline+lossless, pruned vs pruned+lossless) per topology.
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


def tables(run: Path) -> str:
    df = pd.read_csv(run / "run.summary.csv")
    out = []
    rows = []
    for (bench, variant), g in df.groupby(["benchmark", "variant"], sort=False):
        solved = g[g["status"] == "OPTIMAL"]
        feas = g["truly_feasible"].dropna().astype(bool)
        above = g["bits_above_best_measured"].dropna()
        rows.append({
            "benchmark": bench,
            "variant": variant,
            "models": len(g),
            "status": ", ".join(f"{k} {v}" for k, v in g["status"].value_counts().items()),
            "solver ms (median / max)": f"{g['solver_ms'].median():.1f} / {g['solver_ms'].max():.1f}",
            "truly feasible": f"{int(feas.sum())} of {len(feas)}",
            "bits above best (min / median / max)": (
                f"{above.min():+.0f} / {above.median():+.0f} / {above.max():+.0f}" if len(above) else "-"),
            "optimal total bits": " ".join(str(int(v)) for v in solved["total_bits"]),
        })
    out.append(markdown(pd.DataFrame(rows)))
    ratios = []
    r_all = solver_time_ratios(df)
    for (bench, topo), g in df.groupby(["benchmark", "topology"], sort=False):
        r = {"benchmark": bench, "topology": topo}
        rr = r_all[(r_all["benchmark"] == bench) & (r_all["topology"] == topo)].set_index("base")["ratio"]
        for base in ("baseline", "pruned"):
            if base in rr:
                r[f"{base} / {base}+lossless"] = f"{rr[base]:.2f}"
        n = g.set_index("variant")
        if "baseline" in n.index and "baseline+lossless" in n.index:
            r["neurons (before -> after lossless)"] = (
                f"{int(n.loc['baseline', 'neurons_before'])} -> {int(n.loc['baseline+lossless', 'neurons_after'])}")
        ratios.append(r)
    out.append(markdown(pd.DataFrame(ratios).fillna('-')))
    return "\n\n".join(out)


if __name__ == "__main__":
    print(tables(Path(sys.argv[1])))
