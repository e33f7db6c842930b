"""Tree ensembles in a HiGHS MILP: scikit-learn's forests and gradient boosting, its
``DecisionTreeClassifier``, and (through :mod:`emlpress.milp.boosters`) XGBoost and
LightGBM, each as a sum of trees whose rows come from :func:`emlpress.milp.tree.tree_rows`.

Every kind is read into an :class:`Ensemble`: trees (:class:`~emlpress.milp.tree.TreeArrays`
with their library's comparison rule), a weight per tree, the score each value column adds
to and a constant ``offset``, so that the model's raw scores are exactly

``score_k = offset_k + sum over trees t of weight_t * value_t[leaf_t(x), j]`` (``target_t[j] = k``)

- ``RandomForestRegressor``/``ExtraTreesRegressor``: weight ``1/n_trees``, ``predict``;
- ``RandomForestClassifier``/``ExtraTreesClassifier``, ``DecisionTreeClassifier``: the
  leaves' class fractions, weight ``1/n_trees``: ``predict_proba``, piecewise constant, so
  the predicted class (``argmax``, numpy's first maximum) is exactly encodable;
- ``GradientBoostingRegressor``/``Classifier``: the constant init's raw prediction plus
  ``learning_rate`` times every tree: ``predict`` / ``decision_function``;
- XGBoost and LightGBM: see :mod:`emlpress.milp.boosters`.

:func:`add_ensemble` (and :func:`~emlpress.milp.add_predictor`) embeds the scores
(``output="raw"``: ``predict`` of a regressor, ``decision_function``/margins of a boosted
classifier, ``predict_proba`` of a forest or tree classifier) or, for a classifier, the
predicted class (``output="class"``, the default for classifiers: one integer output, the
index of the class in ``classes_``, through :func:`emlpress.milp.classify.add_argmax` and its
tie rule; gradient boosting's binary rule is ``decision_function >= 0``). A forest's or a
tree's class fractions are piecewise constant and tie exactly on whole regions (pure leaves,
an even number of trees): there the first class wins, as numpy's ``argmax`` in ``predict``,
through a tie-break shift of the argmax's scores by ``(K - 1 - k) * eps`` (``eps`` four times
add_argmax's gap); a later class that truly leads by less than ``eps`` is left out. Where
the model's own scores round more than add_argmax's gap (XGBoost's float32 margins), the
class must lead by twice the scores' rounding bound (the points nearer a tie are left out).

**Sound output bounds and dropped leaves.** On the input box, each tree keeps only the leaves
some input of the box reaches by the library's own comparison
(:func:`~emlpress.milp.tree.reachable_leaves`); the others get no binary (``n_dropped``).
Each score's bounds are ``offset + sum over trees of (the min, the max of weight * value over
the kept leaves)``, widened by the rounding of the model's own sum (``(terms + 2) * u *
(|offset| + sum of max |weight * value|)``, ``u`` its unit roundoff: 2^-53 in float64, 2^-24
for XGBoost's float32): every value the model computes on the box is inside
(:func:`output_bounds`); they are the score columns' bounds and the argmax's big-Ms.

**Verification.** The handle's ``predict`` is the model's own (``predict``,
``decision_function``, ``predict_proba``, the booster's margin); :func:`~emlpress.milp.solve`
flags a score that differs by more than ``VERIFY_RTOL`` relative to max(1, |score|) or the
model's own rounding bound above (XGBoost sums in float32), and a class that differs at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from emlpress._highs import Builder, tighten_tolerances
from emlpress.milp.handle import VERIFY_RTOL, PredictorHandle, _new_inputs
from emlpress.milp.tree import (TOL, LeafStats, TreeArrays, nonempty_box, reachable_leaves,
                                sklearn_tree_arrays, tree_rows)

__all__ = ["add_ensemble", "EnsembleHandle", "Ensemble", "read_ensemble", "output_bounds",
           "SKLEARN_ENSEMBLES"]

#: the scikit-learn classes read here (by name: scikit-learn is imported only when one is used)
SKLEARN_ENSEMBLES = ("RandomForestRegressor", "RandomForestClassifier", "ExtraTreesRegressor",
                     "ExtraTreesClassifier", "GradientBoostingRegressor",
                     "GradientBoostingClassifier", "DecisionTreeClassifier",
                     "DecisionTreeRegressor", "ExtraTreeRegressor", "ExtraTreeClassifier")
_F64, _F32 = 2.0 ** -53, 2.0 ** -24


@dataclass
class Ensemble:
    """A tree ensemble read from its library: ``score_k = offset[k] + sum_t weights[t] *
    trees[t].value[leaf, j]`` over the value columns ``j`` with ``targets[t][j] == k``.

    ``scores(X)``: the model's own raw scores, shape ``(n, n_scores)``, for ``X`` of shape
    ``(n, n_features)``; ``labels(X)``: its ``predict`` (classifiers); ``classes``: its
    ``classes_``; ``class_rule``: ``"argmax"`` (numpy's first maximum) or ``">=0"`` (one
    score, class 1 where it is >= 0: scikit-learn's binary gradient boosting) or ``">0"``.
    ``unit_roundoff``: of the model's own sum (2^-53 float64, 2^-24 float32)."""

    kind: str
    trees: list
    targets: list
    weights: np.ndarray
    offset: np.ndarray
    n_features: int
    scores: Callable
    unit_roundoff: float = _F64
    score_kind: str = "predict"
    classes: np.ndarray | None = None
    labels: Callable | None = None
    class_rule: str = ""

    @property
    def n_scores(self) -> int:
        return int(self.offset.size)

    def apply(self, X) -> np.ndarray:
        """The leaf (node index) of every tree for each row of ``X``: shape ``(n, n_trees)``,
        by each library's own comparison rule."""
        return np.column_stack([T.apply(X) for T in self.trees])

    def check(self) -> None:
        """Raise ValueError naming the first tree with a NaN or infinite value or threshold."""
        if not np.all(np.isfinite(self.offset)):
            raise ValueError(f"model: {self.kind} has a NaN or infinite base score / init "
                             f"({self.offset.tolist()})")
        for t, T in enumerate(self.trees):
            inner = T.left != -1
            if not np.all(np.isfinite(T.value[~inner])):
                raise ValueError(f"model: {self.kind}, tree {t} has a NaN or infinite leaf value")
            if not np.all(np.isfinite(T.threshold[inner])):
                raise ValueError(f"model: {self.kind}, tree {t} has a NaN or infinite threshold")
            if inner.any() and (T.feature[inner].min() < 0 or T.feature[inner].max() >= self.n_features):
                raise ValueError(f"model: {self.kind}, tree {t} splits on a feature outside "
                                 f"0..{self.n_features - 1}")
        if not np.all(np.isfinite(self.weights)):
            raise ValueError(f"model: {self.kind} has a NaN or infinite tree weight (learning rate)")


def _sum_ranges(ens: Ensemble, keep: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, upper, rounding slack) of every score over the kept leaves of every tree."""
    lo, hi = ens.offset.astype(float).copy(), ens.offset.astype(float).copy()
    mag, terms = np.abs(ens.offset).astype(float), np.ones(ens.n_scores)
    for T, tg, w, leaves in zip(ens.trees, ens.targets, ens.weights, keep):
        v = w * T.value[leaves]  # (n_kept, n_cols)
        for j, k in enumerate(tg):
            lo[k] += v[:, j].min()
            hi[k] += v[:, j].max()
            mag[k] += np.abs(v[:, j]).max()
            terms[k] += 1
    slack = (terms + 2) * ens.unit_roundoff * mag
    return lo, hi, slack


def output_bounds(model, lo, hi) -> tuple[np.ndarray, np.ndarray, int]:
    """Sound bounds of a tree ensemble's raw scores (``predict``, ``decision_function`` or
    margins; ``predict_proba`` of forest and tree classifiers) on the box ``[lo, hi]``
    (shapes ``(n_features,)``): (lower, upper) of shape ``(n_scores,)``, in score units,
    such that every score the model itself computes at an input of the box lies within, and
    the number of leaves no input of the box reaches (dropped)."""
    ens = read_ensemble(model)
    lo, hi = np.asarray(lo, float).reshape(-1), np.asarray(hi, float).reshape(-1)
    if lo.size != ens.n_features or hi.size != ens.n_features:
        raise ValueError(f"lo/hi: {ens.kind} takes {ens.n_features} features, got {lo.size} and {hi.size}")
    nonempty_box(lo, hi, "lo/hi")
    keep = [reachable_leaves(T, lo, hi) for T in ens.trees]
    L, U, slack = _sum_ranges(ens, keep)
    dropped = sum(T.leaves.size - k.size for T, k in zip(ens.trees, keep))
    return L - slack, U + slack, int(dropped)


@dataclass
class EnsembleHandle(LeafStats, PredictorHandle):
    """A tree ensemble inside a HiGHS model. ``outputs``: the raw scores (``output="raw"``,
    shape ``(n_scores,)``) or the predicted class's index in ``classes_`` (``"class"``, one
    integer column). ``score_cols`` are the score columns in both cases, ``class_cols`` the
    per-class binaries (``"class"``), ``lower``/``upper`` the scores' sound bounds on the
    box, ``tree_leaves[t]``/``tree_leaf_cols[t]`` the kept leaves of tree ``t`` and their
    binaries; ``n_dropped`` leaves were unreachable in the box and have no binary."""

    name: str
    model: object
    ensemble: Ensemble
    output: str
    input_cols: np.ndarray
    output_cols: np.ndarray
    score_cols: np.ndarray
    class_cols: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    tree_leaves: list
    tree_leaf_cols: list
    n_vars: int
    n_binaries: int
    n_constraints: int
    n_dropped: int
    encode_s: float
    _h: object = field(repr=False, default=None)
    _slack: np.ndarray = field(repr=False, default=None)
    _tie_cols: np.ndarray = field(repr=False, default=None)  # score + shift (exact ties)
    _tie_shift: np.ndarray = field(repr=False, default=None)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The model's own evaluation at one input ``x`` (shape ``(n_in,)``): its raw scores
        (shape ``(n_scores,)``) or its predicted class's index (shape ``(1,)``)."""
        X = np.asarray(x, float).reshape(1, -1)
        if self.output == "class":
            label = np.asarray(self.ensemble.labels(X)).reshape(-1)[0]
            return np.array([float(np.flatnonzero(self.ensemble.classes == label)[0])])
        return np.asarray(self.ensemble.scores(X), float).reshape(-1)

    def leaves(self, solution) -> np.ndarray:
        """The leaf (node index) the MILP chose in each tree: shape ``(n_trees,)``."""
        x = np.asarray(solution.col_values)
        return np.array([int(lv[int(np.argmax(x[c]))]) for lv, c in
                         zip(self.tree_leaves, self.tree_leaf_cols)])

    def _mismatch(self, diff: float, scale: float) -> str | None:
        if self.output == "class":
            bad = diff > 0.5  # class indices: any difference
        else:
            bad = diff > max(VERIFY_RTOL * scale, float(np.max(self._slack)) + TOL * scale)
        if bad:
            return (f"ensemble {self.name!r}: the MILP's {self.output} outputs differ from the "
                    f"model's own by {diff:.3g}")
        return None

    def _exact_columns(self, x) -> tuple[np.ndarray, np.ndarray] | None:
        """The leaves each tree's own rule sends ``x`` to, the scores summed from them, and
        the class the argmax rule picks, as columns."""
        x = np.asarray(x, float).reshape(1, -1)
        ens = self.ensemble
        leaf = ens.apply(x)[0]
        cols, vals = [self.input_cols], [x[0]]
        s = ens.offset.astype(float).copy()
        for t, (T, tg, w) in enumerate(zip(ens.trees, ens.targets, ens.weights)):
            if leaf[t] not in set(self.tree_leaves[t].tolist()):
                return None  # outside the box's reach (cannot happen for x in the box)
            cols.append(self.tree_leaf_cols[t])
            vals.append((self.tree_leaves[t] == leaf[t]).astype(float))
            for j, k in enumerate(tg):
                s[k] += w * T.value[leaf[t], j]
        cols.append(self.score_cols)
        vals.append(s)
        if self.output == "class":
            idx = _class_index(ens, s)
            cols += [self.class_cols, self.output_cols, self._tie_cols]
            vals += [(np.arange(self.class_cols.size) == idx).astype(float), np.array([float(idx)]),
                     s + self._tie_shift if self._tie_cols.size else np.zeros(0)]
        return np.concatenate(cols).astype(np.int32), np.concatenate(vals)

    def _title(self) -> str:
        return (f"{type(self).__name__} {self.name!r} ({self.ensemble.kind}, "
                f"{len(self.ensemble.trees)} trees, output {self.output})")


