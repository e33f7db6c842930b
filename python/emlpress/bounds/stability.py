"""Exact stability of every hidden unit: witnesses first, then one search for all the units
no witness decides (after Serra, Yu, Kumar and Ramalingam, NeurIPS 2021, "Scaling Up Exact
Neural Network Compression by ReLU Stability", which finds every stable unit with one MILP
instead of one per neuron).

A unit is *unstable* once two inputs of the box are known where its float64 pre-activation
is positive and negative; most units are shown so by seeded samples (and the box corners),
then by projected-gradient attacks on the side no sample reached. Every other unit has one
*open side*: the sign no witness contradicts (``z <= 0``: inactive, or ``z >= 0``: active),
which a search then tries to prove.

Search over the input box (``split="input"``, the default for at most ``INPUT_DIMS`` = 5
inputs): a queue of sub-boxes, breadth first, each bounded by CROWN on every layer at once
(``kernels.crown_boxes``, the boxes over threads, every layer intersected with its parent
box's bounds, and so with the starting bounds, which hold on every sub-box). A box on which every open unit it still matters for is
proven is a leaf; else its centre and corners are witnesses and it is halved along its
widest dimension (relative to the box), its children checking only the units it failed on
(a bound that holds on a box holds on its parts). A unit is proven stable when it holds on
every leaf: the leaves cover the box, and each leaf's bound is sound there, so the proof is
as sound as CROWN's outward-rounded bounds. A box narrower than ``MIN_WIDTH`` times the box
is not split: a unit still failing there is unresolved (its value is within the bound's
rounding slack of 0 there, or at a kink CROWN cannot separate).

Search over ReLU phases (``split="relu"``, for more inputs): the sign-only branch-and-bound
of :mod:`emlpress.bounds.bab` on rigorous LPs, unit by unit and layer by layer, sharing its
witnesses (every node LP's optimum is a forward-pass witness for every unit), in passes of
growing node limits per side (``PHASE_PASSES``). Before it, :func:`emlpress.bounds.phases.search`
attacks every open side in one batch and runs a batched phase branch-and-bound on the
second hidden layer's open sides (beta-CROWN style: the first layer is affine in the
input, so linear bounds of its ReLUs with Lagrange multipliers on the fixed phases give, at
every node, a linear function of the input whose minimum over the box is at a corner, a
witness too), all sides' nodes evaluated together.

The first hidden layer is decided in closed form: its pre-activations are affine in the
input, so the box corner where each row's weights point up (down) attains its maximum
(minimum); those corners are witnesses from the start, and interval arithmetic, exact
there up to rounding, proves every unit they do not show unstable.

Rounding: bounds carry the float64 rounding slack (``bounds`` module docstring), except
where every term of a unit has one sign (sign-exact, ``cpp/include/emlpress/rounding.hpp``:
an exact zero stays <= 0). A unit whose bound on a sub-box misses its sign only by the
rounding slack (``_slack_tolerance``) is not split for: no split can remove the slack. It
and every unit the search leaves open then go to the rigorous per-neuron LP of
:func:`emlpress.bounds.lp`, started from the search's bounds, while time is left; so
``stability`` proves at least what ``lp`` proves from the same start.

Polytope domains (``domain=``, linear rows and an l1 ball): witnesses are points of the
domain in exact arithmetic (``Domain.holds``, no tolerance; samples of the domain, and
box points, attack steps and LP optima pulled toward its interior point, ``Domain.admit``);
the first layer's extremes are its LPs over the domain (``init`` is CROWN on the domain);
the input search drops a sub-box only on a checked certificate that the domain misses it
(``Domain.excludes_boxes``), and its CROWN bounds on the other sub-boxes hold on their
points of the domain; the phase search and the LP step carry the domain's rows in every
LP and certificate. :func:`emlpress.bounds.phases.search` is box-only (its attack points
and corners are not points of the domain) and is skipped.

Either way the answer is a proof or a checked witness, never a guess: ``unresolved`` is
what a limit (or a unit within the rounding slack of 0 that no LP decides) leaves. The
default limit is ``TIME_LIMIT`` seconds in all, so that every entry point returns.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from emlpress import _options, kernels
from emlpress.bounds import phases
from emlpress.bounds.bab import _start_points, exact_bounds
from emlpress.bounds.domain import Domain, domain_and_box
from emlpress.bounds.linear import crown
from emlpress.bounds.relaxation import BoundError, lp
from emlpress.bounds.result import Bounds
from emlpress.bounds.rounding import forward_rounding, gamma_slack
from emlpress.bounds.witnesses import _attack, _corners, _Witnesses, first_layer_corners
from emlpress.network import Network, box_points

__all__ = ["Stability", "stability", "STATUSES", "SPLITS", "INPUT_DIMS", "TIME_LIMIT"]

#: the status of a hidden unit, as ``Stability.status`` codes 0..3
STATUSES = ("active", "inactive", "unstable", "unresolved")
ACTIVE, INACTIVE, UNSTABLE, UNRESOLVED = range(4)
#: what the search splits: the input box, the phases of earlier ReLUs (bab), or by inputs
SPLITS = ("input", "relu", "auto")
#: "auto" splits the input box for at most this many inputs, else the phases. Trained-like
#: networks [n, 64, 64, 32, 1] (benches/README.md, "Exact stable sets"): input / relu
#: 0.09 / 0.28 s (3 inputs), 0.05 / 0.19 s (4), 0.14 / 2.8 s (5); [7, 64, 64, 1]: 0.94 /
#: 0.08 s; a random [4, 32, 32, 16, 1]: 0.64 s / unresolved at 60 s
INPUT_DIMS = 5
#: seeded uniform samples of the box before any search (plus its corners in up to 6 dims)
N_SAMPLES = 4096
#: boxes bounded per crown_boxes call (and between two checks of the time limit)
BOX_BATCH = 64
#: a sub-box narrower than this (relative to the box, in every splittable dimension) is
#: not split again
MIN_WIDTH = 1e-9
#: the phase search's node limits per side, pass after pass (each pass takes the sides the
#: last one left open; None: no limit). MNIST 784-100-100-10, radius 0.05 around image 0,
#: 36 open sides of layer 1 (loaded 2-core VM): one unlimited pass proved 6 in 60 s, passes
#: (100, None) 16 in 30 s. The sides left then took 151, 233, 785 and 10,213 nodes each
#: alone (3.5 ms a node): growing limits keep one hard side from taking the time of many
PHASE_PASSES = (100, 400, 1600, None)
#: the default limit of :func:`stability` (seconds in all), and so of
#: ``tighten(method="stability")``, ``compress.lossless(bounds="stability")`` and the CLI
#: (``bounds --method stability``, ``compress --bounds stability``): a search returns
#: what it proved by then, the rest unresolved; ``None`` (or ``math.inf``) lifts it
TIME_LIMIT = 300.0


@dataclass(frozen=True, eq=False)
class Stability:
    """The stability of every hidden unit over the box ``[lo, hi]``.

    ``status[l]`` (hidden layer ``l`` = the index of ``Bounds.lower[l]``) holds one code per
    unit into :data:`STATUSES`. ``positive[l]`` / ``negative[l]`` (shape ``(units, n_in)``)
    hold, for every unstable unit, an input of the box where a float64 forward pass gives
    it a positive / negative pre-activation (NaN rows elsewhere). ``bounds`` are the starting
    bounds with every proven unit's bound moved to 0 on its proven side (and, when the input
    search finished, intersected with the union of its leaves' bounds): a :class:`Bounds`
    that ``compress.lossless`` and the MILP encoder take. ``search`` has one row per hidden
    layer: units, stable by the starting bounds, shown unstable by witnesses, proven by the
    search, unresolved."""

    status: tuple[np.ndarray, ...]
    positive: tuple[np.ndarray, ...]
    negative: tuple[np.ndarray, ...]
    lo: np.ndarray
    hi: np.ndarray
    bounds: Bounds
    search: pd.DataFrame
    split: str
    seconds: dict = field(default_factory=dict)
    #: input search only: boxes bounded, levels of the box tree, leaves, whether it finished
    boxes: dict = field(default_factory=dict)
    #: the constrained input domain the statuses hold on (None: the box lo/hi, else its
    #: tightened box); every witness lies in it exactly (``Domain.holds``)
    domain: Domain | None = None

    def _mask(self, l: int, code: int) -> np.ndarray:
        if not -len(self.status) <= l < len(self.status):
            raise IndexError(f"hidden layer {l} out of range for {len(self.status)} hidden layers")
        return self.status[l] == code

    def stably_active(self, l: int) -> np.ndarray:
        return self._mask(l, ACTIVE)

    def stably_inactive(self, l: int) -> np.ndarray:
        return self._mask(l, INACTIVE)

    def unstable(self, l: int) -> np.ndarray:
        return self._mask(l, UNSTABLE)

    def unresolved(self, l: int) -> np.ndarray:
        return self._mask(l, UNRESOLVED)

    @property
    def n_stable(self) -> int:
        return int(sum(int(np.sum(s <= INACTIVE)) for s in self.status))

    @property
    def n_unresolved(self) -> int:
        return int(sum(int(np.sum(s == UNRESOLVED)) for s in self.status))

    def summary(self) -> pd.DataFrame:
        """Per hidden layer (indexed as ``Bounds.lower``): units and the count of each status."""
        rows = [{"layer": l, "units": int(s.size),
                 **{name: int(np.sum(s == c)) for c, name in enumerate(STATUSES)}}
                for l, s in enumerate(self.status)]
        return pd.DataFrame(rows, columns=["layer", "units", *STATUSES]).set_index("layer")

    def report(self, time_limit: float | None) -> str:
        """What ``emlpress bounds --method stability`` prints after the bounds (lines, no
        final newline): what left units unresolved (``time_limit``: the seconds the search
        was given, None or inf: none), the :meth:`summary` table and the input boxes bounded."""
        limited = time_limit is not None and math.isfinite(time_limit)
        limit = (f"the time limit ({time_limit:g} s) or the search's own limits" if limited else
                 "sub-boxes too narrow to split (1e-9 of the box; no time limit was set)"
                 if self.split == "input" else "the search (no time limit was set)")
        lines = [f"stability of every hidden unit ({self.split} search; unstable: two witness "
                 f"inputs checked by a forward pass; unresolved: left open by {limit}):",
                 self.summary().to_string()]
        if self.boxes.get("boxes"):
            stop = "stopped by the time limit" if limited else "stopped early"
            lines.append(f"input boxes bounded: {self.boxes['boxes']}, depth "
                         f"{self.boxes['depth']}, {'finished' if self.boxes['finished'] else stop}")
        return "\n".join(lines)

    def check(self, net: Network) -> None:
        """Re-run every witness through ``net`` and raise ``BoundError`` if one does not give
        its sign, or if a unit called stable takes the other sign at a witness of any unit
        or at a sampled point of the box (of the domain: its samples that lie in it exactly,
        and every witness must lie in it exactly too)."""
        d = self.domain
        if d is None:
            pts = [np.vstack([self.lo, self.hi, (self.lo + self.hi) / 2,
                              box_points(self.lo, self.hi, 256, seed=1)])]
        else:
            P = np.vstack([d.point[None, :], d.sample(256, seed=1)])
            pts = [P[d.holds(P)]]
        for l, s in enumerate(self.status):
            u = np.flatnonzero(s == UNSTABLE)
            if not u.size:
                continue
            for X, sign in ((self.positive[l], 1.0), (self.negative[l], -1.0)):
                z = net.preactivations(X[u])[l][np.arange(u.size), u]
                bad = np.flatnonzero(~(sign * z > 0))
                if d is not None and not bad.size:
                    bad = np.flatnonzero(~d.holds(X[u]))
                if bad.size:
                    i = int(u[bad[0]])
                    raise BoundError(f"layer {l}, unit {i}: its {'positive' if sign > 0 else 'negative'} "
                                     f"witness {X[i].tolist()} gives {float(z[bad[0]])!r}")
                pts.append(X[u])
        P = np.vstack(pts)
        for l, z in enumerate(net.preactivations(P)[:len(self.status)]):
            s = self.status[l]
            # (no point at all: a domain no sample lies in exactly)
            wrong = (((s == ACTIVE) & (z.min(0, initial=np.inf) < 0)) |
                     ((s == INACTIVE) & (z.max(0, initial=-np.inf) > 0)))
            if wrong.any():
                i = int(np.flatnonzero(wrong)[0])
                raise BoundError(f"layer {l}, unit {i} is called {STATUSES[s[i]]} but takes "
                                 f"[{float(z[:, i].min())!r}, {float(z[:, i].max())!r}] at "
                                 "witnesses and samples of the box: please report")

    def __repr__(self) -> str:
        counts = ", ".join(f"{name} {sum(int(np.sum(s == c)) for s in self.status)}"
                           for c, name in enumerate(STATUSES))
        return f"Stability({counts}; split {self.split})"


class _Open:
    """The witnesses seen so far (``witnesses._Witnesses``) and, over the hidden units in one
    flat index (layer after layer), the open side of every unit no witness has decided."""

    def __init__(self, net, lower, upper, seen):
        self.net, self.seen = net, seen
        self.hidden = len(lower) - 1
        self.sizes = [a.size for a in lower]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)])
        self.stable_lo = self.flat([a >= 0 for a in lower])
        self.stable_hi = self.flat([a <= 0 for a in upper])
        self.frozen = False
        self.update()

    def flat(self, per_layer) -> np.ndarray:
        """The hidden layers' arrays of ``per_layer`` end to end."""
        return np.concatenate(list(per_layer[: self.hidden]) + [np.zeros(0, per_layer[0].dtype)])

    def update(self) -> None:
        """The open sides after the witnesses seen so far. Once :attr:`frozen` (the search
        has begun), a side can only close: a unit at exactly 0 on every earlier witness
        whose open side a witness then contradicts does not get the other side, which the
        boxes already dropped as leaves were never checked for (it stays unresolved)."""
        zmin, zmax = self.flat(self.seen.zmin), self.flat(self.seen.zmax)
        stable = self.stable_lo | self.stable_hi
        # prove z <= 0 where no witness is positive; z >= 0 where none is negative (a unit
        # at exactly 0 on every witness tries the inactive side only)
        need_hi = ~stable & ~(zmax > 0)
        need_lo = ~stable & ~(zmin < 0) & ~need_hi
        if self.frozen:
            need_hi &= self.need_hi
            need_lo &= self.need_lo
        self.need_hi, self.need_lo = need_hi, need_lo

    @property
    def n_open(self) -> int:
        return int(self.need_hi.sum() + self.need_lo.sum())

    def layer_units(self, flat_idx) -> list[np.ndarray]:
        return [flat_idx[(flat_idx >= self.offsets[l]) & (flat_idx < self.offsets[l + 1])]
                - self.offsets[l] for l in range(self.hidden)]


