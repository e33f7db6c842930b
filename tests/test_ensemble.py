"""Tree ensembles in the MILP (scikit-learn forests and boosting, XGBoost, LightGBM): the MILP's
outputs equal the model's own predict/decision_function/margin at random inputs, at every split
threshold (the threshold, the values either side of it and one float step beyond, in the
library's precision) and at box corners (inside a split's left-out interval, tree.py's gap,
the MILP is infeasible or answers at an input HiGHS moved by its 1e-9 tolerance, verified); the output bounds hold on samples and the dropped
leaves are never reached; bad models are refused before anything is added."""

import highspy
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sk_ens = pytest.importorskip("sklearn.ensemble")

from sklearn.datasets import load_diabetes, load_digits  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

from emlpress import milp  # noqa: E402
from emlpress._highs import highs  # noqa: E402
from emlpress.milp.ensemble import read_ensemble  # noqa: E402
from emlpress.milp.tree import Rule  # noqa: E402

MAX, MIN = highspy.ObjSense.kMaximize, highspy.ObjSense.kMinimize
# inputs fixed inside a split's left-out interval: HiGHS may call them feasible within its
# tolerance, and solve then warns and answers NUMERICAL (the tests accept only that there)
pytestmark = pytest.mark.filterwarnings("ignore:.*differ from the model's own evaluation:RuntimeWarning")


def _synthetic(seed, n=300, d=3, scale=4.0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-scale, scale, (n, d))
    y = np.sin(X @ rng.normal(size=d)) + 0.3 * X[:, 0]
    return X, y


def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X[:, :4], y  # four features: few thresholds, small values (|x| < 0.2)


def _digits3():
    X, y = load_digits(return_X_y=True)
    keep = y < 3
    return X[keep][:, 18:26], y[keep]  # one row of pixels (integers 0..16), three classes


def _make(name):
    """(fitted model, training inputs) of a small ensemble: 3..10 trees of depth <= 4."""
    if name == "rf_reg":
        X, y = _diabetes()
        return sk_ens.RandomForestRegressor(5, max_depth=3, random_state=0).fit(X, y), X
    if name == "et_reg2":  # two outputs
        X, y = _synthetic(1)
        return sk_ens.ExtraTreesRegressor(4, max_depth=3, random_state=1).fit(
            X, np.column_stack([y, X[:, 1] ** 2])), X
    if name == "gb_reg":
        X, y = _synthetic(2)
        return sk_ens.GradientBoostingRegressor(n_estimators=8, max_depth=2, learning_rate=0.3,
                                                random_state=2).fit(X, y), X
    if name == "gb_bin":
        X, y = _synthetic(3)
        return sk_ens.GradientBoostingClassifier(n_estimators=6, max_depth=2,
                                                 random_state=3).fit(X, y > 0), X
    if name == "gb_multi":
        X, y = _digits3()
        return sk_ens.GradientBoostingClassifier(n_estimators=3, max_depth=2,
                                                 random_state=4).fit(X, y), X
    if name == "rf_clf":
        X, y = _digits3()
        return sk_ens.RandomForestClassifier(5, max_depth=3, random_state=5).fit(X, y), X
    if name == "dt_clf":
        X, y = _synthetic(6)
        return DecisionTreeClassifier(max_depth=4, random_state=6).fit(X, np.digitize(y, [-0.5, 0.5])), X
    if name.startswith("xgb"):
        xgb = pytest.importorskip("xgboost")
        if name == "xgb_reg":
            X, y = _synthetic(7)
            return xgb.XGBRegressor(n_estimators=6, max_depth=3, learning_rate=0.5).fit(X, y), X
        if name == "xgb_reg_small":
            X, y = _diabetes()
            return xgb.XGBRegressor(n_estimators=5, max_depth=3).fit(X, y), X
        if name == "xgb_rf":  # a random forest: 4 parallel trees in one round
            X, y = _synthetic(10)
            return xgb.XGBRFRegressor(n_estimators=4, max_depth=3).fit(X, y), X
        if name == "xgb_bin":
            X, y = _synthetic(8)
            return xgb.XGBClassifier(n_estimators=6, max_depth=2).fit(X, y > 0), X
        X, y = _digits3()
        return xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(X, y), X
    lgb = pytest.importorskip("lightgbm")
    kw = dict(max_depth=3, num_leaves=6, min_child_samples=5, verbose=-1)
    if name == "lgb_reg":
        X, y = _diabetes()
        return lgb.LGBMRegressor(n_estimators=6, **kw).fit(X, y), X
    if name == "lgb_rf":  # averages its trees (predict) where raw_score=True sums them
        X, y = _synthetic(11)
        return lgb.LGBMRegressor(boosting_type="rf", n_estimators=4, bagging_freq=1,
                                 bagging_fraction=0.7, **kw).fit(X, y), X
    if name == "lgb_bin":
        X, y = _synthetic(9)
        return lgb.LGBMClassifier(n_estimators=5, **kw).fit(X, y > 0), X
    X, y = _digits3()
    return lgb.LGBMClassifier(n_estimators=3, **kw).fit(X, y), X