def _class_index(ens: Ensemble, s: np.ndarray) -> int:
    """The class index the class rule picks from scores ``s`` (exact arithmetic aside)."""
    if ens.class_rule == ">=0":
        return int(s[0] >= 0)
    if ens.class_rule == ">0":
        return int(s[0] > 0)
    return int(np.argmax(s))


def add_ensemble(h, model, inputs, name: str = "ensemble", output: str | None = None,
                 margin: float = 0.0) -> EnsembleHandle:
    """Add a fitted tree ensemble (the kinds of :func:`read_ensemble`) to the
    ``highspy.Highs`` model ``h`` with ``inputs`` (highspy variables or column indices with
    finite bounds, one per feature) as its features.

    ``output``: ``"raw"`` (the scores: ``predict`` of a regressor, ``decision_function`` or
    the raw margin of a boosted classifier, ``predict_proba`` of a forest or tree
    classifier) or ``"class"`` (classifiers' default: the index of the predicted class in
    ``classes_``; ``margin`` > 0 makes the chosen class beat every other score by at least
    that much). Probabilities of boosted classifiers (a sigmoid or softmax of the margins)
    are not piecewise linear: ask for ``"raw"``. Returns an :class:`EnsembleHandle`."""
    t0 = time.perf_counter()
    ens = read_ensemble(model)
    if output is None:
        output = "class" if ens.classes is not None else "raw"
    if output not in ("raw", "class"):
        raise ValueError(f"output: expected 'raw' or 'class', got {output!r}"
                         + ("; probabilities of a boosted classifier are a sigmoid/softmax of "
                            "its margins, not piecewise linear: embed 'raw'"
                            if output in ("proba", "probability") else ""))
    if not (isinstance(margin, (int, float, np.floating)) and np.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin: expected a finite number >= 0 (score units), got {margin!r}")
    if margin != 0.0 and output != "class":
        raise ValueError(f"margin: applies to output='class' only (got output={output!r})")
    if output == "class" and ens.classes is None:
        raise ValueError(f"output='class': {ens.kind} is not a classifier (use output='raw')")
    registry, cols, lo, hi = _new_inputs(h, inputs, ens.n_features, name)
    nonempty_box(lo, hi, "inputs")
    tighten_tolerances(h, TOL)
    B = Builder(h.getNumCol())
    S = ens.n_scores
    score_cols = [B.col(0.0, 0.0, False) for _ in range(S)]  # bounds once the leaves are known
    rows = [[[], []] for _ in range(S)]  # per score: (columns, coefficients) of sum w v z
    keep, leaf_cols = [], []
    for T, tg, w in zip(ens.trees, ens.targets, ens.weights):
        leaves, z = tree_rows(B, T, cols, lo, hi)
        keep.append(leaves)
        leaf_cols.append(z)
        for j, k in enumerate(tg):
            rows[k][0] += z.tolist()
            rows[k][1] += (-w * T.value[leaves, j]).tolist()
    L, U, slack = _sum_ranges(ens, keep)
    lower, upper = L - slack, U + slack
    for k, y in enumerate(score_cols):  # y_k - sum w v z = offset_k
        B.lb[y - B.first], B.ub[y - B.first] = lower[k], upper[k]
        B.row([y] + rows[k][0], [1.0] + rows[k][1], float(ens.offset[k]), float(ens.offset[k]))
    n_vars, n_rows, _ = B.flush(h)
    for k, y in enumerate(score_cols):
        h.passColName(y, f"{name}.score{k}")
    class_cols, tie_cols, tie_shift = np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0)
    out_cols = np.asarray(score_cols, np.int32)
    if output == "class":
        class_cols, out_col, nv, nr, tie_cols, tie_shift = _add_class(h, ens, score_cols, lower,
                                                                      upper, margin, name, slack)
        out_cols = np.array([out_col], np.int32)
        n_vars, n_rows = n_vars + nv, n_rows + nr
    n_bin = sum(z.size for z in leaf_cols) + class_cols.size
    dropped = sum(T.leaves.size - k.size for T, k in zip(ens.trees, keep))
    handle = EnsembleHandle(name, model, ens, output, cols, out_cols,
                            np.asarray(score_cols, np.int32), class_cols, lower, upper, keep,
                            leaf_cols, n_vars, n_bin, n_rows, int(dropped),
                            time.perf_counter() - t0, h, slack, tie_cols, tie_shift)
    registry.append(handle)
    return handle


