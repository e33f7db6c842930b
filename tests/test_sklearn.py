"""scikit-learn models through add_predictor: for each kind, the MILP's outputs at fixed
inputs (random points of the box and its corners) equal the model's own predict /
decision_function; optima are checked against an independent maximum (the best corner of an
affine map, every sampled prediction); the argmax follows predict, ties included; every bad
input is refused naming the step, with nothing added to the model."""

import itertools
import warnings

import highspy
import numpy as np
import pytest

pytest.importorskip("sklearn")

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import network_and_box, sample_box

from sklearn.compose import ColumnTransformer
from sklearn.cross_decomposition import PLSRegression
from sklearn.datasets import load_diabetes, load_digits
from sklearn.linear_model import (ElasticNet, Lasso, LinearRegression, LogisticRegression,
                                  Ridge)
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline, Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, PolynomialFeatures, StandardScaler
from sklearn.tree import DecisionTreeRegressor

from emlpress import bounds, compress
from emlpress._highs import highs
from emlpress.milp.linear import affine_box
from emlpress.io import UnsupportedLayerError, from_sklearn
from emlpress.milp import (SklearnHandle, add_argmax, add_predictor, argmax_indicators,
                           registered_handles, solve)

MAX = highspy.ObjSense.kMaximize
RNG = np.random.default_rng(0)
Xd, yd = load_diabetes(return_X_y=True)
Yd = np.column_stack([yd, Xd @ RNG.normal(size=10) * 50])  # two targets
LO, HI = Xd.min(axis=0), Xd.max(axis=0)


def _model_with(lo, hi, model, integer=(), **options):
    h = highs()
    x = h.addVariables(len(lo), lb=list(map(float, lo)), ub=list(map(float, hi)))
    for q in integer:
        h.changeColIntegrality(int(x[q].index), highspy.HighsVarType.kInteger)
    return h, add_predictor(h, model, x, **options)


def _points(lo, hi, n_random=4, n_corners=4, seed=1):
    """Random points and random corners of the box (all corners up to 3 dimensions)."""
    rng = np.random.default_rng(seed)
    P = [rng.uniform(lo, hi, (n_random, lo.size))]
    if lo.size <= 3:
        P.append(np.array(list(itertools.product(*zip(lo, hi)))))
    else:
        P.append(np.where(rng.random((n_corners, lo.size)) < 0.5, lo, hi))
    return np.vstack(P)


def _outputs_at(h, hd, X):
    """The MILP's outputs with the inputs fixed at each row of X, from maximising and from
    minimising their sum: both must give them (the rows pin every output), as HiGHS returned
    them (no repair by solve)."""
    cols, out_cols = hd.input_cols, hd.output_cols
    _, _, _, lo0, hi0, _ = h.getCols(cols.size, cols)
    _, cost0 = h.getObjectiveSense()[1], np.asarray(h.getLp().col_cost_)
    u = np.unique(out_cols)  # a classifier's identical scores share a column
    assert h.changeColsCost(u.size, u, np.ones(u.size)) == highspy.HighsStatus.kOk
    out = []
    for x in X:
        h.changeColsBounds(cols.size, cols, x, x)
        got = []
        for sense in (highspy.ObjSense.kMaximize, highspy.ObjSense.kMinimize):
            h.changeObjectiveSense(sense)
            sol = solve(h)
            assert sol.status == "OPTIMAL" and sol.repaired == "", (sol.status, sol.repaired, x)
            got.append(sol.col_values[out_cols])
        np.testing.assert_allclose(got[0], got[1], rtol=1e-7, atol=1e-7 * max(1.0, np.abs(got[0]).max()))
        out.append(got[0])
    h.changeColsBounds(cols.size, cols, np.asarray(lo0), np.asarray(hi0))
    h.changeColsCost(cost0.size, np.arange(cost0.size, dtype=np.int32), cost0)
    return np.array(out)


def _assert_predicts(h, hd, X, expected, rtol=1e-7):
    got = _outputs_at(h, hd, X)
    expected = np.asarray(expected, float).reshape(got.shape)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * max(1.0, np.abs(expected).max()))


# --- linear regressors --------------------------------------------------------------------


