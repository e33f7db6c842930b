"""Lossless compression of ReLU networks (Serra, Kumar and Ramalingam, 2020).

Per hidden layer, from the first (the formulas are derived in
``cpp/include/emlpress/lossless.hpp``):

* a stably inactive unit (``upper <= 0``) is removed;
* a unit with an all-zero weight row outputs the constant ``relu(b)``: it is removed and the
  constant goes into the next layer's biases;
* a stably active unit (``lower >= 0``) whose weight row is a linear combination of the rows
  of the stably active units kept so far is removed, its outgoing weights added, scaled, to
  theirs and the bias difference folded into the next layer's biases;
* a layer left with no unstable unit is affine on the box and is merged into the next layer
  (the product of the two affine maps); a layer left with no unit at all makes the rest of
  the network constant, which the same merge turns into an output layer with zero weights.

Rank tolerance: rows are taken largest first, and a row is dependent when the Euclidean norm
of its residual against the kept rows (Gram-Schmidt, re-orthogonalised once) is at most
``rank_tol`` times the row's own norm (so a unit with weights 1e-30 beside units with weights
1e-7 is not folded away as if it were zero). The default ``1e-12`` sits about 1,000 times above
the rounding noise of the projection for rows of length ~1,000; a row it wrongly keeps costs
only compression.

Fold budget: every fold and merge comes with a rigorous bound on how much it changes the next
layer's pre-activations in float64 (see below). When the compressed network fails the
verification (an output that is a small difference of large terms: an output scale of 1e-37
from weights of 1e-7, whose digits the folds' rounding takes away), it is compressed again with
every fold and merge gated: its bound, with the errors of the steps before it, carried through
the later layers' weights to the output, must stay within ``FOLD_BUDGET`` (a tenth) of what the
verification allows (``VERIFY_RTOL`` times the output scale), else the step is not done and
the layer is kept (``kept_for_exactness`` in its row of ``report.layers``). The gate is not
applied first: the bound is a worst case through absolute weights, far above the actual
rounding (on the study's network it would keep the 474 dependent units of layer 1, whose folds
change the output by 3e-15 of its scale). Without ``verify`` the gate is never applied.

Conditioning: folding scales a removed unit's outgoing weights by its combination
coefficients and merging multiplies two layers, so the compressed network can carry far larger
weights than the original (in a 2-input first layer every active unit beyond the second is
dependent, and nearly parallel rows give coefficients of 1e4). A MILP's big-M rows are only
as exact as the solver's integrality tolerance times their big-M, so each layer's row of
``report.layers`` gives the largest absolute weight the step leaves in the next layer
(``max_abs_weight``) and the report the largest weight before and after
(``max_weight_before``/``max_weight_after``). With ``max_coefficient=c`` a fold or merge that
would leave a weight above ``max(c, the original's weights there)`` is not done: the layer is
kept as it is (its stably inactive and zero-weight units still go; ``kept_for_conditioning``
in its row), trading parameters for a better conditioned MILP.

Verification: both networks are evaluated on ``n_points`` seeded uniform points of the box
plus all its corners when the input has at most 12 dimensions; the largest absolute output
difference must be at most ``1e-9`` times the output scale (the largest absolute output of
the original on those points, at least the smallest normal float) or :class:`LosslessError`
is raised. The compressed network keeps the box as its domain and comes with the carried-over
bounds of its surviving neurons (``report.bounds``), valid for reuse by the MILP encoder: they
are widened by a rigorous bound on how much folding and merging changed each pre-activation
in float64 (computed from the actual residuals, see ``cpp/include/emlpress/lossless.hpp``)
and by the compressed network's own forward rounding, so they stay sound, not just close.

On a constrained input domain (``domain=``, or ``A_ub``/``b_ub``/``A_eq``/``b_eq``/``l1``
as in :func:`emlpress.bounds.interval`) the network is compressed with bounds valid on the
domain and is equal to the original on the domain only: the verification points are
``n_points`` seeded points of the domain (``Domain.sample``: rejection from its box, else
hit-and-run), the compressed network's stored box is the domain's tightened box, and the
report's bounds record the domain, so they are refused on any larger one.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emlpress import kernels
from emlpress import bounds as _bounds
from emlpress.bounds import Bounds, Domain
from emlpress.bounds.conditioning import CONDITIONING_RTOL, HIGHS_MIP_TOL, integrality_error
from emlpress.bounds.domain import domain_and_box
from emlpress.network import Network, box_points

__all__ = ["lossless", "LosslessReport", "LosslessError", "RANK_TOL", "VERIFY_RTOL", "FOLD_BUDGET"]

RANK_TOL = 1e-12
VERIFY_RTOL = 1e-9
#: the share of the verification's allowance a fold's or merge's rigorous error may take
FOLD_BUDGET = 0.1


class LosslessError(RuntimeError):
    """The compressed network differs from the original by more than the allowed amount."""


@dataclass
class LosslessReport:
    """What :func:`lossless` did. ``layers`` has one row per hidden layer of the original,
    indexed by the layer's index in the API (``Bounds.lower[l]``, ``b.stably_active(l)``)."""

    layers: pd.DataFrame
    params_before: int
    params_after: int
    neurons_before: int
    neurons_after: int
    layers_before: int
    layers_after: int
    max_abs_diff: float
    output_scale: float
    n_points: int
    bounds: Bounds
    seconds: dict = field(default_factory=dict)
    max_weight_before: float = float("nan")
    max_weight_after: float = float("nan")
    #: the largest output movement HiGHS' default integrality tolerance allows in the big-M
    #: encoding of the original (its bounds) and of the compressed network (the carried bounds)
    tolerance_error_before: float = float("nan")
    tolerance_error_after: float = float("nan")
    #: the constrained input domain the compression is exact on (None: the box)
    domain: Domain | None = None

    @property
    def rel_diff(self) -> float:
        return self.max_abs_diff / self.output_scale

    def __str__(self) -> str:
        head = (
            f"neurons {self.neurons_before} -> {self.neurons_after}, "
            f"parameters {self.params_before} -> {self.params_after}, "
            f"affine layers {self.layers_before} -> {self.layers_after}, "
            f"largest |weight| {self.max_weight_before:.3g} -> {self.max_weight_after:.3g}, "
            f"MILP outputs exact to {self.tolerance_error_before:.2g} -> "
            f"{self.tolerance_error_after:.2g} at integrality tolerance {HIGHS_MIP_TOL:g}\n"
            f"max |difference| on {self.n_points} points"
            f"{'' if self.domain is None else f' of {self.domain}'}: {self.max_abs_diff:.3g} "
            f"(output scale {self.output_scale:.3g}, relative {self.rel_diff:.3g})"
        )
        return head + "\n" + self.layers.to_string()

    def report(self, net: Network, small: Network, b: Bounds, source: str, method: str,
               output: str) -> str:
        """What ``emlpress compress`` prints (lines, no final newline): the network ``net``
        read from ``source``, the input box, the bound ``method`` asked for with the time in
        ms of each stage (those of ``b``, the bounds ``net`` was compressed with, then this
        report's), this report, and the compressed network ``small`` written to ``output``."""
        stages = {**b.seconds, **{k: v for k, v in self.seconds.items() if k != "bounds"}}
        return "\n".join([
            f"{source}: {net}",
            f"input box: lo={b.lo.tolist()} hi={b.hi.tolist()}",
            f"bounds: {method}; " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in stages.items()),
            str(self), f"wrote {output}: {small}"])


