"""Bounds by one pass over the network (C++ kernels): interval arithmetic, CROWN (the
backward linear relaxation), on a box or a :class:`~emlpress.bounds.domain.Domain`; and
bounds that hold only at given points (:func:`on_points`) or on a union of small boxes
(:func:`on_boxes`)."""

from __future__ import annotations

import time

import numpy as np

from emlpress import kernels
from emlpress.bounds.domain import Domain, domain_and_box
from emlpress.bounds.result import Bounds, _trusted, check_finite
from emlpress.network import Network

__all__ = ["interval", "crown", "on_points", "on_boxes", "POINTS_MARGIN"]


def interval(net: Network, lo=None, hi=None, *, domain: Domain | None = None, A_ub=None,
             b_ub=None, A_eq=None, b_eq=None, l1=None) -> Bounds:
    """Interval-arithmetic bounds of every pre-activation over the box ``[lo, hi]``.

    ``lo``/``hi`` default to the network's domain; float32 or float64 vectors of length
    ``net.n_in``. Exact for the first layer; sound (outward rounded) everywhere. With a
    :class:`Domain` (``domain=`` or the keywords ``A_ub`` ``(m, n_in)``, ``b_ub`` ``(m,)``,
    ``A_eq``, ``b_eq``, ``l1=(center, eps)``), over its rigorously tightened box.
    """
    d, lo, hi = domain_and_box(net, lo, hi, domain, A_ub, b_ub, A_eq, b_eq, l1)
    return _run(kernels.interval, "interval", net, lo, hi, d)


def crown(net: Network, lo=None, hi=None, *, domain: Domain | None = None, A_ub=None,
          b_ub=None, A_eq=None, b_eq=None, l1=None) -> Bounds:
    """Backward linear-relaxation (CROWN / DeepPoly) bounds with the adaptive lower slope.

    Never looser than :func:`interval` on any neuron (the two are intersected). Units that
    interval arithmetic already proves stable keep their interval bounds: their ReLU is
    exact in every relaxation, so their bound values change nothing downstream.

    On a :class:`Domain` (keywords as :func:`interval`): over its tightened box and, with an
    l1 ball ``||x - center||_1 <= eps``, each linear bound ``a.x + c`` also concretised
    over the ball in closed form, ``a.center -+ eps ||a||_inf`` (the dual norm), the tighter
    of the two kept (first layer included). With linear rows, each layer's CROWN linear
    bounds of the units still unstable (every output) are then concretised over the domain
    by an LP over the inputs (one per unit and side, ``Domain.min_linear``, certified from
    its duals), layer by layer, each layer's relaxation built on the tightened bounds
    before it.
    """
    d, lo, hi = domain_and_box(net, lo, hi, domain, A_ub, b_ub, A_eq, b_eq, l1)
    if d is not None and d.center is not None:
        ball = (np.asarray(d.center), float(d.eps))
        b = _run(lambda c, a, b: kernels.crown(c, a, b, None, ball), "crown", net, lo, hi, d)
    else:
        b = _run(kernels.crown, "crown", net, lo, hi, d)
    if d is None or not d.n_rows_linear:
        return b
    return _crown_on_rows(net, d, b)


def _crown_on_rows(net: Network, d: Domain, b: Bounds) -> Bounds:
    """CROWN's linear bounds concretised over the domain's rows by LPs (see crown)."""
    t0 = time.perf_counter()
    lower = [np.array(a) for a in b.lower]
    upper = [np.array(a) for a in b.upper]
    for k in range(net.n_layers):
        if k < net.n_layers - 1:
            idx = np.flatnonzero((lower[k] < 0) & (upper[k] > 0))
        else:
            idx = np.arange(lower[k].size)
        if not idx.size:
            continue
        L = kernels.crown_linear(net._core, b.lo, b.hi, (lower[:k], upper[:k]), k, idx.tolist())
        # upper: max AU x + cU + slack = -min(-AU x) + ...; each addition rounded outward
        hi_ = np.nextafter(np.nextafter(L.cU - d.min_linear(-L.AU), np.inf) + L.slack, np.inf)
        lo_ = np.nextafter(np.nextafter(L.cL + d.min_linear(L.AL), -np.inf) - L.slack, -np.inf)
        upper[k][idx] = np.minimum(upper[k][idx], hi_)
        # both sides are sound, so they cross only on an empty domain (within rounding)
        lower[k][idx] = np.minimum(np.maximum(lower[k][idx], lo_), upper[k][idx])
    check_finite(lower, upper, "crown", b.lo, b.hi)
    seconds = dict(b.seconds)
    seconds["crown"] += time.perf_counter() - t0
    return _trusted(tuple(lower), tuple(upper), b.lo, b.hi, "crown", seconds, d)


def _run(kernel, name: str, net: Network, lo, hi, d: Domain | None = None) -> Bounds:
    t0 = time.perf_counter()
    lower, upper = kernel(net._core, lo, hi)
    dt = time.perf_counter() - t0
    check_finite(lower, upper, name, lo, hi, net)
    return _trusted(lower, upper, lo, hi, name, {name: dt}, d)