SKLEARN = ["rf_reg", "et_reg2", "gb_reg", "gb_bin", "gb_multi", "rf_clf", "dt_clf"]
BOOSTERS = ["xgb_reg", "xgb_reg_small", "xgb_bin", "xgb_multi", "lgb_reg", "lgb_bin", "lgb_multi"]


def _paths(ens, x):
    """Every (tree, split node) on the path of ``x`` by each tree's own rule."""
    out = []
    for T in ens.trees:
        n = 0
        while T.left[n] != -1:
            out.append((T, n))
            go = Rule.goes_left(T.rule, x[T.feature[n]], T.threshold[n])
            n = T.left[n] if go else T.right[n]
    return out


def _in_gap(ens, x) -> bool:
    """Whether ``x`` lies strictly inside a split's left-out interval (between the largest
    input that goes left and the smallest the MILP lets go right) on its own path."""
    for T, n in _paths(ens, x):
        lo, hi = Rule.sides(T.rule, float(T.threshold[n]))
        if lo < x[T.feature[n]] < hi:
            return True
    return False


def _step(rule, v, direction):
    """One float step from ``v`` in the library's input precision."""
    if rule == Rule.LIGHTGBM:
        return float(np.nextafter(v, direction * np.inf))
    return float(np.nextafter(np.float32(v), np.float32(direction * np.inf)))


def _threshold_points(ens, base, lo, hi):
    """For every split: the threshold, the largest input the MILP lets go left, the smallest
    it lets go right, one float step beyond each, and the library's own boundary (float64
    inputs either side of where float32 rounding changes sides), on the feature of the
    split (the other features at ``base``), clipped into the box."""
    pts = []
    for T in ens.trees:
        for n in np.flatnonzero(T.left != -1):
            f, t = int(T.feature[n]), float(T.threshold[n])
            left, right = Rule.sides(T.rule, t)
            for v in {t, left, right, _step(T.rule, left, -1), _step(T.rule, left, 1),
                      _step(T.rule, right, 1), *Rule.boundary(T.rule, t)}:
                p = base.copy()
                p[f] = min(max(v, lo[f]), hi[f])
                pts.append(p)
    return pts


def _fixed_input_check(model, lo, hi, points, output="raw"):
    """Solve the MILP with the inputs fixed at every point; returns the number of points
    solved. Each answer equals the model's own evaluation; INFEASIBLE only inside a split's
    left-out interval."""
    h = highs()
    x = h.addVariables(len(lo), lb=lo.tolist(), ub=hi.tolist())
    hd = milp.add_predictor(h, model, x, output=output)
    cols = np.asarray(hd.input_cols, np.int32)
    ens = hd.ensemble
    solved = 0
    for p in points:
        h.changeColsBounds(cols.size, cols, p, p)
        sol = milp.solve(h, mip_gap=0)
        gap = _in_gap(ens, p) or (output == "class" and _near_tie(hd, p))
        if gap and sol.status in ("INFEASIBLE", "NUMERICAL"):  # no verified point: honest
            continue
        assert sol.status == "OPTIMAL", (ens.kind, sol.status, p.tolist())
        xs = sol.inputs[hd.name]
        if gap:  # HiGHS may move a fixed input by its tolerance (1e-9) out of the gap
            np.testing.assert_allclose(xs, p, rtol=1e-9, atol=1e-9)
        else:  # elsewhere the answer is the model's at the point itself
            p = xs = np.asarray(p, float)
        got, want = sol.outputs[hd.name], hd.predict(xs)
        if output == "class":
            assert got[0] == want[0], (ens.kind, p.tolist())
            assert np.flatnonzero(sol.col_values[hd.class_cols] > 0.5).tolist() == [int(want[0])]
        else:
            tol = max(1e-8 * max(1.0, np.abs(want).max()), float(np.max(hd._slack)) + 1e-8)
            np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=str(p.tolist()))
            # the MILP's leaves are the ones each library's rule gives at its inputs
            assert np.array_equal(hd.leaves(sol), ens.apply(xs[None, :])[0])
        solved += 1
    return solved


