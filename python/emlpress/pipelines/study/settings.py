"""The study's settings: its optimizers, regularizations and bound methods, the presets, a
run's :class:`Config` (:func:`config` checks one), the study's own network and its published
figures."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from emlpress.network import Network


@dataclass(frozen=True)
class Optimizer:
    keras: str            # the tf_keras optimizer name
    epochs: int
    learning_rate: float
    decay: float          # learning rate factor per epoch
    clipnorm: float | None
    momentum: float | None = None


#: The study's optimizers: epochs, learning rate, per-epoch decay, gradient-norm clip.
OPTIMIZERS = {
    "adam": Optimizer("adam", 600, 1e-3, 0.95, 5.0),
    "adadelta": Optimizer("adadelta", 2000, 1.5, 0.9985, None),
    "sgd": Optimizer("sgd", 2000, 0.025, 0.998, 5.0),
    "sgd-momentum": Optimizer("sgd", 800, 0.005, 0.995, 5.0, momentum=0.9),
}

_LAMBDAS = ("0.001", "0.01", "0.1", "0.5")
#: The study's 13 regularizations: name -> (l1, l2).
REGULARIZATIONS = {"none": (0.0, 0.0)}
REGULARIZATIONS.update({f"l1={v}": (float(v), 0.0) for v in _LAMBDAS})
REGULARIZATIONS.update({f"l2={v}": (0.0, float(v)) for v in _LAMBDAS})
REGULARIZATIONS.update({f"l1l2={v}": (float(v), float(v)) for v in _LAMBDAS})

METHODS = ("interval", "crown", "lp", "exact")

#: Weight magnitudes below which a zero-weight rule with a tolerance would call a unit's
#: weights zero: the seed_gp row counts such units at each (the middle one, 1e-5, in detail).
TINY_WEIGHTS = (1e-6, 1e-5, 1e-4)

#: The layer widths of the study's networks (and of its own, seed_gp).
STUDY_SIZES = [2, 1024, 512, 512, 256, 1]

#: The study's published compression of its own network (seed_gp) with its LP bounds.
PUBLISHED = {
    "neurons_removed": 1128, "params_before": 922113, "params_after": 325019,
    "removed_inactive": [415, 156, 48, 18], "removed_zero_weight": [17, 0, 0, 0],
    "folded_dependent": [474, 0, 0, 0],
}


@dataclass(frozen=True)
class Preset:
    hidden: tuple
    n_train: int
    n_test: int
    epoch_scale: int          # epochs divided by it (the decay raised to its power)
    batch_size: int
    exact_time_limit: float   # seconds of bounds.stability per model


PRESETS = {
    "study": Preset((1024, 512, 512, 256), 40_000, 8_000, 1, 128, 600.0),
    "quick": Preset((64, 32, 32, 16), 10_000, 2_000, 5, 128, 60.0),
    "test": Preset((8, 8, 4), 600, 300, 400, 64, 10.0),
}


@dataclass
class Config:
    """The settings that decide a run's results (stored in the run folder; a rerun must
    match them)."""

    preset: str = "quick"
    optimizers: list = field(default_factory=lambda: list(OPTIMIZERS))
    regularizations: list = field(default_factory=lambda: list(REGULARIZATIONS))
    seeds: int = 1
    methods: list = field(default_factory=lambda: list(METHODS))
    hidden: list = field(default_factory=list)
    n_train: int = 0
    n_test: int = 0
    epoch_scale: int = 1
    batch_size: int = 128
    exact_time_limit: float = 60.0
    data_seed: int = 12345
    reference: str | None = None   # the study's network (.npz), None: no reference row
    reference_sha256: str | None = None  # its content: a changed file is another configuration


def config(preset: str = "quick", *, optimizers=None, regularizations=None, seeds: int = 1,
           methods=None, reference="auto", **overrides) -> Config:
    """A checked :class:`Config` from a preset and the grid's options (unknown names raise
    ``ValueError`` listing the known ones). ``reference="auto"``: the study's network from
    :func:`default_reference` when it is there; ``None``: no reference row."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    p = PRESETS[preset]
    opts = list(OPTIMIZERS) if optimizers is None else list(optimizers)
    regs = list(REGULARIZATIONS) if regularizations is None else list(regularizations)
    meths = list(METHODS) if methods is None else list(methods)
    for kind, names, known in (("optimizer", opts, OPTIMIZERS),
                               ("regularization", regs, REGULARIZATIONS),
                               ("bound method", meths, METHODS)):
        bad = [n for n in names if n not in known]
        if bad:
            raise ValueError(f"unknown {kind} {', '.join(map(repr, bad))}; known: "
                             f"{', '.join(known)}")
        if not names:
            raise ValueError(f"no {kind} given")
        if len(set(names)) != len(names):
            raise ValueError(f"{kind} given twice: {names}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    if reference == "auto":
        found = default_reference()
        reference = str(found) if found is not None else None
    elif reference is not None:
        path = Path(reference)
        if not path.is_file():
            raise FileNotFoundError(f"reference network {path}: no such file (the study's "
                                    "seed_gp/model.npz)")
        reference = str(path.resolve())
    digest = None
    if reference is not None:
        sizes = Network.load(reference).sizes  # a readable network, or a clear error now
        if list(sizes) != STUDY_SIZES:
            raise ValueError(f"reference network {reference}: sizes {list(sizes)}, not the "
                             f"study's {STUDY_SIZES} (its published figures are of that one)")
        digest = hashlib.sha256(Path(reference).read_bytes()).hexdigest()
    cfg = Config(preset, opts, regs, seeds, meths, list(p.hidden), p.n_train, p.n_test,
                 p.epoch_scale, p.batch_size, p.exact_time_limit, reference=reference,
                 reference_sha256=digest)
    return replace(cfg, **overrides)


def default_reference() -> Path | None:
    """The study's network: ``$EMLPRESS_SEED_GP``, else ``../shared/data/seed_gp/model.npz``
    next to the working directory or to this source tree, else None."""
    env = os.environ.get("EMLPRESS_SEED_GP")
    if env:
        if not Path(env).is_file():
            raise FileNotFoundError(f"$EMLPRESS_SEED_GP = {env!r}: no such file (the study's "
                                    "seed_gp/model.npz)")
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *here.parents):
        p = base.parent / "shared" / "data" / "seed_gp" / "model.npz"
        if p.is_file():
            return p.resolve()
    return None


def params_of(sizes) -> int:
    """Parameters of a dense network with these layer widths (inputs first)."""
    return int(sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:])))


def _key(opt: str, reg: str, seed: int) -> str:
    return f"{opt}_{reg}_s{seed}"

