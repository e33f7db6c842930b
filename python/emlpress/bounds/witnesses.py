"""Witnesses: inputs of the box whose float64 forward pass reaches a value, shared by the
exact searches (``bab``) and the exact stable sets (``stability``). A witness of each sign
shows a unit unstable; the best witness of a side is the incumbent a search prunes with.

Where they come from: seeded samples and box corners (``_corners``, the first layer's
extreme corners in closed form, ``first_layer_corners``), projected signed-gradient attacks
(``attack``, on the gradients of ``values_and_gradients``) and node LP optima; ``_Witnesses``
keeps the extremes seen per unit.
"""

from __future__ import annotations

import threading

import numpy as np

from emlpress.network import Network

#: projected signed-gradient steps of an attack from each start
PGD_STEPS = 30


def values_and_gradients(net, X: np.ndarray, k: int, units) -> tuple[np.ndarray, np.ndarray]:
    """Pre-activation ``units[t]`` of layer k at the input ``X[t]`` (X of shape (n, n_in),
    ``units`` n indices or one) and its gradient with respect to that input."""
    Ws, bs = net.weights, net.biases
    units = np.broadcast_to(units, (len(X),))
    masks, a = [], X
    for j in range(k):
        zj = a @ Ws[j].T + bs[j]
        masks.append(zj > 0.0)
        a = np.where(masks[-1], zj, 0.0)
    W = Ws[k][units]
    v = np.einsum("ti,ti->t", a, W) + bs[k][units]
    g = W
    for j in reversed(range(k)):
        g = (g * masks[j]) @ Ws[j]
    return v, g


def attack(net, lo, hi, k: int, units: np.ndarray, signs: np.ndarray, X0: np.ndarray,
           steps: int = PGD_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """Projected signed-gradient ascent of ``signs * z_k[units]`` over the box, one start
    per target (rows of X0, shape (T, n_in)); returns the best value of each target's
    ``z`` found (as computed by a float64 forward pass) and the inputs reaching it."""
    X = np.array(X0, dtype=np.float64)
    step = 0.25 * (hi - lo)
    best_v = np.full(len(units), -np.inf)  # in signs * z
    best_x = X.copy()
    for t in range(steps + 1):
        z, g = values_and_gradients(net, X, k, units)
        v = signs * z
        better = v > best_v
        best_v[better], best_x[better] = v[better], X[better]
        if t == steps:
            break
        X = np.clip(X + step * np.sign(signs[:, None] * g), lo, hi)
        step = step * 0.8
    return signs * best_v, best_x


class _Witnesses:
    """The extreme values a float64 forward pass reaches per neuron and the inputs reaching
    them, over every witness seen (samples, attacks, node LP optima); thread-safe."""

    def __init__(self, net, X: np.ndarray):
        self.net, self.lock = net, threading.Lock()
        Z = net.preactivations(X)
        self.zmin = [z.min(0) for z in Z]
        self.zmax = [z.max(0) for z in Z]
        self.xmin = [X[z.argmin(0)] for z in Z]
        self.xmax = [X[z.argmax(0)] for z in Z]
        self.pending: list[np.ndarray] = []  # LP witnesses not yet folded into deeper layers

    def add(self, X: np.ndarray, k0: int = 0) -> list[np.ndarray]:
        """Fold the inputs X (n, n_in) into layers k0.. and return their pre-activations."""
        Z = self.net.preactivations(X)
        with self.lock:
            for k in range(k0, len(Z)):
                z = Z[k]
                i, j = z.argmin(0), z.argmax(0)
                lo_, hi_ = z[i, np.arange(z.shape[1])], z[j, np.arange(z.shape[1])]
                m = lo_ < self.zmin[k]
                self.zmin[k] = np.where(m, lo_, self.zmin[k])
                self.xmin[k] = np.where(m[:, None], X[i], self.xmin[k])
                m = hi_ > self.zmax[k]
                self.zmax[k] = np.where(m, hi_, self.zmax[k])
                self.xmax[k] = np.where(m[:, None], X[j], self.xmax[k])
        return Z

    def settles(self, k: int, i: int, side: str) -> bool:
        """Whether a witness already shows that side of unit i cannot be proven stable."""
        return bool(self.zmin[k][i] < 0.0) if side == "min" else bool(self.zmax[k][i] > 0.0)


def _attack(net, lo, hi, op) -> None:
    """Projected-gradient attacks on the open side of every open unit of ``op`` (the
    stability search's ``_Open``), from the witness nearest that side, folded into the
    witnesses."""
    for l, (hi_units, lo_units) in enumerate(zip(op.layer_units(np.flatnonzero(op.need_hi)),
                                                 op.layer_units(np.flatnonzero(op.need_lo)))):
        units = np.concatenate([hi_units, lo_units])
        if not units.size:
            continue
        signs = np.concatenate([np.ones(hi_units.size), -np.ones(lo_units.size)])  # +1: maximise z
        X0 = np.vstack([op.seen.xmax[l][hi_units], op.seen.xmin[l][lo_units]])
        _, Xa = attack(net, lo, hi, l, units, signs, X0)
        op.seen.add(Xa)
    op.update()


def _corners(blo: np.ndarray, bhi: np.ndarray, seed: int = 0) -> np.ndarray:
    """The centre and every corner of each box (rows of blo/bhi), stacked; beyond 6
    dimensions 64 seeded random corners per box instead of all."""
    n = blo.shape[1]
    if n <= 6:
        bits = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)[None, :, :]
    else:
        bits = np.random.default_rng(seed).random((len(blo), 64, n)) < 0.5
    C = np.where(bits, bhi[:, None, :], blo[:, None, :]).reshape(-1, n)
    return np.vstack([(blo + bhi) / 2, C])


def first_layer_corners(net: Network, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The box corners where each first-layer pre-activation is largest and smallest
    (rows: ``hi`` where the unit's weight is positive, else ``lo``, and the reverse),
    without repeats: shape (at most 2 units, n_in). The first layer is affine in the
    input, so these are the witnesses of its extremes."""
    up = net.weights[0] > 0
    return np.unique(np.vstack([np.where(up, hi, lo), np.where(up, lo, hi)]), axis=0)