def _near_tie(hd, p) -> bool:
    """Whether the leading class beats an earlier one, or a binary score is positive, by
    less than add_argmax's tie gap (such points are left out of the MILP)."""
    from emlpress.milp.classify import TIE_GAP

    s = hd.ensemble.scores(p[None, :])[0]
    gap = (TIE_GAP * max(1.0, float(np.max(np.abs(np.r_[hd.lower, hd.upper]))))
           + 3 * float(np.max(hd._slack)))  # the lead asked for XGBoost's float32 margins
    if s.size == 1:
        return abs(s[0]) <= gap
    k = int(np.argmax(s))
    return bool(np.any(np.delete(s, k) > s[k] - gap))


def _box_and_points(X, seed):
    rng = np.random.default_rng(seed)
    lo, hi = X.min(axis=0), X.max(axis=0)
    corners = [np.where(rng.random(lo.size) < 0.5, lo, hi) for _ in range(4)] + [lo, hi]
    random = list(rng.uniform(lo, hi, (6, lo.size)))
    return lo, hi, corners + random, (lo + hi) / 2


@pytest.mark.parametrize("name", SKLEARN + BOOSTERS)
def test_milp_equals_the_models_own_scores_at_thresholds_corners_and_random_inputs(name):
    model, X = _make(name)
    lo, hi, pts, base = _box_and_points(X, 0)
    ens = read_ensemble(model)
    thr = _threshold_points(ens, base, lo, hi)
    solved = _fixed_input_check(model, lo, hi, pts + thr)
    assert solved >= len(pts)  # corners and random points are never in a gap here


@pytest.mark.parametrize("name", ["dt_clf", "rf_clf", "gb_bin", "gb_multi", "xgb_bin", "lgb_multi"])
def test_the_milps_class_equals_predict_at_thresholds_corners_and_random_inputs(name):
    model, X = _make(name)
    lo, hi, pts, base = _box_and_points(X, 1)
    ens = read_ensemble(model)
    rng = np.random.default_rng(2)
    thr = _threshold_points(ens, base, lo, hi)
    thr = [thr[i] for i in rng.choice(len(thr), min(len(thr), 60), replace=False)]
    assert _fixed_input_check(model, lo, hi, pts + thr, output="class") >= len(pts) - 2


