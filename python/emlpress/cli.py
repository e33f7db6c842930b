"""The ``emlpress`` command."""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from emlpress import bounds as _bounds
from emlpress.io import load_model


def _box(values, n: int, name: str):
    if values is None:
        return None
    if len(values) == 1:
        return np.full(n, values[0])
    if len(values) != n:
        raise SystemExit(f"emlpress: --{name} takes 1 or {n} values, got {len(values)}")
    return np.asarray(values, dtype=np.float64)


def _model_and_box(args):
    net = load_model(args.model)
    lo, hi = _box(args.lo, net.n_in, "lo"), _box(args.hi, net.n_in, "hi")
    if (lo is None) != (hi is None):
        raise SystemExit("emlpress: give both --lo and --hi, or neither")
    if lo is None and net.lo is None:
        raise SystemExit(f"emlpress: {args.model} has no input domain: pass --lo and --hi")
    return net, lo, hi


def _tighten(args, net, lo, hi, method: str):
    """Bounds by `method`, with a progress bar for the per-neuron (LP/MILP) methods."""
    return _bounds.tighten(net, lo, hi, method, threads=args.threads,
                           milp_time_limit=args.milp_time_limit,
                           progress=method not in ("interval", "crown"))


def _cmd_bounds(args) -> int:
    net, lo, hi = _model_and_box(args)
    b = _tighten(args, net, lo, hi, args.method)
    print(f"{args.model}: {net}")
    print(f"input box: lo={b.lo.tolist()} hi={b.hi.tolist()}")
    stages = ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in b.seconds.items())
    print(f"method: {args.method} ({stages}), stable hidden units: {b.n_stable} of {net.n_neurons}")
    print(b.summary().to_string())
    if b.search is not None:  # exact bounds: what the branch-and-bound did per layer
        print("branch-and-bound per layer (unresolved: sides cut short by the limit, bounds sound):")
        print(b.search.to_string(float_format=lambda v: f"{v:.3f}"))
    return 0


def _cmd_compress(args) -> int:
    from emlpress.compress import lossless

    out = str(args.output)
    if not out.endswith((".npz", ".h5", ".keras")):
        raise SystemExit(f"emlpress: -o {out}: the output must end in .npz, .h5 or .keras")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):  # fail before the bounds, not after
        raise SystemExit(f"emlpress: -o {out}: directory {parent} does not exist")
    net, lo, hi = _model_and_box(args)
    b = _tighten(args, net, lo, hi, args.bounds)
    small, rep = lossless(net, b.lo, b.hi, bounds=b)
    if out.endswith(".npz"):
        small.save(out)
    else:
        from emlpress.io import to_keras

        to_keras(small).save(out)
    print(f"{args.model}: {net}")
    print(f"input box: lo={b.lo.tolist()} hi={b.hi.tolist()}")
    stages = {**b.seconds, **{k: v for k, v in rep.seconds.items() if k != "bounds"}}
    print(f"bounds: {args.bounds}; " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in stages.items()))
    print(rep)
    print(f"wrote {out}: {small}")
    return 0


def _cmd_tpc_generate(args) -> int:
    from emlpress.data.tpc_generate import generate

    paths = generate(args.out, args.benchmarks, n_rows=args.rows, hw=args.hw, seed=args.seed,
                     repeats=args.repeats)
    for p in paths:
        print(f"wrote {p}")
    return 0


def _cmd_tpc_run(args) -> int:
    import pandas as pd

    from emlpress.pipelines import tpc as pipe

    cfg = pipe.Config(
        data=args.data or pipe.DEFAULT_DATA, benchmarks=args.benchmarks,
        topologies=args.topologies, hw=args.hw, max_error=args.max_error, max_time=args.max_time,
        max_memory_peak=args.max_memory_peak, time_limit=args.time_limit, epochs=args.epochs,
        seed=args.seed, final_sparsity=args.final_sparsity, initial_sparsity=args.initial_sparsity,
        compression_bounds=args.compression_bounds, out=args.out,
    )
    folder, summary = pipe.run(cfg)
    cols = ["benchmark", "topology", "variant", "neurons_after", "binaries", "status", "solver_ms",
            "total_bits", "bits", "chosen_hardware", "predicted_error", "measured_error",
            "measured_time", "truly_feasible", "bits_above_best_measured"]
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(summary[[c for c in cols if c in summary]].to_string(index=False))
    print(f"run folder: {folder} (run.summary.csv, logs/, models/, plots)")
    return 0


