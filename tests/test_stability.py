"""bounds.stability: exact stable sets, checked against enumerated activation patterns, and
every witness and every proof against independent forward passes."""

import functools
import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given

from emlpress import Network, bounds
from emlpress.bounds import Domain
from emlpress.bounds.stability import ACTIVE, INACTIVE, STATUSES, UNRESOLVED, UNSTABLE
from emlpress.compress import lossless
from emlpress.testing import exact_zero_units, trained_like
from reference import true_extremes
from strategies import network_and_box, numpy_preactivations, sample_box


def small_trained_like(seed, sizes):
    """Small enough to enumerate every activation pattern, shaped like a trained network:
    near-zero weights beside O(1) ones, a dead unit (pre-activation ~1e-11), per-layer
    scales and biases that leave some units stable and some barely so (trained_like's
    defaults)."""
    return trained_like(sizes, seed)


@functools.lru_cache(maxsize=None)
def case_reference(seed, sizes):
    """reference_status of small_trained_like(seed, sizes) on [-1, 1]^2, computed once."""
    net = small_trained_like(seed, list(sizes))
    return reference_status(net, -np.ones(2), np.ones(2), margin=1e-6)


def reference_status(net, lo, hi, margin):
    """Per hidden layer, the status by enumeration (true_extremes: every activation pattern
    of the earlier units, one LP per region), or -1 where an extreme lies within ``margin``
    of 0 (there the LP solver's tolerance, not the network, would decide)."""
    out = []
    for k in range(net.n_layers - 1):
        if k == 0:  # affine on the box: its extremes at corners
            W, b = net.weights[0], net.biases[0]
            tl = np.minimum(W * lo, W * hi).sum(1) + b
            tu = np.maximum(W * lo, W * hi).sum(1) + b
        else:
            tl, tu = true_extremes(net, lo, hi, k)
        s = np.full(tl.size, -1)
        s[tu < -margin] = INACTIVE
        s[tl > margin] = ACTIVE
        s[(tl < -margin) & (tu > margin)] = UNSTABLE
        out.append(s)
    return out


def assert_witnesses_and_proofs(st, net, X):
    """Every witness gives its sign by a numpy forward pass; no unit called stable takes the
    other sign at a sampled point or at any witness."""
    Z = numpy_preactivations(net, X)
    for l, s in enumerate(st.status):
        u = np.flatnonzero(s == UNSTABLE)
        if u.size:
            zp = numpy_preactivations(net, st.positive[l][u])[l][np.arange(u.size), u]
            zn = numpy_preactivations(net, st.negative[l][u])[l][np.arange(u.size), u]
            assert (zp > 0).all() and (zn < 0).all(), (l, u[(zp <= 0) | (zn >= 0)])
            for P in (st.positive[l][u], st.negative[l][u]):
                assert ((P >= st.lo) & (P <= st.hi)).all()  # witnesses lie in the box
        assert np.all(np.isnan(st.positive[l][s != UNSTABLE]))
        act, ina = s == ACTIVE, s == INACTIVE
        assert (Z[l][:, act] >= 0).all(), np.flatnonzero(act)[(Z[l][:, act] < 0).any(0)]
        assert (Z[l][:, ina] <= 0).all(), np.flatnonzero(ina)[(Z[l][:, ina] > 0).any(0)]


CASES = [(seed, sizes) for seed in range(4) for sizes in ([2, 8, 8, 1], [2, 4, 4, 3, 1])]


@pytest.mark.parametrize("split", ["input", "relu"])
@pytest.mark.parametrize("seed,sizes", CASES)
def test_stable_sets_equal_enumerated_activation_patterns(seed, sizes, split):
    """Started from interval bounds, so that the search (not CROWN) proves most units."""
    net = small_trained_like(seed, sizes)
    lo, hi = -np.ones(2), np.ones(2)
    st = bounds.stability(net, lo, hi, init=bounds.interval(net, lo, hi), split=split,
                          time_limit=60)
    ref = case_reference(seed, tuple(sizes))
    for l, (s, r) in enumerate(zip(st.status, ref)):
        decided = r >= 0
        np.testing.assert_array_equal(s[decided], r[decided], err_msg=f"layer {l}")
    # the dead units (|z| ~ 1e-11, within the margin) are still decided without a limit:
    # proven at a sign or shown unstable, never unresolved here
    assert st.n_unresolved == 0
    assert_witnesses_and_proofs(st, net, sample_box(lo, hi, 20_000, seed))
    # the proven bounds stay sound
    b = st.bounds
    for l, z in enumerate(numpy_preactivations(net, sample_box(lo, hi, 20_000, seed + 1))):
        assert (z >= b.lower[l]).all() and (z <= b.upper[l]).all()


