"""Per-neuron LP / MILP bound problems on HiGHS, built layer by layer from C++ rows.

One `Highs` instance per worker thread; the rows come from a shared C++ store
(`_core.LpRelaxation`), added in one bulk call per layer. Each neuron's min and max re-use
the instance with a changed objective (warm start, presolve off). LP values are made
rigorous from the row duals (`safe_bound`); MILP values are HiGHS' proven dual bound,
widened by the MIP feasibility tolerance times the neuron's magnitude.
"""

from __future__ import annotations

import math
import warnings

import highspy
import numpy as np


_EMPTY_I = np.array([], dtype=np.int32)
_EMPTY_F = np.array([], dtype=np.float64)


def add_block(h: highspy.Highs, blk: dict) -> None:
    """Append a C++ row block (``col_lower``/``col_upper``, ``binary``, CSR rows; the dict of
    ``LpRelaxation.add_layer`` or ``bigm_network``) to ``h``: one addCols, one addRows."""
    n = len(blk["col_lower"])
    h.addCols(n, np.zeros(n), blk["col_lower"], blk["col_upper"], 0, _EMPTY_I, _EMPTY_I, _EMPTY_F)
    nb = len(blk["binary"])
    if nb:
        h.changeColsIntegrality(nb, blk["binary"], np.full(nb, highspy.HighsVarType.kInteger))
    h.addRows(len(blk["row_lower"]), blk["row_lower"], blk["row_upper"], len(blk["values"]),
              blk["starts"][:-1], blk["indices"], blk["values"])
_OK_LP = {"Optimal", "Bound on objective reached"}
_OK_MIP = {"Optimal", "Time limit reached"}
#: HiGHS' MIP feasibility tolerance for MILP bounds; each MILP bound is widened by it times
#: the chain magnitude prod_j max(1, max_i ||W_j[i]||_1) (k + 1) (1 + max |x|): a row or
#: bound violated by MIP_TOL moves the objective by at most about that much.
MIP_TOL = 1e-9


class BoundError(RuntimeError):
    """A per-neuron bound problem failed (solver status named in the message)."""


class NeuronProblems:
    """The relaxation of the layers before the current one, in one HiGHS instance."""

    def __init__(self, net, lo, hi, store, integer: bool = False, time_limit: float | None = None):
        self.net, self.store, self.integer = net, store, integer
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        if not integer:
            h.setOptionValue("presolve", "off")  # presolve would discard the warm basis
        else:  # exact bounds: close the gap completely (the dual bound is used anyway)
            h.setOptionValue("mip_rel_gap", 0.0)
            h.setOptionValue("mip_abs_gap", 1e-9)
            h.setOptionValue("mip_feasibility_tolerance", MIP_TOL)
            h.setOptionValue("primal_feasibility_tolerance", MIP_TOL)
        if time_limit is not None:
            h.setOptionValue("time_limit", float(time_limit))
        h.addCols(len(lo), np.zeros(len(lo)), lo, hi, 0, _EMPTY_I, _EMPTY_I, _EMPTY_F)
        self.h = h
        self.cost_idx = _EMPTY_I
        self.n_binary = 0
        xmax = float(max(np.abs(lo).max(), np.abs(hi).max()))
        # MILP slack per layer k (see MIP_TOL), computed once
        row_l1 = [max(1.0, float(np.abs(W).sum(1).max())) for W in net.weights]
        self._mip_slack = [MIP_TOL * float(np.prod(row_l1[: k + 1])) * (k + 1) * (1.0 + xmax)
                           for k in range(net.n_layers)]

    @property
    def _mip(self) -> bool:
        """A MIP once binaries exist; before that HiGHS solves (and reports) a plain LP."""
        return self.integer and self.n_binary > 0

    def add_block(self, blk: dict) -> None:
        h = self.h
        add_block(h, blk)
        self.n_binary += len(blk["binary"])
        # the objective of the next layer's neurons lives on this block's columns
        if len(self.cost_idx):
            h.changeColsCost(len(self.cost_idx), self.cost_idx, np.zeros(len(self.cost_idx)))
        self.cols = blk["cols"]
        self.live = self.cols >= 0
        self.cost_idx = self.cols[self.live].astype(np.int32)

    def _solve(self, cost: np.ndarray, stop_at: float, where: str) -> float:
        """min cost.a over the relaxation; a rigorous lower bound of it, or -inf (with a
        warning naming the neuron and HiGHS' status) when HiGHS cannot solve it. The dual
        simplex may stop once its (dual feasible) objective passes `stop_at`."""
        h = self.h
        # scale the objective by a power of two (exact) so that max |cost| is about 1:
        # HiGHS' dual simplex fails on large costs times large bounds
        scale = 2.0 ** math.frexp(float(np.abs(cost).max()))[1]
        c = cost / scale
        h.changeColsCost(len(self.cost_idx), self.cost_idx, c)
        if not self.integer:
            h.setOptionValue("objective_bound", float(stop_at) / scale)
        for attempt in range(2):
            run_status = h.run()
            status = h.modelStatusToString(h.getModelStatus())
            if status in (_OK_MIP if self._mip else _OK_LP):
                break
            if status == "Infeasible":
                raise BoundError(f"{where}: the bound problem is infeasible; this cannot "
                                 "happen for a valid box and sound bounds of earlier layers")
            # every column is bounded, so 'Unbounded' is a numerical failure like 'Unknown'
            h.clearSolver()  # a warm-started LP can come back Unknown: solve from scratch
        else:
            # Any row multipliers give a rigorous LP bound (safe_bound), so an LP whose
            # optimality HiGHS could not confirm ('Unknown', badly scaled) still yields a
            # sound, if looser, value. Without valid duals, keep the starting bound.
            if self._mip or not h.getSolution().dual_valid:
                warnings.warn(f"{where}: HiGHS returned status '{status}' ({run_status}); "
                              "keeping the starting bound", RuntimeWarning, stacklevel=4)
                h.clearSolver()
                return -np.inf
        if self._mip:
            return float(h.getInfo().mip_dual_bound) * scale
        # an LP (HiGHS sets no MIP dual bound without integer columns): rigorous from duals
        y = np.asarray(h.getSolution().row_dual, dtype=np.float64)
        return self.store.safe_bound(self.cost_idx, c, y) * scale

    def neuron(self, k: int, i: int, lower: float, upper: float, sign_only: bool):
        """(lower, upper) of pre-activation i of layer k. With `sign_only`, once one side
        proves the unit stable the other side is not solved (its old bound is kept)."""
        w = self.net.weights[k][i][self.live]
        b = float(self.net.biases[k][i])
        where = f"layer {k}, neuron {i}"
        if not np.any(w):  # no live input: the pre-activation is the constant b
            return max(lower, b), min(upper, b)
        margin = 1e-9 * (1.0 + abs(b))
        slack = self._mip_slack[k] + 1e-12 * abs(b) if self.integer else 0.0
        lo_v, hi_v = lower, upper
        order = ("max", "min") if (sign_only and upper < -lower) else ("min", "max")
        for side in order:
            if side == "min":
                v = self._solve(w, -b + margin if sign_only else np.inf, where) + b - slack
                lo_v = max(lo_v, v)
                if sign_only and lo_v >= 0.0:
                    break
            else:
                v = -(self._solve(-w, b + margin if sign_only else np.inf, where)) + b + slack
                hi_v = min(hi_v, v)
                if sign_only and hi_v <= 0.0:
                    break
        return lo_v, hi_v