def test_a_forests_exact_ties_go_to_the_first_class_as_predict_says():
    """Four deep trees vote with (nearly) pure leaves: whole regions tie at 0.5/0.5, where
    predict takes the first class; the MILP gives predict's class at every sampled input,
    ties included (add_argmax alone leaves ties of different scores out)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (300, 2))
    y = (X[:, 0] + 0.3 * rng.normal(size=300) > 0).astype(int)
    model = sk_ens.RandomForestClassifier(4, max_depth=6, random_state=1).fit(X, y)
    P = rng.uniform(-1, 1, (200, 2))
    proba = model.predict_proba(P)
    top = np.sort(proba, axis=1)
    ties = top[:, -1] == top[:, -2]
    assert ties.sum() >= 5
    lo, hi = -np.ones(2), np.ones(2)
    assert _fixed_input_check(model, lo, hi, list(P), output="class") == len(P)


@pytest.mark.parametrize("name", ["dt_clf", "rf_clf", "gb_multi"])
def test_every_class_seen_on_samples_is_found_by_the_milp_and_verified(name):
    """Ask the MILP for an input of each class: found (and verified by solve against predict)
    for every class some sample of the box gets; each answer's predicted class is the one
    asked for."""
    model, X = _make(name)
    lo, hi = X.min(axis=0), X.max(axis=0)
    seen = set(np.searchsorted(model.classes_, model.predict(
        np.random.default_rng(0).uniform(lo, hi, (500, lo.size)))).tolist())
    for c in range(len(model.classes_)):
        h = highs()
        x = h.addVariables(lo.size, lb=lo.tolist(), ub=hi.tolist())
        hd = milp.add_predictor(h, model, x)
        assert hd.output == "class"
        h.changeColBounds(int(hd.class_cols[c]), 1.0, 1.0)
        sol = milp.solve(h)
        if c in seen:
            assert sol.status == "OPTIMAL"
        if sol.status == "OPTIMAL":
            xs = sol.inputs[hd.name]
            assert model.predict(xs[None, :])[0] == model.classes_[c]
            assert sol.outputs[hd.name][0] == c


def test_float64_inputs_rounding_up_to_an_xgboost_split_value_go_right_in_the_milp():
    """XGBoost rounds inputs to float32 and its split values are (rounded) training values,
    which go right: a float64 input a quarter of a float32 step below a split value rounds
    up to it and goes right. It is in the MILP with XGBoost's own leaves (the right side once
    started at the split value itself, leaving out every float64 input that rounds up to it:
    85% of load_diabetes' rows, features times 50, on 50 trees of depth 6)."""
    xgb = pytest.importorskip("xgboost")
    X, y = _diabetes()
    X = X * 50  # magnitudes 1..10, where a float32 step is well above HiGHS' tolerance
    model = xgb.XGBRegressor(n_estimators=5, max_depth=3).fit(X, y)
    ens = read_ensemble(model)
    lo, hi = X.min(axis=0), X.max(axis=0)
    rng = np.random.default_rng(5)
    base = next(p for p in rng.uniform(lo, hi, (50, lo.size)) if not _in_gap(ens, p))
    pts = []
    for T in ens.trees:
        for n in np.flatnonzero(T.left != -1):
            t = float(T.threshold[n])
            if abs(t) >= 1.0:
                p = base.copy()
                p[int(T.feature[n])] = t - 0.25 * float(np.spacing(np.float32(t)))
                pts.append(p)
    pts = [p for p in pts if np.all((p >= lo) & (p <= hi))][:12]
    assert len(pts) >= 6
    lib = model.get_booster().predict(xgb.DMatrix(np.array(pts)), pred_leaf=True).astype(int)
    np.testing.assert_array_equal(ens.apply(np.array(pts)), lib)  # rounded up: right
    assert not any(_in_gap(ens, p) for p in pts)
    assert _fixed_input_check(model, lo, hi, pts) == len(pts)


@pytest.mark.parametrize("name", ["xgb_reg", "lgb_reg", "gb_reg"])
def test_at_each_threshold_the_left_and_right_values_reach_the_libraries_leaves(name):
    """At every split, emlpress' leaf walk equals the library's own (XGBoost's pred_leaf node
    ids, LightGBM's leaf outputs, scikit-learn's apply) at the largest input that goes left,
    one float step either side of it (float32 for scikit-learn and XGBoost, float64 for
    LightGBM) and the smallest input the MILP sends right; there, the MILP gives that leaf."""
    model, X = _make(name)
    ens = read_ensemble(model)
    lo, hi = X.min(axis=0), X.max(axis=0)
    pts, steps = [], []
    for T in ens.trees:
        for n in np.flatnonzero(T.left != -1):
            f = int(T.feature[n])
            left, right = Rule.sides(T.rule, float(T.threshold[n]))
            for v, out in ((left, pts), (right, pts), (_step(T.rule, left, 1), steps),
                           (_step(T.rule, left, -1), steps)):
                p = (lo + hi) / 2
                p[f] = v
                out.append(p)
    # one float step either side of the last value that goes left: the library's precision
    P = np.array(pts + steps)
    ours = ens.apply(P)
    if name.startswith("xgb"):
        import xgboost as xgb

        lib = model.get_booster().predict(xgb.DMatrix(P), pred_leaf=True).astype(int)
        np.testing.assert_array_equal(ours, lib)
    elif name.startswith("lgb"):
        b = model.booster_
        lib = b.predict(P, pred_leaf=True)
        for t, T in enumerate(ens.trees):
            want = [b.get_leaf_output(t, int(i)) for i in lib[:, t]]
            np.testing.assert_array_equal(T.value[ours[:, t], 0], want)
    else:
        np.testing.assert_array_equal(ours, model.apply(P).reshape(len(P), -1))
    _fixed_input_check(model, lo, hi, pts)


