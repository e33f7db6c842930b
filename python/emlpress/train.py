"""Seeded training of ReLU regressors with tf_keras (the ``[keras]`` extra).

Inputs and targets are min-max scaled for training; the scalings are affine, so they are
folded exactly into the first and last layers and the returned Network works in raw units.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from emlpress.network import Network


@dataclass
class FitResult:
    net: Network
    train_s: float
    epochs: int
    history: dict


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
) -> FitResult:
    """Train a ``[n_in, *hidden, n_out]`` ReLU regressor (Adam, MSE, early stopping on a
    seeded 10% validation split) and return it as a Network on raw units, with domain
    ``lo``/``hi`` (default: the data's range)."""
    from emlpress.io.keras import tf_keras

    keras = tf_keras()
    import tensorflow as tf

    X = np.asarray(X, float)
    Y = np.asarray(Y, float)
    if Y.ndim == 1:
        Y = Y[:, None]
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    x_lo, x_hi = X.min(0), X.max(0)
    x_hi = np.where(x_hi > x_lo, x_hi, x_lo + 1)
    y_lo, y_hi = Y.min(0), Y.max(0)
    y_hi = np.where(y_hi > y_lo, y_hi, y_lo + 1)
    Xs, Ys = (X - x_lo) / (x_hi - x_lo), (Y - y_lo) / (y_hi - y_lo)
    reg = keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None
    layers = [keras.Input(shape=(X.shape[1],))]
    layers += [keras.layers.Dense(h, activation="relu", kernel_regularizer=reg) for h in hidden]
    layers.append(keras.layers.Dense(Y.shape[1], kernel_regularizer=reg))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    perm = np.random.default_rng(seed).permutation(len(X))
    n_val = max(1, len(X) // 10)
    val, tr = perm[:n_val], perm[n_val:]
    stop = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
    t0 = time.perf_counter()
    hist = model.fit(
        Xs[tr], Ys[tr], validation_data=(Xs[val], Ys[val]), epochs=epochs,
        batch_size=batch_size, callbacks=[stop], verbose=verbose, shuffle=True,
    )
    train_s = time.perf_counter() - t0
    from emlpress.io.keras import from_keras

    scaled = from_keras(model)
    net = fold_scaling(scaled, x_lo, x_hi, y_lo, y_hi,
                       x_lo if lo is None else lo, x_hi if hi is None else hi)
    return FitResult(net, train_s, len(hist.history["loss"]), hist.history)
