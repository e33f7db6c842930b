"""The emlpress command: sound neuron bounds, lossless compression and the transprecision
pipeline.

Exit status: 0 success; 2 a usage error (a bad option or value, a file that cannot be read
or written, data too small); 1 a failure of the computation itself (a solver or a check that
failed); 130 interrupted (Ctrl-C). Errors end in one line on stderr naming the file or option.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emlpress import bench as _bench
from emlpress import bounds as _bounds
from emlpress._atomic import WriteError, check_writable, write_atomic, write_bytes_atomic
from emlpress.bounds.relaxation import MagnitudeError
from emlpress.compress import lossless, lossy
from emlpress.data import tpc as tpc_data
from emlpress.io import load_model
from emlpress.io.keras import save_keras, tf_keras
from emlpress.pipelines import epidemics as epi
from emlpress.pipelines import lossless_study as study
from emlpress.pipelines import tpc as tpc_pipe
from emlpress.pipelines.runner import JobQueue

# TensorFlow, Dask and numba's compiler stay unloaded by these imports: the modules above
# load them inside the functions that train, quantize, run a battery or compile a kernel


EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130

# argparse takes '-1e-3' and '-inf' for options (its pattern knows only '-1' and '-.5'):
# every number, in any float syntax, is a value.
_NUMBER = re.compile(r"^-(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|inf(inity)?|nan)$", re.I)


class _UsageError(Exception):
    """A bad option value: exit status 2, one line."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NUMBER

    def error(self, message):  # argparse's usage block + message: one line, printed by main
        raise _UsageError(f"{message} (see: {self.prog} --help)")


#: the most threads, workers or solver instances an option takes: more than 4 per core only
#: adds solver instances (each its own copy of the rows) and context switches, never speed
MAX_THREADS = 4 * (os.cpu_count() or 1)


def _integer(low: int, high: int | None = None, why: str = ""):
    """An argparse type: an integer in [low, high]; the message says why the top is there."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < low or (high is not None and v > high):
            top = f" and <= {high}{f' ({why})' if why else ''}" if high is not None else ""
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}{top}, got {v}")
        return v
    return parse


def _real(low: float | None = None, strict: bool = True, high: float | None = None,
          finite: bool = True, what: str = "a number"):
    """An argparse type: a float above ``low`` (or at least, unless ``strict``), below
    ``high`` (strictly), finite unless ``finite=False`` (which still refuses NaN)."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        bad = v != v or (finite and not np.isfinite(v))
        bad |= low is not None and (v <= low if strict else v < low)
        bad |= high is not None and v >= high
        if bad:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return v
    return parse


