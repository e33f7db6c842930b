"""This machine's fingerprint: what decides a kernel's time and memory, and whether two
machines are alike enough for one's measurements to stand for the other's.

Read by the TPC data's manifest (:mod:`emlpress.data.tpc_generate`), its oracle's choice of a
kernel re-run (:mod:`emlpress.data.tpc_oracle`) and ``emlpress bench``'s machine description
(:mod:`emlpress.bench.machine`): one reading of the CPU model for all three.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata

__all__ = ["HOST_KEYS", "host_fingerprint", "host_mismatch"]

# The fields of host_fingerprint() that must agree for a re-run to measure what the data did.
HOST_KEYS = ("cpu", "cores", "machine", "system")


def host_fingerprint() -> dict:
    """What decides a kernel's time and memory on this machine: CPU model, logical cores,
    architecture, OS, Python and numba. The host name is recorded but not compared (containers
    and cloud VMs get a new one on every start)."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(),
            "system": platform.system(), "python": platform.python_version(),
            "numba": _numba_version(), "node": platform.node()}


def _numba_version() -> str | None:
    """numba's version from its installed metadata: importing numba takes ~0.4 s, which every
    reader of the fingerprint (``emlpress --help`` through the bench machine) would pay."""
    try:
        return metadata.version("numba")
    except metadata.PackageNotFoundError:
        return None


def host_mismatch(entry: dict, host: dict) -> str | None:
    """How a manifest entry's host differs from ``host`` in :data:`HOST_KEYS` (None: alike)."""
    diff = [f"{k} {entry.get('host', {}).get(k)!r} (here {host.get(k)!r})"
            for k in HOST_KEYS if entry.get("host", {}).get(k) != host.get(k)]
    return ", ".join(diff) if diff else None