def test_enumeration_reference_has_every_status():
    """The cases above exercise all three decided statuses, and the search proves units the
    starting interval bounds leave open (else the comparison would test them alone)."""
    seen, searched = set(), 0
    for seed, sizes in CASES:
        net = small_trained_like(seed, sizes)
        lo, hi = -np.ones(2), np.ones(2)
        for r in case_reference(seed, tuple(sizes)):
            seen |= set(r[r >= 0].tolist())
        st = bounds.stability(net, lo, hi, init=bounds.interval(net, lo, hi))
        searched += int(st.search["search_proved"].sum())
    assert seen == {ACTIVE, INACTIVE, UNSTABLE}
    assert searched > 0


@pytest.mark.parametrize("split", ["input", "relu"])
@given(case=network_and_box(max_depth=4, max_width=16, max_in=4))
def test_stability_is_sound_and_its_witnesses_reproduce(case, split):
    net, lo, hi, seed = case
    st = bounds.stability(net, lo, hi, time_limit=2, split=split)
    assert_witnesses_and_proofs(st, net, sample_box(lo, hi, 5_000, seed))
    for l, z in enumerate(numpy_preactivations(net, sample_box(lo, hi, 2_000, seed + 1))):
        assert (z >= st.bounds.lower[l]).all() and (z <= st.bounds.upper[l]).all()
    # never less than the starting bounds prove
    c = bounds.crown(net, lo, hi)
    for l in range(net.n_layers - 1):  # (a unit proven both ways, z == 0, is inactive)
        assert (st.stably_inactive(l) | ~c.stably_inactive(l)).all()
        assert (st.stably_active(l) | ~(c.stably_active(l) & ~c.stably_inactive(l))).all()


def test_time_limit_zero_returns_samples_and_start_only():
    net = small_trained_like(1, [2, 16, 16, 8, 1])
    lo, hi = -np.ones(2), np.ones(2)
    c = bounds.crown(net, lo, hi)
    st0 = bounds.stability(net, lo, hi, init=c, time_limit=0)
    full = bounds.stability(net, lo, hi, init=c)
    assert full.n_unresolved == 0
    assert st0.n_unresolved > 0  # the search had something to do
    for l in range(net.n_layers - 1):
        start = c.stably_active(l) | c.stably_inactive(l)
        s0 = st0.status[l]
        assert ((s0 == INACTIVE) == c.stably_inactive(l)).all()
        assert ((s0 == ACTIVE) == (c.stably_active(l) & ~c.stably_inactive(l))).all()
        # the rest: unstable where the samples show both signs, else unresolved, never a guess
        assert np.isin(s0[~start], [UNSTABLE, UNRESOLVED]).all()
        # what the full search proves stable, the limited run leaves unresolved
        assert (s0[(full.status[l] <= INACTIVE) & ~start] == UNRESOLVED).all()
    assert_witnesses_and_proofs(st0, net, sample_box(lo, hi, 5_000, 0))


def test_stability_feeds_lossless_and_tighten():
    net = small_trained_like(2, [2, 24, 24, 12, 1])
    lo, hi = -np.ones(2), np.ones(2)
    st = bounds.stability(net, lo, hi)
    small, rep = lossless(net, lo, hi, bounds=st)
    _, rep_crown = lossless(net, lo, hi, bounds="crown")
    assert rep.params_after <= rep_crown.params_after
    removed = int(rep.layers["removed_inactive"].sum())
    assert removed == sum(int(st.stably_inactive(l).sum()) for l in range(net.n_layers - 1)) \
        - int(rep.layers["removed_zero_weight"].sum())
    X = sample_box(lo, hi, 20_000, 3)
    np.testing.assert_allclose(small.forward(X), net.forward(X), rtol=0,
                               atol=1e-9 * np.abs(net.forward(X)).max())
    b = bounds.tighten(net, lo, hi, method="stability")
    assert b.method == "stability"
    assert b.n_stable == st.n_stable
    _, rep2 = lossless(net, lo, hi, bounds="stability")
    assert rep2.params_after == rep.params_after