def _directory(text: str) -> str:
    """An argparse type: a directory to write in, which may not exist yet (it is made)."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a file; give the directory to write in")
    return text


_THREADS = _integer(1, MAX_THREADS, "4 per core; more only add solver instances")
_SEED = _integer(0)
_SECONDS = _real(0.0, finite=False, what="a number of seconds > 0")
_FRACTION = _real(0.0, strict=False, high=1.0, what="a fraction in [0, 1)")


def _box(values, n: int, name: str):
    if values is None:
        return None
    if len(values) == 1:
        values = [values[0]] * n
    if len(values) != n:
        raise _UsageError(f"--{name} takes 1 or {n} values, got {len(values)}")
    bad = [v for v in values if not np.isfinite(v)]
    if bad:
        raise _UsageError(f"--{name} {bad[0]}: the input box must be finite (bounds over an "
                          "unbounded box are unbounded)")
    return np.asarray(values, dtype=np.float64)


def _model_and_box(args):
    net = load_model(args.model)
    lo, hi = _box(args.lo, net.n_in, "lo"), _box(args.hi, net.n_in, "hi")
    if (lo is None) != (hi is None):
        raise _UsageError("give both --lo and --hi, or neither")
    if lo is None and net.lo is None:
        raise _UsageError(f"{args.model} has no input domain: pass --lo and --hi")
    return net, lo, hi


def _input_domain(args, net, lo, hi):
    """The Domain of --constraints / --l1-center / --l1-eps on the box (None without them)."""
    given = [o for o, v in (("--constraints", args.constraints), ("--l1-center", args.l1_center),
                            ("--l1-eps", args.l1_eps)) if v is not None]
    if not given:
        return None
    if (args.l1_center is None) != (args.l1_eps is None):
        raise _UsageError("give both --l1-center and --l1-eps, or neither")
    kw = {}
    if args.constraints is not None:
        path = args.constraints
        if not os.path.exists(path):
            raise FileNotFoundError(f"--constraints {path}: file not found")
        try:
            with np.load(path) as f:
                kw = {k: f[k] for k in ("A_ub", "b_ub", "A_eq", "b_eq") if k in f.files}
                extra = sorted(set(f.files) - set(kw))
        except (OSError, ValueError) as e:
            raise _UsageError(f"--constraints {path}: not a readable .npz file ({e})") from None
        if extra or not kw:
            raise _UsageError(f"--constraints {path}: expected arrays A_ub, b_ub and/or A_eq, "
                              f"b_eq, found {sorted(set(kw) | set(extra))}")
    if args.l1_center is not None:
        kw["l1"] = (_box(args.l1_center, net.n_in, "l1-center"), args.l1_eps)
    lo, hi = net.domain(lo, hi)
    try:
        return _bounds.Domain(lo, hi, **kw)
    except ValueError as e:  # names the argument (A_ub, l1 eps, ...); EmptyDomainError too
        raise _UsageError(f"{' / '.join(given)}: {e}") from None


def _tighten(args, net, lo, hi, method: str, domain=None):
    """Bounds by `method`, with a progress bar for the per-neuron (LP/MILP) methods; on
    `domain` when given."""
    where = {"lo": lo, "hi": hi} if domain is None else {"domain": domain}
    try:
        return _bounds.tighten(net, method=method, threads=args.threads,
                               milp_time_limit=args.milp_time_limit,
                               milp_node_limit=args.milp_node_limit,
                               deterministic=args.deterministic,
                               progress=method not in ("interval", "crown"), **where)
    except NotImplementedError as e:
        raise _UsageError(f"--method/--bounds {method} with --constraints or --l1-*: {e}") from None


def _cmd_bounds(args) -> int:
    net, lo, hi = _model_and_box(args)
    d = _input_domain(args, net, lo, hi)
    st = None
    limit_s = None
    if args.method == "stability":  # the statuses, beside the bounds they give
        m = _bounds.methods.get(args.method)  # the registry: its default limit, its function
        limit_s = m.default_limit if args.time_limit is None else args.time_limit
        where = {"lo": lo, "hi": hi} if d is None else {"domain": d}
        st = m.run(net, threads=args.threads, progress=True, time_limit=limit_s, **where)
        b = st.bounds
    else:
        b = _tighten(args, net, lo, hi, args.method, d)
    print(b.report(net, args.model, method=args.method, domain=d))
    if st is not None:
        print(st.report(limit_s))
    return 0


def _output_path(out, suffixes: tuple, said: str, option: str = "-o") -> str:
    """``option out`` checked before any work: its suffix, and that a file can be written in
    its directory (which exists; permissions; a read-only file system), not a directory."""
    out = str(out)
    if not out.endswith(suffixes):
        raise _UsageError(f"{option} {out}: the output must end in {said}")
    try:
        check_writable(out, option)  # fail before the work, not after
    except WriteError as e:
        raise _UsageError(str(e)) from None
    return out


def _cmd_compress(args) -> int:
    out = _output_path(args.output, (".npz", ".h5", ".keras"), ".npz, .h5 or .keras")
    net, lo, hi = _model_and_box(args)
    d = _input_domain(args, net, lo, hi)
    b = _tighten(args, net, lo, hi, args.bounds, d)
    if d is None:
        small, rep = lossless(net, b.lo, b.hi, bounds=b)
    else:  # equal to the original on the domain only, verified on its samples
        small, rep = lossless(net, domain=d, bounds=b)
    if out.endswith(".npz"):
        write_atomic(out, small.save)
    else:  # with the input box, read back by load_model; Keras picks the format by the suffix
        write_atomic(out, lambda tmp: save_keras(small, tmp), keep_suffix=True)
    print(rep.report(net, small, b, args.model, args.bounds, out))
    return 0


_NPY_MAGIC = b"\x93NUMPY"


def _read_data(path: str):
    """(X, Y or None) of a --data file, read without unpickling anything."""
    with open(path, "rb") as f:
        head = f.read(6)
    if path.endswith(".npz"):
        if not zipfile.is_zipfile(path):
            raise _UsageError(f"--data {path}: not an .npz archive (np.savez of arrays X and Y)")
    elif path.endswith(".npy"):
        if head != _NPY_MAGIC:
            raise _UsageError(f"--data {path}: not an .npy array file (np.save of the inputs)")
    else:
        raise _UsageError(f"--data {path}: give an .npz (arrays X, Y) or .npy (inputs) file")
    try:
        if path.endswith(".npy"):
            return np.asarray(np.load(path, allow_pickle=False), float), None
        with np.load(path, allow_pickle=False) as z:
            if "X" not in z:
                raise _UsageError(f"--data {path}: an .npz needs an array 'X' (and optionally 'Y')")
            return (np.asarray(z["X"], float),
                    np.asarray(z["Y"], float) if "Y" in z else None)
    except (OSError, ValueError, TypeError, zipfile.BadZipFile) as e:
        reason = "holds Python objects, not numbers" if "pickle" in str(e) else str(e)
        raise _UsageError(f"--data {path}: cannot be read ({reason})") from None


def _quantize_data(args, net):
    """(X, Y, where from): the inputs for calibration and the table, and its targets."""
    if args.data:
        path = args.data
        if not os.path.exists(path):
            raise FileNotFoundError(f"--data {path}: file not found")
        X, Y = _read_data(path)
        if X.ndim != 2 or X.shape[1] != net.n_in:
            raise _UsageError(f"--data {path}: X has shape {X.shape}; the model takes {net.n_in} inputs")
        if Y is not None and (Y.ndim not in (1, 2) or len(Y) != len(X)):
            raise _UsageError(f"--data {path}: Y has shape {Y.shape} for {len(X)} rows of X")
        for name, A in (("X", X), ("Y", Y)):
            if A is not None and not np.isfinite(A).all():
                row = int(np.flatnonzero(~np.isfinite(A.reshape(len(A), -1)).all(1))[0])
                raise _UsageError(f"--data {path}: {name} has {int((~np.isfinite(A)).sum())} "
                                  f"NaN or infinite values (the first in row {row})")
        if len(X) < 2:
            raise _UsageError(f"--data {path}: {len(X)} row; the table needs at least 2")
        src = f"{path} ({len(X)} rows)"
    else:
        lo, hi = net.lo, net.hi
        if args.lo is not None or args.hi is not None:
            _, lo, hi = _model_and_box(args)
        if lo is None:
            raise _UsageError(f"{args.model} has no input domain: pass --data, or --lo and --hi")
        X = np.random.default_rng(args.seed).uniform(lo, hi, (args.samples, net.n_in))
        Y = None
        src = f"{args.samples} uniform samples of the input box (seed {args.seed})"
    if Y is None:
        Y = net.forward(X)
        src += "; targets: the float model's outputs"
    return X, Y, src


def _cmd_quantize(args) -> int:
    if args.verbose:
        os.environ["EMLPRESS_VERBOSE"] = "1"
    if not args.table and not args.output:
        raise _UsageError("give -o OUT.tflite (with --mode), or --table")
    if args.output:
        _output_path(args.output, (".tflite",), ".tflite")
    net = load_model(args.model)
    tf_keras()
    X, Y, src = _quantize_data(args, net)
    if args.output:
        content = lossy.quantize(net, args.mode, representative=X)
        write_bytes_atomic(args.output, content)
        print(lossy.quantize_report(args.model, net, args.output, args.mode, len(content),
                                    calibration=src.split("; targets")[0]))
    if args.table:
        Y2 = Y.reshape(len(Y), -1)
        flat = np.flatnonzero(np.ptp(Y2, axis=0) == 0)
        if flat.size:  # R2 would be NaN: say so before converting six models
            raise _UsageError(f"the table's targets ({src}): output {int(flat[0])} is constant "
                              f"({Y2[0, flat[0]]:.6g} on every row), so R2 is undefined; give "
                              "--data with varied targets, or a larger box")
        modes = args.modes or list(lossy.MODES)
        df = lossy.quantization_table(net, X, Y, modes=modes, representative=X)
        print(lossy.table_report(df, args.model, net, src))  # RuntimeError on a NaN metric
    return 0


#: epidemics run's options and the Config fields they set (their defaults: None = not given)
_EPIDEMICS_OPTIONS = {"topologies": "topologies", "variants": "variants", "horizons": "horizons",
                      "budget_per_week": "budget_per_week", "epochs": "epochs",
                      "time_limit": "time_limit", "no_tree": "tree", "seed": "seed",
                      "bounding": "bounding", "no_ptq": "ptq_table", "oracle_calls": "oracle_calls",
                      "polish_calls": "polish_calls", "no_loop": "loop"}


def _interrupted(pipeline, command: str, what: str, folder=None) -> int:
    """After Ctrl-C of a pipeline with a resumable run folder (``folder``, else its
    ``last_folder``, holding an INCOMPLETE marker): say where the run is and how to resume
    it; exit 130. Re-raises when the run had no folder yet."""
    folder = getattr(pipeline, "last_folder", None) if folder is None else folder
    if folder is None or not (folder / pipeline.INCOMPLETE).exists():
        raise KeyboardInterrupt
    print(f"emlpress: interrupted; {what} in {folder}; resume with: emlpress {command} run "
          f"--resume {folder}", file=sys.stderr)
    return EXIT_INTERRUPTED


def _cmd_epidemics_run(args) -> int:
    if args.verbose:
        os.environ["EMLPRESS_VERBOSE"] = "1"
    given = {field: (not getattr(args, opt)) if opt.startswith("no_") else getattr(args, opt)
             for opt, field in _EPIDEMICS_OPTIONS.items()
             if getattr(args, opt) is not None and getattr(args, opt) is not False}  # 0 is given
    if args.resume:  # the run's own settings: an option that differs is refused, not ignored
        if args.out is not None:
            raise _UsageError(f"--out with --resume: the run's folder is {args.resume}; drop --out")
        try:
            cfg = epi.load_config(args.resume)
        except (ValueError, FileNotFoundError) as e:
            raise _UsageError(f"--resume: {e}") from None
        option = {f: "--" + o.replace("_", "-") for o, f in _EPIDEMICS_OPTIONS.items()}
        diff = [option[f] + ("" if isinstance(v, bool) else
                             " " + (" ".join(map(str, v)) if isinstance(v, list) else str(v)))
                + f" (the run has {f} = {saved!r})"
                for f, (v, saved) in epi.differences(replace(cfg, **given), cfg).items()]
        if diff:
            raise _UsageError(f"--resume {args.resume}: the run was started with other settings: "
                              + "; ".join(diff) + "; drop them to resume it as it was started")
    else:
        cfg = epi.Config(**given, **({} if args.out is None else {"out": args.out}))
    try:
        folder, summary = epi.run(cfg, resume=args.resume)
    except KeyboardInterrupt:
        return _interrupted(epi, "epidemics", "what is written is")
    epi.print_summary(folder, summary)
    return 0


def _cmd_study_run(args) -> int:
    reference = None if args.no_reference else (args.reference or "auto")
    cfg = study.config(args.preset, optimizers=args.optimizers,
                       regularizations=args.regularizations, seeds=args.seeds,
                       methods=args.methods, reference=reference)
    folder = Path(args.folder) if args.folder else Path(args.out) / f"study-{cfg.preset}"
    study.print_start(cfg, folder, searched=not args.no_reference)
    res = study.run(cfg, folder, workers=args.workers, threads_per_worker=args.threads_per_worker,
                    native_threads=args.native_threads, scheduler=args.scheduler,
                    timeout=args.scheduler_timeout, progress=not args.no_progress)
    study.print_summary(res, folder)
    if res.interrupted:
        print(f"emlpress: interrupted; rerun the same command to resume ({folder})", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILURE if res.failed else 0


_HPC_OPTIONS = ("cores", "memory", "walltime", "queue", "account", "interface", "job_script")
_BATTERY_OPTIONS = ("workers", "threads_per_worker", "native_threads", "scheduler",
                    "scheduler_timeout", "no_progress", "folder", "cluster", *_HPC_OPTIONS)


def _battery_args(p: argparse.ArgumentParser, workers=2, workers_help="") -> None:
    p.add_argument("--workers", type=_THREADS, default=workers,
                   help=workers_help or f"Dask workers of the LocalCluster (default: {workers})")
    p.add_argument("--threads-per-worker", type=_THREADS, default=1,
                   help="tasks each worker runs at a time (default: 1; more share one "
                        "process' random seeds: seeded training is then not reproducible)")
    p.add_argument("--native-threads", type=_THREADS, default=None,
                   help="threads of the native kernels per task (default: cores / (workers x "
                        "threads per worker) on a LocalCluster, 1 on --scheduler)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="an existing Dask scheduler (tcp://host:8786) instead of a LocalCluster; "
                        "the run folder must be on a file system the workers share")
    p.add_argument("--scheduler-timeout", type=_SECONDS, default=10.0, metavar="S",
                   help="seconds to wait for --scheduler to answer (default: 10)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    hpc = p.add_argument_group(
        "HPC cluster (the [hpc] extra, dask-jobqueue)",
        "--cluster slurm|pbs starts the workers as batch jobs: --workers N jobs, each booking "
        "--cores and --memory for --walltime; a worker leaves before its walltime and a new job "
        "replaces it; if this command itself is killed, the same command resumes the folder")
    hpc.add_argument("--cluster", choices=("local", "slurm", "pbs"), default="local",
                     help="where the workers run (default: local, a LocalCluster)")
    hpc.add_argument("--cores", type=int, default=None, help="CPUs each job books")
    hpc.add_argument("--memory", default=None, metavar="SIZE", help="memory each job books (64GB)")
    hpc.add_argument("--walltime", default=None, metavar="HH:MM:SS", help="each job's walltime")
    hpc.add_argument("--queue", default=None, help="partition (SLURM -p) or queue (PBS -q)")
    hpc.add_argument("--account", default=None, help="account or project to charge (-A)")
    hpc.add_argument("--interface", default=None,
                     help="network interface the compute nodes reach this host on (e.g. ib0; "
                          "default: the default route's)")
    hpc.add_argument("--job-script", action="store_true",
                     help="print the batch script of a worker job and exit (nothing submitted)")



def _hpc_cluster(args) -> bool:
    """Check the --cluster options before any work; with slurm/pbs, args.scheduler becomes the
    battery's JobQueue. True when --job-script printed the script (nothing to run)."""
    given = [o for o in _HPC_OPTIONS if getattr(args, o) not in (None, False)]
    if args.cluster == "local":
        if given:
            raise _UsageError(f"--{given[0].replace('_', '-')}: an option of --cluster slurm|pbs")
        return False
    if args.scheduler is not None:
        raise _UsageError(f"--scheduler and --cluster {args.cluster}: give one of them")
    if importlib.util.find_spec("dask_jobqueue") is None:
        raise _UsageError(f"--cluster {args.cluster} needs dask-jobqueue: pip install "
                          "'emlpress[hpc]'")
    missing = [o for o in ("cores", "memory", "walltime") if getattr(args, o) is None]
    if missing:
        raise _UsageError(f"--cluster {args.cluster} needs "
                          + " ".join(f"--{o}" for o in missing))
    try:
        spec = JobQueue(args.cluster, cores=args.cores, memory=args.memory, walltime=args.walltime,
                        jobs=1 if args.workers is None else args.workers, queue=args.queue,
                        account=args.account, interface=args.interface)
    except ValueError as e:
        text = str(e)
        raise _UsageError("--workers" + text[4:] if text.startswith("jobs") else f"--{text}") from None
    if args.job_script:
        preset = getattr(args, "preset", None)  # study run's default folder, else tpc run's
        folder = Path(args.folder) if args.folder else Path(args.out) / (
            f"study-{preset}" if preset else "run<time>")
        print(spec.job_script(folder, args.threads_per_worker, args.native_threads), end="")
        return True
    args.scheduler = spec
    return False


