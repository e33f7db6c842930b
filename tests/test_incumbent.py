"""milp.incumbent: the MIP start solve() gives HiGHS is a true point of the model (checked
here independently of the repair module: row activities from h.getLp(), forward passes equal
to the network columns), no better than the optimum, None on an infeasible model, and the
answer when HiGHS has no time to find one."""

import highspy
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from emlpress import Network
from emlpress.milp import add_network, find_incumbent, incumbent, solve
from emlpress.testing import trained_like

TOL = 1e-6


def _net(sizes, seed, lo=-1.0, hi=1.0):
    return trained_like(sizes, seed, near_dead=0, lo=lo, hi=hi)


def _model(kind, seed):
    """(h, [(network, handle)]) for one of the small models of the tests: an l1 ball around a
    point, a budget row, two chained networks; every one maximises a network output."""
    h = highspy.Highs()
    h.silent()
    rng = np.random.default_rng(seed)
    if kind == "chained":
        n1, n2 = _net([3, 8, 8, 2], seed), _net([2, 6, 1], seed + 1, lo=-50.0, hi=50.0)
        x = h.addVariables(3, lb=[-1.0] * 3, ub=[1.0] * 3)
        h.addConstr(sum(x[i] for i in range(3)) <= 0.5)  # a budget row on the first inputs
        a = add_network(h, n1, list(x.values()) if isinstance(x, dict) else list(x), name="week0")
        out = a.output_cols
        lo1, hi1 = a.bounds.lower[-1], a.bounds.upper[-1]  # the second network reads them
        h.changeColsBounds(2, out.astype(np.int32), np.asarray(lo1, float), np.asarray(hi1, float))
        b = add_network(h, n2, out, name="week1")
        h.changeColCost(int(b.output_cols[0]), 1.0)
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        return h, [(n1, a), (n2, b)]
    net = _net([4, 8, 8, 2], seed)
    x = h.addVariables(4, lb=[-1.0] * 4, ub=[1.0] * 4)
    xs = list(x.values()) if isinstance(x, dict) else list(x)
    if kind == "l1":  # ||x - c||_1 <= 0.6 by t_i >= |x_i - c_i|
        c = rng.uniform(-0.8, 0.8, 4)
        t = h.addVariables(4, lb=[0.0] * 4, ub=[0.6] * 4)
        ts = list(t.values()) if isinstance(t, dict) else list(t)
        for i in range(4):
            h.addConstr(ts[i] - xs[i] >= -c[i])
            h.addConstr(ts[i] + xs[i] >= c[i])
        h.addConstr(sum(ts) <= 0.6)
    else:  # a budget row
        w = rng.uniform(0.5, 1.5, 4)
        h.addConstr(sum(w[i] * xs[i] for i in range(4)) <= -1.0)
    hd = add_network(h, net, xs)
    y = hd.output_cols
    h.changeColsCost(2, y.astype(np.int32), np.array([1.0, -1.0]))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    return h, [(net, hd)]


def _assert_feasible(h, nets, v):
    """Independently of emlpress' repair: every row and column bound of h.getLp() within
    TOL, integers integral, and each network's output columns its forward pass."""
    lp = h.getLp()
    m = lp.a_matrix_
    kind = sp.csr_matrix if m.format_.name == "kRowwise" else sp.csc_matrix
    A = kind((np.asarray(m.value_), np.asarray(m.index_), np.asarray(m.start_)),
             shape=(lp.num_row_, lp.num_col_))
    act = A @ v
    assert np.all(act >= np.asarray(lp.row_lower_) - TOL) and np.all(act <= np.asarray(lp.row_upper_) + TOL)
    assert np.all(v >= np.asarray(lp.col_lower_) - TOL) and np.all(v <= np.asarray(lp.col_upper_) + TOL)
    integ = np.asarray(lp.integrality_, int) != 0
    assert np.allclose(v[integ], np.rint(v[integ]), atol=TOL)
    for net, hd in nets:
        np.testing.assert_allclose(v[hd.output_cols], net.forward(v[hd.input_cols]), rtol=1e-6, atol=1e-6)
    return float(np.asarray(lp.col_cost_) @ v + lp.offset_)


@pytest.mark.parametrize("kind,seed", [("l1", 0), ("budget", 1), ("chained", 0), ("chained", 1)])
def test_the_incumbent_is_a_point_of_the_model_no_better_than_the_optimum(kind, seed, monkeypatch):
    monkeypatch.setattr(incumbent, "SMALL_MODEL", 0)  # solve() starts these small models too
    h, nets = _model(kind, seed)
    inc = find_incumbent(h, time_limit=5.0, seed=seed)
    assert inc, inc.reason
    obj = _assert_feasible(h, nets, inc.values)
    assert obj == pytest.approx(inc.objective, abs=1e-9)
    ref = solve(h, solver="highs", mip_gap=0.0, mip_abs_gap=1e-9, start=None)  # HiGHS alone, verified
    assert ref.status == "OPTIMAL"
    assert inc.objective <= ref.objective + 1e-6 * max(1.0, abs(ref.objective))
    sol = solve(h, solver="highs", mip_gap=0.0, mip_abs_gap=1e-9)  # with the start: the same optimum
    assert sol.status == "OPTIMAL" and sol.start
    assert sol.objective == pytest.approx(ref.objective, abs=1e-6 * max(1.0, abs(ref.objective)))
    assert sol.start_used and sol.start_objective == pytest.approx(inc.objective, abs=1e-6)