def _add_class(h, ens: Ensemble, score_cols, lower, upper, margin, name, slack):
    """(class binaries, the class index column, columns added, rows added, tie-break columns
    and shifts) for the class rule of ``ens`` on its score columns."""
    from emlpress.milp.classify import add_argmax

    n0, r0 = h.getNumCol(), h.getNumRow()
    # the model's own scores round (XGBoost: float32): the class must lead by twice that
    # much, or predict's class could differ from the exact sum's
    lead = max(float(margin), 2.0 * float(np.max(slack)))
    tie, shift = [], np.zeros(0)
    if ens.class_rule == ">=0":
        # scikit-learn's binary boosting: class 1 where s >= 0, the first maximum of (s, 0)
        zero = h.getNumCol()
        h.addCol(0.0, 0.0, 0.0, 0, [], [])
        z = add_argmax(h, [score_cols[0], zero], [lower[0], 0.0], [upper[0], 0.0], lead,
                       name=f"{name}.argmax")
        z = z[::-1].copy()  # argmax index 0 is class 1
    elif ens.score_kind == "predict_proba" and margin == 0.0:
        # piecewise constant scores tie exactly on whole regions (a forest of pure leaves, an
        # even number of trees), where add_argmax leaves ties out: the argmax is taken on
        # s_k + (K-1-k) eps instead, so an exact tie goes to the first class (numpy's rule)
        # with a lead of eps > add_argmax's gap; a later class that truly leads by less than
        # eps is left out (solve's check against predict would flag it)
        tie, shift = _tie_columns(h, score_cols, lower, upper)
        z = add_argmax(h, tie, lower + shift, upper + shift, 0.0, name=f"{name}.argmax")
    else:
        z = add_argmax(h, score_cols, lower, upper, lead, name=f"{name}.argmax")
    K = z.size
    c = h.getNumCol()  # the class index: sum_k k z_k
    h.addCol(0.0, 0.0, float(K - 1), 0, [], [])
    h.addRow(0.0, 0.0, K + 1, np.r_[c, z].astype(np.int32), np.r_[1.0, -np.arange(K, dtype=float)])
    h.passColName(c, f"{name}.class")
    return z, c, h.getNumCol() - n0, h.getNumRow() - r0, np.asarray(tie, np.int32), shift


