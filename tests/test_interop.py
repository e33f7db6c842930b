"""emlpress.interop: emlpress' bounds written onto the networks gurobi-ml (Gurobi) and OMLT
(Pyomo, solved here by HiGHS) embedded. Every written bound is checked against plain-numpy
forward passes of the network as an importer reads it from the framework (not as interop
reads it from the peer); the peer's optimum is the same with and without the bounds (gap 0
set explicitly); bad input is refused with one line before anything is written. Skipped
without the peer (the [peers] extra)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emlpress.testing import trained_like
from strategies import numpy_preactivations, sample_box

gp = pytest.importorskip("gurobipy")
gurobi_ml = pytest.importorskip("gurobi_ml")

from emlpress import interop  # noqa: E402  (after the skips: the module needs no peer to import)

GAP_ABS = 1e-9
# the MLPs train for a few hundred iterations: trained-looking is what the tests need
pytestmark = pytest.mark.filterwarnings("ignore:Stochastic Optimizer")


def _torch_seq(net):
    """An nn.Sequential of float32 Linear/ReLU with the network's weights."""
    torch = pytest.importorskip("torch")
    mods = []
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        lin = torch.nn.Linear(W.shape[1], W.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(W, dtype=torch.float32))
            lin.bias.copy_(torch.tensor(b, dtype=torch.float32))
        mods.append(lin)
        if l < net.n_layers - 1:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def _gurobi(model, lo, hi, n_out=1, **kw):
    """A Gurobi model with input rows on the boxes lo/hi (2-D: one row each) and the
    predictor added; gap 0 and an absolute gap of 1e-9, one thread, silent."""
    m = gp.Model()
    m.Params.OutputFlag = 0
    m.Params.MIPGap = 0.0
    m.Params.MIPGapAbs = GAP_ABS
    m.Params.Threads = 1
    x = m.addMVar(lo.shape, lb=lo, ub=hi, name="x")
    y = m.addMVar((lo.shape[0], n_out), lb=-gp.GRB.INFINITY, name="y")
    pc = gurobi_ml.add_predictor_constr(m, model, x, y, **kw)
    m.update()
    return m, x, y, pc


def _var_bounds(mvar, row):
    v = mvar[row]
    return np.asarray(v.lb, float), np.asarray(v.ub, float)


def _assert_written_sound(pc, net, lo, hi, seed):
    """Every variable bound gurobi-ml's layers now have holds at sampled points of each row's
    box (uniform and corners), pre-activations by numpy from `net`."""
    from gurobi_ml.modeling.neuralnet.layers import ActivationLayer, DenseLayer

    for r in range(lo.shape[0]):
        X = sample_box(lo[r], hi[r], 200, seed + r, max_corners=256)
        zs = numpy_preactivations(net, X)
        k = 0  # the network layer the next gurobi-ml layer belongs to
        for layer in pc.layers:
            if isinstance(layer, DenseLayer):
                pre = layer.mixing if hasattr(layer, "mixing") else layer.output
                checks = [(pre, zs[k])]
                if hasattr(layer, "mixing"):
                    checks.append((layer.output, np.maximum(zs[k], 0.0)))
                k += 1
            else:
                assert isinstance(layer, ActivationLayer)
                checks = [(layer.output, np.maximum(zs[k - 1], 0.0))]
            for var, vals in checks:
                vlo, vhi = _var_bounds(var, r)
                bad = (vals < vlo) | (vals > vhi)
                assert not bad.any(), (f"row {r}, {layer}: value {vals[bad][0]} outside "
                                       f"[{vlo[np.argwhere(bad)[0][1]]}, {vhi[np.argwhere(bad)[0][1]]}]")


def _max_out(m, y, pc):
    m.setObjective(y.sum(), gp.GRB.MAXIMIZE)
    m.optimize()
    assert m.Status == gp.GRB.OPTIMAL, m.Status
    # the peer's answer is checked by the framework's own forward pass
    assert np.max(pc.get_error()) < 1e-5
    return m.ObjVal


