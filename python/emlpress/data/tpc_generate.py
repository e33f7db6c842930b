"""Generate transprecision data on this machine: ``emlpress tpc generate``.

Three numba kernels (Saxpy, 3 variables; Convolution, 4; Correlation, 7) in which every
program variable is rounded to its own number of mantissa bits after every operation that
writes it (round to nearest, ties to even, on the float64 bit pattern, like a transprecision
emulator such as FlexFloat), and stored as float32 when its precision fits float32's 23-bit
mantissa (float64 otherwise), so memory and time depend on the precision as on a real
transprecision platform.

Per configuration: ``error`` = relative L2 error of the output against the float64 run,
``time`` = wall time of the kernel in milliseconds (best of ``repeats``), ``memory_peak`` /
``memory_mean`` = peak and mean (over the kernel's stages) of the bytes the kernel allocated,
in MB, traced with ``tracemalloc`` (arrays are allocated by numpy outside the jitted code, so
the tracer sees them). Rows are written in the published CSV schema.

The error is deterministic (the same bits give the same error on every run and every x86-64 or
ARM host: IEEE float64 operations in a fixed order, no fused multiply-add); time and memory are
the host's. ``generate`` records in ``manifest.json`` beside the CSVs which kernel version, input
seed and host measured each hardware name, so that a later re-run of the kernel is used as an
oracle only where it measures what the data measured (:mod:`emlpress.data.tpc_oracle`).
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import re
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from emlpress import _options
from emlpress._atomic import write_csv_atomic, write_text_atomic
from emlpress.data.tpc import BENCHMARKS, HW_NAME
from emlpress.host import host_fingerprint, host_mismatch

__all__ = ["round_bits", "run_kernel", "kernel_reference", "generate", "BIT_RANGE", "KERNEL_VERSION",
           "host_fingerprint", "read_manifest", "MANIFEST"]

# Bump whenever a kernel's arithmetic, inputs or timing method changes: data measured by another
# version is not re-run (tests/test_tpc.py checks the embedded data against this version).
KERNEL_VERSION = "1"
MANIFEST = "manifest.json"

# Smallest and largest precision sampled per benchmark (as in the published data).
BIT_RANGE = {"Saxpy": (4, 52), "Convolution": (4, 52), "Correlation": (3, 52)}
F32_BITS = 23


def _njit(f):
    """``numba.njit(cache=True)`` compiled at the first call, which rebinds the module's name
    to the compiled kernel (no wrapper on later calls): importing numba takes ~0.4 s, which every
    importer of this module (the tpc pipeline, ``emlpress --help``) would otherwise pay."""
    def first_call(*args):
        import numba

        jitted = numba.njit(cache=True)(f)
        globals()[f.__name__] = jitted
        return jitted(*args)
    first_call.__name__, first_call.__doc__ = f.__name__, f.__doc__
    return first_call


@_njit
def _round_into(src, p, out):
    """out = src rounded to p mantissa bits (RNE on the float64 bit pattern)."""
    n = src.size
    s = src.ravel()
    o = out.ravel()
    if p >= 52:
        for i in range(n):
            o[i] = s[i]
        return
    shift = np.uint64(52 - p)
    one = np.uint64(1)
    half_m1 = (one << (shift - one)) - one
    mask = ~((one << shift) - one)
    tmp = np.empty(1, np.float64)
    u = tmp.view(np.uint64)
    for i in range(n):
        tmp[0] = s[i]
        lsb = (u[0] >> shift) & one
        u[0] = (u[0] + half_m1 + lsb) & mask
        o[i] = tmp[0]


def round_bits(x, p: int) -> np.ndarray:
    """``x`` rounded to ``p`` mantissa bits, as float32 storage when ``p <= 23`` (exact:
    the rounded value has at most 23 mantissa bits) and float64 otherwise."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty(x.shape, dtype=np.float32 if p <= F32_BITS else np.float64)
    tmp = np.empty(x.shape, dtype=np.float64)
    _round_into(x, int(p), tmp)
    with np.errstate(over="ignore"):  # beyond float32's range: inf, as on the platform
        out[...] = tmp
    return out


@_njit
def _saxpy_prod(a, x, out):
    for i in range(x.size):
        out[i] = a * x[i]


@_njit
def _saxpy_add(p, y, out):
    for i in range(y.size):
        out[i] = p[i] + y[i]


@_njit
def _conv_products(img, ker, i, j, out):
    k = ker.shape[0]
    for u in range(k):
        for v in range(k):
            out[u * k + v] = img[i + u, j + v] * ker[u, v]


@_njit
def _col_mean(data, out):
    m, n = data.shape
    for j in range(n):
        s = 0.0
        for i in range(m):
            s += data[i, j]
        out[j] = s / m


@_njit
def _col_std(data, mean, out):
    m, n = data.shape
    for j in range(n):
        s = 0.0
        for i in range(m):
            d = data[i, j] - mean[j]
            s += d * d
        out[j] = np.sqrt(s / m)
        if out[j] <= 0.1:
            out[j] = 1.0


