"""emlpress' own certified branch-and-bound inside milp.solve (milp/bnb.py): its optima against
HiGHS at gap 0 and dense samples of the domain, on a box, a budget row and an l1 ball written
with auxiliary columns; its certified bound never below a value the network takes; an empty
domain, a time limit and models it does not take."""

import highspy
import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

from emlpress import Network, bounds
from emlpress.bounds.rounding import forward_rounding
from emlpress.milp import add_network, bnb, solve
from emlpress.testing import trained_like
from strategies import network_and_box, sample_box

MAX, MIN = highspy.ObjSense.kMaximize, highspy.ObjSense.kMinimize


def _model(net, lo, hi, sense=MAX, coef=None, rows=(), l1=None):
    """A HiGHS model: inputs on [lo, hi], ``net`` added, objective coef . outputs (default
    output 0), linear rows (a, lower, upper) over the inputs, an l1 ball (center, eps) over
    them written with t columns as users write it."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    x = h.addVariables(net.n_in, lb=list(lo), ub=list(hi))
    nn = add_network(h, net, x, bounds="lp")
    for a, rl, ru in rows:
        h.addRow(rl, ru, net.n_in, np.asarray(nn.input_cols, np.int32), np.asarray(a, float))
    if l1 is not None:
        c, eps = l1
        n, t0 = net.n_in, h.getNumCol()
        h.addCols(n, np.zeros(n), np.zeros(n), np.full(n, highspy.kHighsInf), 0, [], [], [])
        for i in range(n):  # t_i - x_i >= -c_i, t_i + x_i >= c_i
            idx = np.array([t0 + i, nn.input_cols[i]], np.int32)
            h.addRow(-c[i], highspy.kHighsInf, 2, idx, np.array([1.0, -1.0]))
            h.addRow(c[i], highspy.kHighsInf, 2, idx, np.array([1.0, 1.0]))
        h.addRow(-highspy.kHighsInf, eps, n, np.arange(t0, t0 + n, dtype=np.int32), np.ones(n))
    coef = np.eye(net.sizes[-1])[0] if coef is None else np.asarray(coef, float)
    out = np.asarray(nn.output_cols, np.int32)
    h.changeColsCost(out.size, out, coef)
    h.changeObjectiveSense(sense)
    return h, nn


def _pair(net, lo, hi, sense=MAX, **kw):
    """(bab's solution, HiGHS' at gap 0, the handle) of the same problem."""
    h, nn = _model(net, lo, hi, sense, **kw)
    b = solve(h, time_limit=60, mip_gap=1e-9, mip_abs_gap=1e-9, solver="bab")
    h2, nn2 = _model(net, lo, hi, sense, **kw)
    g = solve(h2, time_limit=60, mip_gap=0.0, mip_abs_gap=0.0, solver="highs")
    return b, g, nn


def _check(b, g, nn, X, coef=None):
    """bab's answer: OPTIMAL, verified, HiGHS' optimum, and its certified bound at or past
    every sampled value (X: points of the domain)."""
    assert b.solver == "emlpress-bab" and g.solver == "highs"
    assert b.status == "OPTIMAL" and g.status == "OPTIMAL"
    sg = 1.0 if b.best_bound >= b.objective else -1.0
    y = nn.net.forward(X) @ (np.eye(nn.net.sizes[-1])[0] if coef is None else coef)
    scale = max(1.0, abs(g.objective))
    assert abs(b.objective - g.objective) <= 1e-6 * scale, (b, g)
    assert np.all(sg * (b.best_bound - y) >= 0)  # no sampled value beyond the certified bound
    assert sg * (b.best_bound - b.objective) <= 1e-8 * scale
    # the incumbent is a point of the network: its columns verified by solve
    assert b.verify_diff[nn.name] <= 1e-9 * scale
    x = b.inputs[nn.name]
    assert abs(float(nn.net.forward(x[None]) [0] @ (np.eye(nn.net.sizes[-1])[0] if coef is None else coef))
               - b.objective) <= 1e-9 * scale


@pytest.mark.parametrize("sense", [MAX, MIN])
def test_box_optimum_equals_highs_and_a_dense_grid(sense):
    net = trained_like([2, 8, 8, 1], seed=3, lo=-1.0, hi=1.0)
    lo, hi = -np.ones(2), np.ones(2)
    b, g, nn = _pair(net, lo, hi, sense)
    g1 = np.linspace(-1, 1, 201)
    X = np.stack(np.meshgrid(g1, g1), -1).reshape(-1, 2)
    _check(b, g, nn, X)
    # the grid's best is within the grid's resolution of the optimum (Lipschitz <= |W| product)
    lip = np.prod([np.abs(W).sum(1).max() for W in net.weights])
    y = net.forward(X)[:, 0]
    best = y.max() if sense == MAX else y.min()
    assert abs(best - b.objective) <= lip * 0.01 + 1e-9


def test_budget_row_and_a_combined_objective():
    net = trained_like([4, 10, 10, 3], seed=5, lo=0.0, hi=1.0)
    lo, hi = np.zeros(4), np.ones(4)
    coef = np.array([1.0, -2.0, 0.5])
    rows = [(np.ones(4), -highspy.kHighsInf, 1.5), (np.array([1.0, -1.0, 0, 0]), -0.25, 0.25)]
    b, g, nn = _pair(net, lo, hi, MAX, coef=coef, rows=rows)
    X = sample_box(lo, hi, 20000, seed=0)
    X = X[(X.sum(1) <= 1.5) & (np.abs(X[:, 0] - X[:, 1]) <= 0.25)]
    _check(b, g, nn, X, coef)
    x = b.inputs[nn.name]
    assert x.sum() <= 1.5 and abs(x[0] - x[1]) <= 0.25  # the rows hold at the incumbent


def test_l1_ball_written_with_auxiliary_columns():
    net = trained_like([5, 12, 12, 2], seed=7, lo=0.0, hi=1.0)
    lo, hi = np.zeros(5), np.ones(5)
    c = np.full(5, 0.5)
    coef = np.array([1.0, -1.0])  # a margin, as the optimal adversary's
    b, g, nn = _pair(net, lo, hi, MAX, coef=coef, l1=(c, 0.4))
    rng = np.random.default_rng(0)
    D = rng.laplace(size=(20000, 5))
    X = c + D / np.abs(D).sum(1, keepdims=True) * 0.4 * rng.uniform(0, 1, (20000, 1)) ** 0.2
    _check(b, g, nn, X, coef)
    x = b.inputs[nn.name]
    assert np.abs(x - c).sum() <= 0.4
    t = b.col_values[-5:]  # the t columns hold |x - c|
    assert np.allclose(t, np.abs(x - c))


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), sense=st.sampled_from([MAX, MIN]),
       sizes=st.sampled_from([[3, 8, 1], [3, 6, 6, 1], [6, 10, 8, 2]]))
def test_certified_bound_never_below_a_sampled_value(seed, sense, sizes):
    net = trained_like(sizes, seed=seed, lo=-1.0, hi=1.0)
    lo, hi = -np.ones(sizes[0]), np.ones(sizes[0])
    h, nn = _model(net, lo, hi, sense)
    s = solve(h, time_limit=20, solver="bab")
    assert s.solver == "emlpress-bab" and s.status == "OPTIMAL" and s.has_solution
    y = net.forward(sample_box(lo, hi, 4000, seed=seed))[:, 0]
    if sense == MAX:
        assert s.best_bound >= y.max() and s.best_bound >= s.objective
    else:
        assert s.best_bound <= y.min() and s.best_bound <= s.objective
    assert s.gap <= 1e-4 or abs(s.best_bound - s.objective) <= 1e-6


@settings(max_examples=8, deadline=None)
@given(case=network_and_box(max_depth=3, max_width=8, max_in=4), sense=st.sampled_from([MAX, MIN]))
def test_certified_bound_on_random_networks_scales_and_degenerate_boxes(case, sense):
    """The strategies' networks: exact zeros, weights from 1e-6 to 1e5, boxes with lo == hi."""
    net, lo, hi, seed = case
    h, nn = _model(Network(net.weights, net.biases, lo, hi), lo, hi, sense)
    s = solve(h, time_limit=20, solver="bab")
    assert s.solver == "emlpress-bab" and s.has_solution and s.status in ("OPTIMAL", "TIME_LIMIT")
    y = net.forward(sample_box(lo, hi, 3000, seed=seed))[:, 0]
    x = s.inputs[nn.name]
    assert float(net.forward(x[None])[0, 0]) == s.objective  # the incumbent, by a forward pass
    if sense == MAX:
        assert s.best_bound >= y.max() and s.best_bound >= s.objective
    else:
        assert s.best_bound <= y.min() and s.best_bound <= s.objective