@pytest.mark.parametrize("call,match", [
    (lambda net: bounds.stability(net, split="box"), "unknown split 'box'"),
    (lambda net: bounds.stability(net, time_limit=-1), "time_limit must be >= 0"),
    (lambda net: bounds.stability(net, time_limit="1"), "time_limit must be a number"),
    (lambda net: bounds.stability(net, n_samples=0), "n_samples must be a positive integer"),
    (lambda net: bounds.stability(net, init=bounds.crown(small_trained_like(9, [2, 5, 4, 1]),
                                                                 -np.ones(2), np.ones(2))),
     "do not hold for this network"),
])
def test_bad_input(call, match):
    net = small_trained_like(0, [2, 5, 4, 1])
    net = Network(net.weights, net.biases, -np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match=match):
        call(net)


def test_the_search_finds_witnesses_that_no_sample_hits():
    """w = relu(z1) - relu(z2), z1 and z2 bumps of width 2e-6 at c1 and c2 that no sample
    hits: w is 0 at every sample, and CROWN cannot prove its sign. The box search refines
    around the bumps (where z1, z2 are not proven inactive) and must find both signs of w,
    z1 and z2 there, each witness reproducing."""
    c1, c2, eps = 0.3001, -0.4003, 1e-6
    W0 = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    b0 = np.array([-c1, c1, -c2, c2])
    W1 = np.array([[-1.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, -1.0]])
    b1 = np.array([eps, eps])
    net = Network([W0, W1, np.array([[1.0, -1.0]]), np.array([[1.0]])],
                  [b0, b1, np.zeros(1), np.zeros(1)])
    lo, hi = -np.ones(1), np.ones(1)
    X = sample_box(lo, hi, 4096, 0)
    assert (numpy_preactivations(net, X)[2] == 0).all()  # no sample sees the bumps
    c = bounds.crown(net, lo, hi)
    assert c.lower[2][0] < 0 < c.upper[2][0]
    st = bounds.stability(net, lo, hi)
    assert st.status[1].tolist() == [UNSTABLE, UNSTABLE], st.summary()
    assert st.status[2][0] == UNSTABLE, STATUSES[st.status[2][0]]
    assert abs(st.positive[2][0, 0] - c1) < eps and abs(st.negative[2][0, 0] - c2) < eps
    assert_witnesses_and_proofs(st, net, np.vstack([X, [[c1], [c2]]]))


def test_open_sides_only_close_once_the_search_has_begun():
    """A unit at exactly 0 on every witness is searched for z <= 0; a positive witness found
    during the search must not open z >= 0 (the boxes dropped as leaves so far were never
    checked for it): it then has no open side and ends unresolved, not proven active."""
    from emlpress.bounds.stability import _Open
    from emlpress.bounds.witnesses import _Witnesses

    net = Network([np.array([[1.0], [-1.0]]), np.array([[1.0, 1.0]])], [np.zeros(2), np.zeros(1)])
    seen = _Witnesses(net, np.zeros((1, 1)))  # one witness: every pre-activation 0
    lower = [np.array([-1.0, -1.0]), np.array([-1.0])]
    upper = [np.array([1.0, 1.0]), np.array([1.0])]
    op = _Open(net, lower, upper, seen)
    assert op.need_hi.tolist() == [True, True] and op.need_lo.tolist() == [False, False]
    op.frozen = True
    seen.add(np.array([[0.5]]))  # unit 0 positive, unit 1 negative
    op.update()
    assert op.need_hi.tolist() == [False, True]
    assert op.need_lo.tolist() == [False, False]  # before the search it would be [True, False]
    op.frozen = False
    op.update()
    assert op.need_lo.tolist() == [True, False]


