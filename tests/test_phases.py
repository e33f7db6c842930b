"""bounds.phases: the batched attacks and the batched second-layer phase branch-and-bound of
stability on high-dimensional inputs, checked against an independent per-neuron MILP
(HiGHS, used here only as a cross-check), forward passes and samples of the box."""

import importlib

import highspy
import numpy as np
import pytest

from emlpress import Network, bounds, milp
from emlpress.bounds import phases
from emlpress.bounds.stability import ACTIVE, INACTIVE, UNRESOLVED, UNSTABLE
from emlpress.bounds.witnesses import _Witnesses
from emlpress.network import box_points
from emlpress.testing import trained_like
from strategies import sample_box

st_mod = importlib.import_module("emlpress.bounds.stability")

#: HiGHS' optimum within this of 0 decides nothing in the cross-check (its tolerances would)
MILP_MARGIN = 1e-5


def local_net(seed, n_in=50, hidden=(24, 12), radius=0.2):
    """Trained-looking [n_in, *hidden, 1] on a local box of ``radius`` around a point of
    [0, 1]^n_in (intersected with it): too many first-layer units to enumerate."""
    net = trained_like([n_in, *hidden, 1], seed)
    x = np.random.default_rng(seed + 100).random(n_in)
    return Network(net.weights, net.biases, np.clip(x - radius, 0, 1), np.clip(x + radius, 0, 1))


def milp_extremes(net, k, i):
    """Bounds on the (min, max) of pre-activation i of layer k over the box from HiGHS' MIP
    on the network cut after that unit (emlpress' big-M rows): ((dual bound, incumbent) of
    the min, (incumbent, dual bound) of the max). The incumbents are values the MILP
    attains, the dual bounds what it proves (HiGHS' word, for a cross-check only)."""
    sub = Network(list(net.weights[:k]) + [net.weights[k][i:i + 1]],
                  list(net.biases[:k]) + [net.biases[k][i:i + 1]])
    out = []
    for sense in ("min", "max"):
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        xs = [h.addVariable(lb=float(a), ub=float(b)) for a, b in zip(net.lo, net.hi)]
        y = milp.add_network(h, sub, xs).outputs[0]
        h.minimize(y) if sense == "min" else h.maximize(y)
        assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal, (k, i, sense)
        info = h.getInfo()
        pair = (info.mip_dual_bound, info.objective_function_value)
        out.append(pair if sense == "min" else pair[::-1])
    return out


