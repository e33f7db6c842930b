"""solve() never reports an answer its own check fails (issue 39): HiGHS' tolerances let a
big-M encoding move, so every answer is verified against the models' own evaluation and
repaired, or reported NUMERICAL; compression reports the coefficients it creates."""

import warnings

import highspy
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emlpress import Network, bounds
from emlpress.bounds import Bounds
from emlpress.bounds.conditioning import integrality_error
from emlpress.compress import lossless
from emlpress.milp import add_network, solve
from emlpress.milp.solution import _verified_status
from strategies import sample_box

MAX = highspy.ObjSense.kMaximize
MIN = highspy.ObjSense.kMinimize


def steep_unit_model(start_binary=1e-5, start_output=0.1):
    """max relu(1e4 x) over x in [-1, 0]: the optimum is 0, but with HiGHS' integrality
    tolerance at 1e-4 a binary of 1e-5 lets the unit's output reach 1e4 * 1e-5 = 0.1. That
    point is given to HiGHS as a MIP start; it accepts it as feasible, prunes every node
    against it and calls 0.1 optimal."""
    net = Network([np.array([[1e4]]), np.array([[1.0]])], [np.zeros(1), np.zeros(1)],
                  -np.ones(1), np.ones(1))
    h = highspy.Highs()
    h.silent()
    x = h.addVariables(1, lb=[-1.0], ub=[1.0])
    nn = add_network(h, net, x, bounds="interval")
    h.addConstr(x[0] <= 0)
    h.setObjective(nn.outputs[0], sense=MAX)
    h.setOptionValue("presolve", "off")
    h.setOptionValue("mip_feasibility_tolerance", 1e-4)
    v = np.zeros(h.getNumCol())
    v[nn.binary_cols[0][0]] = start_binary
    v[nn.layer_cols[0][0]] = start_output
    v[nn.layer_cols[1][0]] = start_output
    h.setSolution(v.size, np.arange(v.size, dtype=np.int32), v)
    return net, h, nn


def test_a_loose_tolerance_optimum_is_repaired_to_the_forward_pass():
    net, h, nn = steep_unit_model()
    with pytest.warns(RuntimeWarning, match=r"network 'nn' by 0\.1 .*not verified.*repaired by"):
        # HiGHS' own answer from the loose start (not emlpress' search nor its start), repaired
        sol = solve(h, mip_gap=0.0, solver="highs", start=None)
    # HiGHS' own answer was 0.1, which the network never computes for x <= 0
    assert sol.mismatch == pytest.approx(0.1)
    assert sol.repaired
    x = sol.inputs["nn"]
    assert x[0] <= 0
    assert sol.objective == net.forward(x[None, :])[0, 0] == 0.0
    assert sol.outputs["nn"][0] == 0.0 and sol.verify_diff["nn"] == 0.0
    # OPTIMAL only with the bound within the gap of the verified objective
    if sol.status == "OPTIMAL":
        assert abs(sol.best_bound - sol.objective) <= 1e-6
    else:
        assert sol.status == "FEASIBLE" and sol.best_bound >= sol.objective
    # the user's tolerance is restored after the tight re-solve
    assert h.getOptionValue("mip_feasibility_tolerance")[1] == pytest.approx(1e-4)


def test_without_time_for_a_resolve_the_status_says_the_bound_is_not_proven(monkeypatch):
    # no step 3 (as when the time limit is spent): the verified 0 stands against HiGHS' 0.1
    import emlpress.milp.solution as M

    net, h, nn = steep_unit_model()
    real = M._repair

    def no_resolve(h, arrays, handles, raw, status, best, nodes, sense_max, mip_gap, mip_abs_gap,
                   tl, t0, tol, lp_tol):
        # the whole time limit already spent when the repair starts
        return real(h, arrays, handles, raw, status, best, nodes, sense_max, mip_gap,
                    mip_abs_gap, 0.0, t0, tol, lp_tol)

    monkeypatch.setattr(M, "_repair", no_resolve)
    with pytest.warns(RuntimeWarning, match="status FEASIBLE"):
        sol = solve(h, mip_gap=0.0, solver="highs", start=None)
    assert sol.status == "FEASIBLE"
    assert sol.objective == 0.0 and sol.best_bound == pytest.approx(0.1)
    assert sol.gap == np.inf  # relative gap at objective 0


