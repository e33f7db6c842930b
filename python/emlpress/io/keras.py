"""Keras 2 (tf_keras) import and export. TensorFlow is imported only when called."""

from __future__ import annotations

import os
import sys

import numpy as np

from emlpress.io._chain import Affine, Relu, UnsupportedLayerError, build_network
from emlpress.network import Network


def tf_keras():
    """Import tf_keras with the legacy-Keras switch TMOT needs, set before TensorFlow loads.

    TensorFlow's C++ start-up lines (oneDNN, CUDA drivers, absl) are silenced unless
    ``EMLPRESS_VERBOSE`` is set (the CLI's ``--verbose``): stderr is pointed at /dev/null while
    it loads and runs its first operation, where those lines are written below Python and
    before any log level applies, and ``TF_CPP_MIN_LOG_LEVEL`` defaults to 3, which also hides
    its C++ ERROR lines (in this TensorFlow, harmless ones from every ``fit``). Set
    ``EMLPRESS_VERBOSE=1`` to see them all, e.g. when TensorFlow fails to load."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    quiet = not os.environ.get("EMLPRESS_VERBOSE") and "tensorflow" not in sys.modules
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if os.environ.get("EMLPRESS_VERBOSE") else "3")
    try:
        if quiet:
            from emlpress._quiet import with_fd_on_devnull

            keras = with_fd_on_devnull(2, _import_quietly)
        else:
            import tf_keras as keras
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(
            "Keras support needs the [keras] extra: pip install 'emlpress[keras]'"
        ) from e
    return keras


def _import_quietly():
    import tensorflow as tf
    import tf_keras as keras

    tf.constant(1.0) + 1.0  # the device probe (CUDA drivers) happens at the first operation
    return keras


def _activation_ops(name: str, where: str, source: str) -> list:
    if name == "relu":
        return [Relu(where)]
    if name == "linear":
        return []
    raise UnsupportedLayerError(f"{source}: {where}: activation '{name}' is not supported "
                                "(only relu, linear)")


#: the layer classes a model file may name; anything else is refused from the file's
#: configuration, before Keras builds (or runs) any of it
SAFE_LAYERS = ("InputLayer", "Dense", "ReLU", "Activation")
SAFE_ACTIVATIONS = ("relu", "linear")
_MODELS = ("Sequential", "Functional", "Model")


def check_config(path) -> None:
    """Refuse a ``.h5``/``.keras`` file whose configuration (the HDF5 attribute
    ``model_config``, or the archive's ``config.json``) names a layer outside
    ``SAFE_LAYERS``, an activation outside ``SAFE_ACTIVATIONS`` or an object that is not
    Keras' own (a ``Lambda``'s Python code, a custom layer, initializer or regularizer),
    naming the layer and the file. Only JSON is read: nothing of the file is run, which
    Keras' ``load_model`` would do for a legacy ``.h5`` Lambda layer."""
    import json

    from emlpress.io import ModelFileError

    path = str(path)
    if path.endswith(".h5"):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
        except OSError as e:
            raise ModelFileError(f"{path}: not a Keras HDF5 model file (OSError: {e})") from None
        if raw is None:
            raise ModelFileError(f"{path}: an HDF5 file without a Keras model (no model_config "
                                 "attribute): not a file written by Keras' model.save")
    else:
        import zipfile

        if not zipfile.is_zipfile(path):
            raise ModelFileError(f"{path}: not a Keras model file (not a .keras zip archive)")
        with zipfile.ZipFile(path) as z:
            if "config.json" not in z.namelist():
                raise ModelFileError(f"{path}: a zip archive without config.json: not a file "
                                     "written by Keras' model.save")
            raw = z.read("config.json")
    try:
        cfg = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        layers = cfg["config"]["layers"]
        kind = cfg["class_name"]
    except (ValueError, KeyError, TypeError) as e:
        raise ModelFileError(f"{path}: its Keras model configuration cannot be read "
                             f"({type(e).__name__}: {e})") from None
    if kind not in _MODELS:
        raise UnsupportedLayerError(f"{path}: the model is a {kind!r}, not a Sequential or "
                                    "functional chain (refused before loading it)")
    if kind == "Sequential":  # numbered as model.layers, which leaves the InputLayer out
        layers = [l for l in layers if not (isinstance(l, dict) and l.get("class_name") == "InputLayer")]
    for pos, layer in enumerate(layers):
        kind = layer.get("class_name") if isinstance(layer, dict) else None
        conf = layer.get("config", {}) if isinstance(layer, dict) else {}
        where = f"layer {pos} '{conf.get('name', '?')}' ({kind})"
        if kind not in SAFE_LAYERS:
            raise UnsupportedLayerError(
                f"{path}: {where} is not supported (only {', '.join(SAFE_LAYERS)}); refused "
                "from the file's configuration, nothing in it was run")
        act = conf.get("activation")
        if kind in ("Dense", "Activation") and act not in SAFE_ACTIVATIONS:
            raise UnsupportedLayerError(f"{path}: {where}: activation {act!r} is not supported "
                                        f"(only {', '.join(SAFE_ACTIVATIONS)})")
        foreign = _foreign_object(conf)
        if foreign is not None or not str(layer.get("module", "keras")).startswith(
                ("keras", "tf_keras")):
            raise UnsupportedLayerError(
                f"{path}: {where} uses {foreign or layer.get('module')}, which is not Keras' "
                "own; refused from the file's configuration, nothing in it was run")


