"""The partition-based encoding of a ReLU network (Tsay, Kronqvist, Thebelt and Misener,
NeurIPS 2021): ``add_network(h, net, x, formulation="partition", groups=N)``.

Each unstable unit ``a = max(0, z)``, ``z = w . a_prev + b``, has its inputs split into
``N`` groups ``S_n`` (``split="sorted"``: by sorted weight, equal sizes, as the paper and
OMLT do; ``"equal"``: equal sizes in input order). Per group, ``s_n = w_{S_n} . a_prev`` and
its "active part" ``p_n`` (``p_n = s_n`` when the binary ``d`` is 1, else 0), with sound
bounds ``LB_n <= s_n <= UB_n`` (:func:`group_bounds`). The rows, on top of the big-M rows of
``cpp/include/emlpress/bigm.hpp`` (kept: they carry the unit's own, often tighter, bounds,
and ``a >= z`` is the paper's inactive-side row):

    s_n - w_{S_n} . a_prev = 0                      (the weights, once per group)
    a - sum_n p_n - b d = 0                         (a = z when active, 0 when not)
    LB_n d <= p_n <= UB_n d                         (two rows per group)
    (1 - d) LB_n <= s_n - p_n <= (1 - d) UB_n       (two rows per group)

``N = 1`` is big-M; ``N`` at least the unit's fan-in (one group per input) is the convex hull
of the unit over the box of its inputs. Stable units are encoded as big-M encodes them (no
binary). The LP relaxation is never looser than big-M's (its rows are big-M's plus valid
ones); whether that pays in solve time is measured in ``benches/README.md`` (MILP).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import highspy
import numpy as np
import scipy.sparse as sp

from emlpress import kernels
from emlpress._highs import add_block
from emlpress.bounds.domain import Domain
from emlpress.bounds.rounding import gamma_slack, round_up
from emlpress.milp.network import NetworkHandle
from emlpress.network import Network

__all__ = ["FORMULATIONS", "SPLITS", "PartitionHandle", "check_options", "split_groups",
           "group_bounds"]

#: the encodings add_network(..., formulation=) takes
FORMULATIONS = ("bigm", "partition")
#: how a unit's inputs are split into groups
SPLITS = ("sorted", "equal")


def check_options(formulation, groups, split) -> int:
    """The number of groups for ``formulation``/``groups``/``split`` (1 for big-M), or a
    ``ValueError`` naming the bad argument."""
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {', '.join(map(repr, FORMULATIONS))}, "
                         f"got {formulation!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(map(repr, SPLITS))}, got {split!r}")
    if groups is None:
        return 2 if formulation == "partition" else 1
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be an integer >= 1 (the groups of each unit's inputs), "
                         f"got {groups!r}")
    if formulation == "bigm" and groups != 1:
        raise ValueError(f"groups={groups} needs formulation='partition' (big-M has one group)")
    return int(groups)


#: an input whose term w_j x_j ranges over less than TINY_TERM of the unit's whole range, or
#: less than MIN_WIDTH, gets no group of its own (it joins the widest), and a unit whose
#: pre-activation ranges over less than MIN_WIDTH keeps big-M's rows only: groups of width
#: ~1e-12 (a nearly dead unit, weights ~1e-8), below HiGHS' feasibility tolerance (1e-7),
#: made its presolve declare a feasible LP relaxation infeasible
TINY_TERM, MIN_WIDTH = 1e-9, 1e-6
#: the smallest coefficient HiGHS keeps is above 1e-9 (small_matrix_value): group bounds that
#: become coefficients of the binary are at least this far from 0 (or exactly 0)
HIGHS_SMALL = 2e-9


def split_groups(w: np.ndarray, members: np.ndarray, n_groups: int, split: str,
                 width: np.ndarray | None = None) -> list:
    """``members`` (indices into ``w``, shape ``(m,)``) split into ``min(n_groups, m)``
    groups of equal size (within one), after sorting by ``w`` for ``split="sorted"``.
    ``width`` (shape of ``w``, optional): the range of each term ``w_j x_j``; members whose
    term ranges over less than ``TINY_TERM`` of the sum of them, or ``MIN_WIDTH``, join the
    widest group (all in one group when all are)."""
    if not members.size:
        return []
    tiny = np.zeros(members.size, dtype=bool)
    if width is not None:
        tiny = width[members] <= max(TINY_TERM * float(width[members].sum()), MIN_WIDTH)
        if tiny.all():
            return [members]
    rest, small = members[~tiny], members[tiny]
    if split == "sorted":
        rest = rest[np.argsort(w[rest], kind="stable")]
    groups = np.array_split(rest, min(n_groups, rest.size))
    if small.size:
        g = int(np.argmax([width[S].sum() for S in groups]))
        groups[g] = np.concatenate([groups[g], small])
    return groups


def group_bounds(w: np.ndarray, lo: np.ndarray, hi: np.ndarray, groups: list,
                 l1: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sound bounds ``(LB, UB)`` (shape ``(len(groups),)``) of ``w[S] . x[S]`` for each group
    ``S`` over the box ``lo <= x <= hi`` (and, with ``l1=(center, eps)``, also over the
    ball ``||x - center||_1 <= eps``, the tighter of the two kept), widened by the rounding
    slack of :mod:`emlpress.bounds.rounding` so that the exact sums are inside."""
    LB, UB = np.empty(len(groups)), np.empty(len(groups))
    for n, S in enumerate(groups):
        ws, a, c = w[S], w[S] * lo[S], w[S] * hi[S]
        lower, upper = np.minimum(a, c), np.maximum(a, c)
        slack = round_up(gamma_slack(S.size) * float(np.sum(np.maximum(np.abs(a), np.abs(c)))))
        LB[n] = np.nextafter(float(lower.sum()) - slack, -np.inf)
        UB[n] = np.nextafter(float(upper.sum()) + slack, np.inf)
        if l1 is not None:
            center, eps = l1
            t = ws * center[S]
            r = eps * float(np.max(np.abs(ws)))  # the dual norm of the l1 ball: max |w|
            mid = float(t.sum())
            s2 = round_up(gamma_slack(S.size + 2) * (float(np.sum(np.abs(t))) + r))
            LB[n] = max(LB[n], np.nextafter(mid - r - s2, -np.inf))
            UB[n] = min(UB[n], np.nextafter(mid + r + s2, np.inf))
    return LB, UB


