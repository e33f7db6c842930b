"""emlpress.eml: the measure-learn-improve loop on toy integer problems whose optimum is known
by enumeration; its cuts as HiGHS rows against enumeration; bad oracles and budgets."""

import itertools
import math

import highspy
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emlpress import eml
from emlpress.eml.cuts import add_improvement, add_no_good

BOX = 6  # each variable in 0..BOX


def _points(n):
    return [tuple(p) for p in itertools.product(range(BOX + 1), repeat=n)]


class Toy:
    """minimize cost . x over x in {0..BOX}^n subject to the unknown q(x) >= t.

    The surrogate is optimistic by construction: q_hat(x) = min(upper, min over measured o of
    q(o) + lip * |x - o|_1), with lip a true Lipschitz constant of q, so every truly feasible
    point stays surrogate-feasible and a proof (the problem infeasible) is a true proof."""

    def __init__(self, cost, w, t, n):
        self.cost, self.w, self.t, self.n = np.asarray(cost, float), np.asarray(w, float), t, n
        self.lip = float(np.max(np.abs(self.w))) + 1.0  # q below has slope <= max|w| + 1
        self.upper = self.q(np.full(n, BOX)) + 1.0
        self.calls = 0

    def q(self, x):
        x = np.asarray(x, float)
        return float(self.w @ x + np.sin(x).sum())  # nonlinear, |dq/dx_i| <= |w_i| + 1

    def optimum(self):
        feas = [self.cost @ np.array(p) for p in _points(self.n) if self.q(p) >= self.t]
        return min(feas) if feas else None

    def predict(self, model, x):
        x = np.asarray(x, float)
        if not model:
            return self.upper
        return min(self.upper, min(v + self.lip * np.abs(x - np.array(o)).sum() for o, v in model))

    def problem(self, ctx):
        best = None
        for p in _points(self.n):
            c = float(self.cost @ np.array(p))
            if not ctx.allowed(p) or not ctx.improves(c):
                continue
            if self.predict(ctx.model, p) - ctx.margins.get("q", 0.0) < self.t:
                continue
            if best is None or c < best[1]:
                best = (p, c)
        if best is None:
            return eml.Proposal(None, status="INFEASIBLE")
        return eml.Proposal(best[0], best[1], predicted={"q": self.predict(ctx.model, best[0])})

    def oracle(self, x):
        self.calls += 1
        v = self.q(x)
        return {"feasible": v >= self.t, "q": v}

    @staticmethod
    def refit(model, train):
        return [(o.config, o.measurement.values["q"]) for o in train]


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 3), seed=st.integers(0, 2**31 - 1), frac=st.floats(0.1, 0.9))
def test_the_loop_reaches_the_enumerated_optimum_and_proves_it(n, seed, frac):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.5, 3.0, n)
    toy = Toy(rng.integers(1, 5, n), w, frac * float(w.sum() * BOX), n)
    r = eml.run_loop(toy.problem, toy.oracle, model=[], refit=toy.refit)
    opt = toy.optimum()
    assert r.proven, r.stop
    if opt is None:
        assert r.best is None and "no feasible answer" in r.stop
    else:
        assert r.best is not None and r.best.objective == opt
        assert toy.q(r.best.config) >= toy.t
    # every answer measured, and its label is the truth
    assert all(a.measured for a in r.answers)
    for a in r.answers:
        assert a.feasible == (toy.q(a.config) >= toy.t)
    assert toy.calls == r.oracle_calls == len(r.answers) == len(r.log) - 1
    # improvement cuts: each feasible answer strictly better than the one before
    feas = [a.objective for a in r.answers if a.feasible]
    assert feas == sorted(feas, reverse=True) and len(set(feas)) == len(feas)
    assert r.log[-1]["label"] == "no answer" and r.log[-1]["status"] == "INFEASIBLE"


