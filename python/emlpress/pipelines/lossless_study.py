"""The lossless-compression study, rerun: train a grid of Goldstein-Price regressors, bound them
with every method, compress them losslessly, verify, and compare.

The study (Serra, Kumar and Ramalingam's compression applied to 52 networks
``[2, 1024, 512, 512, 256, 1]``) trained one model per optimizer and regularization, bounded
them by LP only and compared the neurons removed. Here each model is a task of a battery
(:mod:`emlpress.pipelines.battery`, on dask.distributed): train (tf_keras, seeded), then for
each bound method (``interval``, ``crown``, ``lp``, ``exact``: the exact stable sets of
:func:`emlpress.bounds.stability`) bound, compress (:func:`emlpress.compress.lossless`, which
verifies on 100,000 points and raises if the networks differ) and record per layer the units
removed by rule, the parameters left, the test loss and the times. The study's own network
(``seed_gp``) is a fixed task of every run, compared with the study's published figures.

Training follows the study's settings: x in [-1.5, -0.5], y in [-0.5, 0.5], 40,000 training
and 8,000 test samples (uniform, seeded), MSE on the raw inputs and targets (the study's own
network works on raw units: its output layer gives 26 to 11,960 directly), the L1/L2 penalty on
every kernel, fixed epochs (no early stopping), a staircase per-epoch learning-rate decay and
gradient-norm clipping per optimizer (:data:`OPTIMIZERS`). Not stated by the study and chosen
here: batch size 128, SGD momentum 0.9, Keras' default initialisation, and the clipping as
Keras' ``clipnorm`` (each weight tensor's gradient clipped to the norm on its own).

Presets (:data:`PRESETS`): ``study`` is the study's settings; ``quick`` the same grid with
``[2, 64, 32, 32, 16, 1]`` networks, 10,000 training samples and a fifth of the epochs (the
decay raised to the 5th power, so the learning rate ends where the study's does, after 20
times fewer steps); ``test`` a tiny network for the test suite. The study's Adam schedule
(x 0.95 per epoch) leaves about 60 useful epochs; compressed so, it leaves ``quick``'s Adam
about 1,000 useful steps, too few to fit the function: those models come out nearly constant
and the summary says so.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from emlpress._atomic import save_figure_atomic, write_csv_atomic, write_text_atomic
from emlpress.pipelines import battery

__all__ = ["Optimizer", "OPTIMIZERS", "REGULARIZATIONS", "METHODS", "PRESETS", "Config",
           "PUBLISHED", "config", "tasks", "run", "summarize", "model_task", "reference_task",
           "default_reference", "params_of"]


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
        import hashlib

        from emlpress.network import Network

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


def tasks(cfg: Config, folder=None) -> list[battery.Task]:
    """One task per model of the grid, then the reference network's task; with ``folder``,
    each model task also saves its trained network in ``folder/models``."""
    where = None if folder is None else str(Path(folder).resolve())
    # longest first (the most epochs): Dask starts tasks in the order given, and a long task
    # started last would leave the other workers idle at the end
    opts = sorted(cfg.optimizers, key=lambda o: -OPTIMIZERS[o].epochs)
    out = [battery.Task(_key(o, r, s), model_task,
                        dict(cfg=asdict(cfg), optimizer=o, regularization=r, seed=s,
                             folder=where))
           for o in opts for r in cfg.regularizations for s in range(cfg.seeds)]
    if cfg.reference is not None:
        out.append(battery.Task("reference", reference_task,
                                dict(path=cfg.reference, methods=list(cfg.methods),
                                     exact_time_limit=cfg.exact_time_limit)))
    return out


# --- what a task does --------------------------------------------------------------------

#: the study's method labels (its results and tables keep them) as names of the registry of
#: bound methods (emlpress.bounds.methods): the study's "exact" is the exact stable sets
BOUND_METHODS = {"interval": "interval", "crown": "crown", "lp": "lp", "exact": "stability"}


def _bound(net, lo, hi, method: str, threads: int, exact_time_limit: float):
    from emlpress.bounds import methods

    if method not in BOUND_METHODS:
        raise ValueError(f"unknown bound method {method!r}")
    # exact_time_limit reaches the method that takes a limit (stability) only
    return methods.get(BOUND_METHODS[method]).run(net, lo, hi, threads=threads,
                                                  time_limit=exact_time_limit)


def _compress_all(net, lo, hi, methods, threads: int, exact_time_limit: float):
    """Per method: stable units per layer, units removed per rule and layer, parameters
    left, times, verification; and the bounds themselves, by method."""
    from emlpress import bounds as _b
    from emlpress.compress import lossless

    out, found = {}, {}
    for method in methods:
        t0 = time.perf_counter()
        b = _bound(net, lo, hi, method, threads, exact_time_limit)
        bounds_s = time.perf_counter() - t0
        hidden = range(net.n_layers - 1)
        active = [int(b.stably_active(l).sum()) for l in hidden]
        inactive = [int(b.stably_inactive(l).sum()) for l in hidden]
        if isinstance(b, _b.Stability):
            unresolved = [int(b.unresolved(l).sum()) for l in hidden]
            b.check(net)  # every witness re-run through the network
        else:
            unresolved = [0] * len(hidden)
        found[method] = b
        _, rep = lossless(net, lo, hi, bounds=b, threads=threads)
        L = rep.layers
        merged = [int(L.loc[l, "units_before"] - L.loc[l, "removed_inactive"]
                      - L.loc[l, "removed_zero_weight"] - L.loc[l, "folded_dependent"])
                  if bool(L.loc[l, "merged"]) else 0 for l in L.index]
        out[method] = {
            "bounds_s": bounds_s, "compress_s": rep.seconds["compress"],
            "verify_s": rep.seconds.get("verify", float("nan")),
            "stably_active": active, "stably_inactive": inactive, "unresolved": unresolved,
            "removed_inactive": [int(v) for v in L["removed_inactive"]],
            "removed_zero_weight": [int(v) for v in L["removed_zero_weight"]],
            "folded_dependent": [int(v) for v in L["folded_dependent"]],
            "removed_merged": merged,
            "units_after": [int(v) for v in L["units_after"]],
            "neurons_removed": int(rep.neurons_before - rep.neurons_after),
            "params_before": int(rep.params_before), "params_after": int(rep.params_after),
            "layers_after": int(rep.layers_after),
            "max_abs_diff": rep.max_abs_diff, "rel_diff": rep.rel_diff,
            "verify_points": rep.n_points,
        }
    return out, found


def model_task(cfg: dict, optimizer: str, regularization: str, seed: int, threads: int = 1,
               folder: str | None = None) -> dict:
    """Train one model of the grid and compress it with every method (a battery task)."""
    from emlpress.data import goldstein
    from emlpress.train import fit_regressor, weight_sparsity

    c = Config(**cfg)
    o = OPTIMIZERS[optimizer]
    l1, l2 = REGULARIZATIONS[regularization]
    epochs = max(1, round(o.epochs / c.epoch_scale))
    decay = o.decay ** (o.epochs / epochs)  # the schedule ends where the study's does
    X, Y = goldstein.sample(c.n_train, seed=c.data_seed)
    Xt, Yt = goldstein.sample(c.n_test, seed=c.data_seed + 1)
    fit = fit_regressor(X, Y, list(c.hidden), l1=l1, l2=l2, epochs=epochs,
                        batch_size=c.batch_size, learning_rate=o.learning_rate, seed=seed,
                        optimizer=o.keras, lr_decay=decay, clipnorm=o.clipnorm,
                        momentum=o.momentum, scale_targets=False, scale_inputs=False,
                        early_stopping=False, validation=0.0, lo=goldstein.LO, hi=goldstein.HI)
    net = fit.net
    P = net.forward(Xt)[:, 0]
    mse = float(np.mean((P - Yt) ** 2))
    res = {"model": _key(optimizer, regularization, seed), "optimizer": optimizer,
           "regularization": regularization, "seed": seed, "l1": l1, "l2": l2,
           "epochs": epochs, "train_s": fit.train_s,
           "train_loss_final": float(fit.history["loss"][-1]),
           "finite": bool(np.all(np.isfinite(P))),
           "test_mse": mse, "test_rmse": float(np.sqrt(mse)),
           "test_r2": float(1 - mse / np.mean((Yt - Yt.mean()) ** 2)),
           "sizes": list(net.sizes), "params": int(net.n_params),
           "zero_weights": weight_sparsity(net)}
    if folder is not None:
        battery.write_atomic(Path(folder) / "models" / f"{res['model']}.npz", net.save)
    if not res["finite"]:
        res["methods"] = {}
        res["note"] = "training diverged (non-finite outputs): not bounded"
        return res
    res["methods"], _ = _compress_all(net, goldstein.LO, goldstein.HI, c.methods, threads,
                                      c.exact_time_limit)
    return res


def reference_task(path: str, methods: list, exact_time_limit: float, threads: int = 1) -> dict:
    """The study's own network: every method, and the figures that explain the difference
    between emlpress' compression and the published one (a battery task)."""
    from emlpress import bounds
    from emlpress.network import Network

    net = Network.load(path)
    lo, hi = net.domain()
    per_method, found = _compress_all(net, lo, hi, methods, threads, exact_time_limit)
    res = {"model": "reference", "path": path, "sizes": list(net.sizes),
           "params": int(net.n_params), "methods": per_method}
    # What separates the published rules from emlpress' exact ones (see summarize):
    W, b = net.weights, net.biases
    # layer 0: interval bounds are exact up to outward rounding
    ex = found["interval"] if "interval" in found else bounds.interval(net, lo, hi)
    U0, L0 = ex.upper[0], ex.lower[0]
    act0 = L0 >= 0
    rmax = np.abs(W[0]).max(axis=1)
    tiny = (U0 > 0) & (rmax <= TINY_WEIGHTS[1])
    res["analysis"] = {
        "layer0_exact_zero_rows": int((rmax == 0).sum()),
        "layer0_exact_zero_rows_inactive": int(((rmax == 0) & (U0 <= 0)).sum()),
        "layer0_rank_active_weights": int(np.linalg.matrix_rank(W[0][act0])),
        "layer0_rank_active_weights_bias": int(np.linalg.matrix_rank(
            np.c_[W[0][act0], b[0][act0]])),
        "layer0_active": int(act0.sum()),
        "layer0_inactive": int((U0 <= 0).sum()),
        # units not proven inactive whose every weight is at most t in magnitude
        "layer0_tiny_tolerances": list(TINY_WEIGHTS),
        "layer0_tiny_not_inactive": [int(((U0 > 0) & (rmax <= t)).sum()) for t in TINY_WEIGHTS],
        "layer0_tiny_active": [int((act0 & (rmax <= t)).sum()) for t in TINY_WEIGHTS],
        "layer0_tiny_max_upper": float(U0[tiny].max()) if tiny.any() else 0.0,
        "layer0_tiny_max_output_effect": float(
            np.abs(W[1][:, tiny]).sum(axis=1).max() * U0[tiny].max()) if tiny.any() else 0.0,
    }
    if "lp" in found:
        lpb = found["lp"]
        res["analysis"]["inactive_upper_within_1e-7"] = [
            int(((u <= 0) & (u >= -1e-7)).sum()) for u in lpb.upper[:-1]]
    return res


