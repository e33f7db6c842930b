"""The transprecision (TPC) pipeline: data -> networks (baseline, pruned, and their lossless
compressions) -> MILP choosing the fewest total bits under error/time limits -> verification
against measurements -> run folder with ``run.summary.csv``, JSON logs, models and plots.

Per benchmark and topology, one network with inputs ``var_*`` (bits) and one-hot hardware,
outputs ``-log10(error)``, time, memory_mean, memory_peak (raw units: the min-max
normalisation fit on the training split is folded into the first and last layers, and stored
beside each model as JSON). The MILP has integer bits within the data's range, one binary per
platform (exactly one chosen, or fixed with ``hw``), ``-log10(error) >= -log10(max_error)``,
``time <= max_time`` (optional memory limits), and minimises the total bits.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from emlpress.compress import lossless
from emlpress.data import tpc
from emlpress.network import Network

__all__ = ["PRESETS", "Config", "run", "optimize", "verify_solution", "solver_time_ratios",
           "DEFAULT_DATA"]

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
    time_limit: float = 60.0
    epochs: int = 30
    batch_size: int = 64
    seed: int = 0
    test_size: float = 0.2
    initial_sparsity: float = 0.0
    final_sparsity: float = 0.5
    compression_bounds: str = "lp"
    rerun_kernels: bool | None = None  # default: when the data is the embedded default
    out: Path = Path("runs")
    progress: bool = True


def _log(folder: Path, step: str, payload: dict) -> None:
    (folder / "logs").mkdir(exist_ok=True)
    with open(folder / "logs" / f"{step}.json", "w") as f:
        json.dump(payload, f, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


def _metrics(net: Network, data: tpc.TPCData, frame: pd.DataFrame) -> dict:
    """RMSE, MAE, R2 per target in raw units (error as -log10) on ``frame``."""
    Y = data.Y(frame)
    t0 = time.perf_counter()
    P = net.forward(data.X(frame))
    ms = (time.perf_counter() - t0) * 1e3
    out = {"evaluate_ms": ms}
    for k, name in enumerate(tpc.TARGETS):
        e = P[:, k] - Y[:, k]
        ss = float(np.sum((Y[:, k] - Y[:, k].mean()) ** 2))
        out[f"rmse_{name}"] = float(np.sqrt(np.mean(e**2)))
        out[f"mae_{name}"] = float(np.mean(np.abs(e)))
        out[f"r2_{name}"] = 1.0 - float(np.sum(e**2)) / ss if ss > 0 else float("nan")
    return out


def _domain(data: tpc.TPCData):
    blo, bhi = data.bit_range()
    lo = np.concatenate([blo.astype(float), np.zeros(len(data.hardware))])
    hi = np.concatenate([bhi.astype(float), np.ones(len(data.hardware))])
    return lo, hi


def _check_hw(cfg: Config, data: tpc.TPCData) -> None:
    if cfg.hw is not None and cfg.hw not in data.hardware:
        raise ValueError(f"--hw {cfg.hw!r}: {data.benchmark} has data for {data.hardware} only")


def optimize(net: Network, data: tpc.TPCData, cfg: Config, b=None, name="nn"):
    """Build and solve the bit-selection MILP; returns (Solution, NetworkHandle)."""
    import highspy

    from emlpress.milp import add_network, solve

    h = highspy.Highs()
    h.silent()
    blo, bhi = data.bit_range()
    nv, nh = data.n_vars, len(data.hardware)
    bits = h.addVariables(nv, lb=[float(v) for v in blo], ub=[float(v) for v in bhi])
    hw = h.addVariables(nh, lb=0.0, ub=1.0)
    h.changeColsIntegrality(nv + nh, np.arange(nv + nh, dtype=np.int32), np.ones(nv + nh, np.uint8))
    h.addConstr(sum(hw[i] for i in range(nh)) == 1)
    if cfg.hw is not None:
        _check_hw(cfg, data)
        h.addConstr(hw[data.hardware.index(cfg.hw)] == 1)
    nn = add_network(h, net, [*bits, *hw], bounds=b, name=name)
    out = nn.outputs
    h.addConstr(out[0] >= -np.log10(cfg.max_error))
    h.addConstr(out[1] <= cfg.max_time)
    if cfg.max_memory_mean is not None:
        h.addConstr(out[2] <= cfg.max_memory_mean)
    if cfg.max_memory_peak is not None:
        h.addConstr(out[3] <= cfg.max_memory_peak)
    h.setObjective(sum(bits[i] for i in range(nv)), sense=highspy.ObjSense.kMinimize)
    sol = solve(h, time_limit=cfg.time_limit)
    return sol, nn


def verify_solution(data: tpc.TPCData, bits: np.ndarray, hw: str, cfg: Config,
                    rerun: bool) -> dict:
    """Measured error and time of the chosen configuration: from the data when it was
    measured on that platform (mean over repeats), else from its nearest measured
    configurations (L1 distance in bits), and, for generated data, by re-running the kernel."""
    f = data.frame[data.frame["hardware"] == hw]
    V = f[data.var_cols].to_numpy()
    dist = np.abs(V - bits[None, :]).sum(1)
    d = int(dist.min())
    near = f[dist == d]
    res = {"measured_source": "data" if d == 0 else f"nearest (L1 distance {d}, {len(near)} rows)",
           "measured_error": float(near["error"].mean()), "measured_time": float(near["time"].mean()),
           "measured_memory_peak": float(near["memory_peak"].mean())}
    if rerun:
        from emlpress.data.tpc_generate import run_kernel

        r = run_kernel(data.benchmark, bits)
        res.update(measured_source="kernel re-run", measured_error=r["error"],
                   measured_time=r["time"], measured_memory_peak=r["memory_peak"])
    ok = res["measured_error"] <= cfg.max_error and res["measured_time"] <= cfg.max_time
    if cfg.max_memory_peak is not None:
        ok = ok and res["measured_memory_peak"] <= cfg.max_memory_peak
    res["truly_feasible"] = bool(ok)
    best = tpc.best_measured(data, cfg.max_error, cfg.max_time, hw, cfg.max_memory_peak)
    res["best_measured_bits"] = int(best[data.var_cols].sum()) if best is not None else None
    res["bits_above_best_measured"] = (int(bits.sum()) - res["best_measured_bits"]
                                       if best is not None else None)
    return res


def solver_time_ratios(summary: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark, topology and base variant (baseline, pruned): the solver time of the
    network over that of its lossless compression (> 1: the compressed one solved faster)."""
    rows = []
    for (bench, topo, base), g in summary.assign(base=summary["variant"].str.split("+").str[0]).groupby(
            ["benchmark", "topology", "base"], sort=False):
        plain = g[g["variant"] == base]["solver_ms"]
        comp = g[g["variant"] == f"{base}+lossless"]["solver_ms"]
        if len(plain) and len(comp) and comp.iloc[0] > 0:
            rows.append({"benchmark": bench, "topology": topo, "base": base,
                         "ratio": plain.iloc[0] / comp.iloc[0]})
    return pd.DataFrame(rows, columns=["benchmark", "topology", "base", "ratio"])


