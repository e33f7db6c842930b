"""The baseline a user would write with highspy: one LP per layer (explicit z and a columns,
triangle relaxation of every unstable earlier unit with its own LP bounds), the objective
changed per neuron, warm-started, min and max of every neuron solved to optimality."""

import highspy
import numpy as np


def lp_bounds(net, lo, hi):
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("presolve", "off")
    E = np.array([], dtype=np.int32)
    h.addCols(net.n_in, np.zeros(net.n_in), lo, hi, 0, E, E, np.array([]))
    prev = np.arange(net.n_in, dtype=np.int32)
    W0, b0 = net.weights[0], net.biases[0]
    c, r = (lo + hi) / 2, (hi - lo) / 2
    lowers, uppers = [W0 @ c + b0 - np.abs(W0) @ r], [W0 @ c + b0 + np.abs(W0) @ r]
    for k in range(1, net.n_layers):
        W, b = net.weights[k - 1], net.biases[k - 1]
        l, u = lowers[-1], uppers[-1]
        n = W.shape[0]
        z0 = h.getNumCol()
        h.addCols(n, np.zeros(n), l, u, 0, E, E, np.array([]))  # z
        a0 = h.getNumCol()
        h.addCols(n, np.zeros(n), np.maximum(l, 0), np.maximum(u, 0), 0, E, E, np.array([]))  # a
        for i in range(n):  # z_i - W_i a_prev = b_i
            idx = np.concatenate([[z0 + i], prev]).astype(np.int32)
            h.addRow(b[i], b[i], len(idx), idx, np.concatenate([[1.0], -W[i]]))
            if u[i] <= 0:
                continue  # a in [0, 0]
            if l[i] >= 0:  # a = z
                h.addRow(0, 0, 2, np.array([a0 + i, z0 + i], dtype=np.int32), np.array([1.0, -1.0]))
            else:  # a >= z, a <= s (z - l)
                s = u[i] / (u[i] - l[i])
                h.addRow(0, np.inf, 2, np.array([a0 + i, z0 + i], dtype=np.int32), np.array([1.0, -1.0]))
                h.addRow(-np.inf, -s * l[i], 2, np.array([a0 + i, z0 + i], dtype=np.int32), np.array([1.0, -s]))
        if k > 1:
            h.changeColsCost(len(prev), prev, np.zeros(len(prev)))
        prev = np.arange(a0, a0 + n, dtype=np.int32)
        Wk, bk = net.weights[k], net.biases[k]
        lo_k, up_k = np.empty(Wk.shape[0]), np.empty(Wk.shape[0])
        for i in range(Wk.shape[0]):
            for sense, out in ((1.0, lo_k), (-1.0, up_k)):
                h.changeColsCost(len(prev), prev, sense * Wk[i])
                h.run()
                out[i] = sense * h.getInfo().objective_function_value + bk[i]
        lowers.append(lo_k)
        uppers.append(up_k)
    return lowers, uppers