def minimal_exact_zero():
    """Issue 33's minimal case: layer 1 is -relu(x0), exactly 0 on half of [-1, 1]^2."""
    return Network([np.array([[1.0, 0.0]]), np.array([[-1.0]]), np.array([[1.0]])],
                   [np.zeros(1), np.zeros(1), np.zeros(1)], -np.ones(2), np.ones(2))


def test_minimal_exact_zero_unit_is_stably_inactive_at_once(tmp_path, capsys):
    """Every term of layer 1 is <= 0 (a non-positive weight on a ReLU output, bias 0): its
    upper bound is 0 without rounding slack in every method, so every entry point calls it
    inactive at once (before: +8.9e-16, and the box search split forever)."""
    from emlpress.cli import main

    net = minimal_exact_zero()
    for method in ("interval", "crown", "lp", "milp", "progressive"):
        b = bounds.tighten(net, method=method)
        assert b.upper[1][0] == 0.0 and b.stably_inactive(1)[0], (method, b.upper[1])
        assert b.lower[2][0] == 0.0 == b.upper[2][0], (method, b.lower[2], b.upper[2])
    st = bounds.stability(net, time_limit=10)
    assert st.status[0].tolist() == [UNSTABLE] and st.status[1].tolist() == [INACTIVE]
    assert st.boxes.get("boxes", 0) == 0  # decided by the starting bounds, no box split
    assert bounds.tighten(net, method="stability").stably_inactive(1)[0]
    small, rep = lossless(net, bounds="stability")
    assert int(rep.layers["removed_inactive"].sum()) >= 1
    X = sample_box(net.lo, net.hi, 2_000, 0)
    assert (small.forward(X) == 0).all() and (net.forward(X) == 0).all()
    path = tmp_path / "minimal.npz"
    net.save(path)
    assert main(["bounds", str(path), "--method", "stability"]) == 0
    out = capsys.readouterr().out
    assert "unresolved" in out and "stable hidden units: 1 of 2" in out, out


@given(case=network_and_box(max_depth=3, max_width=12, max_in=3))
def test_sign_exact_units_are_exact_in_every_bound(case):
    """A unit whose every term is <= 0 (>= 0) on the box, bias included, is bounded by 0
    on that side with no slack by interval and CROWN: computed here independently from the
    signs of the weights and of the previous layer's bounds."""
    net, lo, hi, _ = case
    for b in (bounds.interval(net, lo, hi), bounds.crown(net, lo, hi)):
        l_prev, u_prev = lo, hi
        for k, (W, bias) in enumerate(zip(net.weights, net.biases)):
            can_pos = ((W > 0) & (u_prev > 0)) | ((W < 0) & (l_prev < 0))
            can_neg = ((W > 0) & (l_prev < 0)) | ((W < 0) & (u_prev > 0))
            never_pos = ~can_pos.any(1) & (bias <= 0)
            never_neg = ~can_neg.any(1) & (bias >= 0)
            assert (b.upper[k][never_pos] <= 0).all(), (b.method, k)
            assert (b.lower[k][never_neg] >= 0).all(), (b.method, k)
            l_prev, u_prev = np.maximum(b.lower[k], 0), np.maximum(b.upper[k], 0)


def high_dim_trained_like(seed, n_in, hidden, radius=0.1, scale=1.0):
    """A network with many inputs and two small hidden layers, trained-looking (near-zero
    weights beside O(1) ones, scaled rows, times ``scale``), on a local box of ``radius``
    around a point of [0, 1]^n_in, intersected with it: few enough first-layer units to
    enumerate."""
    net = small_trained_like(seed, [n_in, *hidden, 1])
    rng = np.random.default_rng(seed + 100)
    x = rng.random(n_in)
    lo, hi = np.clip(x - radius, 0, 1), np.clip(x + radius, 0, 1)
    return Network([W * scale for W in net.weights], net.biases, lo, hi)