def _foreign_object(value):
    """The first object in a layer's configuration that Keras would look up outside its
    own modules (a custom initializer, regularizer or constraint), or None."""
    if isinstance(value, dict):
        if "class_name" in value:
            module = value.get("module")
            registered = value.get("registered_name")
            if (module is not None and not str(module).startswith(("keras", "tf_keras"))) or (
                    registered not in (None, value["class_name"])):
                return f"{value['class_name']} from {module or registered}"
        for v in value.values():
            found = _foreign_object(v)
            if found is not None:
                return found
    elif isinstance(value, list):
        for v in value:
            found = _foreign_object(v)
            if found is not None:
                return found
    return None


def from_keras(model_or_path) -> Network:
    """Network from a tf_keras model (Sequential or functional chain) or a ``.h5``/``.keras`` file.

    Supported: ``Dense`` with relu/linear activation, ``ReLU`` (plain), ``Activation('relu')``
    and ``Activation('linear')``, ``InputLayer``. Anything else raises
    :class:`UnsupportedLayerError` naming the layer, its type and its position.
    """
    source = "keras model"
    model = model_or_path
    if isinstance(model_or_path, (str, os.PathLike)):
        source = str(model_or_path)
        if not os.path.exists(source):
            raise FileNotFoundError(source)
        check_config(source)  # before Keras reads it: a legacy .h5 Lambda runs when loaded
    keras = tf_keras()
    if isinstance(model_or_path, (str, os.PathLike)):
        model = keras.models.load_model(source, compile=False, safe_mode=True)
    domain = read_domain(source) if isinstance(model_or_path, (str, os.PathLike)) else None
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedLayerError(
            f"{source}: only single-input single-output chains are supported "
            f"({len(model.inputs)} inputs, {len(model.outputs)} outputs)"
        )
    ops: list = []
    for pos, layer in enumerate(model.layers):
        kind = type(layer).__name__
        where = f"layer {pos} '{layer.name}' ({kind})"
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if not isinstance(layer, keras.Sequential) and len(layer.inbound_nodes) > 1:
            raise UnsupportedLayerError(f"{source}: {where} is shared between several calls")
        if isinstance(layer, keras.layers.Dense):
            kernel, *rest = layer.get_weights()
            bias = rest[0] if layer.use_bias else np.zeros(kernel.shape[1])
            ops.append(Affine(kernel.T, bias, where))
            ops += _activation_ops(keras.activations.serialize(layer.activation), where, source)
        elif isinstance(layer, keras.layers.ReLU):
            cfg = layer.get_config()
            if cfg.get("max_value") is not None or cfg.get("negative_slope", 0) or cfg.get(
                "threshold", 0
            ):
                raise UnsupportedLayerError(
                    f"{source}: {where} is not a plain ReLU (max_value={cfg.get('max_value')}, "
                    f"negative_slope={cfg.get('negative_slope')}, threshold={cfg.get('threshold')})"
                )
            ops.append(Relu(where))
        elif isinstance(layer, keras.layers.Activation):
            ops += _activation_ops(keras.activations.serialize(layer.activation), where, source)
        else:
            raise UnsupportedLayerError(
                f"{source}: {where} is not supported (only Dense, ReLU, Activation relu/linear)"
            )
    net = build_network(ops, source)
    if domain is not None:
        lo, hi = domain
        if lo.shape != (net.n_in,) or hi.shape != (net.n_in,):
            raise ValueError(f"{source}: its stored input domain has {lo.size} values for "
                             f"{net.n_in} inputs")
        net = net.with_domain(lo, hi)
    return net