@pytest.mark.parametrize("sense_max", [True, False])
def test_verified_status_rule(sense_max):
    s = 1.0 if sense_max else -1.0
    # within the relative or the absolute gap: OPTIMAL
    assert _verified_status("OPTIMAL", s * 10.0, s * 10.0005, sense_max, 1e-4, 1e-6)[0] == "OPTIMAL"
    assert _verified_status("OPTIMAL", 0.0, s * 5e-7, sense_max, 0.0, 1e-6)[0] == "OPTIMAL"
    # beyond both: FEASIBLE, the bound kept and the gap reported
    st_, best, gap = _verified_status("OPTIMAL", s * 10.0, s * 10.1, sense_max, 1e-4, 1e-6)
    assert (st_, best) == ("FEASIBLE", s * 10.1) and gap == pytest.approx(0.01)
    # a time limit stays a time limit
    assert _verified_status("TIME_LIMIT", s * 10.0, s * 10.0, sense_max, 1e-4, 1e-6)[0] == "TIME_LIMIT"
    # a verified point beyond the bound proves the bound wrong: dropped
    with pytest.warns(RuntimeWarning, match="bound is dropped"):
        st_, best, _ = _verified_status("OPTIMAL", s * 11.0, s * 10.0, sense_max, 1e-4, 1e-6)
    assert st_ == "FEASIBLE" and best == s * np.inf


def test_an_encoding_that_cannot_be_verified_is_numerical(monkeypatch):
    rng = np.random.default_rng(9)
    net = Network([rng.normal(size=(4, 2)), rng.normal(size=(3, 4)), rng.normal(size=(2, 3))],
                  [rng.normal(size=4) * 0.5, rng.normal(size=3) * 0.5, rng.normal(size=2) * 0.5],
                  -np.ones(2), np.ones(2))
    b = bounds.crown(net)
    # bounds that claim every first-layer unit inactive: the MILP computes another function
    lie = Bounds((np.full_like(b.lower[0], -2.0), *b.lower[1:]),
                 (np.full_like(b.upper[0], -1.0), *b.upper[1:]), b.lo, b.hi, "lie")
    monkeypatch.setattr(Bounds, "check", lambda self, net, lo=None, hi=None: None)
    h = highspy.Highs()
    h.silent()
    x = h.addVariables(2, lb=-1, ub=1)
    nn = add_network(h, net, x, bounds=lie, name="liar")
    h.addConstr(x[0] == 1.0)
    h.addConstr(x[1] == 1.0)
    h.setObjective(nn.outputs[0], sense=MAX)
    with pytest.warns(RuntimeWarning, match="network 'liar'.*no verified point.*NUMERICAL"):
        sol = solve(h, solver="highs")
    assert sol.status == "NUMERICAL" and not sol.has_solution
    assert np.isnan(sol.objective)
    assert sol.mismatch > 1e-6 and sol.verify_diff["liar"] > 1e-6


def folding_network(seed, width=24):
    """A 2-input network whose first layer has many stably active units, each beyond the
    second linearly dependent on the first two, which are nearly parallel: folding writes
    combination coefficients of ~1e3 into the next layer (as the study-shape networks'
    folding did, issue 39). A third of the first layer is unstable; the deeper layers are
    trained-looking (tiny weights beside O(1) ones). The dependent rows are half as large as
    the first two, so the rank test (largest rows first) keeps those two."""
    rng = np.random.default_rng(seed)
    base, d = rng.normal(size=2), rng.normal(size=2)
    t = np.concatenate([[0.0, 1e-3], rng.uniform(-1, 1, width - 2)])
    W0 = (base + t[:, None] * d) * 0.2
    W0[2:] *= 0.5
    b0 = np.full(width, 3.0)  # active on [-1, 1]^2
    n_u = width // 3
    W0[-n_u:] = rng.normal(size=(n_u, 2))
    b0[-n_u:] = rng.normal(size=n_u) * 0.3
    W1 = rng.normal(size=(8, width)) / np.sqrt(width)
    W1[rng.random(W1.shape) < 0.3] *= 1e-5
    W2 = rng.normal(size=(1, 8))
    return Network([W0, W1, W2], [b0, rng.normal(size=8) * 0.3, np.zeros(1)], -np.ones(2), np.ones(2))


