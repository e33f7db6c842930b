"""Turn a chain of affine and ReLU operations read from any framework into a Network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emlpress.network import Network


@dataclass
class Affine:
    W: np.ndarray  # (n_out, n_in)
    b: np.ndarray
    where: str  # e.g. "layer 2 'dense_1' (Dense)", for error messages


@dataclass
class Relu:
    where: str


class UnsupportedLayerError(ValueError):
    """A layer, activation or operator outside dense + ReLU/linear."""


def build_network(ops: list, source: str) -> Network:
    """Consecutive affine maps are multiplied out (exact); repeated ReLUs collapse (ReLU is
    idempotent); a ReLU after the last affine map becomes an identity output layer, so the
    Network's last layer stays linear and computes the same function."""
    Ws: list[np.ndarray] = []
    bs: list[np.ndarray] = []
    pending_relu = False  # a ReLU follows the last affine map collected
    for op in ops:
        if isinstance(op, Relu):
            if not Ws:
                raise UnsupportedLayerError(f"{source}: {op.where} applies ReLU to the raw input")
            pending_relu = True
            continue
        W = np.asarray(op.W, dtype=np.float64)
        b = np.asarray(op.b, dtype=np.float64)
        if Ws and W.shape[1] != Ws[-1].shape[0]:
            raise ValueError(
                f"{source}: {op.where} takes {W.shape[1]} inputs but the previous layer has "
                f"{Ws[-1].shape[0]} outputs"
            )
        if Ws and not pending_relu:
            # affine after affine with no ReLU between: compose them
            Ws[-1], bs[-1] = W @ Ws[-1], W @ bs[-1] + b
        else:
            Ws.append(W)
            bs.append(b)
        pending_relu = False
    if not Ws:
        raise UnsupportedLayerError(f"{source}: no dense layer found")
    if pending_relu:
        n = Ws[-1].shape[0]
        Ws.append(np.eye(n))
        bs.append(np.zeros(n))
    try:
        return Network(Ws, bs)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None