DOMAIN_ATTRS = ("emlpress_lo", "emlpress_hi")
DOMAIN_MEMBER = "emlpress_domain.json"


def save_keras(net: Network, path, dtype: str = "float64") -> None:
    """Save ``net`` as a Keras model (``.h5`` or ``.keras``) with its input domain: attributes
    ``emlpress_lo``/``emlpress_hi`` of the HDF5 file's root, or a member
    ``emlpress_domain.json`` of the ``.keras`` archive; :func:`from_keras` reads it back."""
    path = str(path)
    to_keras(net, dtype).save(path)
    if net.lo is None:
        return
    if path.endswith(".h5"):
        import h5py

        with h5py.File(path, "a") as f:
            f.attrs[DOMAIN_ATTRS[0]] = np.asarray(net.lo, float)
            f.attrs[DOMAIN_ATTRS[1]] = np.asarray(net.hi, float)
    else:
        import json
        import zipfile

        with zipfile.ZipFile(path, "a") as z:
            z.writestr(DOMAIN_MEMBER, json.dumps({"lo": [float(v) for v in net.lo],
                                                  "hi": [float(v) for v in net.hi]}))


def read_domain(path) -> tuple[np.ndarray, np.ndarray] | None:
    """The input domain :func:`save_keras` stored in a Keras file, or None."""
    path = str(path)
    if path.endswith(".h5"):
        import h5py

        with h5py.File(path, "r") as f:
            if all(k in f.attrs for k in DOMAIN_ATTRS):
                return tuple(np.asarray(f.attrs[k], float) for k in DOMAIN_ATTRS)
        return None
    import json
    import zipfile

    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as z:
        if DOMAIN_MEMBER not in z.namelist():
            return None
        d = json.loads(z.read(DOMAIN_MEMBER))
    return np.asarray(d["lo"], float), np.asarray(d["hi"], float)


def to_keras(net: Network, dtype: str = "float64"):
    """A tf_keras Sequential model computing the same function as ``net``.

    ``dtype`` defaults to float64 so that an exported (e.g. losslessly compressed) network
    keeps its exactness; pass ``"float32"`` for the usual Keras precision.
    """
    keras = tf_keras()
    layers = [keras.Input(shape=(net.n_in,), dtype=dtype)]
    for l, W in enumerate(net.weights):
        last = l == net.n_layers - 1
        layers.append(keras.layers.Dense(W.shape[0], activation=None if last else "relu", dtype=dtype))
    model = keras.Sequential(layers)
    for dense, W, b in zip(model.layers, net.weights, net.biases):
        dense.set_weights([W.T.copy(), b.copy()])
    return model
