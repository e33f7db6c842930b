"""What the peers' adapters share: a chain of dense layers read from a peer's model, the
emlpress :class:`~emlpress.Network` it is, its sound bounds on each input box, and the
report of what was written back (:class:`Tightening`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emlpress.bounds import Bounds
from emlpress.bounds.methods import get as method_by_name
from emlpress.bounds.methods import tighten
from emlpress.network import Network

__all__ = ["Dense", "Tightening", "chain_network", "row_bounds", "UnsupportedPeerModel"]


class UnsupportedPeerModel(ValueError):
    """A peer's model that is not a dense ReLU chain (or not built yet): the message names the
    layer, its type or activation, and what is supported."""


@dataclass
class Dense:
    """One dense layer as the peer encodes it: ``W`` ``(n_out, n_in)`` and ``b`` ``(n_out,)``
    float64 (the peer's own coefficients, widened exactly), whether a ReLU follows, the peer's
    variables of its pre-activation (``pre``) and, with a ReLU, of its output (``post``), and
    ``where``: the layer's name in the peer, for messages."""

    W: np.ndarray
    b: np.ndarray
    relu: bool
    pre: object
    post: object
    where: str


def chain_network(layers: list[Dense], lo=None, hi=None) -> Network:
    """The :class:`Network` of a chain of :class:`Dense` layers: ReLU after every layer but the
    last (which may have one too: the peer's output is then the ReLU's, and its bounds are
    written from the last layer's). A hidden layer without ReLU is refused by its name."""
    if not layers:
        raise UnsupportedPeerModel("the peer's model has no dense layer")
    for d in layers[:-1]:
        if not d.relu:
            raise UnsupportedPeerModel(
                f"{d.where}: a hidden dense layer without ReLU (emlpress' networks have ReLU "
                "after every layer but the last)")
    for d, e in zip(layers, layers[1:]):
        if e.W.shape[1] != d.W.shape[0]:
            raise UnsupportedPeerModel(f"{e.where}: takes {e.W.shape[1]} inputs, the layer before "
                                       f"gives {d.W.shape[0]}")
    return Network([d.W for d in layers], [d.b for d in layers], lo, hi)


def dense(W_in_out, b, relu: bool, pre, post, where: str) -> Dense:
    """A :class:`Dense` from a peer's ``(n_in, n_out)`` coefficients (gurobi-ml's and OMLT's
    order) and its intercept (a scalar broadcasts); non-finite coefficients are refused."""
    W = np.asarray(W_in_out, dtype=np.float64).T.copy()
    b = np.broadcast_to(np.asarray(b, dtype=np.float64), (W.shape[0],)).copy()
    if not (np.isfinite(W).all() and np.isfinite(b).all()):
        raise UnsupportedPeerModel(f"{where}: non-finite weights or biases")
    return Dense(W, b, relu, pre, post, where)


@dataclass(frozen=True)
class Tightening:
    """What :func:`~emlpress.interop.tighten_gurobi_ml` / :func:`~emlpress.interop.tighten_omlt`
    did: ``network``, the emlpress :class:`Network` of the peer's layers; ``bounds``, its
    sound pre-activation :class:`Bounds` on each input row's box (gurobi-ml takes several rows
    of inputs; OMLT one); ``method`` the bound method; ``written``, how many variable bounds
    (and big-M constants) became tighter; ``fixed``, how many units were fixed to their linear
    piece (a binary fixed: OMLT's big-M; gurobi-ml's max constraint is fixed by its bounds:
    0 there); ``seconds`` the bound computation's time and ``total_s`` the whole call's."""

    network: Network
    bounds: tuple[Bounds, ...]
    method: str
    written: int
    fixed: int
    seconds: float
    total_s: float
    rows: int = field(default=1)

    @property
    def n_stable(self) -> int:
        """Hidden units stable on their row's box, summed over the rows."""
        return sum(b.n_stable for b in self.bounds)

    def summary(self) -> pd.DataFrame:
        """Per input row: hidden units, stably active, stably inactive, unstable."""
        rows = []
        for r, b in enumerate(self.bounds):
            hidden = range(b.n_layers - 1)
            act = sum(int(b.stably_active(l).sum()) for l in hidden)
            ina = sum(int(b.stably_inactive(l).sum()) for l in hidden)
            units = sum(b.lower[l].size for l in hidden)
            rows.append({"row": r, "hidden": units, "stably active": act, "stably inactive": ina,
                         "unstable": units - act - ina})
        return pd.DataFrame(rows).set_index("row")


def row_bounds(net: Network, boxes: list[tuple[np.ndarray, np.ndarray]], method: str,
               time_limit: float | None, threads: int | None) -> tuple[list[Bounds], float]:
    """Sound bounds of ``net`` on each box (one computation per distinct box) and the seconds."""
    method_by_name(method)  # an unknown name fails before any work, naming the known ones
    t0 = time.perf_counter()
    done: dict[bytes, Bounds] = {}
    out = []
    for lo, hi in boxes:
        key = lo.tobytes() + hi.tobytes()
        if key not in done:
            done[key] = tighten(net, lo, hi, method=method, time_limit=time_limit, threads=threads)
        out.append(done[key])
    return out, time.perf_counter() - t0


def intersect(old_lo, old_hi, new_lo, new_hi):
    """The tighter of two bound pairs (arrays; None or +-inf for no bound) and how many of the
    bounds changed: written bounds never loosen what the model already has."""
    old_lo = np.asarray([-np.inf if v is None else v for v in np.ravel(old_lo)], dtype=np.float64)
    old_hi = np.asarray([np.inf if v is None else v for v in np.ravel(old_hi)], dtype=np.float64)
    lo = np.maximum(old_lo, np.ravel(new_lo))
    hi = np.minimum(old_hi, np.ravel(new_hi))
    return lo, hi, int((lo > old_lo).sum() + (hi < old_hi).sum())