@pytest.mark.parametrize("model", [LinearRegression(), Ridge(alpha=0.1), Lasso(alpha=0.05),
                                   ElasticNet(alpha=0.01), PLSRegression(n_components=3)],
                         ids=lambda m: type(m).__name__)
def test_linear_regressors_equal_predict_and_reach_the_best_corner(model):
    model.fit(Xd, Yd)
    h, hd = _model_with(LO, HI, model)
    assert isinstance(hd, SklearnHandle) and len(hd.outputs) == 2
    X = _points(LO, HI)
    _assert_predicts(h, hd, X, model.predict(X))
    # the maximum of an affine map on a box is at the corner its signs choose: independent
    for k in range(2):
        W = np.atleast_2d(model.coef_)  # (n_targets, n_features) for all five
        corner = np.where(W[k] > 0, HI, LO)
        h.setObjective(hd.outputs[k], sense=MAX)
        sol = solve(h, mip_gap=0)
        best = model.predict(corner[None])[0, k]
        assert sol.objective == pytest.approx(best, rel=1e-8)


# --- properties: the affine steps' boxes and the MLP import, on trained-looking networks ---


@settings(max_examples=60)
@given(network_and_box(max_depth=3, max_width=12, max_in=5), st.sampled_from([1e-3, 1.0, 1e3]))
def test_scaler_then_mlp_bounds_hold_predict_on_samples(case, x_scale):
    """An MLPRegressor carrying a trained-looking network behind a StandardScaler: its import
    equals predict, and the CROWN bounds the encoding computes on the scaled box (the scaler
    step's column bounds) hold every sampled prediction."""
    net, lo, hi, seed = case
    rng = np.random.default_rng(seed)
    n_in = net.n_in
    lo, hi = lo * x_scale, hi * x_scale  # raw features; the scaler brings them back
    mean, scale = rng.normal(size=n_in) * x_scale, rng.uniform(0.5, 2.0, n_in) * x_scale
    mlp = _carrying(net)
    sc = StandardScaler().fit(np.zeros((2, n_in)))
    sc.mean_, sc.scale_, sc.var_ = mean, scale, scale ** 2
    pipe = make_pipeline(sc, mlp)
    X = sample_box(lo, hi, 50, seed)
    np.testing.assert_allclose(from_sklearn(mlp).forward(sc.transform(X)), mlp.predict(sc.transform(X))
                               .reshape(len(X), -1), rtol=1e-12, atol=1e-12)
    h, hd = _model_with(lo, hi, pipe)
    _, _, _, slo, shi, _ = h.getCols(n_in, hd.stages[0].output_cols)
    Z = sc.transform(X)
    assert np.all(Z >= np.asarray(slo)) and np.all(Z <= np.asarray(shi))
    b = hd.stages[1].bounds
    Y = pipe.predict(X).reshape(len(X), -1)
    tol = 1e-9 * (1 + np.abs(Y))
    assert np.all(Y >= b.lower[-1] - tol) and np.all(Y <= b.upper[-1] + tol)


def _carrying(net):
    """An MLPRegressor (relu) whose coefs_ are ``net``'s weights; a network of one layer is an
    identity MLP with an identity second layer."""
    Ws, bs = [W.T.copy() for W in net.weights], [b.copy() for b in net.biases]
    n_out = net.sizes[-1]
    if len(Ws) == 1:
        Ws.append(np.eye(n_out))
        bs.append(np.zeros(n_out))
    mlp = _quiet_fit(MLPRegressor(hidden_layer_sizes=tuple(W.shape[1] for W in Ws[:-1]), max_iter=1,
                                  activation="identity" if len(net.weights) == 1 else "relu"),
                     np.zeros((4, net.n_in)), np.zeros((4, n_out)) if n_out > 1 else np.zeros(4))
    mlp.coefs_, mlp.intercepts_ = Ws, bs
    return mlp


