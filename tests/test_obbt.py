"""emlpress.milp.tighten: bounds over the whole model's LP relaxation, certified from duals.

Checked: every sampled feasible point of the model (inputs drawn and kept where the user's
rows hold, networks forward-passed, chained) lies inside the tightened bounds and satisfies
the rewritten rows; the optimum is that of the untightened model (and of a brute force over
the inputs); the certificate is rigorous for any multipliers (perturbed duals never give a
bound above a feasible point or the LP optimum, and it agrees with the C++ one); an
infeasible model is reported with a checked certificate and left as it was."""

import highspy
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emlpress import Network, _highs, kernels
from emlpress.milp import add_network, registered_handles, solve, tighten, tighten_tolerances
from emlpress.milp import obbt
from emlpress.milp.repair import model_arrays, violation
from emlpress.testing import trained_like


def _net(sizes, seed, n_in_box=1.0):
    n = trained_like(sizes, seed, lo=-n_in_box, hi=n_in_box)
    return Network(n.weights, n.biases)


def _model(seed, chained: bool, budget: float = 0.3):
    """x in [-1, 1]^3 with a budget row sum(x) <= budget and x0 - x1 >= -0.5; network A on x
    and, if ``chained``, network B on A's two outputs; maximise the last output."""
    rng = np.random.default_rng(seed)
    A = _net([3, 10, 10, 2], seed)
    h = _highs.highs()
    x = h.addVariables(3, lb=[-1.0] * 3, ub=[1.0] * 3)
    h.addConstr(x[0] + x[1] + x[2] <= budget)
    h.addConstr(x[0] - x[1] >= -0.5)
    na = add_network(h, A, x, name="A")
    nets = [A]
    if chained:
        lo, hi = na.bounds.lower[-1], na.bounds.upper[-1]
        B = trained_like([2, 8, 1], seed + 1, lo=lo, hi=hi)
        B = Network(B.weights, B.biases)
        add_network(h, B, na.outputs, name="B")
        nets.append(B)
    out = registered_handles(h)[-1].outputs[0]
    h.setObjective(out, sense=highspy.ObjSense.kMaximize if rng.random() < 0.5 else highspy.ObjSense.kMinimize)
    return h, x, nets


def _feasible_points(seed, n=400, budget: float = 0.3):
    X = np.random.default_rng(seed + 7).uniform(-1, 1, size=(n, 3))
    return X[(X.sum(1) <= budget) & (X[:, 0] - X[:, 1] >= -0.5)]


def _columns(h, X):
    """The model's column values at each input row of X: every network forward-passed
    (chained ones on the previous network's outputs), from the handles' own columns."""
    n = h.getNumCol()
    V = []
    for x in X:
        v = np.zeros(n)
        v[:3] = x
        for hd in registered_handles(h):
            cols, vals = hd.start_values(v[hd.input_cols])
            v[cols] = vals
        V.append(v)
    return np.array(V)


@settings(max_examples=5, deadline=None)  # ~0.5 s each; 80 examples passed when written
@given(seed=st.integers(0, 10_000), chained=st.booleans())
def test_tightened_bounds_hold_at_every_sampled_feasible_point_and_the_rows_keep_it(seed, chained):
    h, x, nets = _model(seed, chained)
    before = [hd.bounds for hd in registered_handles(h)]
    rep = tighten(h, time_limit=30, rounds=2)
    assert rep.status == "TIGHTENED" and rep.lps > 0 and rep.uncertified == 0
    X = _feasible_points(seed)
    assert len(X) > 20
    V = _columns(h, X)
    for hd, b0 in zip(registered_handles(h), before):
        b = hd.bounds
        assert b.method.endswith("+obbt")
        xin = V[:, hd.input_cols]
        for l, z in enumerate(hd.net.preactivations(xin)):
            assert np.all(z >= b.lower[l]) and np.all(z <= b.upper[l]), (hd.name, l)
            # never looser than the bounds it started from
            assert np.all(b.lower[l] >= b0.lower[l]) and np.all(b.upper[l] <= b0.upper[l])
    M = model_arrays(h)
    # every sampled point satisfies the rewritten rows and column bounds (fixed binaries too):
    # the rows as written (HiGHS drops weights below 1e-9, which a forward pass does not)
    M.A = obbt._as_written(M.A, registered_handles(h))
    assert max(violation(M, v) for v in V) <= 1e-12