def _tie_columns(h, score_cols, lower, upper) -> tuple[list, np.ndarray]:
    """(columns equal to score + shift, the shifts ``(K-1-k) eps``) with ``eps`` four times
    the gap :func:`~emlpress.milp.classify.add_argmax` computes on the shifted bounds."""
    from emlpress.milp.classify import TIE_GAP

    K = len(score_cols)
    eps = 4.0 * TIE_GAP * max(1.0, float(np.max(np.abs(np.r_[lower, upper]))))
    shift = eps * np.arange(K - 1, -1, -1, dtype=float)
    first = h.getNumCol()
    h.addCols(K, np.zeros(K), lower + shift, upper + shift, 0, np.zeros(0, np.int32),
              np.zeros(0, np.int32), np.zeros(0))
    tie = list(range(first, first + K))
    for k in range(K):  # tie_k - s_k = shift_k
        h.addRow(shift[k], shift[k], 2, np.array([tie[k], score_cols[k]], np.int32),
                 np.array([1.0, -1.0]))
    return tie, shift


# ---------------------------------------------------------------------------- readers


def read_ensemble(model) -> Ensemble:
    """The :class:`Ensemble` of a fitted model: scikit-learn's ``RandomForest*``,
    ``ExtraTrees*``, ``GradientBoosting*``, ``DecisionTree*``; XGBoost (``XGBRegressor``,
    ``XGBClassifier``, ``Booster``) and LightGBM (``LGBMRegressor``, ``LGBMClassifier``,
    ``Booster``). Raises TypeError (unsupported kind) or ValueError (unfitted, NaN, an
    unsupported objective or split), one line naming it, before anything is added."""
    mod = type(model).__module__
    if mod.startswith("xgboost") or mod.startswith("lightgbm"):
        from emlpress.milp import boosters

        ens = boosters.read_xgboost(model) if mod.startswith("xgboost") else boosters.read_lightgbm(model)
    elif mod.startswith("sklearn") and type(model).__name__ in SKLEARN_ENSEMBLES:
        ens = _read_sklearn(model)
    else:
        raise TypeError(f"model: {mod}.{type(model).__qualname__} is not a supported tree "
                        "ensemble (scikit-learn RandomForest/ExtraTrees/GradientBoosting/"
                        "DecisionTree, XGBoost, LightGBM)")
    ens.check()
    return ens


