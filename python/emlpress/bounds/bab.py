"""Exact pre-activation bounds (:func:`milp`) by branch-and-bound over ReLU phases (or the
input box) on rigorous LPs.

For one neuron and one side (min or max of its pre-activation over the box), the search
splits on the phases of earlier unstable units. Every node is the LP relaxation of the
big-M encoding (rows from ``kernels.LpRelaxation(integer=True)``, binaries left continuous)
with the fixed phases as column bounds (active: ``d = 1``, ``z >= 0``; inactive: ``d = 0``,
``z <= 0``, ``a = 0``), solved by HiGHS warm-started (the first child from its parent's
basis, the second from its sibling's where the LP is small: ``SIBLING_WARM_START``), and
its value is made rigorous from the row duals over emlpress' own rows (``LpRelaxation.safe_bound``
with the node's column bounds); a node HiGHS calls infeasible is dropped only when its dual
ray is a Farkas certificate checked the same way. The bound returned is the smallest
rigorous value over all leaves (open, pruned or exhausted), so a time or node limit gives a
looser bound that is still sound. HiGHS' MIP is not used at all.

Witnesses (inputs whose forward pass reaches a value) come from seeded samples of the box,
projected-gradient attacks on each target and the inputs of every node LP's optimum; in
sign-only mode a witness of the wrong sign ends the search for that side at once (the
unit is shown unstable), and in full mode the best witness is the incumbent that prunes.

Branching: the unfixed unit with the largest score at the node's LP optimum; ``RULES``
lists the rules (measured in benches/README.md).

On a constrained :class:`~emlpress.bounds.domain.Domain` (linear rows, an l1 ball) the
domain's rows come first in the relaxation (``LpRelaxation.add_domain``), so every node LP
and every certificate (duals and Farkas rays alike) includes them; the input split drops
a sub-box only when the domain is certified absent from it; a witness counts only once it
lies in the domain exactly (``Domain.holds``, after ``Domain.admit`` pulled it in).
"""

from __future__ import annotations

import copy
import heapq
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import highspy
import numpy as np
import pandas as pd
from tqdm import tqdm

from emlpress import _highs, _options, kernels
from emlpress._highs import EMPTY_F, EMPTY_I, add_block
from emlpress.bounds.domain import Domain, domain_and_box
from emlpress.bounds.relaxation import BoundError, lp, run_on_free_workers
from emlpress.bounds.result import Bounds
from emlpress.bounds.rounding import _down, _up, forward_rounding
from emlpress.bounds.witnesses import _Witnesses, attack, values_and_gradients
from emlpress.network import Network, box_points

__all__ = ["milp", "exact_bounds", "PhaseSearch", "InputSearch", "RULES", "RULE", "SPLITS",
           "SPLIT", "INPUT_DIMS", "GAP_TOL"]


#: branching rules: score of an unfixed unstable unit at a node's LP optimum (a, z) with
#: row duals y: "violation" a - max(z, 0) (how far the relaxation departs from the ReLU
#: there); "babsr" the BaBSR-style intercept score |y(a <= z - l (1 - d))| (-l) of
#: Bunel et al. (2020), among the units whose ReLU is violated. Nodes for every bound
#: exact, relu split: [2,32,32,1] 14,620 / 9,926; [2,16,16,16,1] 9,464 / 4,624;
#: [4,24,24,1] 28,170 / 6,270 (violation / babsr)
RULES = ("violation", "babsr")
RULE = "babsr"
#: InputSearch hands a sub-box to PhaseSearch once at most this many earlier units are
#: unstable on it
PHASE_UNITS = 8
#: what a node splits: "relu" the phase of an earlier unstable unit (PhaseSearch, LP
#: nodes), "input" the input box (InputSearch, CROWN nodes)
SPLITS = ("relu", "input", "auto")
#: "auto": "input" for at most INPUT_DIMS inputs, else "relu". Every bound exact, one
#: thread: [2,32,32,1] input 1.5 s, relu 6.4 s; [3,24,24,1] input 5.8 s, relu 2.1 s;
#: [4,24,24,1] input 31 s, relu 3.8 s (benches/README.md)
SPLIT = "auto"
INPUT_DIMS = 2
#: a node's second child starts from its first child's optimal basis (the two LPs differ in
#: the split unit's column bounds only), not its parent's, on relaxations of at most
#: SIBLING_MAX_COLS columns: setBasis discards HiGHS' factorization, which on small LPs costs
#: more than the iterations the sibling's basis adds (benches/README.md); larger LPs (MNIST
#: over an l1 ball: 2,000+ columns) restart from the parent's
SIBLING_WARM_START = True
SIBLING_MAX_COLS = 1000
#: HiGHS tolerances of the node LPs. The values are certified from the duals whatever
#: they are; tighter ones only bring the certified values closer to the LP optima.
LP_TOL = 1e-9
#: a ReLU relaxation gap a - max(z, 0) at or below this (relative to the unit's u - l) is
#: taken as none: the node's LP optimum is then a point of the network on that unit
VIOL_TOL = 1e-9
#: full mode stops when the incumbent (a witness) is within this of the rigorous bound,
#: relative to max(1, |value|)
GAP_TOL = 1e-9
#: witness search before the branch-and-bound: seeded uniform samples (plus corners in up
#: to 6 dimensions), then projected signed-gradient steps (witnesses.PGD_STEPS) from the
#: best sample of each side
N_SAMPLES = 4096