def test_gurobi_ml_torch_bounds_sound_and_optimum_unchanged():
    torch = pytest.importorskip("torch")
    from emlpress.io import from_torch

    net = trained_like([3, 16, 16, 1], seed=3)
    seq = _torch_seq(net)
    ref = from_torch(seq)  # the importer's reading, independent of interop's
    lo = np.array([[-1.0, -1.0, -1.0], [0.0, -0.5, 0.2]])
    hi = np.array([[1.0, 1.0, 1.0], [0.5, 0.5, 0.3]])
    m0, _, y0, pc0 = _gurobi(seq, lo, hi)
    before = _max_out(m0, y0, pc0)
    for method in ("crown", "lp"):
        m, x, y, pc = _gurobi(seq, lo, hi)
        t = interop.tighten_gurobi_ml(pc, method=method)
        got = interop.gurobi_ml_network(pc)
        assert all(np.array_equal(a, b) for a, b in zip(got.weights, ref.weights))
        assert all(np.array_equal(a, b) for a, b in zip(got.biases, ref.biases))
        X = sample_box(lo[0], hi[0], 50, 0)
        np.testing.assert_allclose(ref.forward(X), seq(torch.tensor(X, dtype=torch.float32))
                                   .detach().numpy(), rtol=1e-5, atol=1e-5)
        assert t.rows == 2 and t.written > 0 and t.method == method
        _assert_written_sound(pc, ref, lo, hi, seed=1)
        after = _max_out(m, y, pc)
        # gap 0 (absolute 1e-9) on both: the optima agree to the solver's tolerances
        assert after == pytest.approx(before, rel=1e-7, abs=1e-6)


def test_gurobi_ml_mlpregressor_stability_bounds_fix_units():
    from sklearn.datasets import load_diabetes
    from sklearn.neural_network import MLPRegressor

    X, yv = load_diabetes(return_X_y=True)
    mlp = MLPRegressor(hidden_layer_sizes=(12, 12), max_iter=300, random_state=0).fit(X, yv / 100)
    lo = X.min(0)[None] * 0.5
    hi = X.max(0)[None] * 0.5
    m0, _, y0, pc0 = _gurobi(mlp, lo, hi)
    before = _max_out(m0, y0, pc0)
    m, _, y, pc = _gurobi(mlp, lo, hi)
    t = interop.tighten_gurobi_ml(pc, method="stability")
    net = interop.gurobi_ml_network(pc)
    np.testing.assert_allclose(net.forward(X[:20]), mlp.predict(X[:20])[:, None], rtol=1e-9, atol=1e-9)
    _assert_written_sound(pc, net, lo, hi, seed=2)
    # a stably inactive unit's ReLU output is fixed to 0 by its bounds
    b = t.bounds[0]
    dead = np.flatnonzero(b.stably_inactive(0))
    olo, ohi = _var_bounds(pc.layers[0].output, 0)
    assert (olo[dead] == 0).all() and (ohi[dead] == 0).all()
    assert t.summary().loc[0, "hidden"] == 24
    assert _max_out(m, y, pc) == pytest.approx(before, rel=1e-7, abs=1e-6)


def test_gurobi_ml_pipeline_scaler_then_mlp():
    from sklearn.datasets import load_diabetes
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, yv = load_diabetes(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(10, 10), max_iter=300,
                                                        random_state=0)).fit(X, yv / 100)
    lo, hi = X.min(0)[None], X.max(0)[None]
    m0, _, y0, pc0 = _gurobi(pipe, lo, hi)
    before = _max_out(m0, y0, pc0)
    m, _, y, pc = _gurobi(pipe, lo, hi)
    t = interop.tighten_gurobi_ml(pc, method="lp")
    net = interop.gurobi_ml_network(pc)
    np.testing.assert_allclose(net.forward(pipe[0].transform(X[:20])), pipe.predict(X[:20])[:, None],
                               rtol=1e-9, atol=1e-9)
    # the network's box is the scaled box: its bounds hold at scaled samples of the raw box
    S = pipe[0].transform(sample_box(lo[0], hi[0], 200, 9, max_corners=256))
    slo, shi = _var_bounds(pc[0].output, 0)
    assert ((S >= slo) & (S <= shi)).all()
    _assert_written_sound(pc[-1], net, S.min(0)[None], S.max(0)[None], seed=9)
    assert t.written > 0
    assert _max_out(m, y, pc) == pytest.approx(before, rel=1e-7, abs=1e-6)


@settings(max_examples=40)  # each example builds a Gurobi model: 40 keep it to seconds
@given(seed=st.integers(0, 2**31 - 1), depth=st.integers(1, 3), width=st.integers(1, 12),
       n_in=st.integers(1, 4), scale=st.sampled_from([1e-3, 1.0, 1e3]),
       zero=st.sampled_from([0.0, 0.5]))
