"""XGBoost and LightGBM tree ensembles read from the boosters' own serializations into an
:class:`~emlpress.milp.ensemble.Ensemble` (embedded by :func:`~emlpress.milp.add_ensemble`).

**XGBoost** (``XGBRegressor``, ``XGBClassifier``, ``XGBRF*``, ``Booster``; ``gbtree`` only):
the trees come from ``Booster.save_raw("json")`` (the arrays XGBoost predicts with: children,
split features, float32 ``split_conditions``, leaf values, each tree's class in
``tree_info``); a sample goes left when ``float32(x) < split_condition``
(:class:`~emlpress.milp.tree.Rule` ``XGBOOST``). The margin is ``base_score`` (in margin
units: the logit of a logistic objective's ``base_score``, the log of a log-link one's,
whichever reproduces the booster's own margin: checked at two points) plus every tree's leaf.
XGBoost sums in float32, so the sound bounds and the verification allow the float32
rounding of that sum. The sklearn wrappers' ``best_iteration`` (early stopping) is honoured
as their ``predict`` honours it; a ``Booster`` is taken whole (``iteration_range=(0,
num_boosted_rounds())``). Refused by name: ``gblinear`` and ``dart`` boosters,
categorical splits, multi-output trees (``multi_strategy="multi_output_tree"``), a wrapper
whose ``missing`` is not NaN (its ``missing`` value would take the default branch).

**LightGBM** (``LGBMRegressor``, ``LGBMClassifier``, ``Booster``): the trees come from
``Booster.dump_model()`` (float64 thresholds and leaf values, printed to round-trip); a
sample goes left when ``x <= threshold`` in float64 (:class:`~emlpress.milp.tree.Rule`
``LIGHTGBM``; LightGBM predicts float64 inputs in float64). The raw score is the sum of the
leaves (``boost_from_average`` is folded into the first tree); ``boosting="rf"`` models
(``average_output``) average their trees, as their ``predict`` does (their
``predict(raw_score=True)`` returns the sum: the handle compares with it divided by the
number of iterations); tree ``i`` scores class ``i % num_tree_per_iteration``. Refused by name:
``linear_tree`` models, categorical splits (``==``), ``missing_type`` Zero
(``zero_as_missing``: a 0.0 input takes the default branch, not the threshold's).

A model refit or updated after it was added (``fit`` again, ``Booster.update``) is noticed when
the handle evaluates it (``verify``, ``get_error``, ``solve``'s check): its trees differ from the
encoded ones, and the evaluation is refused in one line naming the model (XGBoost; the check
compares a hash of its serialization, then of the encoded parts of it).

Missing values: MILP inputs are never NaN, so the default (missing) directions are never
taken; a NaN input is outside what the MILP represents.
"""

from __future__ import annotations

import copy
import hashlib
import json

import numpy as np

from emlpress.milp.ensemble import _F32, _F64, Ensemble
from emlpress.milp.tree import Rule, TreeArrays

__all__ = ["read_xgboost", "read_lightgbm", "XGBOOST_MODELS", "LIGHTGBM_MODELS"]

XGBOOST_MODELS = ("XGBRegressor", "XGBClassifier", "XGBRFRegressor", "XGBRFClassifier", "Booster")
LIGHTGBM_MODELS = ("LGBMRegressor", "LGBMClassifier", "Booster")


# ------------------------------------------------------------------------------- XGBoost


def _xgb_booster(model):
    kind = type(model).__name__
    if kind == "Booster":
        return model, None
    try:
        return model.get_booster(), model
    except Exception:  # noqa: BLE001 - xgboost raises NotFittedError or XGBoostError by release
        raise ValueError(f"model: this {kind} is not fitted (call fit first)") from None


def _xgb_tree(tree: dict, t: int, kind: str) -> TreeArrays:
    if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
        raise ValueError(f"model: {kind}, tree {t} is a multi-output tree "
                         "(multi_strategy='multi_output_tree'): not supported")
    if any(int(s) != 0 for s in tree["split_type"]):
        raise ValueError(f"model: {kind}, tree {t} has categorical splits: not supported")
    left = np.asarray(tree["left_children"], np.int64)
    right = np.asarray(tree["right_children"], np.int64)
    cond = np.asarray(tree["split_conditions"], np.float32)  # exactly XGBoost's float32 values
    # at a leaf, split_conditions holds the leaf value (as base_weights does)
    return TreeArrays(left, right, np.asarray(tree["split_indices"], np.int64),
                      cond.astype(np.float64), cond.astype(np.float64)[:, None], Rule.XGBOOST)