def test_the_log_has_one_row_per_iteration_with_predicted_measured_margin_and_cut():
    toy = Toy([1, 2], [2.0, 1.0], 7.0, 2)
    rows = []
    r = eml.run_loop(toy.problem, toy.oracle, model=[], refit=toy.refit, on_iteration=rows.append,
                     residuals=lambda m, cal: {"q": [0.0] * 19})
    assert rows == r.log and [row["iteration"] for row in r.log] == list(range(len(r.log)))
    for k, row in enumerate(r.log[:-1]):
        assert row["oracle_calls"] == k + 1 and row["margin_q"] == 0.0
        assert {"predicted_objective", "predicted_q", "measured_q", "label", "cuts", "seconds"} <= set(row)
        assert row["cuts"].startswith(f"{k} no-good")
    first_feasible = next(k for k, a in enumerate(r.answers) if a.feasible)
    assert "improvement" in r.log[first_feasible + 1]["cuts"]
    assert r.frame().shape[0] == len(r.log)


def test_margins_are_conformal_quantiles_of_the_held_out_answers():
    """holdout=2: every second measured answer goes to calibration, never to the refit; the
    margin after each is the ceil((n+1)*0.8)-th smallest residual of the base ones and these."""
    toy = Toy([1, 1, 1], [1.0, 2.0, 3.0], 20.0, 3)
    base = list(np.linspace(0.0, 0.5, 9))
    seen_by_refit = []

    def refit(model, train):
        seen_by_refit.append({o.config for o in train})
        return Toy.refit(model, train)

    def residuals(model, cal):
        return {"q": base + [toy.predict(model, o.config) - o.measurement.values["q"] for o in cal]}

    r = eml.run_loop(toy.problem, toy.oracle, model=[], refit=refit, residuals=residuals,
                     coverage=0.8, holdout=2, max_calls=8)
    cal = [o for o in r.observations if o.role == "calibration"]
    assert [o.role for o in r.observations] == ["train", "calibration"] * (len(r.observations) // 2) + \
        ["train"] * (len(r.observations) % 2)
    assert not any(o.config in s for o in cal for s in seen_by_refit)
    res = np.sort(base + [toy.predict(r.model, o.config) - o.measurement.values["q"] for o in cal])
    assert r.margins["q"] == res[math.ceil((len(res) + 1) * 0.8) - 1]


def test_coverage_stages_go_on_after_a_proof_at_the_wider_margins():
    """(0.9, 0.5): margins of 1000 at 90% prove at once that nothing is feasible; the loop goes
    on at 50% (margin 0, the optimistic surrogate) to the enumerated optimum, and its proof is
    the last stage's."""
    toy = Toy([1, 2], [2.0, 1.0], 9.0, 2)
    r = eml.run_loop(toy.problem, toy.oracle, model=[], refit=toy.refit, coverage=(0.9, 0.5),
                     residuals=lambda m, cal: {"q": [0.0] * 5 + [1000.0] * 4})
    assert r.log[0]["label"] == "no answer" and r.log[0]["coverage"] == 0.9 and r.log[0]["margin_q"] == 1000
    assert all(row["coverage"] == 0.5 and row["margin_q"] == 0.0 for row in r.log[1:])
    assert r.proven and r.stop.endswith("within the margins (50% coverage)")
    assert r.best.objective == toy.optimum()
    with pytest.raises(ValueError, match="coverage stages must decrease"):
        eml.run_loop(toy.problem, toy.oracle, coverage=(0.5, 0.9))


def test_an_oracle_that_raises_or_returns_nan_labels_the_answer_and_the_loop_goes_on():
    toy = Toy([1, 2], [2.0, 1.0], 9.0, 2)
    first = toy.problem(eml.Context(0, [], {}, [], None, "min", [])).config
    calls = []

    def oracle(x):
        calls.append(x)
        if len(calls) == 1:
            raise RuntimeError("kernel crashed")
        if len(calls) == 2:
            return {"feasible": True, "q": float("nan")}
        return toy.oracle(x)

    r = eml.run_loop(toy.problem, oracle, model=[], refit=toy.refit)
    a0, a1 = r.answers[:2]
    assert a0.config == first and a0.label == "unmeasured"
    assert a0.reason == "the oracle raised RuntimeError: kernel crashed"
    assert a1.label == "unmeasured" and "non-finite" in a1.reason and "q=nan" in a1.reason
    assert r.log[0]["reason"] == a0.reason and r.log[0]["label"] == "unmeasured"
    assert all(a.measured for a in r.answers[2:]) and r.best is not None
    assert r.proven and "2 unmeasured configurations cut off" in r.stop
    # the best among the configurations the oracle measured: enumeration outside the two lost
    lost = {a0.config, a1.config}
    feas = [float(toy.cost @ np.array(p)) for p in _points(2) if p not in lost and toy.q(p) >= toy.t]
    assert r.best.objective == min(feas)


def test_budget_zero_is_the_open_loop_and_says_so():
    toy = Toy([1, 2], [2.0, 1.0], 9.0, 2)
    r = eml.run_loop(toy.problem, toy.oracle, model=[], refit=toy.refit, max_calls=0)
    assert toy.calls == 0 and r.oracle_calls == 0 and len(r.answers) == 1 and r.best is None
    assert r.answers[0].label == "unmeasured" and "oracle budget 0" in r.answers[0].reason
    assert r.stop.startswith("open loop (oracle budget 0)") and not r.proven


def test_budgets_of_calls_and_seconds_stop_the_loop():
    toy = Toy([1, 1, 1], [1.0, 2.0, 3.0], 25.0, 3)
    r = eml.run_loop(toy.problem, toy.oracle, model=[], refit=toy.refit, max_calls=2)
    assert toy.calls == 2 and r.stop == "oracle budget (2 calls) spent" and not r.proven
    toy.calls = 0
    r = eml.run_loop(toy.problem, toy.oracle, model=[], refit=toy.refit, max_seconds=0)
    assert toy.calls == 1 and r.stop == "time budget (0 s) spent"


@pytest.mark.parametrize("kw, match", [
    ({"sense": "maximize"}, "sense"), ({"max_calls": -1}, "max_calls"), ({"max_calls": 1.5}, "max_calls"),
    ({"max_seconds": float("nan")}, "max_seconds"), ({"holdout": 1}, "holdout"),
    ({"coverage": 1.0}, "coverage"), ({"refit": 3}, "refit"),
])
def test_bad_arguments_are_named(kw, match):
    toy = Toy([1, 2], [2.0, 1.0], 9.0, 2)
    with pytest.raises((ValueError, TypeError), match=match):
        eml.run_loop(toy.problem, toy.oracle, **kw)


def test_a_problem_that_ignores_the_no_good_cuts_is_refused():
    with pytest.raises(ValueError, match=r"configuration \(1, 2\).*ctx.excluded"):
        eml.run_loop(lambda ctx: eml.Proposal((1, 2), 3.0), lambda x: {"feasible": False})


def test_maximisation_with_a_measured_objective():
    """Epidemics-like: the objective itself is measured (the surrogate only predicts it); the
    improvement cut is on the measured best."""
    truth = {x: -(x - 5) ** 2 + 0.3 * x for x in range(11)}

    def problem(ctx):
        # optimistic prediction: the measured value where known, else the largest possible
        pred = {x: max(truth.values()) + 1 for x in truth}
        pred.update({o.config[0]: o.measurement.objective for o in ctx.observations})
        ok = [(v, x) for x, v in pred.items() if ctx.allowed((x,)) and ctx.improves(v)]
        if not ok:
            return eml.Proposal(None, status="INFEASIBLE")
        v, x = max(ok)
        return eml.Proposal((x,), v)

    r = eml.run_loop(problem, lambda c: {"feasible": True, "objective": truth[c[0]]}, sense="max")
    assert r.proven and r.best.config == (5,) and r.best.objective == max(truth.values())


def _highs_problem(cost, w, b, t, excluded, better_than):
    """min cost.x, x integer in [0, BOX]^n, w.x + b >= t, the loop's cuts as HiGHS rows."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    n = len(cost)
    x = h.addVariables(n, lb=0.0, ub=float(BOX))
    h.changeColsIntegrality(n, np.array([x[i].index for i in range(n)], np.int32), np.ones(n, np.uint8))
    h.addConstr(sum(float(w[i]) * x[i] for i in range(n)) >= t - b)
    for c in excluded:
        add_no_good(h, [x[i] for i in range(n)], c, 0, BOX)
    obj = sum(float(cost[i]) * x[i] for i in range(n))
    add_improvement(h, obj, better_than, "min", 1.0)
    h.setObjective(obj, sense=highspy.ObjSense.kMinimize)
    h.run()
    if h.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
        return None
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return tuple(int(round(v)) for v in h.getSolution().col_value[:n])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_cut=st.integers(0, 12), bound=st.none() | st.integers(2, 20))
def test_highs_cuts_match_enumeration(seed, n_cut, bound):
    rng = np.random.default_rng(seed)
    n = 2 + seed % 2
    cost, w = rng.integers(1, 4, n), rng.integers(1, 4, n)
    t = float(rng.integers(1, 4 * n * BOX // 2))
    feasible = [p for p in _points(n) if np.dot(w, p) >= t]
    # cut off mostly the cheapest feasible points (the ones a loop would have measured)
    feasible.sort(key=lambda p: np.dot(cost, p))
    cut = feasible[:n_cut] + [tuple(rng.integers(0, BOX + 1, n)) for _ in range(2)]
    left = [np.dot(cost, p) for p in feasible if p not in cut and (bound is None or np.dot(cost, p) <= bound - 1)]
    got = _highs_problem(cost, w, 0.0, t, cut, bound)
    if not left:
        assert got is None
    else:
        assert got is not None and got not in cut and np.dot(w, got) >= t
        assert np.dot(cost, got) == min(left)


def test_no_good_cut_on_a_box_edge_and_a_one_point_box():
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    x = h.addVariables(1, lb=3.0, ub=3.0)
    add_no_good(h, [x[0]], (3,), 3, 3)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kInfeasible
    # on the lower edge only the upward move is left
    assert _highs_problem([1, 1], [1, 1], 0.0, 0.0, [(0, 0)], None) in {(1, 0), (0, 1)}


def test_an_oracle_returning_something_else_is_unmeasured_with_what_it_returned():
    m = eml.measure(lambda c: 0.5, (1,))
    assert m.feasible is None and "returned float (0.5)" in m.reason
    m = eml.measure(lambda c: {"q": 1.0}, (1,))
    assert m.feasible is None and "without 'feasible'" in m.reason


def test_table_oracle_never_lends_a_neighbours_verdict():
    o = eml.TableOracle({(1, 2): {"feasible": True, "q": 3.0}})
    assert o((1, 2)).feasible is True and o((1, 2)).values == {"q": 3.0}
    m = eml.measure(o, (1, 3))
    assert m.feasible is None and "not in the table" in m.reason


def _first_then_proof(start):
    """A MILP phase that answers ``start`` once, then proves nothing better (a pessimistic
    surrogate): what is left to gain is the local search's."""
    def problem(ctx):
        if ctx.allowed(start):
            return eml.Proposal(start, float(sum(start[:-1])))
        return eml.Proposal(None, status="INFEASIBLE")
    return problem


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 4), box=st.booleans(), low=st.booleans())
def test_the_local_search_descends_to_a_minimal_measured_answer(seed, n, box, low):
    """Monotone feasibility (more never hurts) over {lo..hi}^n with a fixed tail (the
    hardware): from a feasible start (or an infeasible one, ``low``: repaired upwards first)
    the descent ends where no single variable can go one lower (checked against the true
    oracle); on a box threshold (feasible iff x >= t) that is the enumerated optimum. Every
    answer is measured and labelled by the truth."""
    rng = np.random.default_rng(seed)
    lo, hi = 2, 12
    w = rng.uniform(0.5, 3.0, n)
    t = rng.integers(lo, hi + 1, n)
    need = float(w @ t)

    def truth(config):
        x = np.asarray(config[:n])
        return bool((x >= t).all()) if box else float(w @ x) >= need

    calls = []

    def oracle(config):
        calls.append(config)
        return truth(config)

    start = (*[lo if low else hi] * n, "hw")
    r = eml.run_loop(_first_then_proof(start), oracle, local=eml.CoordinateDescent(lo, hi, n))
    if low and not truth(start):  # the MILP phase found nothing feasible: the repair's steps up
        assert "best none ->" in r.stop and r.log[2]["move"] == "repair: all +1"
    assert r.proven and "then a local search" in r.stop and "no neighbour of the best left" in r.stop
    assert len(calls) == r.oracle_calls == len(r.answers) and len(set(calls)) == len(calls)
    for a in r.answers:
        assert a.measured and a.feasible == truth(a.config) and a.config[n:] == ("hw",)
    best = np.asarray(r.best.config[:n])
    assert truth(r.best.config) and r.best.objective == best.sum()
    for i in range(n):  # one lower on any variable: truly infeasible (or out of the box)
        below = best.copy()
        below[i] -= 1
        assert below[i] < lo or not truth((*below, "hw"))
    opt = min(sum(p) for p in itertools.product(range(lo, hi + 1), repeat=n)
              if truth((*p, "hw"))) if box or n <= 3 else None
    if box:
        assert r.best.objective == opt == t.sum()
        # binary searches: far fewer calls than the box holds
        assert r.oracle_calls <= 1 + 5 + n * (math.ceil(math.log2(hi - lo + 1)) + 1) + n * (n - 1) + n * n * n
    rows = [row for row in r.log if row.get("phase") == "local"]
    assert len(rows) == r.oracle_calls - 1 and all(
        row["better_than"] is None or row["predicted_objective"] < row["better_than"] for row in rows)