def crown_group_bounds(net, b, l: int, G: np.ndarray, lo: np.ndarray, hi: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Sound bounds of ``G @ a_{l-1}`` (``G`` shape ``(n_groups, n_prev)``: each row a
    group's weights scattered; ``a_{l-1}`` the ReLU outputs of layer ``l - 1 >= 0``) over
    the box ``[lo, hi]``: CROWN's linear bounds of a network whose layer ``l`` is ``G``,
    given ``b``'s bounds of the layers before (``kernels.crown_linear``), concretised over
    the box and rounded outward as :func:`emlpress.bounds.crown` does on rows."""
    part = Network(list(net.weights[:l]) + [G], list(net.biases[:l]) + [np.zeros(G.shape[0])])
    L = kernels.crown_linear(part._core, lo, hi, (list(b.lower[:l]), list(b.upper[:l])), l,
                             list(range(G.shape[0])))
    box = Domain(lo, hi)
    lower = np.nextafter(np.nextafter(L.cL + box.min_linear(L.AL), -np.inf) - L.slack, -np.inf)
    upper = np.nextafter(np.nextafter(L.cU - box.min_linear(-L.AU), np.inf) + L.slack, np.inf)
    return lower, upper


@dataclass
class PartitionHandle(NetworkHandle):
    """A network encoded by the partition formulation. Beside :class:`NetworkHandle`'s
    columns: ``groups`` (the number of groups asked for), ``split``, and per hidden layer
    ``l`` the groups of its unstable units: ``group_unit[l]`` (the unit of each group),
    ``group_weights[l]`` (a sparse ``(n_groups, n_prev)`` matrix: row g is ``w_{S_g}``
    scattered, so that ``s = group_weights[l] @ a_prev``), ``sum_cols[l]`` (the columns
    of ``s``) and ``part_cols[l]`` (of ``p``, the active parts)."""

    groups: int = 2
    split: str = "sorted"
    group_unit: list = field(default_factory=list)
    group_weights: list = field(default_factory=list)
    sum_cols: list = field(default_factory=list)
    part_cols: list = field(default_factory=list)

    def stats(self) -> dict:
        s = super().stats()
        s.update(groups=self.groups, split=self.split)
        return s

    def start_values(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Big-M's columns at input ``x`` (:meth:`NetworkHandle.start_values`) and every
        group's ``s`` and ``p`` from the same forward pass."""
        cols, vals = super().start_values(x)
        x = np.asarray(x, dtype=np.float64).reshape(1, -1)
        zs = [z[0] for z in self.net.preactivations(x)]
        extra_c, extra_v = [cols], [vals]
        for l in range(len(self.group_unit)):
            if not self.group_unit[l].size:
                continue
            prev = x[0] if l == 0 else np.maximum(zs[l - 1], 0.0)
            s = self.group_weights[l] @ prev
            active = zs[l][self.group_unit[l]] > 0
            extra_c += [self.sum_cols[l], self.part_cols[l]]
            extra_v += [s, np.where(active, s, 0.0)]
        return np.concatenate(extra_c).astype(np.int32), np.concatenate(extra_v)


def add_groups(h, net, b, enc, base: int, input_cols: np.ndarray, lo: np.ndarray,
               hi: np.ndarray, n_groups: int, split: str) -> dict:
    """Add the partition columns and rows of every unstable unit to ``h``, which already
    holds big-M's block ``enc`` (``kernels.bigm_network``, its first column ``base``) of
    ``net`` with bounds ``b`` on the input columns ``input_cols`` with box ``[lo, hi]``.
    Returns the :class:`PartitionHandle` fields and the counts of what was added."""
    first = h.getNumCol()
    col_lo, col_hi = np.asarray(enc.col_lower), np.asarray(enc.col_upper)
    l1 = None
    if b.domain is not None and b.domain.center is not None:
        l1 = (np.asarray(b.domain.center, float), float(b.domain.eps))
    new_lo, new_hi = [], []
    rows_lo, rows_hi, starts, idx, val = [], [], [0], [], []

    def col(lower, upper) -> int:
        new_lo.append(lower)
        new_hi.append(upper)
        return first + len(new_lo) - 1

    def row(cols, coefs, lower, upper) -> None:
        idx.extend(int(c) for c in cols)
        val.extend(float(v) for v in coefs)
        starts.append(len(idx))
        rows_lo.append(lower)
        rows_hi.append(upper)

    units, weights, sums, parts = [], [], [], []
    prev_cols = np.asarray(input_cols)
    prev_lo, prev_hi = np.asarray(lo, float), np.asarray(hi, float)
    for l in range(net.n_layers - 1):
        W, bias = net.weights[l], net.biases[l]
        bins, pres = np.asarray(enc.binary_cols[l]), np.asarray(enc.pre_cols[l])
        has_col = prev_cols >= 0
        plan = []  # (unit, its groups, their bounds) of this layer's unstable units
        for i in np.flatnonzero(bins >= 0):
            if b.upper[l][i] - b.lower[l][i] < MIN_WIDTH:
                continue
            w = W[i]
            members = np.flatnonzero((w != 0.0) & has_col)
            groups = split_groups(w, members, n_groups, split, np.abs(w) * (prev_hi - prev_lo))
            LB, UB = group_bounds(w, prev_lo, prev_hi, groups, l1 if l == 0 else None)
            if len(groups) == 1:  # one group is the whole sum: z's own bounds hold for it
                LB[0] = max(LB[0], np.nextafter(b.lower[l][i] - bias[i], -np.inf))
                UB[0] = min(UB[0], np.nextafter(b.upper[l][i] - bias[i], np.inf))
            plan.append((i, groups, LB, UB))
        g_unit = [i for i, groups, _, _ in plan for _ in groups]
        g_rows = [g for g, S in enumerate(S for _, groups, _, _ in plan for S in groups) for _ in S]
        g_cols = [int(j) for _, groups, _, _ in plan for S in groups for j in S]
        g_vals = [W[i, j] for i, groups, _, _ in plan for S in groups for j in S]
        G = sp.csr_matrix((g_vals, (g_rows, g_cols)), shape=(len(g_unit), W.shape[1]))
        if l > 0 and len(g_unit):  # CROWN over the layers before: tighter than the boxes
            cl, cu = crown_group_bounds(net, b, l, G.toarray(), np.asarray(lo, float),
                                        np.asarray(hi, float))
            k = 0
            for _, groups, LB, UB in plan:
                m = len(groups)
                LB[:] = np.maximum(LB, cl[k:k + m])
                UB[:] = np.minimum(UB, cu[k:k + m])
                k += m
        s_cols, p_cols = [], []
        for i, groups, LB, UB in plan:
            w = W[i]
            a, d = int(enc.unit_cols[l][i]), int(bins[i])
            ps = []
            for S, lb, ub in zip(groups, LB, UB):
                # HiGHS drops coefficients of |v| <= 1e-9 (then p <= ub d reads p <= 0):
                # widen such bounds off zero, never tighten
                lb = min(lb, -HIGHS_SMALL) if lb < 0 else lb
                ub = max(ub, HIGHS_SMALL) if ub > 0 else ub
                s = col(lb, ub)
                p = col(min(0.0, lb), max(0.0, ub))
                ps.append(p)
                row([s, *prev_cols[S]], [1.0, *(-w[S])], 0.0, 0.0)
                row([p, d], [1.0, -ub], -np.inf, 0.0)
                row([p, d], [1.0, -lb], 0.0, np.inf)
                row([s, p, d], [1.0, -1.0, lb], lb, np.inf)
                row([s, p, d], [1.0, -1.0, ub], -np.inf, ub)
                s_cols.append(s)
                p_cols.append(p)
            row([a, *ps, d], [1.0, *([-1.0] * len(ps)), -bias[i]], 0.0, 0.0)
        units.append(np.asarray(g_unit, dtype=np.int64))
        weights.append(G)
        sums.append(np.asarray(s_cols, dtype=np.int32))
        parts.append(np.asarray(p_cols, dtype=np.int32))
        # this layer's columns and their bounds: the next layer's inputs
        prev_cols = np.asarray(enc.unit_cols[l])
        k = np.where(prev_cols >= 0, prev_cols - base, 0)
        prev_lo = np.where(prev_cols >= 0, col_lo[k], 0.0)
        prev_hi = np.where(prev_cols >= 0, col_hi[k], 0.0)
    blk = kernels.LpBlock(np.asarray(new_lo, float), np.asarray(new_hi, float),
                          np.asarray(rows_lo, float), np.asarray(rows_hi, float),
                          np.asarray(starts, np.int32), np.asarray(idx, np.int32),
                          np.asarray(val, float))
    if new_lo:
        add_block(h, blk)
    return {"fields": dict(groups=n_groups, split=split, group_unit=units, group_weights=weights,
                           sum_cols=sums, part_cols=parts),
            "n_vars": len(new_lo), "n_constraints": len(rows_lo), "n_nonzeros": len(val)}


def relaxation_objective(h, time_limit: float = 120.0) -> float:
    """The optimum of ``h``'s LP relaxation (every integer column made continuous, on a
    copy), for comparing the strength of encodings; ``nan`` when HiGHS finds none within
    ``time_limit`` seconds."""
    lp = h.getLp()
    lp.integrality_ = []
    r = highspy.Highs()
    r.setOptionValue("output_flag", False)
    r.setOptionValue("time_limit", float(time_limit))
    r.passModel(lp)
    r.run()
    if r.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        r.setOptionValue("presolve", "off")  # HiGHS' presolve misjudges nearly fixed columns
        r.clearSolver()
        r.run()
    if r.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return float("nan")
    return float(r.getInfo().objective_function_value)