_OPT = highspy.HighsModelStatus.kOptimal
_INFEASIBLE = highspy.HighsModelStatus.kInfeasible


def check_search(split: str, rule: str) -> None:
    """Raise ``ValueError`` for a split or branching rule this module does not know."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {SPLITS}")
    if rule not in RULES:
        raise ValueError(f"unknown branching rule {rule!r}: expected one of {RULES}")


def gap_floor(best: float, scale: float = 1.0, gap=(GAP_TOL, GAP_TOL), value=None) -> float:
    """The value a full search's bound must reach to be exact: the best witness ``best``
    less GAP_TOL relative to max(1, |best scale|), in units where the value is best scale
    (+inf while no witness is known: none on a domain no sample lies in exactly).
    ``gap`` = (relative, absolute): the tolerance is max(absolute, relative |best scale|)
    (the default, (GAP_TOL, GAP_TOL), is GAP_TOL max(1, |best scale|)); or a callable of
    the target's value (``value(best)``) giving the tolerance in the target's units (a MIP
    gap on an objective the target is offset from: ``milp.bnb``)."""
    if best == math.inf:
        return math.inf
    if callable(gap):
        return best - gap(value(best)) / scale
    return best - max(gap[1], gap[0] * abs(best * scale)) / scale


def threshold(stop: bool, need: float, best: float, scale: float = 1.0,
              gap=(GAP_TOL, GAP_TOL), value=None) -> float:
    """The bound a search must reach: ``need`` (the sign) in a sign-only search; in a full
    one the gap floor of the best witness, raised to ``need`` while no witness is below it
    (a hidden unit's bound within the gap of 0 but on the wrong side of it would lose a
    stability the sign search proves; ``need`` is -inf where the sign does not matter)."""
    if stop:
        return need
    floor = gap_floor(best, scale, gap, value)
    return max(floor, need) if best >= need else floor


def best_first(root, expand, is_leaf, threshold, settled, stop: bool, deadline: float,
               node_limit: int | None, stats: dict) -> tuple[str, float]:
    """The search both splits share: nodes ``(bound, payload)`` in a heap, the lowest
    bound expanded first (``expand(bound, payload)`` yields the children) until every open
    node's bound reaches ``threshold()`` or ``settled()`` (a witness decided a sign-only
    search). A leaf (``is_leaf(payload)``: its bound is final) below the threshold ends a
    sign-only search unresolved and is set aside in a full one. Returns the outcome
    (``proved``, ``exact``, ``witness``, ``unresolved``, ``limit``) and the smallest bound
    over the leaves set aside and the nodes left open: the sound result."""
    heap, count, done = [(root[0], 0, root[1])], 0, math.inf
    t0_nodes = stats["nodes"]
    outcome = "witness" if settled() else None
    while heap and outcome is None:
        lb, _, node = heap[0]
        if lb >= threshold():  # every open node is past the threshold
            break
        if is_leaf(node):
            heapq.heappop(heap)
            done = min(done, lb)
            if stop:  # the sign cannot be proven in this region
                outcome = "unresolved"
            continue
        if time.perf_counter() > deadline or (
                node_limit is not None and stats["nodes"] - t0_nodes >= node_limit):
            outcome = "limit"
            break
        heapq.heappop(heap)
        for child in expand(lb, node):
            count += 1
            heapq.heappush(heap, (child[0], count, child[1]))
        if settled():
            outcome = "witness"
    if outcome is None:  # past the threshold, or everything set aside
        outcome = "proved" if stop else "exact"
    return outcome, min([done] + [n[0] for n in heap])


class PhaseSearch:
    """The big-M relaxation of the layers before the current target layer in one HiGHS
    instance (one per worker thread), and the branch-and-bound for one side of a target."""

    def __init__(self, net, lo, hi, store, rule: str = RULE):
        self.net, self.store, self.rule = net, store, rule
        self.lo, self.hi = lo, hi
        h = _highs.highs()
        h.setOptionValue("presolve", "off")  # presolve would discard the warm-start basis
        h.setOptionValue("primal_feasibility_tolerance", LP_TOL)
        h.setOptionValue("dual_feasibility_tolerance", LP_TOL)
        n = len(lo)
        h.addCols(n, np.zeros(n), lo, hi, 0, EMPTY_I, EMPTY_I, EMPTY_F)
        self.h = h
        # the relaxation's own column bounds and those HiGHS holds now
        self.base_lo, self.base_hi = np.array(lo, float), np.array(hi, float)
        self.cur_lo, self.cur_hi = self.base_lo.copy(), self.base_hi.copy()
        # per unstable unit of the layers added: columns a (output), z (pre-activation),
        # d (phase), the row a <= z - l (1 - d), and the unit's bounds l < 0 < u
        self.ua = self.uz = self.ud = self.ur = np.zeros(0, dtype=np.int64)
        self.ul = self.uu = np.zeros(0)
        self.cost_idx = EMPTY_I
        self.k = 0
        #: a sub-box of a constrained domain (InputSearch) may hold no point of it: a
        #: certified infeasible root is then an empty region (bound +inf), not a bug
        self.may_be_empty = False
        #: the gap at which a full search stops (gap_floor: (relative, absolute), or a
        #: callable of the target's value); milp.bnb sets the MIP gaps a user asked for
        self.gap = (GAP_TOL, GAP_TOL)

    # --- the relaxation -------------------------------------------------------------
    def add_block(self, blk: dict) -> None:
        r0 = self.h.getNumRow()
        add_block(self.h, blk, integral=False)
        self.base_lo = np.concatenate([self.base_lo, blk.col_lower])
        self.base_hi = np.concatenate([self.base_hi, blk.col_upper])
        self.cur_lo = np.concatenate([self.cur_lo, blk.col_lower])
        self.cur_hi = np.concatenate([self.cur_hi, blk.col_upper])
        d = np.asarray(blk.binary, dtype=np.int64)
        if not d.size:
            return
        # LpRelaxation's column order per unstable unit is a, z, d; its rows containing d
        # are a <= z - l (1 - d) (coefficient -l > 0) and a <= u d (coefficient -u < 0)
        starts, idx, val = blk.starts, blk.indices, blk.values
        row_of = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
        sel = np.isin(idx, d) & (val > 0)
        order = np.argsort(idx[sel])
        rows = row_of[sel][order] + r0
        if not np.array_equal(np.sort(idx[sel]), np.sort(d)):
            raise BoundError("unexpected big-M row layout from LpRelaxation")
        z = np.sort(d) - 1
        self.ua = np.concatenate([self.ua, z - 1])
        self.uz = np.concatenate([self.uz, z])
        self.ud = np.concatenate([self.ud, np.sort(d)])
        self.ur = np.concatenate([self.ur, rows])
        self.ul = np.concatenate([self.ul, self.base_lo[z]])
        self.uu = np.concatenate([self.uu, self.base_hi[z]])

    def set_targets(self, k: int, aff: dict, slack: np.ndarray) -> None:
        """Layer k's pre-activations z = A v[ref] + c (|error| <= err) are the next targets;
        ``slack`` per neuron is the rounding of a float64 forward pass (see
        bounds.forward_rounding), which the LP's exact rows do not see."""
        if len(self.cost_idx):
            self.h.changeColsCost(len(self.cost_idx), self.cost_idx, np.zeros(len(self.cost_idx)))
        self.k = k
        self.cost_idx = np.asarray(aff.ref, dtype=np.int32)
        self.A, self.c, self.err = aff.A, aff.c, aff.err
        self.slack = slack

    # --- one node -------------------------------------------------------------------
    def _column_bounds(self, fix: tuple) -> tuple[np.ndarray, np.ndarray]:
        nl, nh = self.base_lo.copy(), self.base_hi.copy()
        for j, active in fix:
            a, z, d = self.ua[j], self.uz[j], self.ud[j]
            if active:
                nl[d] = 1.0
                nl[z] = 0.0
            else:
                nh[d] = 0.0
                nh[z] = 0.0
                nh[a] = 0.0
        return nl, nh

    def _evaluate(self, fix: tuple, parent_lb: float, c: np.ndarray, stats: dict):
        """Solve the node LP with the phases `fix`; returns (rigorous lower bound of
        min c.v, column values or None, row duals or None); the bound is +inf when the
        node is certified infeasible, else never below `parent_lb`."""
        h = self.h
        nl, nh = self._column_bounds(fix)
        ch = np.flatnonzero((nl != self.cur_lo) | (nh != self.cur_hi)).astype(np.int32)
        if ch.size:
            h.changeColsBounds(ch.size, ch, nl[ch], nh[ch])
            self.cur_lo[ch], self.cur_hi[ch] = nl[ch], nh[ch]
        stats["nodes"] += 1
        status = None
        for _attempt in range(2):
            h.run()
            status = h.getModelStatus()
            if status in (_OPT, _INFEASIBLE):
                break
            stats["lp_failures"] += 1
            h.clearSolver()  # a warm start can come back Unknown: solve from scratch
        lb = parent_lb
        sol = h.getSolution()
        if status == _INFEASIBLE:
            has_ray, ray = False, None
            try:
                _, has_ray, ray = h.getDualRay()
            except Exception:  # noqa: BLE001 - no ray: the node stays open, at its parent's bound
                has_ray = False
            if has_ray and self.store.safe_bound(EMPTY_I, EMPTY_F, np.asarray(ray, float), nl, nh) > 0:
                return math.inf, None, None  # Farkas: 0 >= (bound > 0) has no solution
            stats["uncertified_infeasible"] += 1
            h.clearSolver()
            return lb, None, None
        y = None
        if sol.dual_valid:
            y = np.asarray(sol.row_dual, dtype=np.float64)
            lb = max(lb, self.store.safe_bound(self.cost_idx, c, y, nl, nh))
        x = np.asarray(sol.col_value, dtype=np.float64) if sol.value_valid else None
        return lb, x, y

    def _branch_unit(self, x, y, fixed: set):
        """The unit to split at a node with LP optimum x (duals y), or None when every
        unfixed unit's ReLU holds there (the node is a leaf: its bound is final). Without
        an LP solution (HiGHS failed on the node), the unfixed unit of the largest
        triangle intercept -l u / (u - l), or None when every unit is fixed."""
        if not self.ud.size:
            return None
        if x is None:
            score = -self.ul * self.uu / (self.uu - self.ul)
            if fixed:
                score[list(fixed)] = -np.inf
            j = int(np.argmax(score))
            return None if score[j] == -np.inf else j
        a, z = x[self.ua], x[self.uz]
        viol = a - np.maximum(z, 0.0)
        free = viol > VIOL_TOL * (self.uu - self.ul)
        if fixed:
            free[list(fixed)] = False
        if not free.any():
            return None
        if self.rule == "babsr" and y is not None:
            score = np.abs(y[self.ur]) * (-self.ul) + viol * 1e-12  # ties: the larger gap
        else:
            score = viol
        score = np.where(free, score, -np.inf)
        return int(np.argmax(score))

    # --- one side of one target -----------------------------------------------------
    def side(self, i: int, side: str, start: float, stop: bool, witness, deadline: float,
             node_limit: int | None, stats: dict, hidden: bool = True) -> float:
        """A rigorous lower (``side="min"``) or upper (``"max"``) bound of pre-activation i
        of the target layer, never looser than ``start``. ``witness(x)`` returns the
        target's float64 value at the inputs x (and records x as a witness for others).
        With ``stop`` the search ends as soon as the sign of that side is proven or a
        witness of the other sign is found; else it runs until the best witness is within
        GAP_TOL of the bound and, for a ``hidden`` unit, the sign is decided too (see
        :func:`threshold`). ``deadline`` (perf_counter) and ``node_limit`` cut it short
        with a sound, looser value. ``stats`` (nodes, witnessed, proved, unresolved, ...)
        is updated in place."""
        w = self.A[i]
        c0, e, fs = float(self.c[i]), float(self.err[i]), float(self.slack[i])
        if not np.any(w):  # no live input: the constant c (+- e)
            v = _down(_down(c0 - e) - fs) if side == "min" else _up(_up(c0 + e) + fs)
            return max(start, v) if side == "min" else min(start, v)
        sgn = 1.0 if side == "min" else -1.0
        # min g = c.v with c = sgn w / scale (a power of two: exact); z = sgn scale g + c0
        scale = 2.0 ** min(math.frexp(float(np.abs(w).max()))[1], 1000)  # 2.0**1024 overflows
        cvec = sgn * w / scale
        self.h.changeColsCost(len(self.cost_idx), self.cost_idx, cvec)

        def z_of(g: float) -> float:  # the rigorous side bound from a rigorous g
            if side == "min":
                return _down(_down(_down(g * scale + c0) - e) - fs)
            return _up(_up(_up(-g * scale + c0) + e) + fs)

        def g_of(zv: float) -> float:  # a witness' value in g (a heuristic: no rounding care)
            return sgn * (zv - c0) / scale

        def z_at(g: float) -> float:  # its inverse (the gap's tolerance on the target's value)
            return sgn * g * scale + c0

        # the sign to prove: z >= 0 (min) or z <= 0 (max), i.e. g >= need
        margin = 1e-12 * (1.0 + abs(c0) + e + fs)
        need = (((-c0 if side == "min" else c0) + e + fs + margin) / scale) if hidden else -math.inf
        best = math.inf  # smallest g among witnesses

        def see(x) -> bool:
            """Record the witness at LP point x; True when it settles a sign-only search."""
            nonlocal best
            if x is None:
                return False
            zv = witness(np.clip(x[: len(self.lo)], self.lo, self.hi))
            best = min(best, g_of(zv))
            return stop and ((zv < 0.0) if side == "min" else (zv > 0.0))

        best = min(best, g_of(witness(None)))  # the witnesses known so far for this side
        shown = [False]
        lb, x, y = self._evaluate((), -math.inf, cvec, stats)
        if lb == math.inf and self.may_be_empty:  # Farkas-certified: no point of the domain here
            stats["proved"] += 1
            return math.inf if side == "min" else -math.inf
        if lb == math.inf:
            raise BoundError(f"layer {self.k}, neuron {i}: the bound problem is certified "
                             "infeasible; the bounds of earlier layers exclude every point")
        shown[0] = see(x)

        sibling = SIBLING_WARM_START and len(self.base_lo) <= SIBLING_MAX_COLS

        def expand(lb, node):
            fix, unit, basis = node
            fixed = {j for j, _ in fix} | {unit}
            for phase in (True, False):
                child = fix + ((unit, phase),)
                if phase or not sibling:
                    self.h.setBasis(basis)
                clb, cx, cy = self._evaluate(child, lb, cvec, stats)
                shown[0] |= see(cx)
                if clb < math.inf:  # else certified infeasible: no point of the net is there
                    yield clb, (child, self._branch_unit(cx, cy, fixed), self.h.getBasis())

        outcome, g = best_first(
            (lb, ((), self._branch_unit(x, y, set()), self.h.getBasis())), expand,
            lambda node: node[1] is None,
            lambda: threshold(stop, need, best, scale, self.gap, z_at),
            lambda: shown[0], stop, deadline, node_limit, stats)
        if g == math.inf and self.may_be_empty:
            stats["proved"] += 1
            return math.inf if side == "min" else -math.inf
        if g == math.inf:
            raise BoundError(f"layer {self.k}, neuron {i}: every branch is certified "
                             "infeasible; the bounds of earlier layers exclude every point")
        if outcome == "exact" and g < gap_floor(best, scale, self.gap, z_at):
            outcome = "unresolved"  # no witness within the gap (a node HiGHS failed on)
        stats[outcome] += 1
        v = z_of(g)
        return max(start, v) if side == "min" else min(start, v)