def _resolve_bounds(net: Network, lo, hi, bounds, threads, d: Domain | None = None) -> Bounds:
    if isinstance(bounds, _bounds.Stability):  # its bounds: 0 on every proven side
        bounds = bounds.bounds
    if isinstance(bounds, Bounds):
        if d is None:
            bounds.check(net, lo, hi)
        else:
            bounds.check(net, domain=d)
        return bounds
    if not isinstance(bounds, str):
        raise TypeError("bounds must be a Bounds or Stability object or a method name, got "
                        f"{type(bounds).__name__}")
    if d is not None:
        return _bounds.tighten(net, method=bounds, threads=threads, domain=d)
    return _bounds.tighten(net, lo, hi, method=bounds, threads=threads)


def _verification_points(lo, hi, n_points: int, seed: int, domain: Domain | None) -> np.ndarray:
    """The points :func:`verify_equal` compares on, ``(n, n_in)``."""
    if domain is not None:
        return np.vstack([domain.point[None, :], domain.sample(n_points, seed)])
    return box_points(lo, hi, n_points, seed)


def _output_scale(Y: np.ndarray) -> float:
    """The verification's scale: the largest |output|, at least the smallest normal float."""
    return max(float(np.max(np.abs(Y), initial=0.0)), np.finfo(float).tiny)