def _level_set_case(net, lo, hi, seed, maximize, q):
    """bnb.level_set_bounds over {out >= value} (<= minimising), value the q-quantile of
    the sampled outputs: every hidden unit's bounds hold at each sampled point of the box
    (its corners included) past value, and are never looser than given; returns the LPs."""
    net = bnb._fold(Network(net.weights, net.biases, lo, hi), np.eye(net.sizes[-1])[0])
    b = bounds.lp(net, lo, hi)
    X = sample_box(lo, hi, 3000, seed=seed)
    Z = net.preactivations(X)
    y = Z[-1][:, 0]
    value = float(np.quantile(y, q if maximize else 1 - q))
    L, U, lps = bnb.level_set_bounds(net, lo, hi, b.lower, b.upper, None, maximize, value,
                                     layers=99, violated=False)
    # points past value by more than a forward pass' rounding: in the exact level set
    slack = 2 * forward_rounding(net, lo, hi, b.upper)[-1][0]
    inside = y >= value + slack if maximize else y <= value - slack
    for k in range(net.n_layers - 1):
        assert np.all(L[k] >= b.lower[k]) and np.all(U[k] <= b.upper[k])
        assert np.all(Z[k][inside] >= L[k]) and np.all(Z[k][inside] <= U[k])
    assert np.array_equal(L[-1], b.lower[-1]) and np.array_equal(U[-1], b.upper[-1])
    return lps


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), maximize=st.booleans(), q=st.sampled_from([0.5, 0.9, 0.99]),
       sizes=st.sampled_from([[3, 8, 8, 1], [4, 6, 6, 6, 1], [5, 10, 1]]))
