"""The TPC pipeline's settings: :class:`Config`, the topology presets, the variants a run
answers for, the checks of a configuration (before any training), the data splits, and the
settings of a run folder (``logs/config.json``)."""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emlpress import _options
from emlpress.bounds import METHODS
from emlpress.data import tpc
from emlpress.data.tpc_oracle import MODES
from emlpress.train import check_sparsities


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
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "default_data" / "tpc"  # installed copy of data/tpc
VARIANTS = ("baseline", "pruned", "baseline+lossless", "pruned+lossless")
#: with ``Config.quantized``: the baseline's full-integer int8 model (TFLite, calibrated on the
#: training rows), embedded by its dequantized weights or exactly as the int8 interpreter
QUANTIZED_VARIANTS = ("baseline+int8-dequantized", "baseline+int8-exact")
ANSWER_MODELS = {
    "float": "the float network (the MILP's outputs equal its forward pass)",
    "dequantized": "the int8 model's dequantized weights; the deployed int8 interpreter differs "
                   "(interpreter_predicted_error)",
    "exact": "the int8 model exactly: its MILP outputs equal LiteRT's reference interpreter bit for bit",
}


def embedding(variant: str) -> str:
    """How a variant's networks are embedded: ``float``, ``dequantized`` or ``exact``."""
    return variant.split("+int8-")[1] if "+int8-" in variant else "float"


def variants(cfg: "Config") -> tuple:
    """The variants a run answers for, in order."""
    return VARIANTS + (QUANTIZED_VARIANTS if cfg.quantized else ())
REFIT_ON = ("miss", "every")  # after a measured answer: refit where the surrogate missed, or always
RESOURCES = ("time", "memory_mean", "memory_peak")
R2_ERROR_GOAL = 0.9


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
    time_limit: float = 20.0          # seconds per MILP (then its incumbent, measured like any)
    epochs: int = 200                 # at most (early stopping on a validation split)
    patience: int = 20
    learning_rate: float = 3e-3
    batch_size: int = 32
    prune_epochs: int = 30            # fine-tuning of the trained baseline with TMOT pruning
    resource_epochs: int = 100        # the resource network (time is mostly noise)
    seed: int = 0
    test_size: float = 0.2            # share of all rows
    calibration_size: float = 0.2     # share of the rest, for the conformal margins
    coverage: float = 0.9             # of the conformal margins
    improve_coverage: float | None = 0.5  # after the proof at `coverage`, if smaller: go on at this one
    resource_r2_min: float = 0.5      # below: the per-hardware fallback for that limit
    max_iterations: int = 10          # oracle calls per answer after the first (0: open loop)
    loop_seconds: float = 60.0        # per answer
    local_calls: int = 150            # per answer: the local search after the MILP phase (0: none)
    local_after: int | None = 2       # MILP answers after the first measured-feasible one, then the local search
    holdout: int = 0                  # every holdout-th measured answer calibrates the margins (0: none)
    improve_probes: int = 2           # deprecated, unused: the loop improves until its proof or budget
    probe_time_limit: float = 5.0     # deprecated, unused
    refit_epochs: int = 20
    refit_weight: int = 50            # copies of each measured answer in the refit's rows
    refit_on: str = "every"           # every: refit after every measured answer; miss: only a network that missed
    oracle: str = "auto"              # auto | kernel | data
    measured_only: bool | None = None  # default: when the table is the oracle
    truth_seconds: float = 20.0       # brute force per benchmark (kernel oracle only; 0: none)
    timing_repeats: int = 5           # solves of each first MILP for the solver-time comparison
    timing_seconds: float = 10.0      # at most per MILP (at least 3 solves)
    initial_sparsity: float = 0.0
    final_sparsity: float = 0.5
    compression_bounds: str = "lp"
    quantized: bool = False           # also the int8 variants (QUANTIZED_VARIANTS)
    rerun_kernels: bool | None = None  # deprecated: True is oracle="kernel", False "data"
    out: Path = Path("runs")
    progress: bool = True


def _domain(data: tpc.TPCData):
    blo, bhi = data.bit_range()
    lo = np.concatenate([blo.astype(float), np.zeros(len(data.hardware))])
    hi = np.concatenate([bhi.astype(float), np.ones(len(data.hardware))])
    return lo, hi


def _check_hw(cfg: Config, data: tpc.TPCData) -> None:
    if cfg.hw is not None and cfg.hw not in data.hardware:
        raise ValueError(f"--hw {cfg.hw!r}: {data.benchmark} has data for {data.hardware} only")


def _limits(cfg: Config) -> dict:
    return {"error": cfg.max_error, "time": cfg.max_time, "memory_peak": cfg.max_memory_peak,
            "memory_mean": cfg.max_memory_mean}


