"""The per-neuron HiGHS MILP that emlpress.bounds.milp was until the branch-and-bound
replaced it: layer by layer, the big-M encoding of the earlier layers (emlpress' C++ rows)
with its own bounds so far, the min and max of every neuron of the next layer solved by
HiGHS' MIP to a zero gap, the MIP dual bound taken as the bound. It is the baseline a
user would write with highspy, and it is not sound (HiGHS prunes nodes without a dual
proof and drops coefficients at or below 1e-9): the benchmark uses it for speed and, where
its values agree with the certified ones, as an independent check."""

import highspy
import numpy as np

from emlpress import bounds, kernels
from emlpress.bounds.relaxation import add_block

E_I, E_F = np.array([], dtype=np.int32), np.array([], dtype=np.float64)


def milp_bounds(net, lo, hi, time_limit=None):
    """Per layer (lower, upper) for every neuron (min and max each), from CROWN's start."""
    init = bounds.crown(net, lo, hi)
    lower = [np.array(a) for a in init.lower]
    upper = [np.array(a) for a in init.upper]
    store = kernels.LpRelaxation(lo, hi, True)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-9)
    h.setOptionValue("mip_feasibility_tolerance", 1e-9)
    h.setOptionValue("primal_feasibility_tolerance", 1e-9)
    if time_limit is not None:
        h.setOptionValue("time_limit", float(time_limit))
    h.addCols(len(lo), np.zeros(len(lo)), lo, hi, 0, E_I, E_I, E_F)
    ref = E_I
    for k in range(1, net.n_layers):
        add_block(h, store.add_layer(net._core, k - 1, lower[k - 1], upper[k - 1]))
        aff = store.pre_activation(net._core, k)
        if len(ref):
            h.changeColsCost(len(ref), ref, np.zeros(len(ref)))
        ref = np.asarray(aff.ref, dtype=np.int32)
        for i in range(lower[k].size):
            w, c = aff.A[i], float(aff.c[i])
            if not np.any(w):
                lower[k][i] = upper[k][i] = c
                continue
            for sgn in (1.0, -1.0):
                h.changeColsCost(len(ref), ref, sgn * w)
                h.run()
                info = h.getInfo()
                v = info.mip_dual_bound if info.mip_node_count >= 0 else info.objective_function_value
                if sgn > 0:
                    lower[k][i] = max(lower[k][i], v + c)
                else:
                    upper[k][i] = min(upper[k][i], -v + c)
    return lower, upper