@settings(max_examples=100)
@given(st.integers(1, 6), st.integers(1, 4), st.sampled_from([1e-8, 1.0, 1e6]), st.integers(0, 2**32 - 1))
def test_affine_box_holds_every_float64_evaluation(n_in, n_out, w_scale, seed):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n_out, n_in)) * w_scale * (rng.random((n_out, n_in)) < 0.7)
    b = rng.normal(size=n_out) * w_scale
    lo = rng.normal(size=n_in) * 10
    hi = lo + rng.uniform(0, 5, n_in) * (rng.random(n_in) < 0.8)  # some degenerate
    X = sample_box(lo, hi, 200, seed)
    Y = X @ W.T + b
    low, up = affine_box(W, b, lo, hi)
    assert np.all(Y >= low) and np.all(Y <= up)
    # and tight: the corner the signs choose reaches each upper bound up to the widening
    top = np.array([np.where(W[k] > 0, hi, lo) @ W[k] + b[k] for k in range(n_out)])
    assert np.all(up - top <= 1e-12 * (1 + np.abs(b) + np.abs(W) @ np.maximum(np.abs(lo), np.abs(hi))))


# --- MLPs ---------------------------------------------------------------------------------


def _quiet_fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a few iterations are enough here
        return est.fit(X, y)


def _mlp(activation="relu", classifier=False, X=Xd[:, :4], y=yd, hidden=(8,), seed=0):
    cls = MLPClassifier if classifier else MLPRegressor
    return _quiet_fit(cls(hidden_layer_sizes=hidden, activation=activation, max_iter=150, random_state=seed), X, y)


@pytest.mark.parametrize("activation", ["relu", "identity"])
def test_from_sklearn_computes_predict_and_bounds_hold_it(activation):
    mlp = _mlp(activation, y=Yd)
    net = from_sklearn(mlp)
    X4 = Xd[:, :4]
    np.testing.assert_allclose(net.forward(X4), mlp.predict(X4), rtol=1e-12, atol=1e-9)
    b = bounds.crown(net, LO[:4], HI[:4])  # every bound method applies to it
    P = _points(LO[:4], HI[:4], 200, 16)
    F = mlp.predict(P).reshape(len(P), -1)
    assert np.all(F >= b.lower[-1] - 1e-9) and np.all(F <= b.upper[-1] + 1e-9)
    small, _ = compress.lossless(net, LO[:4], HI[:4], bounds="crown")  # and lossless compression
    np.testing.assert_allclose(small.forward(P), F, rtol=1e-9, atol=1e-9)
    h, hd = _model_with(LO[:4], HI[:4], mlp)  # and the MILP pins its outputs to predict
    _assert_predicts(h, hd, P[-8:], F[-8:])


def test_an_mlp_after_a_scaler_gets_the_scaled_box_and_equals_predict():
    pipe = _quiet_fit(make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(8, 8), max_iter=150, random_state=0)),
                      Xd[:, :4], yd)
    lo, hi = LO[:4], HI[:4]
    h, hd = _model_with(lo, hi, pipe)
    net_h = hd.stages[1]  # stages[0]: the scaler
    s = pipe[0]
    np.testing.assert_allclose(net_h.bounds.lo, (lo - s.mean_) / s.scale_, rtol=1e-12)
    np.testing.assert_allclose(net_h.bounds.hi, (hi - s.mean_) / s.scale_, rtol=1e-12)
    assert registered_handles(h) == [hd]  # the network is a step of the pipeline's handle
    X = _points(lo, hi)
    _assert_predicts(h, hd, X, pipe.predict(X))
    h.setObjective(hd.outputs[0], sense=MAX)
    sol = solve(h, mip_gap=0)
    sample = pipe.predict(_points(lo, hi, 2000, 16, seed=3))
    assert sol.status == "OPTIMAL" and sol.objective >= sample.max() - 1e-6
    assert pipe.predict(sol.inputs[hd.name][None])[0] == pytest.approx(sol.objective, rel=1e-6)


# --- transformers: scalers, PolynomialFeatures (binary and fixed factors), ColumnTransformer


def _binary_data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.integers(0, 2, n), rng.uniform(-2, 3, n), rng.uniform(0, 5, n)])
    y = X[:, 0] * X[:, 1] - 2 * X[:, 0] + 0.5 * X[:, 2] ** 2 + rng.normal(0, 0.1, n)
    return X, y


