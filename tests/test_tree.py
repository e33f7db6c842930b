"""Decision trees in the MILP: optima against an enumeration of the leaves' regions, and
every solution against tree.predict."""

import numpy as np
import pytest

sklearn_tree = pytest.importorskip("sklearn.tree")

import highspy  # noqa: E402

from emlpress import milp  # noqa: E402
from emlpress._highs import highs  # noqa: E402


def _leaf_regions(tree, lo, hi):
    """Per leaf, its box of float32 inputs within [lo, hi] (None when empty), from the paths:
    left when float32(x) <= threshold."""
    t = tree.tree_
    out = {}
    stack = [(0, np.asarray(lo, float).copy(), np.asarray(hi, float).copy())]
    while stack:
        n, a, b = stack.pop()
        if np.any(a > b):
            continue
        if t.children_left[n] == -1:
            out[n] = (a, b)
            continue
        f, th = t.feature[n], t.threshold[n]
        f32 = np.float32(th)
        left_max = float(f32 if float(f32) <= th else np.nextafter(f32, np.float32(-np.inf)))
        right_min = float(np.nextafter(np.float32(left_max), np.float32(np.inf)))
        al, bl = a.copy(), b.copy()
        bl[f] = min(bl[f], left_max)
        ar, br = a.copy(), b.copy()
        ar[f] = max(ar[f], right_min)
        stack += [(t.children_left[n], al, bl), (t.children_right[n], ar, br)]
    return out


def _fit(seed, n_out, depth, n_in=3, integer=False):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (400, n_in))
    if integer:
        X = np.round(X * 3)
    Y = np.column_stack([np.sin(X @ rng.normal(size=n_in)) + 0.1 * k for k in range(n_out)])
    return sklearn_tree.DecisionTreeRegressor(max_depth=depth, random_state=seed).fit(X, Y if n_out > 1 else Y[:, 0]), X


@pytest.mark.parametrize("seed", range(8))
def test_tree_optimum_equals_the_best_reachable_leaf_and_predict(seed):
    rng = np.random.default_rng(100 + seed)
    n_out = 1 + seed % 3
    tree, X = _fit(seed, n_out, depth=2 + seed % 6)
    lo = rng.uniform(-2, 0, 3)
    hi = lo + rng.uniform(0.1, 3, 3)
    regions = _leaf_regions(tree, lo, hi)
    values = tree.tree_.value[:, :, 0]
    for k in range(n_out):
        for sense, pick in ((highspy.ObjSense.kMaximize, max), (highspy.ObjSense.kMinimize, min)):
            h = highs()
            x = h.addVariables(3, lb=lo.tolist(), ub=hi.tolist())
            hd = milp.add_tree(h, tree, [v.index for v in x])
            h.setObjective(hd.outputs[k], sense=sense)
            sol = milp.solve(h, mip_gap=0, mip_abs_gap=0)
            assert sol.status == "OPTIMAL"
            best = pick(values[n, k] for n in regions)
            assert sol.objective == pytest.approx(best, abs=1e-9)
            xs, ys = hd.values(sol)
            p = np.asarray(tree.predict(xs[None, :])).reshape(-1)
            np.testing.assert_allclose(p, ys, atol=1e-9)
            assert hd.leaf(sol) == tree.apply(xs[None, :].astype(np.float32))[0]


def test_integer_inputs_on_a_threshold_go_left_as_predict_says():
    """Integer features: thresholds sit at half-integers, and an input fixed at every value
    of a grid gives the tree's own prediction."""
    tree, X = _fit(3, 2, depth=6, n_in=2, integer=True)
    for a in range(-6, 7, 2):
        for b in range(-6, 7, 3):
            h = highs()
            x = h.addVariables(2, lb=[float(a), float(b)], ub=[float(a), float(b)])
            hd = milp.add_tree(h, tree, [v.index for v in x])
            h.setObjective(hd.outputs[0], sense=highspy.ObjSense.kMaximize)
            sol = milp.solve(h, mip_gap=0)
            np.testing.assert_allclose(sol.outputs[hd.name], tree.predict([[a, b]])[0], atol=1e-9)


def test_a_threshold_exactly_at_an_input_value():
    """A hand-set threshold equal to a float32 value: that value goes left, the next float32
    goes right."""
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    tree = sklearn_tree.DecisionTreeRegressor(max_depth=1).fit(X, [0.0, 0.0, 5.0, 5.0])
    tree.tree_.threshold[0] = 1.5
    for v, want in ((1.5, 0.0), (float(np.nextafter(np.float32(1.5), np.float32(9))), 5.0)):
        h = highs()
        x = h.addVariables(1, lb=[v], ub=[v])
        hd = milp.add_tree(h, tree, [x[0].index])
        h.setObjective(hd.outputs[0], sense=highspy.ObjSense.kMaximize)
        sol = milp.solve(h, mip_gap=0)
        assert sol.status == "OPTIMAL" and sol.objective == want == tree.predict([[v]])[0]


def test_classifiers_and_unfitted_objects_are_refused():
    from sklearn.tree import DecisionTreeClassifier

    clf = DecisionTreeClassifier(max_depth=2).fit([[0.0], [1.0]], [0, 1])
    h = highs()
    x = h.addVariables(1, lb=0.0, ub=1.0)
    with pytest.raises(TypeError, match="classifier"):
        milp.add_tree(h, clf, [x[0].index])
    with pytest.raises(TypeError, match="fitted scikit-learn decision tree"):
        milp.add_tree(h, object(), [x[0].index])


@pytest.mark.parametrize("seed", range(3))
def test_leaves_the_box_cannot_reach_are_dropped_and_never_reached(seed):
    """A small box: the leaves without a binary are never reached by tree.apply on samples
    and corners, every leaf with a non-empty region (the enumeration above) keeps its binary,
    and the count is in print_stats."""
    import io

    rng = np.random.default_rng(200 + seed)
    tree, X = _fit(seed, 1, depth=6)
    lo = rng.uniform(-2, 1, 3)
    hi = lo + rng.uniform(0.2, 1.0, 3)
    h = highs()
    x = h.addVariables(3, lb=lo.tolist(), ub=hi.tolist())
    hd = milp.add_tree(h, tree, [v.index for v in x])
    all_leaves = np.flatnonzero(tree.tree_.children_left == -1)
    assert hd.n_dropped == all_leaves.size - hd.leaves.size > 0
    assert hd.n_binaries == hd.leaves.size
    assert set(_leaf_regions(tree, lo, hi)) <= set(hd.leaves.tolist())
    S = np.vstack([rng.uniform(lo, hi, (4000, 3)),
                   [[(lo, hi)[b][i] for i, b in enumerate(c)] for c in np.ndindex(2, 2, 2)]])
    assert set(tree.apply(S).tolist()) <= set(hd.leaves.tolist())
    buf = io.StringIO()
    hd.print_stats(file=buf)
    assert f"{hd.n_dropped} leaves dropped" in buf.getvalue()
    # and the optimum over the box is still the best reachable leaf
    values = tree.tree_.value[:, 0, 0]
    h.setObjective(hd.outputs[0], sense=highspy.ObjSense.kMaximize)
    sol = milp.solve(h, mip_gap=0, mip_abs_gap=0)
    assert sol.objective == pytest.approx(max(values[n] for n in _leaf_regions(tree, lo, hi)), abs=1e-9)