def test_the_local_search_has_its_own_budget_and_survives_a_failing_oracle():
    start = (10, 10, "hw")
    seen = []

    def oracle(config):
        seen.append(config)
        if len(seen) == 2:
            raise RuntimeError("kernel crashed")
        return sum(config[:2]) >= 8

    r = eml.run_loop(_first_then_proof(start), oracle, local=eml.CoordinateDescent(0, 10, 2), local_calls=3)
    assert r.oracle_calls == 4 and "its budget (3 calls) spent" in r.stop
    assert r.answers[1].label == "unmeasured" and "kernel crashed" in r.answers[1].reason
    assert r.best.feasible and r.best.objective < 20
    # the open loop never searches locally; a bad budget or a cut-off proposal is named
    r = eml.run_loop(_first_then_proof(start), oracle, max_calls=0, local=eml.CoordinateDescent(0, 10, 2))
    assert r.oracle_calls == 0 and "local" not in r.stop
    with pytest.raises(ValueError, match="local_calls"):
        eml.run_loop(_first_then_proof(start), oracle, local=eml.CoordinateDescent(0, 10, 2), local_calls=-1)
    with pytest.raises(ValueError, match=r"local returned configuration \(10, 10, 'hw'\)"):
        eml.run_loop(_first_then_proof(start), lambda c: True,
                     local=lambda ctx: eml.Proposal(start, 1.0))


