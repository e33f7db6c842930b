"""Anderson et al.'s cuts (Math. Programming 2020, "Strong mixed-integer programming
formulations for trained neural networks"), separated at the root: :func:`add_anderson_cuts`.

For an unstable unit ``a = max(0, w . x + b)`` with binary ``d`` and its inputs ``x`` in their
columns' box ``[L, U]`` (``Lc_i``/``Uc_i``: ``L_i``/``U_i`` where ``w_i >= 0``, swapped where
``w_i < 0``: the ends where ``w_i x_i`` is smallest / largest), every subset ``I`` of the
inputs gives the valid inequality

    a <= sum_{i in I} w_i (x_i - Lc_i (1 - d)) + (b + sum_{i not in I} w_i Uc_i) d

and together they are the convex hull of the unit over the box (the partition formulation
with one group per input, projected). The most violated one at an LP point ``(x*, a*, d*)``
takes ``I = {i : w_i x*_i < w_i (Lc_i (1 - d*) + Uc_i d*)}`` (linear time). Each round solves
the LP relaxation of the whole model (a copy, integrality dropped), adds every unit's most
violated cut to the model and to the copy, and solves again.

Sound: the right-hand side and the coefficient of ``d`` are widened by the rounding of their
float64 sums (:mod:`emlpress.bounds.rounding`), so a cut excludes no point of the model's
integer solutions (``d`` in {0, 1}: at ``d = 0`` it reads ``sum_I w_i x_i >= sum_I w_i Lc_i``,
at ``d = 1`` ``a <= w . x + b`` with ``x_i <= Uc_i`` outside ``I``).
"""

from __future__ import annotations

import time

import highspy
import numpy as np

from emlpress.bounds.rounding import gamma_slack, round_up
from emlpress.milp.handle import col_bounds, registered_handles
from emlpress.milp.network import NetworkHandle

__all__ = ["add_anderson_cuts"]

#: a cut is added when the LP point violates it by more than this, relative to max(1, |a*|)
VIOLATION = 1e-6


def add_anderson_cuts(h, rounds: int = 10, time_limit: float | None = 30.0,
                      min_gain: float = 1e-4) -> dict:
    """Separate Anderson et al.'s cuts for every unstable unit of every network added to
    ``h`` (by :func:`~emlpress.milp.add_network`, any formulation) at the root LP and add
    them to ``h`` as rows; call it after the objective is set, before
    :func:`~emlpress.milp.solve`. At most ``rounds`` rounds, within ``time_limit`` seconds,
    stopping when a round moves the LP bound by less than ``min_gain`` relative to
    ``max(1, |bound|)``. Returns ``{"rounds", "cuts", "lp_before", "lp_after", "seconds"}``
    (the LP relaxation's optimum before and after, in the objective's units)."""
    if not isinstance(rounds, (int, np.integer)) or isinstance(rounds, bool) or rounds < 0:
        raise ValueError(f"rounds must be an integer >= 0, got {rounds!r}")
    t0 = time.perf_counter()
    nets = [hd for hd in registered_handles(h) if isinstance(hd, NetworkHandle)]
    r = highspy.Highs()
    r.setOptionValue("output_flag", False)
    lp = h.getLp()
    lp.integrality_ = []
    r.passModel(lp)
    # the box of every network's layer inputs: the model's column bounds, read once
    boxes = [_layer_boxes(h, hd) for hd in nets]
    report = {"rounds": 0, "cuts": 0, "lp_before": float("nan"), "lp_after": float("nan"),
              "seconds": 0.0}
    last = None
    for k in range(rounds + 1):
        if time_limit is not None:
            left = float(time_limit) - (time.perf_counter() - t0)
            if left <= 0:
                break
            r.setOptionValue("time_limit", left)
        r.run()
        if r.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            break
        bound = float(r.getInfo().objective_function_value)
        if k == 0:
            report["lp_before"] = bound
        report["lp_after"] = bound
        if last is not None and abs(last - bound) <= min_gain * max(1.0, abs(bound)):
            break
        last = bound
        if k == rounds:
            break
        v = np.asarray(r.getSolution().col_value)
        rows = [c for hd, box in zip(nets, boxes) for c in _separate(hd, box, v)]
        if not rows:
            break
        for target in (h, r):
            for cols, coefs, upper in rows:
                target.addRow(-np.inf, upper, len(cols), cols, coefs)
        report["rounds"] += 1
        report["cuts"] += len(rows)
    report["seconds"] = time.perf_counter() - t0
    return report


def _layer_boxes(h, hd: NetworkHandle) -> list:
    """Per hidden layer l: (input columns, their lower and upper bounds) of layer l's units
    (-1 and [0, 0] where a previous unit has no column: it is 0)."""
    out, prev = [], np.asarray(hd.input_cols)
    for l in range(len(hd.binary_cols)):
        has = prev >= 0
        lo, hi = np.zeros(prev.size), np.zeros(prev.size)
        if has.any():
            lo[has], hi[has] = col_bounds(h, prev[has])
        out.append((prev, lo, hi))
        prev = np.asarray(hd.layer_cols[l])
    return out


def _separate(hd: NetworkHandle, boxes: list, v: np.ndarray) -> list:
    """The most violated cut of every unstable unit at the LP point ``v`` (all columns):
    (columns, coefficients, right-hand side) of ``a - sum_I w_i x_i + c_d d <= rhs``."""
    out = []
    for l, (prev, lo, hi) in enumerate(boxes):
        bins = np.asarray(hd.binary_cols[l])
        units = np.flatnonzero(bins >= 0)
        if not units.size:
            continue
        has = prev >= 0
        x = np.where(has, v[np.where(has, prev, 0)], 0.0)
        W = hd.net.weights[l][units] * has  # inputs without a column are 0: no term
        b = hd.net.biases[l][units]
        Lc = np.where(W >= 0, lo, hi)
        Uc = np.where(W >= 0, hi, lo)
        d = v[bins[units]]
        a = v[np.asarray(hd.layer_cols[l])[units]]
        inI = W * x < W * (Lc * (1 - d[:, None]) + Uc * d[:, None])
        rhs_at = (np.where(inI, W * (x - Lc * (1 - d[:, None])), 0.0).sum(1)
                  + (b + np.where(inI, 0.0, W * Uc).sum(1)) * d)
        viol = a - rhs_at
        for j in np.flatnonzero(viol > VIOLATION * np.maximum(1.0, np.abs(a))):
            I = np.flatnonzero(inI[j] & (W[j] != 0.0))
            wl = W[j, I] * Lc[j, I]
            wu = W[j] * Uc[j]
            outside = np.flatnonzero(~inI[j] & (W[j] != 0.0))
            c_rhs = float(wl.sum())            # sum_I w_i Lc_i
            c_d = c_rhs + b[j] + float(wu[outside].sum())
            # the rounding of both sums and of their additions: widen, never tighten
            slack = round_up(gamma_slack(prev.size + 2) * (float(np.abs(wl).sum())
                                                            + float(np.abs(wu[outside]).sum()) + abs(b[j])))
            cols = np.concatenate([[hd.layer_cols[l][units[j]]], prev[I], [bins[units[j]]]])
            # HiGHS drops a coefficient of |v| <= 1e-9: keep d's off zero, more negative (looser)
            coef_d = -c_d - slack
            coef_d = -2e-9 if abs(coef_d) <= 2e-9 else coef_d  # d >= 0: a smaller coefficient loosens
            coefs = np.concatenate([[1.0], -W[j, I], [coef_d]])
            out.append((cols.astype(np.int32), coefs, np.nextafter(-c_rhs + slack, np.inf)))
    return out
