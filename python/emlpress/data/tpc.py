"""Transprecision computing (TPC) data: how error, time and memory of a program depend on
the precision (mantissa bits) of each of its variables, per hardware platform.

Layout (the published dataset, Zenodo record 6575841, and ``emlpress tpc generate``):
one CSV per benchmark and platform, ``<Benchmark>_<hw>.csv``, with columns
``var_0..var_{n-1}`` (integer bits), ``error``, ``time``, ``memory_mean``, ``memory_peak``.

Targets: the error spans ~1e-30 to 1e11 and is sometimes exactly 0, so models learn
``-log10(error)``; errors below ``ERROR_FLOOR`` = 1e-30 (exact zeros included) are clipped to
it, i.e. the target is capped at ``NEG_LOG_ERROR_CAP`` = 30 (the published data's smallest
positive error is 2.6e-30). Time and memory are kept raw.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "BENCHMARKS", "ERROR_FLOOR", "NEG_LOG_ERROR_CAP", "TARGETS", "TPCDataError", "TPCData",
    "MinMax", "load", "load_dir", "best_measured",
]

BENCHMARKS = {"Convolution": 4, "Correlation": 7, "Saxpy": 3}
ERROR_FLOOR = 1e-30
NEG_LOG_ERROR_CAP = 30.0
TARGETS = ("neg_log_error", "time", "memory_mean", "memory_peak")
MEASURED = ("error", "time", "memory_mean", "memory_peak")
HW_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")
_FILE = re.compile(r"^(?P<bench>[A-Za-z]+)_(?P<hw>.+)\.csv$")


class TPCDataError(ValueError):
    """A malformed TPC file: the message names the file, and the row and column at fault."""


def _read_one(path: Path, benchmark: str) -> pd.DataFrame:
    n = BENCHMARKS[benchmark]
    cols = [f"var_{i}" for i in range(n)] + list(MEASURED)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise TPCDataError(f"{path}: empty file (expected a header {','.join(cols)})") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as e:
        raise TPCDataError(f"{path}: not a CSV text file ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''})") from None
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise TPCDataError(f"{path}: missing column(s) {missing}; header is {list(df.columns)}")
    if len(df) == 0:
        raise TPCDataError(f"{path}: no data rows")
    out = pd.DataFrame(index=df.index)
    for c in cols:
        num = pd.to_numeric(df[c].str.strip(), errors="coerce")
        bad = np.flatnonzero(num.isna().to_numpy() | ~np.isfinite(num.to_numpy(dtype=float, na_value=np.nan)))
        if bad.size:
            r = int(bad[0])
            # +2: header is line 1, data rows start at line 2
            raise TPCDataError(f"{path}: row {r + 2} (line {r + 2}), column {c!r}: "
                               f"{df[c].iloc[r]!r} is not a finite number")
        out[c] = num.astype(float)
    for c in cols[:n]:
        v = out[c].to_numpy()
        bad = np.flatnonzero((v != np.round(v)) | (v < 1) | (v > 64))
        if bad.size:
            r = int(bad[0])
            raise TPCDataError(f"{path}: row {r + 2}, column {c!r}: {v[r]} is not a bit count in 1..64")
        out[c] = v.astype(np.int64)
    for c in MEASURED:
        v = out[c].to_numpy()
        bad = np.flatnonzero(v < 0)
        if bad.size:
            r = int(bad[0])
            raise TPCDataError(f"{path}: row {r + 2}, column {c!r}: {v[r]} is negative")
    return out


def neg_log_error(error) -> np.ndarray:
    """``-log10(max(error, ERROR_FLOOR))``: the learned error target (capped at 30)."""
    return -np.log10(np.maximum(np.asarray(error, dtype=float), ERROR_FLOOR))


@dataclass
class TPCData:
    """One benchmark on every platform found. ``frame`` has ``var_*``, one-hot ``hw_<name>``,
    the measured ``error``, ``time``, ``memory_mean``, ``memory_peak``, the learned target
    ``neg_log_error`` and ``hardware``; its index is reset (0..n-1)."""

    benchmark: str
    hardware: list
    frame: pd.DataFrame
    source: str

    @property
    def n_vars(self) -> int:
        return BENCHMARKS[self.benchmark]

    @property
    def var_cols(self) -> list:
        return [f"var_{i}" for i in range(self.n_vars)]

    @property
    def hw_cols(self) -> list:
        return [f"hw_{h}" for h in self.hardware]

    @property
    def input_cols(self) -> list:
        return self.var_cols + self.hw_cols

    def X(self, frame: pd.DataFrame | None = None) -> np.ndarray:
        f = self.frame if frame is None else frame
        return f[self.input_cols].to_numpy(dtype=float)

    def Y(self, frame: pd.DataFrame | None = None) -> np.ndarray:
        f = self.frame if frame is None else frame
        return f[list(TARGETS)].to_numpy(dtype=float)

    def bit_range(self) -> tuple[np.ndarray, np.ndarray]:
        v = self.frame[self.var_cols].to_numpy()
        return v.min(0), v.max(0)

    def split(self, test_size: float = 0.2, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Seeded random split of the rows (the index is already reset, so no row can be
        on both sides, unlike the study's ``drop(train.index)`` on duplicated labels)."""
        check_test_size(test_size)
        perm = np.random.default_rng(seed).permutation(len(self.frame))
        n_test = max(1, int(round(test_size * len(perm))))
        test = self.frame.iloc[np.sort(perm[:n_test])]
        train = self.frame.iloc[np.sort(perm[n_test:])]
        return train, test


