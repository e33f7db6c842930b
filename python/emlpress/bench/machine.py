"""The machine a benchmark result was measured on: CPU (through :mod:`emlpress.host`, the TPC
oracle's reading too), memory, OS, numpy's BLAS, the versions of emlpress, HiGHS and the peers,
how the extension was compiled, thread settings and the suite's git commit."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np

import emlpress
from emlpress import kernels
from emlpress._highs import highs
from emlpress.host import host_fingerprint

try:
    from threadpoolctl import threadpool_info
except ImportError:  # the BLAS then comes from numpy's build config
    threadpool_info = None


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _version(dist: str):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _blas() -> list:
    """The BLAS/OpenMP libraries numpy loaded, by threadpoolctl (else numpy's build config)."""
    if threadpool_info is not None:
        return [{k: d.get(k) for k in ("user_api", "internal_api", "version", "num_threads",
                                        "threading_layer", "architecture")}
                | {"library": Path(d.get("filepath", "")).name} for d in threadpool_info()]
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]
        return [{"user_api": "blas", **{k: cfg["blas"].get(k) for k in ("name", "version")}}]
    except (TypeError, KeyError):  # numpy < 1.26: no dict form (or no blas entry)
        return []


def _git(benches: Path | None) -> dict:
    if benches is None:
        return {}
    try:
        head = subprocess.run(["git", "-C", str(benches), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(benches), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {}
    if head.returncode:
        return {}
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def machine(benches: Path | None = None) -> dict:
    """What decides the figures: CPU (model, logical and usable cores, flags that matter to
    the kernels, cache), memory, OS, Python, numpy and its BLAS, the versions of emlpress,
    highspy and the peers, how emlpress' extension was compiled, thread settings."""
    host = host_fingerprint()  # one reading of the CPU model, the TPC oracle's too
    cpuinfo = _read("/proc/cpuinfo")
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            flags = set(line.split(":", 1)[1].split())
            break
    cache = re.search(r"^cache size\s*:\s*(.+)$", cpuinfo, re.M)
    physical = {m for m in re.findall(r"^physical id\s*:\s*(\d+).*?^core id\s*:\s*(\d+)", cpuinfo, re.M | re.S)}
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    osrel = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', _read("/etc/os-release"), re.M)
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    versions = {d: _version(d) for d in ("emlpress", "highspy", "numpy", "scipy", "numba", "pandas",
                                         "pytest", "pytest-benchmark", "omlt", "pyomo", "tensorflow",
                                         "ai-edge-litert", "torch", "auto_LiRPA")}
    versions["emlpress"] = emlpress.__version__  # the one imported, which may not be pip's
    try:
        h = highs()  # without HiGHS' banner on stdout
        versions["HiGHS"] = f"{h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"
    except Exception:  # noqa: BLE001  (a description of the machine never fails the run)
        versions["HiGHS"] = None
    build = dict(getattr(kernels, "build_info", None) or {"flags": "unknown (an extension built before build_info)"})
    build["native"] = "-march=native" in build.get("flags", "")
    return {
        "cpu": host["cpu"],
        "cores": host["cores"],
        "cores_usable": usable,
        "cores_physical": len(physical) or None,
        "cpu_flags": sorted(flags & {"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw",
                                     "avx512vl", "avx512_vnni", "amx_tile", "asimd", "sve"}),
        "cpu_cache": cache.group(1) if cache else None,
        "memory_gib": round(int(mem.group(1)) / 2**20, 2) if mem else None,
        "machine": host["machine"],
        "os": osrel.group(1) if osrel else host["system"],
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {host['python']}",
        "node": host["node"],
        "numpy": np.__version__,
        "blas": _blas(),
        "versions": versions,
        "build": build,
        "threads": {"emlpress kernels": kernels.num_threads(),
                    **{k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
                       if k in os.environ}},
        "source": {"emlpress": str(Path(emlpress.__file__).resolve().parent), **_git(benches)},
    }
