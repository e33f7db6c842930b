"""The models an epidemics run plans with: each topology's network trained (tf_keras), its
TMOT-pruned fine-tuning, its int8 model and the PTQ modes' table, a decision tree; saved in
the run folder's ``models/`` (kept by a resume), and measured on held-out data."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np

from emlpress._atomic import write_atomic, write_bytes_atomic, write_csv_atomic, write_json_atomic
from emlpress.io.tflite import QuantizedNetwork
from emlpress.network import Network
from emlpress.pipelines.checkpoints import load_fits, save_fits
from emlpress.pipelines.epidemics.config import TOPOLOGIES, Config
from emlpress.pipelines.epidemics.folder import TRAIN_TIMES, _model_path, _save_model, _train_times
from emlpress.pipelines.epidemics.model import TRAINING_BOX


def _parameters(model) -> dict:
    """The arrays a model is, in the types it computes with: a network's float32 weights
    (Keras trains in float32), an int8 model's int8 weights, int32 biases and scales, a tree's
    nodes."""
    if isinstance(model, Network):
        return {f"{k}{l}": a.astype(np.float32) for l, (W, b) in enumerate(zip(model.weights, model.biases))
                for k, a in (("W", W), ("b", b))}
    if isinstance(model, QuantizedNetwork):
        out = {f"{k}{l}": a for l, L in enumerate(model.layers)
               for k, a in (("W", L.W.astype(np.int8)), ("b", L.b.astype(np.int32)))}
        out["scale"] = np.concatenate([L.scale for L in model.layers]).astype(np.float32)
        out["meta"] = np.array([model.s_in, model.z_in] + [v for L in model.layers
                                                            for v in (L.s_out, L.z_out)], np.float32)
        return out
    t = model.tree_
    return {"feature": t.feature, "threshold": t.threshold, "children_left": t.children_left,
            "children_right": t.children_right, "value": t.value}


def _size(model) -> tuple[int, int]:
    """(bytes of the model's parameters as one deflated .npz: the same format for every model,
    bytes of the parameters themselves). On models this small the container's headers (some
    200 bytes an array) can outweigh the parameters."""
    arrays = _parameters(model)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getbuffer().nbytes, int(sum(a.nbytes for a in arrays.values()))



def layer_sparsities(sizes, initial: float, final: float, keep: int) -> tuple[list, list]:
    """The pruning schedule per Dense layer of a ``sizes`` network: (initial, final) sparsity
    lists. A layer of fan-in ``n`` is pruned to ``min(final, 1 - keep / n)``, so that its units
    keep ``keep`` weights each on average; a layer of fan-in ``<= keep`` stays dense (0, 0).
    The study's one schedule (0.2 -> 0.9) on 8-unit layers leaves a unit under one weight
    (held-out R2 about 0)."""
    fins = [max(0.0, min(float(final), 1.0 - keep / n)) for n in sizes[:-1]]
    return [min(float(initial), f) for f in fins], fins


def pruning_summary(net: Network) -> dict:
    """The sparsity a network actually has: the fraction of exactly-zero weights over all
    its matrices (``sparsity``) and per layer (``layer_sparsity``, space-separated)."""
    per = [float(np.mean(W == 0)) for W in net.weights]
    total = sum(int((W == 0).sum()) for W in net.weights) / sum(W.size for W in net.weights)
    return {"sparsity": float(total), "layer_sparsity": " ".join(f"{v:.3f}" for v in per)}


def _savez(path, arrays) -> None:
    with open(path, "wb") as f:  # a file object: np.savez would add .npz to the name
        np.savez(f, **arrays)



def train_models(cfg: Config, folder: Path, Xtr, Ytr, Xte, Yte, topologies: list,
                 with_tree: bool) -> dict:
    """The models of ``topologies`` (and the tree if ``with_tree``), trained or (on a resume) read
    back from ``folder/models``: {name: (model, train_s, path)}; each topology's
    ``ptq_<topology>.csv`` written beside. ``Xtr``, ``Ytr`` (n, 4) and (n, 3): the training
    data; ``Xte``, ``Yte`` held out."""
    # training, TMOT and PTQ are the TensorFlow side (the keras extra): imported when used
    from emlpress.train import fit_regressor

    lo, hi = TRAINING_BOX
    models = {}
    times = _train_times(folder)
    common = dict(batch_size=cfg.batch_size, seed=cfg.seed, learning_rate=cfg.learning_rate,
                  lo=lo, hi=hi, validation=cfg.validation)
    for name in topologies:
        base_path = _model_path(folder, name)
        prune_path = _model_path(folder, f"{name}+pruned")
        int8_path = _model_path(folder, f"{name}+int8")
        ckpt = folder / "models" / f"{name}_fit.npz"  # the Keras fit pruning continues from
        want_pruned = "pruned" in cfg.variants and bool(TOPOLOGIES[name]) and not prune_path.exists()
        want_net = (("baseline" in cfg.variants and not base_path.exists())
                    or ("int8" in cfg.variants and not int8_path.exists())
                    or (cfg.ptq_table and not (folder / f"ptq_{name}.csv").exists()))
        fit, net, base_s = None, None, times.get(name)
        if (want_pruned or want_net) and ckpt.exists():  # the trained fit, not trained again
            fit, = load_fits(ckpt)
        elif want_net and not want_pruned and base_path.exists():
            net = Network.load(base_path)
        elif want_pruned or want_net:
            t0 = time.perf_counter()
            fit = fit_regressor(Xtr, Ytr, TOPOLOGIES[name], epochs=cfg.epochs, patience=cfg.patience,
                                **common)
            base_s = time.perf_counter() - t0
            if want_pruned:  # before the baseline's file: a kept baseline has its checkpoint
                save_fits(ckpt, (fit,))
        if fit is not None:
            net = fit.net
            base_s = fit.train_s if base_s is None else base_s
        if "baseline" in cfg.variants:
            if not base_path.exists():
                _save_model(folder, cfg, name, base_s, lambda p, net=net: write_atomic(p, net.save))
            models[name] = (Network.load(base_path), times.get(name, base_s), base_path)
        elif base_s is not None and name not in times:  # the pruned and int8 times start here
            times[name] = base_s
            write_json_atomic(folder / TRAIN_TIMES, {**_train_times(folder), name: base_s})
        times = _train_times(folder)
        if "pruned" in cfg.variants and TOPOLOGIES[name]:
            key = f"{name}+pruned"
            if not prune_path.exists():
                t0 = time.perf_counter()
                sizes = [Xtr.shape[1], *TOPOLOGIES[name], Ytr.shape[1]]
                pruned = fit_regressor(Xtr, Ytr, TOPOLOGIES[name], epochs=cfg.prune_epochs, init=fit,
                                       pruning=layer_sparsities(sizes, cfg.initial_sparsity,
                                                                cfg.final_sparsity, cfg.prune_keep),
                                       **common)
                _save_model(folder, cfg, key, times[name] + time.perf_counter() - t0,
                            lambda p, pruned=pruned: write_atomic(p, pruned.net.save))
                times = _train_times(folder)
            models[key] = (Network.load(prune_path), times[key], prune_path)
        if "int8" in cfg.variants or cfg.ptq_table:
            from emlpress.compress.lossy import quantization_table, quantize

            if "int8" in cfg.variants:
                key = f"{name}+int8"
                if not int8_path.exists():
                    t0 = time.perf_counter()
                    content = quantize(net, "int8-fallback", representative=Xtr)
                    _save_model(folder, cfg, key, times[name] + time.perf_counter() - t0,
                                lambda p, content=content: write_bytes_atomic(p, content))
                    times = _train_times(folder)
                q = QuantizedNetwork.from_tflite(int8_path.read_bytes())
                q.lo, q.hi = lo, hi
                models[key] = (q, times[key], int8_path)
            if cfg.ptq_table and not (folder / f"ptq_{name}.csv").exists():
                write_csv_atomic(folder / f"ptq_{name}.csv",
                                 quantization_table(net, Xte, Yte, representative=Xtr))
    if with_tree:
        from sklearn.tree import DecisionTreeRegressor  # slow to import: only for a tree

        t0 = time.perf_counter()
        tree = DecisionTreeRegressor(max_depth=cfg.tree_depth, random_state=cfg.seed).fit(Xtr, Ytr)
        arrays = _parameters(tree)
        path = _model_path(folder, "tree")
        if path.exists():  # seeded: the refit is the saved tree, or the folder was changed
            with np.load(path, allow_pickle=False) as z:
                if set(z.files) != set(arrays) or any(not np.array_equal(z[k], a) for k, a in arrays.items()):
                    raise ValueError(f"{path}: differs from the tree these settings fit; the "
                                     "folder was changed since the run started")
            models["tree"] = (tree, times["tree"], path)
        else:
            _save_model(folder, cfg, "tree", time.perf_counter() - t0,
                        lambda p: write_atomic(p, lambda tmp: _savez(tmp, arrays)))
            models["tree"] = (tree, _train_times(folder)["tree"], path)
    for name in topologies:  # every pruned model of theirs is saved
        (folder / "models" / f"{name}_fit.npz").unlink(missing_ok=True)
    return models


def evaluate(models: dict, Xte, Yte, cfg: Config | None = None) -> tuple[dict, dict]:
    """Each model's held-out metrics (by :func:`emlpress.compress.lossy.regression_metrics`)
    and its sizes (:func:`_size`), by name. A network's metrics hold the sparsity it reached
    (:func:`pruning_summary`); a pruned one's (with ``cfg``) its schedule per layer, its
    baseline's R2 beside its own and ``flag``: why it is not planned with (its R2 of S, I or
    R below the baseline's by more than ``cfg.pruned_r2_margin``), else empty."""
    # each model's held-out metrics, once (the int8 ones by the reference interpreter)
    from emlpress.compress.lossy import regression_metrics  # the keras side, as above

    metrics = {name: regression_metrics(model.interpreter_float(Xte) if hasattr(model, "interpreter_float")
                                        else model.forward(Xte) if isinstance(model, Network)
                                        else model.predict(Xte), Yte, "SIR")
               for name, (model, _, _) in models.items()}
    for name, (model, _, _) in models.items():
        if isinstance(model, Network):
            metrics[name].update(pruning_summary(model))
        if cfg is not None and name.endswith("+pruned"):
            metrics[name].update(_pruned_check(cfg, name, model, metrics))
    sizes = {name: _size(model) for name, (model, _, _) in models.items()}
    return metrics, sizes


