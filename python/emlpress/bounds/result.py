"""What every bound method returns: :class:`Bounds`, pre-activation bounds per layer on
the box (or :class:`~emlpress.bounds.domain.Domain`) they hold on, with the checks that
refuse bounds of another network, of a smaller domain, or overflowed ones."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emlpress.bounds.domain import Domain
from emlpress.network import Network, box_points

__all__ = ["Bounds", "check_finite", "CHECK_POINTS"]

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

    def report(self, net: Network, source: str, method: str | None = None,
               domain: Domain | None = None) -> str:
        """What ``emlpress bounds`` prints (lines, no final newline): the network read from
        ``source`` (its file), the input box, ``domain`` (default the bounds' own), the
        ``method`` asked for (default :attr:`method`) with each stage's time in ms and the
        stable hidden units, the :meth:`summary` table and, for exact bounds, the
        branch-and-bound's work per layer (``search``)."""
        domain = self.domain if domain is None else domain
        lines = [f"{source}: {net}", f"input box: lo={self.lo.tolist()} hi={self.hi.tolist()}"]
        if domain is not None:
            lines.append(f"input domain: {domain} (the box above is its tightened box; bounds "
                         "hold on the domain only)")
        stages = ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in self.seconds.items())
        lines.append(f"method: {method or self.method} ({stages}), stable hidden units: "
                     f"{self.n_stable} of {net.n_neurons}")
        lines.append(self.summary().to_string())
        if self.search is not None:
            lines.append("branch-and-bound per layer (unresolved: sides cut short by the limit, "
                         "bounds sound):")
            lines.append(self.search.to_string(float_format=lambda v: f"{v:.3f}"))
        return "\n".join(lines)

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

