"""Sound pre-activation bounds of every neuron over an input box, or over a box with
linear constraints and an l1 ball (:class:`Domain`: ``domain=``, or the keywords ``A_ub``,
``b_ub``, ``A_eq``, ``b_eq``, ``l1=(center, eps)`` of every method); bounds on a domain are
sound on it only, and :class:`Bounds` records it.

Tolerance policy (one for all methods): each method widens its bounds outward at the
moment it computes them, by the rounding error of float64 arithmetic (``gamma_n`` times
the magnitude of the terms, see ``cpp/include/emlpress/rounding.hpp``), except on the
side of 0 where every term of a unit has one sign (sign-exact: such a sum keeps its sign
under any rounding, so an exact zero stays <= 0); LP and exact
bounds are certified from LP duals, whatever the solver's tolerances. After that widening a neuron is stable exactly when its bound
is on the right side of 0: stably active iff ``lower >= 0``, stably inactive iff
``upper <= 0``. No further tolerance is applied anywhere, so no neuron is ever called
stable on the wrong side of 0.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emlpress import _options, kernels
from emlpress.bounds.domain import Domain, EmptyDomainError, resolve
from emlpress.network import Network, box_points

__all__ = ["Bounds", "interval", "crown", "lp", "milp", "tighten", "on_points", "on_boxes",
           "stability", "Stability", "Domain", "EmptyDomainError"]

CHECK_POINTS = 32  # sampled points on which Bounds.check asks a network to stay inside bounds


@dataclass(frozen=True, eq=False)
class Bounds:
    """Pre-activation bounds per layer.

    ``lower[l]``, ``upper[l]``: arrays of shape ``(sizes[l+1],)`` for ``l = 0..L-1``; the last
    layer is the network output (linear). ``lo``/``hi`` is the input box they hold on.
    ``settled_by[l]`` names, per neuron, the method that produced its final bound
    (``settled``, when given, holds those arrays; else every neuron is ``method``'s);
    ``seconds`` maps each stage to the time it took. ``domain``: the :class:`Domain` with
    constraints they hold on (None: the box ``lo``/``hi``; else ``lo``/``hi`` is its
    tightened box, and the bounds hold on the domain only).
    """

    lower: tuple[np.ndarray, ...]
    upper: tuple[np.ndarray, ...]
    lo: np.ndarray
    hi: np.ndarray
    method: str
    settled: tuple[np.ndarray, ...] | None = None
    seconds: dict = field(default_factory=dict)
    #: exact bounds only (:func:`milp`): the branch-and-bound's work per layer
    search: pd.DataFrame | None = None
    #: bounds of :func:`on_points` / :func:`on_boxes` only: (LO, HI), one row per point
    #: (LO == HI) or small box they hold on; not the box between them
    parts: tuple | None = None
    #: :func:`on_boxes` only: the output layer's (lower, upper) on each part, (m, n_out) each
    part_output: tuple | None = None
    #: the constrained input domain they hold on (None: the box lo/hi)
    domain: Domain | None = None

    def __post_init__(self):
        if len(self.lower) != len(self.upper):
            raise ValueError("lower and upper must have one array per layer")
        for l, (a, b) in enumerate(zip(self.lower, self.upper)):
            if a.shape != b.shape:
                raise ValueError(f"layer {l}: lower {a.shape} and upper {b.shape} differ in shape")
            if not (a <= b).all():
                i = int(np.flatnonzero(~(a <= b))[0])
                raise ValueError(f"layer {l}, neuron {i}: lower {a[i]} > upper {b[i]}")

    @property
    def settled_by(self) -> tuple[np.ndarray, ...]:
        """Per layer, the name of the method that produced each neuron's final bound."""
        if self.settled is None:
            return tuple(np.full(a.shape, self.method, dtype=object) for a in self.lower)
        return self.settled

    @property
    def n_layers(self) -> int:
        return len(self.lower)

    def _layer(self, l: int) -> int:
        if not -self.n_layers <= l < self.n_layers:
            raise IndexError(f"layer {l} out of range for {self.n_layers} layers")
        return l % self.n_layers

    def stably_active(self, l: int) -> np.ndarray:
        """Boolean mask of the units of layer ``l`` with ``lower >= 0`` (ReLU is the identity)."""
        return self.lower[self._layer(l)] >= 0.0

    def stably_inactive(self, l: int) -> np.ndarray:
        """Boolean mask of the units of layer ``l`` with ``upper <= 0`` (ReLU output is 0)."""
        return self.upper[self._layer(l)] <= 0.0

    def unstable(self, l: int) -> np.ndarray:
        l = self._layer(l)
        return (self.lower[l] < 0.0) & (self.upper[l] > 0.0)

    @property
    def n_stable(self) -> int:
        """Stable hidden units (active or inactive); the output layer is not counted."""
        return int(
            sum(
                int(self.stably_active(l).sum() + self.stably_inactive(l).sum())
                for l in range(self.n_layers - 1)
            )
        )

    def summary(self) -> pd.DataFrame:
        """Per layer: role (hidden or output), units, stably active, stably inactive, unstable,
        range of the bounds. Indexed by the layer index the API takes (``lower[l]``,
        ``stably_active(l)``): 0 is the first hidden layer, ``n_layers - 1`` the output."""
        rows = []
        for l in range(self.n_layers):
            out = l == self.n_layers - 1
            act = int(self.stably_active(l).sum())
            ina = int(self.stably_inactive(l).sum())
            rows.append(
                {
                    "layer": l,
                    "role": "output" if out else "hidden",
                    "units": int(self.lower[l].size),
                    "stably_active": pd.NA if out else act,
                    "stably_inactive": pd.NA if out else ina,
                    "unstable": pd.NA if out else int(self.lower[l].size) - act - ina,
                    "min_lower": float(self.lower[l].min()),
                    "max_upper": float(self.upper[l].max()),
                    "mean_width": float(np.mean(self.upper[l] - self.lower[l])),
                }
            )
        return pd.DataFrame(rows).set_index("layer")

    def check(self, net: Network, lo=None, hi=None, domain: Domain | None = None) -> None:
        """Raise ``ValueError`` if these bounds do not fit ``net``'s layer sizes or, given a
        box ``lo``/``hi`` (or a :class:`Domain`), were computed on a domain that does not
        contain it (bounds of a polytope are refused on a box that is not inside it), or if
        ``net`` takes a value outside them at a sampled point of the box (the box centre,
        ``CHECK_POINTS`` seeded points and, in up to 6 dimensions, the corners; on a
        constrained domain, ``CHECK_POINTS`` of its points; bounds of
        :func:`on_points`: at their points, and never on a box): bounds of another network
        of the same sizes, or bounds that are not sound, would otherwise silently decide
        which neurons count as stable."""
        if domain is not None and not domain.constrained:
            lo, hi, domain = domain.lo, domain.hi, None
        if [a.size for a in self.lower] != net.sizes[1:]:
            raise ValueError(
                f"bounds have layer sizes {[a.size for a in self.lower]}, network has {net.sizes[1:]}"
            )
        near = None  # points of a domain within rounding of it (equality rows): a tolerance
        if self.parts is not None:
            if lo is not None or domain is not None:
                raise ValueError(
                    f"these bounds hold only on the {len(self.parts[0])} points or boxes they "
                    "were computed on (bounds.on_points, on_boxes), not on a box: they cannot "
                    "start a box method or a compression")
            PL, PH = self.parts  # the corners and centre of up to 4,096 of the parts
            pick = np.random.default_rng(0).choice(len(PL), min(len(PL), 4096), replace=False)
            PL, PH = PL[pick], PH[pick]
            X = np.unique(np.vstack([PL, PH, (PL + PH) / 2]), axis=0)
        elif self.domain is not None or domain is not None:
            X, near = self._check_domain(lo, hi, domain)
        else:
            if lo is not None and (np.any(self.lo > lo) or np.any(self.hi < hi)):
                raise ValueError(
                    f"the bounds ({self.method}) were computed on a smaller box "
                    f"[{self.lo.tolist()}, {self.hi.tolist()}] than [{np.asarray(lo).tolist()}, "
                    f"{np.asarray(hi).tolist()}]"
                )
            blo, bhi = (self.lo, self.hi) if lo is None else (np.asarray(lo, float), np.asarray(hi, float))
            X = np.vstack([(blo + bhi) / 2, box_points(blo, bhi, CHECK_POINTS, max_corner_dims=6)])
        for l, z in enumerate(net.preactivations(X)):
            tol = 0.0 if near is None else np.where(near[:, None], 1e-9 * (1 + np.abs(z)), 0.0)
            out = (z < self.lower[l] - tol) | (z > self.upper[l] + tol)
            if out.any():
                p, i = (int(v[0]) for v in np.nonzero(out))
                raise ValueError(
                    f"the bounds ({self.method}) do not hold for this network: layer {l}, neuron "
                    f"{i} takes {float(z[p, i])!r} at the input {X[p].tolist()}, outside "
                    f"[{float(self.lower[l][i])!r}, {float(self.upper[l][i])!r}] "
                    "(bounds of another network?)"
                )

    def _check_domain(self, lo, hi, domain: Domain | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Bounds.check with a constrained domain on either side: refuse a query domain
        not shown inside the bounds' own; the points to test, and which of them are only
        within rounding of the domain (not ``certainly_contains``)."""
        mine = self.domain
        if domain is not None:
            inside = (domain.within(mine) if mine is not None else
                      bool(np.all(domain.box_lo >= self.lo) and np.all(domain.box_hi <= self.hi)))
            if not inside:
                raise ValueError(f"the bounds ({self.method}) hold on {mine or 'a box'} "
                                 f"[{self.lo.tolist()}, {self.hi.tolist()}] only, not shown to "
                                 f"contain the domain asked for, {domain}")
            where = domain
        else:
            if lo is not None and not mine.contains_box(lo, hi):
                raise ValueError(
                    f"the bounds ({self.method}) hold on the constrained domain {mine} only, "
                    f"not on the box [{np.asarray(lo).tolist()}, {np.asarray(hi).tolist()}]: "
                    "compute bounds on that box, or give the domain")
            where = mine
        if lo is not None and domain is None and mine.contains_box(lo, hi):
            blo, bhi = np.asarray(lo, float), np.asarray(hi, float)
            return np.vstack([(blo + bhi) / 2, box_points(blo, bhi, CHECK_POINTS, max_corner_dims=6)]), None
        X = np.vstack([where.point[None, :], where.sample(CHECK_POINTS)])
        return X, ~where.certainly_contains(X)

    def __repr__(self) -> str:
        dom = "" if self.domain is None else f", domain={self.domain}"
        return (
            f"Bounds(method={self.method!r}, layers={[a.size for a in self.lower]}, "
            f"stable={self.n_stable}{dom})"
        )


def _trusted(lower, upper, lo, hi, method, seconds, domain=None) -> Bounds:
    """A ``Bounds`` from a kernel whose output is lower <= upper by construction.

    Skips ``__post_init__``'s checks, which cost about as much as the interval kernel's
    smallest layers; bounds built by users are always checked.
    """
    b = object.__new__(Bounds)
    for k, v in (
        ("lower", lower),
        ("upper", upper),
        ("lo", lo),
        ("hi", hi),
        ("method", method),
        ("settled", None),
        ("seconds", seconds),
        ("search", None),
        ("parts", None),
        ("part_output", None),
        ("domain", domain),
    ):
        object.__setattr__(b, k, v)
    return b


def _domain(net: Network, lo, hi, domain, A_ub, b_ub, A_eq, b_eq, l1):
    """(Domain or None, lo, hi): the constrained domain a method was given (None for a
    plain box) and the box to run on (the domain's tightened box)."""
    if domain is not None:
        if lo is not None or hi is not None:
            raise ValueError("give the box in domain= or as lo/hi, not both")
        d = resolve(net.n_in, None, None, domain, A_ub, b_ub, A_eq, b_eq, l1)
    else:
        lo, hi = net.domain(lo, hi)
        d = resolve(net.n_in, lo, hi, None, A_ub, b_ub, A_eq, b_eq, l1)
        if d is None:
            return None, lo, hi
    if not d.constrained:
        return None, d.lo, d.hi
    return d, d.box_lo, d.box_hi


def _refuse_constraints(where: str, d: Domain | None) -> None:
    if d is not None:
        raise NotImplementedError(
            f"{where}: domain (linear constraints or an l1 ball) is not supported by this "
            f"method yet; use lp(..., domain=...) (rows in every LP), or this method on the "
            f"domain's tightened box lo=domain.box_lo, hi=domain.box_hi (sound on the domain, "
            f"exact on that box)")


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


def check_finite(lower, upper, method: str, lo, hi, net: Network | None = None) -> None:
    """Refuse bounds that overflowed float64: an infinite or NaN bound is no answer. The
    message blames the larger in magnitude of the box and the network's parameters."""
    for l, (a, b) in enumerate(zip(lower, upper)):
        bad = np.flatnonzero(~(np.isfinite(a) & np.isfinite(b)))
        if bad.size:
            i = int(bad[0])
            box = float(max(np.abs(lo).max(), np.abs(hi).max()))
            par = max((float(np.abs(p).max(initial=0.0)) for p in (*net.weights, *net.biases)),
                      default=0.0) if net is not None else 0.0
            if par > box:
                cause = (f"the weights are too large (largest |weight| {par:.3g}; largest |bound| "
                         f"of the box {box:.3g}); scale the network's weights down")
            else:
                cause = (f"the input box is too large for this network (largest |bound| of the "
                         f"box {box:.3g}); scale the inputs or shrink the box")
            raise ValueError(f"{method} bounds overflow float64 at layer {l}, neuron {i} "
                             f"([{a[i]}, {b[i]}]): {cause}")


def interval(net: Network, lo=None, hi=None, *, domain: Domain | None = None, A_ub=None,
             b_ub=None, A_eq=None, b_eq=None, l1=None) -> Bounds:
    """Interval-arithmetic bounds of every pre-activation over the box ``[lo, hi]``.

    ``lo``/``hi`` default to the network's domain; float32 or float64 vectors of length
    ``net.n_in``. Exact for the first layer; sound (outward rounded) everywhere. With a
    :class:`Domain` (``domain=`` or the keywords ``A_ub`` ``(m, n_in)``, ``b_ub`` ``(m,)``,
    ``A_eq``, ``b_eq``, ``l1=(center, eps)``), over its rigorously tightened box.
    """
    d, lo, hi = _domain(net, lo, hi, domain, A_ub, b_ub, A_eq, b_eq, l1)
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
    d, lo, hi = _domain(net, lo, hi, domain, A_ub, b_ub, A_eq, b_eq, l1)
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


def gamma_slack(n_terms) -> float:
    """gamma(n) = 2 (n + 3) u of ``cpp/include/emlpress/rounding.hpp``: times the magnitude
    of the terms, the rounding of an n-term float64 sum and of the forward pass beside it."""
    return 2.0 * (n_terms + 3.0) * _UNIT


def forward_rounding(net: Network, lo, hi, upper=None) -> list[np.ndarray]:
    """Per layer, how far a float64 forward pass can round away from the exact
    pre-activation over the box [lo, hi]: gamma(n) (n the inputs summed up to that layer)
    times the composed magnitude |W_k| (... (|W_0| max(|lo|, |hi|) + |b_0|) ...) + |b_k|,
    over the units that `upper` (per layer, optional) does not prove inactive. The
    one-layer magnitude |W_k| |a_{k-1}| is far smaller when a layer's outputs cancel.
    Plus the absolute error of subnormal results, which the relative gamma does not
    cover: each product and sum may be off by half the subnormal spacing 2^-1074, so
    (n + 1) 2^-1074 per unit of a layer with n inputs, carried on by |W| (a review found
    bounds ulps inside a forward pass at values ~1e-320)."""
    cm = np.maximum(np.abs(lo), np.abs(hi))
    tiny = np.zeros(len(cm))  # the subnormal error carried so far
    n_terms, out = 0, []
    for k, (W, b) in enumerate(zip(net.weights, net.biases)):
        if k and upper is not None:
            cm = np.where(upper[k - 1] > 0, cm, 0.0)
        cm = np.abs(W) @ cm + np.abs(b)
        tiny = 2.0 * (np.abs(W) @ tiny) + (W.shape[1] + 1) * _SUBNORMAL
        n_terms += W.shape[1]
        out.append(round_up(gamma_slack(n_terms) * cm + tiny))
    return out


_SUBNORMAL = 2.0**-1074  # the spacing of float64 values below 2^-1022


def round_up(v: np.ndarray) -> np.ndarray:
    """Round a nonnegative error bound up past the rounding of the numpy arithmetic that
    computed it (relative error below n u << 1e-9 for any realistic width n)."""
    return v * (1.0 + 1e-9)


_UNIT = np.finfo(np.float64).eps / 2.0  # unit roundoff


def _per_neuron(net, lo, hi, init, method, *, threads, full, progress, d=None):
    """Layer by layer, tighten every target neuron with its own LP (see relaxation.py);
    ``d``: a constrained Domain whose rows join every LP (lo, hi its tightened box)."""
    from emlpress.bounds.relaxation import (ALPHA_ITERATIONS, ALPHA_STEP, NeuronProblems,
                                            nearest_neighbour_order, run_on_free_workers)

    if init is None:
        init = crown(net, lo, hi) if d is None else crown(net, domain=d)
    elif d is None:
        init.check(net, lo, hi)
    else:
        init.check(net, domain=d)
    n_threads = _options.threads(threads) or max(1, kernels.num_threads())
    lower = [np.array(a, dtype=np.float64) for a in init.lower]
    upper = [np.array(a, dtype=np.float64) for a in init.upper]
    settled = [np.array(a, dtype=object) for a in init.settled_by]
    store = kernels.LpRelaxation(lo, hi, False)
    workers = [NeuronProblems(net, lo, hi, store) for _ in range(n_threads)]
    if d is not None:  # the domain's rows, in every LP and in every certificate
        blk = store.add_domain(**d.rows())
        for w in workers:
            w.add_block(blk)
    t0 = time.perf_counter()
    fwd = forward_rounding(net, lo, hi, upper)  # exact LP values widened by it
    # a point of the domain (the box centre): a witness that the bound problems are feasible
    x0 = (lo + hi) / 2 if d is None else d.point
    zc = [z[0] for z in net.preactivations(x0[None, :])]
    # the first layer's interval bounds are exact on a box, not on a polytope
    layers = range(1 if d is None else 0, net.n_layers)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=net.n_layers - 1, desc=f"{method} bounds", unit="layer")
    lock = threading.Lock()
    with ThreadPoolExecutor(n_threads) as pool:
        for k in layers:
            blk = store.add_layer(net._core, k - 1, lower[k - 1], upper[k - 1]) if k else None
            aff = store.pre_activation(net._core, k)
            # a network point inside every bound so far proves the problem feasible
            witness = all(bool(np.all((lower[j] <= zc[j]) & (zc[j] <= upper[j]))) for j in range(k))
            for w in workers:
                if blk is not None:
                    w.add_block(blk)
                w.set_targets(k, aff, fwd[k])
                w.witness = witness
            hidden = k < net.n_layers - 1
            sign_only = hidden and not full
            if sign_only:
                targets = np.flatnonzero((lower[k] < 0) & (upper[k] > 0))
            else:
                targets = np.arange(lower[k].size)
            # similar objectives next to each other (each LP's starting basis also tries the
            # sides of the solutions just before it on the same thread)
            order = targets[nearest_neighbour_order(aff.A[targets])]
            if len(order):
                # a starting side per unstable unit for each LP, from alpha-CROWN
                live = order[np.any(aff.A[order] != 0, axis=1)]
                H = store.alpha_hints(workers[0].cost_idx, np.vstack([aff.A[live], -aff.A[live]]),
                                      ALPHA_ITERATIONS, ALPHA_STEP)
                rows = {(int(i), "min"): r for r, i in enumerate(live)}
                rows.update({(int(i), "max"): r + len(live) for r, i in enumerate(live)})
                for w in workers:
                    w.set_alpha(H, rows)
            solves, n_targets = [0], len(order)  # LPs solved in this layer, for the progress bar

            def phase(tasks, k=k, stop=sign_only):
                """Solve the (neuron, side) tasks in order, each thread taking the next one
                when it is free; then store the values."""
                def solve(t, task, out):
                    i, side = task
                    start = lower[k][i] if side == "min" else upper[k][i]
                    out.append((i, side, workers[t].side(i, side, float(start), stop)))
                    if bar is not None:
                        with lock:
                            solves[0] += 1
                            if solves[0] % 16 == 0:
                                bar.set_postfix(layer=k, targets=n_targets, solves=solves[0])

                # fixed slices: every run solves the same LPs from the same warm starts
                for part in run_on_free_workers(pool, n_threads, tasks, lock, solve, fixed=True):
                    for i, side, v in part:
                        bound = lower[k] if side == "min" else upper[k]
                        if v != bound[i]:
                            settled[k][i] = method
                        bound[i] = v

            # consecutive tasks keep one objective sign, so that the hints stay close
            if sign_only:
                # first the side more likely to prove the unit stable, then the other side
                # of the units it did not
                max_first = upper[k][order] < -lower[k][order]
                phase([(int(i), "min") for i in order[~max_first]] +
                      [(int(i), "max") for i in order[max_first]])
                open_ = (lower[k][order] < 0) & (upper[k][order] > 0)
                phase([(int(i), "max") for i in order[open_ & ~max_first]] +
                      [(int(i), "min") for i in order[open_ & max_first]])
            else:
                phase([(int(i), "min") for i in order] + [(int(i), "max") for i in order])
            if bar is not None:
                bar.set_postfix(layer=k, targets=n_targets, solves=solves[0])
                bar.update(1)
    if bar is not None:
        bar.close()
    seconds = dict(init.seconds)
    seconds[method] = time.perf_counter() - t0
    return Bounds(tuple(lower), tuple(upper), lo, hi, method, tuple(settled), seconds, domain=d)


def lp(net: Network, lo=None, hi=None, init: Bounds | None = None, threads: int | None = None,
       full: bool = False, progress: bool = False, *, domain: Domain | None = None, A_ub=None,
       b_ub=None, A_eq=None, b_eq=None, l1=None) -> Bounds:
    """LP-relaxation bounds, layer by layer: for each neuron, the min and max of its
    pre-activation over the triangle relaxation of every earlier unstable ReLU (the LP
    relaxation of the big-M encoding), using the tightest bounds known so far.

    ``init`` (default :func:`crown`) gives the starting bounds; neurons they already prove
    stable are not re-solved unless ``full=True``; without ``full`` a hidden neuron's
    second LP is skipped once the first proves it stable (its value then stays at
    ``init``'s) and the dual simplex stops as soon as the sign is proven. Stably inactive
    units are eliminated from the LP, stably active ones substituted. Every value is made
    rigorous from the LP's dual solution, whatever the solver's tolerances. ``threads``
    HiGHS instances (default: all cores) split each layer's neurons into fixed slices, so
    the result is the same on every run with the same ``threads`` (bit for bit; another
    thread count may differ in the last digits, each result sound).

    On a :class:`Domain` (keywords as :func:`interval`) the LPs run over its tightened box
    with its rows added to every LP (an l1 ball as ``t_i >= |x_i - center_i|``,
    ``sum t <= eps``), and the certificates count those rows' multipliers too; ``init``
    must hold on that domain.
    """
    d, lo, hi = _domain(net, lo, hi, domain, A_ub, b_ub, A_eq, b_eq, l1)
    return _per_neuron(net, lo, hi, init, "lp", threads=threads, full=full, progress=progress, d=d)


def milp(net: Network, lo=None, hi=None, init: Bounds | None = None, time_limit: float = 10.0,
         threads: int | None = None, full: bool = False, progress: bool = False,
         node_limit: int | None = None, rule: str | None = None, split: str | None = None, *,
         deterministic: bool = False,
         domain: Domain | None = None, A_ub=None, b_ub=None, A_eq=None, b_eq=None,
         l1=None) -> Bounds:
    """Exact bounds by emlpress' own branch-and-bound over the phases of earlier unstable
    ReLUs (``emlpress.bounds.bab``), layer by layer, each layer's relaxation built on the
    exact bounds of the layers before it.

    What is rigorous: every node's value is the LP relaxation of the big-M encoding with
    the node's phases fixed, certified from its row duals over emlpress' own rows
    (Neumaier-Shcherbina, as :func:`lp`), a node is dropped as infeasible only on a checked
    Farkas certificate, and the bound returned is the worst certified value over all
    leaves, widened by the float64 rounding of a forward pass. So whatever HiGHS'
    tolerances, and whenever ``time_limit`` (seconds per neuron and side) or
    ``node_limit`` (nodes per neuron and side) stops a search, the bound is sound; it is
    exact (within ``bab.GAP_TOL`` of a witness the network reaches) when the search ends.
    HiGHS' MIP is not used.

    Hidden units are searched only for their sign unless ``full=True``: a unit shown
    unstable by a witness (an input of the box where its pre-activation has each sign:
    seeded samples, projected-gradient attacks, node LP optima) keeps its starting bound,
    a stable one is proven so. The output layer always gets exact bounds. ``init``
    (default :func:`lp`, itself started from :func:`crown`) gives the starting bounds,
    never loosened: it sets the big-M of every unit left unstable. ``split`` picks what a
    node splits (``bab.SPLITS``: ``"relu"`` the phases, ``"input"`` the input box, default
    ``"auto"``: the input box for at most ``bab.INPUT_DIMS`` inputs) and ``rule`` the
    branching rule of the phase splits (``bab.RULES``, default ``bab.RULE``). The result's
    ``search`` table gives per layer (indexed as ``lower``/``upper``) the sides searched,
    nodes explored, witnesses, proofs and the sides left unresolved by a limit.

    ``domain`` (and the keywords of :func:`interval`): a box only for now; a domain with
    linear constraints or an l1 ball raises ``NotImplementedError`` (:func:`lp` takes it).

    Repeatability: with ``threads`` > 1 the searches share their witnesses and proofs as
    they find them, so two runs can differ: a hidden unit keeps ``init``'s bound or is
    proven stable on the same side (the stable sets are equal), and where no limit stopped
    a search an output bound differs by at most ``bab.GAP_TOL * max(1, |bound|)`` (each is
    within that of a value the network takes). ``deterministic=True`` runs the searches on
    one thread (``init``'s LPs still use ``threads``; :func:`lp` is repeatable): the same
    bounds on every run, unless ``time_limit`` stops a search (use ``node_limit``)."""
    from emlpress.bounds import bab

    d, lo, hi = _domain(net, lo, hi, domain, A_ub, b_ub, A_eq, b_eq, l1)
    _refuse_constraints("milp", d)
    n_threads = _options.threads(threads) or max(1, kernels.num_threads())
    time_limit = _options.seconds("time_limit", time_limit)
    if node_limit is not None:
        node_limit = _options.positive_int("node_limit", node_limit, " or None")
    split = bab.SPLIT if split is None else split
    rule = bab.RULE if rule is None else rule
    bab.check_search(split, rule)  # before the LP start is computed
    if init is None:
        init = lp(net, lo, hi, threads=threads)
    else:
        init.check(net, lo, hi)
    t0 = time.perf_counter()
    lower, upper, settled, search = bab.exact_bounds(
        net, lo, hi, init, time_limit=time_limit, node_limit=node_limit,
        threads=1 if deterministic else n_threads,
        full=full, progress=progress, rule=rule, split=split)
    seconds = dict(init.seconds)
    seconds["milp"] = time.perf_counter() - t0
    return Bounds(tuple(lower), tuple(upper), lo, hi, "milp", tuple(settled), seconds, search)


#: the names ``tighten`` takes
METHODS = ("interval", "crown", "lp", "milp", "exact", "stability", "progressive")


def tighten(net: Network, lo=None, hi=None, method: str = "progressive", *,
            use_milp: bool = False, milp_time_limit: float = 10.0, threads: int | None = None,
            progress: bool = False, time_limit: float | None = None,
            deterministic: bool = False,
            domain: Domain | None = None, A_ub=None, b_ub=None, A_eq=None, b_eq=None,
            l1=None) -> Bounds:
    """One entry point for every method: ``interval``, ``crown``, ``lp``, ``milp`` (alias
    ``exact``: :func:`milp`'s branch-and-bound), ``stability`` (:func:`stability`'s
    bounds: CROWN with every unit it proves stable at 0 on its proven side; ``time_limit``
    seconds in all, default ``None``: ``stability.TIME_LIMIT``, ``math.inf``: none) or
    ``progressive`` (interval, then CROWN, then LP only for the neurons still unstable,
    then, with ``use_milp``, MILP only for those still unstable). The result's
    ``settled_by`` names the stage that produced each neuron's bound and ``seconds`` the
    time per stage. ``deterministic``: see :func:`milp`.

    ``domain`` (or the keywords ``A_ub``, ``b_ub``, ``A_eq``, ``b_eq``, ``l1``, see
    :func:`interval`): the bounds hold on that :class:`Domain`; ``milp``, ``exact``,
    ``stability`` and ``use_milp`` refuse one with constraints (``NotImplementedError``)."""
    threads = _options.threads(threads)
    milp_time_limit = _options.seconds("milp_time_limit", milp_time_limit)
    if method not in METHODS:
        raise ValueError(f"unknown bound method {method!r}: expected one of {METHODS}")
    d, lo, hi = _domain(net, lo, hi, domain, A_ub, b_ub, A_eq, b_eq, l1)
    if method in ("milp", "exact", "stability") or use_milp:
        _refuse_constraints(f"tighten(method={method!r}{', use_milp=True' if use_milp else ''})", d)
    # the box, or the domain, as the methods take it
    where = {"lo": lo, "hi": hi} if d is None else {"domain": d}
    if method == "interval":
        return interval(net, **where)  # fast paths: no stage bookkeeping needed
    if method == "crown":
        return crown(net, **where)
    if method == "lp":
        return lp(net, threads=threads, progress=progress, **where)
    if method in ("milp", "exact"):  # "exact": the same branch-and-bound, by what it gives
        return milp(net, lo, hi, time_limit=milp_time_limit, threads=threads, progress=progress,
                    deterministic=deterministic)
    if method == "stability":
        from emlpress.bounds.stability import TIME_LIMIT

        return stability(net, lo, hi, time_limit=TIME_LIMIT if time_limit is None else time_limit,
                         threads=threads, progress=progress).bounds
    bi = interval(net, **where)
    bc = crown(net, **where)
    settled = tuple(np.where((c_l > i_l) | (c_u < i_u), "crown", "interval").astype(object)
                    for c_l, i_l, c_u, i_u in zip(bc.lower, bi.lower, bc.upper, bi.upper))
    bc = Bounds(bc.lower, bc.upper, bc.lo, bc.hi, "crown", settled,
                {"interval": bi.seconds["interval"], "crown": bc.seconds["crown"]}, domain=d)
    b = lp(net, init=bc, threads=threads, progress=progress, **where)
    if use_milp:
        b = milp(net, lo, hi, init=b, time_limit=milp_time_limit, threads=threads, progress=progress,
                 deterministic=deterministic)
    return Bounds(b.lower, b.upper, b.lo, b.hi, "progressive", b.settled, b.seconds, domain=d)


from emlpress.bounds.stability import Stability  # noqa: E402  (uses Bounds above)
from emlpress.bounds.stability import N_SAMPLES as _STABILITY_SAMPLES  # noqa: E402
from emlpress.bounds.stability import TIME_LIMIT as _STABILITY_LIMIT  # noqa: E402
from emlpress.bounds.stability import stability as _stability  # noqa: E402


def stability(net: Network, lo=None, hi=None, init=None, time_limit: float | None = _STABILITY_LIMIT,
              *, split: str = "auto", threads: int | None = None,
              n_samples: int = _STABILITY_SAMPLES, progress: bool = False,
              domain: Domain | None = None, A_ub=None, b_ub=None, A_eq=None, b_eq=None,
              l1=None) -> Stability:
    """:func:`emlpress.bounds.stability.stability` (the exact stable sets on a box; its
    arguments, ``time_limit`` defaulting to ``stability.TIME_LIMIT``), with ``domain`` and the
    keywords of :func:`interval`: a box only for now; a domain with linear constraints or an
    l1 ball raises ``NotImplementedError``."""
    if domain is not None or any(v is not None for v in (A_ub, b_ub, A_eq, b_eq, l1)):
        d, lo, hi = _domain(net, lo, hi, domain, A_ub, b_ub, A_eq, b_eq, l1)
        _refuse_constraints("stability", d)
    return _stability(net, lo, hi, init, time_limit, split=split, threads=threads,
                      n_samples=n_samples, progress=progress)