def verify_equal(original: Network, compressed: Network, lo, hi, n_points: int = 100_000,
                 seed: int = 0, domain: Domain | None = None) -> tuple[float, float, int]:
    """Largest absolute output difference of two networks on ``n_points`` seeded uniform
    points of the box plus its corners (input dimension <= 12), or on ``domain``, ``n_points``
    seeded points of it (``Domain.sample``) and its point; returns
    ``(max_abs_diff, output_scale, points)``."""
    X = _verification_points(lo, hi, n_points, seed, domain)
    Y = original.forward(X)
    Z = compressed.forward(X)
    return float(np.max(np.abs(Y - Z))), _output_scale(Y), X.shape[0]


def _output_error(e: np.ndarray, Ws: list, uppers: list, j: int) -> float:
    """A bound on how far an error of at most ``e`` in the pre-activations of layer ``j`` of
    the working lists (weights ``Ws``, upper bounds ``uppers``) moves the network's output,
    through the later layers' weights (ReLU is 1-Lipschitz). A stably inactive hidden unit
    (upper <= 0) passes nothing on: the compression removes it from both. It gates folds, so
    plain float64 products suffice: the verification is the check."""
    last = len(Ws) - 1
    for l in range(j, last + 1):
        if l > j:
            e = np.abs(Ws[l]) @ e
        if l < last:
            e = np.where(uppers[l] > 0.0, e, 0.0)
    return float(np.max(e, initial=0.0))


def _carried_bounds(out: Network, lo, hi, lowers, uppers, delta, settled, b: Bounds,
                    d: Domain | None = None) -> Bounds:
    """The original bounds of the surviving units, valid for the compressed network.

    They hold for the original's pre-activations; the compressed network's differ by at
    most ``delta`` (exactly computed), and its own float64 forward pass rounds by at most
    gamma times the magnitude of its terms (the policy of :mod:`emlpress.bounds`): the
    larger of that layer's own terms over the carried box and the composed magnitude of
    every layer before it (``bounds.forward_rounding``; the compressed network keeps no
    stably inactive unit). Both are added outward, so the carried bounds are as sound as
    the originals.
    """
    lows, ups = [], []
    xabs = np.maximum(np.abs(lo), np.abs(hi))
    n_terms = 0
    composed = _bounds.forward_rounding(out, lo, hi)
    for l, (W, bias) in enumerate(zip(out.weights, out.biases)):
        n_terms += W.shape[1]
        mag = np.abs(W) @ xabs + np.abs(bias)
        widen = _bounds.round_up(delta[l] + np.maximum(_bounds.gamma_slack(n_terms) * mag,
                                                       composed[l]))
        lows.append(lowers[l] - widen)
        ups.append(uppers[l] + widen)
        xabs = np.maximum(ups[-1], 0.0)
    return Bounds(tuple(lows), tuple(ups), lo, hi, f"{b.method} (carried over)", tuple(settled),
                  dict(b.seconds), domain=d)


def _max_abs(W: np.ndarray) -> float:
    return float(np.max(np.abs(W))) if W.size else 0.0


