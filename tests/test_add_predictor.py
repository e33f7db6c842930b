"""add_predictor: every registered kind gives the MILP optimum of its typed add_* function;
an unknown model is refused naming its type and the registered kinds; a kind a user
registers is embedded and verified by solve like the built-in ones."""

import doctest
import itertools
from dataclasses import dataclass, field

import highspy
import numpy as np
import pytest

from emlpress import Network
from emlpress._highs import highs
from emlpress.milp import (NetworkHandle, PredictorHandle, QuantizedHandle, TreeHandle, add_network,
                           add_predictor, add_quantized_network, add_tree, register_predictor,
                           registered_handles, registered_predictors, solve)
from emlpress.milp import registry
from emlpress.testing import trained_like

MAX = highspy.ObjSense.kMaximize
MIN = highspy.ObjSense.kMinimize


@pytest.fixture
def own_registry(monkeypatch):
    """The registry as it is, restored after the test."""
    monkeypatch.setattr(registry, "_ENTRIES", list(registry._ENTRIES))


def _optimum(add, model, lo, hi, k, sense, **options):
    """(status, objective, handle) of optimising output k of ``model`` over the box."""
    h = highs()
    x = h.addVariables(len(lo), lb=list(map(float, lo)), ub=list(map(float, hi)))
    hd = add(h, model, x, **options)
    h.setObjective(hd.outputs[k], sense=sense)
    sol = solve(h, mip_gap=0, mip_abs_gap=0)
    return sol.status, sol.objective, hd


def _same_optima(typed_add, model, lo, hi, n_out, handle_type, **options):
    for k, sense in itertools.product(range(n_out), (MAX, MIN)):
        st1, ob1, hd1 = _optimum(typed_add, model, lo, hi, k, sense, **options)
        st2, ob2, hd2 = _optimum(add_predictor, model, lo, hi, k, sense, **options)
        assert type(hd2) is handle_type and isinstance(hd2, PredictorHandle)
        assert st1 == st2 == "OPTIMAL"
        assert ob2 == pytest.approx(ob1, abs=1e-9)
        assert hd2.n_vars == hd1.n_vars and hd2.n_binaries == hd1.n_binaries


def test_a_network_gives_add_networks_optimum_options_passed_on():
    net = trained_like([3, 8, 6, 2], seed=0)
    # the options (bounds=, name=) reach add_network: the encodings match in size
    _same_optima(add_network, net, net.lo, net.hi, 2, NetworkHandle, bounds="lp", name="f")


def test_a_tree_gives_add_trees_optimum():
    sklearn_tree = pytest.importorskip("sklearn.tree")
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (300, 3))
    Y = np.column_stack([np.sin(X @ rng.normal(size=3)), X[:, 0] * X[:, 1]])
    tree = sklearn_tree.DecisionTreeRegressor(max_depth=4, random_state=1).fit(X, Y)
    _same_optima(add_tree, tree, -np.ones(3), np.ones(3), 2, TreeHandle)


def test_an_int8_model_gives_add_quantized_networks_optimum():
    pytest.importorskip("tf_keras")
    pytest.importorskip("ai_edge_litert")
    from emlpress.compress import lossy
    from emlpress.io.tflite import QuantizedNetwork

    net = trained_like([2, 8, 2], seed=2)
    X = np.random.default_rng(2).uniform(-1, 1, (300, 2))
    q = QuantizedNetwork.from_tflite(lossy.quantize(net, "int8", representative=X))
    _same_optima(add_quantized_network, q, np.array([-0.8, -0.6]), np.array([0.9, 0.7]), 1,
                 QuantizedHandle, bounds="interval")


def test_an_unknown_model_is_refused_naming_its_type_and_the_registered_kinds():
    class Mystery:
        pass

    h = highs()
    x = h.addVariables(2, lb=0.0, ub=1.0)
    with pytest.raises(TypeError, match="Mystery") as err:
        add_predictor(h, Mystery(), x)
    for kind in ("Network", "QuantizedNetwork", "decision tree"):
        assert kind in str(err.value)
    assert h.getNumCol() == 2  # nothing added


# --- a kind of model the user registers: y = max(0, w.x + c) -------------------------------


@dataclass
class Hinge:
    w: np.ndarray
    c: float

    def __call__(self, X):
        return np.maximum(0.0, np.atleast_2d(X) @ self.w + self.c)[:, None]  # (n, 1)


@dataclass
class HingeHandle(PredictorHandle):
    name: str
    model: Hinge
    input_cols: np.ndarray
    output_cols: np.ndarray
    encode_s: float
    _h: object = field(repr=False, default=None)

    def predict(self, x):
        return self.model(x)[0]