def _model_args(p: argparse.ArgumentParser) -> None:
    """The model, its input box and the bound solver options (bounds, compress)."""
    p.add_argument("model", help="model file: .npz, .h5/.keras, .onnx, .pt/.pth")
    p.add_argument("--lo", type=float, nargs="+", help="input lower bounds (1 value or n_in)")
    p.add_argument("--hi", type=float, nargs="+", help="input upper bounds (1 value or n_in)")
    p.add_argument("--threads", type=int, default=None, help="HiGHS instances for lp/milp (default: all cores)")
    p.add_argument("--milp-time-limit", type=float, default=10.0, help="seconds per neuron and side of the exact (milp) bounds search; a limit gives sound, looser bounds")


def build_parser() -> argparse.ArgumentParser:
    from emlpress.data import tpc as tpc_data
    from emlpress.pipelines import tpc as tpc_pipe

    p = argparse.ArgumentParser(prog="emlpress", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    pb = sub.add_parser("bounds", help="per-layer neuron bounds and stability of a model")
    _model_args(pb)
    pb.add_argument("--method", choices=_bounds.METHODS, default="crown")
    pb.set_defaults(func=_cmd_bounds)

    pc = sub.add_parser("compress", help="lossless compression of a model on an input box")
    _model_args(pc)
    pc.add_argument("--bounds", choices=_bounds.METHODS, default="lp", help="bound method (default: lp)")
    pc.add_argument("-o", "--output", required=True, help="compressed model: .npz, or .h5/.keras (needs [keras])")
    pc.set_defaults(func=_cmd_compress)

    pt = sub.add_parser("tpc", help="transprecision computing: generate data, run the pipeline")
    tsub = pt.add_subparsers(dest="tpc_command", required=True)
    g = tsub.add_parser("generate", help="measure the numba kernels at random precisions")
    g.add_argument("--out", default="tpc_data", help="output directory (default: tpc_data)")
    g.add_argument("--benchmarks", nargs="+", choices=list(tpc_data.BENCHMARKS))
    g.add_argument("--rows", type=int, default=2000, help="configurations per benchmark")
    g.add_argument("--hw", default=None, help="hardware name in the file names (default: host name)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--repeats", type=int, default=3, help="timing repeats (best is kept)")
    g.set_defaults(func=_cmd_tpc_generate)
    d = tpc_pipe.Config()  # the pipeline's defaults are the command's
    r = tsub.add_parser("run", help="train, compress, optimise and verify; writes runs/run<time>/")
    r.add_argument("--data", default=None, help="directory of <Benchmark>_<hw>.csv (default: embedded data)")
    r.add_argument("--benchmarks", nargs="+", choices=list(tpc_data.BENCHMARKS))
    r.add_argument("--topologies", nargs="+", default=d.topologies,
                   help="presets: " + " ".join(tpc_pipe.PRESETS))
    r.add_argument("--hw", default=d.hw, help="fix the hardware platform (default: the MILP chooses)")
    r.add_argument("--max-error", type=float, default=d.max_error)
    r.add_argument("--max-time", type=float, default=d.max_time)
    r.add_argument("--max-memory-peak", type=float, default=d.max_memory_peak)
    r.add_argument("--time-limit", type=float, default=d.time_limit, help="seconds per MILP")
    r.add_argument("--epochs", type=int, default=d.epochs)
    r.add_argument("--seed", type=int, default=d.seed)
    r.add_argument("--initial-sparsity", type=float, default=d.initial_sparsity)
    r.add_argument("--final-sparsity", type=float, default=d.final_sparsity)
    r.add_argument("--compression-bounds", choices=_bounds.METHODS, default=d.compression_bounds)
    r.add_argument("--out", default=str(d.out), help="parent directory of the run folder")
    r.set_defaults(func=_cmd_tpc_run)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"emlpress: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