@_njit
def _center(data, mean, std, out):
    m, n = data.shape
    for i in range(m):
        for j in range(n):
            out[i, j] = (data[i, j] - mean[j]) / (np.sqrt(m) * std[j])


@_njit
def _col_products(c, j1, j2, out):
    for i in range(c.shape[0]):
        out[i] = c[i, j1] * c[i, j2]


class _Tracker:
    """Mean and peak of tracemalloc's current size over the kernel's stages, in MB."""

    def __init__(self):
        self.samples = []

    def mark(self):
        self.samples.append(tracemalloc.get_traced_memory()[0])


def _saxpy(bits, inputs, tr):
    x0, y0, a0 = inputs
    a = round_bits(np.array([a0]), bits[0])[0]
    x = round_bits(x0, bits[0]); tr.mark()
    y = round_bits(y0, bits[1]); tr.mark()
    prod = np.empty(x.size); _saxpy_prod(float(a), x, prod)
    prod = round_bits(prod, bits[2]); tr.mark()
    z = np.empty(x.size); _saxpy_add(prod, y, z)
    z = round_bits(z, bits[2]); tr.mark()
    return z


def _convolution(bits, inputs, tr):
    img0, ker0 = inputs
    img = round_bits(img0, bits[0]); tr.mark()
    ker = round_bits(ker0, bits[1]); tr.mark()
    k = ker.shape[0]
    n_out = img.shape[0] - k + 1
    out = np.empty((n_out, n_out), dtype=np.float32 if bits[3] <= F32_BITS else np.float64)
    prods = np.empty(k * k)
    acc = np.empty(1)
    tr.mark()
    for i in range(n_out):
        for j in range(n_out):
            _conv_products(img, ker, i, j, prods)
            pr = round_bits(prods, bits[2])
            s = 0.0
            for t in range(pr.size):  # accumulator rounded after every addition
                acc[0] = s + pr[t]
                s = float(round_bits(acc, bits[2])[0])
            out[i, j] = round_bits(np.array([s]), bits[3])[0]
    tr.mark()
    return out


def _correlation(bits, inputs, tr):
    (data0,) = inputs
    data = round_bits(data0, bits[0]); tr.mark()
    n = data.shape[1]
    mean = np.empty(n); _col_mean(data, mean)
    mean = round_bits(mean, bits[1]); tr.mark()
    std = np.empty(n); _col_std(data, mean, std)
    std = round_bits(std, bits[2]); tr.mark()
    cen = np.empty(data.shape); _center(data, mean, std, cen)
    cen = round_bits(cen, bits[3]); tr.mark()
    corr = np.empty((n, n), dtype=np.float32 if bits[6] <= F32_BITS else np.float64)
    prods = np.empty(data.shape[0])
    acc = np.empty(1)
    for j1 in range(n):
        corr[j1, j1] = 1.0
        for j2 in range(j1 + 1, n):
            _col_products(cen, j1, j2, prods)
            pr = round_bits(prods, bits[4])
            s = 0.0
            for t in range(pr.size):
                acc[0] = s + pr[t]
                s = float(round_bits(acc, bits[5])[0])
            corr[j1, j2] = corr[j2, j1] = round_bits(np.array([s]), bits[6])[0]
    tr.mark()
    return corr


_KERNELS = {"Saxpy": _saxpy, "Convolution": _convolution, "Correlation": _correlation}


def make_inputs(benchmark: str, seed: int = 0):
    """The kernel's (seeded) input data; sizes keep one run in the millisecond range."""
    rng = np.random.default_rng(seed)
    if benchmark == "Saxpy":
        return rng.normal(size=20_000), rng.normal(size=20_000), float(rng.normal())
    if benchmark == "Convolution":
        return rng.normal(size=(20, 20)), rng.normal(size=(3, 3)) / 3.0
    if benchmark == "Correlation":
        return (rng.normal(size=(32, 8)) + np.linspace(0, 3, 8),)
    raise ValueError(f"unknown benchmark {benchmark!r}: expected one of {sorted(BENCHMARKS)}")


def kernel_reference(benchmark: str, inputs) -> np.ndarray:
    """The kernel's float64 output (every variable at 52 bits): what errors are relative to."""
    n = BENCHMARKS[benchmark]
    return np.asarray(_KERNELS[benchmark]([52] * n, inputs, _Tracker()), dtype=np.float64)


def _error(out, reference) -> float:
    """Relative L2 error of ``out`` against the float64 run (overflow: a huge, finite 1e30)."""
    out = np.asarray(out, dtype=np.float64)
    denom = np.linalg.norm(reference)
    err = float(np.linalg.norm(out - reference) / (denom if denom > 0 else 1.0))
    return err if np.isfinite(err) else 1e30