def test_column_transformer_with_products_of_a_binary_and_scalers_equals_predict():
    X, y = _binary_data()
    ct = ColumnTransformer([("poly", PolynomialFeatures(2), [0, 1]), ("mm", MinMaxScaler(), [2]),
                            ("keep", "passthrough", [2])])
    pipe = Pipeline([("ct", ct), ("scale", StandardScaler()), ("lr", Ridge(alpha=1e-3))]).fit(X, y)
    lo, hi = np.array([0.0, -2.0, 0.0]), np.array([1.0, 3.0, 5.0])
    # x0 binary: x0^2 and x0*x1 are exact; x1^2 is a square of a continuous feature: refused
    with pytest.raises(ValueError, match=r"'x1\^2' = x1 \* x1 .*neither factor is binary"):
        _model_with(lo, hi, pipe, integer=[0])
    ct2 = ColumnTransformer([("poly", PolynomialFeatures(2, interaction_only=True), [0, 1]),
                             ("mm", MinMaxScaler(), [2]), ("keep", "passthrough", [2])])
    pipe = Pipeline([("ct", ct2), ("lr", Ridge(alpha=1e-3))]).fit(X, y)
    h, hd = _model_with(lo, hi, pipe, integer=[0])
    Xt = _points(lo, hi)
    Xt[:, 0] = np.round(Xt[:, 0])
    _assert_predicts(h, hd, Xt, pipe.predict(Xt))


def test_a_scaled_binary_and_a_fixed_feature_multiply_exactly():
    X, y = _binary_data(seed=1)
    X[:, 2] = 2.5  # a feature the box fixes
    pipe = make_pipeline(StandardScaler(), PolynomialFeatures(2), LinearRegression()).fit(
        np.column_stack([X[:, :2], X[:, 2] + np.random.default_rng(0).normal(0, 1, len(X))]), y)
    lo, hi = np.array([0.0, -2.0, 2.5]), np.array([1.0, 3.0, 2.5])
    # x0 binary scaled (two values), x2 fixed: every product but x1^2 is exact
    with pytest.raises(ValueError, match=r"x1\^2"):
        _model_with(lo, hi, pipe, integer=[0])
    hi[1] = lo[1] = 0.7  # fix x1 too: now every product is linear
    h, hd = _model_with(lo, hi, pipe, integer=[0])
    Xt = np.array([[0.0, 0.7, 2.5], [1.0, 0.7, 2.5]])
    _assert_predicts(h, hd, Xt, pipe.predict(Xt))
    lo[1], hi[1] = -2.0, 3.0
    pipe = make_pipeline(StandardScaler(), PolynomialFeatures(2, interaction_only=True),
                         Ridge()).fit(np.column_stack([X[:, 0], X[:, 1], X[:, 2]]), y)
    with pytest.raises(ValueError, match=r"x1 \* x2|x1 x2"):  # x2 fixed by the data, not the box
        _model_with(lo, np.array([1.0, 3.0, 3.0]), pipe, integer=[0])
    h, hd = _model_with(lo, hi, pipe, integer=[0])
    Xt = _points(lo, hi)
    Xt[:, 0] = np.round(Xt[:, 0])
    _assert_predicts(h, hd, Xt, pipe.predict(Xt))


def test_a_column_transformers_passthrough_then_a_tree_equals_predict():
    """remainder='passthrough' puts the pipeline's own input columns after the scaler's new
    ones: the tree's inputs are not in increasing column order, whose bounds HiGHS' getCols
    once returned as zeros (every fixed input NUMERICAL, the tree's box [0, 0])."""
    ct = ColumnTransformer([("s", StandardScaler(), [0, 2, 4])], remainder="passthrough")
    model = make_pipeline(ct, DecisionTreeRegressor(max_depth=5, random_state=0)).fit(Xd, yd)
    h, hd = _model_with(LO, HI, model)
    X = np.vstack([Xd[:6], _points(LO, HI)])
    _assert_predicts(h, hd, X, model.predict(X))


