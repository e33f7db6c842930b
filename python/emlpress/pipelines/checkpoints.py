"""Checkpoints of trained networks (so that a resumed run does not train them again):
:func:`save_fits` writes :class:`emlpress.train.FitResult` s with their Keras models' weights
and layer configuration, :func:`load_fits` rebuilds them, refusing any layer that training
does not make. Used by the TPC and epidemics pipelines."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from emlpress._atomic import json_default, write_atomic
from emlpress.io.keras import tf_keras
from emlpress.network import Network
from emlpress.train import FitResult

__all__ = ["save_fits", "load_fits"]

#: Keras layer classes a checkpoint may hold: what fit_regressor builds (nothing executable)
_CHECKPOINT_LAYERS = {"InputLayer", "Dense", "PruneLowMagnitude"}
_CHECKPOINT_ACTIVATIONS = {"relu", "linear"}


def save_fits(path: Path, fits) -> None:
    """Write a base's trained (error, resources) FitResults to ``path`` atomically: networks,
    scalings, Keras weights (with pruning masks and step) and the layer configuration."""
    arrays, meta = {}, []
    for k, f in enumerate(fits):
        for l, (W, b) in enumerate(zip(f.net.weights, f.net.biases)):
            arrays[f"f{k}_W{l}"], arrays[f"f{k}_b{l}"] = W, b
        arrays[f"f{k}_lo"], arrays[f"f{k}_hi"] = f.net.lo, f.net.hi
        for name, (a, b) in (("x", f.x_range), ("y", f.y_range)):
            arrays[f"f{k}_{name}lo"], arrays[f"f{k}_{name}hi"] = np.asarray(a), np.asarray(b)
        for j, w in enumerate(f.model.get_weights()):
            arrays[f"f{k}_keras{j}"] = w
        meta.append({"layers": len(f.net.weights), "keras_weights": len(f.model.get_weights()),
                     "train_s": f.train_s, "epochs": f.epochs, "sparsity": f.sparsity,
                     "pruned": f.pruned, "history": f.history,
                     "keras_config": f.model.get_config()})
    arrays["meta"] = np.array(json.dumps(meta, default=json_default))

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    write_atomic(path, write)


def load_fits(path: Path) -> tuple:
    """The FitResults :func:`save_fits` wrote (their Keras models rebuilt from the layer
    configuration, refused unless it holds only the layers training makes)."""
    keras = tf_keras()
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays["meta"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a readable checkpoint of trained networks ({e}); "
                         "delete it to train them again") from None
    fits = []
    for k, m in enumerate(meta):
        cfg = m["keras_config"]
        for layer in cfg.get("layers", []):
            inner = layer.get("config", {}).get("layer", layer)  # PruneLowMagnitude wraps a Dense
            for lay in (layer, inner):
                act = lay.get("config", {}).get("activation", "linear")
                if (lay.get("class_name") not in _CHECKPOINT_LAYERS
                        or act not in _CHECKPOINT_ACTIVATIONS):
                    raise ValueError(f"{path}: layer {lay.get('class_name')!r} (activation "
                                     f"{act!r}) is not one training makes; refused")
        if m["pruned"]:
            import tensorflow_model_optimization as tfmot  # TensorFlow: optional, heavy

            with tfmot.sparsity.keras.prune_scope():
                model = keras.Sequential.from_config(cfg)
        else:
            model = keras.Sequential.from_config(cfg)
        model.set_weights([arrays[f"f{k}_keras{j}"] for j in range(m["keras_weights"])])
        net = Network([arrays[f"f{k}_W{l}"] for l in range(m["layers"])],
                      [arrays[f"f{k}_b{l}"] for l in range(m["layers"])],
                      arrays[f"f{k}_lo"], arrays[f"f{k}_hi"])
        fits.append(FitResult(net, m["train_s"], m["epochs"], m["history"], m["sparsity"],
                              (arrays[f"f{k}_xlo"], arrays[f"f{k}_xhi"]),
                              (arrays[f"f{k}_ylo"], arrays[f"f{k}_yhi"]), model, m["pruned"]))
    return tuple(fits)
