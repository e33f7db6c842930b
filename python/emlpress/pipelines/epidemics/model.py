"""The planning MILP of :mod:`emlpress.pipelines.epidemics` (:func:`plan`) and the search
through a network that starts it (:func:`surrogate_search`).

The MILP, per week ``w``: five NPI binaries, a one-hot choice among the 32 combinations they
make (linked row by row, so the week's ``beta`` is exactly ``sum_k beta_k c_wk``: no
relaxation of the product of effects), the model (a network by ``add_network``, an int8 one
by ``add_quantized_network``, or a tree by ``add_tree``) from the week's state and ``beta``
to the next state, whose output variables are the next week's inputs; the budget over the
horizon; the objective: the largest S after the last week. How each week's network is
bounded is ``BOUNDING``'s choice: on the previous week's output box (chained, optionally
losslessly compressed there), on what the schedules can feed it (reachable: the default of
the run), on the training box (single-box, the naive way), or on what the model built so far
lets the week's inputs reach (obbt: :func:`emlpress.milp.tighten` over the LP relaxation of
the previous weeks, the NPI rows and the budget spent so far, week by week, then over the
whole model).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import highspy
import numpy as np

from emlpress import _highs, _options
from emlpress import bounds as _bounds
from emlpress.compress import lossless
from emlpress.data import sir
from emlpress.milp import Solution, add_network, add_predictor, solve, tighten, tighten_tolerances
from emlpress.milp.handle import col_bounds
from emlpress.network import Network


class _Infeasible(Exception):
    """The LP relaxation of the model so far is infeasible (a checked Farkas certificate)."""

    def __init__(self, report):
        super().__init__(str(report))
        self.report = report


class NotApplicable(ValueError):
    """A bounding that cannot apply to this instance (single-box: a week's inputs leave the
    training box; obbt: a week's bounds beyond what HiGHS takes); the run records it as such,
    and only it."""


@dataclass
class Plan:
    """A solved planning MILP: ``schedule`` (combination index per week), ``npis`` (0/1 per
    week and NPI), the model's predicted trajectory, the true (simulated) one, and the
    solver's result."""

    status: str
    schedule: np.ndarray | None
    npis: np.ndarray | None
    predicted: np.ndarray | None  # (weeks + 1, 3)
    simulated: np.ndarray | None  # by the reference integrator
    cost: float | None
    solution: object
    handles: list = field(default_factory=list)
    message: str = ""
    #: per week: units removed by lossless compression (chained+lossless), or (reachable)
    #: units stable at every reachable input or box (no binary, inactive ones no variable)
    removed: list = field(default_factory=list)
    #: the start (networks): (schedule, the network's predicted S, whether the search was
    #: exhaustive, i.e. that S is the network's own optimum)
    search: tuple | None = None
    #: the "obbt" bounding: each week's :class:`~emlpress.milp.TightenReport` as it was added,
    #: then the whole model's
    tightening: list = field(default_factory=list)

    @property
    def predicted_s(self) -> float:
        return float(self.predicted[-1, 0]) if self.predicted is not None else float("nan")

    @property
    def simulated_s(self) -> float:
        return float(self.simulated[-1, 0]) if self.simulated is not None else float("nan")


def _add_model(h, model, inputs, name):
    return add_predictor(h, model, inputs, name=name)


#: how a network's weeks are bounded: "chained" (each week's box is the previous week's output
#: bounds: CROWN there), "chained+lossless" (and each week's network losslessly compressed on
#: its box, with LP bounds), "reachable" (each week's network bounded on what the schedules
#: within the budget can feed it: every input while they are at most ``REACH_MAX``, then
#: ``REACH_BOXES`` small boxes that cover them; see :class:`_Reach`), "single-box" (every
#: week bounded once on the training box [0,1]^3 x [0, 0.4], the week's inputs restricted
#: to it), "obbt" (each week's network bounded by LP on the box of its inputs that the LP
#: relaxation of the model so far certifies, then the whole model tightened by
#: :func:`emlpress.milp.tighten`: see :func:`plan`), "reachable+obbt" (the reachable bounds,
#: then the whole model tightened)
BOUNDING = ("chained", "chained+lossless", "reachable", "single-box", "obbt", "reachable+obbt")
#: the "obbt" bounding's rounds of :func:`emlpress.milp.tighten` over the whole model, once
#: every week is in (each week got one round over the weeks before it as it was added)
OBBT_ROUNDS = 3
#: the "obbt" bounding's time limit covers the tightening and the solve: the tightening stops
#: after this share of it (sound wherever it stops), the solve gets the rest
OBBT_SHARE = 0.5
TRAINING_BOX = (np.zeros(4), np.array([1.0, 1.0, 1.0, 0.4]))
#: the "reachable" bounding enumerates a week's inputs while they are at most this many
#: (the 10-week instance, budget 66.7: 5 weeks, 24^5 = 8.0 million inputs in the fifth)
REACH_MAX = 10_000_000
#: then it covers the week's states by boxes (k-d splits of the enumerated states, later of
#: the boxes' centres): REACH_BOXES for networks of up to 32 units, fewer for larger ones
#: (CROWN's cost grows with the units; at least 256)
REACH_BOXES = 4096


def _n_boxes(net) -> int:
    return max(256, min(REACH_BOXES, REACH_BOXES * 32 // max(1, net.n_neurons)))


def _kd_groups(C: np.ndarray, k: int) -> list:
    """Index groups of the rows of ``C``: every group split in two at the median of its widest
    coordinate, level by level, until there are at least ``k`` groups (or the groups are
    single rows)."""
    groups = [np.arange(C.shape[0])]
    while len(groups) < k and max(g.size for g in groups) > 1:
        nxt = []
        for g in groups:
            if g.size < 2:
                nxt.append(g)
                continue
            sub = C[g]
            d = int(np.argmax(sub.max(0) - sub.min(0)))
            half = g.size // 2
            part = np.argpartition(sub[:, d], half)
            nxt += [g[part[:half]], g[part[half:]]]
        groups = nxt
    return groups


class _Reach:
    """What the schedules within the budget can feed each week's network: every input, by
    forward passes of the network over every such prefix (a combination with the beta of a
    cheaper one gives the same states and is skipped), while they are at most ``REACH_MAX``;
    afterwards boxes that cover the states (``REACH_BOXES`` of them), each with the least
    spend of its states, propagated by CROWN one beta at a time. ``bounds()`` gives the
    week's bounds there (:func:`bounds.on_points`, :func:`bounds.on_boxes`)."""

    def __init__(self, instance: sir.Instance, net, reach_max: int | None = None):
        self.reach_max = REACH_MAX if reach_max is None else reach_max
        self.keep, self.beta, self.cost = sir.distinct_combinations(instance)
        self.budget = instance.budget
        self.net = net
        self.states, self.spent = instance.state[None, :], np.zeros(1)
        self._children()

    def _children(self) -> None:
        self.X = None
        if self.states is not None:
            p, c = sir.affordable(self.spent, self.cost, self.budget)
            if p.size <= self.reach_max:
                self.X = np.column_stack([self.states[p], self.beta[c]])
                self._p, self._c = p, c
                return
            self._boxes(self.states, self.states, self.spent)
            self.states = None
        p, c = sir.affordable(self.spent, self.cost, self.budget)
        self.LO = np.column_stack([self.slo[p], self.beta[c]])
        self.HI = np.column_stack([self.shi[p], self.beta[c]])
        self._p, self._c = p, c

    def _boxes(self, lo, hi, spent) -> None:
        """Cover the boxes [lo, hi] (rows) by REACH_BOXES hulls of groups of them."""
        groups = _kd_groups((lo + hi) / 2, _n_boxes(self.net))
        self.slo = np.array([lo[g].min(0) for g in groups])
        self.shi = np.array([hi[g].max(0) for g in groups])
        self.spent = np.array([spent[g].min() for g in groups])

    def bounds(self):
        if self.X is not None:
            return _bounds.on_points(self.net, self.X)
        return _bounds.on_boxes(self.net, self.LO, self.HI)

    def advance(self, b) -> None:
        """To the next week, from this week's bounds ``b`` (those of :meth:`bounds`)."""
        spent = self.spent[self._p] + self.cost[self._c]
        if self.X is not None:
            self.states, self.spent = self.net.forward(self.X), spent
        else:
            self._boxes(b.part_output[0], b.part_output[1], spent)
        self._children()


#: the beam of :func:`surrogate_search` (and the most prefixes a week may have for it to be an
#: enumeration) for networks of up to 32 units; fewer for larger ones (at least 20,000)
SEARCH_WIDTH = 200_000


def surrogate_search(instance: sir.Instance, net, width: int | None = None):
    """The best schedule for the network (largest predicted S after the last week): every
    schedule within the budget where no week has more than ``width`` prefixes (the network's
    own optimum, by enumeration); else a beam search that keeps, at each spend, the prefixes
    with the largest predicted S (``width`` in all; default SEARCH_WIDTH, scaled down for
    networks of more than 32 units), then a local search through the network
    (:func:`sir.local_search`). Returns (schedule, predicted S, exhaustive)."""
    if width is None:
        width = max(20_000, min(SEARCH_WIDTH, SEARCH_WIDTH * 32 // max(1, net.n_neurons)))
    keep, beta, cost = sir.distinct_combinations(instance)
    states, spent = instance.state[None, :], np.zeros(1)
    prefix = np.zeros((1, 0), np.int64)
    exhaustive = True
    for w in range(instance.weeks):
        p, c = sir.affordable(spent, cost, instance.budget)
        states = net.forward(np.column_stack([states[p], beta[c]]))
        spent, prefix = spent[p] + cost[c], np.column_stack([prefix[p], c])
        if states.shape[0] > width and w < instance.weeks - 1:  # the last week: every leaf
            exhaustive = False
            levels, inv = np.unique(np.round(spent, 9), return_inverse=True)
            per = max(1, width // levels.size)
            order = np.lexsort((-states[:, 0], inv))  # by spend, then by S, largest first
            rank = np.arange(order.size) - np.searchsorted(inv[order], inv[order])
            top = order[rank < per]
            states, spent, prefix = states[top], spent[top], prefix[top]
    k = int(np.argmax(states[:, 0]))
    sched, s = keep[prefix[k]], float(states[k, 0])
    if not exhaustive:
        sched, s, _ = sir.local_search(instance, sched, step=net.forward)
    return sched, s, exhaustive


def _add_week(h, model, inputs, name, bounding, cache):
    """One week's model; networks bounded as ``bounding`` says."""
    if not isinstance(model, Network) or bounding == "chained":
        return _add_model(h, model, inputs, name)
    if bounding == "single-box":
        lo, hi = TRAINING_BOX
        cols = np.array([v.index for v in inputs], np.int32)
        clo, chi = col_bounds(h, cols)
        nlo, nhi = np.maximum(clo, lo), np.minimum(chi, hi)
        if np.any(nlo > nhi):
            k = int(np.argmax(nlo > nhi))
            raise NotApplicable(f"{name}: input {k} ranges over [{clo[k]}, {chi[k]}], outside the "
                             f"training box [{lo[k]}, {hi[k]}]: single-box bounding cannot apply")
        h.changeColsBounds(4, cols, nlo, nhi)
        if "single" not in cache:
            cache["single"] = _bounds.crown(model, lo, hi)
        return add_network(h, model, inputs, bounds=cache["single"], name=name)
    cols = np.array([v.index for v in inputs], np.int32)
    if bounding == "obbt":  # LP bounds on the box the model so far certifies
        if cache.get("handles"):  # the previous week's outputs (this week's inputs): 6 LPs
            _tighten_week(h, cache, cache["handles"][-1], layers=[-1])
        clo, chi = col_bounds(h, cols)
        # LP bounds while the tightening's share of the time lasts, then CROWN
        left = cache["left"]()
        b = _bounds.lp(model, clo, chi) if left is None or left > 1e-2 else _bounds.crown(model, clo, chi)
        try:
            hd = add_network(h, model, inputs, bounds=b, name=name)
        except _highs.MagnitudeError as e:  # LP relaxations compound over deep weeks
            raise NotApplicable(
                f"{name}: bounds up to {max(float(np.max(np.abs(x))) for x in (*b.lower, *b.upper)):.3g} "
                f"on the inputs the LP relaxation of the weeks before it allows ({e}); the obbt "
                "bounding cannot apply: bound the early weeks on what they reach "
                "(reachable+obbt)") from None
        cache.setdefault("handles", []).append(hd)
        return hd
    if bounding in ("reachable", "reachable+obbt"):  # the columns in the hull of what is reachable, bounds there
        # bounds at points: a one-hot or budget row off by HiGHS' default tolerances (1e-6,
        # 1e-7) would move beta or the spend past the margins the points are widened by
        tighten_tolerances(h, 1e-9)
        reach = cache.setdefault("reach", _Reach(cache["instance"], model, cache.get("reach_max")))
        b = reach.bounds()
        if cache.setdefault("week", 0) < cache["instance"].weeks - 1:  # not after the last
            reach.advance(b)
        cache["week"] += 1
        clo, chi = col_bounds(h, cols)
        h.changeColsBounds(4, cols, np.maximum(clo, b.lo), np.minimum(chi, b.hi))
        cache.setdefault("removed", []).append(b.n_stable)
        hd = add_network(h, model, inputs, bounds=b, name=name)
        if bounding == "reachable+obbt" and b.parts is not None and np.any(b.parts[0] != b.parts[1]):
            # bounds on boxes (CROWN): tightened over the weeks so far, layer by layer
            cache.setdefault("boxed", []).append(hd)
            _tighten_week(h, cache, hd)
        return hd
    clo, chi = col_bounds(h, cols)
    small, rep = lossless(model, np.asarray(clo, float), np.asarray(chi, float), bounds="lp")
    cache.setdefault("removed", []).append(model.n_neurons - small.n_neurons)
    return add_network(h, small, inputs, bounds=rep.bounds, name=name)


def _tighten_week(h, cache, hd, layers=None) -> None:
    """One round of :func:`emlpress.milp.tighten` of the network ``hd`` (its ``layers``)
    over the model so far, within the tightening's share of the time limit (none once
    it is spent)."""
    left = cache["left"]()
    if left is not None and left <= 1e-2:
        return
    rep = tighten(h, time_limit=left, rounds=1, handles=[hd], layers=layers)
    cache.setdefault("tightened", []).append(rep)
    if rep.status == "INFEASIBLE":
        raise _Infeasible(rep)


def plan(instance: sir.Instance, model, time_limit: float | None = 60.0, mip_gap: float = 1e-4,
         constraints=None, simulate: bool = True, bounding: str = "chained",
         start: bool = True, reach_max: int | None = None) -> Plan:
    """Solve the planning MILP of ``instance`` with ``model`` (inputs S, I, R, beta; outputs
    the state a week later). ``constraints(h, weeks)``, if given, adds a user's rows
    (``weeks[w]`` holds the week's ``npis`` variables and ``state`` variables); an
    infeasible problem returns status ``INFEASIBLE`` and a message, never a plan.
    ``bounding``: one of ``BOUNDING`` (networks only). With ``start`` (networks only), HiGHS
    starts from the schedule of :func:`surrogate_search` (the network's own optimum where
    that search is exhaustive), its variables set by forward passes. ``reach_max``: the
    reachable bounding enumerates a week's inputs while at most this many (default
    ``REACH_MAX``), then covers them by boxes: fewer is faster, looser, as sound.

    The "obbt" bounding (networks) builds the model week by week: a row keeps the spend so
    far within the budget (implied by the budget row, as costs are >= 0; it lets the LP
    see it), each week's network is added with CROWN bounds on the box of its inputs that
    the LP relaxation of the model so far certifies (the previous week's outputs, tightened
    there) and tightened over that model (:func:`emlpress.milp.tighten`, one round), and the
    whole model, the user's rows included, is tightened once more (``OBBT_ROUNDS`` rounds)
    before the solve: no week is bounded on a box that earlier weeks' boxes compound.
    "reachable+obbt" takes the reachable bounds and tightens the weeks bounded on boxes (not
    on every reachable point, where they are exact) as they are added and at the end.
    ``time_limit`` then covers the tightening (at most ``OBBT_SHARE`` of it, counted from
    its first LP, after any reachable enumeration) and the solve (what is left of it, and at
    least ``1 - OBBT_SHARE`` of it);
    a relaxation the tightening finds infeasible (its Farkas certificate checked) gives
    status ``INFEASIBLE`` without a solve."""
    if bounding not in BOUNDING:
        raise ValueError(f"unknown bounding {bounding!r}: one of {BOUNDING}")
    t_start = time.perf_counter()
    time_limit = _options.seconds("time_limit", time_limit)
    obbt = bounding in ("obbt", "reachable+obbt") and isinstance(model, Network)

    def left():
        """Seconds left of the time limit (None: no limit), at least 1 ms."""
        if time_limit is None or not np.isfinite(time_limit):
            return None
        return max(1e-3, time_limit - (time.perf_counter() - t_start))

    def tightening_left():
        """Seconds left of the tightening's share, its clock started at its first call (after
        any enumeration of the reachable bounding), at least 1 ms; None: no limit."""
        if time_limit is None or not np.isfinite(time_limit):
            return None
        end = cache.setdefault("tightening_end", time.perf_counter() + OBBT_SHARE * time_limit)
        return max(1e-3, end - time.perf_counter())

    cache: dict = {"instance": instance, "reach_max": reach_max, "left": tightening_left}
    choices, beta, cost = sir.combinations(instance.npis, instance.beta0)
    n_c, n_npi = choices.shape
    h = _highs.highs()
    s0 = instance.state
    state = h.addVariables(3, lb=s0.tolist(), ub=s0.tolist())
    weeks, handles = [], []
    npi_cost = [c for _, c in instance.npis.values()]
    spend = []
    for w in range(instance.weeks):
        a = h.addVariables(n_npi, lb=0.0, ub=1.0, type=highspy.HighsVarType.kInteger)
        c = h.addVariables(n_c, lb=0.0, ub=1.0, type=highspy.HighsVarType.kInteger)
        b = h.addVariable(lb=float(beta.min()), ub=float(beta.max()))
        h.addConstr(sum(c[k] for k in range(n_c)) == 1)
        for j in range(n_npi):
            h.addConstr(a[j] - sum(c[k] for k in range(n_c) if choices[k, j]) == 0)
        h.addConstr(b - sum(float(beta[k]) * c[k] for k in range(n_c)) == 0)
        if obbt:  # the spend so far within the budget: the LP of the weeks so far sees it
            h.addConstr(sum(float(npi_cost[j]) * x[j] for x in [wk["npis"] for wk in weeks] + [a]
                            for j in range(n_npi)) <= float(instance.budget))
        inputs = [state[0], state[1], state[2], b]
        try:
            hd = _add_week(h, model, inputs, f"week{w}", bounding, cache)
        except _Infeasible as e:
            return _infeasible(handles, cache, e.report, t_start)
        handles.append(hd)
        weeks.append({"npis": a, "combination": c, "beta": b, "state_in": inputs[:3]})
        spend.append(sum(float(npi_cost[j]) * a[j] for j in range(n_npi)))
        out = hd.outputs
        state = [out[0], out[1], out[2]]
        weeks[-1]["state"] = state
    h.addConstr(sum(spend) <= float(instance.budget))
    if constraints is not None:
        constraints(h, weeks)
    h.setObjective(state[0], sense=highspy.ObjSense.kMaximize)
    reports = cache.setdefault("tightened", [])
    # reachable+obbt: the weeks bounded on points are exact there; the boxed ones are tightened
    todo = handles if bounding == "obbt" else cache.get("boxed", [])
    if obbt and todo and (time_limit is None or tightening_left() > 1e-2):
        reports.append(tighten(h, time_limit=tightening_left(), rounds=OBBT_ROUNDS, handles=todo))
        cache["removed"] = [hd.bounds.n_stable for hd in handles]
    if reports and reports[-1].status == "INFEASIBLE":
        return _infeasible(handles, cache, reports[-1], t_start)
    found = None
    if start and isinstance(model, Network):
        found = surrogate_search(instance, model)
        _set_start(h, weeks, handles, found[0], choices, beta, s0)
    # the solve gets what is left of the limit, and never less than the tightening's complement
    solve_limit = time_limit if not obbt or left() is None else max(left(), (1 - OBBT_SHARE) * time_limit)
    sol = solve(h, time_limit=solve_limit, mip_gap=mip_gap)
    if not sol.has_solution:
        msg = {"INFEASIBLE": "no schedule satisfies the budget and the constraints given"}.get(
            sol.status, f"no plan found ({sol.status})")
        return Plan(sol.status, None, None, None, None, None, sol, handles, msg,
                    removed=cache.get("removed", []), search=found, tightening=reports)
    x = np.asarray(sol.col_values)
    sched = np.array([int(np.argmax([x[v.index] for v in wk["combination"]])) for wk in weeks])
    npis = choices[sched]
    pred = [s0] + [np.array([x[v.index] for v in wk["state"]]) for wk in weeks]
    sim = sir.simulate(instance, sched, reference=True) if simulate else None
    return Plan(sol.status, sched, npis, np.array(pred), sim, float(cost[sched].sum()), sol, handles,
                removed=cache.get("removed", []), search=found, tightening=reports)


def _infeasible(handles, cache, report, t_start) -> Plan:
    """The plan of a model whose LP relaxation :func:`emlpress.milp.tighten` proved
    infeasible (``report``, its certificate checked): no solve, no plan."""
    sol = Solution("INFEASIBLE", float("nan"), -np.inf, float("inf"), 0,
                   sum(hd.encode_s for hd in handles), time.perf_counter() - t_start, False, None)
    return Plan("INFEASIBLE", None, None, None, None, None, sol, handles,
                "no schedule satisfies the budget and the constraints given (the LP relaxation "
                f"is infeasible: {report})", removed=cache.get("removed", []),
                tightening=cache.get("tightened", []))


def _set_start(h, weeks, handles, schedule, choices, beta, s0) -> None:
    """A MIP start: the schedule's NPI and combination variables, and each week's network
    variables by a forward pass from the state the previous week's network gives."""
    start = {}
    x = np.asarray(s0, float)
    for wk, hd, k in zip(weeks, handles, schedule):
        start.update({v.index: float(val) for v, val in zip(wk["npis"], choices[k])})
        start.update({v.index: float(j == k) for j, v in enumerate(wk["combination"])})
        start.update(zip(*(a.tolist() for a in hd.start_values(np.append(x, beta[k])))))
        x = np.array([start[int(c)] for c in hd.output_cols])  # the next week's input
    h.setSolution(len(start), np.fromiter(start, np.int32), np.fromiter(start.values(), float))