@pytest.mark.parametrize("name", ["rf_reg", "gb_multi", "rf_clf", "xgb_multi", "lgb_bin", "et_reg2",
                                  "xgb_rf", "lgb_rf"])
def test_output_bounds_hold_on_samples_and_dropped_leaves_are_unreachable(name):
    model, X = _make(name)
    ens = read_ensemble(model)
    rng = np.random.default_rng(3)
    a, b = X.min(axis=0), X.max(axis=0)
    # a sub-box: most trees lose leaves
    lo = a + (b - a) * rng.uniform(0.0, 0.5, a.size)
    hi = lo + (b - lo) * rng.uniform(0.1, 0.6, a.size)
    L, U, dropped = milp.output_bounds(model, lo, hi)
    assert dropped > 0
    S = np.vstack([rng.uniform(lo, hi, (3000, lo.size)),
                   [np.where(rng.random(lo.size) < 0.5, lo, hi) for _ in range(64)],
                   np.clip(_threshold_points(ens, (lo + hi) / 2, lo, hi), lo, hi)])
    s = ens.scores(S)
    assert np.all(s >= L) and np.all(s <= U)
    # the dropped leaves: never reached by a sample (the library's own leaves where it gives
    # node ids), and the box logic agrees: a leaf is kept iff its path's box is not empty
    reached = ens.apply(S)
    if name in ("rf_reg", "rf_clf", "et_reg2"):
        np.testing.assert_array_equal(reached, model.apply(S))
    h = highs()
    x = h.addVariables(lo.size, lb=lo.tolist(), ub=hi.tolist())
    hd = milp.add_predictor(h, model, x, output="raw")
    assert hd.n_dropped == dropped
    np.testing.assert_allclose(hd.lower, L)
    np.testing.assert_allclose(hd.upper, U)
    for t, T in enumerate(ens.trees):
        kept = set(hd.tree_leaves[t].tolist())
        assert set(reached[:, t].tolist()) <= kept
        assert kept == set(_box_leaves(T, lo, hi))
    # the bounds are the box's: each score's optimum lies within them, and is a sampled max or better
    for k in range(ens.n_scores):
        h.setObjective(hd.outputs[k], sense=MAX)
        sol = milp.solve(h, mip_gap=0, mip_abs_gap=0)
        assert sol.status == "OPTIMAL"
        slack = float(hd._slack[k]) + 1e-9  # XGBoost's own float32 sum rounds
        assert s[:, k].max() - slack <= sol.objective <= U[k]
        assert sol.verify_diff[hd.name] <= max(1e-9, float(np.max(hd._slack)))


def _box_leaves(T, lo, hi):
    """Leaves whose path's box meets [lo, hi], by interval arithmetic on the split's sides and
    the library's rounding of inputs (float32 for scikit-learn and XGBoost): an independent
    statement of reachability."""
    def rounded(v):
        return v if T.rule == Rule.LIGHTGBM else float(np.float32(v))

    out, stack = [], [(0, lo.astype(float).copy(), hi.astype(float).copy())]
    while stack:
        n, a, b = stack.pop()
        if T.left[n] == -1:
            out.append(n)
            continue
        f = int(T.feature[n])
        left_max, _ = Rule.boundary(T.rule, float(T.threshold[n]))  # the library's own
        if rounded(a[f]) <= left_max:
            b2 = b.copy()
            b2[f] = min(b[f], left_max)
            stack.append((T.left[n], a, b2))
        if rounded(b[f]) > left_max:
            a2 = a.copy()
            a2[f] = max(a[f], _step(T.rule, left_max, 1))
            stack.append((T.right[n], a2, b))
    return sorted(out)


def test_handle_reports_and_verifies():
    model, X = _make("gb_reg")
    lo, hi = X.min(axis=0), X.max(axis=0)
    h = highs()
    x = h.addVariables(lo.size, lb=lo.tolist(), ub=(lo + 0.3 * (hi - lo)).tolist())
    hd = milp.add_predictor(h, model, x, name="gbr")
    assert isinstance(hd, milp.EnsembleHandle)
    h.setObjective(hd.outputs[0], sense=MIN)
    sol = milp.solve(h, mip_gap=0)
    assert sol.status == "OPTIMAL"
    assert hd.get_error(sol)[0] <= 1e-9
    assert sol.objective == pytest.approx(model.predict(sol.inputs["gbr"][None, :])[0], abs=1e-9)
    import io

    buf = io.StringIO()
    hd.print_stats(file=buf)
    line = buf.getvalue()
    assert "GradientBoostingRegressor" in line and f"{hd.n_dropped} leaves dropped" in line
    assert hd.n_dropped > 0 and hd.stats()["dropped leaves"] == hd.n_dropped