def _pruned_check(cfg: Config, name: str, model: Network, metrics: dict) -> dict:
    """A pruned model's schedule, its baseline's held-out R2 and the flag (see evaluate)."""
    base = name.split("+")[0]
    _, fins = layer_sparsities(model.sizes, cfg.initial_sparsity, cfg.final_sparsity, cfg.prune_keep)
    out = {"prune_schedule": " ".join(f"{f:.3f}" for f in fins), "flag": ""}
    if base not in metrics:  # the baseline variant was not asked for: nothing to compare with
        return out
    own, ref = metrics[name], metrics[base]
    loss = {t: ref[f"r2_{t}"] - own[f"r2_{t}"] for t in "SIR"}
    out.update({f"baseline_r2_{t}": ref[f"r2_{t}"] for t in "SIR"})
    out["r2_loss"] = max(loss.values())
    worst = max(loss, key=loss.get)
    if not out["r2_loss"] <= cfg.pruned_r2_margin:  # NaN R2 is flagged too
        out["flag"] = (f"pruned model's held-out R2 of {worst} {own[f'r2_{worst}']:.4f} is below the "
                       f"baseline's {ref[f'r2_{worst}']:.4f} by more than pruned_r2_margin = "
                       f"{cfg.pruned_r2_margin:g} (sparsity reached {own['sparsity']:.3f}): not "
                       "planned with")
    return out
