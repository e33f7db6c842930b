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


def _model_and_box(args):
    net = load_model(args.model)
    lo, hi = _box(args.lo, net.n_in, "lo"), _box(args.hi, net.n_in, "hi")
    if (lo is None) != (hi is None):
        raise SystemExit("emlpress: give both --lo and --hi, or neither")
    if lo is None and net.lo is None:
        raise SystemExit(f"emlpress: {args.model} has no input domain: pass --lo and --hi")
    return net, lo, hi


def _cmd_bounds(args) -> int:
    net, lo, hi = _model_and_box(args)
    b = _bounds.tighten(net, lo, hi, args.method, threads=args.threads,
                        milp_time_limit=args.milp_time_limit, progress=args.method not in ("interval", "crown"))
    print(f"{args.model}: {net}")
    print(f"input box: lo={b.lo.tolist()} hi={b.hi.tolist()}")
    stages = ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in b.seconds.items())
    print(f"method: {args.method} ({stages}), stable hidden units: {b.n_stable} of {net.n_neurons}")
    print(b.summary().to_string())
    return 0


def _cmd_compress(args) -> int:
    from emlpress.compress import lossless

    out = str(args.output)
    if not out.endswith((".npz", ".h5", ".keras")):
        raise SystemExit(f"emlpress: -o {out}: the output must end in .npz, .h5 or .keras")
    net, lo, hi = _model_and_box(args)
    b = _bounds.tighten(net, lo, hi, args.bounds, threads=args.threads,
                        milp_time_limit=args.milp_time_limit,
                        progress=args.bounds not in ("interval", "crown"))
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

    pc = sub.add_parser("compress", help="lossless compression of a model on an input box")
    pc.add_argument("model", help="model file: .npz, .h5/.keras, .onnx, .pt/.pth")
    pc.add_argument("--lo", type=float, nargs="+", help="input lower bounds (1 value or n_in)")
    pc.add_argument("--hi", type=float, nargs="+", help="input upper bounds (1 value or n_in)")
    pc.add_argument("--bounds", choices=BOUND_METHODS, default="lp", help="bound method (default: lp)")
    pc.add_argument("-o", "--output", required=True, help="compressed model: .npz, or .h5/.keras (needs [keras])")
    pc.add_argument("--threads", type=int, default=None, help="HiGHS instances for lp/milp (default: all cores)")
    pc.add_argument("--milp-time-limit", type=float, default=10.0, help="seconds per MILP solve")
    pc.set_defaults(func=_cmd_compress)
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
