"""Decision trees in a HiGHS MILP: one tree's rows (:func:`tree_rows`, shared by the tree
ensembles of :mod:`emlpress.milp.ensemble`) and scikit-learn's regression trees
(:func:`add_tree`).

One binary per leaf, exactly one leaf chosen; for every internal node, the leaves of its left
subtree force its feature to the left side of the split and those of its right subtree to
the right side; each output is the chosen leaf's value.

Every library compares differently, so a tree carries its comparison rule (:class:`Rule`):

- scikit-learn casts inputs to float32 and goes left when ``float32(x[f]) <= threshold``
  (``threshold`` a float64): left when ``x`` rounds to at most the largest float32
  ``<= threshold``;
- XGBoost casts inputs to float32 and goes left when ``float32(x[f]) < t`` (``t`` a float32):
  left when ``x`` rounds to at most the float32 below ``t``;
- LightGBM compares float64 inputs, left when ``x[f] <= t`` (``t`` a float64).

The MILP's rows are ``x[f] <= lo_f`` (left) and ``x[f] >= hi_f`` (right), at least ``GAP *
max(1, |lo_f|)`` apart so the solver's tolerance cannot blur the two sides (:func:`tree_rows`
sets HiGHS' MIP and primal feasibility tolerances to at most ``TOL`` = 1e-9)
(:meth:`Rule.sides_array`): scikit-learn: ``lo_f`` the largest float32 that goes left, ``hi_f``
the next float32 or ``lo_f`` + the gap; LightGBM: ``lo_f = t``; XGBoost: ``hi_f`` the smallest
float64 that rounds to ``t`` (the exact boundary, :meth:`Rule.boundary`) plus ``MARGIN``, or
``t`` if nearer, the gap below it, so that float64 inputs XGBoost rounds up to its split
values are in (a feature of magnitude below ~0.1 has float32 steps too fine for HiGHS'
tolerance: scale it up). Inputs strictly
between ``lo_f`` and ``hi_f`` are left out of the model; integer inputs never fall there.
:func:`emlpress.milp.solve` checks every solution against the model's ``predict``.

A leaf no input of the box reaches by the model's own rule (its path needs a feature beyond
the box) gets no binary: it is dropped, as a network's stable units are, and counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from emlpress._highs import Builder, tighten_tolerances
from emlpress.milp.handle import PredictorHandle, _new_inputs

__all__ = ["add_tree", "TreeHandle", "GAP", "Rule", "TreeArrays", "tree_rows", "reachable_leaves",
           "sklearn_tree_arrays", "LeafStats", "nonempty_box"]

#: smallest separation of a split's two sides, relative to max(1, |threshold|), and the
#: feasibility tolerance set on the model (at most), 50 times finer
GAP = 5e-8  # below float32's relative step (2^-24): the next float32 decides wherever |t| >= 1
TOL = 1e-9
#: XGBoost: the right side starts this far (relative to max(1, |t|)) above the exact
#: boundary, or at the split value if nearer: HiGHS' tolerance must not carry an answer
#: at the edge of a leaf's region across the boundary (float32 rounding sends it left)
MARGIN = 5e-9


class Rule:
    """How a library sends an input left at a split (see the module's docstring)."""

    SKLEARN = "float32(x) <= t"  # t float64
    XGBOOST = "float32(x) < t"  # t float32
    LIGHTGBM = "x <= t"  # float64

    @staticmethod
    def goes_left(rule: str, x: np.ndarray, t) -> np.ndarray:
        """Whether inputs ``x`` (float64, any shape) go left at threshold ``t`` (broadcast)."""
        if rule == Rule.SKLEARN:
            return np.asarray(x, np.float64).astype(np.float32) <= np.asarray(t, np.float64)
        if rule == Rule.XGBOOST:
            return np.asarray(x, np.float64).astype(np.float32) < np.asarray(t, np.float32)
        if rule == Rule.LIGHTGBM:
            return np.asarray(x, np.float64) <= np.asarray(t, np.float64)
        raise ValueError(f"unknown split rule {rule!r}")

    @staticmethod
    def sides(rule: str, threshold: float) -> tuple[float, float]:
        """(largest input the MILP lets go left, smallest input it lets go right)."""
        lo, hi = Rule.sides_array(rule, np.array([threshold], np.float64))
        return float(lo[0]), float(hi[0])

    @staticmethod
    def boundary(rule: str, threshold: float) -> tuple[float, float]:
        """(largest float64 input that goes left, smallest that goes right): the library's."""
        lo, hi = Rule.boundary_array(rule, np.array([threshold], np.float64))
        return float(lo[0]), float(hi[0])

    @staticmethod
    def _float32_sides(rule: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the largest float32 that goes left, the next float32: the smallest that goes
        right), as float64, for the float32 rules."""
        with np.errstate(over="ignore"):
            t32 = t.astype(np.float32)
        if rule == Rule.SKLEARN:  # left: float32(x) <= the largest float32 <= t
            l32 = np.where(t32.astype(np.float64) <= t, t32, np.nextafter(t32, np.float32(-np.inf)))
        elif rule == Rule.XGBOOST:  # left: float32(x) <= the float32 below t
            l32 = np.nextafter(t32, np.float32(-np.inf))
        else:
            raise ValueError(f"unknown split rule {rule!r}")
        return l32.astype(np.float64), np.nextafter(l32, np.float32(np.inf)).astype(np.float64)

    @staticmethod
    def boundary_array(rule: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(largest float64 input that goes left, smallest that goes right) at every threshold
        of ``t`` (shape ``(n,)``), by the library's own comparison: for the float32 rules, on
        either side of the midpoint where ``float32(x)`` rounds from one float32 to the next."""
        t = np.asarray(t, np.float64)
        if rule == Rule.LIGHTGBM:
            return t.copy(), np.nextafter(t, np.inf)
        a, b = Rule._float32_sides(rule, t)
        mid = a + (b - a) / 2  # exact in float64; float32(mid) is a or b (ties to even)
        lo = np.where(Rule.goes_left(rule, mid, t), mid, np.nextafter(mid, -np.inf))
        return lo, np.nextafter(lo, np.inf)

    @staticmethod
    def sides_array(rule: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`sides` of every threshold of ``t`` (shape ``(n,)``): two arrays ``(n,)``.
        The MILP leaves out a gap ``GAP * max(1, |side|)`` wide (the solver's tolerance
        cannot blur the two sides). scikit-learn and LightGBM: from the largest float32
        (LightGBM: float64) that goes left up. XGBoost: the right side starts ``MARGIN *
        max(1, |t|)`` above the exact boundary (:meth:`boundary_array`), or at the split
        value ``t`` if that is nearer, the gap below it: float64 inputs that round up to
        ``t`` are in from there (XGBoost's split values are rounded training values, which
        go right; a right side starting at ``t`` itself left out 85% of load_diabetes'
        rows, features times 50; without the margin HiGHS answered at a region's edge
        across the boundary, within its tolerance)."""
        t = np.asarray(t, np.float64)
        if rule == Rule.XGBOOST:  # right from MARGIN above the boundary, at most t itself
            lo, hi = Rule.boundary_array(rule, t)
            s = np.maximum(1.0, np.abs(hi))
            right = np.minimum(t.astype(np.float32).astype(np.float64), hi + MARGIN * s)
            return np.minimum(lo, right - GAP * s), right
        if rule == Rule.LIGHTGBM:
            lo, nxt = t.copy(), np.nextafter(t, np.inf)
        else:
            lo, nxt = Rule._float32_sides(rule, t)
        return lo, np.maximum(nxt, lo + GAP * np.maximum(1.0, np.abs(lo)))


def _split_sides(threshold: float) -> tuple[float, float]:
    """(largest float32 <= threshold, the smallest value the MILP lets go right): scikit-learn."""
    return Rule.sides(Rule.SKLEARN, threshold)


@dataclass
class TreeArrays:
    """One tree, whatever library it comes from: node arrays of length ``n_nodes``
    (``left[n] == -1`` at a leaf), ``value`` of shape ``(n_nodes, n_out)`` (leaf values in
    output units; rows of internal nodes unused) and the comparison ``rule``."""

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    rule: str

    @property
    def leaves(self) -> np.ndarray:
        return np.flatnonzero(self.left == -1)

    def apply(self, X: np.ndarray) -> np.ndarray:
        """The leaf (node index) each row of ``X`` (shape ``(n, n_features)``) reaches by the
        library's own comparison: shape ``(n,)``."""
        X = np.asarray(X, np.float64)
        node = np.zeros(X.shape[0], np.int64)
        active = self.left[node] != -1
        while active.any():
            idx = np.flatnonzero(active)
            n = node[idx]
            go = Rule.goes_left(self.rule, X[idx, self.feature[n]], self.threshold[n])
            node[idx] = np.where(go, self.left[n], self.right[n])
            active = self.left[node] != -1
        return node


def sklearn_tree_arrays(tree_) -> TreeArrays:
    """The :class:`TreeArrays` of a fitted scikit-learn ``tree_`` (regression values,
    ``value[:, :, 0]``)."""
    return TreeArrays(np.asarray(tree_.children_left), np.asarray(tree_.children_right),
                      np.asarray(tree_.feature), np.asarray(tree_.threshold, np.float64),
                      np.asarray(tree_.value[:, :, 0], np.float64), Rule.SKLEARN)


def _reachable_nodes(T: TreeArrays, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per node, whether some input of the box reaches it by the tree's own rule (bool)."""
    inner = T.left != -1
    f = np.where(inner, T.feature, 0)
    with np.errstate(over="ignore", invalid="ignore"):
        gl = inner & Rule.goes_left(T.rule, np.asarray(lo, float)[f], T.threshold)
        gr = inner & ~Rule.goes_left(T.rule, np.asarray(hi, float)[f], T.threshold)
    reach = np.zeros(T.left.size, bool)
    reach[0] = True
    cur = np.zeros(1, np.int64)
    while cur.size:  # one level of the tree per pass
        cur = np.concatenate([T.left[cur[gl[cur]]], T.right[cur[gr[cur]]]])
        reach[cur] = True
    return reach


def nonempty_box(lo, hi, what: str) -> None:
    """Raise ValueError naming the first feature where ``lo > hi`` (or either is NaN)."""
    bad = np.flatnonzero(~(np.asarray(lo) <= np.asarray(hi)))
    if bad.size:
        q = int(bad[0])
        raise ValueError(f"{what}: the box is empty at feature {q} ([{lo[q]}, {hi[q]}])")


def reachable_leaves(T: TreeArrays, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The leaves (node indices, ascending) some input of the box ``[lo, hi]`` (shape
    ``(n_features,)``) reaches by the tree's own rule: a child is reachable when the box's
    lower end of the feature goes left, or its upper end goes right (the rules are
    monotone in ``x``)."""
    return np.flatnonzero(_reachable_nodes(T, lo, hi) & (T.left == -1))


def tree_rows(B: Builder, T: TreeArrays, cols, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """Add one tree's binaries and rows to the builder ``B``: a binary per leaf reachable in
    the box ``[lo, hi]`` (the input columns ``cols``' bounds), exactly one chosen, and the
    split rows. Returns (the kept leaves' node indices, their binary columns); the caller
    writes the outputs from them (``sum value[leaf] * z``)."""
    keep = reachable_leaves(T, lo, hi)
    z = np.arange(B.first + len(B.lb), B.first + len(B.lb) + keep.size, dtype=np.int32)
    B.lb += [0.0] * keep.size  # one binary per kept leaf, in bulk (B.col's lists)
    B.ub += [1.0] * keep.size
    B.integer += [True] * keep.size
    B.row(z, np.ones(z.size), 1.0, 1.0)  # exactly one leaf
    inner = np.flatnonzero(T.left != -1)
    parent = np.full(T.left.size, -1, np.int64)
    parent[T.left[inner]], parent[T.right[inner]] = inner, inner
    is_left = np.zeros(T.left.size, bool)
    is_left[T.left[inner]] = True
    # every (ancestor, side, leaf binary): a kept leaf forces each split on its path
    node, side, zc = [], [], []
    cur, col = keep.copy(), z.copy()
    while cur.size:
        p = parent[cur]
        m = p >= 0
        cur, col, p = cur[m], col[m], p[m]
        node.append(p), side.append(is_left[cur]), zc.append(col)
        cur = p
    if not node:
        return keep, z
    node, side, zc = np.concatenate(node), np.concatenate(side), np.concatenate(zc)
    order = np.lexsort((zc, ~side, node))  # by node, left side first
    node, side, zc = node[order], side[order], zc[order]
    starts = np.flatnonzero(np.r_[True, (node[1:] != node[:-1]) | (side[1:] != side[:-1])])
    ends = np.r_[starts[1:], node.size]
    t_lo, t_hi = Rule.sides_array(T.rule, T.threshold[node[starts]])
    f = T.feature[node[starts]]
    L, U, left = np.asarray(lo, float)[f], np.asarray(hi, float)[f], side[starts]
    # left leaves chosen -> x <= t_lo:  x + (U - t_lo) sum(zl) <= U
    # right leaves chosen -> x >= t_hi:  x - (t_hi - L) sum(zr) >= L
    coef = np.where(left, U - t_lo, -(t_hi - L))
    row_lo, row_hi = np.where(left, -np.inf, L), np.where(left, U, np.inf)
    emit = np.where(left, U > t_lo, L < t_hi)  # else the box implies the side already
    head = starts + np.arange(starts.size)  # each row: the input column, then its leaves
    idx = np.empty(node.size + starts.size, np.int32)
    val = np.empty(idx.size)
    body = np.ones(idx.size, bool)
    body[head] = False
    idx[head], val[head] = np.asarray(cols)[f], 1.0
    idx[body], val[body] = zc, np.repeat(coef, ends - starts)
    bounds = np.r_[head, idx.size].tolist()  # row g: idx[bounds[g]:bounds[g + 1]] (views, not np.split)
    for g in np.flatnonzero(emit).tolist():
        B.row(idx[bounds[g]:bounds[g + 1]], val[bounds[g]:bounds[g + 1]], row_lo[g], row_hi[g])
    return keep, z


class LeafStats:
    """``stats()``/``print_stats()`` of a tree handle, with the leaves dropped (unreachable
    in the box: ``n_dropped``); ``_title()`` names the model."""

    def _title(self) -> str:
        return f"{type(self).__name__} {self.name!r}"

    def stats(self) -> dict:
        return {**super().stats(), "dropped leaves": self.n_dropped}

    def print_stats(self, file=None) -> None:
        """One-line summary, like gurobi-ml's ``print_stats``, with the dropped leaves."""
        print(f"{self._title()}: {len(self.input_cols)} inputs, {len(self.output_cols)} outputs, "
              f"{self.n_vars} variables, {self.n_binaries} binaries, {self.n_constraints} "
              f"constraints, {self.n_dropped} leaves dropped (unreachable in the box); encoded "
              f"in {self.encode_s * 1e3:.2f} ms", file=file)


@dataclass
class TreeHandle(LeafStats, PredictorHandle):
    """A decision tree inside a HiGHS model: ``leaf_cols[k]`` the binary of leaf ``leaves[k]``
    (a node index of ``tree.tree_``), ``outputs`` the predicted values. Leaves the input box
    cannot reach have no binary (``n_dropped`` of them)."""

    name: str
    tree: object
    input_cols: np.ndarray
    output_cols: np.ndarray
    leaves: np.ndarray
    leaf_cols: np.ndarray
    n_vars: int
    n_binaries: int
    n_constraints: int
    encode_s: float
    _h: object = field(repr=False, default=None)
    n_dropped: int = 0

    def leaf(self, solution) -> int:
        """The node index of the leaf the MILP chose."""
        x = np.asarray(solution.col_values)
        return int(self.leaves[int(np.argmax(x[self.leaf_cols]))])

    def _exact_columns(self, x) -> tuple[np.ndarray, np.ndarray]:
        """The leaf ``tree.apply`` sends ``x`` to and ``tree.predict(x)``, as columns."""
        x = np.asarray(x, float)[None, :]
        leaf = int(self.tree.apply(x)[0])
        y = np.asarray(self.tree.predict(x), float).reshape(-1)
        cols = np.concatenate([self.input_cols, self.leaf_cols, self.output_cols]).astype(np.int32)
        return cols, np.concatenate([x[0], (self.leaves == leaf).astype(float), y])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``tree.predict`` at one input point ``x`` (shape ``(n_in,)``): shape ``(n_out,)``."""
        return np.asarray(self.tree.predict(np.asarray(x, float)[None, :]), float).reshape(-1)


def add_tree(h, tree, inputs, name: str = "tree") -> TreeHandle:
    """Add a fitted scikit-learn ``DecisionTreeRegressor`` (single or multi-output) to the
    ``highspy.Highs`` model ``h`` with ``inputs`` (highspy variables or column indices with
    finite bounds) as its features. Returns a :class:`TreeHandle` whose ``outputs`` are the
    prediction's variables, bounded by the values of the leaves the box reaches.
    (``DecisionTreeClassifier``: :func:`emlpress.milp.add_ensemble` or
    :func:`~emlpress.milp.add_predictor`.)"""
    t0 = time.perf_counter()
    t = getattr(tree, "tree_", None)
    if t is None:
        raise TypeError(f"expected a fitted scikit-learn decision tree, got {type(tree).__name__}")
    if hasattr(tree, "classes_"):
        raise TypeError("add_tree takes regression trees (DecisionTreeRegressor); "
                        f"{type(tree).__name__} is a classifier (add_predictor embeds its class)")
    T = sklearn_tree_arrays(t)
    if not np.all(np.isfinite(T.value[T.leaves])) or not np.all(np.isfinite(T.threshold)):
        raise ValueError(f"tree: {type(tree).__name__} has NaN or infinite leaf values or thresholds")
    n_in = int(t.n_features)
    registry, cols, lo, hi = _new_inputs(h, inputs, n_in, name)
    nonempty_box(lo, hi, "inputs")
    tighten_tolerances(h, TOL)
    B = Builder(h.getNumCol())
    n_out = T.value.shape[1]
    out_cols = [B.col(0.0, 0.0, False) for _ in range(n_out)]  # bounds below, once leaves are known
    leaves, z = tree_rows(B, T, cols, lo, hi)
    for k, y in enumerate(out_cols):  # y_k = sum_l value[l, k] z_l
        B.lb[y - B.first], B.ub[y - B.first] = T.value[leaves, k].min(), T.value[leaves, k].max()
        B.row([y] + list(z), [1.0] + [-T.value[n, k] for n in leaves], 0.0, 0.0)
    n_vars, n_rows, _ = B.flush(h)
    for k, y in enumerate(out_cols):
        h.passColName(y, f"{name}.y{k}")
    handle = TreeHandle(name, tree, cols, np.asarray(out_cols, np.int32), leaves, z, n_vars,
                        len(z), n_rows, time.perf_counter() - t0, h,
                        n_dropped=T.leaves.size - leaves.size)
    registry.append(handle)
    return handle