def _compress(net: Network, lo, hi, b: Bounds, d: Domain | None, rank_tol: float,
              max_coefficient: float | None, budget: float | None):
    """The compression itself: ``(compressed network, carried bounds, report rows)``. With a
    ``budget`` (output units), a fold or merge whose rigorous error bound, with the earlier
    steps' errors, carried to the output exceeds it is not done (see "Fold budget")."""
    Ws = [np.asarray(W) for W in net.weights]
    bs = [np.asarray(v) for v in net.biases]
    lowers, uppers = list(b.lower), list(b.upper)
    settled = list(b.settled_by)
    # Working lists: layer j of the compressed network is (Ws[j], bs[j]), its bounds
    # (lowers[j], uppers[j]); the original layer index of each is orig[j].
    orig = list(range(net.n_layers))
    # delta[j]: rigorous bound on |pre-activation of the compressed layer j - original|
    # over the box (folding and merging round; see lossless.hpp); xabs: max |input| of
    # the current layer in the original network.
    delta = [np.zeros(W.shape[0]) for W in Ws]
    xabs = np.maximum(np.abs(lo), np.abs(hi))
    rows = []
    j = 0
    while j < len(Ws) - 1:
        k = orig[j]
        units = Ws[j].shape[0]
        f = kernels.fold_layer(Ws[j], bs[j], Ws[j + 1], bs[j + 1], lowers[j], uppers[j], xabs,
                             rank_tol)
        # the largest weight the original has where this step writes (the next layer)
        limit = None if max_coefficient is None else max(max_coefficient, _max_abs(Ws[j + 1]))
        keep = limit is not None and int(f.n_dependent) > 0 and _max_abs(f.V) > limit
        inexact = False
        if budget is not None and not keep and int(f.n_dependent) > 0:
            # the fold's error at the output: its own residual plus the earlier steps' errors
            # through the folded weights, carried by the later layers (not yet folded)
            e = _bounds.round_up(f.resid + np.abs(f.V) @ delta[j][np.asarray(f.kept, np.intp)])
            inexact = _output_error(e, Ws, uppers, j + 1) > budget
        if keep or inexact:  # fold nothing (a negative tolerance)
            f = kernels.fold_layer(Ws[j], bs[j], Ws[j + 1], bs[j + 1], lowers[j], uppers[j], xabs,
                                 -1.0)
        kept = np.asarray(f.kept, dtype=np.intp)
        row = {
            "layer": k,  # the index Bounds and the API use
            "units_before": units,
            "units_after": int(kept.size),
            "removed_inactive": int(f.n_inactive),
            "removed_zero_weight": int(f.n_zero),
            "folded_dependent": int(f.n_dependent),
            "merged": False,
            "max_abs_weight": _max_abs(f.V),
            "kept_for_conditioning": bool(keep),
            "kept_for_exactness": bool(inexact),
        }
        Ws[j + 1], bs[j + 1] = f.V, f.c
        # ReLU is 1-Lipschitz: errors of the kept units pass through |V'|.
        delta[j + 1] = _bounds.round_up(f.resid + np.abs(f.V) @ delta[j][kept])
        merge = not f.any_unstable
        if merge:
            Wm, bm, err = kernels.merge_affine(f.W, f.b, Ws[j + 1], bs[j + 1], xabs)
            if limit is not None and kept.size and _max_abs(Wm) > max(limit, _max_abs(f.W)):
                merge = False
                row["kept_for_conditioning"] = True
            elif budget is not None and kept.size and _output_error(_bounds.round_up(delta[j + 1] + err),
                                             Ws, uppers, j + 1) > budget:
                merge = False
                row["kept_for_exactness"] = True
        if merge:
            # Affine on the box: (V, c) o (W, b) replaces both layers; the next layer's
            # pre-activations, and so its bounds, are unchanged.
            delta[j + 1] = _bounds.round_up(delta[j + 1] + err)
            row["units_after"] = 0
            row["merged"] = True
            row["max_abs_weight"] = _max_abs(Wm)
            del Ws[j], bs[j], lowers[j], uppers[j], settled[j], orig[j], delta[j]
            Ws[j], bs[j] = Wm, bm
        else:
            Ws[j], bs[j] = f.W, f.b
            lowers[j], uppers[j] = lowers[j][kept], uppers[j][kept]
            settled[j], delta[j] = settled[j][kept], delta[j][kept]
            xabs = np.maximum(uppers[j], 0.0)
            j += 1
        rows.append(row)
    out = Network(Ws, bs, lo, hi)
    carried = _carried_bounds(out, lo, hi, lowers, uppers, delta, settled, b, d)
    return out, carried, rows