def _cmd_tpc_generate(args) -> int:
    from emlpress.data.tpc_generate import generate  # numba: loaded by this command only

    paths = generate(args.out, args.benchmarks, n_rows=args.rows, hw=args.hw, seed=args.seed,
                     repeats=args.repeats)
    for p in paths:
        print(f"wrote {p}")
    return 0


def _cmd_tpc_run(args) -> int:
    if args.resume:  # the run's own settings: refuse others rather than ignore them
        base = vars(build_parser().parse_args(["tpc", "run"]))
        given = [k for k, v in vars(args).items()
                 if k not in ("resume", "verbose", "func", *_BATTERY_OPTIONS) and k in base
                 and v != base[k]]
        if given:
            raise _UsageError("--resume uses the settings the run was started with; drop "
                              + ", ".join("--" + k.replace("_", "-") for k in given))
    if args.workers is None and args.scheduler is None:
        stray = [o for o, given in (("--threads-per-worker", args.threads_per_worker != 1),
                                    ("--native-threads", args.native_threads is not None),
                                    ("--folder", args.folder is not None)) if given]
        if stray:
            raise _UsageError(f"{', '.join(stray)}: options of a battery; add --workers N or "
                              "--scheduler ADDRESS")
    if args.resume and args.folder:
        raise _UsageError("--resume FOLDER and --folder: give one of them")
    if args.initial_sparsity > args.final_sparsity:
        raise _UsageError(f"--initial-sparsity {args.initial_sparsity} > --final-sparsity "
                          f"{args.final_sparsity}: the pruning schedule only grows")
    if args.resume:  # its settings readable, named if not, before anything starts
        settings = Path(args.resume) / "logs" / "config.json"
        try:
            tpc_pipe.load_config(args.resume)
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise _UsageError(f"--resume {args.resume}: {settings} cannot be read "
                              f"({type(e).__name__}: {e}); it is not the settings of a tpc run") from None
    measured_only = {"auto": None, "yes": True, "no": False}[args.measured_only]
    cfg = tpc_pipe.Config(
        data=args.data or tpc_pipe.DEFAULT_DATA, benchmarks=args.benchmarks,
        topologies=args.topologies, hw=args.hw, max_error=args.max_error, max_time=args.max_time,
        max_memory_peak=args.max_memory_peak, time_limit=args.time_limit, epochs=args.epochs,
        seed=args.seed, final_sparsity=args.final_sparsity, initial_sparsity=args.initial_sparsity,
        compression_bounds=args.compression_bounds, out=args.out, coverage=args.coverage,
        improve_coverage=args.improve_coverage, max_iterations=args.max_iterations, loop_seconds=args.loop_seconds, oracle=args.oracle,
        local_calls=args.local_calls,
        measured_only=measured_only, truth_seconds=args.truth_seconds, quantized=args.quantized,
    )
    if args.verbose:
        os.environ["EMLPRESS_VERBOSE"] = "1"
    try:
        cfg.progress = not args.no_progress
        folder, summary = tpc_pipe.run(cfg, resume=args.resume, workers=args.workers,
                                   threads_per_worker=args.threads_per_worker,
                                   native_threads=args.native_threads, scheduler=args.scheduler,
                                   timeout=args.scheduler_timeout, folder=args.folder)
    except KeyboardInterrupt as e:  # the run names its folder
        return _interrupted(tpc_pipe, "tpc", "the answers so far are", getattr(e, "folder", None))
    tpc_pipe.print_summary(folder, summary, cfg)
    return 0