def load(directory, benchmark: str, hardware=None) -> TPCData:
    """Load ``<benchmark>_<hw>.csv`` for every platform in ``directory`` (or only those in
    ``hardware``). Raises :class:`TPCDataError` naming file, row and column on bad input."""
    directory = Path(directory)
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}: expected one of {sorted(BENCHMARKS)}")
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such data directory")
    files = {}
    for p in sorted(directory.glob(f"{benchmark}_*.csv")):
        hw = _FILE.match(p.name).group("hw")
        if not HW_NAME.match(hw):
            raise TPCDataError(f"{p}: hardware name {hw!r} in the file name is not a valid name "
                               "(letters, digits, '.', '-')")
        files[hw] = p
    if hardware is not None:
        hardware = [hardware] if isinstance(hardware, str) else list(hardware)
        unknown = [h for h in hardware if h not in files]
        if unknown:
            raise TPCDataError(f"{directory}: unknown hardware {unknown} for {benchmark}; "
                               f"files exist for {sorted(files)}")
        files = {h: files[h] for h in hardware}
    if not files:
        raise FileNotFoundError(f"{directory}: no {benchmark}_<hw>.csv files")
    parts = []
    for hw, p in files.items():
        df = _read_one(p, benchmark)
        df["hardware"] = hw
        parts.append(df)
    frame = pd.concat(parts, ignore_index=True)
    hws = list(files)
    for hw in hws:
        frame[f"hw_{hw}"] = (frame["hardware"] == hw).astype(float)
    frame["neg_log_error"] = neg_log_error(frame["error"].to_numpy())
    return TPCData(benchmark, hws, frame.reset_index(drop=True), str(directory))


def check_test_size(test_size) -> None:
    """The test share of a split: strictly between 0 and 1."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size = {test_size!r} must lie in (0, 1)")


def load_dir(directory, benchmarks=None, hardware=None) -> dict:
    """Every benchmark present in ``directory`` (or those named), as ``{name: TPCData}``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such data directory")
    names = benchmarks or [b for b in BENCHMARKS if any(directory.glob(f"{b}_*.csv"))]
    if not names:
        raise FileNotFoundError(f"{directory}: no <Benchmark>_<hw>.csv files of {sorted(BENCHMARKS)}")
    return {b: load(directory, b, hardware) for b in names}


@dataclass
class MinMax:
    """Min-max normalisation fit on a training split; ``lo``/``hi`` per column, in raw units."""

    columns: list
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns) -> MinMax:
        a = frame[list(columns)].to_numpy(dtype=float)
        lo, hi = a.min(0), a.max(0)
        hi = np.where(hi > lo, hi, lo + 1.0)  # constant columns map to 0
        return cls(list(columns), lo, hi)

    def transform(self, a) -> np.ndarray:
        return (np.asarray(a, dtype=float) - self.lo) / (self.hi - self.lo)

    def inverse(self, a) -> np.ndarray:
        return np.asarray(a, dtype=float) * (self.hi - self.lo) + self.lo

    def to_json(self) -> dict:
        return {"columns": self.columns, "lo": self.lo.tolist(), "hi": self.hi.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> MinMax:
        return cls(list(d["columns"]), np.asarray(d["lo"], float), np.asarray(d["hi"], float))

    def save(self, path) -> None:
        from emlpress._atomic import write_text_atomic

        write_text_atomic(path, json.dumps(self.to_json(), indent=1))


def best_measured(data: TPCData, max_error: float, max_time: float, hardware=None,
                  max_memory: float | None = None) -> pd.Series | None:
    """The measured configuration with the fewest total bits that meets the limits (on the
    given platforms), or None."""
    f = data.frame
    ok = (f["error"] <= max_error) & (f["time"] <= max_time)
    if max_memory is not None:
        ok &= f["memory_peak"] <= max_memory
    if hardware is not None:
        hardware = [hardware] if isinstance(hardware, str) else list(hardware)
        ok &= f["hardware"].isin(hardware)
    if not ok.any():
        return None
    cand = f[ok]
    total = cand[data.var_cols].sum(axis=1)
    return cand.loc[total.idxmin()]
