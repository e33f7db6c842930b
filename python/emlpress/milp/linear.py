"""Affine maps as MILP rows: scikit-learn's linear regressors (``LinearRegression``,
``Ridge``, ``Lasso``, ``ElasticNet``, ``PLSRegression`` and the other linear models whose
``predict`` is ``X @ coef_.T + intercept_``), the scores of linear classifiers
(``decision_function``) and the affine scalers of a pipeline.

Each output is a continuous column ``y = W x + b`` (one equality row, the nonzeros of ``W``
only) whose bounds are the exact range of the affine map on the inputs' box (interval
arithmetic is exact for one affine function on a box), widened by a bound on float64
rounding, so a model that follows (a network after a scaler) gets its box. The weights are
read from the fitted attributes and checked against the model's own ``predict`` (or
``decision_function``) at the box's centre and corners of a few random sub-boxes before
anything is added: a model whose prediction is not that affine map (a GLM's ``exp``) is
refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from emlpress._highs import Builder
from emlpress.milp.handle import PredictorHandle

__all__ = ["AffineHandle", "LINEAR_REGRESSORS", "LINEAR_CLASSIFIERS", "affine_box", "linear_weights"]

#: the scikit-learn regressors whose ``predict`` is ``X @ coef_.T + intercept_``
LINEAR_REGRESSORS = frozenset({
    "LinearRegression", "Ridge", "RidgeCV", "Lasso", "LassoCV", "ElasticNet", "ElasticNetCV",
    "Lars", "LarsCV", "LassoLars", "LassoLarsCV", "LassoLarsIC", "OrthogonalMatchingPursuit",
    "OrthogonalMatchingPursuitCV", "BayesianRidge", "ARDRegression", "HuberRegressor",
    "QuantileRegressor", "SGDRegressor", "TheilSenRegressor",
    "PassiveAggressiveRegressor", "MultiTaskLasso", "MultiTaskLassoCV", "MultiTaskElasticNet",
    "MultiTaskElasticNetCV", "LinearSVR", "PLSRegression"})
#: the scikit-learn classifiers whose ``decision_function`` is ``X @ coef_.T + intercept_``
LINEAR_CLASSIFIERS = frozenset({
    "LogisticRegression", "LogisticRegressionCV", "LinearSVC", "RidgeClassifier",
    "RidgeClassifierCV", "SGDClassifier", "Perceptron", "PassiveAggressiveClassifier"})

_EPS = np.finfo(np.float64).eps


def affine_box(W, b, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """The range of ``W x + b`` (``W`` shape ``(m, n)``) over the box ``[lo, hi]`` (shape
    ``(n,)``): per output, the exact interval, widened by a bound on the rounding of its
    float64 evaluation (``(n + 2) eps`` times the sum of the magnitudes), so it holds every
    value the map takes in float64 and in exact arithmetic."""
    W, b = np.asarray(W, float), np.asarray(b, float)
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    a, c = W * lo, W * hi
    low = b + np.minimum(a, c).sum(axis=1)
    up = b + np.maximum(a, c).sum(axis=1)
    mag = np.abs(b) + np.maximum(np.abs(a), np.abs(c)).sum(axis=1)
    slack = 2.0 * (W.shape[1] + 2) * _EPS * mag + np.finfo(np.float64).tiny
    return low - slack, up + slack


def linear_weights(model, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` with ``W`` shape ``(n_outputs, n_features)``: the affine map a fitted
    linear regressor's ``predict`` (or a linear classifier's ``decision_function``)
    computes. Raises ValueError naming ``where`` on NaN or infinite parameters."""
    coef = np.asarray(model.coef_, dtype=np.float64)
    W = np.atleast_2d(coef)
    if type(model).__name__ == "PLSRegression":  # predict centres X, the scale is in coef_
        b = np.asarray(model.intercept_, float).reshape(-1) - W @ np.asarray(model._x_mean, float)
    else:
        b = np.broadcast_to(np.asarray(getattr(model, "intercept_", 0.0), float).reshape(-1),
                            (W.shape[0],)).copy()
    for what, v in (("coef_", W), ("intercept_", b)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{where}: the fitted {what} holds NaN or infinite values")
    return W, b


def check_affine(f, W, b, lo, hi, where: str, what: str = "predict") -> None:
    """Raise ValueError naming ``where`` unless ``f(X)`` (the model's own ``what``) equals
    ``X @ W.T + b`` at the centre of the box and at random points and corners: the fitted
    attributes were read as the model uses them."""
    rng = np.random.default_rng(0)
    n = W.shape[1]
    X = np.vstack([(lo + hi) / 2, rng.uniform(lo, hi, (4, n)), np.where(rng.random((4, n)) < 0.5, lo, hi)])
    got = np.asarray(f(X), float).reshape(X.shape[0], -1)
    ours = X @ W.T + b
    scale = 1.0 + np.abs(X) @ np.abs(W).T + np.abs(b)
    if got.shape != ours.shape or np.any(np.abs(got - ours) > 1e-9 * scale):
        raise ValueError(f"{where}: its {what} is not the affine map X @ coef_.T + intercept_ "
                         "(not a linear model)")


def merged(cols, vals) -> tuple[np.ndarray, np.ndarray]:
    """A row's (columns, coefficients) with a column given twice (the same variable passed as
    two inputs) summed into one entry: HiGHS refuses a row that names a column twice."""
    cols, vals = np.asarray(cols, np.int64), np.asarray(vals, float)
    u, inv = np.unique(cols, return_inverse=True)
    if u.size == cols.size:
        return cols, vals
    out = np.zeros(u.size)
    np.add.at(out, inv, vals)
    return u, out


@dataclass
class AffineHandle(PredictorHandle):
    """``y = W x + b`` inside a HiGHS model: one continuous column and one row per output (a
    step of :class:`~emlpress.milp.SklearnHandle`)."""

    name: str
    W: np.ndarray
    b: np.ndarray
    input_cols: np.ndarray
    output_cols: np.ndarray
    n_vars: int
    n_constraints: int
    encode_s: float
    _h: object = field(repr=False, default=None)

    def predict(self, x):
        return self.W @ np.asarray(x, float) + self.b

    def _exact_columns(self, x):
        return self.output_cols, self.predict(x)


def add_affine(h, cols, W, b, lo_out, hi_out, name: str) -> AffineHandle:
    """Columns ``y = W x + b`` for the input columns ``cols``, with the bounds
    ``[lo_out, hi_out]`` (which must hold the map's range on the inputs' domain:
    :func:`affine_box`); rows over the nonzeros of ``W`` only."""
    t0 = time.perf_counter()
    B = Builder(h.getNumCol())
    ys = [B.col(l, u, False) for l, u in zip(lo_out, hi_out)]
    for i, y in enumerate(ys):
        nz = np.flatnonzero(W[i])
        B.row(*merged([y] + [int(cols[q]) for q in nz], np.concatenate([[1.0], -W[i, nz]])), b[i], b[i])
    n_vars, n_rows, _ = B.flush(h)
    for i, y in enumerate(ys):
        h.passColName(int(y), f"{name}.y{i}")
    return AffineHandle(name, np.asarray(W, float), np.asarray(b, float), np.asarray(cols, np.int32),
                        np.asarray(ys, np.int32), n_vars, n_rows, time.perf_counter() - t0, h)
