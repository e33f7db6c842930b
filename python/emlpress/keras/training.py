"""Seeded training of ReLU regressors with tf_keras (the ``[keras]`` extra).

Inputs and targets are min-max scaled for training; the scalings are affine, so they are
folded exactly into the first and last layers and the returned Network works in raw units.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from emlpress.io.keras import from_keras as from_keras_model, tf_keras
from emlpress.keras.models import _clean_copy, _copy_model, keras_optimizer
from emlpress.keras.pruning import prune
from emlpress.network import Network

__all__ = ["FitResult", "fit_regressor", "weight_sparsity", "fold_scaling"]


@dataclass
class FitResult:
    net: Network
    train_s: float
    epochs: int
    history: dict
    sparsity: float = 0.0  # fraction of exactly-zero weights reached (pruning)
    x_range: tuple = ()  # (lo, hi) of the min-max input normalisation (training data)
    y_range: tuple = ()  # (lo, hi) of the min-max target normalisation
    model: object = None  # the Keras model (TMOT-wrapped when pruned), to continue training from
    pruned: bool = False


def weight_sparsity(net: Network) -> float:
    """Fraction of exactly-zero entries over all weight matrices."""
    total = sum(W.size for W in net.weights)
    return float(sum(int((W == 0).sum()) for W in net.weights) / total)


def fold_scaling(net: Network, x_lo, x_hi, y_lo, y_hi, lo=None, hi=None) -> Network:
    """Network on raw units from one trained on ``(x - x_lo)/(x_hi - x_lo)`` with targets
    scaled the same way: x' = D x + e goes into layer 0, y = S y' + y_lo into the last."""
    dx = 1.0 / (np.asarray(x_hi, float) - np.asarray(x_lo, float))
    Ws, bs = list(net.weights), list(net.biases)
    bs[0] = bs[0] - Ws[0] @ (np.asarray(x_lo, float) * dx)
    Ws[0] = Ws[0] * dx[None, :]
    sy = np.asarray(y_hi, float) - np.asarray(y_lo, float)
    Ws[-1] = Ws[-1] * sy[:, None]
    bs[-1] = bs[-1] * sy + np.asarray(y_lo, float)
    return Network(Ws, bs, lo, hi)


def fit_regressor(
    X: np.ndarray,
    Y: np.ndarray,
    hidden: list[int],
    *,
    l1: float = 0.0,
    l2: float = 0.0,
    epochs: int = 20,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    seed: int = 0,
    patience: int = 5,
    lo=None,
    hi=None,
    verbose: int = 0,
    pruning: tuple[float, float] | None = None,
    optimizer: str = "adam",
    scale_targets: bool = True,
    scale_inputs: bool = True,
    init: FitResult | None = None,
    early_stopping: bool = True,
    validation: float = 0.1,
    lr_decay: float | None = None,
    clipnorm: float | None = None,
    momentum: float | None = None,
) -> FitResult:
    """Train a ``[n_in, *hidden, n_out]`` ReLU regressor (Adam by default, MSE, early
    stopping on a seeded validation split, ``validation`` of the rows, 10% by default) and return it as a Network on raw units, with domain
    ``lo``/``hi`` (default: the data's range).

    ``pruning=(initial_sparsity, final_sparsity)`` trains with
    :func:`emlpress.keras.pruning.prune` (TMOT magnitude pruning, polynomial decay over the
    first three quarters of the steps; early stopping is then off so the schedule completes);
    the wrappers are stripped before import and the sparsity actually reached is measured on
    the returned weights (``FitResult.sparsity``).

    ``optimizer`` is any Keras optimizer name (``adam``, ``adadelta``, ...), built with
    ``learning_rate``. ``scale_targets=False`` trains on the raw targets instead of their
    min-max scaling: the regularisation penalty then weighs what it weighed in studies that
    trained on raw outputs (with scaled targets an L1 of 1e-3 outweighs the loss);
    ``scale_inputs=False`` likewise feeds the raw inputs.

    ``lr_decay``: the learning rate is multiplied by it after every epoch (a staircase
    exponential decay); ``clipnorm``: each gradient is clipped to this norm; ``momentum``:
    for ``sgd``. ``validation=0`` (with ``early_stopping=False``) trains on every row.

    ``init``: continue training (warm start) a copy of an earlier result's model, with its
    scalings (``hidden`` must match; ``init`` itself is left as it was). With ``pruning``, a
    trained dense ``init`` is pruned and fine-tuned (the TMOT recipe); a pruned ``init``
    continues with its masks fixed, so its zeros stay zero. ``early_stopping=False`` trains the
    full ``epochs`` (the validation loss is still recorded)."""
    keras = tf_keras()
    import tensorflow as tf  # after tf_keras(): TF_USE_LEGACY_KERAS is set before TF loads

    X = np.asarray(X, float)
    Y = np.asarray(Y, float)
    if Y.ndim == 1:
        Y = Y[:, None]
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    if init is not None:
        sizes = init.net.sizes
        if list(sizes[1:-1]) != list(hidden) or sizes[0] != X.shape[1] or sizes[-1] != Y.shape[1]:
            raise ValueError(f"init is a {sizes} network; this fit is "
                             f"{[X.shape[1], *hidden, Y.shape[1]]}")
        (x_lo, x_hi), (y_lo, y_hi) = init.x_range, init.y_range
    else:
        x_lo, x_hi = X.min(0), X.max(0)
        x_hi = np.where(x_hi > x_lo, x_hi, x_lo + 1)
        if not scale_inputs:
            x_lo, x_hi = np.zeros_like(x_lo), np.ones_like(x_hi)
        y_lo, y_hi = Y.min(0), Y.max(0)
        y_hi = np.where(y_hi > y_lo, y_hi, y_lo + 1)
        if not scale_targets:
            y_lo, y_hi = np.zeros_like(y_lo), np.ones_like(y_hi)
    Xs, Ys = (X - x_lo) / (x_hi - x_lo), (Y - y_lo) / (y_hi - y_lo)
    if init is not None:
        model = _copy_model(keras, init.model, init.pruned)
    else:
        reg = keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None
        layers = [keras.Input(shape=(X.shape[1],))]
        layers += [keras.layers.Dense(h, activation="relu", kernel_regularizer=reg) for h in hidden]
        layers.append(keras.layers.Dense(Y.shape[1], kernel_regularizer=reg))
        model = keras.Sequential(layers)

    if not 0.0 <= validation < 1.0 or (validation == 0.0 and early_stopping):
        raise ValueError(f"validation = {validation!r}: the validation share must lie in (0, 1)"
                         + (" (0 only with early_stopping=False)" if validation == 0.0 else ""))
    n_val = (len(X) * round(validation * 10_000)) // 10_000  # exact: n // 10 for 0.1
    if validation > 0.0:
        n_val = max(1, n_val)
    steps_per_epoch = max(1, -(-(len(X) - n_val) // batch_size))
    if lr_decay is not None and not 0.0 < lr_decay <= 1.0:
        raise ValueError(f"lr_decay = {lr_decay!r}: the per-epoch factor must lie in (0, 1]")

    def make_optimizer():
        lr = learning_rate
        if lr_decay is not None and lr_decay != 1.0:
            lr = keras.optimizers.schedules.ExponentialDecay(
                learning_rate, decay_steps=steps_per_epoch, decay_rate=lr_decay, staircase=True)
        return keras_optimizer(optimizer, lr, clipnorm=clipnorm, momentum=momentum)

    model.compile(optimizer=make_optimizer(), loss="mse")
    perm = np.random.default_rng(seed).permutation(len(X))
    val, tr = perm[:n_val], perm[n_val:]
    val_data = (Xs[val], Ys[val]) if n_val else None
    callbacks = ([keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)]
                 if early_stopping else [])
    pruned = init is not None and init.pruned
    if pruned:
        if pruning is not None:
            raise ValueError("init is already pruned: continue it without 'pruning'")
        import tensorflow_model_optimization as tfmot  # TensorFlow: an extra, imported when called

        # past the schedule's end step: the masks no longer change
        callbacks = [tfmot.sparsity.keras.UpdatePruningStep()]
    if pruning is not None:
        t0 = time.perf_counter()
        res = prune(model, *pruning, Xs[tr], Ys[tr], epochs=epochs, batch_size=batch_size,
                    validation_data=val_data, optimizer=make_optimizer(),
                    verbose=verbose)
        train_s = time.perf_counter() - t0
        model, history, pruned = res.wrapped, res.history, True
        scaled = from_keras_model(res.model)
    else:
        t0 = time.perf_counter()
        history = model.fit(
            Xs[tr], Ys[tr], validation_data=val_data, epochs=epochs,
            batch_size=batch_size, callbacks=callbacks, verbose=verbose, shuffle=True,
        ).history
        train_s = time.perf_counter() - t0
        if pruned:
            scaled = from_keras_model(_clean_copy(keras, tfmot.sparsity.keras.strip_pruning(model)))
        else:
            scaled = from_keras_model(model)
    sparsity = weight_sparsity(scaled)  # before folding the scaling (which keeps zeros)
    net = fold_scaling(scaled, x_lo, x_hi, y_lo, y_hi,
                       x_lo if lo is None else lo, x_hi if hi is None else hi)
    return FitResult(net, train_s, len(history["loss"]), history, sparsity,
                     (x_lo, x_hi), (y_lo, y_hi), model, pruned)