# ----------------------------------------------------------------------------- bad input


def _refused(model, n_in=3, match="", exc=ValueError, **options):
    h = highs()
    x = h.addVariables(n_in, lb=[0.0] * n_in, ub=[1.0] * n_in)
    n0, r0 = h.getNumCol(), h.getNumRow()
    with pytest.raises(exc, match=match) as e:
        milp.add_predictor(h, model, x, **options)
    assert "\n" not in str(e.value)
    assert (h.getNumCol(), h.getNumRow()) == (n0, r0)  # nothing added


def test_unfitted_models_are_refused_naming_them():
    _refused(sk_ens.RandomForestRegressor(), match="RandomForestRegressor is not fitted")
    _refused(sk_ens.GradientBoostingClassifier(), match="GradientBoostingClassifier is not fitted")
    xgb = pytest.importorskip("xgboost")
    _refused(xgb.XGBRegressor(), match="XGBRegressor is not fitted")
    lgb = pytest.importorskip("lightgbm")
    _refused(lgb.LGBMClassifier(), match="LGBMClassifier is not fitted")


def test_feature_count_nan_and_unsupported_options_are_refused():
    model, X = _make("gb_reg")
    _refused(model, n_in=4, match="takes 3 inputs, got 4")
    _refused(model, match="output.*'raw' or 'class'.*not piecewise linear", output="proba")
    _refused(model, match="not a classifier", output="class")
    _refused(model, match="margin: applies to output='class' only", margin=0.1)
    clf, _ = _make("gb_bin")
    _refused(clf, match="margin: expected a finite number >= 0", margin=-1.0)
    from sklearn.linear_model import LinearRegression

    X, y = _synthetic(5)
    _refused(sk_ens.GradientBoostingRegressor(n_estimators=2, init=LinearRegression()).fit(X, y),
             match="init estimator LinearRegression.*not constant")
    rf, _ = _make("rf_reg")
    T = rf.estimators_[2].tree_
    T.value[np.flatnonzero(T.children_left == -1)[0]] = np.nan
    _refused(rf, n_in=4, match="tree 2 has a NaN or infinite leaf value")


def test_a_regression_tree_goes_to_add_tree_and_refuses_a_class_output():
    from sklearn.tree import DecisionTreeRegressor

    X, y = _synthetic(4)
    tree = DecisionTreeRegressor(max_depth=3).fit(X, y)
    h = highs()
    x = h.addVariables(3, lb=[-1.0] * 3, ub=[1.0] * 3)
    assert isinstance(milp.add_predictor(h, tree, x, output="raw"), milp.TreeHandle)
    _refused(tree, match="DecisionTreeRegressor is not a classifier", output="class")
    _refused(DecisionTreeRegressor(), match="DecisionTreeRegressor is not fitted")


def test_unsupported_boosters_are_refused_naming_them():
    xgb = pytest.importorskip("xgboost")
    X, y = _synthetic(0)
    _refused(xgb.XGBRegressor(n_estimators=2, booster="gblinear").fit(X, y), match="'gblinear'")
    _refused(xgb.XGBRegressor(n_estimators=2, booster="dart").fit(X, y), match="'dart'")
    _refused(xgb.XGBRegressor(n_estimators=2, missing=0.0).fit(X, y), match="missing=0.0")
    lgb = pytest.importorskip("lightgbm")
    _refused(lgb.LGBMRegressor(n_estimators=2, linear_tree=True, verbose=-1).fit(X, y),
             match="linear trees")
    _refused(lgb.LGBMRegressor(n_estimators=2, zero_as_missing=True, verbose=-1).fit(X, y),
             match="zero as missing")


