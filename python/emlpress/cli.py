"""The ``emlpress`` command."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from emlpress import bounds as _bounds
from emlpress.io import load_model

BOUND_METHODS = ("interval", "crown", "lp", "milp", "progressive")


def _box(values, n: int, name: str):
    if values is None:
        return None
    if len(values) == 1:
        return np.full(n, values[0])
    if len(values) != n:
        raise SystemExit(f"emlpress: --{name} takes 1 or {n} values, got {len(values)}")
    return np.asarray(values, dtype=np.float64)


def _cmd_bounds(args) -> int:
    net = load_model(args.model)
    lo, hi = _box(args.lo, net.n_in, "lo"), _box(args.hi, net.n_in, "hi")
    if (lo is None) != (hi is None):
        raise SystemExit("emlpress: give both --lo and --hi, or neither")
    if lo is None and net.lo is None:
        raise SystemExit(f"emlpress: {args.model} has no input domain: pass --lo and --hi")
    b = _bounds.tighten(net, lo, hi, args.method, threads=args.threads,
                        milp_time_limit=args.milp_time_limit, progress=args.method not in ("interval", "crown"))
    print(f"{args.model}: {net}")
    print(f"input box: lo={b.lo.tolist()} hi={b.hi.tolist()}")
    stages = ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in b.seconds.items())
    print(f"method: {args.method} ({stages}), stable hidden units: {b.n_stable} of {net.n_neurons}")
    print(b.summary().to_string())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="emlpress", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    pb = sub.add_parser("bounds", help="per-layer neuron bounds and stability of a model")
    pb.add_argument("model", help="model file: .npz, .h5/.keras, .onnx, .pt/.pth")
    pb.add_argument("--lo", type=float, nargs="+", help="input lower bounds (1 value or n_in)")
    pb.add_argument("--hi", type=float, nargs="+", help="input upper bounds (1 value or n_in)")
    pb.add_argument("--method", choices=BOUND_METHODS, default="crown")
    pb.add_argument("--threads", type=int, default=None, help="HiGHS instances for lp/milp (default: all cores)")
    pb.add_argument("--milp-time-limit", type=float, default=10.0, help="seconds per MILP solve")
    pb.set_defaults(func=_cmd_bounds)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"emlpress: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
