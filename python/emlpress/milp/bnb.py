"""emlpress' own certified branch-and-bound for HiGHS models of one form: one network
(:func:`~emlpress.milp.add_network`), linear rows over its inputs and a linear objective over
its outputs. :func:`~emlpress.milp.solve` calls :func:`solve` here first (``solver="bab"``, or
``"auto"``); a model of any other form goes to HiGHS as before.

**The form** (:func:`recognise`): every column of the model is an input of the network, a
column of its encoding, an auxiliary column of an l1 ball written as
``t_i >= x_i - c_i``, ``t_i >= c_i - x_i``, ``sum_i t_i <= eps`` (one ``t`` per input), or a
column no row and no cost touches; the integer columns are the encoding's binaries; the rows
outside the encoding touch inputs (and the ``t`` of the ball) only; the encoding's columns keep
bounds that the network's own bounds over the domain imply (a user's bound on an output is a
constraint this module does not take: HiGHS answers then); the objective is
``c . outputs + offset``. Anything else: :func:`recognise` names what it is, and HiGHS solves.

**The search** (:func:`search`): the objective is folded into the network as its only output
(``c . (W_L h + b_L) = (c W_L) h + c b_L``), the rows become a
:class:`~emlpress.bounds.domain.Domain` (box, ``A_ub``/``A_eq``, l1 ball; an empty one is
refused with its checked certificate: INFEASIBLE), the starting bounds of every layer are
:func:`emlpress.bounds.lp`'s over the domain, those of the last hidden layer tightened
within the first incumbent's level set (:func:`level_set_bounds`), and only the objective's
side is searched (``bounds.bab``'s ``PhaseSearch`` over ReLU phases on rigorous LPs, or
``InputSearch`` over the input box for at most ``bab.INPUT_DIMS`` inputs, as
``split="auto"`` picks): best first, every node value certified from its duals, infeasible
nodes dropped on a checked Farkas ray, incumbents from
:func:`emlpress.milp.incumbent.start_point` (``solve(start="auto")``: attacks, the relaxation
completed, local search over activation regions, verified on the model's own rows; skipped
on a box for models of at most ``incumbent.SMALL_MODEL`` binaries, whose optima the search's
samples find at once), seeded samples of the domain, projected-gradient attacks and every
node LP's optimum, each a float64 forward pass at a point of the domain. It stops when the
incumbent is within the MIP gaps asked for of the certified bound, or at the time limit with
the best verified incumbent and the certified bound (status ``TIME_LIMIT``).

**Soundness**: the certified bound covers the folded network's float64 forward pass (the
search widens by ``forward_rounding``; on level-set bounds it is at least the incumbent's
value, which every point outside the level set is below), and this module widens it further
by the rounding of the fold and of ``c . y`` against the original network's forward pass,
the value :func:`~emlpress.milp.solve` verifies. The incumbent is returned as values of every
column (the network's columns by a forward pass, the ball's ``t`` as ``|x - c|``), verified
against the network as HiGHS' answers are.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import highspy
import numpy as np

from emlpress import _highs, kernels
from emlpress.bounds import bab as _bab
from emlpress.bounds.domain import Domain, EmptyDomainError
from emlpress.bounds.linear import crown as _crown
from emlpress.bounds.relaxation import BoundError
from emlpress.bounds.relaxation import lp as _lp
from emlpress.bounds.rounding import _down, _up, forward_rounding, gamma_slack
from emlpress.bounds.witnesses import attack
from emlpress.milp.handle import registered_handles
from emlpress.network import Network

__all__ = ["Form", "recognise", "search", "solve", "SOLVERS", "ATTACK_STARTS"]

#: solve()'s ``solver`` option: "auto" (this search where the model has its form, else
#: HiGHS), "bab" (the same, said explicitly), "highs" (HiGHS always)
SOLVERS = ("auto", "bab", "highs")
#: attack starts on the objective before the search (the best samples of the domain)
ATTACK_STARTS = 8
#: seeded samples of the domain for the first incumbent (on a constrained domain in at
#: most SAMPLE_DIMS inputs; beyond, the attacks start from the domain's own point)
N_SAMPLES = 2048
SAMPLE_DIMS = 64
#: starting bounds of every layer: bounds.lp's where hidden units times inputs is at most
#: this, else CROWN's. MNIST 784-100-100-10 on an l1 ball of radius 5, 60 s, loaded cores:
#: the LP start took 38 s (bound 4.83 after 13 nodes, and past the limit when the load
#: grew), the CROWN start 0.1 s (bound 10.39 after 141 nodes); incumbent -13.0 either way
LP_INIT_WORK = 20_000
#: the phase search's branching rule (bab.RULES)
RULE = "babsr"
#: rounds of bound tightening within the incumbent's level set before the phase search
#: (:func:`level_set_bounds`; 0: none), only where the LP start runs (LP_INIT_WORK), of the
#: last LEVEL_SET_LAYERS hidden layers (the layers before gained little for twice the LPs:
#: benches/README.md)
LEVEL_SET_ROUNDS = 2
LEVEL_SET_LAYERS = 1
#: level_set_bounds bounds only the units whose relaxation is slack at the optimum of the
#: objective over it (half the LPs, the same node counts on the regressors and digits)
LEVEL_SET_VIOLATED = True


@dataclass
class Form:
    """A model :func:`search` can solve: ``net`` the network with the objective folded in as
    its one output (``objective = net(x) + offset`` up to ``slack``), ``domain`` its inputs'
    domain (``None``: the box ``lo``/``hi``), ``maximize`` the sense."""

    handle: object
    net: Network
    lo: np.ndarray
    hi: np.ndarray
    domain: Domain | None
    maximize: bool
    offset: float
    coef: np.ndarray  # the objective's coefficients on the network's outputs, (n_out,)
    l1_cols: np.ndarray | None  # the ball's t columns, by input (or None)
    free_cols: np.ndarray  # columns nothing touches (set to a value of their bounds)
    n_cols: int


def _fold(net: Network, c: np.ndarray) -> Network:
    """The network whose only output is ``c . net(x)`` (exact arithmetic); one output with
    coefficient 1 is that output itself, exactly."""
    W, b = net.weights[-1], net.biases[-1]
    nz = np.flatnonzero(c)
    if nz.size == 1 and c[nz[0]] == 1.0:
        Wl, bl = W[nz], b[nz]
    else:
        Wl, bl = (c @ W)[None, :], np.array([c @ b])
    return Network(list(net.weights[:-1]) + [Wl], list(net.biases[:-1]) + [bl])


def _fold_slack(net: Network, c: np.ndarray, lo, hi, upper) -> float:
    """How far ``c . y`` in float64 (``y`` the original network's float64 forward pass) can
    be from the exact ``c . net(x)``: the original output layer's forward rounding weighted by
    ``|c|``, plus the rounding of the fold (``c W`` and ``c b``, the folded net's own forward
    rounding covering its evaluation) and of the dot product ``c . y``."""
    nz = np.flatnonzero(c)
    if nz.size == 1 and c[nz[0]] == 1.0:
        return 0.0
    fr = forward_rounding(net, lo, hi, upper)[-1]
    ymag = np.maximum(np.abs(upper[-1]), 0.0)  # |y| <= max(|lower|, |upper|) below
    W, b = net.weights[-1], net.biases[-1]
    hmag = np.maximum(upper[-2], 0.0) if len(upper) > 1 else np.maximum(np.abs(lo), np.abs(hi))
    ac = np.abs(c)
    fold = gamma_slack(c.size) * (ac @ (np.abs(W) @ hmag + np.abs(b)))
    dot = gamma_slack(c.size) * (ac @ ymag)
    return float((ac @ fr + fold + dot) * (1.0 + 1e-6))


def recognise(h) -> tuple[Form | None, str]:
    """(the :class:`Form` of ``h``, "") when :func:`search` can solve it, else (None, why)."""
    from emlpress.milp.network import NetworkHandle
    from emlpress.milp.repair import model_arrays

    handles = registered_handles(h)
    if len(handles) != 1 or not isinstance(handles[0], NetworkHandle):
        return None, f"{len(handles)} embedded models (the search takes one network)"
    hd = handles[0]
    if getattr(hd, "formulation", "bigm") != "bigm":
        return None, f"the {hd.formulation!r} formulation (the search reads big-M encodings)"
    M = model_arrays(h)
    n = M.col_lo.size
    inputs = np.asarray(hd.input_cols, np.int64)
    if np.unique(inputs).size != inputs.size:
        return None, "an input column used twice"
    internal = np.concatenate([np.zeros(0, np.int64)] + [
        np.asarray(a, np.int64)[np.asarray(a) >= 0]
        for a in list(hd.layer_cols) + list(hd.binary_cols) + list(hd.pre_cols)])
    kind = np.zeros(n, np.int8)  # 0 other, 1 input, 2 encoding
    kind[inputs], kind[internal] = 1, 2
    if np.any(M.integer & (kind != 2)):
        return None, "integer columns outside the network's binaries"
    binaries = np.concatenate([np.zeros(0, np.int64)] + [
        np.asarray(a, np.int64)[np.asarray(a) >= 0] for a in hd.binary_cols])
    if np.any(M.col_lo[binaries] > 0) or np.any(M.col_hi[binaries] < 1):
        return None, "a binary of the network is fixed"
    why = _encoding_bounds_changed(hd, M)
    if why:
        return None, why
    A = M.A.tocsr()
    Ac = A.tocsc()
    touches_int = np.asarray((abs(A[:, internal]) > 0).sum(1)).ravel() > 0 if internal.size else np.zeros(A.shape[0], bool)
    if int(touches_int.sum()) != hd.n_constraints:
        return None, "rows over the network's outputs or hidden units besides its encoding"
    user = np.flatnonzero(~touches_int)
    other = np.flatnonzero(kind == 0)
    cost = M.cost
    if np.any(cost[(kind == 1) | ((kind == 2) & ~np.isin(np.arange(n), hd.output_cols))] != 0):
        return None, "an objective on inputs or hidden units (only outputs are taken)"
    if np.any(cost[other] != 0):
        return None, "an objective on columns outside the network"
    lo, hi = M.col_lo[inputs].copy(), M.col_hi[inputs].copy()
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        return None, "an input without finite bounds"
    # columns outside the network: the ball's t, or untouched ones
    used = np.diff(Ac.indptr) > 0
    free_cols = other[~used[other]]
    tcols = other[used[other]]
    l1, l1_cols, tie_rows = None, None, np.zeros(0, np.int64)
    if tcols.size:
        got = _l1_ball(A, M, user, inputs, tcols)
        if isinstance(got, str):
            return None, got
        l1, l1_cols, tie_rows = got
    lin = np.setdiff1d(user, tie_rows)
    A_ub, b_ub, A_eq, b_eq = [], [], [], []
    for r in lin:
        row = A.getrow(r)
        cols = row.indices
        if np.any(kind[cols] != 1):
            return None, f"row {r} involves columns outside the network's inputs"
        a = np.zeros(inputs.size)
        pos = {int(c): q for q, c in enumerate(inputs)}
        for c, v in zip(cols, row.data):
            a[pos[int(c)]] += v
        rl, ru = M.row_lo[r], M.row_hi[r]
        if rl == ru:
            A_eq.append(a)
            b_eq.append(rl)
            continue
        if np.isfinite(ru):
            A_ub.append(a)
            b_ub.append(ru)
        if np.isfinite(rl):
            A_ub.append(-a)
            b_ub.append(-rl)
    # the encoding's columns may carry bounds (bigm's own, or tighter ones of a whole-model
    # tightening); they must hold for every value the network takes on the domain
    kw = dict(A_ub=np.array(A_ub) if A_ub else None, b_ub=np.array(b_ub) if b_ub else None,
              A_eq=np.array(A_eq) if A_eq else None, b_eq=np.array(b_eq) if b_eq else None,
              l1=l1)
    try:
        domain = Domain(lo, hi, **kw) if any(v is not None for v in kw.values()) else None
    except EmptyDomainError as e:
        return None, e  # the caller answers INFEASIBLE with this certificate
    net = hd.net
    c = cost[np.asarray(hd.output_cols, np.int64)]
    if np.any(np.asarray(hd.output_cols) < 0):
        return None, "an output without a column"
    if not np.any(c):
        return None, "no objective on the outputs"
    maximize = h.getObjectiveSense()[1].name == "kMaximize"
    form = Form(hd, _fold(net, c), lo, hi, domain, maximize, float(M.offset), c, l1_cols,
                free_cols, n)
    return form, ""


def _encoding_bounds_changed(hd, M) -> str:
    """What, if anything, bounds the encoding's columns tighter than :func:`add_network`
    did (from the handle's bounds): a user's constraint on an output or a hidden unit, or a
    tightening over the whole model, which the search would not see; "" when nothing."""
    b, L = hd.bounds, len(hd.layer_cols)
    for l in range(L):
        lo_, hi_ = np.asarray(b.lower[l], float), np.asarray(b.upper[l], float)
        a = np.asarray(hd.layer_cols[l])
        m = a >= 0
        want_lo = lo_ if l == L - 1 else np.maximum(lo_, 0.0)
        if np.any(M.col_lo[a[m]] > want_lo[m]) or np.any(M.col_hi[a[m]] < hi_[m]):
            return (f"bounds on the columns of layer {l} of network {hd.name!r} tighter than "
                    "its encoding's (a constraint on its units)")
        if l < L - 1:
            z = np.asarray(hd.pre_cols[l])
            m = z >= 0
            if np.any(M.col_lo[z[m]] > lo_[m]) or np.any(M.col_hi[z[m]] < hi_[m]):
                return (f"bounds on the pre-activation columns of layer {l} of network "
                        f"{hd.name!r} tighter than its encoding's")
    return ""


def _l1_ball(A, M, user, inputs, tcols):
    """(l1=(center, eps), the t column of each input, the ball's rows) when the columns
    ``tcols`` outside the network write an l1 ball over every input as
    ``t_i >= +-(x_i - c_i)``, ``sum t <= eps``; else a string saying what they are."""
    n_in = inputs.size
    if tcols.size != n_in:
        return f"{tcols.size} columns outside the network (not an l1 ball over the {n_in} inputs)"
    tpos = {int(c): q for q, c in enumerate(tcols)}
    xpos = {int(c): q for q, c in enumerate(inputs)}
    t_of_x = np.full(n_in, -1)
    center = np.full(n_in, np.nan)
    seen_sign = np.zeros((n_in, 2), bool)
    budget, rows = None, []
    for r in user:
        row = A.getrow(r)
        cols, vals = row.indices, row.data
        ts = [c for c in cols if int(c) in tpos]
        if not ts:
            continue
        rl, ru = M.row_lo[r], M.row_hi[r]
        if len(ts) == len(cols) and len(cols) == n_in:  # sum_i a t_i <= eps
            if not (np.all(vals == vals[0]) and vals[0] > 0 and np.isfinite(ru) and rl <= 0):
                return f"row {r} over the t columns is not sum t <= eps"
            if budget is not None:
                return "two budget rows over the t columns"
            budget = ru / vals[0]
            rows.append(r)
            continue
        if len(cols) != 2 or len(ts) != 1:
            return f"row {r} mixes auxiliary columns otherwise than t_i >= |x_i - c_i|"
        tc = int(ts[0])
        xc = int(cols[0] if int(cols[1]) == tc else cols[1])
        if xc not in xpos:
            return f"row {r} ties an auxiliary column to a column that is not an input"
        at = float(vals[list(cols).index(tc)])
        ax = float(vals[list(cols).index(xc)])
        # normalise to t + s x >= k (s = +-1)
        if abs(abs(ax) - abs(at)) > 0:
            return f"row {r}: t and x with coefficients of different size"
        if at > 0 and np.isfinite(rl) and not np.isfinite(ru):
            s, k = ax / at, rl / at
        elif at < 0 and np.isfinite(ru) and not np.isfinite(rl):
            s, k = ax / at, ru / at
        else:
            return f"row {r} is not of the form t >= +-(x - c)"
        q, tq = xpos[xc], tpos[tc]
        if t_of_x[q] not in (-1, tq):
            return f"input {q} tied to two auxiliary columns"
        t_of_x[q] = tq
        ci = -k if s < 0 else k  # t - x >= -c, t + x >= c
        if not np.isnan(center[q]) and center[q] != ci:
            return f"input {q}: two different centres in its l1 rows"
        center[q] = ci
        seen_sign[q, int(s > 0)] = True
        rows.append(r)
    if budget is None or not seen_sign.all() or np.any(t_of_x < 0):
        return "auxiliary columns that do not write a full l1 ball"
    tc = tcols[t_of_x]
    if np.any(M.col_lo[tc] > 0) or np.any(M.col_hi[tc] < budget):
        return "the l1 ball's t columns carry bounds that cut the ball"
    if np.any(M.cost[tc] != 0):
        return "an objective on the l1 ball's t columns"
    return (center, float(budget)), tc, np.asarray(rows, np.int64)


@dataclass
class Result:
    """What :func:`search` found: ``status`` (OPTIMAL: within the gaps; TIME_LIMIT: a time
    or node limit stopped it; FEASIBLE: it ended short of the gaps), ``objective`` of the
    incumbent ``x`` (shape ``(n_in,)``; the original network's forward pass, ``c . y +
    offset``; nan without one), ``bound`` the certified bound of the objective, ``nodes``,
    ``seconds``."""

    status: str
    objective: float
    bound: float
    x: np.ndarray | None
    nodes: int
    seconds: float


def search(form: Form, time_limit: float | None = None, mip_gap: float = 1e-4,
           mip_abs_gap: float = 1e-6, split: str = "auto", node_limit: int | None = None,
           x0: np.ndarray | None = None) -> Result:
    """Maximise or minimise the objective of ``form`` (module docstring); certified.
    ``x0``: input points ``(k, n_in)`` offered as incumbents before anything else (the start
    of :func:`emlpress.milp.incumbent.start_point`), admitted into the domain as every
    witness is."""
    t0 = time.perf_counter()
    deadline = math.inf if time_limit is None else t0 + float(time_limit)
    net, d, lo, hi = form.net, form.domain, form.lo, form.hi
    if d is not None:
        lo, hi = np.asarray(d.box_lo, float), np.asarray(d.box_hi, float)
    side = "max" if form.maximize else "min"
    sg = 1.0 if form.maximize else -1.0
    orig, c, off = form.handle.net, form.coef, form.offset
    L = net.n_layers - 1

    lp_start = net.n_neurons * net.n_in <= LP_INIT_WORK
    if lp_start:
        init = _lp(net, lo, hi) if d is None else _lp(net, domain=d)
    else:
        init = _crown(net, lo, hi) if d is None else _crown(net, domain=d)
    lower = [np.array(a, float) for a in init.lower]
    upper = [np.array(a, float) for a in init.upper]
    oupper = _lp_free_upper(orig, lo, hi, upper)
    slack = _fold_slack(orig, c, lo, hi, oupper)

    best = {"v": -math.inf, "x": None}  # sg * the folded output at the incumbent

    def objective(X: np.ndarray) -> np.ndarray:  # as solve() verifies it: c . y + offset
        return orig.forward(X) @ c + off

    def offer(X: np.ndarray) -> None:
        X = np.clip(X, form.lo, form.hi)
        if d is not None:
            X = d.admit(X)
        if not len(X):
            return
        v = sg * net.forward(X)[:, 0]
        j = int(np.argmax(v))
        if v[j] > best["v"]:
            best["v"], best["x"] = float(v[j]), X[j].copy()

    if x0 is not None:  # the start's point: the nodes below it are pruned from the first
        offer(np.atleast_2d(np.asarray(x0, float)))
    # first incumbents: samples of the domain, then attacks from the best of them
    if d is None or len(lo) <= SAMPLE_DIMS:
        P = _bab._start_points(lo, hi, d, N_SAMPLES)
        P = np.clip(P, lo, hi) if d is None else d.admit(P)
    else:  # hit-and-run in hundreds of dimensions costs seconds: the attacks do better
        P = np.asarray(d.point, float)[None, :]
    if len(P):
        v = sg * net.forward(P)[:, 0]
        starts = P[np.argsort(-v)[:ATTACK_STARTS]]
        offer(P[np.argsort(-v)[:1]])
        _, Xa = attack(net, lo, hi, L, np.zeros(len(starts), int), np.full(len(starts), sg),
                       starts, domain=d)
        offer(Xa)

    def tol(z: float) -> float:  # the search stops within 0.9 of the gap: the rest for
        return 0.9 * _tolerance(z + off, mip_gap, mip_abs_gap)  # the roundings after it

    stats = dict(nodes=0, lp_boxes=0, lp_failures=0, uncertified_infeasible=0, witness=0,
                 proved=0, exact=0, unresolved=0, limit=0)

    def witness_z(x):  # the search's witness: the best folded output (+-inf while none)
        if x is not None:
            offer(x[None, :])
        return sg * best["v"]

    if split == "auto":
        split = "input" if len(lo) <= _bab.INPUT_DIMS else "relu"
    fwd = forward_rounding(net, lo, hi, upper)  # over the whole domain
    start = float(upper[L][0] if side == "max" else lower[L][0])
    cut = None  # the incumbent's folded output where the level set was taken
    if split == "relu" and lp_start and LEVEL_SET_ROUNDS and best["x"] is not None and L > 0:
        cut = sg * best["v"]
        # out >= value (max) holds at every point whose float64 output is >= cut: a point
        # outside the level set has its exact output below value and its float64 output
        # (within fwd of it) below cut, so max(cut, the search's bound) bounds them all.
        # The incumbent lies in the level set: its relaxation is never empty.
        value = _down(cut - fwd[L][0]) if form.maximize else _up(cut + fwd[L][0])
        lower, upper, lps = level_set_bounds(net, lo, hi, lower, upper, d, form.maximize,
                                             value, deadline=deadline)
        stats["level_set_lps"] = lps
    if split == "relu":
        store = kernels.LpRelaxation(lo, hi, True)
        w = _bab.PhaseSearch(net, lo, hi, store, RULE)
        if d is not None:
            w.add_block(store.add_domain(**d.rows()))
        for k in range(1, L + 1):
            w.add_block(store.add_layer(net._core, k - 1, lower[k - 1], upper[k - 1]))
        w.set_targets(L, store.pre_activation(net._core, L), fwd[L])
    else:
        w = _bab.InputSearch(net, lo, hi, lower, upper, domain=d)
        w.set_targets(L, fwd[L])
    w.gap = tol
    v = w.side(0, side, start, False, witness_z, deadline, node_limit, stats, hidden=False)
    if cut is not None:  # the level set's outside is below cut (above it, minimising)
        v = max(v, cut) if form.maximize else min(v, cut)
    # the certified bound of the objective as solve() verifies it: widened by the fold
    bound = _up(_up(v + off) + slack) if side == "max" else _down(_down(v + off) - slack)
    seconds = time.perf_counter() - t0
    if best["x"] is None:  # no point of the domain met exactly (equality rows)
        timed_out = time.perf_counter() >= deadline or (
            node_limit is not None and stats["nodes"] >= node_limit)
        return Result("TIME_LIMIT" if timed_out else "FEASIBLE", math.nan, bound, None,
                      stats["nodes"], seconds)
    obj = float(objective(best["x"][None])[0])
    if sg * (obj - bound) > ROUNDING_GAP * max(1.0, abs(obj)):  # a bug of this module
        raise BoundError(f"the certified bound {bound!r} excludes the objective {obj!r} the "
                         f"network reaches at an input of the domain: please report")
    if abs(bound - obj) <= _tolerance(obj, mip_gap, mip_abs_gap):
        status = "OPTIMAL"
    elif time.perf_counter() >= deadline or (node_limit is not None and stats["nodes"] >= node_limit):
        status = "TIME_LIMIT"
    else:  # the search ended short of the gap (a node LP HiGHS failed on)
        status = "FEASIBLE"
    return Result(status, obj, bound, best["x"], stats["nodes"], seconds)


def level_set_bounds(net: Network, lo, hi, lower, upper, domain: Domain | None, maximize: bool,
                     value: float, rounds: int | None = None, layers: int | None = None,
                     violated: bool | None = None, deadline: float = math.inf):
    """Bounds of the unstable hidden units of the one-output ``net`` over its level set
    ``{x in the domain: out(x) >= value}`` (``maximize``; ``<= value`` otherwise), ``out`` the
    exact (real arithmetic) output: per unit two LPs (min and max of its pre-activation) over
    the triangle relaxation built on ``lower``/``upper`` (lists per layer, ``lo``/``hi`` the
    domain's box) with the row ``out >= value`` added, each value certified from its duals
    (:func:`_certified`) and widened by a float64 forward pass' rounding. ``layers``: the
    last so many hidden layers are tightened (default ``LEVEL_SET_LAYERS``); ``rounds``
    (default ``LEVEL_SET_ROUNDS``): a round is rebuilt on the last one's bounds while one
    shrank the units' total width by more than ``MIN_LEVEL_GAIN``; with ``violated`` (default
    ``LEVEL_SET_VIOLATED``) only the units whose triangle is slack at the relaxation's optimum
    of the objective are bounded (``a > max(z, 0)`` there: the rest do not hold the bound
    up). Returns (lower, upper, LPs solved): the given bounds intersected with the new ones,
    the output layer as given.

    Why: once an incumbent is known only points at least as good matter, and over them the
    units' bounds (the big-Ms of every node LP) are tighter, some units stable. The bounds
    hold on the level set only: a search on them bounds the objective there, and every point
    outside it is worse than ``value`` (the caller's bound is the larger of the two)."""
    rounds = LEVEL_SET_ROUNDS if rounds is None else rounds
    layers = LEVEL_SET_LAYERS if layers is None else layers
    violated = LEVEL_SET_VIOLATED if violated is None else violated
    L = net.n_layers - 1
    lower = [np.array(a, float) for a in lower]
    upper = [np.array(a, float) for a in upper]
    fwd = forward_rounding(net, lo, hi, upper)
    lps = 0
    for _ in range(rounds):
        store = kernels.LpRelaxation(lo, hi, False)
        h = _highs.highs()
        h.setOptionValue("presolve", "off")  # the per-unit LPs are warm-started in turn
        h.setOptionValue("primal_feasibility_tolerance", _bab.LP_TOL)
        h.setOptionValue("dual_feasibility_tolerance", _bab.LP_TOL)
        n = len(lo)
        h.addCols(n, np.zeros(n), lo, hi, 0, _highs.EMPTY_I, _highs.EMPTY_I, _highs.EMPTY_F)
        blocks = [store.add_domain(**domain.rows())] if domain is not None else []
        units = []
        for k in range(L):
            blocks.append(store.add_layer(net._core, k, lower[k], upper[k]))
            blk = blocks[-1]
            if k >= L - layers:  # an unstable unit's columns: a (its output), z (its input)
                cols = np.asarray(blk.cols)
                units += [(k, int(i), int(cols[i]) + 1)
                          for i in np.flatnonzero((lower[k] < 0) & (upper[k] > 0))]
        if not units:
            break
        for blk in blocks:
            _highs.add_block(h, blk, integral=False)
        # every column's magnitude bound (for the rounding of the level row's fold)
        mag = np.concatenate([np.maximum(np.abs(lo), np.abs(hi))] + [
            np.maximum(np.abs(b.col_lower), np.abs(b.col_upper)) for b in blocks])
        aff = store.pre_activation(net._core, L)
        w = np.asarray(aff.A, float)[0]
        nz = np.flatnonzero(w)
        ref, w = np.asarray(aff.ref, np.int32)[nz], w[nz]
        c0, e = float(aff.c[0]), float(aff.err[0])
        # exact out is within e of w.v + c0: out >= value implies w.v >= value - c0 - e
        if maximize:
            row = (_down(_down(value - c0) - e), math.inf)
        else:
            row = (-math.inf, _up(_up(value - c0) + e))
        h.addRow(row[0], row[1], ref.size, ref, w)
        level = (ref, w, row, mag[ref])
        if violated:  # the units whose triangle is slack at the objective's optimum
            h.changeColsCost(ref.size, ref, -w if maximize else w)
            h.run()
            if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
                x = np.asarray(h.getSolution().col_value)
                units = [(k, i, z) for k, i, z in units
                         if x[z - 1] - max(x[z], 0.0) > 1e-6 * (upper[k][i] - lower[k][i])]
            h.changeColsCost(ref.size, ref, np.zeros(ref.size))
            if not units:
                break
        before = sum(upper[k][i] - lower[k][i] for k, i, _ in units)
        for k, i, z in units:
            if time.perf_counter() > deadline:
                break
            for sgn in (1.0, -1.0):  # min z, then min -z
                h.changeColCost(z, sgn)
                h.run()
                if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                    h.clearSolver()  # a warm start can come back Unknown: solve from scratch
                    h.run()
                sol = h.getSolution()
                lps += 1
                if h.getModelStatus() != highspy.HighsModelStatus.kOptimal or not sol.dual_valid:
                    continue  # the bound stays as it was
                b = _certified(store, z, sgn, np.asarray(sol.row_dual, float), level)
                if not math.isfinite(b):
                    continue
                if sgn > 0:
                    lower[k][i] = max(lower[k][i], _down(b - fwd[k][i]))
                else:
                    upper[k][i] = min(upper[k][i], _up(-b + fwd[k][i]))
            h.changeColCost(z, 0.0)
        after = sum(upper[k][i] - lower[k][i] for k, i, _ in units)
        if after > (1.0 - MIN_LEVEL_GAIN) * before or time.perf_counter() > deadline:
            break
    return lower, upper, lps


def _certified(store, z: int, sgn: float, y: np.ndarray, level) -> float:
    """A rigorous lower bound of ``min sgn v_z`` over ``store``'s rows plus the level row
    ``row[0] <= w . v[ref] <= row[1]`` (the last of ``y``, HiGHS' row duals): the row's
    multiplier t (taken of the sign its finite side allows, in either sign convention)
    moves into the cost, sgn e_z - t w, whose bound over the store's rows
    (``safe_bound``) plus t times the row's side bounds sgn v_z, less the rounding of
    t w (one product per entry, times the columns' magnitudes ``level[3]``)."""
    ref, w, row, mag = level
    m = store.n_rows
    best = -math.inf
    if np.any(ref == z):  # (a pre-activation column is never an input of the output layer)
        return best
    for s in (1.0, -1.0):
        t = s * float(y[m])
        t = max(t, 0.0) if math.isfinite(row[0]) else min(t, 0.0)
        idx = np.concatenate([[z], ref]).astype(np.int32)
        val = np.concatenate([[sgn], -t * w])
        b = store.safe_bound(idx, val, s * y[:m])
        if not math.isfinite(b):
            continue
        side = row[0] if t > 0 else (row[1] if t < 0 else 0.0)
        err = gamma_slack(2) * abs(t) * float(np.abs(w) @ mag)
        best = max(best, _down(_down(b + _down(t * side)) - _up(err * (1.0 + 1e-6))))
    return best


#: a round of level_set_bounds is followed by another when it shrank the total width of the
#: units it bounds by more than this fraction (10-16-16-1: 2%, no fewer nodes for its LPs;
#: 5-12-12-12-1: 17-44%, 1.6x fewer nodes with the second round)
MIN_LEVEL_GAIN = 0.05


#: a certified bound carries the float64 rounding of the forward pass (bab.GAP_TOL): a gap
#: asked for below this, relative to max(1, |objective|), is taken as this
ROUNDING_GAP = _bab.GAP_TOL


def _tolerance(obj: float, mip_gap: float, mip_abs_gap: float) -> float:
    """How far the certified bound may be from the objective ``obj`` for OPTIMAL."""
    return max(mip_abs_gap, mip_gap * abs(obj), ROUNDING_GAP * max(1.0, abs(obj)))


def _lp_free_upper(orig: Network, lo, hi, upper_folded) -> list:
    """Upper bounds of the original network's layers for the fold's rounding slack: the
    hidden layers' from the search's LP bounds, the output layer's magnitude by CROWN."""
    L, U = kernels.crown(orig._core, lo, hi)
    hidden = [np.asarray(u, float) for u in upper_folded[:-1]]
    mag = np.maximum(np.abs(np.asarray(L[-1], float)), np.abs(np.asarray(U[-1], float)))
    return hidden + [mag]


def columns(form: Form, x: np.ndarray) -> np.ndarray:
    """Values of every column of the model at input ``x``: the network's encoding by a
    forward pass (``NetworkHandle.start_values``), the l1 ball's ``t`` as ``|x - c|``, any
    untouched column at the value of its bounds nearest 0."""
    from emlpress.milp.repair import model_arrays

    M = model_arrays(form.handle._h)
    v = np.clip(np.zeros(form.n_cols), M.col_lo, M.col_hi)
    cols, vals = form.handle.start_values(x)
    v[cols] = vals
    if form.l1_cols is not None:
        v[form.l1_cols] = np.abs(x - form.domain.center)
    return v


def solve(h, solver: str, time_limit, mip_gap: float, mip_abs_gap: float, start=None):
    """The :class:`~emlpress.milp.Solution` of ``h`` by :func:`search` when ``solver`` is
    "bab" or "auto" and ``h`` has the form (:func:`recognise`); ``None`` for HiGHS (with
    ``solver="bab"`` on another form: a ``ValueError`` saying why).

    ``start`` ("auto" or None, as :func:`~emlpress.milp.solve` takes it): the verified point
    of :func:`emlpress.milp.incumbent.start_point` (its budget, a share of ``time_limit``,
    comes out of the search's) seeds the search, and is the answer where the search ends
    with no point as good; ``Solution.start``/``start_objective``/``start_used`` say so."""
    from emlpress.milp import incumbent as _incumbent
    from emlpress.milp.solution import Solution

    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if solver == "highs":
        return None
    t0 = time.perf_counter()
    form, why = recognise(h)
    hd = registered_handles(h)
    maximize = h.getObjectiveSense()[1].name == "kMaximize"
    if isinstance(why, EmptyDomainError):  # the rows admit no input: certified
        return Solution(status="INFEASIBLE", objective=math.nan,
                        best_bound=-math.inf if maximize else math.inf, gap=math.inf, nodes=0,
                        encode_s=float(sum(x.encode_s for x in hd)),
                        solve_s=time.perf_counter() - t0, has_solution=False, col_values=None,
                        solver="emlpress-bab", certificate=why)
    if form is None:
        if solver == "bab":
            raise ValueError(f"solver='bab': the model is not of the form the branch-and-bound "
                             f"takes ({why}); use solver='auto' or 'highs'")
        return None
    if solver == "auto" and form.domain is not None and form.domain.A_eq is not None:
        # a witness counts only once it meets the rows exactly (Domain.holds): on equality
        # rows the search's points seldom do, and it would end without an incumbent
        return None
    # a box: the search's own samples and attacks find small models' optima at once (and the
    # start would cost them its second); rows: the start's LP completion finds better points
    small = _incumbent.SMALL_MODEL if form.domain is None else -1
    inc = _incumbent.start_point(h, start, time_limit, small_model=small)  # None: off, or small
    x0 = form.handle.values_at(inc.values)[0] if inc else None
    left = None if time_limit is None else max(0.0, float(time_limit) - (time.perf_counter() - t0))
    r = search(form, left, mip_gap, mip_abs_gap, x0=x0)
    sg = 1.0 if form.maximize else -1.0
    values = None  # every column's value at the answer
    if inc and (r.x is None or sg * (inc.objective - r.objective) > 0):
        # the start (verified on the model's own rows) beats what the search kept: the answer
        ok = abs(r.bound - inc.objective) <= _tolerance(inc.objective, mip_gap, mip_abs_gap)
        r.status = "OPTIMAL" if ok else ("TIME_LIMIT" if r.status == "TIME_LIMIT" else "FEASIBLE")
        r.objective, values = inc.objective, inc.values
    elif r.x is None and r.status != "TIME_LIMIT":
        if solver == "auto":  # searched to the end without a verified point: HiGHS answers
            return None
        r.status = "NUMERICAL"
    sol = Solution(status=r.status, objective=r.objective, best_bound=r.bound,
                   gap=math.inf, nodes=r.nodes, encode_s=float(sum(x.encode_s for x in hd)),
                   solve_s=0.0, has_solution=values is not None or r.x is not None,
                   col_values=None, solver="emlpress-bab")
    if inc is not None:  # as solve() fills them for HiGHS
        sol.start, sol.start_objective = inc.how, inc.objective
        sol.start_used = bool(inc) and sg * (r.objective - inc.objective) >= 0
    if sol.has_solution:
        v = columns(form, r.x) if values is None else values
        sol.col_values = v
        hd0 = form.handle
        x, y = hd0.values_at(v)
        diff, _ = hd0._check(x, y)
        sol.inputs[hd0.name], sol.outputs[hd0.name], sol.verify_diff[hd0.name] = x, y, diff
        from emlpress.milp.solution import _gap

        sol.gap = _gap(r.objective, r.bound)
    sol.solve_s = time.perf_counter() - t0
    return sol