def read_xgboost(model) -> Ensemble:
    """The :class:`~emlpress.milp.ensemble.Ensemble` of a fitted XGBoost model (the module's
    docstring): raw margins, shape ``(n, n_classes)`` for multi-class, else ``(n, 1)``."""
    kind = type(model).__name__
    booster, wrapper = _xgb_booster(model)
    cfg = json.loads(booster.save_config())["learner"]
    gb = cfg["gradient_booster"]["name"]
    if gb != "gbtree":
        raise ValueError(f"model: {kind} uses the booster {gb!r}; only 'gbtree' is supported "
                         "(gblinear is linear, dart drops trees at random while training and "
                         "scales them)")
    if wrapper is not None:
        missing = getattr(wrapper, "missing", np.nan)
        if missing is not None and not (isinstance(missing, float) and np.isnan(missing)):
            raise ValueError(f"model: {kind} has missing={missing!r}: inputs equal to it take "
                             "the default branch, which the MILP does not model (use missing=nan)")
    raw_bytes = bytes(booster.save_raw("json"))
    raw = json.loads(raw_bytes.decode())
    gbm = raw["learner"]["gradient_booster"]["model"]
    n_iter = _xgb_iterations(booster, wrapper)
    n_trees = _xgb_tree_count(gbm, n_iter)
    trees = [_xgb_tree(gbm["trees"][t], t, kind) for t in range(n_trees)]
    info = np.asarray(gbm["tree_info"][:n_trees], np.int64)
    mp = cfg["learner_model_param"]
    n_scores = max(1, int(mp.get("num_class", "0")), int(mp.get("num_target", "1")))
    if int(mp.get("num_target", "1")) > 1:
        raise ValueError(f"model: {kind} has {mp['num_target']} targets: multi-target boosters "
                         "are not supported")
    n_features = int(booster.num_features())

    # one thread: the margins do not depend on it, and a thread pool per call costs 10-60 ms
    # on a busy machine (solve evaluates the model once per answer)
    b1 = booster.copy()
    b1.set_param({"nthread": 1})
    watch = _XGBWatch(model, kind, raw_bytes, _xgb_encoded(raw, n_iter))

    def scores(X):
        watch.check()  # b1 is a copy: a refit of the user's model would go unnoticed
        return np.asarray(b1.inplace_predict(np.asarray(X, np.float64), predict_type="margin",
                                             iteration_range=(0, n_iter)),
                          float).reshape(len(X), n_scores)

    ens = Ensemble(kind, trees, [np.array([k]) for k in info], np.ones(n_trees),
                   np.zeros(n_scores), n_features, scores, unit_roundoff=_F32,
                   score_kind="output_margin")
    ens.offset = _xgb_offset(ens, mp["base_score"], kind)
    if wrapper is not None and hasattr(wrapper, "classes_"):
        w1 = copy.deepcopy(wrapper)  # its own booster: n_jobs=1 leaves the user's model alone
        w1.set_params(n_jobs=1)

        def labels(X):
            watch.check()
            return w1.predict(X)

        ens.classes, ens.labels = np.asarray(wrapper.classes_), labels
        ens.class_rule = ">0" if n_scores == 1 else "argmax"
    return ens


def _xgb_iterations(booster, wrapper) -> int:
    """The boosting rounds the model predicts with: a wrapper's ``best_iteration`` + 1 (early
    stopping, as its ``predict`` uses), else every round."""
    if wrapper is not None:
        try:
            return int(wrapper.best_iteration) + 1
        except AttributeError:
            pass
    return int(booster.num_boosted_rounds())


def _xgb_tree_count(gbm: dict, n_iter: int) -> int:
    indptr = np.asarray(gbm.get("iteration_indptr", []), np.int64)
    return int(indptr[n_iter]) if indptr.size > n_iter else len(gbm["trees"])


def _xgb_encoded(raw: dict, n_iter: int) -> bytes:
    """A hash of what the MILP encodes of a booster's saved JSON ``raw``: the trees of the
    first ``n_iter`` rounds, their classes, the objective and the model parameters
    (``base_score``, classes); its attributes and training parameters are left out."""
    learner = raw["learner"]
    gbm = learner["gradient_booster"]["model"]
    n = _xgb_tree_count(gbm, n_iter)
    part = [gbm["trees"][:n], gbm["tree_info"][:n], learner["learner_model_param"],
            learner.get("objective", {}).get("name"), learner["gradient_booster"].get("name"),
            n_iter]
    return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).digest()


class _XGBWatch:
    """Whether the user's XGBoost model still holds the trees read from it: its serialization's
    hash first (cheap), then, when that changed, the hash of the encoded parts only (setting an
    attribute or a training parameter changes the first, not what the MILP encodes)."""

    def __init__(self, model, kind: str, raw: bytes, encoded: bytes):
        self.model, self.kind, self.encoded = model, kind, encoded
        self.raw = hashlib.sha256(raw).digest()

    def check(self) -> None:
        booster, wrapper = _xgb_booster(self.model)
        raw = bytes(booster.save_raw("json"))
        h = hashlib.sha256(raw).digest()
        if h == self.raw:
            return
        if _xgb_encoded(json.loads(raw.decode()), _xgb_iterations(booster, wrapper)) != self.encoded:
            raise ValueError(
                f"model: this {self.kind} changed after it was added to the MILP (fit again or "
                "updated): its trees are not the ones encoded; add it to a new model to solve "
                "with it, or refit a copy (copy.deepcopy) to keep this one")
        self.raw = h