class InputSearch:
    """Branch-and-bound over the input box for one side of a target: each node is a
    sub-box, its value the target's CROWN bound there (``kernels.crown``, rigorous with its
    rounding slack), split in two along the dimension of largest width times the
    target's slope, until at most PHASE_UNITS earlier units are unstable on a box, which
    then goes to PhaseSearch (LPs on that box, exact there). CROWN's relaxation of an
    unstable unit shrinks with the box, so few boxes reach the LPs; the search suits
    low-dimensional inputs."""

    def __init__(self, net, lo, hi, lower, upper, rule: str = RULE, domain: Domain | None = None):
        self.net, self.lo, self.hi, self.rule = net, lo, hi, rule
        self.domain = domain  # its rows join every sub-box's LPs; boxes outside it are dropped
        self.lower, self.upper = lower, upper  # the bounds so far (sound on every sub-box)
        self.k = 0
        self.gap = (GAP_TOL, GAP_TOL)  # as PhaseSearch.gap

    def set_targets(self, k: int, slack: np.ndarray) -> None:
        self.k, self.slack = k, slack
        # CROWN of the layers up to k only (the target layer as the output): the layers
        # after it would cost as much again on every sub-box
        self._upto_k = Network(self.net.weights[: k + 1], self.net.biases[: k + 1])._core

    def _phases(self, blo, bhi, L, U, i, side, start, stop, witness, deadline, node_limit,
                stats, hidden) -> tuple[float, bool]:
        """The sub-box's bound by PhaseSearch over its few unstable units: the big-M
        relaxation on the sub-box with its CROWN bounds (intersected with the bounds so
        far), where splitting the box further would only approach a kink."""
        store = kernels.LpRelaxation(blo, bhi, True)
        ps = PhaseSearch(self.net, blo, bhi, store, self.rule)
        ps.gap = self.gap
        if self.domain is not None:  # the rows first, then the layers
            ps.add_block(store.add_domain(**self.domain.rows()))
            ps.may_be_empty = True
        for j in range(self.k):
            blk = store.add_layer(self.net._core, j, np.maximum(L[j], self.lower[j]),
                                  np.minimum(U[j], self.upper[j]))
            ps.add_block(blk)
        ps.set_targets(self.k, store.pre_activation(self.net._core, self.k), self.slack)
        sub = dict.fromkeys(("nodes", "lp_failures", "uncertified_infeasible", "witness",
                             "proved", "exact", "unresolved", "limit"), 0)
        v = ps.side(i, side, start, stop, witness, deadline, node_limit, sub, hidden)
        for key in ("nodes", "lp_failures", "uncertified_infeasible"):
            stats[key] += sub[key]
        stats["lp_boxes"] += 1
        return v, sub["witness"] > 0

    def _probe(self, blo, bhi, i, sgn):
        """Witness inputs of a box for min sgn z_k[i]: its centre, and the corner the
        slope at the centre points to (the minimiser where the box is one linear piece)."""
        c = (blo + bhi) / 2
        _, g = values_and_gradients(self.net, c[None], self.k, i)
        corner = np.where(sgn * g[0] > 0, blo, bhi)
        return np.vstack([c, corner]), np.abs(g[0])

    def side(self, i: int, side: str, start: float, stop: bool, witness, deadline: float,
             node_limit: int | None, stats: dict, hidden: bool = True) -> float:
        """As :meth:`PhaseSearch.side`, by splitting the input box."""
        k, sgn = self.k, (1.0 if side == "min" else -1.0)
        width0 = np.where(self.hi > self.lo, self.hi - self.lo, 1.0)

        def bound(blo, bhi):
            """A rigorous lower bound of sgn z over the box, and the box's unstable units
            before layer k with its CROWN bounds."""
            L, U = kernels.crown(self._upto_k, blo, bhi)
            n_unstable = sum(int(np.sum((np.maximum(L[j], self.lower[j]) < 0) &
                                        (np.minimum(U[j], self.upper[j]) > 0))) for j in range(k))
            return (L[k][i] if side == "min" else -U[k][i]), (n_unstable, L, U)

        best = sgn * witness(None)
        settled = False

        def see(X):
            nonlocal best, settled
            for x in X:
                zv = witness(x)
                best = min(best, sgn * zv)
                if stop and ((zv < 0.0) if side == "min" else (zv > 0.0)):
                    settled = True

        need = 0.0 if hidden else -math.inf  # sgn z >= 0 proves the sign
        lb, info = bound(self.lo, self.hi)
        stats["nodes"] += 1
        P, slope = self._probe(self.lo, self.hi, i, sgn)
        see(P)

        def is_leaf(node):  # a box settled by LPs
            return node[2] is None

        def expand(lb, node):
            nonlocal settled, best
            blo, bhi, (n_unstable, L, U), slope = node
            w = bhi - blo
            mid = blo + w / 2
            # dimensions the box can still be halved along (mid strictly inside)
            splittable = (mid > blo) & (mid < bhi) & (w > 1e-12 * width0)
            # few kinks left: split their phases on LPs (also with none: CROWN keeps the
            # interval bounds of units that interval arithmetic proves stable, so it is not
            # exact on a box that is one linear piece, where the LP is), and so for a box
            # too small to halve
            if n_unstable <= PHASE_UNITS or not splittable.any():
                v, shown = self._phases(blo, bhi, L, U, i, side, lb if side == "min" else -lb,
                                        stop, witness, deadline, node_limit, stats, hidden)
                settled |= shown
                best = min(best, sgn * witness(None))  # the LPs' witnesses are recorded there
                yield (v if side == "min" else -v), (blo, bhi, None, slope)
                return
            score = w * (slope + 1e-3 * (slope.max() + 1.0)) / width0
            d = int(np.argmax(np.where(splittable, score, -np.inf)))
            at_d = np.arange(len(w)) == d
            for clo, chi in ((blo, np.where(at_d, mid, bhi)), (np.where(at_d, mid, blo), bhi)):
                if self.domain is not None and self.domain.excludes_boxes(clo, chi)[0]:
                    # no point of the domain in it (a checked closed-form certificate)
                    stats["nodes"] += 1
                    yield math.inf, (clo, chi, None, slope)
                    continue
                clb, cinfo = bound(clo, chi)
                stats["nodes"] += 1
                P, cslope = self._probe(clo, chi, i, sgn)
                see(P)
                # a sub-box's minimum is at least its parent's bound
                yield max(clb, lb), (clo, chi, cinfo, cslope)

        outcome, g = best_first(
            (lb, (self.lo, self.hi, info, slope)), expand, is_leaf,
            lambda: threshold(stop, need, best, 1.0, self.gap, lambda b: sgn * b),
            lambda: settled, stop, deadline, node_limit, stats)
        if g == math.inf:
            raise BoundError(f"layer {k}, neuron {i}: every sub-box is certified to hold no "
                             "point of the domain: please report")
        if outcome == "exact" and g < gap_floor(best, 1.0, self.gap, lambda b: sgn * b):
            outcome = "unresolved"  # no witness within the gap (a box's LPs were cut short)
        stats[outcome] += 1
        v = g if side == "min" else -g
        return max(start, v) if side == "min" else min(start, v)


