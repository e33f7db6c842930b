"""The study's battery (:mod:`emlpress.pipelines.runner`): one task per model of the grid
(:func:`model_task`: train, then bound, compress and verify with every method) and the study's
own network (:func:`reference_task`); :func:`run` runs them and summarizes."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from emlpress import bounds
from emlpress.bounds.methods import get as bound_method
from emlpress.compress import lossless
from emlpress.data import goldstein
from emlpress.metrics import r2, rmse
from emlpress.network import Network
from emlpress.pipelines import runner
from emlpress.pipelines.study.report import summarize
from emlpress.pipelines.study.settings import OPTIMIZERS, REGULARIZATIONS, TINY_WEIGHTS, Config, _key


def tasks(cfg: Config, folder=None) -> list[runner.Task]:
    """One task per model of the grid, then the reference network's task; with ``folder``,
    each model task also saves its trained network in ``folder/models``."""
    where = None if folder is None else str(Path(folder).resolve())
    # longest first (the most epochs): Dask starts tasks in the order given, and a long task
    # started last would leave the other workers idle at the end
    opts = sorted(cfg.optimizers, key=lambda o: -OPTIMIZERS[o].epochs)
    out = [runner.Task(_key(o, r, s), model_task,
                        dict(cfg=asdict(cfg), optimizer=o, regularization=r, seed=s,
                             folder=where))
           for o in opts for r in cfg.regularizations for s in range(cfg.seeds)]
    if cfg.reference is not None:
        out.append(runner.Task("reference", reference_task,
                                dict(path=cfg.reference, methods=list(cfg.methods),
                                     exact_time_limit=cfg.exact_time_limit)))
    return out


# --- what a task does --------------------------------------------------------------------

#: the study's method labels (its results and tables keep them) as names of the registry of
#: bound methods (emlpress.bounds.methods): the study's "exact" is the exact stable sets
BOUND_METHODS = {"interval": "interval", "crown": "crown", "lp": "lp", "exact": "stability"}


def _bound(net, lo, hi, method: str, threads: int, exact_time_limit: float):
    if method not in BOUND_METHODS:
        raise ValueError(f"unknown bound method {method!r}")
    # exact_time_limit reaches the method that takes a limit (stability) only
    return bound_method(BOUND_METHODS[method]).run(net, lo, hi, threads=threads,
                                                   time_limit=exact_time_limit)


def _compress_all(net, lo, hi, methods, threads: int, exact_time_limit: float):
    """Per method: stable units per layer, units removed per rule and layer, parameters
    left, times, verification; and the bounds themselves, by method."""
    out, found = {}, {}
    for method in methods:
        t0 = time.perf_counter()
        b = _bound(net, lo, hi, method, threads, exact_time_limit)
        bounds_s = time.perf_counter() - t0
        hidden = range(net.n_layers - 1)
        active = [int(b.stably_active(l).sum()) for l in hidden]
        inactive = [int(b.stably_inactive(l).sum()) for l in hidden]
        if isinstance(b, bounds.Stability):
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
    # training is the TensorFlow side (the keras extra): imported when a task trains
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
           "test_mse": mse, "test_rmse": rmse(P, Yt), "test_r2": r2(P, Yt),
           "sizes": list(net.sizes), "params": int(net.n_params),
           "zero_weights": weight_sparsity(net)}
    if folder is not None:
        runner.write_atomic(Path(folder) / "models" / f"{res['model']}.npz", net.save)
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



def run(cfg: Config, folder=None, *, workers: int = 2, threads_per_worker: int = 1,
        native_threads: int | None = None, scheduler: str | None = None,
        timeout: float = 10.0, progress: bool = True) -> runner.BatteryResult:
    """Run (or resume) the study in ``folder`` (default ``runs/study-<preset>``) on a Dask
    battery; see :func:`emlpress.pipelines.runner.run` for the cluster options."""
    folder = Path(folder) if folder is not None else Path("runs") / f"study-{cfg.preset}"
    ts = tasks(cfg, folder)
    try:
        return runner.run(folder, "lossless-study", asdict(cfg), ts, summarize=summarize,
                           workers=workers, threads_per_worker=threads_per_worker,
                           native_threads=native_threads, scheduler=scheduler,
                           timeout=timeout, progress=progress, desc=f"study {cfg.preset}")
    except runner.ConfigMismatch as e:
        if "config.reference" in str(e):
            raise runner.ConfigMismatch(
                f"{e}\nThe reference network is found from $EMLPRESS_SEED_GP or the working "
                "directory unless given: pass the folder's with --reference PATH, or "
                "--no-reference if it had none.") from None
        raise