def _cmd_bench(args) -> int:
    path, result, code = _bench.run(args.benches, quick=args.quick, tag=args.tag, only=args.only,
                                    output=args.output)
    o = result["outcomes"]
    print(f"emlpress bench: {len(result['benchmarks'])} figures in {result['wall_s']:.0f} s "
          f"({o['passed']} passed, {o['skipped']} skipped, {len(o['failed']) + len(o['errors'])} failed); "
          f"wrote {path}")
    for nodeid in o["failed"] + o["errors"]:
        print(f"emlpress bench: failed: {nodeid} (its figure is not in the result)", file=sys.stderr)
    return code


def _cmd_bench_compare(args) -> int:
    results = [_bench.load(p) for p in args.results]
    c = _bench.compare(results, only=args.only)
    if not c.rows:
        raise _UsageError("no benchmark to compare" + (f" in --only {' '.join(args.only)}" if args.only else ""))
    if args.plot and not args.markdown:
        _output_path(args.plot, (".png",), ".png", option="--plot")
    print(_bench.machines(results, c.labels))
    print()
    print(_bench.markdown(c, info=args.info) if args.markdown else _bench.text(c, info=args.info))
    if args.plot and not args.markdown:
        print(f"\nwrote {_bench.plot(c, args.plot)}")
    return 0