def _fork(seen: _Witnesses) -> _Witnesses:
    """A copy of the witnesses for one thread of a phase (its own arrays, lock and pending)."""
    v = copy.copy(seen)
    v.lock, v.pending = threading.Lock(), []
    for name in ("zmin", "zmax", "xmin", "xmax"):
        setattr(v, name, [a.copy() for a in getattr(seen, name)])
    return v


def _join(seen: _Witnesses, views: list[_Witnesses]) -> None:
    """Fold the threads' copies into ``seen`` in thread order (a tie keeps the earlier)."""
    for v in views:
        seen.pending.extend(v.pending)
        for k in range(len(seen.zmin)):
            m = v.zmin[k] < seen.zmin[k]
            seen.zmin[k] = np.where(m, v.zmin[k], seen.zmin[k])
            seen.xmin[k] = np.where(m[:, None], v.xmin[k], seen.xmin[k])
            m = v.zmax[k] > seen.zmax[k]
            seen.zmax[k] = np.where(m, v.zmax[k], seen.zmax[k])
            seen.xmax[k] = np.where(m[:, None], v.xmax[k], seen.xmax[k])


def exact_bounds(net, lo, hi, init, *, time_limit, node_limit, threads, full, progress,
                 rule: str = RULE, split: str = "relu", seen: _Witnesses | None = None,
                 deadline: float = math.inf, output: bool = True, attack_first: bool = True,
                 domain: Domain | None = None):
    """Layer by layer, the branch-and-bound of :class:`PhaseSearch` for every target side
    (see :func:`emlpress.bounds.milp`); returns (lower, upper, settled, per-layer stats).
    ``seen``: the witnesses to start from and add to (default: seeded samples of the box);
    ``deadline`` (perf_counter): no side starts after it and none runs past it; without
    ``output`` the output layer is left at its starting bounds; without ``attack_first``
    no projected-gradient attack runs before the search (a later pass over the same
    witnesses). ``domain``: a constrained :class:`Domain` (``lo``/``hi`` its tightened box)
    whose rows join every node LP (and so every certificate) and which every witness must
    lie in exactly (``Domain.holds``; ``seen`` must be over it too)."""
    lower = [np.array(a, dtype=np.float64) for a in init.lower]
    upper = [np.array(a, dtype=np.float64) for a in init.upper]
    settled = [np.array(a, dtype=object) for a in init.settled_by]
    check_search(split, rule)
    if split == "auto":
        split = "input" if len(lo) <= INPUT_DIMS else "relu"
    store = kernels.LpRelaxation(lo, hi, True)
    if split == "relu":
        workers = [PhaseSearch(net, lo, hi, store, rule) for _ in range(threads)]
        if domain is not None:  # the domain's rows, before any layer, in every node LP
            blk = store.add_domain(**domain.rows())
            for w in workers:
                w.add_block(blk)
    else:
        workers = [InputSearch(net, lo, hi, lower, upper, rule, domain) for _ in range(threads)]
    fwd = forward_rounding(net, lo, hi, upper)  # exact LP values are widened by it
    if seen is None:
        seen = _Witnesses(net, _start_points(lo, hi, domain, N_SAMPLES), domain)
    rows, lock = [], threading.Lock()
    bar = None
    if progress:
        bar = tqdm(total=net.n_layers - 1 - (not output), desc="exact bounds", unit="layer")
    with ThreadPoolExecutor(threads) as pool:
        for k in range(1, net.n_layers - (not output)):
            t0 = time.perf_counter()
            blk = store.add_layer(net._core, k - 1, lower[k - 1], upper[k - 1])
            aff = store.pre_activation(net._core, k)
            for w in workers:
                if split == "relu":
                    w.add_block(blk)
                    w.set_targets(k, aff, fwd[k])
                else:
                    w.set_targets(k, fwd[k])
            if seen.pending:
                with lock:
                    P, seen.pending = np.vstack(seen.pending), []
                seen.add(P, k)
            stop = k < net.n_layers - 1 and not full
            if stop:
                units = np.flatnonzero((lower[k] < 0) & (upper[k] > 0))
            else:
                units = np.arange(lower[k].size)
            stats = dict(layer=k, units=int(lower[k].size), targets=int(units.size), sides=0,
                         witnessed=0, proved=0, exact=0, witness=0, unresolved=0, limit=0,
                         nodes=0, lp_boxes=0, lp_failures=0, uncertified_infeasible=0)
            # attacks on every side a sample has not settled (all sides in full mode)
            sides = [(int(i), s) for i in units for s in ("min", "max")
                     if not (stop and seen.settles(k, int(i), s))]
            if sides and attack_first:
                u = np.array([i for i, _ in sides])
                sg = np.array([-1.0 if s == "min" else 1.0 for _, s in sides])
                X0 = np.array([seen.xmin[k][i] if s == "min" else seen.xmax[k][i] for i, s in sides])
                if domain is None:  # (no witness yet: the box centre)
                    X0 = np.where(np.isnan(X0), (lo + hi) / 2, X0)
                _, Xa = attack(net, lo, hi, k, u, sg, X0, domain=domain)
                seen.add(Xa, k)
            if stop:
                # one side per unit: the one no witness settles, else (a unit no witness
                # has shown either way) the side more likely to prove it stable first
                first, second = [], []
                for i in units:
                    i = int(i)
                    open_ = [s for s in ("min", "max") if not seen.settles(k, i, s)]
                    if len(open_) == 1:
                        first.append((i, open_[0]))
                    elif len(open_) == 2:
                        likely = "max" if upper[k][i] < -lower[k][i] else "min"
                        first.append((i, likely))
                        second.append((i, "min" if likely == "max" else "max"))
                stats["witnessed"] = int(2 * units.size - len(first) - len(second))
                phases = [first, second]
            else:
                phases = [[(int(i), s) for i in units for s in ("min", "max")]]

            def run_tasks(tasks, k=k, stop=stop, stats=stats):
                # thread t solves the t-th slice of the tasks in order on its own instance and
                # its own copy of the witnesses, joined in thread order after the phase: what a
                # search sees does not depend on which thread finished first
                views = [seen] if threads == 1 else [_fork(seen) for _ in range(threads)]

                def solve(t, task, mine):
                    i, side = task
                    seen = views[t]
                    if stop and (seen.settles(k, i, side) or
                                 lower[k][i] >= 0 or upper[k][i] <= 0):
                        mine["witnessed"] += not (lower[k][i] >= 0 or upper[k][i] <= 0)
                        return

                    def witness(x, i=i, side=side):
                        if x is None:
                            return float(seen.zmin[k][i] if side == "min" else seen.zmax[k][i])
                        z = seen.add(x[None, :], k)
                        if not len(z[k]):  # not a point of the domain: what is known stands
                            return witness(None)
                        with lock:
                            seen.pending.append(x[None, :])
                        return float(z[k][0, i])

                    start = lower[k][i] if side == "min" else upper[k][i]
                    now = time.perf_counter()
                    if now > deadline:
                        mine["limit"] += 1
                        return
                    mine["sides"] += 1
                    v = workers[t].side(i, side, float(start), stop, witness,
                                        min(now + time_limit if time_limit else math.inf, deadline),
                                        node_limit, mine, k < net.n_layers - 1)
                    with lock:  # later tasks of the layer see the proof at once
                        bound = lower[k] if side == "min" else upper[k]
                        if v != bound[i]:
                            settled[k][i] = "milp"
                        bound[i] = v

                def counters():
                    return {key: 0 for key in stats if key not in ("layer", "units", "targets")}

                for mine in run_on_free_workers(pool, threads, tasks, lock, solve, counters,
                                                fixed=True):
                    for key, val in mine.items():
                        stats[key] += val
                if threads > 1:
                    _join(seen, views)

            for tasks in phases:
                run_tasks(tasks)
            stats["witnessed"] += stats.pop("witness")
            stats["unresolved"] += stats.pop("limit")
            stats["seconds"] = time.perf_counter() - t0
            rows.append(stats)
            if bar is not None:
                bar.set_postfix(layer=k, nodes=stats["nodes"], unresolved=stats["unresolved"])
                bar.update(1)
    if bar is not None:
        bar.close()
    for k in range(net.n_layers):  # a witness outside a bound is a bug of this module
        out = np.flatnonzero((seen.zmin[k] < lower[k]) | (seen.zmax[k] > upper[k]))
        if out.size:
            i = int(out[0])
            raise BoundError(f"layer {k}, neuron {i}: the exact bounds [{lower[k][i]!r}, "
                             f"{upper[k][i]!r}] exclude a value the network takes "
                             f"([{seen.zmin[k][i]!r}, {seen.zmax[k][i]!r}] seen): please report")
    columns = ["layer", "units", "targets", "sides", "witnessed", "proved", "exact",
               "unresolved", "nodes", "lp_boxes", "lp_failures", "uncertified_infeasible", "seconds"]
    return lower, upper, settled, pd.DataFrame(rows, columns=columns).set_index("layer")