def _slack_tolerance(net: Network, lo, hi) -> np.ndarray:
    """Per hidden unit (flat, layer after layer), a bound on the rounding slack CROWN adds
    on any sub-box of [lo, hi]: gamma(n + 2k) times the larger of the interval magnitude
    and (k + 1) times the composed magnitude (``bound_propagation.cpp``), twice over. A sub-box
    bound that misses a unit's sign by no more than this may be that slack alone."""
    _, phi = kernels.interval(net._core, lo, hi)
    fwd = forward_rounding(net, lo, hi)
    xabs, n_terms, out = float(np.max(np.maximum(np.abs(lo), np.abs(hi)))), 0, []
    for k, (W, b) in enumerate(zip(net.weights[:-1], net.biases[:-1])):
        n_terms += W.shape[1]
        mag = np.abs(W).sum(1) * xabs + np.abs(b)
        g = gamma_slack(n_terms + 2 * k)
        out.append(2.0 * (k + 1) * np.maximum(g * mag, (1 + 2 * k / n_terms) * fwd[k]))
        xabs = float(np.max(np.maximum(phi[k], 0.0), initial=0.0))
    return np.concatenate(out)


def _input_search(net, lo, hi, lower, upper, op: _Open, deadline: float, progress: bool,
                  domain: Domain | None = None):
    """The breadth-first box search of the module docstring; on a constrained ``domain`` a
    box it is certified absent from (``Domain.excludes_boxes``) is a leaf that bounds
    nothing. Returns (proven flat mask,
    flat mask of the units it gave up as failing within the rounding slack, union of the
    leaves' (lower, upper) or None when it did not finish, stats)."""
    width0 = np.where(hi > lo, hi - lo, 1.0)
    clip = ([np.asarray(a, float) for a in lower], [np.asarray(a, float) for a in upper])
    H = op.offsets[op.hidden]  # flat hidden units; crown_boxes' columns go on to the output
    QLO, QHI = lo[None].copy(), hi[None].copy()
    Qfail = np.ones((1, H), dtype=bool)  # the units each queued box must still be checked for
    Qlevel = np.zeros(1, dtype=np.int64)
    # each queued box's parent bounds (they hold on it): CROWN is tighter, and cheaper (fewer
    # unstable units), on a child built on them
    QA = np.concatenate(clip[0])[None].copy()
    QB = np.concatenate(clip[1])[None].copy()
    stuck = np.zeros(H, dtype=bool)  # failing on a box too small to split
    tol = _slack_tolerance(net, lo, hi)
    slack = np.zeros(H, dtype=bool)  # failing within the rounding slack: left to the LP
    total = sum(op.sizes)
    ulo, uhi = np.full(total, np.inf), np.full(total, -np.inf)
    n_boxes = n_leaves = depth = n_empty = 0
    bar = None
    if progress:
        bar = tqdm(desc="stability boxes", unit="box")
    while len(QLO):
        if time.perf_counter() > deadline:
            break
        blo, bhi, bfail, blev = QLO[:BOX_BATCH], QHI[:BOX_BATCH], Qfail[:BOX_BATCH], Qlevel[:BOX_BATCH]
        ba, bb = QA[:BOX_BATCH], QB[:BOX_BATCH]
        QLO, QHI, Qfail, Qlevel = QLO[BOX_BATCH:], QHI[BOX_BATCH:], Qfail[BOX_BATCH:], Qlevel[BOX_BATCH:]
        QA, QB = QA[BOX_BATCH:], QB[BOX_BATCH:]
        A, B = kernels.crown_boxes(net._core, blo, bhi, None, (ba, bb))
        n_boxes += len(blo)
        depth = max(depth, int(blev.max()))
        open_hi, open_lo = op.need_hi & ~slack, op.need_lo & ~slack
        fail = bfail & ((open_hi & (B[:, :H] > 0)) | (open_lo & (A[:, :H] < 0)))
        empty = np.zeros(len(blo), dtype=bool) if domain is None else domain.excludes_boxes(blo, bhi)
        fail[empty] = False  # no point of the domain there: nothing to prove
        # no split removes a rounding slack: such units stop here (on every box)
        near = fail & ((open_hi & (B[:, :H] <= tol)) | (open_lo & (A[:, :H] >= -tol)))
        if near.any():
            slack |= near.any(0)
            fail &= ~slack[None, :]
            Qfail &= ~slack[None, :]
        bad = fail.any(1)
        if bad.any():  # witnesses where the proof failed; they may close units for every box
            op.seen.add(_corners(blo[bad], bhi[bad], seed=n_boxes))
            op.update()
            fail &= ((op.need_hi | op.need_lo) & ~slack)[None, :]
            bad = fail.any(1)
        w = bhi - blo
        d = np.argmax(w / width0, axis=1)
        r = np.arange(len(blo))
        mid = blo[r, d] + w[r, d] / 2
        can = (w[r, d] > MIN_WIDTH * width0[d]) & (mid > blo[r, d]) & (mid < bhi[r, d])
        split = bad & can
        stuck |= (fail & ~can[:, None]).any(0)
        leaf = ~split
        n_leaves += int(leaf.sum())
        n_empty += int(empty.sum())
        leaf &= ~empty  # (their bounds hold on no point of the domain)
        if leaf.any():
            np.minimum(ulo, A[leaf].min(0), out=ulo)
            np.maximum(uhi, B[leaf].max(0), out=uhi)
        if split.any():
            s = np.flatnonzero(split)
            lo1, hi1 = blo[s].copy(), bhi[s].copy()
            hi1[np.arange(s.size), d[s]] = mid[s]
            lo2, hi2 = blo[s].copy(), bhi[s].copy()
            lo2[np.arange(s.size), d[s]] = mid[s]
            QLO = np.vstack([QLO, lo1, lo2])
            QHI = np.vstack([QHI, hi1, hi2])
            Qfail = np.vstack([Qfail, fail[s], fail[s]])
            QA = np.vstack([QA, A[s], A[s]])
            QB = np.vstack([QB, B[s], B[s]])
            Qlevel = np.concatenate([Qlevel, blev[s] + 1, blev[s] + 1])
        if bar is not None:
            bar.update(len(blo))
            bar.set_postfix(open=op.n_open, queue=len(QLO), depth=depth)
    if bar is not None:
        bar.close()
    still = op.need_hi | op.need_lo
    pending = Qfail.any(0) if len(Qfail) else np.zeros(H, dtype=bool)
    proven = still & ~stuck & ~pending & ~slack
    finished = not len(QLO)
    stats = dict(boxes=n_boxes, leaves=n_leaves, depth=depth, queued=int(len(QLO)),
                 finished=finished, within_slack=int((slack & still).sum()))
    if domain is not None:
        stats["outside_domain"] = n_empty
    return proven, slack & still, ((ulo, uhi) if finished else None), stats


