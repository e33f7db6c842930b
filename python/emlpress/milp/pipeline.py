"""scikit-learn estimators, transformers and pipelines in a HiGHS MILP: :func:`add_sklearn`
(what :func:`~emlpress.milp.add_predictor` calls for them) and its :class:`SklearnHandle`.

Kinds (``SUPPORTED``):

- linear regressors (``LinearRegression``, ``Ridge``, ``Lasso``, ``ElasticNet``,
  ``PLSRegression``, ... :data:`~emlpress.milp.linear.LINEAR_REGRESSORS`), single or
  multi-output: affine rows (:mod:`emlpress.milp.linear`);
- ``MLPRegressor`` with ``activation="relu"`` or ``"identity"``: converted by
  :func:`emlpress.io.from_sklearn` to a :class:`~emlpress.Network` and embedded by
  :func:`~emlpress.milp.add_network` (``bounds=`` goes to it; its bounds are computed on the
  box its inputs have after the preceding steps);
- classifiers by argmax (:mod:`emlpress.milp.classify`): ``LogisticRegression`` and the
  other linear classifiers (:data:`~emlpress.milp.linear.LINEAR_CLASSIFIERS`) on their
  ``decision_function``, ``MLPClassifier`` on its logits. ``output="class"`` (default): the
  handle's outputs are one indicator per class (``classes_`` order) then the scores;
  ``output="decision_function"``: the scores only. ``margin=`` makes the chosen class beat
  every other by at least that much. ``predict_proba`` is refused (softmax and sigmoid are
  not piecewise linear);
- transformers: ``StandardScaler``, ``MinMaxScaler`` (``clip=True`` only where it clips
  nothing on the box), ``MaxAbsScaler`` (affine), ``PolynomialFeatures`` of degree <= 2
  (a product is linearised exactly only where one factor is fixed by its bounds or takes
  two values, as a binary input or an affine image of one; any other product is refused
  naming the pair), ``ColumnTransformer`` (with ``passthrough``/``drop``) and ``Pipeline``
  of these: each step's outputs are the next step's inputs, their bounds the exact range of
  the affine steps on the box (widened for rounding);
- ``MultiOutputRegressor`` of supported regressors (their outputs side by side);
- as the last step of a ``Pipeline``: any kind :func:`~emlpress.milp.register_predictor`
  knows (a decision tree, ...).

Everything is checked before anything is added to the model: an unfitted estimator, a
step of an unsupported kind, a feature count that does not match, NaN or infinite fitted
parameters, an option that does not apply raise one error naming the step and the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from emlpress._highs import Builder, col_name, column_indices, option_value
from emlpress.milp.classify import add_argmax, argmax_indicators
from emlpress.milp.handle import VERIFY_RTOL, PredictorHandle, col_bounds, registered_handles
from emlpress.milp.linear import (LINEAR_CLASSIFIERS, LINEAR_REGRESSORS, add_affine, affine_box,
                                  check_affine, linear_weights, merged)

__all__ = ["add_sklearn", "SklearnHandle", "is_sklearn_model", "SUPPORTED"]

SUPPORTED = ("linear regressors (LinearRegression, Ridge, Lasso, ElasticNet, PLSRegression, ...), "
             "MLPRegressor/MLPClassifier (relu, identity), linear classifiers (LogisticRegression, "
             "LinearSVC, ...), StandardScaler, MinMaxScaler, MaxAbsScaler, PolynomialFeatures "
             "(degree <= 2), ColumnTransformer, Pipeline, MultiOutputRegressor")
_SCALERS = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler")
_COMPOSITES = ("Pipeline", "ColumnTransformer", "MultiOutputRegressor", "PolynomialFeatures")
_MLPS = ("MLPRegressor", "MLPClassifier")
_PROBA = ("predict_proba", "predict_log_proba", "proba", "probability", "probabilities")


def is_sklearn_model(model) -> bool:
    """Whether ``model`` is a scikit-learn estimator of a kind :func:`add_sklearn` embeds."""
    if not type(model).__module__.startswith("sklearn."):
        return False
    n = type(model).__name__
    return n in LINEAR_REGRESSORS or n in LINEAR_CLASSIFIERS or n in _SCALERS or n in _COMPOSITES or n in _MLPS


# --- the box of a step's features: bounds, and which features take one or two values -------


@dataclass
class _Box:
    """Per feature: bounds ``lo``/``hi`` holding every value it takes, and ``v0``/``v1``:
    the only two values it takes (equal: fixed; NaN: a range)."""

    lo: np.ndarray
    hi: np.ndarray
    v0: np.ndarray
    v1: np.ndarray

    @property
    def n(self) -> int:
        return self.lo.size

    def fixed(self, i) -> bool:
        return bool(np.isfinite(self.v0[i]) and self.v0[i] == self.v1[i])

    def two(self, i) -> bool:
        return bool(np.isfinite(self.v0[i]) and self.v0[i] != self.v1[i])

    def take(self, idx) -> _Box:
        return _Box(self.lo[idx], self.hi[idx], self.v0[idx], self.v1[idx])

    @staticmethod
    def cat(boxes) -> _Box:
        return _Box(*(np.concatenate([getattr(b, a) for b in boxes]) for a in ("lo", "hi", "v0", "v1")))


def _input_box(h, cols, name: str) -> _Box:
    lo, hi = col_bounds(h, cols)
    v0, v1 = np.full(lo.size, np.nan), np.full(lo.size, np.nan)
    for q, c in enumerate(cols):
        if not (np.isfinite(lo[q]) and np.isfinite(hi[q])):
            raise ValueError(f"model {name!r}, input {q} ({col_name(h, c)}): bounds [{lo[q]}, "
                             f"{hi[q]}] must be finite")
        integer = int(h.getColIntegrality(int(c))[1]) != 0
        a, b = (np.ceil(lo[q]), np.floor(hi[q])) if integer else (lo[q], hi[q])
        if a == b or (integer and b - a == 1):
            v0[q], v1[q] = a, b
    return _Box(lo, hi, v0, v1)


def _affine_out(W, b, box: _Box) -> _Box:
    """The box of ``W x + b``: an output of fixed inputs is fixed, one of a single two-valued
    input (the others fixed) takes two values."""
    lo, hi = affine_box(W, b, box.lo, box.hi)
    v0, v1 = np.full(lo.size, np.nan), np.full(lo.size, np.nan)
    for i in range(W.shape[0]):
        nz = np.flatnonzero(W[i])
        free = [q for q in nz if not box.fixed(q)]
        base = b[i] + sum(W[i, q] * box.v0[q] for q in nz if box.fixed(q))
        if not free:
            v0[i] = v1[i] = base
        elif len(free) == 1 and box.two(free[0]):
            q = free[0]
            v0[i], v1[i] = base + W[i, q] * box.v0[q], base + W[i, q] * box.v1[q]
    return _Box(lo, hi, v0, v1)


# --- the plan: every step checked and its numbers computed before anything is added --------


@dataclass
class _Affine:
    W: np.ndarray
    b: np.ndarray
    out: _Box
    tag: str
    expand: np.ndarray | None = None  # output k is column expand[k] of the rows (scores)


@dataclass
class _Poly:
    terms: list  # ("col", i) | ("const", c) | ("scale", i, c) | ("square", i, a, b) | ("product", u, x, a, b)
    out: _Box
    tag: str


@dataclass
class _Seq:
    nodes: list


@dataclass
class _Par:
    parts: list  # (input indices or None for all, node)


@dataclass
class _Ident:
    pass


@dataclass
class _Model:
    """A model embedded by another encoder: a Network (add_network) or a registered kind."""

    model: object
    tag: str
    network: bool
    expand: np.ndarray | None = None  # as _Affine's: identical logits share one column


@dataclass
class _Argmax:
    margin: float
    tag: str


@dataclass
class _Ctx:
    output: str | None
    margin: float
    bounds: object
    classifier: object = None  # the final classifier, if any
    net: object = None  # its Network (MLPClassifier)
    score_cols: np.ndarray | None = None
    foreign: object = None  # the handle of a registered kind embedded as a step


def _fitted(est, where: str) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(est)
    except NotFittedError:
        raise ValueError(f"{where}: not fitted (call fit first)") from None


def _n_features(est, box: _Box, where: str) -> None:
    n = getattr(est, "n_features_in_", None)
    if n is not None and int(n) != box.n:
        raise ValueError(f"{where}: takes {n} features (n_features_in_), got {box.n} inputs")


def _finite(where: str, **arrays) -> None:
    for what, v in arrays.items():
        if v is not None and not np.all(np.isfinite(np.asarray(v, float))):
            raise ValueError(f"{where}: the fitted {what} holds NaN or infinite values")


def _step(where: str, name: str, est) -> str:
    return f"{where} > {name!r} ({type(est).__name__})"


def _plan(est, box: _Box, where: str, ctx: _Ctx, final: bool):
    """(plan node, the box of its outputs or None after a predictor) for ``est`` on ``box``."""
    if est is None or (isinstance(est, str) and est == "passthrough"):
        return _Ident(), box
    kind = type(est).__name__
    sk = type(est).__module__.startswith("sklearn.")
    if sk and kind == "Pipeline":
        _fitted(est, where)
        nodes = []
        for i, (sname, step) in enumerate(est.steps):
            node, box = _plan(step, box, _step(where, sname, step), ctx, final and i == len(est.steps) - 1)
            nodes.append(node)
        return _Seq(nodes), box
    if sk and kind == "FunctionTransformer" and est.func is None:  # a fitted "passthrough"
        return _Ident(), box
    if sk and kind in _SCALERS + ("PolynomialFeatures", "ColumnTransformer", "MultiOutputRegressor"):
        _fitted(est, where)
        _n_features(est, box, where)
        return _PLANS[kind](est, box, where, ctx, final)
    if sk and kind in LINEAR_REGRESSORS:
        _fitted(est, where)
        _n_features(est, box, where)
        W, b = linear_weights(est, where)
        check_affine(est.predict, W, b, box.lo, box.hi, where)
        return _Affine(W, b, _affine_out(W, b, box), kind.lower()), None
    if sk and (kind in LINEAR_CLASSIFIERS or kind == "MLPClassifier"):
        return _plan_classifier(est, box, where, ctx, final)
    if sk and kind == "MLPRegressor":
        _fitted(est, where)
        _n_features(est, box, where)
        return _Model(_network(est, where), "mlp", True), None
    if final and not (sk and hasattr(est, "transform")):
        entry = _registered(est)
        if entry is not None:
            _n_features(est, box, where)
            return _Model(est, kind.lower(), False), None
    what = f"{kind}(kernel={est.kernel!r})" if hasattr(est, "kernel") and isinstance(est.kernel, str) else kind
    raise TypeError(f"{where}: {what} is not linear or piecewise linear, or has no MILP encoding; "
                    f"supported: {SUPPORTED}, and as a final step the kinds of "
                    "milp.registered_predictors()")


def _network(mlp, where: str):
    """``from_sklearn(mlp)``, its error naming the step ``where``."""
    from emlpress.io.sklearn import from_sklearn

    try:
        return from_sklearn(mlp)
    except ValueError as e:  # UnsupportedLayerError included
        msg = str(e).removeprefix(f"{type(mlp).__name__}: ")
        raise type(e)(f"{where}: {msg}") from None


def _registered(est):
    """The registry entry that embeds ``est`` (not this module's own), or None."""
    from emlpress.milp import registry

    return next((e for e in reversed(registry._ENTRIES)
                 if e.add is not add_sklearn and e.matches(est)), None)


def _plan_scaler(est, box, where, ctx, final):
    kind = type(est).__name__
    n = box.n
    if kind == "StandardScaler":
        mean = np.zeros(n) if est.mean_ is None else np.asarray(est.mean_, float)
        scale = np.ones(n) if est.scale_ is None else np.asarray(est.scale_, float)
        _finite(where, mean_=mean, scale_=scale)
        W, b = np.diag(1.0 / scale), -mean / scale
    elif kind == "MaxAbsScaler":
        _finite(where, scale_=est.scale_)
        W, b = np.diag(1.0 / np.asarray(est.scale_, float)), np.zeros(n)
    else:  # MinMaxScaler: X * scale_ + min_
        _finite(where, scale_=est.scale_, min_=est.min_)
        W, b = np.diag(np.asarray(est.scale_, float)), np.asarray(est.min_, float)
    out = _affine_out(W, b, box)
    if kind == "MinMaxScaler" and getattr(est, "clip", False):
        f_lo, f_hi = est.feature_range
        tol = 1e-9 * max(1.0, f_hi - f_lo)  # the rounding of a box that is the training range
        bad = np.flatnonzero((out.lo < f_lo - tol) | (out.hi > f_hi + tol))
        if bad.size:
            q = int(bad[0])
            raise ValueError(f"{where}: clip=True clips feature {q} (range [{out.lo[q]:.6g}, "
                             f"{out.hi[q]:.6g}] on the box, feature_range {est.feature_range}): "
                             "the clip is not linear; refit with clip=False or shrink the box")
    return _Affine(W, b, out, kind.lower()), out


def _plan_poly(est, box, where, ctx, final):
    P = np.asarray(est.powers_)
    if P.sum(axis=1).max(initial=0) > 2:
        raise ValueError(f"{where}: degree {est.degree}: only products of at most two features "
                         "(degree <= 2) are supported")
    names = est.get_feature_names_out()
    in_names = getattr(est, "feature_names_in_", None)
    terms, los, his, v0s, v1s = [], [], [], [], []

    def add(term, lo, hi, v0=np.nan, v1=np.nan):
        terms.append(term)
        los.append(lo), his.append(hi), v0s.append(v0), v1s.append(v1)

    def label(i):
        return f"x{i}" if in_names is None else f"x{i} ({in_names[i]!r})"

    for r, p in enumerate(P):
        f = [int(q) for q in np.repeat(np.arange(p.size), p)]  # the factors, with multiplicity
        if not f:
            add(("const", 1.0), 1.0, 1.0, 1.0, 1.0)
        elif len(f) == 1:
            i = f[0]
            add(("col", i), box.lo[i], box.hi[i], box.v0[i], box.v1[i])
        else:
            i, j = f
            if box.fixed(i) or box.fixed(j):
                c, q = (box.v0[i], j) if box.fixed(i) else (box.v0[j], i)
                lo, hi = affine_box(np.array([[c]]), np.zeros(1), box.lo[q:q + 1], box.hi[q:q + 1])
                add(("scale", q, c), lo[0], hi[0], c * box.v0[q], c * box.v1[q])
            elif i == j and box.two(i):  # u^2 = (a + b) u - a b on {a, b}
                a, b = box.v0[i], box.v1[i]
                lo, hi = affine_box(np.array([[a + b]]), np.array([-a * b]), box.lo[i:i + 1], box.hi[i:i + 1])
                add(("square", i, a, b), lo[0], hi[0], a * a, b * b)
            elif box.two(i) or box.two(j):
                u, x = (i, j) if box.two(i) else (j, i)
                corners = np.outer([box.lo[u], box.hi[u]], [box.lo[x], box.hi[x]]).ravel()
                slack = 4 * np.finfo(float).eps * np.abs(corners).max()
                add(("product", u, x, box.v0[u], box.v1[u]), corners.min() - slack, corners.max() + slack)
            else:
                raise ValueError(
                    f"{where}: feature {names[r]!r} = {label(i)} * {label(j)} is not linear on the "
                    f"box: neither factor is binary (takes two values) or fixed by its bounds "
                    f"({label(i)} in [{box.lo[i]:.6g}, {box.hi[i]:.6g}], {label(j)} in "
                    f"[{box.lo[j]:.6g}, {box.hi[j]:.6g}])")
    out = _Box(*(np.asarray(v, float) for v in (los, his, v0s, v1s)))
    return _Poly(terms, out, "poly"), out


def _plan_columns(est, box, where, ctx, final):
    parts, boxes = [], []
    order = []
    for tname, trans, _ in est.transformers_:
        idx = np.asarray(est._transformer_to_input_indices.get(tname, []), dtype=np.int64)
        if (isinstance(trans, str) and trans == "drop") or idx.size == 0:
            continue
        node, out = _plan(trans, box.take(idx), _step(where, tname, trans), ctx, False)
        if out is None:
            raise TypeError(f"{_step(where, tname, trans)}: a ColumnTransformer takes transformers")
        sl = est.output_indices_[tname]
        if sl.stop - sl.start != out.n:
            raise ValueError(f"{_step(where, tname, trans)}: gives {out.n} features where the "
                             f"fitted ColumnTransformer has {sl.stop - sl.start}")
        order.append(sl.start)
        parts.append((idx, node))
        boxes.append(out)
    perm = np.argsort(order, kind="stable")  # the order of the output's columns
    parts, boxes = [parts[k] for k in perm], [boxes[k] for k in perm]
    if not parts:
        raise ValueError(f"{where}: every transformer drops its columns: no output")
    return _Par(parts), _Box.cat(boxes)


def _plan_multi(est, box, where, ctx, final):
    parts = [(None, _plan(e, box, f"{where} > estimators_[{k}] ({type(e).__name__})", ctx, True)[0])
             for k, e in enumerate(est.estimators_)]
    return _Par(parts), None


def _plan_classifier(est, box, where, ctx, final):
    kind = type(est).__name__
    _fitted(est, where)
    _n_features(est, box, where)
    if not final or ctx.classifier is not None:
        raise TypeError(f"{where}: a classifier can only be the model's last step")
    if kind == "MLPClassifier":
        if getattr(est, "out_activation_", "") == "logistic" and getattr(est, "n_outputs_", 1) > 1:
            raise ValueError(f"{where}: a multilabel MLPClassifier is not supported (one class per "
                             "sample is)")
        ctx.net = _network(est, where)
        scores = _Model(ctx.net, "mlp", True, _same_rows(ctx.net.weights[-1], ctx.net.biases[-1]))
    else:
        W, b = linear_weights(est, where)
        check_affine(est.decision_function, W, b, box.lo, box.hi, where, "decision_function")
        rep = _same_rows(W, b)  # identical scores: one column, their ties exact (classify.py)
        keep = np.unique(rep)
        expand = np.searchsorted(keep, rep)
        scores = _Affine(W[keep], b[keep], _affine_out(W[keep], b[keep], box), "scores", expand)
    ctx.classifier = est
    if ctx.output == "class":
        return _Seq([scores, _Argmax(ctx.margin, "argmax")]), None
    return scores, None


def _same_rows(W, b) -> np.ndarray:
    """Per row k of ``[W | b]``, the first row identical to it (itself when unique)."""
    first: dict = {}
    return np.array([first.setdefault(np.r_[W[k], b[k]].tobytes(), k) for k in range(W.shape[0])])


_PLANS = {"StandardScaler": _plan_scaler, "MinMaxScaler": _plan_scaler, "MaxAbsScaler": _plan_scaler,
          "PolynomialFeatures": _plan_poly, "ColumnTransformer": _plan_columns,
          "MultiOutputRegressor": _plan_multi}


# --- emitting the plan: stage handles, each with its exact evaluation ----------------------


@dataclass
class _PolyHandle(PredictorHandle):
    name: str
    terms: list
    input_cols: np.ndarray
    output_cols: np.ndarray
    new: list  # per term: the new columns (y) or (w, y)
    n_vars: int
    n_constraints: int
    encode_s: float
    _h: object = field(repr=False, default=None)

    def predict(self, x):
        x = np.asarray(x, float)
        return np.array([_term_value(t, x) for t in self.terms])

    def _exact_columns(self, x):
        x = np.asarray(x, float)
        cols, vals = [], []
        for t, new in zip(self.terms, self.new):
            if not new:
                continue
            if t[0] == "product":
                _, u, q, a, b = t
                cols += list(new)
                vals += [(x[u] - a) / (b - a) * x[q], x[u] * x[q]]
            else:
                cols.append(new[0])
                vals.append(_term_value(t, x))
        return np.asarray(cols, np.int32), np.asarray(vals, float)


def _term_value(t, x) -> float:
    kind = t[0]
    if kind == "const":
        return t[1]
    if kind == "col":
        return x[t[1]]
    if kind == "scale":  # the fixed factor's own value: c up to its rounding
        return t[2] * x[t[1]]
    if kind == "square":
        return x[t[1]] * x[t[1]]
    return x[t[1]] * x[t[2]]


def _add_poly(h, node: _Poly, cols, name) -> _PolyHandle:
    t0 = time.perf_counter()
    B = Builder(h.getNumCol())
    out, new = [], []
    for r, t in enumerate(node.terms):
        lo, hi = node.out.lo[r], node.out.hi[r]
        kind = t[0]
        if kind == "col":
            out.append(int(cols[t[1]]))
            new.append(())
            continue
        if kind == "const":
            y = B.col(t[1], t[1], False)
        elif kind == "scale":  # y = c x
            y = B.col(lo, hi, False)
            B.row(*merged([y, int(cols[t[1]])], [1.0, -t[2]]), 0.0, 0.0)
        elif kind == "square":  # y = (a + b) u - a b
            _, i, a, b = t
            y = B.col(lo, hi, False)
            B.row(*merged([y, int(cols[i])], [1.0, -(a + b)]), -a * b, -a * b)
        else:  # y = a x + (b - a) w, w = d x exactly (McCormick on d = (u - a)/(b - a) in {0, 1})
            _, i, q, a, b = t
            cu, cx = int(cols[i]), int(cols[q])
            L, U = _bounds_of(h, B, cx)
            al, be = 1.0 / (b - a), -a / (b - a)  # d = al u + be
            w = B.col(min(0.0, L), max(0.0, U), False)
            y = B.col(lo, hi, False)
            B.row(*merged([w, cu], [1.0, -L * al]), L * be, np.inf)  # w >= L d
            B.row(*merged([w, cu], [1.0, -U * al]), -np.inf, U * be)  # w <= U d
            B.row(*merged([w, cx, cu], [1.0, -1.0, -U * al]), -U + U * be, np.inf)  # w >= x - U (1 - d)
            B.row(*merged([w, cx, cu], [1.0, -1.0, -L * al]), -np.inf, -L + L * be)  # w <= x - L (1 - d)
            B.row(*merged([y, cx, w], [1.0, -a, -(b - a)]), 0.0, 0.0)
            out.append(y)
            new.append((w, y))
            continue
        out.append(y)
        new.append((y,))
    n_vars, n_rows, _ = B.flush(h)
    for r, nw in enumerate(new):
        if nw:
            h.passColName(int(nw[-1]), f"{name}.f{r}")
    return _PolyHandle(name, node.terms, np.asarray(cols, np.int32), np.asarray(out, np.int32), new,
                       n_vars, n_rows, time.perf_counter() - t0, h)


def _bounds_of(h, B: Builder, c: int) -> tuple[float, float]:
    """The bounds of column ``c``: one of ``B``'s new columns or one of ``h``'s."""
    if c >= B.first:
        return B.lb[c - B.first], B.ub[c - B.first]
    lo, hi = col_bounds(h, [c])
    return float(lo[0]), float(hi[0])


@dataclass
class _ArgmaxHandle(PredictorHandle):
    name: str
    input_cols: np.ndarray
    output_cols: np.ndarray
    n_vars: int
    n_binaries: int
    n_constraints: int
    encode_s: float
    _h: object = field(repr=False, default=None)

    def predict(self, x):
        return argmax_indicators(x)

    def _exact_columns(self, x):
        return self.output_cols, argmax_indicators(x)


def _unregister(h, hd) -> None:
    reg = registered_handles(h)
    for k in range(len(reg) - 1, -1, -1):
        if reg[k] is hd:
            del reg[k]


def _emit(h, node, cols, name: str, stages: list, ctx: _Ctx) -> np.ndarray:
    """Add ``node``'s rows on the input columns ``cols``; returns its output columns."""
    cols = np.asarray(cols, np.int32)
    if isinstance(node, _Ident):
        return cols
    if isinstance(node, _Seq):
        for k, sub in enumerate(node.nodes):
            cols = _emit(h, sub, cols, name if len(node.nodes) == 1 else f"{name}.{k}", stages, ctx)
        return cols
    if isinstance(node, _Par):
        outs = []
        for k, (idx, sub) in enumerate(node.parts):
            outs.append(_emit(h, sub, cols if idx is None else cols[idx], f"{name}.{k}", stages, ctx))
        return np.concatenate(outs).astype(np.int32)
    if isinstance(node, _Affine):
        hd = add_affine(h, cols, node.W, node.b, node.out.lo, node.out.hi, f"{name}.{node.tag}")
        if node.expand is not None:
            ctx.score_cols = hd.output_cols[node.expand]
            stages.append(hd)
            return ctx.score_cols
    elif isinstance(node, _Poly):
        hd = _add_poly(h, node, cols, f"{name}.{node.tag}")
    elif isinstance(node, _Model):
        if node.network:
            from emlpress.milp.network import add_network

            hd = add_network(h, node.model, cols, bounds=ctx.bounds, name=f"{name}.{node.tag}")
            if node.expand is not None:
                _unregister(h, hd)
                ctx.score_cols = hd.output_cols[node.expand]
                stages.append(hd)
                return ctx.score_cols
        else:
            hd = _registered(node.model).add(h, node.model, cols, name=f"{name}.{node.tag}")
            ctx.foreign = hd
        _unregister(h, hd)
    elif isinstance(node, _Argmax):
        t0 = time.perf_counter()
        n0, r0 = h.getNumCol(), h.getNumRow()
        lo, hi = col_bounds(h, cols)
        z = add_argmax(h, cols, lo, hi, margin=node.margin, name=f"{name}.{node.tag}")
        hd = _ArgmaxHandle(f"{name}.{node.tag}", cols, z, h.getNumCol() - n0, len(z),
                           h.getNumRow() - r0, time.perf_counter() - t0, h)
    else:  # pragma: no cover - the plan makes only the nodes above
        raise AssertionError(type(node))
    stages.append(hd)
    return np.asarray(hd.output_cols, np.int32)


# --- the handle -----------------------------------------------------------------------------


@dataclass
class SklearnHandle(PredictorHandle):
    """A scikit-learn model inside a HiGHS model: ``outputs`` are its prediction's variables
    (a regressor's ``predict``, shape ``(n_outputs,)``; a transformer's ``transform``; a
    classifier's one indicator per class of ``classes_`` then its scores, or with
    ``output="decision_function"`` its scores only). ``stages`` are the handles of its steps
    (:class:`~emlpress.milp.NetworkHandle` for an MLP, ...) in the order they were added;
    :meth:`predict` is the model's own (``predict``, ``decision_function``), which
    :func:`~emlpress.milp.solve` verifies every answer against."""

    name: str
    model: object
    input_cols: np.ndarray
    output_cols: np.ndarray
    stages: list
    n_vars: int
    n_binaries: int
    n_constraints: int
    encode_s: float
    _h: object = field(repr=False, default=None)
    classes: np.ndarray | None = None  # a classifier's classes_, in indicator order
    score_cols: np.ndarray | None = None  # a classifier's score columns
    _evaluate: object = field(repr=False, default=None)

    @property
    def class_vars(self) -> list:
        """A classifier's indicator variables (1 for the predicted class), ``classes`` order."""
        if self.classes is None or len(self.output_cols) == len(self.score_cols):
            raise AttributeError(f"model {self.name!r} is not a classifier embedded with output='class'")
        return self._vars(self.output_cols[:len(self.output_cols) - len(self.score_cols)])

    @property
    def score_vars(self) -> list:
        """A classifier's score variables (``decision_function`` or logits)."""
        if self.score_cols is None:
            raise AttributeError(f"model {self.name!r} is not a classifier")
        return self._vars(self.score_cols)

    def predict(self, x):
        """The model's own evaluation at one input point ``x`` (shape ``(n_in,)``), in the
        order of ``outputs``."""
        return np.asarray(self._evaluate(np.asarray(x, float)[None, :]), float).reshape(-1)

    def predicted_class(self, solution):
        """The class (a value of ``classes``) the MILP chose in ``solution``."""
        z = np.asarray(solution.col_values)[self.output_cols[:len(self.classes)]]
        return self.classes[int(np.argmax(z))]

    def _exact_columns(self, x):
        val = dict(zip(self.input_cols.tolist(), np.asarray(x, float)))
        for st in self.stages:
            ec = st._exact_columns(np.array([val[int(c)] for c in st.input_cols]))
            if ec is None:
                return None
            val.update(zip(np.asarray(ec[0]).tolist(), np.asarray(ec[1], float)))
        return np.fromiter(val.keys(), np.int32, len(val)), np.fromiter(val.values(), float, len(val))

    def _mismatch(self, diff: float, scale: float) -> str | None:
        if diff > VERIFY_RTOL * scale:
            return (f"model {self.name!r} ({type(self.model).__name__}): the MILP's outputs differ "
                    f"from its predict by {diff:.3g} (relative {diff / scale:.3g})")
        return None

    def stats(self) -> dict:
        s = super().stats()
        s["kind"] = type(self.model).__name__
        s["steps"] = [st.name for st in self.stages]
        return s

    def print_stats(self, file=None) -> None:
        s = self.stats()
        print(f"{s['kind']} {self.name!r}: {s['inputs']} inputs, {s['outputs']} outputs; "
              f"{s['variables']} variables ({s['binaries']} binary), {s['constraints']} "
              f"constraints; steps {', '.join(s['steps'])}; encoded in {s['encode_ms']:.2f} ms",
              file=file)


def _frame(model, X):
    """``X`` as the model was fitted: a DataFrame with its column names if it had them."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return X
    import pandas as pd

    return pd.DataFrame(X, columns=list(names))


def add_sklearn(h, model, inputs, name: str | None = None, output: str | None = None,
                margin: float = 0.0, bounds=None) -> SklearnHandle:
    """Add a fitted scikit-learn model (the kinds of the module: ``SUPPORTED``) to the
    ``highspy.Highs`` model ``h`` with ``inputs`` (highspy variables or column indices with
    finite bounds; integer columns of width 1 count as binary for ``PolynomialFeatures``) as
    its features.

    ``output``: for a classifier ``"class"`` (default; outputs: one binary per class, then
    the scores) or ``"decision_function"`` (the scores: ``decision_function``, an MLP's
    logits); ``predict_proba`` is refused. ``margin`` (classifiers, score units): the chosen
    class beats every other by at least that much. ``bounds``: the bound method (or
    :class:`~emlpress.bounds.Bounds`) of an MLP's :func:`~emlpress.milp.add_network`.
    ``name`` (default: the class's name, lower case) prefixes the new columns' names and
    must be unique in ``h``. Raises TypeError or ValueError naming the step and the reason,
    before anything is added to ``h``."""
    t0 = time.perf_counter()
    kind = type(model).__name__
    name = kind.lower() if name is None else str(name)
    if any(hd.name == name for hd in registered_handles(h)):
        raise ValueError(f"a model named {name!r} is already in this model: pass another name=")
    if isinstance(output, str) and output.lower() in _PROBA:
        raise ValueError(f"{kind}: output={output!r} is not piecewise linear (a softmax or sigmoid "
                         "of the scores): embed output='class' (the argmax) or "
                         "output='decision_function' (the scores) instead")
    if output not in (None, "class", "decision_function", "logits"):
        raise ValueError(f"{kind}: output={output!r}: expected 'class' or 'decision_function' "
                         "(classifiers) or None")
    output = "decision_function" if output == "logits" else output
    margin = float(margin)
    if not (np.isfinite(margin) and margin >= 0):
        raise ValueError(f"{kind}: margin must be a finite number >= 0, got {margin}")
    cols = column_indices(h, inputs)
    n_in = getattr(model, "n_features_in_", None)
    if n_in is not None and int(n_in) != cols.size:
        raise ValueError(f"{kind}: takes {n_in} features (n_features_in_), got {cols.size} inputs")
    box = _input_box(h, cols, name)
    ctx = _Ctx(output or "class", margin, bounds)
    node, _ = _plan(model, box, kind, ctx, True)
    if ctx.classifier is None and (output is not None or margin != 0.0):
        raise ValueError(f"{kind}: output= and margin= apply to classifiers; this model is not one")
    if ctx.classifier is not None and ctx.output != "class" and margin != 0.0:
        raise ValueError(f"{kind}: margin= applies to output='class'")

    n0, r0 = h.getNumCol(), h.getNumRow()
    before = list(registered_handles(h))
    tols = {o: option_value(h, o) for o in ("mip_feasibility_tolerance", "primal_feasibility_tolerance")}
    stages: list = []
    try:
        out = _emit(h, node, cols, name, stages, ctx)
    except BaseException:  # a failure of HiGHS or of an encoder: leave h as it was
        if h.getNumRow() > r0:
            h.deleteRows(h.getNumRow() - r0, np.arange(r0, h.getNumRow(), dtype=np.int32))
        if h.getNumCol() > n0:
            h.deleteCols(h.getNumCol() - n0, np.arange(n0, h.getNumCol(), dtype=np.int32))
        reg = registered_handles(h)  # created by the first add_network if h had none
        reg[:] = [hd for hd in reg if any(hd is b for b in before)]
        for o, v in tols.items():
            h.setOptionValue(o, v)
        raise
    classes = None
    if ctx.foreign is not None and kind == "Pipeline" and stages[-1] is ctx.foreign:
        last, pre = ctx.foreign, model[:-1]

        def evaluate(X):  # the last step's own handle (its outputs' layout) on the transforms
            Z = np.asarray(pre.transform(_frame(model, X)), float)
            return np.vstack([np.asarray(last.predict(z), float).reshape(-1) for z in Z])
    elif ctx.classifier is None:
        f = model.predict if hasattr(model, "predict") else model.transform

        def evaluate(X):
            return np.asarray(f(_frame(model, X)), float)
    else:
        classes = np.asarray(model.classes_)
        score_fn = _score_function(model, ctx)
        if ctx.output == "class":
            out = np.concatenate([out, ctx.score_cols]).astype(np.int32)

            def evaluate(X):
                pred = np.asarray(model.predict(_frame(model, X)))
                onehot = (pred[:, None] == classes[None, :]).astype(float)
                return np.hstack([onehot, score_fn(X).reshape(X.shape[0], -1)])
        else:
            evaluate = score_fn
    handle = SklearnHandle(
        name=name, model=model, input_cols=cols, output_cols=np.asarray(out, np.int32), stages=stages,
        n_vars=h.getNumCol() - n0, n_binaries=int(sum(getattr(s, "n_binaries", 0) for s in stages)),
        n_constraints=h.getNumRow() - r0, encode_s=time.perf_counter() - t0, _h=h,
        classes=classes, score_cols=None if ctx.score_cols is None else np.asarray(ctx.score_cols, np.int32),
        _evaluate=evaluate)
    handle.register()
    return handle


def _score_function(model, ctx: _Ctx):
    """The scores of a classifier (or a pipeline ending in one) at a batch ``X``: its own
    ``decision_function``, or for an MLP the logits of its network after the pipeline's
    transforms."""
    if hasattr(model, "decision_function"):
        return lambda X: np.asarray(model.decision_function(_frame(model, X)), float)
    pre = model[:-1] if type(model).__name__ == "Pipeline" else None
    net = ctx.net

    def logits(X):
        Z = X if pre is None else np.asarray(pre.transform(_frame(model, X)), float)
        return net.forward(np.asarray(Z, float))

    return logits
