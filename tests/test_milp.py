"""MILP embedding: optima equal independently computed extremes, compressed == original,
integer inputs, chains, statuses, verification and bad input."""

import highspy
import numpy as np
import pytest

from emlpress import Network, bounds
from emlpress.bounds import Bounds
from emlpress.compress import lossless
from emlpress.milp import add_network, solve
from reference import true_extremes

MAX = highspy.ObjSense.kMaximize
MIN = highspy.ObjSense.kMinimize


def tiny(seed, sizes=(2, 4, 3, 2)):
    rng = np.random.default_rng(seed)
    return Network([rng.normal(size=(o, i)) for i, o in zip(sizes[:-1], sizes[1:])],
                   [rng.normal(size=o) * 0.5 for o in sizes[1:]], -np.ones(sizes[0]), np.ones(sizes[0]))


def optimum(net, k, sense, method="crown", lo=None, hi=None, b=None, integer=False):
    lo = net.lo if lo is None else lo
    hi = net.hi if hi is None else hi
    h = highspy.Highs()
    h.silent()
    x = h.addVariables(net.n_in, lb=list(map(float, lo)), ub=list(map(float, hi)))
    if integer:
        h.changeColsIntegrality(net.n_in, np.arange(net.n_in, dtype=np.int32), np.ones(net.n_in, np.uint8))
    nn = add_network(h, net, x, bounds=b if b is not None else method)
    h.setObjective(nn.outputs[k], sense=sense)
    sol = solve(h, mip_gap=0.0, mip_abs_gap=1e-9)  # the test compares optima at 1e-6
    assert sol.status == "OPTIMAL"
    assert nn.verify(sol) <= 1e-6 * max(1.0, abs(sol.objective))
    return sol, nn


@pytest.mark.parametrize("method", ["interval", "crown", "lp"])
@pytest.mark.parametrize("seed", range(4))
def test_max_and_min_equal_enumerated_extremes(seed, method):
    net = tiny(seed)
    tl, tu = true_extremes(net, net.lo, net.hi, net.n_layers - 1)
    scale = max(1.0, np.abs(tu).max(), np.abs(tl).max())
    for k in range(net.n_out):
        smax, _ = optimum(net, k, MAX, method)
        smin, _ = optimum(net, k, MIN, method)
        assert smax.objective == pytest.approx(tu[k], abs=1e-6 * scale)
        assert smin.objective == pytest.approx(tl[k], abs=1e-6 * scale)
        # the incumbent's outputs are what the network computes at its inputs
        assert net.forward(smax.inputs["nn"])[k] == pytest.approx(smax.objective, abs=1e-6 * scale)


def test_encoding_structure_follows_the_bounds():
    rng = np.random.default_rng(11)
    W0 = rng.normal(size=(6, 2))
    b0 = np.array([10.0, -10.0, 0.1, -0.1, 10.0, 0.0])  # units 0, 4 active; 1 inactive
    W0[5] = 0.0  # zero row, b = 0: inactive
    net = Network([W0, rng.normal(size=(1, 6))], [b0, np.zeros(1)], -np.ones(2), np.ones(2))
    b = bounds.interval(net)
    h = highspy.Highs()
    x = h.addVariables(2, lb=-1, ub=1)
    nn = add_network(h, net, x, bounds=b)
    unstable = b.unstable(0)
    assert nn.n_binaries == int(unstable.sum())
    assert np.all((nn.binary_cols[0] >= 0) == unstable)
    assert np.all((nn.layer_cols[0] < 0) == b.stably_inactive(0))
    nn.print_stats()
    # nonzeros: unit rows only over nonzero weights
    assert nn.n_nonzeros == h.getNumNz()