def test_multi_output_wrapper_and_a_tree_as_a_pipelines_last_step():
    lo, hi = LO[:3], HI[:3]
    X3 = Xd[:, :3]
    mo = MultiOutputRegressor(make_pipeline(MaxAbsScaler(), Lasso(alpha=0.01))).fit(X3, Yd)
    h, hd = _model_with(lo, hi, mo)
    X = _points(lo, hi)
    _assert_predicts(h, hd, X, mo.predict(X))
    # clip=True clips nothing on the box the scaler was fitted on (up to rounding)
    pipe = make_pipeline(MinMaxScaler(clip=True), DecisionTreeRegressor(max_depth=3, random_state=0)).fit(X3, yd)
    h, hd = _model_with(lo, hi, pipe)
    _assert_predicts(h, hd, X, pipe.predict(X))


# --- classifiers by argmax ----------------------------------------------------------------


def _fixed_scores(values, margin=0.0, exact=False, columns=None):
    """(status, indicators) of add_argmax on score columns fixed at ``values``; the bounds
    given are the values themselves (``exact``: the scores are known, ties compared exactly)
    or [-5, 5] (rows decide); ``columns`` picks the score columns (repeats allowed)."""
    h = highs()
    s = h.addVariables(len(values), lb=list(map(float, values)), ub=list(map(float, values)))
    idx = list(range(len(values))) if columns is None else columns
    v = np.asarray(values, float)[idx]
    lo, hi = (v, v) if exact else (np.full(len(idx), -5.0), np.full(len(idx), 5.0))
    z = add_argmax(h, [s[k] for k in idx], lo, hi, margin=margin)
    sol = solve(h)
    return sol.status, (None if sol.col_values is None else np.rint(sol.col_values[z]))