def stability(net: Network, lo=None, hi=None, init=None, time_limit: float | None = TIME_LIMIT, *,
              split: str = "auto", threads: int | None = None, n_samples: int = N_SAMPLES,
              progress: bool = False, domain: Domain | None = None, A_ub=None, b_ub=None,
              A_eq=None, b_eq=None, l1=None) -> Stability:
    """For every hidden unit of ``net`` over the box ``[lo, hi]`` (default: its domain):
    proven stably active, proven stably inactive, proven unstable (two witness inputs,
    checked by a forward pass) or unresolved (a limit was hit). See the module docstring.

    ``init`` (a box :class:`Bounds`, default :func:`crown`) gives the starting bounds: the
    units they prove stable are stable, and they bound every sub-box. ``time_limit``
    (seconds in all, default ``TIME_LIMIT``; ``None`` or ``math.inf``: none) stops the
    search (the LP step after it, see the module docstring, starts only before the limit
    and ends its layer); ``0`` returns what the samples, the first layer's corners and
    ``init`` prove, everything else unresolved. ``split``: ``"input"`` (box search),
    ``"relu"`` (bab's phase search), ``"auto"`` (input for at most ``INPUT_DIMS``
    inputs on a domain that is not thin, ``Domain.thin``). ``threads``: of the box bounding or the phase search (default: all cores).

    ``domain`` and the keywords of :func:`~emlpress.bounds.interval`: the statuses hold on
    that :class:`Domain` (``lo``/``hi`` of the result: its tightened box). ``init`` must
    hold on it (default :func:`crown` on it: its first-layer bounds are then the certified
    LPs over the domain). Every witness lies in the domain exactly (``Domain.holds``, no
    tolerance: with equality rows few float64 points do, and a unit no two such points
    show unstable stays unresolved); samples come from ``Domain.sample``, box points,
    attack steps and LP optima are pulled toward its interior point first
    (``Domain.admit``), and the first layer's witnesses are the optima of its LPs over
    the domain. The input search drops a sub-box only on a checked certificate that the
    domain misses it (``Domain.excludes_boxes``); the phase search and the LP step have
    the domain's rows in every LP and certificate. The second-layer search over box
    corners is skipped there (its corners are not points of the domain)."""
    d = None
    if domain is not None or any(v is not None for v in (A_ub, b_ub, A_eq, b_eq, l1)):
        d, lo, hi = domain_and_box(net, lo, hi, domain, A_ub, b_ub, A_eq, b_eq, l1)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {SPLITS}")
    lo, hi = net.domain(lo, hi)
    if time_limit is not None:
        time_limit = _options._number("time_limit", time_limit)
        if not time_limit >= 0:
            raise ValueError(f"time_limit must be >= 0 seconds (or None for no limit), got "
                             f"{time_limit!r}")
    n_samples = _options.positive_int("n_samples", n_samples)
    n_threads = _options.threads(threads) or max(1, kernels.num_threads())
    t0 = time.perf_counter()
    deadline = math.inf if time_limit is None else t0 + time_limit
    if init is None:
        init = crown(net, lo, hi) if d is None else crown(net, domain=d)
    elif d is None:
        init.check(net, lo, hi)
    else:
        init.check(net, domain=d)
    if split == "auto":
        # a thin or flat domain (equality rows, a slab): the phase search, the rows in every
        # LP; the box search cannot see them and splits to MIN_WIDTH until the limit (20 s
        # for 1 open unit on a 3-input slab; relu: 0.2 s). On a full-dimensional polytope
        # the box search wins (bench_polytope's trained net: 2.2 s, relu 15 open at 120 s)
        split = "input" if net.n_in <= INPUT_DIMS and (d is None or not d.thin()) else "relu"
    lower = [np.array(a, dtype=np.float64) for a in init.lower]
    upper = [np.array(a, dtype=np.float64) for a in init.upper]
    if d is None:
        seen = _Witnesses(net, np.vstack([box_points(lo, hi, n_samples, max_corner_dims=6),
                                          first_layer_corners(net, lo, hi)]))
    else:
        seen = _Witnesses(net, _start_points(lo, hi, d, n_samples), d)
    op = _Open(net, lower, upper, seen)
    if d is not None and op.n_open and time_limit != 0:
        # the first layer's extremes over the domain: its LPs' optima (pulled inside)
        _first_layer_lps(net, d, op)
    start_open = op.n_open
    seconds = {"start": init.seconds.copy()}
    ts = time.perf_counter()
    boxes: dict = {}
    union = None
    proven = np.zeros(op.offsets[op.hidden], dtype=bool)
    within_slack = proven.copy()
    if op.n_open and time.perf_counter() < deadline and (split == "input" or op.hidden >= 2):
        # (bab's phase search runs these attacks itself, but the second-layer search
        # before it must not spend its nodes on sides an attack settles)
        _attack(net, lo, hi, op)
    seconds["witnesses"] = time.perf_counter() - ts
    ts = time.perf_counter()
    op.frozen = True
    if op.n_open and time.perf_counter() < deadline:
        if split == "input":
            prev = kernels.num_threads()
            kernels.set_num_threads(n_threads)
            try:
                proven, within_slack, union, boxes = _input_search(
                    net, lo, hi, lower, upper, op, deadline, progress, d)
            finally:
                kernels.set_num_threads(prev)
        else:
            # the second layer first on batched closed-form node bounds (over the box: not
            # on a constrained domain, whose rows they would not see), then the LP search
            fast = (phases.search(net, lo, hi, lower, upper, op, deadline) if d is None
                    else np.zeros(op.offsets[op.hidden], dtype=bool))
            start = init
            if fast.any():
                lw, up = [a.copy() for a in lower], [a.copy() for a in upper]
                for l in range(op.hidden):
                    a, e = op.offsets[l], op.offsets[l + 1]
                    lw[l][fast[a:e] & op.need_lo[a:e]] = 0.0
                    up[l][fast[a:e] & op.need_hi[a:e]] = 0.0
                    lw[l] = np.minimum(lw[l], up[l])
                start = Bounds(tuple(lw), tuple(up), lo, hi, init.method, init.settled,
                               dict(init.seconds), domain=d)
            proven = fast
            if ((op.need_hi | op.need_lo) & ~fast).any() and time.perf_counter() < deadline:
                proven = fast | _phase_search(net, lo, hi, start, op, deadline, n_threads,
                                              progress, d)
    seconds["search"] = time.perf_counter() - ts
    op.update()
    ts = time.perf_counter()
    lp_bounds = None
    left = (op.need_hi | op.need_lo) & ~proven
    if d is None:  # the first layer's bounds are exact already on a box: no LP helps
        left[: op.sizes[0]] = False
    if left.any() and time.perf_counter() < deadline:
        lp_bounds = _lp_step(net, lo, hi, init, lower, upper, op, proven, threads, d)
        proven |= left & ((op.need_hi & op.flat([a <= 0 for a in lp_bounds.upper])) |
                          (op.need_lo & op.flat([a >= 0 for a in lp_bounds.lower])))
    seconds["lp"] = time.perf_counter() - ts

    # the statuses, from the proofs and the witnesses
    zmin, zmax = op.flat(seen.zmin), op.flat(seen.zmax)
    status = np.full(zmin.size, UNRESOLVED, dtype=np.int8)
    status[(zmin < 0) & (zmax > 0)] = UNSTABLE
    act = op.stable_lo | (proven & op.need_lo)
    ina = op.stable_hi | (proven & op.need_hi)
    if np.any((act | ina) & (status == UNSTABLE)):
        i = int(np.flatnonzero((act | ina) & (status == UNSTABLE))[0])
        raise BoundError(f"unit {i} (flat index) is proven stable but has witnesses of both "
                         "signs: please report")
    status[act] = ACTIVE
    status[ina] = INACTIVE  # a unit both (z == 0 on the box) outputs 0: inactive
    per_layer = [status[op.offsets[l]:op.offsets[l + 1]] for l in range(op.hidden)]
    pos, neg = [], []
    for l, s in enumerate(per_layer):
        u = s == UNSTABLE
        pos.append(np.where(u[:, None], seen.xmax[l], np.nan))
        neg.append(np.where(u[:, None], seen.xmin[l], np.nan))
        pos[-1].flags.writeable = neg[-1].flags.writeable = False
    # the bounds: 0 on the proven side; the input search's leaves, when it finished
    if union is not None:
        for l in range(len(lower)):
            a, b = op.offsets[l], op.offsets[l] + lower[l].size
            lower[l] = np.maximum(lower[l], union[0][a:b])
            upper[l] = np.minimum(upper[l], union[1][a:b])
    if lp_bounds is not None:  # sound on the box, like the starting bounds
        lower = [np.maximum(a, c) for a, c in zip(lower, lp_bounds.lower)]
        upper = [np.minimum(a, c) for a, c in zip(upper, lp_bounds.upper)]
    settled = [np.array(a, dtype=object) for a in init.settled_by]
    for l, s in enumerate(per_layer):
        m = (s == ACTIVE) & (lower[l] < 0)
        lower[l][m] = 0.0
        m2 = (s == INACTIVE) & (upper[l] > 0)
        upper[l][m2] = 0.0
        changed = (lower[l] != init.lower[l]) | (upper[l] != init.upper[l])
        settled[l][changed] = "stability"
    if union is not None or lp_bounds is not None:
        changed = (lower[-1] != init.lower[-1]) | (upper[-1] != init.upper[-1])
        settled[-1][changed] = "stability"
    seconds["stability"] = time.perf_counter() - t0
    bseconds = dict(init.seconds)
    bseconds["stability"] = seconds["stability"]
    b = Bounds(tuple(lower), tuple(upper), lo, hi, "stability", tuple(settled), bseconds,
               domain=d)

    rows = []
    for l, s in enumerate(per_layer):
        a, e = op.offsets[l], op.offsets[l + 1]
        start = (op.stable_lo | op.stable_hi)[a:e]
        rows.append(dict(layer=l, units=int(s.size), start_stable=int(start.sum()),
                         unstable=int(np.sum(s == UNSTABLE)),
                         search_proved=int(np.sum((s <= INACTIVE) & ~start)),
                         unresolved=int(np.sum(s == UNRESOLVED))))
    search = pd.DataFrame(rows, columns=["layer", "units", "start_stable", "unstable",
                                         "search_proved", "unresolved"]).set_index("layer")
    boxes = dict(boxes, open_after_witnesses=start_open,
                 within_slack=int(within_slack.sum()), lp_step=lp_bounds is not None)
    res = Stability(tuple(per_layer), tuple(pos), tuple(neg), lo, hi, b, search, split,
                    seconds, boxes, d)
    res.check(net)
    return res


