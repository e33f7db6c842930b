"""Keras models and optimizers shared by training, pruning and quantization (tf_keras,
imported only when called: TensorFlow is an extra)."""

from __future__ import annotations

from emlpress.io.keras import tf_keras, to_keras
from emlpress.network import Network


def _tf_keras():
    return tf_keras()


def _keras_model(model):
    """A tf_keras model from a Keras model or a Network (float32 Dense chain)."""
    if isinstance(model, Network):
        return to_keras(model, "float32")
    tf_keras()
    return model


def keras_optimizer(name: str, learning_rate, *, clipnorm: float | None = None,
                    momentum: float | None = None):
    """A fresh tf_keras optimizer by name (``adam``, ``adadelta``, ``sgd``, ...) with its
    learning rate (a number or a Keras schedule), gradient-norm clipping and, for ``sgd``,
    momentum."""
    keras = tf_keras()
    try:
        cls = type(keras.optimizers.get(name))
    except ValueError as e:
        raise ValueError(f"unknown Keras optimizer {name!r}") from e
    extra = {}
    if clipnorm is not None:
        extra["clipnorm"] = float(clipnorm)
    if momentum is not None:
        if name.lower() != "sgd":
            raise ValueError(f"momentum is an option of sgd, not of {name!r}")
        extra["momentum"] = float(momentum)
    return cls(learning_rate=learning_rate, **extra)


def _clean_copy(keras, stripped):
    """A fresh Sequential with the stripped model's Dense layers and weights (strip_pruning's
    layers still belong to the wrapped graph too, with several inbound nodes)."""
    dense = [l for l in stripped.layers if isinstance(l, keras.layers.Dense)]
    layers = [keras.Input(shape=(dense[0].get_weights()[0].shape[0],))]
    layers += [keras.layers.Dense(l.units, activation=l.activation, use_bias=l.use_bias,
                                  name=l.name) for l in dense]
    clean = keras.Sequential(layers)
    for new, old in zip(clean.layers, dense):
        new.set_weights(old.get_weights())
    return clean


def _copy_model(keras, model, pruned: bool):
    """An independent copy of ``model`` (same weights, masks and pruning step; new optimizer):
    TMOT's wrappers hold the wrapped model's own layers, so pruning or refitting a model in
    place would change the result it came from."""
    if pruned:
        import tensorflow_model_optimization as tfmot  # TensorFlow: an extra, imported when called

        with tfmot.sparsity.keras.prune_scope():
            copy = keras.models.clone_model(model)
    else:
        copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy
