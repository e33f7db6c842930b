"""Lossless compression: each rule on a hand-built network, random networks, idempotence,
carried-over bounds, and a verification that fails when the bounds lie."""

import sys

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from emlpress import Network, bounds
from emlpress.bounds import Bounds
from emlpress.compress import LosslessError, lossless
from emlpress.compress.lossless import verify_equal
from emlpress.testing import trained_like
from strategies import assert_inside, network_and_box, sample_box


def assert_same_function(net, small, lo, hi, seed=0):
    """Independent of the report: compare outputs on fresh points (and corners)."""
    X = sample_box(np.asarray(lo, float), np.asarray(hi, float), 20_000, seed + 1)
    Y, Z = net.forward(X), small.forward(X)
    scale = max(np.abs(Y).max(), np.finfo(float).tiny)
    assert np.abs(Y - Z).max() <= 1e-9 * scale


def box(n, r=1.0):
    return -r * np.ones(n), r * np.ones(n)


def test_zero_weight_units_fold_positive_bias_and_drop_negative():
    W0 = np.array([[1.0, -1.0], [0.0, 0.0], [0.0, 0.0], [0.5, 2.0]])
    b0 = np.array([0.1, 0.7, -0.3, -0.2])
    W1 = np.array([[1.0, 2.0, 3.0, -1.0]])
    net = Network([W0, W1], [b0, np.array([0.25])], *box(2))
    small, rep = lossless(net, bounds="interval")
    row = rep.layers.loc[0]
    assert row.removed_zero_weight == 2 and row.units_after == 2
    assert small.sizes == [2, 2, 1]
    # the constant 2 * relu(0.7) went into the output bias; relu(-0.3) = 0 added nothing
    assert small.biases[-1][0] == pytest.approx(0.25 + 2.0 * 0.7, abs=1e-15)
    assert_same_function(net, small, *box(2))


def test_duplicated_active_unit_is_folded():
    W0 = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, -1.0]])
    b0 = np.array([5.0, 5.5, 0.0])  # units 0, 1 stably active on [-1, 1]^2, unit 2 unstable
    W1 = np.array([[1.0, -3.0, 2.0]])
    net = Network([W0, W1], [b0, np.array([0.0])], *box(2))
    small, rep = lossless(net, bounds="interval")
    assert rep.layers.loc[0].folded_dependent == 1
    # h1 = h0 + 0.5: weight 1 - 3 = -2 on unit 0, bias -3 * 0.5
    np.testing.assert_allclose(small.weights[-1], [[-2.0, 2.0]], atol=1e-14)
    np.testing.assert_allclose(small.biases[-1], [-1.5], atol=1e-14)
    assert_same_function(net, small, *box(2))


def test_tiny_row_the_output_depends_on_is_not_folded_away():
    """A unit with weights 1e-30 beside one with 1e-7 (L1/L2 training leaves such units) is
    independent of it: folding it as a zero combination made the output a constant (found by
    hypothesis: the output, 1e-54, was lost)."""
    W0 = np.array([[1e-7, 0.0], [0.0, 1e-30]])
    net = Network([W0, np.array([[0.0, 1.0]])], [np.zeros(2), np.zeros(1)])
    lo, hi = np.array([1.0, 1.0]), np.array([2.0, 2.0])  # both units stably active
    small, rep = lossless(net, lo, hi, bounds="interval")
    assert rep.layers.loc[0].folded_dependent == 0
    assert_same_function(net, small, lo, hi)
    # a row that is a multiple of another, at any scale, still folds
    W0 = np.array([[1e-7, 2e-7], [3e-30, 6e-30], [1.0, -1.0]])
    net = Network([W0, np.array([[1.0, 1e20, 0.0]])], [np.zeros(3), np.zeros(1)])
    small, rep = lossless(net, lo, hi, bounds="interval")
    assert rep.layers.loc[0].folded_dependent == 1
    assert_same_function(net, small, lo, hi)