def test_it_tightens_big_ms_and_fixes_stable_binaries_on_a_constrained_model():
    h, x, nets = _model(3, chained=True, budget=-1.5)  # a budget that leaves a corner of the box
    hd = registered_handles(h)[0]
    b0 = hd.bounds
    rep = tighten(h, time_limit=30)
    assert rep.max_bigm[1] < rep.max_bigm[0]
    assert rep.stabilised > 0 and rep.binaries[1] < rep.binaries[0]
    lp = h.getLp()
    lo, hi = np.asarray(lp.col_lower_), np.asarray(lp.col_upper_)
    for l, (bc, pc) in enumerate(zip(hd.binary_cols, hd.pre_cols)):
        for i in np.flatnonzero(bc >= 0):
            lb, ub = hd.bounds.lower[l][i], hd.bounds.upper[l][i]
            if lb >= 0 or ub <= 0:  # proven stable: binary fixed on its side
                assert lo[bc[i]] == hi[bc[i]] == (1.0 if lb >= 0 else 0.0)
            else:  # its big-M rows carry the new bounds
                r2, r3 = hd.bigm_rows[l][i]
                M = model_arrays(h)
                L, U = min(lb, -obbt.BIGM_FLOOR), max(ub, obbt.BIGM_FLOOR)
                assert M.A[r2, bc[i]] == -L and M.row_hi[r2] == -L and M.A[r3, bc[i]] == -U
            assert (lo[pc[i]], hi[pc[i]]) == (lb, ub)
    assert sum(int(hd.bounds.unstable(l).sum()) for l in range(2)) < sum(
        int(b0.unstable(l).sum()) for l in range(2))


def _optimum(h):
    tighten_tolerances(h, 1e-9)
    s = solve(h, mip_gap=0, mip_abs_gap=0)
    assert s.status == "OPTIMAL"
    return s.objective


@pytest.mark.parametrize("seed,chained", [(1, False), (2, True)])
def test_the_optimum_is_unchanged_and_no_sampled_point_beats_it(seed, chained):
    h0, _, _ = _model(seed, chained)
    h1, _, _ = _model(seed, chained)
    assert tighten(h1, time_limit=30).status == "TIGHTENED"
    v0, v1 = _optimum(h0), _optimum(h1)
    assert v1 == pytest.approx(v0, rel=1e-7, abs=1e-7)
    # the optimum is at least as good as every sampled feasible point (a brute force)
    sense_max = h1.getObjectiveSense()[1] == highspy.ObjSense.kMaximize
    X = _feasible_points(seed, n=4000)
    ys = X
    for hd in registered_handles(h1):
        ys = hd.net.forward(ys)
    best = ys[:, 0].max() if sense_max else ys[:, 0].min()
    assert (v1 >= best - 1e-7) if sense_max else (v1 <= best + 1e-7)


def test_the_certificate_holds_for_any_multipliers():
    h, x, nets = _model(4, chained=True)
    M = obbt._Model(h, registered_handles(h))
    hd = registered_handles(h)[0]
    col = int(hd.output_cols[0])
    V = _columns(h, _feasible_points(4))
    lp = M.lp
    lp.changeColCost(col, 1.0)
    lp.run()
    assert lp.getModelStatus() == highspy.HighsModelStatus.kOptimal
    opt = lp.getInfo().objective_function_value
    y = np.asarray(lp.getSolution().row_dual)
    exact = M.safe(y, [col], [1.0])
    assert exact <= opt and exact == pytest.approx(opt, abs=1e-7)
    # the C++ safe_lower_bound (bounds.lp's) on the same data agrees
    A = M.A
    c = np.zeros(A.shape[1])
    c[col] = 1.0
    cpp = kernels.safe_lower_bound(c.tolist(), M.col_lo.tolist(), M.col_hi.tolist(), M.row_lo.tolist(),
                                   M.row_hi.tolist(), A.indptr.tolist(), A.indices.tolist(),
                                   A.data.tolist(), y)
    assert exact == pytest.approx(cpp, abs=1e-9)
    rng = np.random.default_rng(0)
    for scale in (1e-6, 1e-2, 1.0, 10.0):
        yp = y + rng.normal(size=y.size) * scale * max(1.0, np.abs(y).max())
        v = M.safe(yp, [col], [1.0])
        assert v <= opt + 1e-12 and v <= V[:, col].min()
    # the wrong sign everywhere: still a valid (if useless) bound
    assert M.safe(-y, [col], [1.0]) <= opt