def _lp_step(net, lo, hi, init, lower, upper, op: _Open, proven, threads, d=None):
    """:func:`emlpress.bounds.lp` (sign mode) started from ``init`` with every unit proven
    so far at 0 on its proven side: the units the search left open get their rigorous LP
    (and a unit the starting bounds leave open, the LP ``lp`` itself would solve)."""
    lw, up = [a.copy() for a in lower], [a.copy() for a in upper]
    for l in range(op.hidden):
        a, e = op.offsets[l], op.offsets[l + 1]
        lw[l][proven[a:e] & op.need_lo[a:e]] = 0.0
        up[l][proven[a:e] & op.need_hi[a:e]] = 0.0
        lw[l] = np.minimum(lw[l], up[l])  # a unit exactly 0 on the box: both sides
    start = Bounds(tuple(lw), tuple(up), lo, hi, "stability", init.settled, dict(init.seconds),
                   domain=d)
    if d is not None:  # the domain's rows in every LP
        return lp(net, domain=d, init=start, threads=threads)
    return lp(net, lo, hi, init=start, threads=threads)


def _phase_search(net, lo, hi, init, op: _Open, deadline, threads, progress, d=None):
    """The open units proven by bab's sign-only phase search (layer by layer, the witnesses
    shared with ``op.seen``), in passes of growing node limits per side
    (``PHASE_PASSES``: the sides easy to prove first, so that the limit leaves the hard
    ones); returns the proven flat mask."""
    start = init
    for p, node_limit in enumerate(PHASE_PASSES):
        lower, upper, _, _ = exact_bounds(
            net, lo, hi, start, time_limit=None,
            node_limit=node_limit, threads=threads, full=False, progress=progress, split="relu",
            seen=op.seen, deadline=deadline, output=False, attack_first=p == 0, domain=d)
        op.update()
        lo_ok = op.flat([a >= 0 for a in lower])
        hi_ok = op.flat([a <= 0 for a in upper])
        proven = (op.need_lo & lo_ok) | (op.need_hi & hi_ok)
        if not ((op.need_lo | op.need_hi) & ~proven).any() or time.perf_counter() > deadline:
            break
        start = Bounds(tuple(lower), tuple(upper), lo, hi, init.method, init.settled,
                       dict(init.seconds), domain=d)
    return proven


def _first_layer_lps(net, d: Domain, op: _Open) -> None:
    """Witnesses of the first layer's open sides over the domain: the optima of
    ``min sgn (W0 x)`` over its rows (``Domain.min_linear``), each pulled into the domain
    (``Domain.admit``); ``init``'s bounds there are those LPs' certified values."""
    n0 = op.sizes[0]
    hi_u, lo_u = np.flatnonzero(op.need_hi[:n0]), np.flatnonzero(op.need_lo[:n0])
    if not hi_u.size and not lo_u.size:
        return
    W = net.weights[0]
    verts: list = []
    d.min_linear(np.vstack([-W[hi_u], W[lo_u]]), points=verts)  # max z (open side <= 0), min z
    if verts:
        op.seen.add(np.array(verts))
        op.update()