def milp(net: Network, lo=None, hi=None, init: Bounds | None = None, time_limit: float = 10.0,
         threads: int | None = None, full: bool = False, progress: bool = False,
         node_limit: int | None = None, rule: str | None = None, split: str | None = None, *,
         deterministic: bool = False,
         domain: Domain | None = None, A_ub=None, b_ub=None, A_eq=None, b_eq=None,
         l1=None) -> Bounds:
    """Exact bounds by emlpress' own branch-and-bound over the phases of earlier unstable
    ReLUs (this module), layer by layer, each layer's relaxation built on the
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

    ``domain`` (and the keywords of :func:`interval`): the bounds hold on that
    :class:`Domain`. Its rows join every node LP and every certificate (as in :func:`lp`,
    an l1 ball as ``t_i >= |x_i - center_i|``, ``sum t <= eps``) over its tightened box;
    with the input split a sub-box is dropped only when the domain is certified absent
    from it (``Domain.excludes_boxes`` in closed form, or its node LP's Farkas ray), and
    every witness (samples, attacks, node LP optima) counts only once it lies in the
    domain exactly (``Domain.holds``: no tolerance; a point outside is pulled toward the
    domain's interior point first, ``Domain.admit``). ``init`` must hold on the domain
    (default :func:`lp` on it).

    Repeatability: the same bounds, bit for bit, on every run with the same ``threads``,
    unless ``time_limit`` stopped a search (the ``search`` table's ``unresolved``). Thread
    ``t`` searches the ``t``-th slice of each pass over a layer's sides, in order, on its
    own HiGHS instance and its own copy of the witnesses; the copies are joined in thread
    order after the pass, so no search sees what another thread found meanwhile (as in
    :func:`lp`, whose LPs repeat the same way). A time limit depends on the machine and
    its load: where one stops a search, that bound (and, through the witnesses it found,
    later ones) can differ between runs, each sound. ``node_limit`` stops every run at
    the same node: with ``time_limit=None`` it repeats exactly. ``deterministic=True``
    runs the searches on one thread (``init``'s LPs still use ``threads``): the same
    bounds whatever ``threads`` is."""
    d, lo, hi = domain_and_box(net, lo, hi, domain, A_ub, b_ub, A_eq, b_eq, l1)
    n_threads = _options.threads(threads) or max(1, kernels.num_threads())
    time_limit = _options.seconds("time_limit", time_limit)
    if node_limit is not None:
        node_limit = _options.positive_int("node_limit", node_limit, " or None")
    split = SPLIT if split is None else split
    rule = RULE if rule is None else rule
    check_search(split, rule)  # before the LP start is computed
    if init is None:
        init = lp(net, lo, hi, threads=threads) if d is None else lp(net, domain=d, threads=threads)
    elif d is None:
        init.check(net, lo, hi)
    else:
        init.check(net, domain=d)
    t0 = time.perf_counter()
    lower, upper, settled, search = exact_bounds(
        net, lo, hi, init, time_limit=time_limit, node_limit=node_limit,
        threads=1 if deterministic else n_threads,
        full=full, progress=progress, rule=rule, split=split, domain=d)
    seconds = dict(init.seconds)
    seconds["milp"] = time.perf_counter() - t0
    return Bounds(tuple(lower), tuple(upper), lo, hi, "milp", tuple(settled), seconds, search,
                  domain=d)


#: on a constrained domain, at most this many input coordinates' worth of start points of
#: each kind (samples, box points pulled in): hit-and-run and the pull walk lines through
#: an l1 ball in O(n_in log n_in) per point (784 inputs, 4,096 of each: 20 s of a 27 s
#: stability run at time_limit=0; at this cap 334 of each)
START_BUDGET = 2**18


def _start_points(lo, hi, domain: Domain | None, n: int) -> np.ndarray:
    """The first witnesses: ``n`` seeded points of the box and its corners (up to 6
    dimensions); on a constrained domain, its point, samples (``Domain.sample``) and box
    points (``_Witnesses`` pulls them into it), ``n`` of each up to ``START_BUDGET / n_in``
    (at least 256)."""
    if domain is None:
        return box_points(lo, hi, n, max_corner_dims=6)
    m = min(n, max(256, START_BUDGET // max(1, len(lo))))
    return np.vstack([domain.point[None, :], domain.sample(m, seed=0),
                      box_points(lo, hi, m, max_corner_dims=6)])