def test_an_infeasible_model_is_reported_with_a_checked_certificate_and_left_as_it_was():
    h, x, nets = _model(6, chained=False)
    h.addConstr(x[0] + x[1] >= 2.5)  # the box allows 2; with the budget row, nothing
    hd = registered_handles(h)[0]
    b0 = hd.bounds
    before = h.getLp()
    rep = tighten(h, time_limit=30)
    assert rep.status == "INFEASIBLE" and rep.stop == "infeasible"
    assert "INFEASIBLE" in str(rep)
    M = model_arrays(h)
    # the certificate, checked independently by the C++ kernel: its bound of 0 is > 0
    y = rep.certificate
    v = kernels.safe_lower_bound([0.0] * M.A.shape[1], M.col_lo.tolist(), M.col_hi.tolist(),
                                 M.row_lo.tolist(), M.row_hi.tolist(), M.A.indptr.tolist(),
                                 M.A.indices.tolist(), M.A.data.tolist(), y)
    assert v > 0 and rep.farkas_bound > 0
    after = h.getLp()
    assert hd.bounds is b0
    np.testing.assert_array_equal(before.col_lower_, after.col_lower_)
    np.testing.assert_array_equal(before.col_upper_, after.col_upper_)
    np.testing.assert_array_equal(before.a_matrix_.value_, after.a_matrix_.value_)
    assert solve(h).status == "INFEASIBLE"


def test_solve_with_tighten_keeps_the_optimum_and_reports_the_tightening():
    """solve(tighten=True) on a chained model (HiGHS' path): the optimum of the untightened
    model and of a sampled brute force, with the report; an infeasible model: INFEASIBLE
    from the relaxation's checked certificate, HiGHS not run."""
    h0, _, _ = _model(2, chained=True)
    h1, _, _ = _model(2, chained=True)
    s0 = solve(h0, mip_gap=0, mip_abs_gap=1e-9)
    s1 = solve(h1, mip_gap=0, mip_abs_gap=1e-9, tighten=True)
    assert s0.tighten_report is None and s1.solver == "highs"
    assert s1.tighten_report.status == "TIGHTENED" and s1.tighten_report.lps > 0
    assert s1.status == "OPTIMAL" and s1.objective == pytest.approx(s0.objective, rel=1e-7, abs=1e-7)
    ys = _feasible_points(2, n=4000)
    for hd in registered_handles(h1):
        ys = hd.net.forward(ys)
    sense_max = h1.getObjectiveSense()[1] == highspy.ObjSense.kMaximize
    assert (s1.objective >= ys.max() - 1e-7) if sense_max else (s1.objective <= ys.min() + 1e-7)
    h, x, _ = _model(6, chained=True)  # two networks: HiGHS' path
    h.addConstr(x[0] + x[1] >= 2.5)
    s = solve(h, tighten=True)
    assert s.status == "INFEASIBLE" and not s.has_solution and s.nodes == 0
    assert s.certificate is s.tighten_report and s.certificate.farkas_bound > 0


def test_get_error_reads_solves_answer_whoever_found_it():
    """After emlpress' own search answered (HiGHS never ran: it has no solution), get_error()
    without an argument measures that answer against the forward pass."""
    h, x, _ = _model(1, chained=False)
    s = solve(h, mip_gap=0, mip_abs_gap=1e-9)
    assert s.solver == "emlpress-bab" and s.has_solution
    assert h.getInfo().primal_solution_status != 2  # HiGHS' own solution is not there
    hd = registered_handles(h)[0]
    err = hd.get_error()
    np.testing.assert_array_equal(err, hd.get_error(s))
    assert err.shape == (2,) and err.max() <= 1e-9 * max(1.0, np.abs(s.outputs["A"]).max())


def test_bad_arguments_are_refused_naming_them():
    h, x, nets = _model(0, chained=False)
    with pytest.raises(ValueError, match="rounds"):
        tighten(h, rounds=0)
    with pytest.raises(ValueError, match="time_limit"):
        tighten(h, time_limit=-1)
    other, _, _ = _model(1, chained=False)
    with pytest.raises(ValueError, match="handles: 'A' is not a network added to this model"):
        tighten(h, handles=registered_handles(other))