@pytest.mark.parametrize("seed", [3])
def test_stable_sets_equal_a_per_neuron_milp(seed):
    """50 inputs, 24 and 12 hidden units (too many first-layer patterns to enumerate): every
    unit resolved, the statuses equal the first layer's corner extremes and HiGHS'
    per-neuron MILP on the second wherever its optimum is not within MILP_MARGIN of 0, the batched second-layer search proved units CROWN and the
    witnesses did not, and every witness and proof holds on forward passes."""
    net = local_net(seed)
    calls, search = [], phases.second_layer

    def second_layer(*a, **kw):
        calls.append(search(*a, **kw))
        return calls[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(phases, "second_layer", second_layer)
        st = bounds.stability(net, time_limit=60)
    assert st.split == "relu" and st.n_unresolved == 0, st.summary()
    assert calls and calls[0].sum() > 0, "the second-layer search proved nothing here"
    # the first layer is affine: its extremes at the corners its weights point to
    W0, b0 = net.weights[0], net.biases[0]
    z0max = np.where(W0 > 0, W0 * net.hi, W0 * net.lo).sum(1) + b0
    z0min = np.where(W0 > 0, W0 * net.lo, W0 * net.hi).sum(1) + b0
    # the second: HiGHS on every unit CROWN leaves open (the ones the search decides)
    c = bounds.crown(net)
    open1 = np.flatnonzero(~c.stably_active(1) & ~c.stably_inactive(1))
    extremes = [dict(enumerate(zip(zip(z0min, z0min), zip(z0max, z0max)))),
                {i: milp_extremes(net, 1, i) for i in open1}]
    for k, s in enumerate(st.status):
        for i, ((min_proven, min_seen), (max_seen, max_proven)) in extremes[k].items():
            if min_proven > MILP_MARGIN:
                ref = ACTIVE
            elif max_proven < -MILP_MARGIN:
                ref = INACTIVE
            elif min_seen < -MILP_MARGIN and max_seen > MILP_MARGIN:
                ref = UNSTABLE
            else:
                continue
            assert s[i] == ref, (k, i, s[i], extremes[k][i])
    # proofs against samples (stability's own check re-runs the witnesses; this is independent)
    Z = net.preactivations(sample_box(net.lo, net.hi, 20_000, seed, max_corners=512))
    for k, s in enumerate(st.status):
        assert (Z[k][:, s == ACTIVE] >= 0).all() and (Z[k][:, s == INACTIVE] <= 0).all()
        u = np.flatnonzero(s == UNSTABLE)
        zp = net.preactivations(st.positive[k][u])[k][np.arange(u.size), u]
        zn = net.preactivations(st.negative[k][u])[k][np.arange(u.size), u]
        assert (zp > 0).all() and (zn < 0).all()
        inside = lambda X: ((X >= net.lo) & (X <= net.hi)).all()  # noqa: E731
        assert inside(st.positive[k][u]) and inside(st.negative[k][u])


@pytest.mark.parametrize("seed", range(3))
def test_node_bounds_hold_on_samples_of_their_region(seed):
    """The batched closed-form node bound (linear ReLU bounds, multipliers on the fixed
    phases), for random phase fixes and random (alpha, beta) and after its own
    optimisation, never exceeds the least value a float64 forward pass takes at sampled
    inputs of the box that satisfy those phases, on every row of a batch at once."""
    net = local_net(seed, 40, (8, 8), 0.5)
    lo, hi = net.lo, net.hi
    c = bounds.crown(net)
    fs = bounds.forward_rounding(net, lo, hi, c.upper)[1]
    X = sample_box(lo, hi, 20_000, seed, max_corners=2048)
    Z0, Z1 = net.preactivations(X)[:2]
    rng = np.random.default_rng(seed)
    n1 = net.sizes[2]
    units = np.concatenate([np.arange(n1), np.arange(n1)])
    sgns = np.concatenate([np.ones(n1), -np.ones(n1)])
    P = phases._Sides(net, lo, hi, c.lower[0], c.upper[0], units, sgns, fs)
    n0 = P.W0.shape[0]
    side = np.repeat(np.arange(units.size), 10)
    pick = P.unst & (rng.random((side.size, n0)) < 0.4)
    fixA = pick & (rng.random((side.size, n0)) < 0.5)
    fixI = pick & ~fixA
    alpha = rng.random((side.size, n0))
    beta = rng.random((side.size, n0)) * 10.0 ** rng.integers(-1, 3, (side.size, 1))
    v = P.bound(side, fixA, fixI, alpha, beta)[0]
    w = P.optimise(side, fixA, fixI, alpha, beta, 20)[0]
    checked = 0
    for r in range(side.size):
        inside = (Z0[:, fixA[r]] >= 0).all(1) & (Z0[:, fixI[r]] <= 0).all(1)
        if not inside.any():
            continue
        least = float((sgns[side[r]] * Z1[inside, units[side[r]]]).min())
        assert v[r] <= least and w[r] <= least, (r, v[r], w[r], least)
        checked += 1
    assert checked > 40


def test_attacks_close_sides_only_with_checked_witnesses():
    """The batched attacks close open sides no sample closed, and every side they close has
    a witness of the other sign inside the box, reproduced by a forward pass."""
    net = local_net(0, 60, (16, 12), 0.3)
    lo, hi = net.lo, net.hi
    c = bounds.crown(net)
    seen = _Witnesses(net, box_points(lo, hi, 16, seed=0))  # few samples: sides stay open
    op = st_mod._Open(net, [np.array(a) for a in c.lower], [np.array(a) for a in c.upper], seen)
    need_hi, need_lo = op.need_hi.copy(), op.need_lo.copy()
    phases.attack_sides(net, lo, hi, op, np.inf)
    closed_hi, closed_lo = need_hi & ~op.need_hi, need_lo & ~op.need_lo
    assert closed_hi.sum() + closed_lo.sum() > 0
    for l in range(op.hidden):
        a, e = op.offsets[l], op.offsets[l + 1]
        for closed, X, sign in ((closed_hi, seen.xmax[l], 1.0), (closed_lo, seen.xmin[l], -1.0)):
            u = np.flatnonzero(closed[a:e])
            if not u.size:
                continue
            assert ((X[u] >= lo) & (X[u] <= hi)).all()
            z = net.preactivations(X[u])[l][np.arange(u.size), u]
            assert (sign * z > 0).all(), (l, u, z)


def test_time_limit_stops_the_second_layer_search():
    """A deadline already passed: the search returns at once proving nothing, and
    stability with limit 0 decides only units the full search decides the same way."""
    net = local_net(3)
    lo, hi = net.lo, net.hi
    c = bounds.crown(net)
    seen = _Witnesses(net, box_points(lo, hi, 64, seed=0))
    op = st_mod._Open(net, [np.array(a) for a in c.lower], [np.array(a) for a in c.upper], seen)
    assert op.n_open and not phases.second_layer(net, lo, hi, c.lower, c.upper, op, 0.0).any()
    st0, st = bounds.stability(net, time_limit=0), bounds.stability(net, time_limit=60)
    assert st0.n_unresolved > 0 and st.n_unresolved == 0
    for s0, s in zip(st0.status, st.status):
        np.testing.assert_array_equal(s0[s0 != UNRESOLVED], s[s0 != UNRESOLVED])
