import numpy as np
import pytest
from hypothesis import given

from emlpress import Network, bounds
from strategies import assert_inside, interval_numpy, network_and_box, sample_box


@given(network_and_box(max_depth=4, max_width=32))
def test_crown_on_sub_boxes_clipped_by_the_box_bounds_is_sound(case):
    """kernels.crown_boxes (CROWN per box, boxes over threads, every layer intersected with
    bounds of the whole box) on random sub-boxes: each box's bounds hold at its samples, are
    never looser than the clip, and equal those of crown one box at a time up to the
    rounding of a different GEMM blocking."""
    from emlpress import kernels

    net, lo, hi, seed = case
    whole = bounds.crown(net, lo, hi)
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(lo, hi, (2, 6, lo.size))
    LO, HI = np.minimum(a, b), np.maximum(a, b)
    LO[0], HI[0] = lo, hi
    A, B = kernels.crown_boxes(net._core, LO, HI, (list(whole.lower), list(whole.upper)))
    cols = np.cumsum([0] + net.sizes[1:])
    for r in range(len(LO)):
        lower = tuple(A[r, cols[l]:cols[l + 1]] for l in range(net.n_layers))
        upper = tuple(B[r, cols[l]:cols[l + 1]] for l in range(net.n_layers))
        box = bounds.Bounds(lower, upper, LO[r], HI[r], "crown_boxes")
        assert_inside(box, net, sample_box(LO[r], HI[r], 300, seed + r))
        for l in range(net.n_layers):
            assert (lower[l] >= whole.lower[l]).all() and (upper[l] <= whole.upper[l]).all()
    # the same clip given per box (the search passes each box its parent's bounds)
    rows = (np.tile(np.concatenate(whole.lower), (len(LO), 1)),
            np.tile(np.concatenate(whole.upper), (len(LO), 1)))
    A2, B2 = kernels.crown_boxes(net._core, LO, HI, None, rows)
    np.testing.assert_array_equal(A2, A)
    np.testing.assert_array_equal(B2, B)
    A1, B1 = kernels.crown_boxes(net._core, LO[:1], HI[:1])
    np.testing.assert_allclose(A1[0], np.concatenate(whole.lower), rtol=1e-9, atol=0)
    np.testing.assert_allclose(B1[0], np.concatenate(whole.upper), rtol=1e-9, atol=0)