def test_an_xgboost_model_changed_after_it_was_added_is_named_when_evaluated():
    """The encoding keeps a copy of the booster for its evaluations: a refit of the user's
    model (or an in-place update of a Booster) would be verified against the old trees, so the
    evaluation refuses it; an attribute set on the booster changes no tree and passes."""
    xgb = pytest.importorskip("xgboost")
    X, y = _synthetic(7)
    for kind in ("wrapper", "booster"):
        if kind == "wrapper":
            model = xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(X, y > 0)
        else:
            dtrain = xgb.DMatrix(X, label=y)
            model = xgb.train({"max_depth": 2, "nthread": 1}, dtrain, num_boost_round=3)
        h = highs()
        x = h.addVariables(3, lb=[-4.0] * 3, ub=[4.0] * 3)
        hd = milp.add_predictor(h, model, x, **({"output": "class"} if kind == "wrapper" else {}))
        h.setObjective(hd.outputs[0], sense=MAX)
        sol = milp.solve(h, mip_gap=0)
        assert hd.get_error(sol)[0] <= 1e-3
        (model if kind == "booster" else model.get_booster()).set_attr(note="seen")
        assert hd.get_error(sol)[0] <= 1e-3  # an attribute is no refit
        if kind == "wrapper":
            model.fit(X, y < 0)  # the same shape, other trees
        else:
            model.update(dtrain, 3)  # a fourth round, in place
        name = "XGBClassifier" if kind == "wrapper" else "Booster"
        with pytest.raises(ValueError, match=f"this {name} changed after it was added") as e:
            hd.get_error(sol)
        assert "\n" not in str(e.value)


_FITTED = {}


def _fitted_model(name):
    if name not in _FITTED:
        _FITTED[name] = _make(name)
    return _FITTED[name]


@settings(max_examples=25)
@given(name=st.sampled_from(["rf_reg", "gb_bin", "rf_clf", "xgb_reg", "lgb_multi"]),
       seed=st.integers(0, 2**32 - 1), snap=st.floats(0.0, 1.0), flat=st.floats(0.0, 0.5))
def test_output_bounds_hold_on_any_box_including_thresholds_and_points(name, seed, snap, flat):
    """Property: on a random box whose ends sit at split thresholds (either side) with
    probability ``snap`` and are single points with probability ``flat``, every score the
    model computes at samples, corners and threshold points of the box lies within
    output_bounds, and no sample reaches a dropped leaf."""
    model, X = _fitted_model(name)
    ens = read_ensemble(model)
    rng = np.random.default_rng(seed)
    a, b = X.min(axis=0), X.max(axis=0)
    lo, hi = np.sort(rng.uniform(a, b, (2, a.size)), axis=0)
    splits = [(int(T.feature[n]), float(T.threshold[n]), T.rule) for T in ens.trees
              for n in np.flatnonzero(T.left != -1)]
    for f, t, rule in (splits[i] for i in rng.choice(len(splits), 4)):
        if rng.random() < snap:
            v = Rule.sides(rule, t)[rng.integers(2)]
            lo[f], hi[f] = (v, max(hi[f], v)) if rng.random() < 0.5 else (min(lo[f], v), v)
    flat_f = rng.random(a.size) < flat
    hi[flat_f] = lo[flat_f]
    L, U, dropped = milp.output_bounds(model, lo, hi)
    S = np.vstack([rng.uniform(lo, hi, (200, lo.size)),
                   [np.where(rng.random(lo.size) < 0.5, lo, hi) for _ in range(16)],
                   np.clip(_threshold_points(ens, (lo + hi) / 2, lo, hi)[:200], lo, hi)])
    s = ens.scores(S)
    assert np.all(s >= L) and np.all(s <= U), (s.min(axis=0) - L, U - s.max(axis=0))
    kept = [set(milp.tree.reachable_leaves(T, lo, hi).tolist()) for T in ens.trees]
    assert sum(T.leaves.size - len(k) for T, k in zip(ens.trees, kept)) == dropped
    reached = ens.apply(S)
    assert all(set(reached[:, t].tolist()) <= kept[t] for t in range(len(ens.trees)))


def test_an_empty_box_is_refused_naming_the_feature():
    model, _ = _make("gb_reg")
    with pytest.raises(ValueError, match="box is empty at feature 1"):
        milp.output_bounds(model, [0.0, 0.0, 0.0], [1.0, -1.0, 1.0])
    h = highs()
    x = h.addVariables(3, lb=[0.0, 2.0, 0.0], ub=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="inputs: the box is empty at feature 1"):
        milp.add_predictor(h, model, x)