def test_lossless_reports_the_weights_folding_creates_and_can_keep_the_layer():
    net = folding_network(3)
    b = bounds.lp(net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small, rep = lossless(net, bounds=b)
    assert rep.layers.loc[0, "folded_dependent"] > 0
    grown = float(np.abs(small.weights[1]).max())
    assert rep.layers.loc[0, "max_abs_weight"] == grown
    assert rep.max_weight_after == max(float(np.abs(W).max()) for W in small.weights)
    assert rep.max_weight_before == max(float(np.abs(W).max()) for W in net.weights)
    assert grown > 10 * rep.max_weight_before  # what makes the MILP less exact
    e_after = integrality_error(small, rep.bounds)[0].max()
    assert rep.tolerance_error_after == pytest.approx(e_after)
    assert rep.tolerance_error_after > rep.tolerance_error_before
    # with a cap, the layer is kept (no folding), the network is still exact and smaller
    # coefficients reach the MILP
    kept, rep2 = lossless(net, bounds=b, max_coefficient=10.0)
    assert bool(rep2.layers.loc[0, "kept_for_conditioning"])
    assert rep2.layers.loc[0, "folded_dependent"] == 0
    assert float(np.abs(kept.weights[1]).max()) <= max(10.0, float(np.abs(net.weights[1]).max()))
    X = sample_box(net.lo, net.hi, 20_000, 0)
    assert np.max(np.abs(kept.forward(X) - net.forward(X))) <= 1e-9 * max(1.0, np.abs(net.forward(X)).max())
    assert kept.n_params > small.n_params
    with pytest.raises(ValueError, match="max_coefficient"):
        lossless(net, bounds=b, max_coefficient=-1.0)


def test_add_network_warns_of_unrepresentable_coefficients():
    net = Network([np.array([[1e10], [1.0]]), np.array([[1.0, 1.0]])], [np.zeros(2), np.zeros(1)],
                  -np.ones(1), np.ones(1))
    h = highspy.Highs()
    h.silent()
    x = h.addVariables(1, lb=[-1.0], ub=[1.0])
    with pytest.warns(RuntimeWarning, match=r"network 'big', layer 0: weights up to 1e\+10"):
        add_network(h, net, x, bounds="interval", name="big")


def _optimum(net, b, sense):
    h = highspy.Highs()
    h.silent()
    x = h.addVariables(net.n_in, lb=list(map(float, net.lo)), ub=list(map(float, net.hi)))
    nn = add_network(h, net, x, bounds=b)
    h.setObjective(nn.outputs[0], sense=sense)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # conditioning warnings: verified below
        sol = solve(h, mip_gap=0.0, mip_abs_gap=1e-9)
    return sol


METHODS = {
    "interval": lambda net: bounds.interval(net),
    "crown": lambda net: bounds.crown(net),
    "lp": lambda net: bounds.lp(net, threads=1),
    "milp": lambda net: bounds.milp(net, threads=1, time_limit=5.0),
    "stability": lambda net: bounds.stability(net, time_limit=5.0),
}


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31), width=st.sampled_from([12, 24, 40]))
def test_compressed_optima_equal_the_forward_pass_and_the_original(seed, width):
    """For every bound method: compress, solve max and min at mip_gap 0; the reported optimum
    is the forward pass of the original at the returned input (1e-6 relative), equals the
    uncompressed network's MILP optimum, and no sampled input beats it."""
    net = folding_network(seed, width)
    X = sample_box(net.lo, net.hi, 20_000, seed)
    samples = net.forward(X)[:, 0]
    ref = {MAX: _optimum(net, "crown", MAX), MIN: _optimum(net, "crown", MIN)}
    for method, fn in METHODS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            small, rep = lossless(net, bounds=fn(net))
        for sense in (MAX, MIN):
            sol = _optimum(small, rep.bounds, sense)
            assert sol.status == "OPTIMAL", (method, sense, sol)
            scale = max(1.0, abs(sol.objective))
            f = net.forward(sol.inputs["nn"][None, :])[0, 0]
            assert abs(sol.objective - f) <= 1e-6 * scale, (method, sense, sol.objective, f)
            assert abs(sol.objective - ref[sense].objective) <= 1e-6 * scale, (method, sense)
            if sense == MAX:
                assert samples.max() <= sol.objective + 1e-6 * scale
            else:
                assert samples.min() >= sol.objective - 1e-6 * scale
