"""Independent reference computations for the tests (numpy and scipy only)."""

import itertools

import numpy as np
from scipy.optimize import linprog


def true_extremes(net, lo, hi, k, rows=None):
    """Exact min/max of every pre-activation of layer k: enumerate the activation patterns
    of all earlier hidden units; on each pattern's region the network is affine (an LP).
    ``rows``: (A, b) more linear constraints A x <= b on the inputs (a polytope)."""
    hidden = net.sizes[1:k + 1]
    n_h = sum(hidden)
    best_l = np.full(net.sizes[k + 1], np.inf)
    best_u = np.full(net.sizes[k + 1], -np.inf)
    for pattern in itertools.product([0, 1], repeat=n_h):
        # affine maps of every pre-activation in terms of x under this pattern
        A, c = np.eye(net.n_in), np.zeros(net.n_in)
        A_ub, b_ub, p = [], [], 0
        for j in range(k):
            Z_A, Z_c = net.weights[j] @ A, net.weights[j] @ c + net.biases[j]
            mask = np.array(pattern[p:p + hidden[j]], dtype=bool)
            p += hidden[j]
            for i in range(hidden[j]):  # active: z >= 0; inactive: z <= 0
                sgn = -1.0 if mask[i] else 1.0
                A_ub.append(sgn * Z_A[i])
                b_ub.append(-sgn * Z_c[i])
            A, c = Z_A * mask[:, None], Z_c * mask
        Z_A, Z_c = net.weights[k] @ A, net.weights[k] @ c + net.biases[k]
        # each row scaled to unit norm (rows of a dead unit, ~1e-7 x + 1e-11 <= 0, are
        # otherwise below HiGHS' tolerances); an all-zero row is a constant: 0 <= b or empty
        A_ub, b_ub = np.array(A_ub).reshape(-1, net.n_in), np.array(b_ub)
        if rows is not None:
            A_ub, b_ub = np.vstack([A_ub, rows[0]]), np.concatenate([b_ub, rows[1]])
        norm = np.linalg.norm(A_ub, axis=1)
        if np.any((norm == 0) & (b_ub < 0)):
            continue
        keep = norm > 0
        A_ub, b_ub = A_ub[keep] / norm[keep, None], b_ub[keep] / norm[keep]
        for i in range(Z_A.shape[0]):
            for sgn in (1, -1):
                r = linprog(sgn * Z_A[i], A_ub=A_ub if len(A_ub) else None,
                            b_ub=b_ub if len(b_ub) else None, bounds=list(zip(lo, hi)), method="highs")
                if r.status == 2:
                    break  # empty region
                assert r.status == 0, f"scipy linprog: {r.message}"
                v = sgn * r.fun + Z_c[i]
                best_l[i], best_u[i] = (min(best_l[i], v), best_u[i]) if sgn == 1 else (best_l[i], max(best_u[i], v))
    return best_l, best_u
