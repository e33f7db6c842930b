"""Oracles that measure a transprecision configuration, and the brute-force truth.

An answer of the TPC pipeline is a configuration (bits per variable, hardware). It is
*measured* by one of two oracles, chosen per hardware name:

- ``kernel re-run``: the numba kernel of :mod:`emlpress.data.tpc_generate` runs the
  configuration on this machine. Used only where the data folder's ``manifest.json`` says the
  data of that hardware name was measured by the same kernel version on a host like this one
  (same CPU model, cores, architecture and OS; :func:`emlpress.host.host_fingerprint`), wherever
  the folder lies. Otherwise the re-run would measure another machine than the data did.
- ``data``: the measurements in the table. A configuration that is in it is measured (mean over
  its repeats); one that is not is *unmeasured*: no verdict, and never a verdict borrowed from
  a neighbouring configuration.

:func:`brute_force` enumerates configurations by increasing total bits with the kernel (the
error is deterministic, so one untimed run decides it) until the first total with a feasible
configuration: the true optimum of the pipeline's problem, or, when a budget ends the search
first, a proven lower bound on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emlpress.data import tpc
from emlpress.data import tpc_generate as gen
from emlpress.host import HOST_KEYS, host_fingerprint, host_mismatch

__all__ = ["Measurement", "Oracle", "HOST_KEYS", "host_mismatch", "brute_force"]

MODES = ("auto", "kernel", "data")


@dataclass
class Measurement:
    """One measured (or unmeasured) configuration. ``feasible`` is None when unmeasured."""

    error: float | None
    time: float | None
    memory_mean: float | None
    memory_peak: float | None
    source: str
    feasible: bool | None = None

    @property
    def measured(self) -> bool:
        return self.error is not None


class Oracle:
    """Measures configurations of one benchmark, per hardware name by a kernel re-run where
    the manifest allows it (``mode="auto"``), always by the table (``"data"``), or by a re-run
    that must be allowed (``"kernel"``: a ``ValueError`` says why it is not) for every
    hardware in ``hardware`` (default: all of the data's).

    ``reason[hw]`` says which oracle measures ``hw`` and why."""

    def __init__(self, data: tpc.TPCData, mode: str = "auto", directory=None, hardware=None):
        if mode not in MODES:
            raise ValueError(f"unknown oracle {mode!r}: expected one of {MODES}")
        self.data = data
        directory = Path(directory if directory is not None else data.source)
        manifest = gen.read_manifest(directory)
        host = host_fingerprint()
        self.kernel_hw: dict[str, dict] = {}
        self.reason: dict[str, str] = {}
        for hw in data.hardware:
            entry = manifest.get(hw)
            why = None
            if mode == "data":
                why = "the data table (oracle 'data' asked for)"
            elif entry is None:
                why = f"the data table: {directory / gen.MANIFEST} does not describe hardware {hw!r}"
            elif entry.get("kernel_version") != gen.KERNEL_VERSION:
                why = (f"the data table: {hw!r} was measured by kernel version "
                       f"{entry.get('kernel_version')!r}, this is version {gen.KERNEL_VERSION!r}")
            elif data.benchmark not in entry.get("benchmarks", []):
                why = f"the data table: the manifest does not list {data.benchmark} for {hw!r}"
            elif (m := host_mismatch(entry, host)) is not None:
                why = f"the data table: {hw!r} was measured on another host: {m}"
            if why is None:
                self.kernel_hw[hw] = entry
                self.reason[hw] = (f"kernel re-run: {hw!r} was measured by kernel version "
                                   f"{gen.KERNEL_VERSION} on a host like this one ({host['cpu']}, "
                                   f"{host['cores']} cores)")
            else:
                self.reason[hw] = why
        needed = data.hardware if hardware is None else [h for h in data.hardware if h in hardware]
        if mode == "kernel" and any(h not in self.kernel_hw for h in needed):
            bad = {hw: r for hw, r in self.reason.items() if hw in needed and hw not in self.kernel_hw}
            raise ValueError(f"{directory}: oracle 'kernel' cannot re-run " + "; ".join(
                f"{hw}: {r.split(': ', 1)[1]}" for hw, r in bad.items()))
        self._inputs: dict[int, tuple] = {}
        frame = data.frame
        keys = [tuple(r) for r in frame[data.var_cols].to_numpy()]
        self._rows: dict[tuple, list[int]] = {}
        for i, (k, hw) in enumerate(zip(keys, frame["hardware"])):
            self._rows.setdefault((k, hw), []).append(i)

    def source(self, hw: str) -> str:
        return "kernel re-run" if hw in self.kernel_hw else "data"

    def _kernel_inputs(self, seed: int):
        if seed not in self._inputs:
            inputs = gen.make_inputs(self.data.benchmark, seed)
            self._inputs[seed] = (inputs, gen.kernel_reference(self.data.benchmark, inputs))
        return self._inputs[seed]

    def in_table(self, bits, hw: str) -> bool:
        return (tuple(int(b) for b in bits), hw) in self._rows

    def measure(self, bits, hw: str, limits: dict) -> Measurement:
        """Measure ``bits`` on ``hw``; ``limits`` maps ``error``, ``time``, ``memory_peak``,
        ``memory_mean`` to the problem's limits (None: no limit) for the verdict."""
        bits = [int(b) for b in bits]
        if hw not in self.kernel_hw:
            return self.measure_table(bits, hw, limits)
        entry = self.kernel_hw[hw]
        inputs, ref = self._kernel_inputs(int(entry.get("seed", 0)))
        r = gen.run_kernel(self.data.benchmark, bits, inputs, ref,
                           repeats=int(entry.get("repeats", 3)))
        m = Measurement(r["error"], r["time"], r["memory_mean"], r["memory_peak"], "kernel re-run")
        m.feasible = all(getattr(m, k) <= v for k, v in limits.items() if v is not None)
        return m

    def measure_table(self, bits, hw: str, limits: dict) -> Measurement:
        """The table's measurement of ``bits`` on ``hw`` (mean over its repeats), or an
        unmeasured one when the table does not hold it."""
        rows = self._rows.get((tuple(int(b) for b in bits), hw))
        if rows is None:
            return Measurement(None, None, None, None, "unmeasured (not in the data)")
        f = self.data.frame.iloc[rows]
        m = Measurement(float(f["error"].mean()), float(f["time"].mean()),
                        float(f["memory_mean"].mean()), float(f["memory_peak"].mean()),
                        f"data ({len(rows)} row{'s' if len(rows) > 1 else ''})")
        m.feasible = all(getattr(m, k) <= v for k, v in limits.items() if v is not None)
        return m

    def measured_configurations(self, hardware=None) -> list[tuple[tuple, str]]:
        """Distinct (bits, hw) in the table, for hardware in ``hardware`` (default: all)."""
        return [k for k in self._rows if hardware is None or k[1] in hardware]


def _compositions(total: int, lo, hi):
    """Every integer vector v with lo <= v <= hi (per entry) summing to ``total``."""
    if len(lo) == 1:
        if lo[0] <= total <= hi[0]:
            yield (total,)
        return
    rest_lo, rest_hi = sum(lo[1:]), sum(hi[1:])
    for a in range(max(lo[0], total - rest_hi), min(hi[0], total - rest_lo) + 1):
        for rest in _compositions(total - a, lo[1:], hi[1:]):
            yield (a, *rest)


def brute_force(benchmark: str, max_error: float, max_time: float | None = None,
                max_memory_peak: float | None = None, max_memory_mean: float | None = None,
                seed: int = 0, bit_range=None, max_seconds: float | None = None,
                max_evaluations: int | None = None, progress: bool = False, repeats: int = 3) -> dict:
    """The fewest total bits of a configuration whose kernel run meets the limits.

    Totals are enumerated upward from the smallest; every configuration of a total has its
    (deterministic) error computed by one untimed run; those within ``max_error`` are then run
    in full (timed and traced) against the other limits. The first total with a feasible
    configuration is the optimum (``proven=True``). When ``max_seconds`` or ``max_evaluations``
    ends the search first, ``total_bits`` is a proven lower bound (every smaller total was
    searched completely) and ``proven`` is False.

    Returns ``total_bits``, ``proven``, ``configurations`` (the optimal ones with their
    measurements; ``complete_list`` False when a budget ended the search inside the optimal
    total after a feasible one was found), ``evaluated`` and ``seconds``. ``repeats``: timing
    runs of the full measurements (as the data's manifest records)."""
    n = tpc.BENCHMARKS[benchmark]
    lo, hi = bit_range or gen.BIT_RANGE[benchmark]
    lo = [int(v) for v in np.broadcast_to(lo, (n,))]
    hi = [int(v) for v in np.broadcast_to(hi, (n,))]
    inputs = gen.make_inputs(benchmark, seed)
    ref = gen.kernel_reference(benchmark, inputs)
    t0 = time.perf_counter()
    evaluated = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc=f"brute force {benchmark}", unit="config")
    try:
        for total in range(sum(lo), sum(hi) + 1):
            found = []
            for bits in _compositions(total, lo, hi):
                out_of_budget = ((max_seconds is not None and time.perf_counter() - t0 > max_seconds)
                                 or (max_evaluations is not None and evaluated >= max_evaluations))
                if out_of_budget:
                    if found:  # this total is proven optimal; only its list is cut short
                        return {"total_bits": total, "proven": True, "configurations": found,
                                "complete_list": False, "evaluated": evaluated,
                                "seconds": time.perf_counter() - t0}
                    return _partial(total, evaluated, t0)
                err = gen.run_kernel(benchmark, bits, inputs, ref, error_only=True)["error"]
                evaluated += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(total_bits=total)
                if err > max_error:
                    continue
                if max_time is None and max_memory_peak is None and max_memory_mean is None:
                    found.append({"bits": list(bits), "error": err})
                    continue
                r = gen.run_kernel(benchmark, bits, inputs, ref, repeats=repeats)
                if ((max_time is None or r["time"] <= max_time)
                        and (max_memory_peak is None or r["memory_peak"] <= max_memory_peak)
                        and (max_memory_mean is None or r["memory_mean"] <= max_memory_mean)):
                    found.append({"bits": list(bits), **r})
            if found:
                return {"total_bits": total, "proven": True, "configurations": found,
                        "complete_list": True, "evaluated": evaluated,
                        "seconds": time.perf_counter() - t0}
        return {"total_bits": None, "proven": True, "configurations": [], "evaluated": evaluated,
                "seconds": time.perf_counter() - t0}
    finally:
        if bar is not None:
            bar.close()


def _partial(total: int, evaluated: int, t0: float) -> dict:
    return {"total_bits": total, "proven": False, "configurations": [], "evaluated": evaluated,
            "seconds": time.perf_counter() - t0}
