"""TMOT magnitude pruning of tf_keras models (the ``[keras]`` extra; TensorFlow Model
Optimization is imported only when called)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emlpress.keras.models import _clean_copy, _keras_model, _tf_keras, keras_optimizer

__all__ = ["check_sparsities", "prune", "PruneResult", "pruning_schedule", "layer_sparsity"]


def _per_layer(initial, final, n_layers: int) -> list[tuple[float, float]]:
    """(initial, final) sparsity per Dense layer from numbers or sequences of ``n_layers``."""
    pairs = []
    for name, v in (("initial_sparsity", initial), ("final_sparsity", final)):
        v = np.broadcast_to(np.asarray(v, float), (n_layers,)) if np.ndim(v) == 0 else np.asarray(v, float)
        if v.shape != (n_layers,):
            raise ValueError(f"{name}: {v.size} values for {n_layers} Dense layers; give one per layer")
        pairs.append(v)
    return [check_sparsities(a, b) for a, b in zip(*pairs)]


def check_sparsities(initial, final) -> tuple[float, float]:
    """The pruning schedule's sparsities: 0 <= initial <= final < 1."""
    s0, s1 = float(initial), float(final)
    if not (0.0 <= s0 <= s1 < 1.0):
        raise ValueError("pruning sparsities must satisfy 0 <= initial <= final < 1, got "
                         f"initial_sparsity={initial!r}, final_sparsity={final!r}")
    return s0, s1


@dataclass
class PruneResult:
    """``model``: the pruned model, wrappers stripped (a plain Sequential of Dense layers);
    ``wrapped``: the TMOT-wrapped model (to continue training with the masks fixed);
    ``sparsity``: per Dense layer name, the fraction of exactly-zero kernel weights reached;
    ``end_step``: the schedule's end step, from the training set's size and the epochs."""

    model: object
    wrapped: object
    sparsity: dict
    end_step: int
    history: dict = field(default_factory=dict)


def pruning_schedule(initial_sparsity: float, final_sparsity: float, n_train: int, epochs: int,
                     batch_size: int, recovery: float = 0.25):
    """TMOT's ``PolynomialDecay`` from ``initial_sparsity`` to ``final_sparsity`` ending after
    ``1 - recovery`` of the training steps (``epochs * ceil(n_train / batch_size)``); the
    rest trains at the final sparsity. Masks update about ten times over the run (TMOT's default
    of every 100 steps is never on small data)."""
    s0, s1 = check_sparsities(initial_sparsity, final_sparsity)
    if n_train < 1 or epochs < 1 or batch_size < 1:
        raise ValueError(f"pruning needs n_train, epochs and batch_size >= 1, got "
                         f"{n_train}, {epochs}, {batch_size}")
    if not 0.0 <= recovery < 1.0:
        raise ValueError(f"recovery must be in [0, 1), got {recovery!r}")
    import tensorflow_model_optimization as tfmot  # TensorFlow: an extra, imported when called

    steps = epochs * int(np.ceil(n_train / batch_size))
    end = max(1, int(steps * (1.0 - recovery)))
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=s0, final_sparsity=s1, begin_step=0, end_step=end,
        frequency=max(1, min(100, steps // 10))), end


def layer_sparsity(model) -> dict:
    """Per Dense layer of a (stripped) Keras model: the fraction of exactly-zero kernel weights."""
    keras = _tf_keras()
    return {l.name: float(np.mean(l.get_weights()[0] == 0))
            for l in model.layers if isinstance(l, keras.layers.Dense)}


def prune(model, initial_sparsity: float, final_sparsity: float, X, Y, *, epochs: int = 30,
          batch_size: int = 32, validation_data=None, optimizer="adam", learning_rate: float = 1e-3,
          loss: str = "mse", recovery: float = 0.25, verbose: int = 0) -> PruneResult:
    """Magnitude-prune ``model`` (a tf_keras model or a Network) with TMOT while training it
    on ``X, Y`` for ``epochs``: polynomial sparsity from ``initial_sparsity`` to
    ``final_sparsity`` (see :func:`pruning_schedule`), then the wrappers are stripped. Returns a
    :class:`PruneResult` with the sparsity actually reached per layer (measured on the weights;
    TMOT rounds per layer). ``optimizer``: a Keras optimizer name or instance.
    ``initial_sparsity`` and ``final_sparsity`` may be sequences with one value per Dense layer
    (a layer of final sparsity 0 is left dense): small layers then keep their weights."""
    keras = _tf_keras()
    import tensorflow_model_optimization as tfmot  # after _tf_keras(): TF_USE_LEGACY_KERAS first

    model = _keras_model(model)
    per_layer = np.ndim(initial_sparsity) or np.ndim(final_sparsity)
    X = np.asarray(X, np.float32)
    Y = np.asarray(Y, np.float32)
    if Y.ndim == 1:
        Y = Y[:, None]
    if len(X) != len(Y):
        raise ValueError(f"X has {len(X)} rows and Y {len(Y)}")
    if per_layer:  # a schedule per Dense layer; a final sparsity of 0 leaves the layer dense
        dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
        pairs = _per_layer(initial_sparsity, final_sparsity, len(dense))
        schedules, end = {}, 1
        for layer, (s0, s1) in zip(dense, pairs):
            if s1 > 0.0:
                schedules[id(layer)], end = pruning_schedule(s0, s1, len(X), epochs, batch_size,
                                                             recovery)

        def wrap(layer):
            if id(layer) in schedules:
                return tfmot.sparsity.keras.prune_low_magnitude(layer,
                                                                pruning_schedule=schedules[id(layer)])
            return layer

        wrapped = keras.models.clone_model(model, clone_function=wrap)
    else:
        schedule, end = pruning_schedule(initial_sparsity, final_sparsity, len(X), epochs,
                                         batch_size, recovery)
        wrapped = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    if isinstance(optimizer, str):
        optimizer = keras_optimizer(optimizer, learning_rate)
    wrapped.compile(optimizer=optimizer, loss=loss)
    hist = wrapped.fit(X, Y, validation_data=validation_data, epochs=epochs, batch_size=batch_size,
                       callbacks=[tfmot.sparsity.keras.UpdatePruningStep()], verbose=verbose,
                       shuffle=True)
    clean = _clean_copy(keras, tfmot.sparsity.keras.strip_pruning(wrapped))
    return PruneResult(clean, wrapped, layer_sparsity(clean), end, hist.history)