@pytest.mark.parametrize("scores", [[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [3.0, -1.0, 3.0],
                                    [0.5, 0.2, 0.7], [0.0], [1e-3], [-2.0], [4.0, 4.0, 4.0, 4.0]])
def test_argmax_picks_the_first_largest_score_and_the_sign(scores):
    full = np.r_[0.0, scores] if len(scores) == 1 else np.asarray(scores)
    top2 = np.sort(full)[-2:]
    for exact in (True, False):
        status, z = _fixed_scores(scores, exact=exact)
        if not exact and top2[1] - top2[0] < 5e-7:  # a tie of two scores the rows cannot tell apart
            assert status == "INFEASIBLE"  # left out, never the wrong class
            continue
        assert status == "OPTIMAL"
        np.testing.assert_array_equal(z, argmax_indicators(scores))
        assert int(np.argmax(z)) == int(np.argmax(full))  # numpy's rule: the first largest


def test_a_score_given_twice_ties_exactly_and_the_first_class_wins():
    # scores (a, a, b) with a > b: class 0, never class 1
    status, z = _fixed_scores([1.0, 0.5], columns=[0, 0, 1])
    assert status == "OPTIMAL" and z.tolist() == [1.0, 0.0, 0.0]
    status, z = _fixed_scores([0.2, 0.5], columns=[1, 0, 1])
    assert status == "OPTIMAL" and z.tolist() == [1.0, 0.0, 0.0]


def test_a_margin_requires_the_winner_to_lead_by_it():
    for exact in (True, False):
        assert _fixed_scores([1.0, 1.05, 0.0], margin=0.1, exact=exact)[0] == "INFEASIBLE"
        status, z = _fixed_scores([1.0, 1.05, 0.0], margin=0.01, exact=exact)
        assert status == "OPTIMAL" and z.tolist() == [0.0, 1.0, 0.0]
        assert _fixed_scores([0.05], margin=0.1, exact=exact)[0] == "INFEASIBLE"
        assert _fixed_scores([-0.2], margin=0.1, exact=exact)[1].tolist() == [1.0, 0.0]
        assert _fixed_scores([0.0, 0.0], margin=0.1, exact=exact, columns=[0, 0])[0] == "INFEASIBLE"


def test_optima_on_a_decision_boundary_keep_predicts_class():
    """Optimising along the boundary of a class's region: the answer HiGHS returns (no repair)
    is a point predict puts in that class (a point within gap of the tie is left out)."""
    for seed in range(4):
        rng = np.random.default_rng(seed)
        X = rng.uniform(-1, 1, (200, 2))
        clf = LogisticRegression().fit(X, X @ rng.normal(size=2) + 0.3 * rng.normal() > 0)
        for k, sense in itertools.product((0, 1), (MAX, highspy.ObjSense.kMinimize)):
            h, hd = _model_with(-np.ones(2), np.ones(2), clf)
            h.addConstr(hd.class_vars[k] == 1)
            h.setObjective(hd.inputs[0] + 0.3 * hd.inputs[1], sense=sense)
            sol = solve(h, mip_gap=0)
            assert sol.status == "OPTIMAL" and sol.repaired == "", (seed, k, sol.status)
            assert clf.predict(sol.inputs[hd.name][None])[0] == clf.classes_[k]


def test_logistic_regression_class_and_scores_equal_predict_ties_included():
    Xg, yg = load_digits(return_X_y=True)
    Xg, yg = Xg[:400, :16] / 16, yg[:400] % 3  # 16 pixels, 3 classes: fast
    clf = _quiet_fit(LogisticRegression(max_iter=100), Xg, yg)
    clf.coef_[1], clf.intercept_[1] = clf.coef_[0], clf.intercept_[0]  # classes 0 and 1 always tie
    lo, hi = np.zeros(16), np.ones(16)
    h, hd = _model_with(lo, hi, clf)
    assert len(hd.outputs) == 6 and list(hd.classes) == [0, 1, 2]
    X = np.vstack([Xg[:6], _points(lo, hi)])
    pred = clf.predict(X)
    assert 1 not in pred  # predict sends every tie to the first class
    expected = np.hstack([(pred[:, None] == hd.classes).astype(float), clf.decision_function(X)])
    _assert_predicts(h, hd, X, expected)
    h, hd = _model_with(lo, hi, clf, output="decision_function")  # the scores only
    _assert_predicts(h, hd, X[:4], clf.decision_function(X[:4]))
    with pytest.raises(AttributeError, match="output='class'"):
        _ = hd.class_vars
    # binary: the sign of decision_function (0 goes to class 0)
    yb = (yg == 2).astype(int)
    clfb = _quiet_fit(LogisticRegression(max_iter=100), Xg, yb)
    h, hd = _model_with(lo, hi, clfb)
    pred = clfb.predict(X)
    _assert_predicts(h, hd, X, np.column_stack([pred == 0, pred == 1, clfb.decision_function(X)]))


def test_mlp_classifier_after_a_scaler_class_with_a_margin_on_digits():
    Xg, yg = load_digits(return_X_y=True)
    Xg, yg = Xg[:500, :16], yg[:500] % 4
    clf = _quiet_fit(make_pipeline(MinMaxScaler(), MLPClassifier(hidden_layer_sizes=(12,), max_iter=150,
                                                                 random_state=0)), Xg, yg)
    net = from_sklearn(clf[-1])

    def logits(X):
        return net.forward(clf[0].transform(X))

    lo, hi = np.zeros(16), np.full(16, 16.0)
    h, hd = _model_with(lo, hi, clf, margin=0.5)
    X = Xg[:20]
    top2 = np.sort(logits(X), axis=1)[:, -2:]
    X = X[top2[:, 1] - top2[:, 0] >= 0.6]  # points whose winner leads by the margin
    assert len(X) >= 3
    pred = clf.predict(X)
    _assert_predicts(h, hd, X, np.hstack([(pred[:, None] == hd.classes).astype(float), logits(X)]))
    # the largest logit of class 3 that still wins by the margin: verified by predict
    h.addConstr(hd.class_vars[3] == 1)
    h.setObjective(hd.score_vars[3], sense=MAX)
    sol = solve(h, mip_gap=0)
    x = sol.inputs[hd.name]
    lg = logits(x[None])[0]
    assert sol.status == "OPTIMAL" and hd.predicted_class(sol) == 3 == clf.predict(x[None])[0]
    assert lg[3] - np.delete(lg, 3).max() >= 0.5 - 1e-6
    assert np.all(hd.get_error(sol) <= 1e-6 * max(1.0, np.abs(lg).max()))
    # no input beats it: the best sampled class-3 logit that wins by the margin is below
    S = np.vstack([Xg, np.random.default_rng(0).uniform(lo, hi, (3000, 16))])
    L = logits(S)
    ok = (np.argmax(L, axis=1) == 3) & (L[:, 3] - np.delete(L, 3, axis=1).max(axis=1) >= 0.5)
    assert L[ok, 3].max(initial=-np.inf) <= sol.objective + 1e-6


# --- bad input: one line naming the step and the reason, nothing added ---------------------


def _refused(model, n_in, exc, match, **options):
    h = highs()
    x = h.addVariables(n_in, lb=0.0, ub=1.0)
    with pytest.raises(exc, match=match) as err:
        add_predictor(h, model, x, **options)
    assert "\n" not in str(err.value)
    assert (h.getNumCol(), h.getNumRow(), registered_handles(h)) == (n_in, 0, [])


def test_bad_models_are_refused_before_anything_is_added():
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import QuantileTransformer
    from sklearn.svm import SVC

    X, y = Xd[:, :3], yd
    lr = LinearRegression().fit(X, y)
    _refused(LinearRegression(), 3, ValueError, r"^LinearRegression: not fitted")
    _refused(make_pipeline(StandardScaler(), LinearRegression()), 3, ValueError, "not fitted")
    _refused(lr, 4, ValueError, r"takes 3 features \(n_features_in_\), got 4 inputs")
    _refused(make_pipeline(StandardScaler().fit(Xd), LinearRegression().fit(Xd, y)), 3, ValueError,
             "takes 10 features")
    sig = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(4,), activation="logistic", max_iter=5))
    with pytest.warns(Warning):
        sig.fit(X, y)
    _refused(sig, 3, UnsupportedLayerError, r"activation='logistic' is not piecewise linear")
    _refused(make_pipeline(StandardScaler(), SVC(kernel="rbf")).fit(X, y > 150), 3, TypeError,
             r"'svc' \(SVC\): SVC\(kernel='rbf'\) is not linear.*supported:")
    _refused(SVC(kernel="rbf").fit(X, y > 150), 3, TypeError, r"SVC.*registered:")
    _refused(make_pipeline(StandardScaler(), KMeans(2, n_init=1)).fit(X), 3, TypeError, r"KMeans")
    _refused(make_pipeline(QuantileTransformer(n_quantiles=20), LinearRegression()).fit(X, y), 3,
             TypeError, r"'quantiletransformer' \(QuantileTransformer\)")
    nan_mlp = _mlp(X=X)
    nan_mlp.coefs_[1][0, 0] = np.nan
    _refused(make_pipeline(StandardScaler().fit(X), nan_mlp), 3, ValueError,
             r"'mlpregressor' \(MLPRegressor\): layer 1 .* holds NaN")
    h = highs()
    x = h.addVariables(3, lb=[0.0, 0.0, 0.0], ub=[1.0, np.inf, 1.0])
    with pytest.raises(ValueError, match=r"input 1 .* bounds \[0.0, inf\] must be finite"):
        add_predictor(h, lr, x)
    assert (h.getNumCol(), h.getNumRow()) == (3, 0)
    bad = LinearRegression().fit(X, y)
    bad.coef_[1] = np.nan
    _refused(bad, 3, ValueError, r"coef_ holds NaN")
    sc = StandardScaler().fit(X)
    sc.mean_[0] = np.nan
    _refused(make_pipeline(sc, lr), 3, ValueError, r"'standardscaler' \(StandardScaler\): the fitted mean_")
    clf = LogisticRegression().fit(X, y > 150)
    _refused(clf, 3, ValueError, r"output='predict_proba' is not piecewise linear", output="predict_proba")
    _refused(lr, 3, ValueError, r"apply to classifiers", margin=0.1)
    _refused(make_pipeline(MinMaxScaler(clip=True).fit(X * 0.5), lr), 3, ValueError, r"clip=True clips")
    _refused(make_pipeline(PolynomialFeatures(3), LinearRegression()).fit(X, y), 3, ValueError,
             r"degree 3")
    _refused(make_pipeline(PolynomialFeatures(2), LinearRegression()).fit(X, y), 3, ValueError,
             r"'x0\^2' = x0 \* x0 is not linear")