def lossless(net: Network, lo=None, hi=None, bounds="lp", *, rank_tol: float = RANK_TOL,
             n_points: int = 100_000, verify: bool = True, seed: int = 0,
             threads: int | None = None, max_coefficient: float | None = None,
             domain: Domain | None = None, A_ub=None, b_ub=None, A_eq=None, b_eq=None,
             l1=None) -> tuple[Network, LosslessReport]:
    """Compress ``net`` exactly on the box ``[lo, hi]`` (default: its domain).

    ``bounds`` is a :class:`~emlpress.bounds.Bounds` valid on the box, the result of
    :func:`emlpress.bounds.stability` (its ``bounds``: every proven unit at 0 on its proven
    side), or a method name for :func:`emlpress.bounds.tighten` (``interval``, ``crown``,
    ``lp``, ``milp``, ``stability``, ``progressive``). Returns the compressed
    :class:`Network` (with the box as its domain) and a :class:`LosslessReport`. With
    ``verify`` (the default; ``n_points`` must then be at least 100,000) the two networks are
    compared as described in the module docstring and :class:`LosslessError` is raised when
    they differ. ``max_coefficient``: keep a layer whose folding or merging would create
    weights above it (and above the original's there), see "Conditioning" in the module
    docstring; ``None`` (default) folds and merges whatever the coefficients.

    ``domain`` (or the keywords ``A_ub``, ``b_ub``, ``A_eq``, ``b_eq``, ``l1``, see
    :func:`emlpress.bounds.interval`): compress on that :class:`~emlpress.bounds.Domain`
    (bounds valid on it, verification on its samples); the result equals ``net`` there only.
    """
    d, lo, hi = domain_and_box(net, lo, hi, domain, A_ub, b_ub, A_eq, b_eq, l1)
    if verify and n_points < 100_000:
        raise ValueError(f"n_points = {n_points}: verification needs at least 100,000 points")
    if not (0.0 <= rank_tol < 1.0):
        raise ValueError(f"rank_tol = {rank_tol} must lie in [0, 1)")
    if max_coefficient is not None and not (np.isfinite(max_coefficient) and max_coefficient > 0):
        raise ValueError(f"max_coefficient = {max_coefficient} must be a finite number > 0 (or None)")
    t0 = time.perf_counter()
    b = _resolve_bounds(net, lo, hi, bounds, threads, d)
    t_bounds = time.perf_counter() - t0

    t0 = time.perf_counter()
    out, carried, rows = _compress(net, lo, hi, b, d, rank_tol, max_coefficient, None)
    t_compress = time.perf_counter() - t0

    seconds = {"bounds": t_bounds, "compress": t_compress}
    diff, scale, npts = float("nan"), float("nan"), 0
    if verify:
        t0 = time.perf_counter()
        X = _verification_points(lo, hi, n_points, seed, d)  # verify_equal's
        Y = net.forward(X)
        diff, scale, npts = float(np.max(np.abs(Y - out.forward(X)))), _output_scale(Y), X.shape[0]
        seconds["verify"] = time.perf_counter() - t0
        if not diff <= VERIFY_RTOL * scale:
            # rounding the folds and merges did cost more than the verification allows (an
            # output that is a small difference of large terms): again, each step within budget
            t0 = time.perf_counter()
            out, carried, rows = _compress(net, lo, hi, b, d, rank_tol, max_coefficient,
                                           FOLD_BUDGET * VERIFY_RTOL * scale)
            seconds["compress"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            diff = float(np.max(np.abs(Y - out.forward(X))))
            seconds["verify"] += time.perf_counter() - t0
    layers = pd.DataFrame(rows, columns=["layer", "units_before", "units_after", "removed_inactive",
                                         "removed_zero_weight", "folded_dependent", "merged",
                                         "max_abs_weight", "kept_for_conditioning",
                                         "kept_for_exactness"])
    report = LosslessReport(
        layers=layers.set_index("layer"),
        params_before=net.n_params, params_after=out.n_params,
        neurons_before=net.n_neurons, neurons_after=out.n_neurons,
        layers_before=net.n_layers, layers_after=out.n_layers,
        max_abs_diff=diff, output_scale=scale, n_points=npts, bounds=carried, seconds=seconds,
        max_weight_before=max(_max_abs(W) for W in net.weights),
        max_weight_after=max(_max_abs(W) for W in out.weights),
        tolerance_error_before=float(integrality_error(net, b)[0].max(initial=0.0)),
        tolerance_error_after=float(integrality_error(out, carried)[0].max(initial=0.0)),
        domain=d,
    )
    out_scale = max(1.0, float(np.max(np.maximum(np.abs(carried.lower[-1]), np.abs(carried.upper[-1])),
                                      initial=0.0)))
    if (report.tolerance_error_after > 10 * report.tolerance_error_before
            and report.tolerance_error_after > CONDITIONING_RTOL * out_scale):
        warnings.warn(
            f"the compressed network's MILP is less exact than the original's: its largest weight "
            f"grew from {report.max_weight_before:.3g} to {report.max_weight_after:.3g}, and HiGHS' "
            f"integrality tolerance can move its outputs by {report.tolerance_error_after:.3g} "
            f"against {report.tolerance_error_before:.3g}; pass max_coefficient= (e.g. "
            f"{10 * report.max_weight_before:.3g}) to keep the layers whose folding or merging "
            "creates those weights", RuntimeWarning, stacklevel=2)
    if verify and not diff <= VERIFY_RTOL * scale:
        raise LosslessError(
            f"compressed network differs from the original by {diff:.3g} on the "
            f"{'box' if d is None else d} "
            f"(output scale {scale:.3g}, allowed {VERIFY_RTOL:g} x scale); the bounds "
            f"({b.method}) or rank_tol={rank_tol:g} are at fault\n{report}"
        )
    return out, report