def _fitted(model) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        raise ValueError(f"model: this {type(model).__name__} is not fitted (call fit first)") from None


def _proba_tree(est) -> TreeArrays:
    """A classification tree's leaves as class fractions, normalized as its predict_proba does."""
    t = est.tree_
    if t.n_outputs != 1:
        raise ValueError(f"model: multi-output {type(est).__name__} classifiers are not supported")
    v = np.asarray(t.value[:, 0, :], np.float64)
    norm = v.sum(axis=1, keepdims=True)
    norm[norm == 0.0] = 1.0
    T = sklearn_tree_arrays(t)
    T.value = v / norm
    return T


def _read_sklearn(model) -> Ensemble:
    _fitted(model)
    kind = type(model).__name__
    n_features = int(model.n_features_in_)
    is_clf = hasattr(model, "classes_")
    if kind in ("DecisionTreeRegressor", "ExtraTreeRegressor"):
        T = sklearn_tree_arrays(model.tree_)
        n_out = T.value.shape[1]
        return Ensemble(kind, [T], [np.arange(n_out)], np.ones(1), np.zeros(n_out), n_features,
                        lambda X: np.asarray(model.predict(X), float).reshape(len(X), -1))
    if kind in ("DecisionTreeClassifier", "ExtraTreeClassifier"):
        T = _proba_tree(model)
        K = T.value.shape[1]
        return Ensemble(kind, [T], [np.arange(K)], np.ones(1), np.zeros(K), n_features,
                        lambda X: np.asarray(model.predict_proba(X), float), score_kind="predict_proba",
                        classes=np.asarray(model.classes_), labels=model.predict, class_rule="argmax")
    if kind.startswith(("RandomForest", "ExtraTrees")):
        ests = list(model.estimators_)
        w = np.full(len(ests), 1.0 / len(ests))
        if is_clf:
            if getattr(model, "n_outputs_", 1) != 1:
                raise ValueError(f"model: multi-output {kind} is not supported")
            trees = [_proba_tree(e) for e in ests]
            K = trees[0].value.shape[1]
            return Ensemble(kind, trees, [np.arange(K)] * len(trees), w, np.zeros(K), n_features,
                            lambda X: np.asarray(model.predict_proba(X), float),
                            score_kind="predict_proba", classes=np.asarray(model.classes_),
                            labels=model.predict, class_rule="argmax")
        trees = [sklearn_tree_arrays(e.tree_) for e in ests]
        n_out = trees[0].value.shape[1]
        return Ensemble(kind, trees, [np.arange(n_out)] * len(trees), w, np.zeros(n_out), n_features,
                        lambda X: np.asarray(model.predict(X), float).reshape(len(X), -1))
    # gradient boosting: init_ + learning_rate * sum of the trees (scikit-learn's _raw_predict)
    init = model.init_
    if not (isinstance(init, str) and init == "zero") and type(init).__name__ not in (
            "DummyRegressor", "DummyClassifier"):
        raise ValueError(f"model: {kind} has the init estimator {type(init).__name__}, whose "
                         "prediction is not constant; supported: the default (a constant) or 'zero'")
    offset = np.asarray(model._raw_predict_init(np.zeros((1, n_features))), float).reshape(-1)
    stages = np.asarray(model.estimators_)  # (n_stages, K)
    trees, targets = [], []
    for row in stages:
        for k, est in enumerate(row):
            trees.append(sklearn_tree_arrays(est.tree_))
            targets.append(np.array([k]))
    w = np.full(len(trees), float(model.learning_rate))
    if is_clf:
        return Ensemble(kind, trees, targets, w, offset, n_features,
                        lambda X: np.asarray(model.decision_function(X), float).reshape(len(X), -1),
                        score_kind="decision_function", classes=np.asarray(model.classes_),
                        labels=model.predict, class_rule=">=0" if offset.size == 1 else "argmax")
    return Ensemble(kind, trees, targets, w, offset, n_features,
                    lambda X: np.asarray(model.predict(X), float).reshape(len(X), -1))