def _plots(folder: Path, summary: pd.DataFrame) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    colours = {"OPTIMAL": "tab:green", "TIME_LIMIT": "tab:orange", "INFEASIBLE": "tab:red"}
    for bench, g in summary.groupby("benchmark"):
        fig, ax = plt.subplots(figsize=(5, 4))
        for status, gs in g.groupby("status"):
            ax.scatter(gs["weights"], gs["solver_ms"], label=status, c=colours.get(status, "tab:gray"))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("network weights")
        ax.set_ylabel("solver time (ms)")
        ax.set_title(f"{bench}: solver time vs network size")
        ax.legend()
        p = folder / f"solver_time_{bench}.png"
        fig.tight_layout()
        fig.savefig(p, dpi=100)
        plt.close(fig)
        paths.append(p)
    ratios = solver_time_ratios(summary)
    rows = [(f"{r.benchmark}\n{r.topology}\n{r.base}", r.ratio) for r in ratios.itertuples()]
    if rows:
        fig, ax = plt.subplots(figsize=(max(5, len(rows) * 0.9), 4))
        ax.bar(range(len(rows)), [r[1] for r in rows])
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(range(len(rows)), [r[0] for r in rows], fontsize=7)
        ax.set_ylabel("solver time: uncompressed / lossless")
        ax.set_title("Speed-up of the solve from lossless compression")
        p = folder / "solver_time_ratio.png"
        fig.tight_layout()
        fig.savefig(p, dpi=100)
        plt.close(fig)
        paths.append(p)
    return paths


def _check(cfg: Config) -> None:
    """Reject a configuration that could only fail or mislead later (after models have been
    trained): each error names the setting and its value."""
    from emlpress import _options
    from emlpress.bounds import METHODS
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
    _options.positive_int("epochs", cfg.epochs)
    _options.positive_int("batch_size", cfg.batch_size)
    tpc.check_test_size(cfg.test_size)
    check_sparsities(cfg.initial_sparsity, cfg.final_sparsity)
    if cfg.compression_bounds not in METHODS:
        raise ValueError(f"unknown compression_bounds {cfg.compression_bounds!r}: expected one of {METHODS}")