# (found by a scan of seeds: cases where the search, not CROWN or a witness, decides units)
@pytest.mark.parametrize("seed,radius", [(5, 0.2), (0, 0.5)])
def test_stable_sets_in_high_dimension_equal_enumeration(seed, radius):
    """40 inputs, where box splitting cannot help: the first layer in closed form (its
    corners), the second by the phase search; equal to the enumeration of every activation
    pattern of the first layer (one LP per region, scipy), and time_limit=0 already decides
    the whole first layer (samples plus its corners)."""
    net = high_dim_trained_like(seed, 40, (8, 8), radius)
    lo, hi = net.lo, net.hi
    ref = reference_status(net, lo, hi, margin=1e-6)
    st = bounds.stability(net, time_limit=60)
    assert st.split == "relu" and st.n_unresolved == 0, st.summary()
    for l, (s, r) in enumerate(zip(st.status, ref)):
        decided = r >= 0
        np.testing.assert_array_equal(s[decided], r[decided], err_msg=f"layer {l}")
    statuses = set(np.concatenate(st.status).tolist())
    assert {UNSTABLE} < statuses and statuses & {ACTIVE, INACTIVE}, statuses
    assert st.search["search_proved"].sum() > 0  # the search decided units, not CROWN alone
    assert_witnesses_and_proofs(st, net, sample_box(lo, hi, 5_000, seed, max_corners=256))
    st0 = bounds.stability(net, time_limit=0)
    assert (st0.status[0] != UNRESOLVED).all()
    np.testing.assert_array_equal(st0.status[0], st.status[0])


def stability_lp_cases():
    nets = [minimal_exact_zero()]
    for seed in range(3):
        net = small_trained_like(seed, [2, 12, 10, 6, 1])
        W, b = [np.array(a) for a in net.weights], [np.array(a) for a in net.biases]
        for k in range(1, 3):  # exact-zero units (bias 0, weights <= 0 or 1e-30) as L1 leaves
            exact_zero_units(np.random.default_rng(seed + k), W[k], b[k], 0.4)
        nets.append(Network(W, b, -np.ones(2), np.ones(2)))
    nets.append(high_dim_trained_like(5, 40, (8, 8), 0.2))
    return nets


@pytest.mark.parametrize("case", range(5))
def test_stability_proves_at_least_what_lp_proves_from_the_same_start(case):
    """From the same starting bounds (CROWN), every unit lp proves stable, stability proves
    so too, on the same side (the LP step after the search sees to it where the search
    stops short, e.g. within the rounding slack of 0)."""
    net = stability_lp_cases()[case]
    c = bounds.crown(net)
    b = bounds.lp(net, init=c)
    for split in ("input", "relu") if net.n_in <= 2 else ("relu",):
        st = bounds.stability(net, init=c, time_limit=60, split=split)
        for l in range(net.n_layers - 1):
            ina = b.stably_inactive(l)
            act = b.stably_active(l) & ~ina
            assert st.stably_inactive(l)[ina].all(), (split, l, np.flatnonzero(ina & ~st.stably_inactive(l)))
            assert (st.stably_active(l) | st.stably_inactive(l))[act].all(), (split, l)
        assert_witnesses_and_proofs(st, net, sample_box(net.lo, net.hi, 5_000, case, max_corners=256))


def test_default_time_limit_is_documented_and_applied(monkeypatch):
    """stability, tighten(method="stability") and lossless(bounds="stability") stop at
    stability.TIME_LIMIT unless told otherwise: with the constant at 0 they return at once
    with what the samples and the start prove."""
    import importlib
    import inspect

    st_mod = importlib.import_module("emlpress.bounds.stability")
    assert inspect.signature(bounds.stability).parameters["time_limit"].default == st_mod.TIME_LIMIT
    assert "TIME_LIMIT" in st_mod.__doc__
    net = small_trained_like(1, [2, 16, 16, 8, 1])
    net = Network(net.weights, net.biases, -np.ones(2), np.ones(2))
    st0 = bounds.stability(net, time_limit=0)
    monkeypatch.setattr(st_mod, "TIME_LIMIT", 0.0)
    b = bounds.tighten(net, method="stability")
    assert [a.tolist() for a in b.upper] == [a.tolist() for a in st0.bounds.upper]
    assert st0.n_unresolved > 0


# --- polytope domains ---------------------------------------------------------------------

def _l1_facets(center, eps):
    """The l1 ball ||x - center||_1 <= eps as its 2^n facets s.(x - center) <= eps: rows for
    the enumeration (an independent encoding of the ball, not emlpress' t columns)."""
    S = np.array(list(itertools.product([-1.0, 1.0], repeat=len(center))))
    return S, eps + S @ np.asarray(center)


