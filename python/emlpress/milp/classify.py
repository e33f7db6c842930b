"""The predicted class of a classifier as MILP columns: :func:`add_argmax`, which any kind
of classifier reuses on its scores (logits, ``decision_function`` margins, an ensemble's
summed raw margins), and :func:`argmax_indicators`, the same rule evaluated in numpy.

The tie rule is numpy's and scikit-learn's: the class predicted is the **first** index of
the largest score (``np.argmax``); a single score column is a binary classifier's
decision, class 1 when the score is > 0 and class 0 when it is <= 0 (the scores ``(0, s)``
under the same rule). In the MILP, class ``k`` can be chosen only where it leads every other
class by ``gap = TIE_GAP * max(1, max |score bound|)``: the points where two different scores
come within ``gap`` of a tie at the top are left out of the model (as a tree's split leaves
out the inputs between two float32 values), because there HiGHS' tolerances and the float64
rounding of the model's own evaluation decide the class (an optimum on a decision boundary
otherwise comes back with the other class than ``predict``'s). Ties that are exact are kept
and follow the rule: a column given twice in ``score_columns`` is one score (the classifiers
map identical rows of ``coef_``/``intercept_`` or of a network's last layer to one column),
so the earlier class wins it; two scores fixed by their bounds are compared exactly. With
``margin > 0`` the chosen class must beat every other by at least ``max(margin, gap)`` (ties
never pass): a robust classification constraint.
"""

from __future__ import annotations

import numpy as np

from emlpress._highs import Builder, column_indices, tighten_tolerances

__all__ = ["add_argmax", "argmax_indicators", "TIE_GAP", "TOL"]

#: the lead a class needs over every other, relative to max(1, the largest |score bound|),
#: and the feasibility tolerance set on the model (at most), 100 times finer
TIE_GAP = 1e-7
TOL = 1e-9


def argmax_indicators(scores, margin: float = 0.0) -> np.ndarray:
    """The one-hot class indicators :func:`add_argmax` allows at ``scores`` (shape
    ``(n_scores,)`` or ``(n, n_scores)``; one score: a binary decision): shape
    ``(n_classes,)`` or ``(n, n_classes)``, by the tie rule of the module (the first largest
    score; one score: class 1 when it is > 0). ``margin`` is not applied here (a point where
    the winner leads by less than ``margin`` is outside the MILP, whatever this returns)."""
    s = np.asarray(scores, dtype=np.float64)
    one = s.ndim == 1
    S = np.atleast_2d(s)
    if S.shape[1] == 1:
        S = np.column_stack([np.zeros(S.shape[0]), S[:, 0]])
    out = np.zeros_like(S)
    out[np.arange(S.shape[0]), np.argmax(S, axis=1)] = 1.0
    return out[0] if one else out


def add_argmax(h, score_columns, bounds_lo, bounds_hi, margin: float = 0.0,
               name: str = "argmax") -> np.ndarray:
    """Add to the ``highspy.Highs`` model ``h`` one binary per class that is 1 exactly for
    the class the scores in ``score_columns`` (column indices or highspy variables, shape
    ``(n_scores,)``; a column given twice is one score, tied exactly) predict, by the
    module's tie rule (points within ``gap`` of a tie of different scores left out); one
    score column is a binary classifier's decision (two classes: 0 when the score is <= 0,
    1 when > 0).

    ``bounds_lo``/``bounds_hi`` (shape ``(n_scores,)``, finite, in score units) must hold
    every value the scores take on the model's domain: they are the big-Ms. ``margin`` (>= 0,
    score units): the chosen class beats every other by at least ``margin``. Returns the
    indicator columns, shape ``(n_classes,)`` (int32): ``sum = 1``; a class that can never
    win by the margin on the bounds gets its binary fixed at 0. HiGHS' MIP and primal
    feasibility tolerances are set to at most ``TOL``. Raises ValueError, adding nothing,
    on bounds that are not finite or cross, or a margin that is not a finite number >= 0."""
    cols = column_indices(h, score_columns)
    lo = np.asarray(bounds_lo, dtype=np.float64).reshape(-1)
    hi = np.asarray(bounds_hi, dtype=np.float64).reshape(-1)
    if lo.size != cols.size or hi.size != cols.size:
        raise ValueError(f"{name}: {cols.size} score columns but bounds of {lo.size} and "
                         f"{hi.size} values")
    if cols.size == 0:
        raise ValueError(f"{name}: no score columns")
    for k in range(cols.size):
        if not (np.isfinite(lo[k]) and np.isfinite(hi[k]) and lo[k] <= hi[k]):
            raise ValueError(f"{name}: score {k} has bounds [{lo[k]}, {hi[k]}]: they must be "
                             "finite with lo <= hi (they are the big-Ms)")
    margin = float(margin)
    if not (np.isfinite(margin) and margin >= 0.0):
        raise ValueError(f"{name}: margin must be a finite number >= 0, got {margin}")
    tighten_tolerances(h, TOL)
    B = Builder(h.getNumCol())
    if cols.size == 1:  # a binary decision: the scores (0, s)
        zero = B.col(0.0, 0.0, False)
        cols = np.array([zero, int(cols[0])])
        lo, hi = np.array([0.0, lo[0]]), np.array([0.0, hi[0]])
    K = cols.size
    gap = TIE_GAP * max(1.0, float(np.max(np.abs(np.concatenate([lo, hi])))))
    need = max(margin, gap)
    fixed = lo == hi

    def exact(k, j):  # True/False: k beats j (by the margin) at every point; None: a row decides
        if cols[k] == cols[j]:
            return bool(k < j and margin == 0.0)
        if fixed[k] and fixed[j]:
            d = float(lo[k] - lo[j])
            return bool(d >= margin if margin > 0 else (d > 0 or (d == 0 and k < j)))
        return None

    rel = [[None if j == k else exact(k, j) for j in range(K)] for k in range(K)]
    # class k cannot win where an exact comparison says so, or its best score misses another's worst
    never = [any(rel[k][j] is False or (rel[k][j] is None and hi[k] - lo[j] < need)
                 for j in range(K) if j != k) for k in range(K)]
    z = [B.col(0.0, 0.0 if never[k] else 1.0, True) for k in range(K)]
    B.row(z, [1.0] * K, 1.0, 1.0)  # no class can win: infeasible, as no point of the model passes
    for k in range(K):
        if never[k]:
            continue
        for j in range(K):
            if j == k or rel[k][j] is not None:
                continue
            # z_k = 1 -> s_k - s_j >= need;  z_k = 0 -> s_k - s_j >= lo_k - hi_j (always true)
            slack = need - (lo[k] - hi[j])
            if slack <= 0.0:
                continue  # k beats j by the margin wherever the bounds hold
            B.row([int(cols[k]), int(cols[j]), z[k]], [1.0, -1.0, -slack], need - slack, np.inf)
    B.flush(h)
    for k, c in enumerate(z):
        h.passColName(int(c), f"{name}.class{k}")
    return np.asarray(z, dtype=np.int32)
