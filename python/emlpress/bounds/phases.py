"""Exact stable sets in high dimension (many inputs, where splitting the input box cannot
help): the phase search that :func:`emlpress.bounds.stability` runs for ``split="relu"``.

Three steps, each on every open side at once (an *open side* of a unit: the sign no witness
contradicts yet, ``stability._Open``):

1. **Witnesses by batched attacks** (:func:`attack_sides`): projected signed-gradient
   ascent of each open side's pre-activation over the box, from several starts per side
   (the best witness so far, the box centre, seeded uniform points), all sides and starts
   in one batch of masked matrix products per step. Every point reached is checked by a
   float64 forward pass (``_Witnesses.add``); a side it contradicts is closed (the unit is
   unstable).
2. **Second-layer units by batched phase branch-and-bound** (:func:`second_layer`,
   beta-CROWN style). The first hidden layer is affine in the input, so for a unit
   ``z1_i = c . relu(z0(x)) + b`` of the second, linear bounds of the first layer's ReLUs
   (lower slopes ``alpha`` in [0, 1] where ``c_j > 0``, the upper chord where ``c_j < 0``)
   and Lagrange multipliers ``beta >= 0`` on the phases fixed by branching give a linear
   function of ``x`` whose minimum over the box is attained at a corner (closed form).
   Any ``alpha``, ``beta`` give a sound bound; projected sign-gradient steps tighten it
   (with optimal ones it is the node's LP bound). Nodes of every open side are evaluated
   together, a batch of ``(nodes, units0) @ (units0, inputs)`` products; each side takes
   its lowest-bound nodes first (best first, an equal share of the batch per side, so
   that one hard side does not starve the others), branches on the free unit whose
   relaxation departs most from its ReLU at the node's corner, and every node's corner is
   checked as a witness. A side is proven when no node below 0 is left.
3. Whatever is left (deeper layers, a side whose leaf has every phase fixed and still
   misses, the limits) goes to the rigorous-LP phase search of ``stability`` (bab.py).

Rounding: a node's bound is lowered by the rounding of its own evaluation (``GAMMA_FACTOR``
times gamma of the terms summed, times their magnitude, which also covers a corner picked
on a wrongly rounded sign of a tiny coefficient) and by the float64 forward pass' rounding
of the unit (``forward_rounding``), so a side called proven holds for every float64
forward pass over the box. Witnesses are forward passes. Nothing here is a guess.
"""

from __future__ import annotations

import time

import numpy as np

from emlpress.bounds.rounding import forward_rounding, gamma_slack, round_up
from emlpress.bounds.witnesses import values_and_gradients

__all__ = ["search", "attack_sides", "second_layer", "ATTACK_STARTS", "ATTACK_STEPS",
           "ATTACK_SHARE", "NODE_BATCH", "ROOT_STEPS", "CHILD_STEPS", "MAX_NODES"]

#: starts per open side of the batched attack (the best witness, the centre, the rest
#: seeded uniform points of the box) and its projected signed-gradient steps
ATTACK_STARTS = 3
ATTACK_STEPS = 30
#: nodes branched per round of the second-layer search, over all its open sides (each
#: gives two children: a batch of 2 x NODE_BATCH bound evaluations)
NODE_BATCH = 256
#: sign-gradient steps on (alpha, beta) at the roots and at every child (warm started
#: from its parent's)
ROOT_STEPS, CHILD_STEPS = 40, 2
#: open nodes kept per side: a side whose frontier outgrows this is left to ``lp_search``
MAX_NODES = 20_000
#: a node bound's evaluation error is at most this times gamma(terms) times its terms'
#: magnitude (2 for the sums, 2 more for a corner chosen on a rounded sign)
GAMMA_FACTOR = 4.0
#: the attacks' share of the time left (the rest is the branch-and-bound's): on the MNIST
#: 200-200 box of radius 0.05 around image 0, 16 starts of 100 steps found no witness for
#: any of the 63 sides the earlier attack left (512 starts none for three of them): those
#: are stable, and the attacks must not eat the proofs' time
ATTACK_SHARE = 0.1