# --- the summary ---------------------------------------------------------------------------

def _rows(results: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    models, layers = [], []
    for key, r in results.items():
        base = {k: r.get(k) for k in ("model", "optimizer", "regularization", "seed",
                                      "test_mse", "test_rmse", "test_r2", "train_s", "epochs",
                                      "params")}
        base["model"] = key
        if not r.get("methods"):  # diverged: not bounded, but not left out either
            models.append(dict(base, method="(not bounded)", note=r.get("note")))
        for m, v in r.get("methods", {}).items():
            row = dict(base, method=m)
            for k in ("bounds_s", "compress_s", "verify_s", "neurons_removed", "params_after",
                      "layers_after", "rel_diff"):
                row[k] = v[k]
            for rule in ("removed_inactive", "removed_zero_weight", "folded_dependent",
                         "removed_merged"):
                row[rule] = int(sum(v[rule]))
            row["stable"] = int(sum(v["stably_active"]) + sum(v["stably_inactive"]))
            row["unresolved"] = int(sum(v["unresolved"]))
            row["task_s"] = r.get("_task", {}).get("seconds")
            models.append(row)
            for l in range(len(v["units_after"])):
                layers.append({"model": key, "optimizer": r.get("optimizer"),
                               "regularization": r.get("regularization"), "seed": r.get("seed"),
                               "method": m, "layer": l, "units": r["sizes"][l + 1],
                               "stably_active": v["stably_active"][l],
                               "stably_inactive": v["stably_inactive"][l],
                               "unresolved": v["unresolved"][l],
                               "removed_inactive": v["removed_inactive"][l],
                               "removed_zero_weight": v["removed_zero_weight"][l],
                               "folded_dependent": v["folded_dependent"][l],
                               "removed_merged": v["removed_merged"][l],
                               "units_after": v["units_after"][l]})
    return pd.DataFrame(models), pd.DataFrame(layers)


def reference_table(r: dict) -> tuple[pd.DataFrame, list[str]]:
    """Per layer and rule: the study's published compression of its network beside emlpress'
    with each method; and the lines that explain the differences (from measured figures)."""
    pub = PUBLISHED
    sizes = r["sizes"]
    hidden = len(sizes) - 2
    rows = []
    for l in range(hidden):
        row = {"layer": l + 1, "study: inactive": pub["removed_inactive"][l],
               "study: zero-weight": pub["removed_zero_weight"][l],
               "study: dependent": pub["folded_dependent"][l]}
        for m, v in r["methods"].items():
            row[f"{m}: inactive"] = v["removed_inactive"][l]
            row[f"{m}: zero-weight"] = v["removed_zero_weight"][l]
            row[f"{m}: dependent"] = v["folded_dependent"][l]
            row[f"{m}: kept"] = v["units_after"][l]
        rows.append(row)
    tab = pd.DataFrame(rows).set_index("layer")
    tot = {"layer": "neurons removed", "study: inactive": pub["neurons_removed"]}
    par = {"layer": "parameters left", "study: inactive": pub["params_after"]}
    for m, v in r["methods"].items():
        tot[f"{m}: inactive"] = v["neurons_removed"]
        par[f"{m}: inactive"] = v["params_after"]
    tab = pd.concat([tab, pd.DataFrame([tot, par]).set_index("layer")])
    a = r.get("analysis", {})
    kept_pub = [sizes[l + 1] - pub["removed_inactive"][l] - pub["removed_zero_weight"][l]
                - pub["folded_dependent"][l] for l in range(hidden)]
    p_pub = params_of([sizes[0], *kept_pub, sizes[-1]])
    # the layer-1 width that the published parameter count implies, the rest as published
    k_imp = [k for k in range(sizes[1] + 1)
             if params_of([sizes[0], k, *kept_pub[1:], sizes[-1]]) == pub["params_after"]]
    lines, decomposition = [], {}
    v = r["methods"].get("lp")
    if v is not None:
        d = {rule: [e - q for e, q in zip(v[rule], pub[rule])]
             for rule in ("removed_inactive", "removed_zero_weight", "folded_dependent")}
        total = v["neurons_removed"] - pub["neurons_removed"]
        decomposition["neurons"] = {"total": total, **{k: sum(x) for k, x in d.items()}}
        lines.append(
            f"Neurons: emlpress with LP bounds removes {v['neurons_removed']:,}, the study "
            f"{pub['neurons_removed']:,}: {total:+} = inactive {sum(d['removed_inactive']):+} "
            f"(per layer {d['removed_inactive']}) + zero-weight "
            f"{sum(d['removed_zero_weight']):+} ({d['removed_zero_weight']}) + dependent "
            f"{sum(d['folded_dependent']):+} ({d['folded_dependent']}).")
    if "layer0_tiny_tolerances" in a:
        s_sum = pub["removed_inactive"][0] + pub["removed_zero_weight"][0]
        tols = ", ".join(f"{n} at {t:g} ({act} of them active)" for t, n, act in zip(
            a["layer0_tiny_tolerances"], a["layer0_tiny_not_inactive"], a["layer0_tiny_active"]))
        lines.append(
            f"Layer 1, inactive and zero-weight: its bounds are exact (one affine layer over the "
            f"box, outward-rounded): {a['layer0_inactive']} units are provably inactive, "
            f"{a['layer0_exact_zero_rows_inactive']} of them with exactly zero weights, which "
            "emlpress counts as zero-weight. The study calls "
            f"{pub['removed_inactive'][0]} inactive and {pub['removed_zero_weight'][0]} "
            f"zero-weight: {s_sum} units, {s_sum - a['layer0_inactive']} more than are "
            "inactive. Units that are not inactive but have every weight at most t in "
            f"magnitude: {tols}; a zero-weight rule with a tolerance removes such units, which "
            f"is not exact (at t = {TINY_WEIGHTS[1]:g} they reach "
            f"{a['layer0_tiny_max_upper']:.2g} in the box, moving a layer-2 pre-activation by "
            f"up to {a['layer0_tiny_max_output_effect']:.2g}), so emlpress keeps them (the "
            "active ones it folds as dependent). The published figures do not say which "
            f"tolerance, nor which of the {a['layer0_inactive']} inactive units the study "
            "counted as zero-weight rather than inactive.")
        lines.append(
            f"Layer 1, linearly dependent: the {a['layer0_active']} stably active rows have "
            f"rank {a['layer0_rank_active_weights']} on the weights and "
            f"{a['layer0_rank_active_weights_bias']} with the bias: emlpress folds the bias "
            "differences into the next layer's biases exactly and keeps "
            f"{a['layer0_rank_active_weights']} rows, a test on [w, b] keeps "
            f"{a['layer0_rank_active_weights_bias']}: one fold less.")
    if "inactive_upper_within_1e-7" in a and v is not None:
        w7 = a["inactive_upper_within_1e-7"]
        lines.append(
            f"Inactive, layers 2-{hidden}: emlpress proves {v['removed_inactive'][1:]} "
            f"(certified LP bounds), the study {pub['removed_inactive'][1:]}. Units whose "
            f"certified upper bound lies in [-1e-7, 0], per layer (from 1): {w7}: an LP "
            "solver's feasibility tolerance (about 1e-7) decides those, so bounds taken at the "
            "solver's word can call fewer units inactive.")
    lines.append(
        f"Parameters: a network with the published neuron counts (kept {kept_pub}) has "
        f"{p_pub:,} parameters, not {pub['params_after']:,}; with layers 2-{hidden} as "
        "published, the published parameter count is that of layer 1 keeping "
        + (f"{k_imp[0]} units" if k_imp else "no whole number of units")
        + ": the two published figures are not of one network.")
    if v is not None and k_imp:
        # from the network the published parameter count describes to emlpress' (LP), one
        # layer at a time: the steps sum to the whole difference
        widths = [k_imp[0], *kept_pub[1:]]
        steps = []
        for l, k in enumerate(v["units_after"]):
            if k != widths[l]:
                before = params_of([sizes[0], *widths, sizes[-1]])
                old, widths[l] = widths[l], k
                steps.append((l + 1, old, k, params_of([sizes[0], *widths, sizes[-1]]) - before))
        decomposition["params"] = {"total": v["params_after"] - pub["params_after"],
                                   "steps": steps}
        lines.append(
            f"Against that network, emlpress (LP) keeps {v['units_after']}: "
            f"{v['params_after'] - pub['params_after']:+,} parameters = "
            + " + ".join(f"layer {l}: {o} -> {k} units ({dp:+,})" for l, o, k, dp in steps)
            + ".")
    if "exact" in r["methods"] and v is not None:
        e = r["methods"]["exact"]
        lines.append(
            f"Exact stable sets (bounds.stability, {sum(e['unresolved'])} units unresolved): "
            f"{e['neurons_removed']:,} units removed, {e['params_after']:,} parameters left: "
            f"{e['neurons_removed'] - v['neurons_removed']:+,} units and "
            f"{e['params_after'] - v['params_after']:+,} parameters against LP "
            f"(kept {e['units_after']} vs {v['units_after']}).")
    tab.attrs["decomposition"] = decomposition
    return tab, lines


def summarize(folder, results: dict) -> dict:
    """Rebuild the run folder's tables, plots and ``summary.md`` from the task results."""
    folder = Path(folder)
    ref = results.get("reference")
    grid = {k: v for k, v in results.items() if k != "reference"}
    models, layers = _rows(grid)
    out = {"models": models, "layers": layers, "notes": []}
    if "method" in models and (models["method"] == "(not bounded)").any():
        bad = models.loc[models["method"] == "(not bounded)", "model"].tolist()
        out["notes"].append(f"{len(bad)} models diverged in training (non-finite outputs) and "
                            f"were not bounded: {', '.join(bad)}")
        models = models[models["method"] != "(not bounded)"]
    write_csv_atomic(folder / "models.csv", models)
    write_csv_atomic(folder / "layers.csv", layers)
    md = ["# Lossless-compression study", ""]
    if not models.empty:
        removed = models.pivot_table(index=["optimizer", "regularization"], columns="method",
                                     values="neurons_removed", aggfunc="mean")
        params = models.pivot_table(index=["optimizer", "regularization"], columns="method",
                                    values="params_after", aggfunc="mean")
        fit = models.groupby(["optimizer", "regularization"])[["test_rmse", "test_r2"]].mean()
        table = removed.add_prefix("removed: ").join(params.add_prefix("params: "))
        table["test RMSE"], table["test R2"] = fit["test_rmse"], fit["test_r2"]
        out["table"] = table
        md += ["Neurons removed and parameters left per model (mean over seeds) and method; "
               "test RMSE in the function's units.", "", table.to_markdown(floatfmt=".3g"), ""]
        poor = fit[fit["test_r2"] < 0.9]
        if len(poor):
            sel = models.set_index(["optimizer", "regularization"]).index.isin(poor.index)
            best = next(m for m in reversed(METHODS) if m in set(models["method"]))
            ex = models[sel & (models["method"] == best)]
            units = layers[layers["method"] == best].groupby("model")["units"].sum()
            dead = float((ex["removed_inactive"] / ex["model"].map(units)).mean())
            out["notes"].append(
                f"{len(poor)} of {len(fit)} settings fit the function poorly (test R2 < 0.9: "
                f"{', '.join(f'{o} {r}' for o, r in poor.index)}): with "
                f"{ex['method'].iloc[0]} bounds {dead:.0%} of their hidden units are stably "
                "inactive on average, so they compress well because they learnt little.")
        md += [f"Note: {n}" for n in out["notes"]] + ([""] if out["notes"] else [])
        by_m = models.groupby("method")[["neurons_removed", "params_after", "stable",
                                         "bounds_s", "compress_s", "task_s"]].mean()
        out["by_method"] = by_m
        md += ["Mean over models, by method (seconds per model):", "",
               by_m.to_markdown(floatfmt=".3g"), ""]
    if ref is not None:
        tab, lines = reference_table(ref)
        out["reference"], out["reference_notes"] = tab, lines
        write_csv_atomic(folder / "reference.csv", tab, index=True)
        md += ["## The study's own network (seed_gp)", "", tab.to_markdown(floatfmt=".0f"), ""]
        md += [f"- {x}" for x in lines] + [""]
    out["plots"] = _plots(folder, models, layers)
    write_text_atomic(folder / "summary.md", "\n".join(md))
    return out


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)
    plt.close(fig)
    return path