@pytest.mark.parametrize("seed", range(3))
def test_compressed_network_gives_the_same_optimum(seed):
    rng = np.random.default_rng(200 + seed)
    sizes = [3, 12, 10, 1]
    Ws = [rng.normal(size=(o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=o) * 1.5 for o in sizes[1:]]
    net = Network(Ws, bs, -np.ones(3), np.ones(3))
    small, rep = lossless(net, bounds="lp")
    assert small.n_neurons < net.n_neurons
    for sense in (MAX, MIN):
        a, _ = optimum(net, 0, sense, "lp")
        c, nn = optimum(small, 0, sense, b=rep.bounds)
        assert c.objective == pytest.approx(a.objective, abs=1e-6 * max(1, abs(a.objective)))


def test_integer_inputs_match_grid_enumeration():
    net = tiny(7, (2, 6, 5, 1))
    lo, hi = np.array([-3.0, -2.0]), np.array([3.0, 4.0])
    grid = np.array([[i, j] for i in range(-3, 4) for j in range(-2, 5)], dtype=float)
    vals = net.forward(grid)[:, 0]
    sol, nn = optimum(net, 0, MAX, "crown", lo, hi, integer=True)
    assert sol.objective == pytest.approx(vals.max(), abs=1e-6 * max(1, abs(vals.max())))
    assert np.all(sol.inputs["nn"] == np.round(sol.inputs["nn"]))


def test_chained_networks_equal_their_composition():
    f = tiny(21, (2, 5, 2))
    g = tiny(22, (2, 4, 1))
    # g o f as one network: f's linear output layer multiplied into g's first layer
    comp = Network([f.weights[0], g.weights[0] @ f.weights[1], g.weights[1]],
                   [f.biases[0], g.weights[0] @ f.biases[1] + g.biases[0], g.biases[1]], f.lo, f.hi)
    tl, tu = true_extremes(comp, comp.lo, comp.hi, comp.n_layers - 1)
    for sense, ref in ((MAX, tu[0]), (MIN, tl[0])):
        h = highspy.Highs()
        x = h.addVariables(2, lb=-1, ub=1)
        nf = add_network(h, f, x, name="f")
        ng = add_network(h, g, nf.outputs, name="g")
        h.setObjective(ng.outputs[0], sense=sense)
        sol = solve(h, mip_gap=0.0, mip_abs_gap=1e-9)
        assert sol.status == "OPTIMAL"
        assert sol.objective == pytest.approx(ref, abs=1e-6 * max(1, abs(ref)))
        assert set(sol.outputs) == {"f", "g"}
        np.testing.assert_allclose(sol.inputs["g"], sol.outputs["f"])
        assert max(sol.verify_diff.values()) <= 1e-6


def test_infeasible_model_reports_infeasible():
    net = tiny(3)
    b = bounds.crown(net)
    h = highspy.Highs()
    x = h.addVariables(2, lb=-1, ub=1)
    nn = add_network(h, net, x, bounds=b)
    h.addConstr(nn.outputs[0] >= float(b.upper[-1][0]) + 1.0)  # beyond any reachable value
    sol = solve(h)
    assert sol.status == "INFEASIBLE" and not sol.has_solution
    assert sol.inputs == {} and np.isnan(sol.objective)


def test_time_limit_reports_the_incumbent():
    rng = np.random.default_rng(5)
    sizes = [8, 96, 96, 96, 1]
    net = Network([rng.normal(size=(o, i)) * np.sqrt(2 / i) for i, o in zip(sizes[:-1], sizes[1:])],
                  [rng.normal(size=o) * 0.1 for o in sizes[1:]], -np.ones(8), np.ones(8))
    h = highspy.Highs()
    x = h.addVariables(8, lb=-1, ub=1)
    nn = add_network(h, net, x, bounds="interval")
    h.setObjective(nn.outputs[0], sense=MAX)
    nn.suggest(np.zeros(8))  # HiGHS finds no incumbent of its own this fast
    sol = solve(h, time_limit=0.5)
    assert sol.status == "TIME_LIMIT"
    assert sol.has_solution and sol.gap > 0
    assert sol.best_bound >= sol.objective >= net.forward(np.zeros(8))[0] - 1e-6
    assert nn.verify(sol) <= 1e-6 * max(1.0, abs(sol.objective))


def test_lying_bounds_are_caught_by_verification(monkeypatch):
    net = tiny(9)
    b = bounds.crown(net)
    # claim every first-layer unit stably inactive: the MILP then drops them, which
    # differs from the network wherever some first-layer unit is active
    lie = Bounds((np.full_like(b.lower[0], -2.0), *b.lower[1:]),
                 (np.full_like(b.upper[0], -1.0), *b.upper[1:]), b.lo, b.hi, "lie")
    h = highspy.Highs()
    x = h.addVariables(2, lb=-1, ub=1)
    # Bounds.check refuses them up front ...
    with pytest.raises(ValueError, match=r"the bounds \(lie\) do not hold for this network: layer 0"):
        add_network(h, net, x, bounds=lie, name="liar")
    # ... and past that check, the forward pass that verifies every solution catches them
    monkeypatch.setattr(Bounds, "check", lambda self, net, lo=None, hi=None: None)
    h = highspy.Highs()
    x = h.addVariables(2, lb=-1, ub=1)
    add_network(h, net, x, bounds=lie, name="liar")
    h.addConstr(x[0] == 1.0)
    h.addConstr(x[1] == 1.0)
    assert (net.preactivations(np.array([[1.0, 1.0]]))[0][0] > 0).any()
    with pytest.warns(RuntimeWarning, match="network 'liar'.*differ"):
        sol = solve(h)
    assert sol.verify_diff["liar"] > 1e-6


def test_bad_inputs():
    net = tiny(1)
    h = highspy.Highs()
    x = h.addVariables(2, lb=[-1.0, -np.inf], ub=[1.0, 1.0])
    with pytest.raises(ValueError, match=r"input 1 \(column 1\).*finite"):
        add_network(h, net, x)
    h = highspy.Highs()
    x = h.addVariables(2, lb=-2, ub=2)
    with pytest.raises(ValueError, match="bounds hold on"):
        add_network(h, net, x, bounds=bounds.crown(net))  # computed on [-1, 1]^2
    with pytest.raises(ValueError, match="takes 2 inputs, got 1"):
        add_network(h, net, [x[0]])
    with pytest.raises(ValueError, match="column 7 does not exist"):
        add_network(h, net, [0, 7])
    add_network(h, net, [0, 1], name="a")
    with pytest.raises(ValueError, match="already in this model"):
        add_network(h, net, [0, 1], name="a")
    for kw, match in [({"time_limit": -1}, "time_limit must be > 0"), ({"mip_gap": -0.1}, "mip_gap must be"),
                      ({"mip_gap": float("inf")}, "mip_gap must be"), ({"mip_gap": None}, "HiGHS' defaults"),
                      ({"mip_abs_gap": -1.0}, "mip_abs_gap must be"), ({"threads": 0}, "threads must be")]:
        with pytest.raises(ValueError, match=match):
            solve(h, **kw)


def test_nearly_constant_network_is_not_declared_infeasible():
    """A network whose output varies by ~1e-9 around 2.6e3 (like the over-regularised
    trained benchmark network): HiGHS' presolve alone called it infeasible."""
    rng = np.random.default_rng(12)
    sizes = [2, 64, 64, 1]
    Ws = [rng.normal(size=(o, i)) * 1e-6 for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=64) * 1e-2, np.abs(rng.normal(size=64)) * 1e-2, np.array([2600.0])]
    Ws[-1] = rng.normal(size=(1, 64)) * 20.0
    net = Network(Ws, bs, -np.ones(2), np.ones(2))
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", RuntimeWarning)
        sol, nn = optimum(net, 0, MAX, "crown")
    X = np.random.default_rng(0).uniform(-1, 1, (20000, 2))
    assert sol.objective >= net.forward(X).max() - 1e-6 * 2600


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_start_from_the_forward_pass_is_what_the_milp_computes_there(seed):
    """handle.start_values(x) gives every variable of the encoding; with the inputs fixed at
    x the MILP's only solution has those values (phases where the pre-activation is not 0)."""
    rng = np.random.default_rng(seed)
    net = Network([rng.normal(size=(10, 3)), rng.normal(size=(8, 10)), rng.normal(size=(2, 8))],
                  [rng.normal(size=10) * 0.5, rng.normal(size=8) * 0.5, np.zeros(2)])
    x = rng.uniform(-1, 1, size=3)
    h = highspy.Highs()
    xs = [h.addVariable(lb=-1.0, ub=1.0) for _ in range(3)]
    hd = add_network(h, net, xs)
    cols, vals = hd.start_values(x)
    assert len(set(cols.tolist())) == cols.size == hd.n_vars + 3  # every variable, once
    h.changeColsBounds(3, np.array([v.index for v in xs], np.int32), x, x)
    h.setObjective(hd.outputs[0], sense=MAX)
    sol = solve(h, mip_gap=0)
    assert sol.status == "OPTIMAL"
    got = np.asarray(sol.col_values)[cols]
    np.testing.assert_allclose(got, vals, rtol=0, atol=1e-6)
    # and HiGHS takes it as a start: the MILP solved from it ends at the same optimum
    h2 = highspy.Highs()
    xs2 = [h2.addVariable(lb=-1.0, ub=1.0) for _ in range(3)]
    hd2 = add_network(h2, net, xs2)
    h2.setObjective(hd2.outputs[0], sense=MAX)
    ref = solve(h2, mip_gap=0).objective
    h2.clearSolver()
    hd2.suggest(x)
    assert solve(h2, mip_gap=0).objective == pytest.approx(ref, abs=1e-7)