def attack_sides(net, lo, hi, op, deadline: float, starts: int = ATTACK_STARTS,
                 steps: int = ATTACK_STEPS, seed: int = 0) -> None:
    """Batched projected signed-gradient attacks on every open side of ``op`` (the
    stability search's ``_Open``), ``starts`` starts per side, ``steps`` steps, all in one
    batch per layer; the points reached go through ``op.seen`` (float64 forward passes),
    which closes every side they contradict."""
    rng = np.random.default_rng(seed)
    width = hi - lo
    for l, (hi_units, lo_units) in enumerate(zip(op.layer_units(np.flatnonzero(op.need_hi)),
                                                 op.layer_units(np.flatnonzero(op.need_lo)))):
        if time.perf_counter() > deadline:
            break
        units = np.concatenate([hi_units, lo_units])
        if not units.size:
            continue
        # +1: maximise z (the side to contradict is z <= 0), -1: minimise
        signs = np.concatenate([np.ones(hi_units.size), -np.ones(lo_units.size)])
        best = np.vstack([op.seen.xmax[l][hi_units], op.seen.xmin[l][lo_units]])
        X = [best, np.broadcast_to((lo + hi) / 2, best.shape)]
        X += [rng.uniform(lo, hi, best.shape) for _ in range(max(0, starts - 2))]
        X = np.vstack(X[:max(1, starts)])
        U = np.tile(units, len(X) // units.size)
        S = np.tile(signs, len(X) // units.size)
        step = 0.5  # of the box width, shrinking
        for t in range(steps):
            _, g = values_and_gradients(net, X, l, U)
            X = np.clip(X + (step * width) * np.sign(S[:, None] * g), lo, hi)
            step *= 0.9
            late = time.perf_counter() > deadline
            if t % 10 == 9 or t == steps - 1 or late:  # fold the points in: closed sides stop
                Z = op.seen.add(X, l)[l][np.arange(len(X)), U]
                op.update()
                keep = np.where(S > 0, op.need_hi[op.offsets[l] + U],
                                op.need_lo[op.offsets[l] + U]) & ~(S * Z > 0)
                X, U, S = X[keep], U[keep], S[keep]
                if not len(X) or late:
                    break
    op.update()


class _Sides:
    """Batched rigorous lower bounds of ``sgn_s * z1_{i_s}`` over the box with some
    first-layer phases fixed, for many (side, node) rows at once (the module docstring,
    step 2). The first layer's bounds ``l0``, ``u0`` must hold over the box (exactly the
    first layer's interval bounds do, up to their rounding slack)."""

    def __init__(self, net, lo, hi, l0, u0, units, sgns, fs):
        self.W0, self.b0, self.lo, self.hi = net.weights[0], net.biases[0], lo, hi
        self.C = sgns[:, None] * net.weights[1][units]  # (sides, units0)
        self.cb = sgns * net.biases[1][units]
        self.fs = fs[units]
        self.act = l0 >= 0
        self.dead = (u0 <= 0) & ~self.act
        self.unst = ~self.act & ~self.dead
        self.l0 = np.where(self.unst, l0, -1.0)
        self.u0 = np.where(self.unst, u0, 1.0)
        self.s = self.u0 / (self.u0 - self.l0)  # the upper chord's slope
        xabs = np.maximum(np.abs(lo), np.abs(hi))
        self.mag0 = np.abs(self.W0) @ xabs + np.abs(self.b0)  # per first-layer unit
        n, n0 = self.W0.shape[1], self.W0.shape[0]
        self.gamma = GAMMA_FACTOR * gamma_slack(n + n0 + 4)

    def bound(self, side, fixA, fixI, alpha, beta):
        """Rows (side index, fixed active, fixed inactive, alpha, beta): (rigorous lower
        bounds, the minimising corners X, the first-layer values at X)."""
        C = self.C[side]
        cneg = C < 0
        free = self.unst & ~fixA & ~fixI
        D = np.where(self.act | fixA, C, 0.0)
        D = np.where(fixA, D - beta, D)
        D = np.where(fixI, beta, D)
        fp, fn = free & ~cneg, free & cneg
        D = np.where(fp, C * alpha, D)
        D = np.where(fn, C * self.s, D)
        K = np.where(fn, -C * self.s * self.l0, 0.0)  # each <= 0
        G = D @ self.W0
        X = np.where(G > 0, self.lo, self.hi)
        Z0 = X @ self.W0.T + self.b0
        val = np.einsum("ij,ij->i", G, X) + D @ self.b0 + K.sum(1) + self.cb[side]
        mag = np.abs(D) @ self.mag0 + np.abs(K).sum(1) + np.abs(self.cb[side])
        return val - round_up(self.gamma * mag + self.fs[side]), X, Z0

    def optimise(self, side, fixA, fixI, alpha, beta, steps: int, deadline: float = np.inf):
        """Projected sign-gradient ascent on (alpha, beta) from the given ones, row by
        row, for ``steps`` steps or until ``deadline``; returns the best (bound, X, Z0,
        alpha, beta) each row saw."""
        C = self.C[side]
        free_pos = self.unst & ~fixA & ~fixI & ~(C < 0)
        eta_a = 0.5
        eta_b = 0.5 * np.abs(C).max(1, initial=0.0)[:, None] + 1e-300
        best = None
        for t in range(steps + 1):
            v, X, Z0 = self.bound(side, fixA, fixI, alpha, beta)
            if best is None:
                best = [v, X, Z0, alpha.copy(), beta.copy()]
            else:
                m = v > best[0]
                best[0] = np.where(m, v, best[0])
                for k, a in ((1, X), (2, Z0), (3, alpha), (4, beta)):
                    best[k][m] = a[m]
            if t == steps or time.perf_counter() > deadline:
                break
            # d bound / d alpha_j = c_j z0_j; / d beta_j = -z0_j (active), z0_j (inactive)
            ga = np.where(free_pos, C * Z0, 0.0)
            gb = np.where(fixA, -Z0, np.where(fixI, Z0, 0.0))
            alpha = np.clip(alpha + eta_a * np.sign(ga), 0.0, 1.0)
            beta = np.maximum(beta + eta_b * np.sign(gb), 0.0)
            eta_a *= 0.7
            eta_b = eta_b * 0.7
        return best

    def branch(self, side, fixA, fixI, alpha, Z0):
        """Per row, the free unit whose relaxation departs most from its ReLU at the
        row's corner (-1 where none is free)."""
        C = self.C[side]
        cneg = C < 0
        free = self.unst & ~fixA & ~fixI
        r = np.maximum(Z0, 0.0)
        gap = np.where(cneg, -C * (self.s * (Z0 - self.l0) - r), C * (r - alpha * Z0))
        # BaBSR-like: the chord's intercept |c| s (-l) (what fixing the unit removes from
        # the bound), the departure at the corner breaking ties
        gap = np.where(cneg, -C * self.s * (-self.l0), 0.0) + 1e-3 * gap
        score = np.where(free, gap + 1e-9 * np.abs(C) * (-self.l0) * self.s, -np.inf)
        j = np.argmax(score, axis=1)
        return np.where(free.any(1), j, -1)


def second_layer(net, lo, hi, lower, upper, op, deadline: float) -> np.ndarray:
    """The open sides of the second hidden layer by the batched phase branch-and-bound
    (module docstring, step 2); returns the flat mask of the units proven (on their open
    side: ``op.need_hi`` inactive, ``op.need_lo`` active)."""
    proven = np.zeros(op.offsets[op.hidden], dtype=bool)
    if op.hidden < 2 or time.perf_counter() > deadline:
        return proven
    base = op.offsets[1]
    nh = op.need_hi[base:op.offsets[2]]
    nl = op.need_lo[base:op.offsets[2]]
    units = np.concatenate([np.flatnonzero(nh), np.flatnonzero(nl)])
    if not units.size:
        return proven
    sgns = np.concatenate([-np.ones(int(nh.sum())), np.ones(int(nl.sum()))])  # -1: max z
    fs = forward_rounding(net, lo, hi, upper)[1]
    P = _Sides(net, lo, hi, np.asarray(lower[0], float), np.asarray(upper[0], float),
               units, sgns, fs)
    n_sides, n0 = units.size, P.W0.shape[0]
    status = np.zeros(n_sides, dtype=np.int8)  # 0 open, 1 proven, 2 witness, 3 given up

    def still_open(side):
        f = base + units[side]
        return np.where(sgns[side] < 0, op.need_hi[f], op.need_lo[f])

    def witnesses(X):
        op.seen.add(X, 0)
        op.update()
        status[(status == 0) & ~still_open(np.arange(n_sides))] = 2

    side = np.arange(n_sides)
    fixA = np.zeros((n_sides, n0), dtype=bool)
    fixI = fixA.copy()
    alpha = np.broadcast_to(np.where(P.u0 >= -P.l0, 1.0, 0.0), (n_sides, n0)).copy()
    beta = np.zeros((n_sides, n0))
    v, X, Z0, alpha, beta = P.optimise(side, fixA, fixI, alpha, beta, ROOT_STEPS, deadline)
    witnesses(X)
    nodes = (side, fixA, fixI, alpha, beta, v, Z0)
    while True:
        # drop what is settled: proven parts (bound >= 0) and the sides closed or given up
        keep = (nodes[5] < 0) & (status[nodes[0]] == 0)
        nodes = tuple(a[keep] for a in nodes)
        left = np.bincount(nodes[0], minlength=n_sides)
        status[(status == 0) & (left == 0)] = 1
        over = (status == 0) & (left > MAX_NODES)
        status[over] = 3
        if over.any():
            continue
        if not len(nodes[0]) or time.perf_counter() > deadline:
            break
        # each open side's lowest-bound nodes, an equal share of the batch
        live = np.flatnonzero(left > 0)
        share = max(1, NODE_BATCH // live.size)
        order = np.lexsort((nodes[5], nodes[0]))
        s_sorted = nodes[0][order]
        first = np.searchsorted(s_sorted, s_sorted)  # first index of each row's side
        rank = np.arange(order.size) - first
        pick = np.zeros(order.size, dtype=bool)
        pick[order[(rank < share) & np.isin(s_sorted, live)]] = True
        sd, fa, fi, al, be, vv, zz = (a[pick] for a in nodes)
        rest = tuple(a[~pick] for a in nodes)
        j = P.branch(sd, fa, fi, al, zz)
        stuck = j < 0  # every phase fixed and still below 0: left to the LP search
        status[np.unique(sd[stuck])] = 3
        ok = ~stuck
        sd, fa, fi, al, be, vv, j = sd[ok], fa[ok], fi[ok], al[ok], be[ok], vv[ok], j[ok]
        r = np.arange(j.size)
        faA, fiI = fa.copy(), fi.copy()
        faA[r, j] = True  # the active child
        fiI[r, j] = True  # the inactive child
        cs = np.concatenate([sd, sd])
        cfa = np.concatenate([faA, fa])
        cfi = np.concatenate([fi, fiI])
        cv, cX, cZ, ca, cb = P.optimise(cs, cfa, cfi, np.concatenate([al, al]),
                                        np.concatenate([be, be]), CHILD_STEPS, deadline)
        cv = np.maximum(cv, np.concatenate([vv, vv]))  # a child's minimum is at least its parent's
        witnesses(cX)
        nodes = tuple(np.concatenate([a, b]) for a, b in
                      zip(rest, (cs, cfa, cfi, ca, cb, cv, cZ)))
    # a side is proven when none of its nodes is left below 0 (the loop marks it so)
    done = status == 1
    proven[base + units[done]] = True
    return proven


def search(net, lo, hi, lower, upper, op, deadline: float) -> np.ndarray:
    """Steps 1 and 2 of the module docstring for every open side of ``op``: the batched
    attacks (at most ``ATTACK_SHARE`` of the time left), then the second layer's batched
    branch-and-bound. Returns the flat mask of the units proven on their open side; the
    caller's rigorous-LP phase search takes the sides still open (step 3)."""
    now = time.perf_counter()
    attack_sides(net, lo, hi, op, now + ATTACK_SHARE * max(0.0, deadline - now))
    proven = np.zeros(op.offsets[op.hidden], dtype=bool)
    if op.n_open and time.perf_counter() < deadline:
        proven = second_layer(net, lo, hi, lower, upper, op, deadline)
    op.update()
    return proven