#: :func:`on_points` widens each bound by POINTS_MARGIN * (1 + |v|): the forward pass's
#: rounding (about 1e-13 on the networks here) and a MILP's feasibility tolerance (1e-9)
POINTS_MARGIN = 1e-7


def on_points(net: Network, X, margin: float = POINTS_MARGIN) -> Bounds:
    """Bounds that hold at the inputs ``X`` (rows) only: each unit's least and greatest
    pre-activation over them by a forward pass, widened by ``margin * (1 + |v|)``.

    For a MILP whose network inputs can take no other values (decisions from a finite set,
    every combination enumerated in ``X``): the tightest bounds there are, and no bound
    excludes a value the network takes at those inputs. They say nothing between the points:
    :meth:`Bounds.check` tests them at the points, and box methods (``lp(init=...)``) and
    ``compress.lossless`` refuse them. ``lo``/``hi`` is the hull of ``X``; ``parts`` is
    ``(X, X)``."""
    X = np.array(X, dtype=np.float64, copy=True)
    if X.ndim != 2 or X.shape[1] != net.n_in or X.shape[0] == 0:
        raise ValueError(f"X must have shape (n >= 1, {net.n_in}), got {X.shape}")
    if not np.isfinite(X).all():
        r = int(np.flatnonzero(~np.isfinite(X).all(1))[0])
        raise ValueError(f"X row {r} is not finite: {X[r].tolist()}")
    if not margin >= 0:
        raise ValueError(f"margin = {margin!r} must be >= 0")
    t0 = time.perf_counter()
    lower = [np.full(n, np.inf) for n in net.sizes[1:]]
    upper = [np.full(n, -np.inf) for n in net.sizes[1:]]
    step = max(1, 2**22 // max(1, sum(net.sizes[1:])))  # about 32 MB of pre-activations at once
    for k in range(0, X.shape[0], step):
        for l, z in enumerate(net.preactivations(X[k:k + step])):
            np.minimum(lower[l], z.min(0), out=lower[l])
            np.maximum(upper[l], z.max(0), out=upper[l])
    lower = [a - margin * (1 + np.abs(a)) for a in lower]
    upper = [b + margin * (1 + np.abs(b)) for b in upper]
    X.flags.writeable = False
    return Bounds(tuple(lower), tuple(upper), X.min(0), X.max(0), "points",
                  seconds={"points": time.perf_counter() - t0}, parts=(X, X))


def on_boxes(net: Network, LO, HI) -> Bounds:
    """Bounds that hold on the union of the boxes ``[LO[k], HI[k]]`` (rows) only: CROWN on
    each box, then per unit the least lower and greatest upper bound. For a MILP whose inputs
    are known to lie in those boxes (a reachable set covered by small boxes, tighter than its
    hull). ``part_output`` keeps each box's output bounds; ``lo``/``hi`` is the hull; like
    :func:`on_points`, they refuse to stand for a box."""
    LO = np.array(LO, dtype=np.float64, copy=True)
    HI = np.array(HI, dtype=np.float64, copy=True)
    if LO.shape != HI.shape or LO.ndim != 2 or LO.shape[1] != net.n_in or LO.shape[0] == 0:
        raise ValueError(f"LO and HI must have one shape (m >= 1, {net.n_in}), got {LO.shape}, {HI.shape}")
    bad = ~(np.isfinite(LO) & np.isfinite(HI) & (LO <= HI)).all(1)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise ValueError(f"box {r} is not a finite box with LO <= HI: [{LO[r].tolist()}, {HI[r].tolist()}]")
    t0 = time.perf_counter()
    lower = [np.full(n, np.inf) for n in net.sizes[1:]]
    upper = [np.full(n, -np.inf) for n in net.sizes[1:]]
    out_lo, out_hi = np.empty((LO.shape[0], net.n_out)), np.empty((LO.shape[0], net.n_out))
    for k in range(LO.shape[0]):
        a, b = kernels.crown(net._core, LO[k], HI[k])
        for l in range(len(lower)):
            np.minimum(lower[l], a[l], out=lower[l])
            np.maximum(upper[l], b[l], out=upper[l])
        out_lo[k], out_hi[k] = a[-1], b[-1]
    if not all(np.isfinite(a).all() and np.isfinite(b).all() for a, b in zip(lower, upper)):
        for k in range(LO.shape[0]):  # name the first box at fault
            check_finite(*kernels.crown(net._core, LO[k], HI[k]), "crown", LO[k], HI[k], net)
    LO.flags.writeable = HI.flags.writeable = False
    return Bounds(tuple(lower), tuple(upper), LO.min(0), HI.max(0), "boxes",
                  seconds={"boxes": time.perf_counter() - t0}, parts=(LO, HI),
                  part_output=(out_lo, out_hi))