_BENCH_DESCRIPTION = ("Run the benchmark suite (the repository's benches/, pytest-benchmark: the [bench] "
                      "extra) and save one JSON result with the machine's description and the tag. It "
                      "prints the expected time of what it selected when it starts")


def _bench_help(parser: argparse.ArgumentParser) -> str:
    """The bench command's help, with the suite's expected minutes when a suite is found
    (read when the help is shown, not when the parser is built)."""
    minutes = _bench.expected_minutes()
    parser.description = _BENCH_DESCRIPTION + (
        f" (this suite: about {minutes[0]:.0f} minutes on 2 cores, --quick about {minutes[1]:.0f})."
        if minutes else ".")
    return argparse.ArgumentParser.format_help(parser)


def _model_args(p: argparse.ArgumentParser) -> None:
    """The model, its input box and the bound solver options (bounds, compress)."""
    p.add_argument("model", help="model file: .npz, .h5/.keras, .onnx, .pt/.pth, .tflite (dequantized)")
    p.add_argument("--lo", type=float, nargs="+", help="input lower bounds (1 value or n_in)")
    p.add_argument("--hi", type=float, nargs="+", help="input upper bounds (1 value or n_in)")
    p.add_argument("--threads", type=_THREADS, default=None,
                   help=f"HiGHS instances for lp/milp, at most {MAX_THREADS} (default: all cores)")
    p.add_argument("--milp-time-limit", type=_SECONDS, default=10.0, help="seconds per neuron and side of the exact (milp) bounds search; a limit gives sound, looser bounds")
    p.add_argument("--constraints", metavar="FILE", default=None,
                   help="linear input constraints: a .npz with A_ub, b_ub (A_ub x <= b_ub) and/or "
                        "A_eq, b_eq (A_eq x = b_eq); bounds then hold on that polytope only")
    p.add_argument("--l1-center", type=float, nargs="+", default=None, metavar="V",
                   help="centre of an l1 ball ||x - center||_1 <= --l1-eps the inputs lie in (1 value or n_in)")
    p.add_argument("--l1-eps", type=float, default=None, metavar="EPS", help="radius of that l1 ball (>= 0)")
    p.add_argument("--milp-node-limit", type=_integer(1), default=None, metavar="N",
                   help="nodes per neuron and side of the exact (milp) bounds search (default: "
                        "none); unlike the time limit it stops every run at the same node")
    p.add_argument("--deterministic", action="store_true",
                   help="milp: its searches on one thread, so the bounds do not depend on "
                        "--threads (with the same --threads every run gives the same bounds "
                        "unless --milp-time-limit stops a search)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="emlpress", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    _STABILITY_LIMIT = _bounds.methods.get("stability").default_limit

    pb = sub.add_parser("bounds", help="per-layer neuron bounds and stability of a model")
    _model_args(pb)
    pb.add_argument("--method", choices=_bounds.METHODS, default="crown")
    pb.add_argument("--time-limit", type=_real(0.0, strict=False, finite=False,
                                               what="a number of seconds >= 0"),
                    default=None, metavar="S",
                    help=f"stability only: seconds in all (default: {_STABILITY_LIMIT:g}, as for compress "
                         "--bounds stability; inf: none; 0: samples, corners and CROWN only)")
    pb.set_defaults(func=_cmd_bounds)

    pc = sub.add_parser("compress", help="lossless compression of a model on an input box")
    _model_args(pc)
    pc.add_argument("--bounds", choices=_bounds.METHODS, default="lp", help="bound method (default: lp)")
    pc.add_argument("-o", "--output", required=True, help="compressed model: .npz, or .h5/.keras (needs [keras])")
    pc.set_defaults(func=_cmd_compress)

    pq = sub.add_parser("quantize", help="TFLite post-training quantization of a model, or the table of all six modes")
    pq.add_argument("model", help="model file: .npz, .h5/.keras, .onnx, .pt/.pth, .tflite")
    pq.add_argument("--mode", choices=lossy.MODES, default="int8", help="quantization mode for -o (default: int8)")
    pq.add_argument("-o", "--output", default=None, help="write the quantized model here (.tflite)")
    pq.add_argument("--table", action="store_true", help="print size, accuracy and latency per mode")
    pq.add_argument("--modes", nargs="+", choices=lossy.MODES, default=None, help="modes in the table (default: all six)")
    pq.add_argument("--data", default=None, help="inputs for calibration and the table: .npz with X (and Y: targets) or .npy; default: uniform samples of the model's input box, targets its own outputs")
    pq.add_argument("--lo", type=float, nargs="+", help="input lower bounds for the samples (1 value or n_in)")
    pq.add_argument("--hi", type=float, nargs="+", help="input upper bounds for the samples (1 value or n_in)")
    pq.add_argument("--samples", type=_integer(2), default=2000, help="uniform samples when no --data (default: 2000)")
    pq.add_argument("--seed", type=_SEED, default=0, help="(default: 0)")
    pq.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up log lines")
    pq.set_defaults(func=_cmd_quantize)

    e = epi.Config()
    pe = sub.add_parser("epidemics", help="NPI planning with learned SIR models (chained MILP, checked by simulation)")
    esub = pe.add_subparsers(dest="epidemics_cmd", required=True, parser_class=_Parser)
    er = esub.add_parser("run", help="train, plan, simulate and compare with the brute force; writes runs/epidemics<time>/ (--resume continues a stopped run)")
    er.add_argument("--topologies", nargs="+", choices=sorted(epi.TOPOLOGIES), default=None,
                    help=f"(default: {' '.join(e.topologies)})")
    er.add_argument("--variants", nargs="+", choices=epi.VARIANTS, default=None,
                    help=f"(default: {' '.join(e.variants)})")
    er.add_argument("--horizons", nargs="+", type=_integer(1, epi.MAX_WEEKS, "a year of weeks: "
                                                           "the MILP holds a model copy per week"),
                    default=None, help=f"weeks, 1 to {epi.MAX_WEEKS} (default: {e.horizons})")
    er.add_argument("--budget-per-week", type=_real(0.0, strict=False, what="a finite number >= 0"),
                    default=None,
                    help=f"NPI budget per week of the horizon (default: {e.budget_per_week:.4g}, i.e. 20 over 3 weeks)")
    er.add_argument("--epochs", type=_integer(1), default=None, help=f"most epochs, early stopping (default: {e.epochs})")
    er.add_argument("--time-limit", type=_SECONDS, default=None, help=f"seconds per MILP (default: {e.time_limit})")
    er.add_argument("--bounding", nargs="+", choices=epi.BOUNDING, default=None,
                    help="how each float network's weeks are bounded; the plots show the first "
                         f"(default: {' '.join(e.bounding)})")
    er.add_argument("--oracle-calls", type=_integer(0), default=None,
                    help="plan simulations each loop row may spend (0: the open loop, one plan "
                         f"not simulated; default: {e.oracle_calls})")
    er.add_argument("--polish-calls", type=_integer(0), default=None,
                    help="then at most this many simulations of a local search from the loop's "
                         f"best plan, one NPI changed in one week or moved to another (0: none; default: {e.polish_calls})")
    er.add_argument("--no-loop", action="store_true",
                    help="leave out the loop rows (the planning loop on emlpress.eml per model)")
    er.add_argument("--no-tree", action="store_true", help="leave out the decision tree")
    er.add_argument("--no-ptq", action="store_true", help="skip the six post-training quantizations' table")
    er.add_argument("--seed", type=_SEED, default=None, help=f"(default: {e.seed})")
    er.add_argument("--out", type=_directory, default=None, help=f"parent directory of the run folder (default: {e.out})")
    er.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up log lines")
    er.add_argument("--resume", default=None, metavar="RUN_DIR",
                    help="continue a stopped run (its INCOMPLETE says so) with its own settings: "
                         "models, PTQ tables and plan rows already written are kept")
    er.set_defaults(func=_cmd_epidemics_run)

    pbe = sub.add_parser(
        "bench", help="run the benchmark suite and save a machine-tagged result; 'bench compare' to compare",
        description=_BENCH_DESCRIPTION + ".")
    pbe.format_help = lambda: _bench_help(pbe)  # the suite's expected time, looked up when shown
    pbe.add_argument("--quick", action="store_true",
                     help="only the benchmarks marked quick (a few minutes; the expected time is printed at the start)")
    pbe.add_argument("--tag", default=None, help="the machine's name in the result (pc, vm, g100, ...; default: the host name)")
    pbe.add_argument("--only", nargs="+", default=None, metavar="GROUP",
                     help="groups to run (suites/bench_<GROUP>.py): bounds, tighten, exact, stability, lossless, lossy, milp, tpc, epidemics")
    pbe.add_argument("--output", "-o", default=None,
                     help="result file (default: bench-results/<tag>-<date>-<time>.json)")
    pbe.add_argument("--benches", default=None, metavar="DIR",
                     help="the suite's directory (default: $EMLPRESS_BENCHES, else ./benches)")
    pbe.set_defaults(func=_cmd_bench)
    bsub = pbe.add_subparsers(dest="bench_command", required=False, parser_class=_Parser)
    pbc = bsub.add_parser("compare", help="side-by-side table (one column per result, ratios against the first) and a PNG plot")
    pbc.add_argument("results", nargs="+", metavar="RESULT.json", help="result files written by emlpress bench; the first is the reference")
    pbc.add_argument("--only", nargs="+", default=None, metavar="GROUP", help="groups to show (default: all)")
    pbc.add_argument("--markdown", action="store_true", help="markdown tables (for benches/README.md), no plot")
    pbc.add_argument("--info", action="store_true", help="also the figures each benchmark records (stable units, status, bits, ...)")
    pbc.add_argument("--plot", default="bench-compare.png", help="PNG of the same (default: bench-compare.png)")
    pbc.add_argument("--no-plot", dest="plot", action="store_const", const=None, help="no PNG")
    pbc.set_defaults(func=_cmd_bench_compare)

    ps = sub.add_parser("study", help="the lossless-compression study: train a grid of networks, "
                        "bound, compress and verify them with every method (on Dask)")
    ssub = ps.add_subparsers(dest="study_cmd", required=True)
    sr = ssub.add_parser("run", help="run or resume the study; writes runs/study-<preset>/")
    sr.add_argument("--preset", choices=list(study.PRESETS), default="quick",
                    help="quick: [2,64,32,32,16,1], about 15 minutes on 2 cores; study: the "
                         "study's settings ([2,1024,512,512,256,1], full epochs); test: seconds "
                         "(default: quick)")
    sr.add_argument("--optimizers", nargs="+", choices=list(study.OPTIMIZERS), default=None,
                    help="(default: all four)")
    sr.add_argument("--regularizations", nargs="+", choices=list(study.REGULARIZATIONS),
                    default=None, metavar="REG",
                    help=f"(default: all 13: {', '.join(study.REGULARIZATIONS)})")
    sr.add_argument("--seeds", type=_integer(1), default=1, help="models per setting (default: 1)")
    sr.add_argument("--methods", nargs="+", choices=list(study.METHODS), default=None,
                    help="bound methods (default: all; exact is bounds.stability)")
    sr.add_argument("--reference", default=None, metavar="NPZ",
                    help="the study's network (default: $EMLPRESS_SEED_GP or "
                         "../shared/data/seed_gp/model.npz when found)")
    sr.add_argument("--no-reference", action="store_true", help="no reference network row")
    sr.add_argument("--folder", default=None,
                    help="run folder (default: OUT/study-<preset>); rerunning on it resumes")
    sr.add_argument("--out", type=_directory, default="runs", help="parent of the default run folder (default: runs)")
    _battery_args(sr)
    sr.set_defaults(func=_cmd_study_run)

    pt = sub.add_parser("tpc", help="transprecision computing: generate data, run the pipeline")
    tsub = pt.add_subparsers(dest="tpc_command", required=True)
    g = tsub.add_parser("generate", help="measure the numba kernels at random precisions")
    g.add_argument("--out", type=_directory, default="tpc_data", help="output directory (default: tpc_data)")
    g.add_argument("--benchmarks", nargs="+", choices=list(tpc_data.BENCHMARKS))
    g.add_argument("--rows", type=_integer(1), default=2000, help="configurations per benchmark")
    g.add_argument("--hw", default=None, help="hardware name in the file names (default: host name)")
    g.add_argument("--seed", type=_SEED, default=0)
    g.add_argument("--repeats", type=_integer(1), default=3, help="timing repeats (best is kept)")
    g.set_defaults(func=_cmd_tpc_generate)
    d = tpc_pipe.Config()  # the pipeline's defaults are the command's
    r = tsub.add_parser("run", help="train, compress, optimise and verify; writes runs/run<time>/")
    r.add_argument("--data", default=None, help="directory of <Benchmark>_<hw>.csv (default: embedded data)")
    r.add_argument("--benchmarks", nargs="+", choices=list(tpc_data.BENCHMARKS),
                   help="benchmarks to run (default: every one with files in the data directory)")
    r.add_argument("--topologies", nargs="+", default=d.topologies,
                   help="hidden widths, presets: " + " ".join(tpc_pipe.PRESETS)
                   + f" (default: {' '.join(d.topologies)})")
    r.add_argument("--hw", default=d.hw, help="fix the hardware platform (default: the MILP chooses)")
    r.add_argument("--max-error", type=_real(0.0, what="a finite limit > 0"), default=d.max_error, help=f"error limit (default: {d.max_error})")
    r.add_argument("--max-time", type=_real(0.0, what="a finite limit > 0"), default=d.max_time, help=f"time limit in ms (default: {d.max_time})")
    r.add_argument("--max-memory-peak", type=_real(0.0, what="a finite limit > 0"), default=d.max_memory_peak, help="peak memory limit in MB (default: none)")
    r.add_argument("--time-limit", type=_SECONDS, default=d.time_limit, help=f"seconds per MILP (default: {d.time_limit})")
    r.add_argument("--epochs", type=_integer(1), default=d.epochs, help=f"most training epochs, early stopping (default: {d.epochs})")
    r.add_argument("--seed", type=_SEED, default=d.seed, help=f"(default: {d.seed})")
    r.add_argument("--initial-sparsity", type=_FRACTION, default=d.initial_sparsity, help=f"pruning schedule start (default: {d.initial_sparsity})")
    r.add_argument("--final-sparsity", type=_FRACTION, default=d.final_sparsity, help=f"pruning schedule end (default: {d.final_sparsity})")
    r.add_argument("--coverage", type=_real(0.0, high=1.0, what="a fraction in (0, 1), e.g. 0.9"), default=d.coverage,
                   help=f"coverage of the conformal margins on the error and time constraints (default: {d.coverage})")
    r.add_argument("--improve-coverage", type=_real(0.0, high=1.0, what="a fraction in (0, 1), e.g. 0.5"),
                   default=d.improve_coverage,
                   help="after the loop proves no better answer within the --coverage margins, go on with "
                        f"the margins of this coverage if smaller (default: {d.improve_coverage})")
    r.add_argument("--max-iterations", type=_integer(0), default=d.max_iterations,
                   help=f"oracle calls of the measure-learn-improve loop per answer after the first; "
                        f"0: open loop (default: {d.max_iterations})")
    r.add_argument("--loop-seconds", type=_SECONDS, default=d.loop_seconds,
                   help=f"time budget of the loop per answer (default: {d.loop_seconds})")
    r.add_argument("--local-calls", type=_integer(0), default=d.local_calls,
                   help="oracle calls per answer of the local search around the loop's best measured answer "
                        f"(one variable lower, or -2/+1 trades); 0: none (default: {d.local_calls})")
    r.add_argument("--oracle", choices=["auto", "kernel", "data"], default=d.oracle,
                   help="how answers are measured: kernel re-run where the data's manifest matches this host, "
                        "else the data table (auto, the default); kernel (required); data (the table only)")
    r.add_argument("--measured-only", choices=["auto", "yes", "no"], default="auto",
                   help="restrict answers to configurations in the data (auto: when the table is the oracle)")
    r.add_argument("--truth-seconds", type=_real(0.0, strict=False, finite=False, what="a number of seconds >= 0"), default=d.truth_seconds,
                   help=f"brute force over the kernel per benchmark, for the distance to the optimum; 0: off (default: {d.truth_seconds})")
    r.add_argument("--compression-bounds", choices=_bounds.METHODS, default=d.compression_bounds,
                   help=f"bounds of the lossless compression (default: {d.compression_bounds})")
    r.add_argument("--quantized", action="store_true",
                   help="also the int8 variants: the baseline quantized (full integer, TFLite), embedded by its "
                        "dequantized weights and exactly as the int8 interpreter")
    r.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted run folder with the settings it was started with "
                        "(other options are then not used); answers already written are kept")
    r.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up log lines")
    r.add_argument("--out", type=_directory, default=str(d.out), help=f"parent directory of the run folder (default: {d.out})")
    r.add_argument("--folder", default=None,
                   help="with --workers or --scheduler: the run folder (default: a new "
                        "OUT/run<time>); the same command again resumes it")
    _battery_args(r, workers=None, workers_help=(
        "run the benchmarks and topologies as tasks of a Dask battery on a LocalCluster of this "
        "many workers (default: none, one after the other in this process, also when "
        "resuming)"))
    r.set_defaults(func=_cmd_tpc_run)
    return p