@pytest.mark.parametrize("name", ["gb_multi", "xgb_multi"])
def test_a_class_margin_holds_at_the_answer(name):
    """margin=m: the answer's predicted class leads every other raw score by at least m
    (a robust classification), for every class the MILP finds (at least two here)."""
    model, X = _make(name)
    lo, hi = X.min(axis=0), X.max(axis=0)
    m, found = 0.3, 0
    for c in range(3):
        h = highs()
        x = h.addVariables(lo.size, lb=lo.tolist(), ub=hi.tolist())
        hd = milp.add_predictor(h, model, x, margin=m)
        h.changeColBounds(int(hd.class_cols[c]), 1.0, 1.0)
        h.setObjective(x[0], sense=MIN)
        sol = milp.solve(h)
        if sol.status != "OPTIMAL":
            continue
        s = hd.ensemble.scores(sol.inputs[hd.name][None, :])[0]
        assert int(np.argmax(s)) == c
        assert np.all(s[c] - np.delete(s, c) >= m - 1e-6)
        found += 1
    assert found >= 2


def test_inputs_passed_in_any_order_keep_their_own_bounds():
    """Inputs given in an order other than their columns' (HiGHS' getCols takes increasing
    sets only, and once returned zeros: every box [0, 0], the bounds one leaf's value and a
    network's 'OPTIMAL' below a sampled value): the ensemble's bounds are output_bounds on the
    permuted box, and the optimum of an ensemble and of a network is at least every sample's."""
    from emlpress import Network

    X, y = _synthetic(12)
    X = X * np.array([1.0, 3.0, 0.5])
    model = sk_ens.RandomForestRegressor(4, max_depth=4, random_state=0).fit(X, y)
    rng = np.random.default_rng(4)
    net = Network([rng.normal(size=(6, 3)), rng.normal(size=(1, 6))], [rng.normal(size=6), np.zeros(1)])
    lo, hi = X.min(axis=0), X.max(axis=0)
    perm = [2, 0, 1]
    S = rng.uniform(lo[perm], hi[perm], (2000, 3))  # in the models' feature order
    for m, f in ((model, model.predict), (net, lambda Z: net.forward(Z)[:, 0])):
        h = highs()
        x = h.addVariables(3, lb=lo.tolist(), ub=hi.tolist())
        hd = milp.add_predictor(h, m, [x[q] for q in perm])
        if m is model:
            L, U, dropped = milp.output_bounds(model, lo[perm], hi[perm])
            np.testing.assert_array_equal(hd.lower, L)
            np.testing.assert_array_equal(hd.upper, U)
            assert hd.n_dropped == dropped
        h.setObjective(hd.outputs[0], sense=MAX)
        sol = milp.solve(h, mip_gap=0)
        assert sol.status == "OPTIMAL"
        assert sol.objective >= f(S).max() - 1e-9


@pytest.mark.parametrize("name", ["xgb_reg_small", "xgb_reg"])
def test_an_xgboost_optimum_is_verified_optimal_and_beats_every_sample(name):
    """The optimum sits at the edge of a leaf's region: with the right side at the exact
    float32 rounding boundary HiGHS answered there within its tolerance, across it (XGBoost
    sent it left), and solve repaired it to a worse FEASIBLE point (223.02 -> 206.62 on
    load_diabetes); the margin keeps the answer OPTIMAL and at least every sample."""
    model, X = _make(name)
    lo, hi = X.min(axis=0), X.max(axis=0)
    S = np.random.default_rng(6).uniform(lo, hi, (3000, lo.size))
    s = model.predict(S)
    for sense, better in ((MAX, np.greater_equal), (MIN, np.less_equal)):
        h = highs()
        x = h.addVariables(lo.size, lb=lo.tolist(), ub=hi.tolist())
        hd = milp.add_predictor(h, model, x)
        h.setObjective(hd.outputs[0], sense=sense)
        sol = milp.solve(h, mip_gap=0)
        assert sol.status == "OPTIMAL" and sol.repaired == "", (sol.status, sol.repaired)
        slack = float(hd._slack[0]) + 1e-9
        assert better(sol.objective + (slack if sense == MAX else -slack), s.max() if sense == MAX else s.min())
