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
           steps: int = PGD_STEPS, domain=None) -> tuple[np.ndarray, np.ndarray]:
    """Projected signed-gradient ascent of ``signs * z_k[units]`` over the box, one start
    per target (rows of X0, shape (T, n_in)); returns the best value of each target's
    ``z`` found (as computed by a float64 forward pass) and the inputs reaching it.
    ``domain`` (a constrained ``Domain``): every step is pulled back into it
    (``Domain.admit``: toward its interior point), a step that cannot be stays where it
    was, and a start outside it (NaN rows included) starts from its interior point; only
    points of the domain are then returned (with ``-inf`` values where none was)."""
    X = np.array(X0, dtype=np.float64)
    if domain is not None:
        X = _into(domain, X, np.repeat(domain.interior_point()[None, :], len(X), axis=0))
    step = 0.25 * (hi - lo)
    best_v = np.full(len(units), -np.inf)  # in signs * z
    best_x = X.copy()
    inside = np.ones(len(X), dtype=bool) if domain is None else domain.holds(X)
    for t in range(steps + 1):
        z, g = values_and_gradients(net, X, k, units)
        v = np.where(inside, signs * z, -np.inf)
        better = v > best_v
        best_v[better], best_x[better] = v[better], X[better]
        if t == steps:
            break
        Xn = np.clip(X + step * np.sign(signs[:, None] * g), lo, hi)
        if domain is not None:
            Xn = _into(domain, Xn, X)
            inside = domain.holds(Xn)
        X = Xn
        step = step * 0.8
    return signs * best_v, best_x


def _into(domain, X: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Each row of X pulled into the domain (``Domain.admit``), else the row of ``fallback``."""
    out = np.array(fallback, dtype=np.float64)
    fin = np.flatnonzero(np.isfinite(X).all(1))
    Y, ok = domain.pull(X[fin])
    out[fin[ok]] = Y[ok]
    return out


class _Witnesses:
    """The extreme values a float64 forward pass reaches per neuron and the inputs reaching
    them, over every witness seen (samples, attacks, node LP optima); thread-safe."""

    def __init__(self, net, X: np.ndarray, domain=None):
        self.net, self.lock, self.domain = net, threading.Lock(), domain
        self.zmin = [np.full(n, np.inf) for n in net.sizes[1:]]
        self.zmax = [np.full(n, -np.inf) for n in net.sizes[1:]]
        self.xmin = [np.full((n, net.n_in), np.nan) for n in net.sizes[1:]]
        self.xmax = [np.full((n, net.n_in), np.nan) for n in net.sizes[1:]]
        self.pending: list[np.ndarray] = []  # LP witnesses not yet folded into deeper layers
        self.add(X)

    def admit(self, X: np.ndarray) -> np.ndarray:
        """The rows of X that are witnesses: all of them on a box; on a constrained domain
        those ``Domain.admit`` keeps (pulled into it where they are not: in it exactly)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        return X if self.domain is None else self.domain.admit(X)

    def add(self, X: np.ndarray, k0: int = 0) -> list[np.ndarray]:
        """Fold the inputs X (n, n_in) into layers k0.. and return their pre-activations;
        on a constrained domain only the points :meth:`admit` keeps count (and the rows
        returned are theirs: none when none is kept)."""
        X = self.admit(X)
        if not len(X):
            return [np.empty((0, n)) for n in self.net.sizes[1:]]
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
        if op.seen.domain is None:  # (no witness yet: the box centre)
            X0 = np.where(np.isnan(X0), (lo + hi) / 2, X0)
        _, Xa = attack(net, lo, hi, l, units, signs, X0, domain=op.seen.domain)
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
