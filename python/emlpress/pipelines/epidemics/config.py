"""The settings of an epidemics run (:class:`Config`), their checks, and the models and plan
rows they ask for."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emlpress import _options
from emlpress.data import sir
from emlpress.pipelines.epidemics.model import BOUNDING

#: hidden layer widths per topology name ("linear": no hidden layer)
TOPOLOGIES = {"linear": [], "8": [8], "8-8-8-8": [8, 8, 8, 8], "16-16": [16, 16],
              "16x16": [16] * 16, "64x8": [64] * 8}
VARIANTS = ("baseline", "pruned", "int8")


@dataclass
class Config:
    topologies: list = field(default_factory=lambda: ["linear", "8", "8-8-8-8", "16-16"])
    tree: bool = True
    tree_depth: int | None = 10
    epochs: int = 100
    batch_size: int = 32
    patience: int = 10
    validation: float = 0.2
    learning_rate: float = 1e-3
    seed: int = 0
    n_train: int = 10_000
    n_test: int = 2_000
    horizons: list = field(default_factory=lambda: [3])
    variants: list = field(default_factory=lambda: ["baseline", "pruned", "int8"])
    initial_sparsity: float = 0.2     # the study's pruning schedule, the most any layer gets
    final_sparsity: float = 0.9
    prune_epochs: int = 30
    #: weights each unit keeps on average: a layer of fan-in n is pruned to at most
    #: 1 - prune_keep / n (a layer of fan-in <= prune_keep stays dense); see layer_sparsities
    prune_keep: int = 4
    #: a pruned model whose held-out R2 (any of S, I, R) is below its baseline's by more than
    #: this is flagged and not planned with (its plan rows say why)
    pruned_r2_margin: float = 0.01
    ptq_table: bool = True            # the six post-training quantizations per network
    #: per float network; the plots show the first bounding's plan
    bounding: list = field(default_factory=lambda: ["reachable", "chained+lossless", "chained",
                                                    "single-box"])
    budget_per_week: float = 20.0 / 3.0  # the course instance: 20 over 3 weeks
    time_limit: float = 60.0
    #: a "loop" row per model and horizon: the planning loop on emlpress.eml (each plan
    #: simulated, learnt, cut; see improve.py) with the first bounding
    loop: bool = True
    oracle_calls: int = 20            # plan simulations per loop row (0: the open loop)
    #: then at most this many more: a local search from the loop's best plan, one NPI
    #: changed in one week or moved to another, each neighbour simulated (improve.polish; 0: none)
    polish_calls: int = 30
    coverage: float = 0.9             # of the conformal margin on S after the last week
    calibration: int = 19             # seeded random schedules simulated for that margin
    refit_epochs: int = 5             # epochs of each warm-started refit of a network
    out: object = "runs"
    progress: bool = True



#: the longest horizon :func:`run` plans: a year of weekly decisions (the MILP holds one
#: model copy and 37 binaries per week; the README's runs go to 10 weeks)
MAX_WEEKS = 52


def check(cfg: Config) -> None:
    """Refuse settings that would fail or give NaN after training (a time limit <= 0, no
    epochs, a horizon beyond ``MAX_WEEKS``), naming the setting; nothing is written."""
    _options.seconds("time_limit", cfg.time_limit)
    for name in ("epochs", "prune_epochs", "batch_size", "patience", "n_train", "n_test",
                 "prune_keep", "refit_epochs", "calibration"):
        _options.positive_int(name, getattr(cfg, name))
    if isinstance(cfg.oracle_calls, bool) or not isinstance(cfg.oracle_calls, (int, np.integer)) \
            or cfg.oracle_calls < 0:
        raise ValueError(f"oracle_calls = {cfg.oracle_calls!r}: plan simulations per loop row, an "
                         "integer >= 0 (0: the open loop)")
    if isinstance(cfg.polish_calls, bool) or not isinstance(cfg.polish_calls, (int, np.integer)) \
            or cfg.polish_calls < 0:
        raise ValueError(f"polish_calls = {cfg.polish_calls!r}: simulations of the local search after "
                         "each loop, an integer >= 0 (0: none)")
    if not (isinstance(cfg.coverage, float) and 0.0 < cfg.coverage < 1.0):
        raise ValueError(f"coverage = {cfg.coverage!r} must lie in (0, 1), e.g. 0.9")
    if cfg.calibration < cfg.coverage / (1.0 - cfg.coverage) - 1e-9:
        raise ValueError(f"calibration = {cfg.calibration}: a {cfg.coverage:.0%} margin needs at "
                         f"least {int(np.ceil(cfg.coverage / (1.0 - cfg.coverage) - 1e-9))} "
                         "calibration schedules")
    for hz in cfg.horizons:
        if isinstance(hz, bool) or not isinstance(hz, (int, np.integer)) or not 1 <= hz <= MAX_WEEKS:
            raise ValueError(f"horizons: {hz!r} weeks; give 1 to {MAX_WEEKS} (the MILP holds a "
                             "model copy per week)")
    if not (isinstance(cfg.pruned_r2_margin, (int, float)) and 0.0 <= cfg.pruned_r2_margin < 1.0):
        raise ValueError(f"pruned_r2_margin = {cfg.pruned_r2_margin!r} must lie in [0, 1) (R2 lost "
                         "by pruning beyond which a pruned model is not planned with)")
    if not 0.0 < cfg.validation < 1.0:
        raise ValueError(f"validation = {cfg.validation!r} must lie in (0, 1)")
    from emlpress.train import check_sparsities  # the TensorFlow side: imported when used

    check_sparsities(cfg.initial_sparsity, cfg.final_sparsity)
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {out}: is a file; give the directory the run folders go to")



#: the run's settings, written when the folder is made (what ``--resume`` reads and checks)
CONFIG_FILE = "config.json"
#: settings a resume may change: where new folders go, the progress bars
_FREE = ("out", "progress")


def _config_payload(cfg: Config) -> dict:
    return {"pipeline": "epidemics",
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(cfg).items()}}


def load_config(folder) -> Config:
    """The settings an epidemics run folder was started with (``config.json``), to resume
    it; a folder without them (or with another pipeline's) is refused, naming it."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such run folder")
    if not path.exists():
        raise ValueError(f"{folder}: not an epidemics run folder (no {CONFIG_FILE})")
    try:
        payload = json.loads(path.read_text())
        if payload.get("pipeline") != "epidemics":
            raise ValueError(f"written by the {payload.get('pipeline')!r} pipeline")
        known = set(Config.__dataclass_fields__)
        return Config(**{k: v for k, v in payload["config"].items() if k in known})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not the settings of an epidemics run ({e})") from None


def differences(cfg: Config, saved: Config) -> dict:
    """The settings in which ``cfg`` differs from ``saved`` (but ``out`` and ``progress``):
    {name: (cfg's value, saved's value)}, compared as their JSON (a tuple equals a list)."""
    def norm(v):
        return json.loads(json.dumps(v, default=str))

    return {k: (getattr(cfg, k), getattr(saved, k)) for k in Config.__dataclass_fields__
            if k not in _FREE and norm(getattr(cfg, k)) != norm(getattr(saved, k))}


def _model_names(cfg: Config) -> list[str]:
    """The models a run trains, in the order of its summary."""
    names = []
    for t in cfg.topologies:
        names += [n for n, on in ((t, "baseline" in cfg.variants),
                                  (f"{t}+pruned", "pruned" in cfg.variants and TOPOLOGIES[t]),
                                  (f"{t}+int8", "int8" in cfg.variants)) if on]
    return names + (["tree"] if cfg.tree else [])


def _jobs(cfg: Config, hz: int) -> list[tuple[str, str]]:
    """(model, bounding) of every plan row of a horizon, in the summary's order ("-": a model
    that is not a float network; "loop": the planning loop, after the model's MILP rows, for
    every model the loop can refit: not the int8 ones, whose exact MILP takes some 45 s a plan)."""
    return [(name, b) for name in _model_names(cfg)
            for b in [*(cfg.bounding if name != "tree" and "+int8" not in name else ["-"]),
                      *(["loop"] if cfg.loop and "+int8" not in name else [])]]



def _validate(cfg: Config) -> None:
    for t in cfg.topologies:
        if t not in TOPOLOGIES:
            raise ValueError(f"unknown topology {t!r}: one of {sorted(TOPOLOGIES)}")
    for hz in cfg.horizons:
        sir.Instance(weeks=hz, budget=cfg.budget_per_week * hz)  # checks the values
    for given, known, what in ((cfg.variants, VARIANTS, "variant"), (cfg.bounding, BOUNDING, "bounding")):
        bad = [v for v in given if v not in known]
        if bad:
            raise ValueError(f"unknown {what} {bad[0]!r}: one of {known}")
    check(cfg)
    if cfg.tree:  # before any training: the default run's tree needs scikit-learn
        import sklearn.tree  # noqa: F401