def test_handle_reports_its_encoding_and_errors(capsys):
    pipe = make_pipeline(StandardScaler(), Ridge()).fit(Xd, yd)
    h, hd = _model_with(LO, HI, pipe, name="ridge")
    h.setObjective(hd.outputs[0], sense=MAX)
    sol = solve(h)
    assert np.all(hd.get_error(sol) <= 1e-6 * max(1.0, abs(sol.objective)))
    assert hd.get_error().shape == (1,)  # HiGHS' current solution
    hd.print_stats()
    line = capsys.readouterr().out
    # the scaler's 10 columns and the regression's 1, no binary, one row each
    assert line.startswith("Pipeline 'ridge': 10 inputs, 1 outputs; 11 variables (0 binary), 11 constraints")


def test_the_exact_evaluation_solve_repairs_with_satisfies_every_row():
    """SklearnHandle._exact_columns (what solve's repair writes at the MILP's inputs): every
    step's columns evaluated exactly, chained; the point must satisfy every row of the model."""
    from emlpress.milp import repair

    X, y = _binary_data(seed=2)
    ct = ColumnTransformer([("poly", PolynomialFeatures(2, interaction_only=True), [0, 1]),
                            ("mm", MinMaxScaler(), [2])])
    models = [Pipeline([("ct", ct), ("lr", Ridge())]).fit(X, y),
              _quiet_fit(make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(6,), max_iter=50,
                                                                        random_state=0)), X, y > 1),
              _quiet_fit(make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(6,), max_iter=50,
                                                                        random_state=0)), X, np.digitize(y, [0, 2]))]
    lo, hi = np.array([0.0, -2.0, 0.0]), np.array([1.0, 3.0, 5.0])
    for model in models:
        h, hd = _model_with(lo, hi, model, integer=[0])
        M = repair.model_arrays(h)
        for x in _points(lo, hi, 6, seed=4):
            x[0] = np.round(x[0])
            v = np.clip(np.zeros(h.getNumCol()), M.col_lo, M.col_hi)
            v[hd.input_cols] = x
            cols, vals = hd._exact_columns(x)
            v[cols] = vals
            assert repair.violation(M, v) <= 1e-9, type(model[-1]).__name__
            np.testing.assert_allclose(v[hd.output_cols], hd.predict(x), rtol=1e-9, atol=1e-9)