def test_unit_equal_to_scaled_sum_of_two_others():
    rng = np.random.default_rng(3)
    a, c = rng.normal(size=4), rng.normal(size=4)
    W0 = np.vstack([a, c, 2.0 * a - 0.5 * c, rng.normal(size=4)])
    b0 = np.array([20.0, 20.0, 30.0, 0.0])  # first three stably active on [-1, 1]^4
    W1 = rng.normal(size=(2, 4))
    net = Network([W0, W1], [b0, rng.normal(size=2)], *box(4))
    small, rep = lossless(net, bounds="interval")
    assert rep.layers.loc[0].folded_dependent == 1
    # k . W0[:3] = 0: the folded row i (the rank test takes the largest rows first, so which
    # one is its choice) is -sum_j k_j / k_i W0[j] over the two kept rows j
    k = np.array([2.0, -0.5, -1.0])
    kept = [next(r for r in range(4) if np.array_equal(w, W0[r])) for w in small.weights[0]]
    (i,) = set(range(3)) - set(kept)
    V, c_expected = W1.copy(), net.biases[1].copy()
    c_expected += W1[:, i] * b0[i]
    for j in set(range(3)) - {i}:
        V[:, j] += -k[j] / k[i] * W1[:, i]
        c_expected -= W1[:, i] * (-k[j] / k[i]) * b0[j]
    np.testing.assert_allclose(small.weights[-1], V[:, kept], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(small.biases[-1], c_expected, rtol=1e-12, atol=1e-12)
    assert_same_function(net, small, *box(4))


def test_entirely_stable_layer_is_merged():
    rng = np.random.default_rng(4)
    W0 = rng.normal(size=(6, 3))
    b0 = rng.normal(size=6)
    W1 = rng.normal(size=(3, 6)) * 0.1
    b1 = np.array([10.0, 10.0, -10.0])  # layer 2 entirely stable
    W2 = rng.normal(size=(2, 3))
    net = Network([W0, W1, W2], [b0, b1, rng.normal(size=2)], *box(3))
    small, rep = lossless(net, bounds="interval")
    assert bool(rep.layers.loc[1].merged)
    assert small.n_layers == 2 and rep.layers_after == 2
    assert_same_function(net, small, *box(3))


def test_constant_network_collapses_to_its_output():
    rng = np.random.default_rng(5)
    W0 = rng.normal(size=(5, 3))
    b0 = -10.0 * np.ones(5)  # every first-layer unit stably inactive
    W1, b1 = rng.normal(size=(4, 5)), rng.normal(size=4)
    W2, b2 = rng.normal(size=(2, 4)), rng.normal(size=2)
    net = Network([W0, W1, W2], [b0, b1, b2], *box(3))
    small, rep = lossless(net, bounds="interval")
    assert small.n_layers == 1 and small.n_neurons == 0
    assert np.all(small.weights[0] == 0.0)
    expected = W2 @ np.maximum(b1, 0) + b2
    np.testing.assert_allclose(small.biases[0], expected, rtol=1e-15)
    assert_same_function(net, small, *box(3))


def test_layer_whose_stable_units_are_all_dependent():
    # All five active rows are multiples of one row: one survives, four fold; the
    # unstable unit stays.
    r = np.array([0.3, -0.7])
    W0 = np.vstack([k * r for k in (1.0, -2.0, 0.5, 3.0, 1.5)] + [[1.0, 1.0]])
    b0 = np.array([5.0, 5.0, 5.0, 5.0, 5.0, 0.1])
    W1 = np.arange(1.0, 7.0)[None, :]
    net = Network([W0, W1], [b0, np.array([0.0])], *box(2))
    small, rep = lossless(net, bounds="interval")
    row = rep.layers.loc[0]
    assert row.folded_dependent == 4 and row.units_after == 2
    assert_same_function(net, small, *box(2))


def test_more_active_units_than_inputs_keeps_at_most_n_in():
    rng = np.random.default_rng(6)
    W0 = rng.normal(size=(40, 3))
    b0 = 50.0 + rng.random(40)  # all stably active, rank 3
    net = Network([W0, rng.normal(size=(1, 40))], [b0, np.zeros(1)], *box(3))
    small, rep = lossless(net, bounds="interval")
    # Entirely stable: merged after folding 37 dependent units into 3.
    assert rep.layers.loc[0].folded_dependent == 37
    assert small.n_layers == 1
    assert_same_function(net, small, *box(3))


def _tiny_rows_case():
    """What network_and_box drew at 10x examples (seed 0, weights 1e-2 / sqrt(n_in), 80% zero
    weights, 30% exact-zero units, a box of 1e-4): in the third layer a unit with weights 4e-35
    came before a parallel one with weights 1e-7, and folding the second into the first (by a
    factor 3e27) left the output -4e-8 at 6e-15 (LosslessError)."""
    sizes, seed = [3, 11, 24, 24, 1], 0
    rng = np.random.default_rng([seed, 2])
    lo = rng.uniform(-1, 1, 3) * 1e-4
    hi = lo + rng.uniform(0, 2, 3) * 1e-4
    net = trained_like(sizes, seed, big=1.0, big_scale=[1e-2 / np.sqrt(n) for n in sizes[:-1]],
                       bias=1e-2, bias_sign=None, near_dead=0, layer_scale=1.0, zero_weights=0.8,
                       exact_zero=0.3, lo=lo, hi=hi)
    return Network(net.weights, net.biases), lo, hi, seed


@given(network_and_box(max_depth=5, max_width=24, max_in=6), st.sampled_from(["interval", "crown"]))
@example(_tiny_rows_case(), "interval")
def test_random_networks_compress_exactly(case, method):
    net, lo, hi, seed = case
    small, rep = lossless(net, lo, hi, bounds=method)  # raises if the check fails
    assert rep.max_abs_diff <= 1e-9 * rep.output_scale
    assert small.n_neurons <= net.n_neurons and small.n_layers <= net.n_layers
    assert_same_function(net, small, lo, hi, seed)
    # The carried-over bounds are sound for the compressed network...
    X = sample_box(lo, hi, 500, seed)
    assert_inside(rep.bounds, small, X)
    # ... and compressing again with them removes nothing more (unless a step was refused for
    # its rounding: its error budget is then spent by the earlier steps, gone the second time)
    again, rep2 = lossless(small, lo, hi, bounds=rep.bounds)
    if not rep.layers.kept_for_exactness.any():
        assert again.sizes == small.sizes
        assert rep2.neurons_after == rep.neurons_after and rep2.params_after == rep.params_after
    else:
        assert again.n_neurons <= small.n_neurons and again.n_params <= small.n_params


def test_a_fold_that_would_round_away_a_small_output_is_refused(monkeypatch):
    """The output is 1e-12 from units of 5 and 15: folding the second unit into the first
    (h1 = 3 h0 + 1e-12) rounds the weight -3 + 3 to 4e-16 and the output by 3.6e-15, 3.6e-3 of
    it. The fold's rigorous error exceeds the budget, so the layer is kept, exactly."""
    r = np.array([0.1, 0.3])
    W0 = np.vstack([r, 3 * r, [1.0, -1.0]])
    b0 = np.array([5.0, 15.0 + 1e-12, 0.0])  # units 0 and 1 stably active on [-1, 1]^2
    net = Network([W0, np.array([[-3.0, 1.0, 0.0]])], [b0, np.zeros(1)], *box(2))
    small, rep = lossless(net, bounds="interval")
    row = rep.layers.loc[0]
    assert row.kept_for_exactness and row.folded_dependent == 0 and row.units_after == 3
    assert_same_function(net, small, *box(2))
    # without the budget the fold is done, and the verification refuses its result
    # (the module: emlpress.compress.lossless is the function)
    monkeypatch.setattr(sys.modules["emlpress.compress.lossless"], "FOLD_BUDGET", np.inf)
    with pytest.raises(LosslessError, match="differs from the original"):
        lossless(net, bounds="interval")


def test_lp_bounds_compress_seed_gp_subnetwork_and_idempotent(shared_data):
    full = Network.load(shared_data / "seed_gp" / "model.npz")
    # first two hidden layers and a 1-unit linear head from the third layer's first row
    net = Network([full.weights[0], full.weights[1][:64], full.weights[2][:1, :64]],
                  [full.biases[0], full.biases[1][:64], full.biases[2][:1]], full.lo, full.hi)
    small, rep = lossless(net, bounds="lp")
    assert rep.neurons_after < net.n_neurons
    assert_same_function(net, small, full.lo, full.hi)
    again, _ = lossless(small, bounds=rep.bounds)
    assert again.sizes == small.sizes


def test_wrong_bounds_are_caught_by_the_verification(monkeypatch):
    rng = np.random.default_rng(7)
    net = Network([rng.normal(size=(8, 2)), rng.normal(size=(1, 8))],
                  [rng.normal(size=8) * 0.1, np.zeros(1)], *box(2))
    b = bounds.interval(net)
    # Claim every unit is stably inactive: a lie, which Bounds.check refuses up front ...
    lie = Bounds((np.full(8, -2.0), b.lower[1]), (np.full(8, -1.0), b.upper[1]), b.lo, b.hi, "lie")
    with pytest.raises(ValueError, match=r"the bounds \(lie\) do not hold for this network: layer 0"):
        lossless(net, bounds=lie)
    # ... and which, past that check, the equality check after compression catches
    monkeypatch.setattr(Bounds, "check", lambda self, net, lo=None, hi=None: None)
    with pytest.raises(LosslessError, match="differs from the original"):
        lossless(net, bounds=lie)


def test_bad_inputs():
    net = Network([np.eye(2), np.ones((1, 2))], [np.zeros(2), np.zeros(1)], *box(2))
    other = Network([np.eye(3), np.ones((1, 3))], [np.zeros(3), np.zeros(1)], *box(3))
    with pytest.raises(ValueError, match="layer sizes"):
        lossless(net, bounds=bounds.interval(other))
    with pytest.raises(ValueError, match="smaller box"):
        lossless(net, bounds=bounds.interval(net, *box(2, 0.5)))
    with pytest.raises(ValueError, match="unknown bound method"):
        lossless(net, bounds="magic")
    with pytest.raises(ValueError, match="100,000"):
        lossless(net, bounds="interval", n_points=10)
    d, s, n = verify_equal(net, net, *box(2))
    assert d == 0.0 and n == 100_004