def test_level_set_bounds_hold_at_every_sampled_point_of_the_level_set(seed, maximize, q, sizes):
    """The search's bounds once an incumbent is known, on trained-looking networks."""
    net = trained_like(sizes, seed=seed, lo=-1.0, hi=1.0)
    lo, hi = -np.ones(sizes[0]), np.ones(sizes[0])
    assert _level_set_case(net, lo, hi, seed, maximize, q) > 0  # units were bounded by LPs


@settings(max_examples=10, deadline=None)
@given(case=network_and_box(max_depth=3, max_width=8, max_in=4), maximize=st.booleans(),
       q=st.sampled_from([0.5, 0.9, 0.99]))
def test_level_set_bounds_on_random_networks_scales_and_degenerate_boxes(case, maximize, q):
    """The same on the strategies' networks: exact zeros, weights from 1e-6 to 1e5, lo == hi."""
    net, lo, hi, seed = case
    _level_set_case(net, lo, hi, seed, maximize, q)


def test_empty_domain_is_infeasible_with_a_checked_certificate():
    net = trained_like([3, 6, 1], seed=1, lo=-1.0, hi=1.0)
    lo, hi = -np.ones(3), np.ones(3)
    rows = [(np.ones(3), -highspy.kHighsInf, -2.5), (np.array([-1.0, 0, 0]), -highspy.kHighsInf, 0.0)]
    h, _ = _model(net, lo, hi, MAX, rows=rows)
    s = solve(h, time_limit=10, solver="bab")
    assert s.status == "INFEASIBLE" and not s.has_solution and s.solver == "emlpress-bab"
    assert s.certificate is not None and s.certificate.bound > 0
    # independently: scipy finds the rows empty on the box, and HiGHS agrees
    r = scipy.optimize.linprog(np.zeros(3), A_ub=[[1, 1, 1], [-1, 0, 0]], b_ub=[-2.5, 0],
                               bounds=list(zip(lo, hi)))
    assert r.status == 2
    h2, _ = _model(net, lo, hi, MAX, rows=rows)
    assert solve(h2, time_limit=10, solver="highs").status == "INFEASIBLE"


def test_time_limit_gives_a_verified_incumbent_and_a_bound_past_it():
    net = trained_like([10, 24, 24, 1], seed=11, lo=-1.0, hi=1.0)
    lo, hi = -np.ones(10), np.ones(10)
    h, nn = _model(net, lo, hi, MAX)
    y = net.forward(sample_box(lo, hi, 5000, seed=0))[:, 0]
    # a node limit stops the search where it is, whatever the machine's speed
    form, why = bnb.recognise(h)
    r = bnb.search(form, mip_gap=0.0, mip_abs_gap=0.0, node_limit=1)
    assert r.status == "TIME_LIMIT" and r.x is not None and r.bound > r.objective
    assert float(net.forward(r.x[None])[0, 0]) == pytest.approx(r.objective, abs=1e-12)
    assert r.bound >= y.max()
    # through solve: a verified incumbent and a certified bound past it at the time limit (or
    # the optimum, on a machine fast enough to end the search in 0.5 s)
    s = solve(h, time_limit=0.5, mip_gap=0.0, mip_abs_gap=0.0, solver="bab")
    assert s.status in ("TIME_LIMIT", "OPTIMAL") and s.has_solution and s.solver == "emlpress-bab"
    x = s.inputs[nn.name]
    assert float(net.forward(x[None])[0, 0]) == pytest.approx(s.objective, abs=1e-12)
    assert s.best_bound >= s.objective and s.best_bound >= y.max()