def test_gurobi_ml_written_bounds_sound_property(seed, depth, width, n_in, scale, zero):
    pytest.importorskip("torch")
    from emlpress.io import from_torch

    rng = np.random.default_rng(seed)
    net = trained_like([n_in] + [width] * depth + [2], seed, zero_weights=zero, exact_zero=zero)
    seq = _torch_seq(net)
    lo = rng.uniform(-1, 1, (1, n_in)) * scale
    hi = lo + rng.uniform(0, 2, (1, n_in)) * scale * (rng.random((1, n_in)) < 0.8)  # some lo == hi
    m, x, y, pc = _gurobi(seq, lo, hi, n_out=2)
    interop.tighten_gurobi_ml(pc, method="crown")
    _assert_written_sound(pc, from_torch(seq), lo, hi, seed)


def test_gurobi_ml_refuses_infinite_input_bound_and_non_relu():
    pytest.importorskip("torch")
    net = trained_like([2, 4, 1], seed=0)
    seq = _torch_seq(net)
    m = gp.Model()
    m.Params.OutputFlag = 0
    x = m.addMVar((1, 2), lb=-1.0, ub=1.0, name="x")
    x[0, 1].ub = gp.GRB.INFINITY
    pc = gurobi_ml.add_predictor_constr(m, seq, x)
    m.update()
    mix = pc.layers[0].output
    before = (_var_bounds(mix, 0), m.NumVars)
    with pytest.raises(ValueError, match=r"input variable 'x\[0,1\]' .* finite box"):
        interop.tighten_gurobi_ml(pc)
    m.update()
    after = (_var_bounds(mix, 0), m.NumVars)
    assert np.array_equal(before[0][0], after[0][0]) and np.array_equal(before[0][1], after[0][1])

    class HalfLinear:  # a user's own activation formulation: not a ReLU emlpress can bound
        def mip_model(self, layer):
            layer.gp_model.addConstr(layer.output == 0.5 * layer.input)

    x[0, 1].ub = 1.0
    m2 = gp.Model()
    m2.Params.OutputFlag = 0
    x2 = m2.addMVar((1, 2), lb=-1.0, ub=1.0)
    pc2 = gurobi_ml.add_predictor_constr(m2, seq, x2, activation_models={"relu": HalfLinear()})
    with pytest.raises(interop.UnsupportedPeerModel, match=r"layer 1 \(ActivationLayer, activation HalfLinear\)"):
        interop.tighten_gurobi_ml(pc2)
    with pytest.raises(ValueError, match="unknown bound method 'nope'"):
        interop.tighten_gurobi_ml(pc, method="nope")
    with pytest.raises(TypeError, match="pred_constr: a int is not one of gurobi-ml's neural networks"):
        interop.tighten_gurobi_ml(3)


# ---- OMLT (Pyomo) solved by HiGHS -------------------------------------------------------


def _omlt(net, lo, hi, activations=None, formulation="ReluBigMFormulation"):
    pyo = pytest.importorskip("pyomo.environ")
    pytest.importorskip("omlt")
    from omlt import OmltBlock
    from omlt import neuralnet
    from omlt.neuralnet import NetworkDefinition
    from omlt.neuralnet.layer import DenseLayer, InputLayer

    nd = NetworkDefinition(scaled_input_bounds=None if lo is None else
                           {i: (float(a), float(b)) for i, (a, b) in enumerate(zip(lo, hi))})
    prev = InputLayer([net.n_in])
    nd.add_layer(prev)
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        act = (activations or {}).get(l, "linear" if l == net.n_layers - 1 else "relu")
        layer = DenseLayer(prev.output_size, [W.shape[0]], weights=W.T.copy(), biases=b.copy(),
                           activation=act)
        nd.add_layer(layer)
        nd.add_edge(prev, layer)
        prev = layer
    m = pyo.ConcreteModel()
    m.nn = OmltBlock()
    m.nn.build_formulation(getattr(neuralnet, formulation)(nd))
    m.obj = pyo.Objective(expr=m.nn.outputs[0], sense=pyo.maximize)
    return m, nd


def _highs_max(m):
    import pyomo.environ as pyo
    from pyomo.contrib.appsi.solvers import Highs

    opt = Highs()
    # no "threads": HiGHS takes it once per process (a second value fails its next run)
    opt.highs_options = {"mip_rel_gap": 0.0, "mip_abs_gap": GAP_ABS}
    res = opt.solve(m)
    assert res.termination_condition.name == "optimal"
    x = np.array([pyo.value(m.nn.inputs[i]) for i in range(len(m.nn.inputs))])
    return res.best_feasible_objective, x