def _check(cfg: Config) -> None:
    """Reject a configuration that could only fail or mislead later (after models have been
    trained): each error names the setting and its value."""
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
    _options.seconds("loop_seconds", cfg.loop_seconds)
    _options.seconds("timing_seconds", cfg.timing_seconds)
    _options.seconds("probe_time_limit", cfg.probe_time_limit)
    for name in ("epochs", "batch_size", "prune_epochs", "resource_epochs", "refit_epochs",
                 "refit_weight", "timing_repeats", "patience"):
        _options.positive_int(name, getattr(cfg, name))
    if cfg.refit_on not in REFIT_ON:
        raise ValueError(f"refit_on must be one of {REFIT_ON}, got {cfg.refit_on!r}")
    if cfg.timing_repeats < 3:
        raise ValueError(f"timing_repeats must be at least 3 (a median of repeated solves), "
                         f"got {cfg.timing_repeats}")
    if isinstance(cfg.holdout, bool) or not isinstance(cfg.holdout, numbers.Integral) or cfg.holdout < 0 \
            or cfg.holdout == 1:
        raise ValueError(f"holdout must be 0 (none) or an integer >= 2, got {cfg.holdout!r}")
    for name in ("max_iterations", "improve_probes", "local_calls"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
    if cfg.local_after is not None and (isinstance(cfg.local_after, bool)
                                        or not isinstance(cfg.local_after, numbers.Integral) or cfg.local_after < 0):
        raise ValueError(f"local_after must be an integer >= 0 or None (the MILP phase to its proof "
                         f"or budget), got {cfg.local_after!r}")
    if not (isinstance(cfg.truth_seconds, numbers.Real) and cfg.truth_seconds >= 0):
        raise ValueError(f"truth_seconds must be >= 0 (0: no brute force), got {cfg.truth_seconds!r}")
    tpc.check_test_size(cfg.test_size)
    if not 0.0 < cfg.calibration_size < 1.0:
        raise ValueError(f"calibration_size = {cfg.calibration_size!r} must lie in (0, 1)")
    if not 0.0 < cfg.coverage < 1.0:
        raise ValueError(f"coverage = {cfg.coverage!r} must lie in (0, 1), e.g. 0.9")
    if cfg.improve_coverage is not None and not (
            isinstance(cfg.improve_coverage, numbers.Real) and 0.0 < cfg.improve_coverage < 1.0):
        raise ValueError(f"improve_coverage = {cfg.improve_coverage!r} must lie in (0, 1), or be "
                         "None (stop at the first proof)")
    if not cfg.learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {cfg.learning_rate!r}")
    check_sparsities(cfg.initial_sparsity, cfg.final_sparsity)
    if cfg.compression_bounds not in METHODS:
        raise ValueError(f"unknown compression_bounds {cfg.compression_bounds!r}: expected one of {METHODS}")
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {out}: is a file; give the directory the run folders go to")
    if cfg.quantized:
        try:
            import ai_edge_litert  # noqa: F401  (LiteRT: an optional extra)
        except ImportError:
            raise ValueError("quantized=True needs LiteRT: pip install 'emlpress[keras]'") from None
    if cfg.oracle not in MODES:
        raise ValueError(f"unknown oracle {cfg.oracle!r}: expected one of {MODES}")


def _enough_calibration(n_rows: int, cfg: Config) -> bool:
    """Whether ``n_rows`` rows leave enough calibration rows for the coverage asked."""
    n_test = max(1, int(round(cfg.test_size * n_rows)))
    n_cal = max(1, int(round(cfg.calibration_size * (n_rows - n_test))))
    return math.ceil((n_cal + 1) * cfg.coverage) <= n_cal and n_rows - n_test - n_cal >= 10


def _splits(data: tpc.TPCData, cfg: Config):
    rest, test = data.split(cfg.test_size, cfg.seed)
    perm = np.random.default_rng(cfg.seed + 1).permutation(len(rest))
    n_cal = max(1, int(round(cfg.calibration_size * len(rest))))
    cal = rest.iloc[np.sort(perm[:n_cal])]
    train = rest.iloc[np.sort(perm[n_cal:])]
    return train, cal, test


def load_config(folder) -> Config:
    """The settings of a run folder (``logs/config.json``), to resume it."""
    folder = Path(folder)
    path = folder / "logs" / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{folder}: not a tpc run folder (no logs/config.json)")
    return _config_from(json.loads(path.read_text()))


def _config_payload(cfg: Config) -> dict:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(cfg).items()}


def _config_from(payload: dict) -> Config:
    known = set(Config.__dataclass_fields__)
    cfg = Config(**{k: v for k, v in payload.items() if k in known and k != "rerun_kernels"})
    cfg.data, cfg.out = Path(cfg.data), Path(cfg.out)
    return cfg