def test_models_of_another_form_go_to_highs():
    net = trained_like([3, 6, 1], seed=2, lo=-1.0, hi=1.0)
    lo, hi = -np.ones(3), np.ones(3)
    # a row over the network's output: not a domain of its inputs
    h, nn = _model(net, lo, hi, MAX)
    h.addRow(-highspy.kHighsInf, 0.1, 1, np.asarray(nn.output_cols, np.int32), np.ones(1))
    s = solve(h, time_limit=10)
    assert s.solver == "highs" and s.status == "OPTIMAL" and s.objective <= 0.1 + 1e-6
    with pytest.raises(ValueError, match="solver='bab'.*rows over the network's outputs"):
        solve(h, time_limit=10, solver="bab")
    # a bound on the output column, set after add_network: a constraint too
    h, nn = _model(net, lo, hi, MAX)
    cap = float(nn.bounds.lower[-1][0] + nn.bounds.upper[-1][0]) / 2
    h.changeColBounds(int(nn.output_cols[0]), -highspy.kHighsInf, cap)
    s = solve(h, time_limit=10)
    assert s.solver == "highs" and s.objective <= cap + 1e-6
    # equality rows: a witness must meet them exactly, which the search's points seldom do
    h, nn = _model(net, lo, hi, MAX, rows=[(np.array([1.0, 1.0, 0.0]), 0.3, 0.3)])
    s = solve(h, time_limit=10)
    assert s.solver == "highs" and s.status == "OPTIMAL"
    # an objective on an input, and two networks
    h, nn = _model(net, lo, hi, MAX)
    h.changeColCost(int(nn.input_cols[0]), 1.0)
    assert solve(h, time_limit=10).solver == "highs"
    h, nn = _model(net, lo, hi, MAX)
    add_network(h, net, nn.inputs, name="second")
    assert solve(h, time_limit=10).solver == "highs"
    with pytest.raises(ValueError, match="solver must be one of"):
        solve(h, solver="gurobi")
    # a partition encoding: its group columns are not big-M's, the search says so by name
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    x = h.addVariables(net.n_in, lb=list(lo), ub=list(hi))
    nn = add_network(h, net, x, formulation="partition", groups=2)
    h.changeColCost(int(nn.output_cols[0]), 1.0)
    h.changeObjectiveSense(MAX)
    g, _ = _model(net, lo, hi, MAX)
    s, ref = solve(h, time_limit=10), solve(g, time_limit=10, mip_gap=0)
    assert s.solver == "highs" and s.status == "OPTIMAL"
    assert abs(s.objective - ref.objective) <= 1e-4 * max(1.0, abs(ref.objective))
    with pytest.raises(ValueError, match="'partition' formulation"):
        solve(h, time_limit=10, solver="bab")


def test_a_limit_too_short_for_the_search_answers_with_the_start_point():
    """solve(start="auto") seeds the branch-and-bound with incumbent.start_point's verified
    point: under a limit the search cannot use, the answer is at least that point, a point
    of the l1 ball whose forward pass is the objective; start=None runs no start."""
    net = trained_like([16, 24, 24, 2], seed=5, lo=0.0, hi=1.0)
    lo, hi, c, eps = np.zeros(16), np.ones(16), np.full(16, 0.5), 2.0
    coef = np.array([1.0, -1.0])
    h, nn = _model(net, lo, hi, MAX, coef=coef, l1=(c, eps))
    s = solve(h, time_limit=0.05, solver="bab")
    assert s.solver == "emlpress-bab" and s.status == "TIME_LIMIT" and s.has_solution
    assert s.start and s.start_used and s.objective >= s.start_objective
    x = s.inputs[nn.name]
    assert np.abs(x - c).sum() <= eps * (1 + 1e-7) and np.all((x >= lo) & (x <= hi))
    assert float(net.forward(x[None])[0] @ coef) == pytest.approx(s.objective, abs=1e-9)
    assert s.best_bound >= s.objective
    h, nn = _model(net, lo, hi, MAX, coef=coef, l1=(c, eps))
    s = solve(h, time_limit=0.05, solver="bab", start=None)
    assert s.start == "" and not s.start_used
