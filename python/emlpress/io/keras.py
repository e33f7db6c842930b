"""Keras 2 (tf_keras) import and export. TensorFlow is imported only when called."""

from __future__ import annotations

import os

import numpy as np

from emlpress.io._chain import Affine, Relu, UnsupportedLayerError, build_network
from emlpress.network import Network


def tf_keras():
    """Import tf_keras with the legacy-Keras switch TMOT needs, set before TensorFlow loads."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tf_keras as keras
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(
            "Keras support needs the [keras] extra: pip install 'emlpress[keras]'"
        ) from e
    return keras


def _activation_ops(name: str, where: str) -> list:
    if name == "relu":
        return [Relu(where)]
    if name == "linear":
        return []
    raise UnsupportedLayerError(f"{where}: activation '{name}' is not supported (only relu, linear)")


def from_keras(model_or_path) -> Network:
    """Network from a tf_keras model (Sequential or functional chain) or a ``.h5``/``.keras`` file.

    Supported: ``Dense`` with relu/linear activation, ``ReLU`` (plain), ``Activation('relu')``
    and ``Activation('linear')``, ``InputLayer``. Anything else raises
    :class:`UnsupportedLayerError` naming the layer, its type and its position.
    """
    keras = tf_keras()
    source = "keras model"
    model = model_or_path
    if isinstance(model_or_path, (str, os.PathLike)):
        source = str(model_or_path)
        if not os.path.exists(source):
            raise FileNotFoundError(source)
        model = keras.models.load_model(source, compile=False)
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
            ops += _activation_ops(keras.activations.serialize(layer.activation), where)
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
            ops += _activation_ops(keras.activations.serialize(layer.activation), where)
        else:
            raise UnsupportedLayerError(
                f"{source}: {where} is not supported (only Dense, ReLU, Activation relu/linear)"
            )
    return build_network(ops, source)


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