def _plots(folder: Path, models: pd.DataFrame, layers: pd.DataFrame) -> list[Path]:
    if models.empty:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    methods = [m for m in METHODS if m in set(models["method"])]
    colors = dict(zip(METHODS, ["#bbbbbb", "#7fa7d9", "#2c6fbb", "#d95f02"]))
    opts = [o for o in OPTIMIZERS if o in set(models["optimizer"])]
    regs = [r for r in REGULARIZATIONS if r in set(models["regularization"])]
    mean = models.groupby(["optimizer", "regularization", "method"])["neurons_removed"].mean()
    fig, axes = plt.subplots(len(opts), 1, figsize=(max(6, 0.75 * len(regs) + 2),
                                                   2.6 * len(opts)), squeeze=False, sharey=True)
    width = 0.8 / len(methods)
    first = layers[(layers["model"] == layers["model"].iloc[0])
                   & (layers["method"] == layers["method"].iloc[0])]
    total = int(first["units"].sum())
    for ax, o in zip(axes[:, 0], opts):
        x = np.arange(len(regs))
        for i, m in enumerate(methods):
            y = [mean.get((o, r, m), np.nan) for r in regs]
            ax.bar(x + (i - (len(methods) - 1) / 2) * width, y, width, label=m, color=colors[m])
        ax.set_xticks(x, regs, rotation=30, ha="right", fontsize=8)
        ax.set_title(o, fontsize=10, loc="left")
        ax.set_ylabel(f"neurons removed\n(of {total})", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(ncol=len(methods), fontsize=8, loc="upper left")
    seeds = int(models.groupby(["optimizer", "regularization", "method"]).size().max())
    fig.suptitle("Neurons removed by lossless compression, by bound method"
                 + (f" (mean over {seeds} seeds)" if seeds > 1 else ""))
    paths.append(_save(fig, folder / "removed_by_method.png"))

    rules = ["removed_inactive", "removed_zero_weight", "folded_dependent", "removed_merged"]
    rule_colors = ["#1b9e77", "#e6ab02", "#7570b3", "#e7298a"]
    lay = layers.groupby(["method", "layer"])[rules + ["units"]].mean()
    n_layers = int(layers["layer"].max()) + 1
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3.4), sharey=True,
                             squeeze=False)
    for ax, m in zip(axes[0], methods):
        bottom = np.zeros(n_layers)
        for rule, c in zip(rules, rule_colors):
            y = np.array([lay.loc[(m, l), rule] if (m, l) in lay.index else 0
                          for l in range(n_layers)])
            ax.bar(np.arange(n_layers) + 1, y, bottom=bottom, color=c,
                   label=rule.replace("removed_", "").replace("_", " "))
            bottom += y
        units = [lay.loc[(m, l), "units"] for l in range(n_layers) if (m, l) in lay.index]
        ax.plot(np.arange(len(units)) + 1, units, "k_", markersize=18, label="units")
        ax.set_title(m, fontsize=10)
        ax.set_xlabel("hidden layer")
        ax.set_xticks(np.arange(n_layers) + 1)
    axes[0, 0].set_ylabel("units removed (mean over models)")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle("Removal by layer and rule")
    paths.append(_save(fig, folder / "removed_by_layer.png"))

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    markers = dict(zip(METHODS, ["o", "s", "^", "D"]))
    ocolors = dict(zip(OPTIMIZERS, ["#1b9e77", "#d95f02", "#7570b3", "#e7298a"]))
    for m in methods:
        for o in opts:
            d = models[(models["method"] == m) & (models["optimizer"] == o)]
            ax.scatter(d["params_after"], d["test_rmse"], marker=markers[m], color=ocolors[o],
                       alpha=0.75, s=22)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", color=ocolors[o], label=o) for o in opts]
    handles += [Line2D([], [], ls="", marker=markers[m], color="0.4", label=m) for m in methods]
    ax.legend(handles=handles, fontsize=7, ncol=2, title="colour: optimizer, marker: method",
              title_fontsize=7)
    ax.set_xlabel("parameters left after lossless compression")
    ax.set_ylabel("test RMSE")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.set_title("Test loss against parameters left")
    paths.append(_save(fig, folder / "loss_vs_params.png"))
    return paths


def run(cfg: Config, folder=None, *, workers: int = 2, threads_per_worker: int = 1,
        native_threads: int | None = None, scheduler: str | None = None,
        timeout: float = 10.0, progress: bool = True) -> battery.BatteryResult:
    """Run (or resume) the study in ``folder`` (default ``runs/study-<preset>``) on a Dask
    battery; see :func:`emlpress.pipelines.battery.run` for the cluster options."""
    folder = Path(folder) if folder is not None else Path("runs") / f"study-{cfg.preset}"
    ts = tasks(cfg, folder)
    try:
        return battery.run(folder, "lossless-study", asdict(cfg), ts, summarize=summarize,
                           workers=workers, threads_per_worker=threads_per_worker,
                           native_threads=native_threads, scheduler=scheduler,
                           timeout=timeout, progress=progress, desc=f"study {cfg.preset}")
    except battery.ConfigMismatch as e:
        if "config.reference" in str(e):
            raise battery.ConfigMismatch(
                f"{e}\nThe reference network is found from $EMLPRESS_SEED_GP or the working "
                "directory unless given: pass the folder's with --reference PATH, or "
                "--no-reference if it had none.") from None
        raise