@pytest.mark.parametrize("bounding,reach_max", [("obbt", None), ("reachable+obbt", 10)])
def test_epidemics_obbt_bounding_keeps_the_enumerated_optimum(bounding, reach_max):
    """The planning MILP bounded week by week over the model so far (and tightened whole)
    has the optimum of an enumeration of every schedule through the network (reach_max=10:
    the second week's bounds are on boxes, tightened over the first week)."""
    from test_epidemics import _chain, _enumerate, _surrogate_network

    from emlpress.data import sir
    from emlpress.pipelines.epidemics import plan

    inst = sir.Instance(weeks=2, budget=6.0)
    net = _surrogate_network(1)
    p = plan(inst, net, mip_gap=0, simulate=False, bounding=bounding, start=False,
             reach_max=reach_max)
    assert p.status == "OPTIMAL"
    assert p.predicted_s == pytest.approx(_enumerate(net, inst), abs=1e-7)
    np.testing.assert_allclose(p.predicted[-1], _chain(net, inst, p.schedule), atol=1e-7)
    assert p.tightening and p.tightening[-1].status == "TIGHTENED" and p.tightening[-1].lps > 0
    # obbt: week 1's inputs bounded over week 0 (6 LPs); reachable+obbt: week 1's boxes
    assert len(p.tightening) == 2
    tightened = p.handles if bounding == "obbt" else p.handles[1:]  # week 0: exact on points
    assert all(hd.bounds.method.endswith("+obbt") for hd in tightened)


def test_epidemics_rows_that_leave_no_schedule_give_infeasible_and_no_plan():
    from emlpress.data import sir
    from emlpress.pipelines.epidemics import plan
    from test_epidemics import _surrogate_network

    def over_budget(h, weeks):  # transport closed both weeks costs more than the budget
        for wk in weeks:
            h.addConstr(wk["npis"][0] >= 1)

    inst = sir.Instance(weeks=2, budget=0.5)
    p = plan(inst, _surrogate_network(0), simulate=False, bounding="obbt", constraints=over_budget)
    assert p.status == "INFEASIBLE" and p.schedule is None and "INFEASIBLE" in p.message
    rep = p.tightening[-1]
    assert rep.status == "INFEASIBLE" and rep.farkas_bound > 0


def test_rows_changed_behind_the_handles_back_are_refused():
    h, x, nets = _model(0, chained=False)
    hd = registered_handles(h)[0]
    first = hd.row_block[0]
    col = int(hd.row_block[2][0])
    h.changeCoeff(first, col, 123.0)  # the first unit's row no longer the network's
    with pytest.raises(ValueError, match="network 'A': its rows in the model are not those add_network wrote"):
        tighten(h)


def test_epidemics_obbt_bounding_beyond_what_highs_takes_is_not_applicable():
    """A network whose I' is 30 I + 10 (beta - 0.205) - 0.3 (through two unstable units): its
    range grows thirtyfold a week around 0, and by week 11 the big-Ms pass 1e15, which HiGHS
    refuses; the obbt bounding says it cannot apply (the run records that), naming the week."""
    import warnings

    from emlpress.data import sir
    from emlpress.pipelines.epidemics import NotApplicable, plan

    c = 10.0
    W0 = np.array([[0.0, 30.0, 0.0, c], [0.0, -30.0, 0.0, -c]])
    b0 = np.array([-0.3 - c * 0.205, 0.3 + c * 0.205])
    W1 = np.array([[0.0, 0.0], [1.0, -1.0], [0.0, 0.0]])
    net = Network([W0, W1], [b0, np.array([0.99, 0.0, 0.0])])
    with warnings.catch_warnings(), pytest.raises(NotApplicable, match=r"week\d+: bounds up to .*obbt"):
        warnings.simplefilter("ignore", RuntimeWarning)  # add_network's conditioning warnings
        plan(sir.Instance(weeks=12, budget=80.0), net, simulate=False, bounding="obbt", start=False)


def test_a_partition_encoded_network_keeps_its_hidden_rows_and_its_optimum():
    """tighten rewrites big-M rows only: a network of formulation="partition" has its outputs
    tightened, its hidden units' bounds and rows left as they are, and the same optimum."""
    def build():
        h = _highs.highs()
        x = h.addVariables(3, lb=[-1.0] * 3, ub=[1.0] * 3)
        h.addConstr(x[0] + x[1] + x[2] <= 0.3)
        nn = add_network(h, _net([3, 10, 10, 2], 8), x, name="P", formulation="partition")
        h.setObjective(nn.outputs[1], sense=highspy.ObjSense.kMaximize)
        return h, nn

    h0, _ = build()
    h1, nn = build()
    b0 = nn.bounds
    assert tighten(h1, time_limit=30).status == "TIGHTENED"
    for l in range(2):
        np.testing.assert_array_equal(nn.bounds.lower[l], b0.lower[l])
        np.testing.assert_array_equal(nn.bounds.upper[l], b0.upper[l])
    assert np.all(nn.bounds.upper[-1] <= b0.upper[-1]) and np.any(nn.bounds.upper[-1] < b0.upper[-1])
    assert _optimum(h1) == pytest.approx(_optimum(h0), rel=1e-7, abs=1e-7)
