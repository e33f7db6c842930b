"""Sound pre-activation bounds of every neuron over an input box.

Tolerance policy (one for all methods): each method widens its bounds outward at the
moment it computes them, by the rounding error of float64 arithmetic (``gamma_n`` times
the magnitude of the terms, see ``cpp/include/emlpress/rounding.hpp``) and, for LP/MILP,
by the solver's tolerances. After that widening a neuron is stable exactly when its bound
is on the right side of 0: stably active iff ``lower >= 0``, stably inactive iff
``upper <= 0``. No further tolerance is applied anywhere, so no neuron is ever called
stable on the wrong side of 0.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emlpress import _core
from emlpress.network import Network

__all__ = ["Bounds", "interval", "crown"]


@dataclass(frozen=True, eq=False)
class Bounds:
    """Pre-activation bounds per layer.

    ``lower[l]``, ``upper[l]``: arrays of shape ``(sizes[l+1],)`` for ``l = 0..L-1``; the last
    layer is the network output (linear). ``lo``/``hi`` is the input box they hold on.
    ``settled_by[l]`` names, per neuron, the method that produced its final bound
    (``settled``, when given, holds those arrays; else every neuron is ``method``'s);
    ``seconds`` maps each stage to the time it took.
    """

    lower: tuple[np.ndarray, ...]
    upper: tuple[np.ndarray, ...]
    lo: np.ndarray
    hi: np.ndarray
    method: str
    settled: tuple[np.ndarray, ...] | None = None
    seconds: dict = field(default_factory=dict)

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
        """Per layer: units, stably active, stably inactive, unstable, range of the bounds.

        Hidden layers are numbered 1..L-1 as in the literature; the last row is the output.
        """
        rows = []
        for l in range(self.n_layers):
            out = l == self.n_layers - 1
            act = int(self.stably_active(l).sum())
            ina = int(self.stably_inactive(l).sum())
            rows.append(
                {
                    "layer": "output" if out else str(l + 1),
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

    def check(self, net: Network) -> None:
        """Raise ``ValueError`` if these bounds do not fit ``net``'s layer sizes."""
        if [a.size for a in self.lower] != net.sizes[1:]:
            raise ValueError(
                f"bounds have layer sizes {[a.size for a in self.lower]}, network has {net.sizes[1:]}"
            )

    def __repr__(self) -> str:
        return (
            f"Bounds(method={self.method!r}, layers={[a.size for a in self.lower]}, "
            f"stable={self.n_stable})"
        )


def _run(kernel, name: str, net: Network, lo, hi) -> Bounds:
    lo, hi = net.domain(lo, hi)
    t0 = time.perf_counter()
    lower, upper = kernel(net._core, lo, hi)
    dt = time.perf_counter() - t0
    return Bounds(tuple(lower), tuple(upper), lo, hi, name, seconds={name: dt})


def interval(net: Network, lo=None, hi=None) -> Bounds:
    """Interval-arithmetic bounds of every pre-activation over the box ``[lo, hi]``.

    ``lo``/``hi`` default to the network's domain; float32 or float64 vectors of length
    ``net.n_in``. Exact for the first layer; sound (outward rounded) everywhere.
    """
    return _run(_core.interval, "interval", net, lo, hi)


def crown(net: Network, lo=None, hi=None) -> Bounds:
    """Backward linear-relaxation (CROWN / DeepPoly) bounds with the adaptive lower slope.

    Never looser than :func:`interval` on any neuron (the two are intersected). Units that
    interval arithmetic already proves stable keep their interval bounds: their ReLU is
    exact in every relaxation, so their bound values change nothing downstream.
    """
    return _run(_core.crown, "crown", net, lo, hi)