def test_crown_boxes_rejects_mismatched_shapes():
    from emlpress import kernels

    net = Network([np.ones((2, 3)), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    with pytest.raises(ValueError, match=r"LO and HI must both have shape \(B, n_in\)"):
        kernels.crown_boxes(net._core, np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="clip bounds of layer 1 do not match its width"):
        kernels.crown_boxes(net._core, np.zeros((1, 3)), np.ones((1, 3)),
                          ([np.zeros(2), np.zeros(3)], [np.ones(2), np.ones(3)]))
    with pytest.raises(ValueError, match="box_clip must hold two"):
        kernels.crown_boxes(net._core, np.zeros((2, 3)), np.ones((2, 3)), None,
                          (np.zeros((2, 3)), np.ones((1, 3))))


@pytest.mark.parametrize("method", ["crown", "lp"])
def test_bounds_hold_where_a_layer_cancels(method):
    """A hidden layer whose outputs cancel (|W a| ~ 1e-8 |W| |a|): the back-substituted
    bounds compose W2 W1 W0 in another order than the forward pass, so both carry rounding
    errors of the composed magnitude |W2| |W1| |W0| |x|, not of the cancelled |W2| |a1|
    (hypothesis found CROWN 8 ulps inside the forward pass on zero-bias networks at
    degenerate boxes). At each of 200 degenerate boxes every bound must hold."""
    net = Network([np.array([[3e7], [3e7 + 0.3]]), np.array([[-1.1, 1.1]]), np.array([[1.3], [-0.7]])],
                  [np.zeros(2), np.zeros(1), np.zeros(2)])
    for x in np.linspace(0.05, 0.15, 200):
        box = np.array([x])
        assert_inside(getattr(bounds, method)(net, box, box), net, box[None, :])


@pytest.mark.parametrize("seed", range(20))
def test_crown_is_exact_where_the_network_is_affine(seed):
    """Biases large enough that every hidden unit is active on the box, weights of mixed
    signs: the network is affine there, so the output's extremes are at corners; CROWN's
    backward pass must reach them (up to its rounding slack), where interval arithmetic
    stays loose. (That CROWN is never looser than interval holds by construction: the C++
    kernel intersects the two, so it is not what is tested.)"""
    rng = np.random.default_rng(seed)
    sizes = [3, 6, 5, 2]
    Ws = [rng.normal(size=(o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [np.abs(Ws[0]).sum(1) + 1.0]
    for W in Ws[1:-1]:
        bs.append(np.abs(W).sum(1) * 10.0 + 1.0)
    bs.append(rng.normal(size=sizes[-1]))
    net = Network(Ws, bs, -np.ones(3), np.ones(3))
    corners = sample_box(net.lo, net.hi, 0, seed)
    out = net.forward(corners)
    bc, bi = bounds.crown(net), bounds.interval(net)
    assert all(bool(bc.stably_active(l).all()) for l in range(net.n_layers - 1))
    scale = 1.0 + np.abs(out).max()
    np.testing.assert_allclose(bc.lower[-1], out.min(0), atol=1e-12 * scale, rtol=0)
    np.testing.assert_allclose(bc.upper[-1], out.max(0), atol=1e-12 * scale, rtol=0)
    assert np.all(bi.upper[-1] - bi.lower[-1] > 1.01 * (bc.upper[-1] - bc.lower[-1]))


@given(network_and_box())
def test_interval_equals_numpy(case):
    """Layer by layer, from the same input box, emlpress' interval bounds equal textbook
    interval arithmetic up to the documented outward rounding slack, and contain it."""
    net, lo, hi, _ = case
    b = bounds.interval(net, lo, hi)
    l_in, u_in = lo, hi
    eps = np.finfo(float).eps
    for l, (W, bias) in enumerate(zip(net.weights, net.biases)):
        (zl,), (zu,) = interval_numpy(Network([W], [bias]), l_in, u_in)
        # the documented slack: 2 (n + 3) u (||W_i||_1 max_j |x_j| + |b_i|), u = eps / 2
        mag = np.abs(W).sum(1) * np.max(np.maximum(np.abs(l_in), np.abs(u_in))) + np.abs(bias)
        tol = 4 * (W.shape[1] + 3) * eps * mag
        assert np.all(np.abs(b.lower[l] - zl) <= tol), f"layer {l}"
        assert np.all(np.abs(b.upper[l] - zu) <= tol), f"layer {l}"
        l_in, u_in = np.maximum(b.lower[l], 0), np.maximum(b.upper[l], 0)


def test_first_layer_interval_is_exact_on_a_hand_example():
    net = Network([np.array([[1.0, -2.0], [0.0, 0.0]]), np.array([[1.0, 1.0]])], [np.array([0.5, -1.0]), np.zeros(1)])
    b = bounds.interval(net, [0, 0], [1, 1])
    np.testing.assert_allclose(b.lower[0], [-1.5, -1.0])
    np.testing.assert_allclose(b.upper[0], [1.5, -1.0])
    assert b.stably_inactive(0).tolist() == [False, True]
    assert b.stably_active(0).tolist() == [False, False]
    np.testing.assert_allclose(b.upper[1], [1.5])


def test_crown_tighter_than_interval_where_it_should_be():
    # y = relu(x) - relu(x + 2) + 2 = relu(x) - x on x in [-1, 1], true range [0, 1].
    # Interval arithmetic loses the correlation: [-1, 2]. CROWN keeps it and is exact here:
    # upper line 0.5 x + 0.5 minus the exact active unit gives -0.5 x + 0.5 <= 1; the
    # adaptive lower slope 1 gives x - x = 0.
    net = Network([np.array([[1.0], [1.0]]), np.array([[1.0, -1.0]])], [np.array([0.0, 2.0]), np.array([2.0])])
    bi, bc = bounds.interval(net, [-1], [1]), bounds.crown(net, [-1], [1])
    assert bi.lower[1][0] == pytest.approx(-1.0) and bi.upper[1][0] == pytest.approx(2.0)
    assert bc.lower[1][0] == pytest.approx(0.0, abs=1e-12)
    assert bc.upper[1][0] == pytest.approx(1.0)


def test_study_network_stability_counts(shared_data):
    """The study network's stable neurons per method, as published beside it (seed_gp/README):
    interval 1014; CROWN with adaptive slope 1212 (ours may settle a few more through its
    extra interval step, never fewer), and never tighter than the reference LP bounds."""
    net = Network.load(shared_data / "seed_gp" / "model.npz")
    bi, bc = bounds.interval(net), bounds.crown(net)
    assert [int(bi.stably_inactive(l).sum()) for l in range(4)] == [417, 73, 0, 0]
    assert [int(bi.stably_active(l).sum()) for l in range(4)] == [477, 47, 0, 0]
    assert bi.n_stable == 1014
    assert 1212 <= bc.n_stable <= 1371
    ref = np.load(shared_data / "seed_gp" / "lp_bounds.npz")
    for l in range(net.n_layers):
        assert np.all(bc.lower[l] <= ref[f"L{l}"] + 1e-9 * (1 + np.abs(ref[f"L{l}"])))
        assert np.all(bc.upper[l] >= ref[f"U{l}"] - 1e-9 * (1 + np.abs(ref[f"U{l}"])))


@pytest.mark.parametrize("method", [bounds.interval, bounds.crown])
def test_bad_boxes(method):
    net = Network([np.ones((2, 3)), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    with pytest.raises(ValueError, match=r"lo\[2\] = 1.0 > hi\[2\] = 0.0"):
        method(net, [0, 0, 1], [1, 1, 0])
    with pytest.raises(ValueError, match=r"lo has shape \(2,\), expected \(3,\)"):
        method(net, [0, 0], [1, 1])
    with pytest.raises(ValueError, match=r"hi\[1\] = nan"):
        method(net, [0, 0, 0], [1, np.nan, 1])
    with pytest.raises(ValueError, match="no input box"):
        method(net)


def test_float32_box_and_domain_default():
    net = Network([np.ones((2, 3)), np.ones((1, 2))], [np.zeros(2), np.zeros(1)], lo=[0, 0, 0], hi=[1, 1, 1])
    b32 = bounds.crown(net, np.zeros(3, np.float32), np.ones(3, np.float32))
    bd = bounds.crown(net)
    for l in range(2):
        np.testing.assert_array_equal(b32.lower[l], bd.lower[l])
        np.testing.assert_array_equal(b32.upper[l], bd.upper[l])


def test_summary_table():
    rng = np.random.default_rng(3)
    net = Network([rng.normal(size=(8, 2)), rng.normal(size=(5, 8)), rng.normal(size=(1, 5))], [rng.normal(size=8), rng.normal(size=5), rng.normal(size=1)])
    b = bounds.crown(net, [-1, -1], [1, 1])
    s = b.summary()
    # the index is the one the API takes: s.loc[l] describes b.lower[l], b.stably_active(l)
    assert list(s.index) == [0, 1, 2] and list(s["role"]) == ["hidden", "hidden", "output"]
    assert list(s["units"]) == [8, 5, 1]
    for l in (0, 1):
        row = s.loc[l]
        assert row.stably_active == b.stably_active(l).sum()
        assert row.stably_inactive == b.stably_inactive(l).sum()
        assert row.stably_active + row.stably_inactive + row.unstable == row.units


@pytest.mark.parametrize("method", ["interval", "crown", "lp"])
def test_bounds_hold_at_subnormal_values(method):
    """Results below 2^-1022 round absolutely (up to half of 2^-1074 per operation), which
    a relative slack does not cover: interval and CROWN excluded half of the sampled values
    of this box (found by review, session 11). Bounds of exactly 0 from all-zero terms stay 0."""
    n, c, x = 10, 1.5e-160, 8.909650000000002e-162
    net = Network([np.full((n, 1), c), -np.ones((1, n))], [np.zeros(n), np.zeros(1)])
    for lo, hi in ((np.array([x]), np.array([x])), (np.array([x * 0.999]), np.array([x * 1.001]))):
        assert_inside(getattr(bounds, method)(net, lo, hi), net, np.linspace(lo, hi, 10001))
    dead = Network([np.zeros((3, 2)), np.ones((1, 3))], [np.zeros(3), np.zeros(1)])
    b = getattr(bounds, method)(dead, -np.ones(2), np.ones(2))
    assert b.stably_inactive(0).all() and b.upper[-1][0] == 0.0


def test_bounds_on_points_hold_there_and_refuse_a_box():
    from emlpress import bounds as B
    from emlpress.compress import lossless

    rng = np.random.default_rng(7)
    net = Network([rng.normal(size=(6, 3)), rng.normal(size=(2, 6))], [rng.normal(size=6), np.zeros(2)])
    X = rng.uniform(-1, 1, size=(50, 3))
    b = B.on_points(net, X)
    for z, a, u in zip(net.preactivations(X), b.lower, b.upper):
        assert (z >= a).all() and (z <= u).all()
        # tight: each bound is within the margin of a value the network takes
        np.testing.assert_allclose(a, z.min(0), rtol=0, atol=1e-6)
        np.testing.assert_allclose(u, z.max(0), rtol=0, atol=1e-6)
    b.check(net)  # at the points
    lo, hi = X.min(0), X.max(0)
    with pytest.raises(ValueError, match="hold only on the 50 points or boxes"):
        B.lp(net, lo, hi, init=b)
    with pytest.raises(ValueError, match="hold only on the 50 points or boxes"):
        lossless(net, lo, hi, bounds=b)
    with pytest.raises(ValueError, match="X row 1 is not finite"):
        B.on_points(net, np.vstack([X[:1], [np.nan, 0, 0]]))
    with pytest.raises(ValueError, match=r"shape \(n >= 1, 3\)"):
        B.on_points(net, X[:, :2])


@given(network_and_box(max_depth=4, max_width=32))
def test_bounds_on_boxes_and_on_points_are_sound_there(case):
    """Networks that look trained (the strategy's scales, dead units, near-zero weights): the
    union-of-boxes bounds hold at points sampled in every box; the points bounds at the
    points, and each points bound is within its margin of a value taken."""
    net, lo, hi, seed = case
    rng = np.random.default_rng(seed)
    centres = rng.uniform(lo, hi, size=(6, lo.size))
    half = (hi - lo) * rng.uniform(0, 0.2, size=(6, lo.size))
    b = bounds.on_boxes(net, centres - half, centres + half)
    X = np.vstack([sample_box(c - r, c + r, 100, seed + k, max_corners=64)
                   for k, (c, r) in enumerate(zip(centres, half))])
    assert_inside(b, net, X)
    np.testing.assert_array_equal(b.lo, (centres - half).min(0))
    p = bounds.on_points(net, X)
    assert_inside(p, net, X)
    for z, a in zip(net.preactivations(X), p.lower):
        assert np.all(z.min(0) - a <= bounds.POINTS_MARGIN * (1 + np.abs(z.min(0))) * 1.0000001)


def test_interval_on_a_polytope_is_never_looser_than_on_the_box():
    """Interval arithmetic is monotone in the box, so on a polytope (a budget row, an
    equality and an l1 ball; its soundness there: tests/test_bound_methods.py) it is never
    looser than on the box, and on this trained-looking network tighter somewhere."""
    rng = np.random.default_rng(5)
    sizes = [4, 12, 12, 2]
    net = Network([rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])],
                  [rng.normal(size=o) * 0.1 for o in sizes[1:]])
    lo, hi = -np.ones(4), np.ones(4)
    d = bounds.Domain(lo, hi, A_ub=[[1.0, 1.0, 0.0, 0.0]], b_ub=[0.2], A_eq=[[0.0, 0.0, 1.0, -1.0]],
                      b_eq=[0.1], l1=(np.zeros(4), 1.5))
    b = bounds.tighten(net, method="interval", domain=d)
    box = bounds.interval(net, lo, hi)
    assert all(np.all(u <= v) for u, v in zip(b.upper, box.upper))
    assert sum(np.sum(u < v) for u, v in zip(b.upper, box.upper)) > 0


def _delayed(monkeypatch, parity: int) -> None:
    """Every search of a unit of that index parity starts 3 ms late: the two threads then
    finish their tasks in another order than without it."""
    import time

    from emlpress.bounds import bab

    for cls in (bab.PhaseSearch, bab.InputSearch):
        side = cls.side

        def late(self, i, *args, _side=side, **kw):
            if i % 2 == parity:
                time.sleep(0.003)
            return _side(self, i, *args, **kw)

        monkeypatch.setattr(cls, "side", late)


def _equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.lower + a.upper, b.lower + b.upper))


def test_exact_bounds_on_two_threads_repeat_bit_for_bit(monkeypatch):
    """tighten(method="exact") and milp(full=True) on 2 threads give the same bounds however
    the threads' searches interleave, when no time limit stops one. Before each thread took
    the next task when free, with the witnesses of every other thread as they came and the
    warm start of whatever LP its HiGHS instance had solved last: 7 to 10 of this network's
    66 full bounds changed from run to run (by up to 1e-12; sound each time)."""
    import math

    from emlpress.testing import trained_like

    net = trained_like([3, 16, 16, 1], seed=0)
    runs = {"exact": [], "full": [], "nodes": []}
    for parity in (0, 1, 0):
        _delayed(monkeypatch, parity)
        runs["exact"].append(bounds.tighten(net, method="exact", threads=2, milp_time_limit=None))
        runs["full"].append(bounds.milp(net, threads=2, time_limit=math.inf, full=True))
        # a node limit (unlike a time limit) stops every run at the same node
        runs["nodes"].append(bounds.tighten(net, method="exact", threads=2, milp_node_limit=2,
                                            milp_time_limit=math.inf))
    for name, (first, *rest) in runs.items():
        assert all(_equal(first, r) for r in rest), name
        assert_inside(first, net, sample_box(net.lo, net.hi, 2000, 1))
    assert runs["nodes"][0].search["unresolved"].sum() > 0  # the node limit did stop searches


def test_tighten_exact_takes_its_time_limit():
    """tighten(method="exact", time_limit=...) is the search's limit (it was dropped for
    milp_time_limit's default before); milp_node_limit is checked like node_limit."""
    net = Network([np.ones((2, 2)), np.ones((1, 2))], [np.zeros(2), np.zeros(1)], -np.ones(2),
                  np.ones(2))
    with pytest.raises(ValueError, match="time_limit must be > 0"):
        bounds.tighten(net, method="exact", time_limit=0)
    with pytest.raises(ValueError, match="milp_node_limit must be a positive integer"):
        bounds.tighten(net, method="exact", milp_node_limit=0)
