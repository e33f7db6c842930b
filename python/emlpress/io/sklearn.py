"""scikit-learn import: a fitted ``MLPRegressor`` or ``MLPClassifier`` as a
:class:`~emlpress.Network`, so that every bound method, lossless compression and
:func:`~emlpress.milp.add_network` apply to it.

``coefs_[l]`` (shape ``(n_in, n_out)``) becomes ``weights[l] = coefs_[l].T``; hidden layers
with ``activation="relu"`` keep their ReLU, ``activation="identity"`` networks are
multiplied out into one affine layer (exact up to float64 rounding). The network's output is
the last layer's pre-activation: a regressor's prediction (its output activation is the
identity) and a classifier's logits (its class is the argmax, or for one output the sign;
``predict_proba`` applies a softmax or a sigmoid, not piecewise linear). Any other hidden
activation (``tanh``, ``logistic``) is refused with an error naming it.
"""

from __future__ import annotations

import numpy as np

from emlpress.io._chain import Affine, Relu, UnsupportedLayerError, build_network
from emlpress.network import Network

__all__ = ["from_sklearn", "MLP_ACTIVATIONS"]

#: hidden activations that are piecewise linear
MLP_ACTIVATIONS = ("relu", "identity")


def from_sklearn(mlp) -> Network:
    """Network computing a fitted scikit-learn ``MLPRegressor``'s ``predict`` (shape
    ``(n, n_outputs)``) or an ``MLPClassifier``'s logits, from its ``coefs_`` and
    ``intercepts_``. Raises :class:`~emlpress.io.UnsupportedLayerError` for another
    estimator or a hidden activation other than ``relu``/``identity`` (naming it), and
    ValueError for an unfitted model or NaN/infinite weights (naming the layer)."""
    kind = type(mlp).__name__
    if kind not in ("MLPRegressor", "MLPClassifier") or not type(mlp).__module__.startswith("sklearn."):
        raise UnsupportedLayerError(f"from_sklearn: {type(mlp).__module__}.{kind} is not a "
                                    "scikit-learn MLPRegressor or MLPClassifier")
    if not hasattr(mlp, "coefs_"):
        raise ValueError(f"{kind}: not fitted (no coefs_): call fit first")
    act = mlp.activation
    if act not in MLP_ACTIVATIONS:
        raise UnsupportedLayerError(
            f"{kind}: activation={act!r} is not piecewise linear; supported: "
            f"{', '.join(repr(a) for a in MLP_ACTIVATIONS)}")
    ops: list = []
    n_layers = len(mlp.coefs_)
    for l, (W, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_)):
        W = np.asarray(W, dtype=np.float64).T
        b = np.asarray(b, dtype=np.float64)
        where = f"layer {l} (coefs_[{l}], intercepts_[{l}])"
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            raise ValueError(f"{kind}: {where} holds NaN or infinite weights")
        ops.append(Affine(W, b, where))
        if act == "relu" and l < n_layers - 1:
            ops.append(Relu(f"layer {l} (relu)"))
    return build_network(ops, kind)