#: (seed, sizes, constraints on [-1, 1]^2) where the search proves units the start leaves
#: open and the polytope has more stable units than its tightened box (a scan of seeds)
POLY_CASES = [
    (0, (2, 6, 6, 1), dict(A_ub=[[1.0, -1.0], [-1.0, -1.0]], b_ub=[0.8, 0.9])),
    (1, (2, 6, 6, 1), dict(l1=([0.0, 0.0], 1.2))),
    (5, (2, 6, 6, 1), dict(A_ub=[[0.5, 1.0]], b_ub=[0.6], l1=([0.1, 0.0], 1.4))),
]


def _rows(kw):
    A = [np.atleast_2d(kw["A_ub"])] if "A_ub" in kw else []
    b = [np.asarray(kw["b_ub"], float)] if "b_ub" in kw else []
    if "l1" in kw:
        F, f = _l1_facets(*kw["l1"])
        A, b = A + [F], b + [f]
    return np.vstack(A), np.concatenate(b)


@functools.lru_cache(maxsize=None)
def poly_reference(case):
    """Per hidden layer of POLY_CASES[case], the status by enumeration with the polytope's
    rows (-1 within 1e-6 of 0), computed once."""
    seed, sizes, kw = POLY_CASES[case]
    net = small_trained_like(seed, list(sizes))
    out = []
    for l in range(net.n_layers - 1):
        tl, tu = true_extremes(net, -np.ones(2), np.ones(2), l, _rows(kw))
        r = np.full(tl.size, -1)
        r[tu < -1e-6], r[tl > 1e-6] = INACTIVE, ACTIVE
        r[(tl < -1e-6) & (tu > 1e-6)] = UNSTABLE
        out.append(r)
    return out


def assert_inside_the_domain(st, d):
    """Every witness of an unstable unit lies in the domain exactly (Domain.holds), and
    within its rows by an independent float64 check with no tolerance."""
    for l, s in enumerate(st.status):
        u = np.flatnonzero(s == UNSTABLE)
        for P in (st.positive[l][u], st.negative[l][u]):
            assert d.holds(P).all()
            assert d.contains(P, tol=0.0).all()


@pytest.mark.parametrize("split", ["input", "relu"])
@pytest.mark.parametrize("seed,sizes,kw", POLY_CASES)
def test_stable_sets_on_a_polytope_equal_enumeration(seed, sizes, kw, split):
    """On a polytope, the statuses equal the enumeration of every activation pattern with
    the polytope's rows (scipy, one LP per region; the l1 ball by its facets); the
    witnesses lie in the polytope; the bounds hold on its samples; units the box alone
    leaves unstable are proven stable by the rows."""
    net = small_trained_like(seed, list(sizes))
    lo, hi = -np.ones(2), np.ones(2)
    d = Domain(lo, hi, **kw)
    st = bounds.stability(net, domain=d, init=bounds.interval(net, domain=d), split=split,
                          time_limit=60)
    assert st.domain is d and st.bounds.domain is d
    for l, (s, r) in enumerate(zip(st.status, poly_reference(POLY_CASES.index((seed, sizes, kw))))):
        np.testing.assert_array_equal(s[r >= 0], r[r >= 0], err_msg=f"layer {l}")
    assert st.n_unresolved == 0, st.summary()
    assert_inside_the_domain(st, d)
    X = d.sample(5_000, seed=seed)
    assert_witnesses_and_proofs(st, net, X)
    for l, z in enumerate(numpy_preactivations(net, X)):
        assert (z >= st.bounds.lower[l]).all() and (z <= st.bounds.upper[l]).all()
    assert st.search["search_proved"].sum() > 0  # the search decided units, not the start
    # the rows decide units that no box around the polytope does
    assert st.n_stable > bounds.stability(net, d.box_lo, d.box_hi, split=split, time_limit=60).n_stable