def test_omlt_bounds_sound_fixed_binaries_and_optimum_unchanged():
    net = trained_like([3, 16, 16, 1], seed=5)
    lo, hi = np.array([-1.0, 0.0, -0.5]), np.array([1.0, 0.5, 0.5])
    m0, _ = _omlt(net, lo, hi)
    before, x0 = _highs_max(m0)
    assert before == pytest.approx(float(net.forward(x0[None])[0, 0]), abs=1e-6)
    m, nd = _omlt(net, lo, hi)
    t = interop.tighten_omlt(m.nn, nd, method="lp")
    assert t.written > 0 and t.fixed == t.n_stable > 0
    got = interop.omlt_network(nd)
    assert all(np.array_equal(a, b) for a, b in zip(got.weights, net.weights))
    X = sample_box(lo, hi, 300, 7)
    zs = numpy_preactivations(net, X)
    for l, layer in enumerate(list(nd.layers)[1:]):
        blk = m.nn.layer[id(layer)]
        idx = list(layer.output_indexes)
        zl = np.array([blk.zhat[j].lb for j in idx])
        zu = np.array([blk.zhat[j].ub for j in idx])
        assert ((zs[l] >= zl) & (zs[l] <= zu)).all(), f"layer {l}: a sample outside zhat's bounds"
        if layer.activation == "relu":
            a = np.maximum(zs[l], 0.0)
            assert all(blk.z[j].lb <= a[:, k].min() and a[:, k].max() <= blk.z[j].ub
                       for k, j in enumerate(idx))
            for k, j in enumerate(idx):  # a fixed binary is the side every sample is on
                q = blk.q_relu[j]
                if q.fixed:
                    assert (zs[l][:, k] >= 0).all() if q.value == 1 else (zs[l][:, k] <= 0).all()
                assert blk._big_m_lb_relu[j].value <= zs[l][:, k].min()
                assert blk._big_m_ub_relu[j].value >= zs[l][:, k].max()
    after, x1 = _highs_max(m)
    assert after == pytest.approx(before, rel=1e-7, abs=1e-6)
    assert after == pytest.approx(float(net.forward(x1[None])[0, 0]), abs=1e-6)


def test_omlt_refuses_sigmoid_and_missing_input_bounds():
    net = trained_like([2, 4, 4, 1], seed=1)
    lo, hi = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    m, nd = _omlt(net, lo, hi)
    m2, nd2 = _omlt(net, lo, hi, activations={1: "sigmoid"},
                    formulation="FullSpaceNNFormulation")
    with pytest.raises(interop.UnsupportedPeerModel,
                       match=r"layer 2 \(DenseLayer, activation 'sigmoid'\) is not supported"):
        interop.tighten_omlt(m2.nn, nd2)
    with pytest.raises(ValueError, match="not built from this network_definition"):
        interop.tighten_omlt(m.nn, nd2)
    # OMLT's big-M needs input bounds itself; its complementarity formulation does not
    m3, nd3 = _omlt(net, None, None, formulation="ReluComplementarityFormulation")
    with pytest.raises(ValueError, match=r"scaled input 0 has bounds \[None, None\]"):
        interop.tighten_omlt(m3.nn, nd3)


@pytest.mark.slow  # imports TensorFlow (Keras 3, which gurobi-ml takes): tens of seconds
def test_gurobi_ml_keras_bounds_sound_and_optimum_unchanged():
    keras = pytest.importorskip("keras")
    net = trained_like([3, 8, 8, 1], seed=4)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(8), keras.layers.ReLU(), keras.layers.Dense(1)])
    for k, (W, b) in enumerate(zip(net.weights, net.biases)):
        model.layers[[0, 1, 3][k]].set_weights([W.T.astype("float32"), b.astype("float32")])
    lo, hi = np.array([[-1.0, -0.5, 0.0]]), np.array([[1.0, 0.5, 0.5]])
    m0, _, y0, pc0 = _gurobi(model, lo, hi)
    before = _max_out(m0, y0, pc0)
    m, _, y, pc = _gurobi(model, lo, hi)
    interop.tighten_gurobi_ml(pc, method="lp")
    got = interop.gurobi_ml_network(pc)  # a Dense with relu and a Dense then ReLU: both read
    X = sample_box(lo[0], hi[0], 100, 3)
    np.testing.assert_allclose(got.forward(X), model.predict(X, verbose=0), rtol=1e-5, atol=1e-5)
    ref = trained_like([3, 8, 8, 1], seed=4)  # the float32 weights widened: the same network
    ref = type(ref)([W.astype("float32").astype(float) for W in ref.weights],
                    [b.astype("float32").astype(float) for b in ref.biases])
    _assert_written_sound(pc, ref, lo, hi, seed=4)
    assert _max_out(m, y, pc) == pytest.approx(before, rel=1e-7, abs=1e-6)