def _xgb_offset(ens: Ensemble, base_score: str, kind: str) -> np.ndarray:
    """The base margin per score: XGBoost's ``base_score`` is kept in the objective's output
    units; the candidate link (identity, logit, log) that reproduces the booster's own
    margins at two inputs, within float32 rounding, is the one its predictor applies."""
    bs = np.atleast_1d(np.asarray(json.loads(base_score.replace("E", "e")) if base_score.startswith("[")
                                  else float(base_score), float)).reshape(-1)
    bs = np.broadcast_to(bs, (ens.n_scores,)).astype(float)
    cands = [bs]
    with np.errstate(divide="ignore", invalid="ignore"):
        cands += [np.log(bs / (1.0 - bs)), np.log(bs)]
    X = np.vstack([np.zeros(ens.n_features), np.ones(ens.n_features)])
    got = ens.scores(X)
    leaves = ens.apply(X)
    tree_sum = np.zeros((2, ens.n_scores))
    for t, (T, tg) in enumerate(zip(ens.trees, ens.targets)):
        tree_sum[:, tg[0]] += T.value[leaves[:, t], 0]
    mag = np.abs(tree_sum).max() + np.abs(got).max() + 1.0
    tol = (len(ens.trees) + 4) * _F32 * mag
    for c in cands:
        if np.all(np.isfinite(c)) and np.max(np.abs(got - (c + tree_sum))) <= tol:
            return c
    raise ValueError(f"model: {kind}: no link of base_score {base_score} (identity, logit, log) "
                     "reproduces the booster's own margins; its objective is not supported")


# ------------------------------------------------------------------------------ LightGBM


def _lgb_tree(root: dict, t: int, kind: str) -> TreeArrays:
    left, right, feat, thr, val = [], [], [], [], []

    def visit(node) -> int:
        n = len(left)
        left.append(-1), right.append(-1), feat.append(-1), thr.append(0.0), val.append(0.0)
        if "leaf_value" in node or "split_feature" not in node:
            if "leaf_coeff" in node:
                raise ValueError(f"model: {kind}, tree {t} is a linear tree (linear_tree=True): "
                                 "not supported")
            val[n] = float(node.get("leaf_value", 0.0))
            return n
        if node.get("decision_type", "<=") != "<=":
            raise ValueError(f"model: {kind}, tree {t} has a categorical split "
                             f"({node['decision_type']!r}): not supported")
        if node.get("missing_type", "None") == "Zero":
            raise ValueError(f"model: {kind}, tree {t} treats zero as missing (zero_as_missing / "
                             "missing_type Zero): a 0.0 input takes the default branch, which "
                             "the MILP does not model")
        feat[n], thr[n] = int(node["split_feature"]), float(node["threshold"])
        left[n] = visit(node["left_child"])
        right[n] = visit(node["right_child"])
        return n

    visit(root)
    return TreeArrays(np.asarray(left, np.int64), np.asarray(right, np.int64),
                      np.asarray(feat, np.int64), np.asarray(thr, np.float64),
                      np.asarray(val, np.float64)[:, None], Rule.LIGHTGBM)


def read_lightgbm(model) -> Ensemble:
    """The :class:`~emlpress.milp.ensemble.Ensemble` of a fitted LightGBM model (the
    module's docstring): raw scores, shape ``(n, num_tree_per_iteration)``."""
    kind = type(model).__name__
    wrapper = None if kind == "Booster" else model
    if wrapper is not None:
        try:
            booster = model.booster_
        except Exception:  # noqa: BLE001 - LGBMNotFittedError
            raise ValueError(f"model: this {kind} is not fitted (call fit first)") from None
    else:
        booster = model
    # a Booster loaded from a file may lack the params: its dumped leaves say it (leaf_coeff)
    if str(booster.params.get("linear_tree", False)).lower() in ("true", "1"):
        raise ValueError(f"model: {kind} has linear trees (linear_tree=True): not supported")
    d = booster.dump_model()  # best_iteration when early stopping set one, as predict uses
    K = int(d["num_tree_per_iteration"])
    info = d["tree_info"]
    trees = [_lgb_tree(ti["tree_structure"], t, kind) for t, ti in enumerate(info)]
    n_iter = max(1, len(trees) // K)
    w = np.full(len(trees), 1.0 / n_iter if d.get("average_output", False) else 1.0)
    n_features = int(d["max_feature_idx"]) + 1

    src = wrapper if wrapper is not None else booster

    # rf: predict averages the trees but raw_score=True returns their sum
    scale = 1.0 / n_iter if d.get("average_output", False) else 1.0

    def scores(X):  # one thread: a thread pool per call costs ~30 ms on a busy machine
        return scale * np.asarray(src.predict(np.asarray(X, np.float64), raw_score=True,
                                              num_threads=1), float).reshape(len(X), K)

    def labels(X):
        return wrapper.predict(np.asarray(X, np.float64), num_threads=1)

    ens = Ensemble(kind, trees, [np.array([t % K]) for t in range(len(trees))], w, np.zeros(K),
                   n_features, scores, unit_roundoff=_F64, score_kind="raw_score")
    if wrapper is not None and hasattr(wrapper, "classes_"):
        ens.classes, ens.labels = np.asarray(wrapper.classes_), labels
        ens.class_rule = ">0" if K == 1 else "argmax"
    return ens