def run(cfg: Config) -> tuple[Path, pd.DataFrame]:
    """The whole pipeline; returns the run folder and the summary table."""
    from emlpress.train import fit_regressor

    cfg.data = Path(cfg.data)
    _check(cfg)
    datasets = tpc.load_dir(cfg.data, cfg.benchmarks)
    for data in datasets.values():  # before any training, not at the first MILP
        _check_hw(cfg, data)
    rerun = cfg.rerun_kernels
    if rerun is None:
        rerun = cfg.data.resolve() == DEFAULT_DATA.resolve()
    stamp = _dt.datetime.now().strftime("%Y%m%d%H%M%S")
    folder = Path(cfg.out) / f"run{stamp}"
    k = 0
    while folder.exists():  # two runs in one second
        k += 1
        folder = Path(cfg.out) / f"run{stamp}_{k}"
    (folder / "models").mkdir(parents=True)
    _log(folder, "config", {k: str(v) if isinstance(v, Path) else v for k, v in vars(cfg).items()})
    jobs = [(b, t) for b in datasets for t in cfg.topologies]
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs) * len(VARIANTS), desc="tpc run", unit="model")
    rows = []
    for bench, topo in jobs:
        data = datasets[bench]
        train, test = data.split(cfg.test_size, cfg.seed)
        norm = tpc.MinMax.fit(train, data.input_cols + list(tpc.TARGETS))
        lo, hi = _domain(data)
        _log(folder, f"{bench}_{topo}_data", {
            "rows": len(data.frame), "train": len(train), "test": len(test),
            "hardware": data.hardware, "normalisation": norm.to_json()})
        nets = {}
        for variant in ("baseline", "pruned"):
            res = fit_regressor(
                data.X(train), data.Y(train), PRESETS[topo], epochs=cfg.epochs,
                batch_size=cfg.batch_size, seed=cfg.seed, lo=lo, hi=hi,
                pruning=(cfg.initial_sparsity, cfg.final_sparsity) if variant == "pruned" else None)
            nets[variant] = (res.net, res.train_s * 1e3, res.sparsity, None)
        for base in ("baseline", "pruned"):
            net, train_ms, sp, _ = nets[base]
            t0 = time.perf_counter()
            small, rep = lossless(net, lo, hi, bounds=cfg.compression_bounds)
            nets[f"{base}+lossless"] = (small, train_ms, sp, (rep, (time.perf_counter() - t0) * 1e3))
        for variant in VARIANTS:
            net, train_ms, sparsity, comp = nets[variant]
            tag = f"{bench}_{topo}_{variant.replace('+', '_')}"
            path = folder / "models" / f"{tag}.npz"
            net.save(path)
            norm.save(folder / "models" / f"{tag}.normalisation.json")
            metrics = _metrics(net, data, test)
            b = comp[0].bounds if comp else None
            sol, nn = optimize(net, data, cfg, b=b)
            row = {
                "benchmark": bench, "topology": topo, "variant": variant,
                "hardware": cfg.hw or "any", "train_ms": train_ms,
                "size_bytes": path.stat().st_size, "weights": int(sum(W.size for W in net.weights)),
                "sparsity": sparsity, "evaluate_ms": metrics["evaluate_ms"],
                "rmse": metrics["rmse_neg_log_error"], "rmse_time": metrics["rmse_time"],
                "r2_error": metrics["r2_neg_log_error"], "r2_time": metrics["r2_time"],
                "neurons_before": nets[variant.split("+")[0]][0].n_neurons,
                "neurons_after": net.n_neurons,
                "compress_ms": comp[1] if comp else float("nan"),
                "encode_ms": sol.encode_s * 1e3, "solver_ms": sol.solve_s * 1e3,
                "objective": sol.objective, "status": sol.status, "binaries": nn.n_binaries,
                "nodes": sol.nodes, "gap": sol.gap,
            }
            if sol.has_solution:
                x = sol.inputs["nn"]
                bits = np.round(x[: data.n_vars]).astype(int)
                hw = data.hardware[int(np.argmax(x[data.n_vars:]))]
                pred = sol.outputs["nn"]
                ver = verify_solution(data, bits, hw, cfg, rerun)
                row.update(chosen_hardware=hw, bits=" ".join(map(str, bits)), total_bits=int(bits.sum()),
                           predicted_error=float(10 ** -pred[0]), predicted_time=float(pred[1]),
                           milp_forward_diff=sol.verify_diff["nn"], **ver)
            rows.append(row)
            _log(folder, tag, {"row": row, "metrics": metrics,
                               "lossless": (str(comp[0]) if comp else None)})
            if bar is not None:
                bar.update(1)
                bar.set_postfix(benchmark=bench, topology=topo, variant=variant)
    if bar is not None:
        bar.close()
    summary = pd.DataFrame(rows)
    summary.to_csv(folder / "run.summary.csv", index=False)
    _plots(folder, summary)
    return folder, summary
