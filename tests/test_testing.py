"""The test infrastructure: emlpress.testing.trained_like keeps the promises its docstring
makes (checked by numpy forward passes over samples and corners of the box and by textbook
interval arithmetic), and the shared_data fixture skips or fails as documented."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emlpress.testing import trained_like
from strategies import interval_numpy, numpy_preactivations, sample_box


def test_same_arguments_same_network_and_the_sizes_and_box_asked():
    a = trained_like([3, 20, 10, 2], seed=4, lo=[-1, 0, 2], hi=[1, 0, 5], dead=0.2, exact_zero=0.2)
    b = trained_like([3, 20, 10, 2], seed=4, lo=[-1, 0, 2], hi=[1, 0, 5], dead=0.2, exact_zero=0.2)
    c = trained_like([3, 20, 10, 2], seed=5, lo=[-1, 0, 2], hi=[1, 0, 5], dead=0.2, exact_zero=0.2)
    assert a.sizes == [3, 20, 10, 2]
    assert a.lo.tolist() == [-1, 0, 2] and a.hi.tolist() == [1, 0, 5]
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.weights[0], c.weights[0])


@pytest.mark.parametrize("seed", range(3))
def test_dead_units_are_dead_on_the_box_and_leave_the_rest_as_it_was(seed):
    lo, hi = np.array([-2.0, 0.5, -1.0]), np.array([1.0, 3.0, -1.0])  # one side of width 0
    kw = dict(sizes=[3, 40, 40, 30, 2], seed=seed, lo=lo, hi=hi, layer_scale=(1.0, 2.0, 0.5))
    live, net = trained_like(**kw), trained_like(**kw, dead=0.3)
    for W, V in zip(live.weights, net.weights):
        np.testing.assert_array_equal(W, V)  # the dead units' own stream: weights unchanged
    np.testing.assert_array_equal(live.biases[-1], net.biases[-1])
    Z = numpy_preactivations(net, sample_box(lo, hi, 20_000, seed))
    _, upper = interval_numpy(net, lo, hi)
    n_dead = n_units = 0
    for l in range(net.n_layers - 1):
        dead = net.biases[l] != live.biases[l]
        assert (Z[l][:, dead] <= -1.0).all(), l  # below -1 at every sample and corner
        assert (upper[l][dead] < 0).all(), l  # and by interval arithmetic on the whole box
        n_dead += int(dead.sum())
        n_units += dead.size
    assert 0.2 < n_dead / n_units < 0.4  # the share asked (110 units, 0.3)


def test_scales_and_shares_are_as_asked():
    net = trained_like([60, 300, 300, 50], seed=1, big=1.0, big_scale=(2.0, 0.5),
                       layer_scale=(1.0, 3.0), out_scale=10.0, near_dead=0)
    assert np.std(net.weights[0]) == pytest.approx(2.0, rel=0.05)
    assert np.std(net.weights[1]) == pytest.approx(0.5 * 3.0, rel=0.05)  # times its layer scale
    assert np.std(net.weights[2]) == pytest.approx(0.5 * 10.0, rel=0.05)  # the output scale
    sparse = trained_like([60, 300, 300, 50], seed=1, big=0.25, zero_weights=0.4, near_dead=0,
                          layer_scale=1.0)
    W = np.concatenate([W.ravel() for W in sparse.weights])
    assert np.mean(W == 0) == pytest.approx(0.4, abs=0.02)
    nonzero = W[W != 0]
    tiny = np.abs(nonzero) < 1e-3  # small * N(0, 1) is below 1e-3 but 1 in 1e23
    assert np.mean(tiny) == pytest.approx(0.75, abs=0.02)
    assert np.std(nonzero[tiny]) == pytest.approx(1e-4, rel=0.05)
    assert np.std(nonzero[~tiny]) == pytest.approx(1.0, rel=0.05)


def test_near_dead_units_stay_near_zero_and_exact_zero_units_at_or_below_zero():
    lo, hi = -np.ones(4), np.ones(4)
    net = trained_like([4, 30, 30, 1], seed=2, near_dead=3, exact_zero=0.3)
    Z = numpy_preactivations(net, sample_box(lo, hi, 20_000, 2))
    for l in range(2):
        zero_units = (net.biases[l] == 0) & (net.weights[l] <= 1e-30).all(1)
        if l == 0:  # inputs of either sign: exact-zero units are constant 0 rows
            zero_units = (net.biases[l] == 0) & (net.weights[l] == 0).all(1)
            assert (Z[l][:, zero_units] == 0).all()
        else:  # weights <= 0 (or +1e-30) on ReLU outputs: never above ~1e-30 times the inputs
            A = np.maximum(Z[l - 1], 0)
            assert (Z[l][:, zero_units] <= 2e-30 * A.sum(1, keepdims=True)).all()
        assert 3 <= zero_units.sum() <= 18, l  # about 0.3 of 30
        near = np.abs(Z[l]).max(0) < 1e-5
        assert near[:3].all(), l  # the first near_dead units of every hidden layer
    live = trained_like([4, 30, 30, 1], seed=2, near_dead=0)
    assert (np.abs(numpy_preactivations(live, sample_box(lo, hi, 2000, 3))[0][:, :3]).max(0) > 1e-3).all()


def test_shared_data_skips_naming_the_path_unless_ci_requires_it(tmp_path):
    """A clone without ../shared/data beside it skips the tests that need it, naming the
    path; with EMLPRESS_REQUIRE_SHARED_DATA (set by .ci/run) they fail instead. (With the
    data there, the suite's own shared-data tests run.)"""
    tests = tmp_path / "repo" / "tests"
    tests.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("conftest.py"), tests / "conftest.py")
    (tests / "test_needs_data.py").write_text("def test_it(shared_data):\n    assert shared_data.is_dir()\n")
    missing = tmp_path / "shared" / "data"
    env = {k: v for k, v in os.environ.items() if k != "EMLPRESS_REQUIRE_SHARED_DATA"}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # a bare pytest: the fixture is all it runs
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tests)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 0 and "1 skipped" in r.stdout, r.stdout + r.stderr
    assert f"the shared data directory {missing} is missing" in r.stdout
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                       env={**env, "EMLPRESS_REQUIRE_SHARED_DATA": "1"})
    assert r.returncode == 1 and "1 error" in r.stdout, r.stdout + r.stderr  # in the fixture
    assert f"{missing} is missing" in r.stdout and "EMLPRESS_REQUIRE_SHARED_DATA is set" in r.stdout