@pytest.mark.parametrize("case", [3, 4])
def test_stability_on_a_polytope_proves_at_least_what_lp_proves(case):
    """From the same start (CROWN on the polytope), every unit lp proves stable on the
    polytope, stability proves so too, on the same side (case 3: lp proves units CROWN
    does not; case 4: 40 inputs, the phase search)."""
    net = stability_lp_cases()[case]
    n = net.n_in
    rng = np.random.default_rng(case)
    x0 = net.lo + (net.hi - net.lo) * rng.random(n)
    A = rng.normal(size=(2, n))
    d = Domain(net.lo, net.hi, A_ub=A, b_ub=A @ x0 + 0.1 * np.abs(A).sum(1),
               l1=(x0, 0.4 * float(np.sum(net.hi - net.lo))))
    c = bounds.crown(net, domain=d)
    b = bounds.lp(net, domain=d, init=c)
    for split in ("input", "relu") if n <= 2 else ("relu",):
        st = bounds.stability(net, domain=d, init=c, time_limit=60, split=split)
        for l in range(net.n_layers - 1):
            ina = b.stably_inactive(l)
            act = b.stably_active(l) & ~ina
            assert st.stably_inactive(l)[ina].all(), (split, l)
            assert (st.stably_active(l) | st.stably_inactive(l))[act].all(), (split, l)
        assert_inside_the_domain(st, d)
        assert_witnesses_and_proofs(st, net, d.sample(3_000, seed=case))


def test_limit_zero_on_a_polytope_returns_samples_and_start_only():
    """time_limit=0 on a polytope: stable exactly where the starting bounds say, unstable
    only where two samples of the polytope show both signs, the rest unresolved."""
    net = small_trained_like(1, [2, 16, 16, 8, 1])
    d = Domain(-np.ones(2), np.ones(2), A_ub=[[1.0, -1.0]], b_ub=[0.5], l1=([0.2, 0.0], 1.0))
    c = bounds.crown(net, domain=d)
    st0 = bounds.stability(net, domain=d, init=c, time_limit=0, n_samples=512)
    full = bounds.stability(net, domain=d, init=c, time_limit=60)
    assert full.n_unresolved == 0 and st0.n_unresolved > 0
    # the samples it started from, independently: the domain's point and 512 samples, and
    # box points pulled in (so only a superset is known: its witnesses lie in the domain)
    for l in range(net.n_layers - 1):
        start = c.stably_inactive(l) | c.stably_active(l)
        s0 = st0.status[l]
        assert ((s0 == INACTIVE) == c.stably_inactive(l)).all()
        assert ((s0 == ACTIVE) == (c.stably_active(l) & ~c.stably_inactive(l))).all()
        assert np.isin(s0[~start], [UNSTABLE, UNRESOLVED]).all()
        assert (s0[(full.status[l] <= INACTIVE) & ~start] == UNRESOLVED).all()
        assert (s0[s0 == UNSTABLE] == full.status[l][s0 == UNSTABLE]).all()
    assert_inside_the_domain(st0, d)


def test_equality_rows_witnesses_hold_exactly_or_units_stay_unresolved():
    """With an equality row few float64 points lie in the domain: a unit is called unstable
    only on two points that satisfy x0 + x1 = 0.5 exactly (rational arithmetic), and every
    unit proven stable holds on samples of the line."""
    net = small_trained_like(0, [2, 8, 8, 1])
    d = Domain(-np.ones(2), np.ones(2), A_eq=[[1.0, 1.0]], b_eq=[0.5])
    for split in ("input", "relu"):
        st = bounds.stability(net, domain=d, time_limit=10, split=split)
        assert_inside_the_domain(st, d)
        for l, s in enumerate(st.status):
            u = np.flatnonzero(s == UNSTABLE)
            for P in (st.positive[l][u], st.negative[l][u]):
                assert all(Fraction(p[0]) + Fraction(p[1]) == Fraction(0.5) for p in P)
        t = np.linspace(-0.5, 1.0, 3001)  # x0 = t, x1 = 0.5 - t: on the line within rounding
        X = np.column_stack([t, 0.5 - t])
        for l, z in enumerate(numpy_preactivations(net, X)[:-1]):
            s = st.status[l]
            assert (z[:, s == ACTIVE] >= -1e-12).all() and (z[:, s == INACTIVE] <= 1e-12).all()
        assert (np.concatenate(st.status) != UNRESOLVED).sum() > 0