def _say(kind: str, message, code: int) -> int:
    """The one error line of the command: ``emlpress: <kind>: <message>`` on stderr, on a line
    of its own (an open progress bar is closed first), and the exit status."""
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
    text = " ".join(str(message).split()) if kind != "interrupted" else ""
    print(f"emlpress: {kind}" + (f": {text}" if text else ""), file=sys.stderr)
    return code


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if hasattr(args, "cluster") and _hpc_cluster(args):
            return 0
        return args.func(args)
    except KeyboardInterrupt:
        return _say("interrupted", "", EXIT_INTERRUPTED)
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): stop writing, quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_FAILURE
    except ModuleNotFoundError as e:  # an install without an extra the command needs
        return _say("error", f"{e}: this command needs it; install emlpress with the extra that "
                    "brings it (pip install 'emlpress[keras]' for training, TFLite and Keras "
                    "files)", EXIT_USAGE)
    except MagnitudeError as e:  # a box or weights too large: the input's fault, like overflow
        return _say("error", e, EXIT_USAGE)
    except RuntimeError as e:  # LosslessError, BoundError, solver failures
        return _say("failed", e, EXIT_FAILURE)
    except WriteError as e:  # names the file; unwritable targets are refused before the work
        return _say("failed", e, EXIT_FAILURE)
    except (_UsageError, ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
            FileExistsError, PermissionError) as e:
        return _say("error", e, EXIT_USAGE)
    except OSError as e:  # disk full, read-only file system, ...
        return _say("failed", e, EXIT_FAILURE)


if __name__ == "__main__":
    sys.exit(main())