def test_a_failing_step_leaves_the_model_as_it_was(monkeypatch):
    from emlpress.milp import network

    real = network.add_network

    def add_then_fail(h, *args, **kwargs):
        real(h, *args, **kwargs)
        raise RuntimeError("HiGHS failed")

    monkeypatch.setattr(network, "add_network", add_then_fail)
    pipe = make_pipeline(StandardScaler().fit(Xd[:, :3]), _mlp(X=Xd[:, :3]))
    h = highs()
    x = h.addVariables(3, lb=list(LO[:3]), ub=list(HI[:3]))
    tol = h.getOptionValue("primal_feasibility_tolerance")
    with pytest.raises(RuntimeError, match="HiGHS failed"):
        add_predictor(h, pipe, x)
    assert (h.getNumCol(), h.getNumRow(), registered_handles(h)) == (3, 0, [])
    assert h.getOptionValue("primal_feasibility_tolerance") == tol


def test_one_variable_passed_as_two_features():
    """inputs [a, b, a]: rows that name a column twice are merged (HiGHS refuses them)."""
    X, y = _binary_data(seed=3)
    pipe = make_pipeline(StandardScaler(), PolynomialFeatures(2, interaction_only=True),
                         Ridge()).fit(X, y)
    h = highs()
    a = h.addVariable(lb=0, ub=1, type=highspy.HighsVarType.kInteger)
    b = h.addVariable(lb=-2.0, ub=3.0)
    hd = add_predictor(h, pipe, [a, b, a])
    for sense in (MAX, highspy.ObjSense.kMinimize):
        h.setObjective(hd.outputs[0], sense=sense)
        sol = solve(h, mip_gap=0)
        va, vb = sol.col_values[[a.index, b.index]]
        assert sol.status == "OPTIMAL" and sol.repaired == ""
        assert pipe.predict([[va, vb, va]])[0] == pytest.approx(sol.objective, rel=1e-7)
        grid = [[p, q, p] for p in (0.0, 1.0) for q in np.linspace(-2, 3, 501)]
        best = pipe.predict(grid).max() if sense == MAX else pipe.predict(grid).min()
        assert (sol.objective >= best - 1e-7) if sense == MAX else (sol.objective <= best + 1e-7)