def add_hinge(h, model, inputs, name="hinge", lie=False):
    """y = max(0, a), a = w.x + c, with a binary d and the range [L, U] of a as big-M;
    ``lie``: the rows hold y = a instead (wrong wherever a < 0)."""
    cols = np.array([v.index for v in inputs], np.int32)
    _, _, _, lo, hi, _ = h.getCols(len(cols), cols)
    w, c = np.asarray(model.w, float), float(model.c)
    L = c + float(np.minimum(w * lo, w * hi).sum())
    U = c + float(np.maximum(w * lo, w * hi).sum())
    y = h.addVariable(lb=min(L, 0.0) if lie else 0.0, ub=max(U, 0.0))
    a = sum(float(wi) * v for wi, v in zip(w, inputs)) + c
    if lie:
        h.addConstr(y == a)
    else:
        d = h.addVariable(lb=0, ub=1, type=highspy.HighsVarType.kInteger)
        h.addConstr(y >= a)
        h.addConstr(y <= a - L * (1 - d))  # d = 1: y <= a
        h.addConstr(y <= U * d)  # d = 0: y <= 0
    return HingeHandle(name, model, cols, np.array([y.index], np.int32), 0.0, h)


def _hinge_problem(model_to_add, sense, **options):
    h = highs()
    x = h.addVariables(3, lb=[-1.0, -2.0, 0.0], ub=[1.0, 1.0, 2.0])
    hd = add_predictor(h, model_to_add, x, **options)
    # objective: the hinge minus a linear term, so the optimum is not at the hinge's max
    h.setObjective(hd.outputs[0] - 0.3 * x[0] + 0.2 * x[2], sense=sense)
    return h, hd


def test_a_user_registered_kind_is_embedded_and_verified_end_to_end(own_registry):
    model = Hinge(np.array([1.0, -0.5, 0.7]), -0.4)
    register_predictor(Hinge, add_hinge)
    assert registered_predictors()[0] == "Hinge"
    corners = np.array(list(itertools.product([-1.0, 1.0], [-2.0, 1.0], [0.0, 2.0])))
    objective = model(corners)[:, 0] - 0.3 * corners[:, 0] + 0.2 * corners[:, 2]
    # the objective is convex: its maximum over the box is at a corner
    h, hd = _hinge_problem(model, MAX, name="mine")
    assert any(g is hd for g in registered_handles(h))  # registered by add_predictor
    sol = solve(h, mip_gap=0, mip_abs_gap=0)
    assert sol.status == "OPTIMAL" and not sol.repaired
    assert sol.objective == pytest.approx(objective.max(), abs=1e-9)
    np.testing.assert_allclose(sol.outputs["mine"], model(sol.inputs["mine"])[0], atol=1e-9)
    assert sol.verify_diff["mine"] <= 1e-9 and hd.verify(sol) <= 1e-9
    assert hd.get_error(sol).shape == (1,) and hd.get_error().max() <= 1e-9  # HiGHS' own too


def test_solve_checks_a_user_registered_kind_against_its_own_evaluation(own_registry):
    """A registered encoding that lies (y = a where the model says max(0, a)): minimising y,
    HiGHS finds a < 0, the model says 0 there, and no point can be rebuilt exactly (the kind
    gives no _exact_columns): NUMERICAL, never the lie as OPTIMAL."""
    register_predictor(lambda m: isinstance(m, dict) and m.get("kind") == "hinge",
                       lambda h, m, x, **o: add_hinge(h, m["model"], x, lie=True, **o), "hinge dicts")
    h, hd = _hinge_problem({"kind": "hinge", "model": Hinge(np.array([1.0, -0.5, 0.7]), -0.4)}, MIN)
    with pytest.warns(RuntimeWarning, match="'hinge'"):
        sol = solve(h, mip_gap=0, mip_abs_gap=0)
    assert sol.status == "NUMERICAL" and not sol.has_solution and np.isnan(sol.objective)
    assert sol.mismatch > 0.1


def test_a_later_registration_overrides_and_bad_ones_are_refused(own_registry):
    net = trained_like([3, 8, 6, 2], seed=3)
    h = highs()
    x = h.addVariables(3, lb=-1.0, ub=1.0)
    register_predictor(Network, lambda h, m, inputs, **o: add_network(h, m, inputs, bounds="lp", **o))
    assert add_predictor(h, net, x).bounds.method == "lp"  # not add_network's default
    with pytest.raises(TypeError, match="add_function"):
        register_predictor(Network, None)
    with pytest.raises(TypeError, match="type_or_predicate"):
        register_predictor(3, add_network)
    register_predictor(Hinge, lambda h, m, inputs, **o: "not a handle")
    with pytest.raises(TypeError, match="not a PredictorHandle"):
        add_predictor(h, Hinge(np.ones(3), 0.0), x)


def test_the_registry_modules_example_runs():
    result = doctest.testmod(registry, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