def test_the_milp_phase_hands_over_to_the_local_search_after_the_first_feasible_answer():
    """local_after=1: one MILP answer after the first measured-feasible one, then the local
    search (no refit for a MILP that will not come); without local, the MILP phase goes on.
    The oracle is not monotone at (9, 9): that infeasible answer must not prune the search."""
    queue = [(9, 9, "hw"), (8, 9, "hw"), (7, 9, "hw"), (6, 9, "hw"), (5, 9, "hw")]
    refits = []

    def problem(ctx):
        left = [c for c in queue if ctx.allowed(c) and ctx.improves(sum(c[:2]))]
        return eml.Proposal(left[0], float(sum(left[0][:2]))) if left else eml.Proposal(None, status="INFEASIBLE")

    def oracle(config):  # (9, 9) infeasible, then feasible from sum >= 10 on
        return config != (9, 9, "hw") and sum(config[:2]) >= 10

    def refit(model, train):
        refits.append(len(train))
        return model

    r = eml.run_loop(problem, oracle, refit=refit, local=eml.CoordinateDescent(0, 9, 2), local_after=1)
    milp = [row for row in r.log if row["phase"] == "milp"]
    assert [row["config"] for row in milp] == [str(queue[0]), str(queue[1]), str(queue[2])]
    assert r.stop.startswith("handed over to the local search 1 MILP answer after the first measured-feasible one")
    assert refits == [1, 2]  # none after the MILP phase's last answer
    assert r.best.objective == 10 and oracle(r.best.config)
    r = eml.run_loop(problem, oracle, refit=refit, local_after=1)  # no local search: no hand-over
    assert r.proven and len(r.answers) == len(queue)
    with pytest.raises(ValueError, match="local_after"):
        eml.run_loop(problem, oracle, local=eml.CoordinateDescent(0, 9, 2), local_after=-1)