def test_an_infeasible_model_has_no_incumbent_and_solve_says_infeasible():
    h, nets = _model("budget", 0)
    h.addConstr(sum(h.getVariables()[:4]) >= 3.9)  # with sum w x <= -1, w >= 0.5: no point
    inc = find_incumbent(h, time_limit=5.0)
    assert not inc and inc.values is None and "infeasible" in inc.reason
    sol = solve(h, solver="highs")
    assert sol.status == "INFEASIBLE" and not sol.has_solution


def test_a_model_only_the_relaxation_admits_gives_none_with_the_reason():
    # y = relu(x) - relu(x - 0.5) <= 0.5 on [-1, 1]; the big-M relaxation reaches 0.75 at
    # x = 0.5, so y >= 0.6 leaves the relaxation feasible and no phase pattern fitting
    net = Network([np.array([[1.0], [1.0]]), np.array([[1.0, -1.0]])],
                  [np.array([0.0, -0.5]), np.zeros(1)], -np.ones(1), np.ones(1))
    h = highspy.Highs()
    h.silent()
    x = h.addVariables(1, lb=[-1.0], ub=[1.0])
    hd = add_network(h, net, list(x.values()) if isinstance(x, dict) else list(x), bounds="interval")
    h.changeColBounds(int(hd.output_cols[0]), 0.6, highspy.kHighsInf)
    h.changeColCost(int(hd.output_cols[0]), 1.0)
    inc = find_incumbent(h, time_limit=5.0)
    assert not inc and "relaxation" in inc.reason and "no feasible LP" in inc.reason
    sol = solve(h, solver="highs", time_limit=0.5)  # with the (failed) start
    assert sol.status == "INFEASIBLE" and not sol.has_solution and sol.start == ""


def test_a_time_limit_of_about_zero_returns_the_verified_start():
    h, nets = _model("l1", 3)
    sol = solve(h, solver="highs", time_limit=1e-6)
    assert sol.has_solution and sol.start and sol.start_used
    assert sol.status in ("TIME_LIMIT", "OPTIMAL", "FEASIBLE")
    _assert_feasible(h, nets, sol.col_values)
    assert sol.objective == pytest.approx(sol.start_objective, abs=1e-9) or sol.objective > sol.start_objective
    (net, hd), = nets
    assert sol.verify_diff[hd.name] <= 1e-6


def test_solve_start_none_gives_no_start_and_a_bad_value_is_refused():
    h, _ = _model("budget", 2)
    assert solve(h, solver="highs", start=None).start == ""
    # a small model with a time limit of a second or more: HiGHS alone, no start
    assert solve(h, solver="highs", time_limit=5.0).start == ""
    assert solve(h, solver="highs", time_limit=0.5).start
    with pytest.raises(ValueError, match="start"):
        solve(h, start="fast")  # refused whichever solver would answer


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), width=st.integers(2, 12), budget=st.floats(-2.0, 2.0))
def test_property_incumbent_feasible_and_below_the_optimum(seed, width, budget):
    net = _net([3, width, width, 1], seed)
    h = highspy.Highs()
    h.silent()
    x = h.addVariables(3, lb=[-1.0] * 3, ub=[1.0] * 3)
    xs = list(x.values()) if isinstance(x, dict) else list(x)
    h.addConstr(xs[0] + xs[1] - xs[2] <= budget)
    hd = add_network(h, net, xs)
    h.changeColCost(int(hd.output_cols[0]), 1.0)
    h.changeObjectiveSense(highspy.ObjSense.kMinimize)
    inc = find_incumbent(h, time_limit=2.0, seed=seed)
    assert inc, inc.reason  # the budget row meets the box: a point is at hand
    _assert_feasible(h, [(net, hd)], inc.values)
    ref = solve(h, solver="highs", mip_gap=0.0, mip_abs_gap=1e-9, start=None)
    assert inc.objective >= ref.objective - 1e-6 * max(1.0, abs(ref.objective))


def test_a_one_hot_choice_feeding_two_chained_networks_gets_a_point_no_better_than_enumeration():
    # the user's own integers (a one-hot choice of each week's second input, as epidemics'
    # NPI combinations) stay integer in the completion; the optimum is the best of 4 x 4
    # schedules through the two networks, by forward passes
    vals = np.array([-0.9, -0.2, 0.4, 0.8])
    n1, n2 = _net([2, 8, 8, 1], 7), _net([2, 8, 1], 8, lo=-50.0, hi=50.0)
    h = highspy.Highs()
    h.silent()
    s0 = h.addVariable(lb=0.3, ub=0.3)
    cols = []
    for _ in range(2):
        c = [h.addVariable(lb=0, ub=1, type=highspy.HighsVarType.kInteger) for _ in vals]
        b = h.addVariable(lb=-1.0, ub=1.0)
        h.addConstr(sum(c) == 1)
        h.addConstr(b - sum(float(v) * ck for v, ck in zip(vals, c)) == 0)
        cols.append(b)
    a = add_network(h, n1, [s0, cols[0]], name="week0")
    y0 = int(a.output_cols[0])
    h.changeColBounds(y0, float(a.bounds.lower[-1][0]), float(a.bounds.upper[-1][0]))
    b2 = add_network(h, n2, [y0, cols[1].index], name="week1")
    h.changeColCost(int(b2.output_cols[0]), 1.0)
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    inc = find_incumbent(h, time_limit=5.0)
    assert inc, inc.reason
    _assert_feasible(h, [(n1, a), (n2, b2)], inc.values)
    best = max(n2.forward(np.array([n1.forward(np.array([0.3, u]))[0], w]))[0]
               for u in vals for w in vals)
    assert inc.objective <= best + 1e-9
    sol = solve(h, solver="highs", mip_gap=0.0, mip_abs_gap=1e-9, start=None)
    assert sol.objective == pytest.approx(best, abs=1e-6)
