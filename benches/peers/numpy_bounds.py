"""Plain numpy implementations of the bound methods: the baseline a user would write.

Same algorithms as emlpress (interval arithmetic; CROWN with the adaptive lower slope,
intermediate layers by CROWN, an interval step from each tightened layer, stable
neurons kept from interval), BLAS through numpy,
no rounding slack.
"""

import numpy as np


def interval(Ws, bs, lo, hi):
    lowers, uppers = [], []
    l, u = lo, hi
    for W, b in zip(Ws, bs):
        c, r = (l + u) / 2, (u - l) / 2
        zc, zr = W @ c + b, np.abs(W) @ r
        lowers.append(zc - zr)
        uppers.append(zc + zr)
        l, u = np.maximum(lowers[-1], 0), np.maximum(uppers[-1], 0)
    return lowers, uppers


def _relaxation(l, u):
    su = np.where(u <= 0, 0.0, np.where(l >= 0, 1.0, u / np.where(u - l > 0, u - l, 1)))
    tu = np.where((l < 0) & (u > 0), -su * l, 0.0)
    sl = np.where(u <= 0, 0.0, np.where(l >= 0, 1.0, (u >= -l).astype(float)))
    return su, tu, sl


def crown(Ws, bs, lo, hi):
    il, iu = interval(Ws, bs, lo, hi)
    xc, xr = (lo + hi) / 2, (hi - lo) / 2
    lowers, uppers = [il[0]], [iu[0]]
    rel = []
    for k in range(1, len(Ws)):
        rel.append(_relaxation(lowers[-1], uppers[-1]))
        # interval step from the tightened previous layer, intersected with plain interval
        (sl,), (su,) = interval([Ws[k]], [bs[k]], np.maximum(lowers[-1], 0), np.maximum(uppers[-1], 0))
        l, u = np.maximum(il[k], sl), np.minimum(iu[k], su)
        idx = np.arange(l.size) if k == len(Ws) - 1 else np.flatnonzero((l < 0) & (u > 0))
        if idx.size:
            A = Ws[k][idx]
            AU, AL = A.copy(), A.copy()
            cU, cL = bs[k][idx].copy(), bs[k][idx].copy()
            for j in range(k - 1, -1, -1):
                su, tu, sl = rel[j]
                pos = AU >= 0
                cU += np.where(pos, AU, 0) @ tu
                AU = AU * np.where(pos, su, sl)
                neg = AL < 0
                cL += np.where(neg, AL, 0) @ tu
                AL = AL * np.where(neg, su, sl)
                cU, cL = cU + AU @ bs[j], cL + AL @ bs[j]
                AU, AL = AU @ Ws[j], AL @ Ws[j]
            l[idx] = np.maximum(l[idx], cL + AL @ xc - np.abs(AL) @ xr)
            u[idx] = np.minimum(u[idx], cU + AU @ xc + np.abs(AU) @ xr)
        lowers.append(l)
        uppers.append(u)
    return lowers, uppers