def read_manifest(directory) -> dict:
    """``{hardware: entry}`` from ``directory/manifest.json`` (empty when there is none). An
    entry has ``kernel_version``, ``seed``, ``repeats``, ``host`` (:func:`host_fingerprint`),
    ``benchmarks`` and ``created``."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        hw = data["hardware"]
        if not isinstance(hw, dict):
            raise TypeError("'hardware' is not an object")
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a TPC data manifest ({e})") from None
    return hw


def _write_manifest(out_dir: Path, hw: str, benchmarks, seed: int, repeats: int, n_rows: int) -> Path:
    entries = read_manifest(out_dir)
    old = entries.get(hw, {})
    host = host_fingerprint()
    # keep the benchmarks measured earlier under this name only if they were measured the
    # same way on a host like this one; else the manifest would vouch for data it did not see
    same = (old.get("kernel_version") == KERNEL_VERSION and old.get("seed") == seed
            and old.get("repeats") == repeats and old.get("rows") == n_rows
            and host_mismatch(old, host) is None)
    done = sorted(set(benchmarks) | (set(old.get("benchmarks", [])) if same else set()))
    entries[hw] = {"kernel_version": KERNEL_VERSION, "seed": seed, "repeats": repeats,
                   "rows": n_rows, "benchmarks": done, "host": host,
                   "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    path = out_dir / MANIFEST
    write_text_atomic(path, json.dumps({"format": 1, "hardware": entries}, indent=1) + "\n")
    return path


def run_kernel(benchmark: str, bits, inputs=None, reference=None, repeats: int = 3,
               seed: int = 0, error_only: bool = False) -> dict:
    """Run ``benchmark`` with the given bits per variable; returns error, time (ms),
    memory_mean and memory_peak (MB). ``inputs`` default to ``make_inputs(benchmark, seed)``.
    ``error_only``: one untimed, untraced run; returns the error alone (it is deterministic)."""
    n = BENCHMARKS[benchmark]
    bits = [int(b) for b in bits]
    if len(bits) != n:
        raise ValueError(f"{benchmark} has {n} variables, got {len(bits)} bit counts")
    lo, hi = 1, 52
    bad = [b for b in bits if not lo <= b <= hi]
    if bad:
        raise ValueError(f"bits must lie in [{lo}, {hi}], got {bad}")
    kernel = _KERNELS[benchmark]
    inputs = make_inputs(benchmark, seed) if inputs is None else inputs
    if reference is None:
        reference = kernel_reference(benchmark, inputs)
    if error_only:
        return {"error": _error(kernel(bits, inputs, _Tracker()), reference)}
    best = np.inf
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = kernel(bits, inputs, _Tracker())
        best = min(best, time.perf_counter() - t0)
    tr = _Tracker()
    tracemalloc.start()
    try:
        tr.mark()
        out = kernel(bits, inputs, tr)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {"error": _error(out, reference), "time": best * 1e3, "memory_mean": float(np.mean(tr.samples)) / 1e6,
            "memory_peak": peak / 1e6}


def generate(out_dir, benchmarks=None, n_rows: int = 2000, hw: str | None = None,
             seed: int = 0, repeats: int = 3, progress: bool = True) -> list[Path]:
    """Write ``<Benchmark>_<hw>.csv`` with ``n_rows`` seeded random configurations each, and
    record the kernel version, seed and host for ``hw`` in ``manifest.json``."""
    if hw is None:  # the host's name, made a valid hardware name
        hw = re.sub(r"[^A-Za-z0-9.-]", "-", platform.node().split(".")[0]).lstrip(".-") or "local"
    if not HW_NAME.match(hw):
        raise ValueError(f"hardware name {hw!r}: use letters, digits, '.' and '-' (it becomes "
                         "part of the file name <Benchmark>_<hw>.csv)")
    n_rows = _options.positive_int("n_rows", n_rows)
    repeats = _options.positive_int("repeats", repeats)
    for b in benchmarks or []:
        if b not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {b!r}: expected one of {sorted(BENCHMARKS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for b in benchmarks or list(BENCHMARKS):
        n = BENCHMARKS[b]
        lo, hi = BIT_RANGE[b]
        rng = np.random.default_rng(seed)
        configs = rng.integers(lo, hi + 1, size=(n_rows, n))
        inputs = make_inputs(b, seed)
        ref = kernel_reference(b, inputs)
        it = configs
        if progress:
            from tqdm import tqdm

            it = tqdm(configs, desc=f"{b} on {hw}", unit="config")
        rows = []
        for bits in it:
            r = run_kernel(b, bits, inputs, ref, repeats)
            rows.append({**{f"var_{i}": int(v) for i, v in enumerate(bits)}, **r})
        path = out_dir / f"{b}_{hw}.csv"
        write_csv_atomic(path, pd.DataFrame(rows), float_format="%.6g")
        written.append(path)
    _write_manifest(out_dir, hw, benchmarks or list(BENCHMARKS), seed, repeats, n_rows)
    return written
