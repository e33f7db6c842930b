"""scikit-learn decision trees (regressors, single or multi-output) in a HiGHS MILP.

One binary per leaf, exactly one leaf chosen; for every internal node, the leaves of its left
subtree force its feature to the left side of the split and those of its right subtree to
the right side; each output is the chosen leaf's value.

The threshold rule is scikit-learn's own: ``predict`` casts inputs to float32 and sends a
sample left when ``float32(x[f]) <= threshold``. So an input goes left exactly when it is at
most ``lo_f = ``the largest float32 ``<= threshold``, and right when it is at least the next
float32 above it; the MILP's rows are ``x[f] <= lo_f`` (left) and ``x[f] >= hi_f`` (right),
with ``hi_f`` that next float32, pushed up to at least ``lo_f + GAP * max(1, |lo_f|)`` so the
solver's tolerance cannot blur the two sides (``add_tree`` sets HiGHS' MIP and primal
feasibility tolerances to at most ``TOL`` = 1e-9). Inputs strictly between ``lo_f`` and ``hi_f``
(one float32 step, or the gap) are left out of the model; integer inputs never fall there.
:func:`emlpress.milp.solve` checks every solution against ``tree.predict``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from emlpress._highs import Builder, tighten_tolerances
from emlpress.milp.handle import PredictorHandle, _new_inputs

__all__ = ["add_tree", "TreeHandle", "GAP"]

#: smallest separation of a split's two sides, relative to max(1, |threshold|), and the
#: feasibility tolerance set on the model (at most), 50 times finer
GAP = 5e-8  # below float32's relative step (2^-24): the next float32 decides wherever |t| >= 1
TOL = 1e-9


def _split_sides(threshold: float) -> tuple[float, float]:
    """(largest float32 <= threshold, the smallest value the MILP lets go right)."""
    t32 = np.float32(threshold)
    lo = t32 if float(t32) <= threshold else np.nextafter(t32, np.float32(-np.inf))
    hi = float(np.nextafter(lo, np.float32(np.inf)))
    lo = float(lo)
    return lo, max(hi, lo + GAP * max(1.0, abs(lo)))


@dataclass
class TreeHandle(PredictorHandle):
    """A decision tree inside a HiGHS model: ``leaf_cols[k]`` the binary of leaf ``leaves[k]``
    (a node index of ``tree.tree_``), ``outputs`` the predicted values."""

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
    """Add a fitted scikit-learn ``DecisionTreeRegressor`` (single or multi-output) to the ``highspy.Highs`` model ``h`` with ``inputs`` (highspy variables or
    column indices with finite bounds) as its features. Returns a :class:`TreeHandle` whose
    ``outputs`` are the prediction's variables."""
    t0 = time.perf_counter()
    t = getattr(tree, "tree_", None)
    if t is None:
        raise TypeError(f"expected a fitted scikit-learn decision tree, got {type(tree).__name__}")
    if hasattr(tree, "classes_"):
        raise TypeError("add_tree takes regression trees (DecisionTreeRegressor); "
                        f"{type(tree).__name__} is a classifier")
    n_in = int(t.n_features)
    registry, cols, lo, hi = _new_inputs(h, inputs, n_in, name)
    tighten_tolerances(h, TOL)
    left, right, feat, thr = t.children_left, t.children_right, t.feature, t.threshold
    value = t.value[:, :, 0]  # (n_nodes, n_outputs)
    leaves = np.flatnonzero(left == -1)
    B = Builder(h.getNumCol())
    leaf_col = {int(n): B.col(0, 1, True) for n in leaves}
    z = list(leaf_col.values())
    n_out = value.shape[1]
    out_cols = [B.col(value[leaves, k].min(), value[leaves, k].max(), False) for k in range(n_out)]
    B.row(z, [1.0] * len(z), 1.0, 1.0)  # exactly one leaf
    for k, y in enumerate(out_cols):  # y_k = sum_l value[l, k] z_l
        B.row([y] + z, [1.0] + [-value[n, k] for n in leaves], 0.0, 0.0)

    def subtree_leaves(n: int) -> list[int]:
        out, stack = [], [n]
        while stack:
            m = stack.pop()
            if left[m] == -1:
                out.append(leaf_col[int(m)])
            else:
                stack += [int(left[m]), int(right[m])]
        return out

    for n in np.flatnonzero(left != -1):
        f = int(feat[n])
        c = int(cols[f])
        t_lo, t_hi = _split_sides(float(thr[n]))
        L, U = float(lo[f]), float(hi[f])
        zl, zr = subtree_leaves(int(left[n])), subtree_leaves(int(right[n]))
        # left leaves chosen -> x <= t_lo:  x + (U - t_lo) sum(zl) <= U
        if U > t_lo:
            B.row([c] + zl, [1.0] + [U - t_lo] * len(zl), -np.inf, U)
        # right leaves chosen -> x >= t_hi:  x - (t_hi - L) sum(zr) >= L
        if L < t_hi:
            B.row([c] + zr, [1.0] + [-(t_hi - L)] * len(zr), L, np.inf)
    n_vars, n_rows, _ = B.flush(h)
    for k, y in enumerate(out_cols):
        h.passColName(y, f"{name}.y{k}")
    handle = TreeHandle(name, tree, cols, np.asarray(out_cols, np.int32), leaves,
                        np.asarray(z, np.int32), n_vars, len(z), n_rows, time.perf_counter() - t0, h)
    registry.append(handle)
    return handle
