import numpy as np
import pytest

from emlpress import Network


def small_net(lo=None, hi=None):
    rng = np.random.default_rng(0)
    return Network([rng.normal(size=(4, 3)), rng.normal(size=(2, 4))], [rng.normal(size=4), rng.normal(size=2)], lo, hi)


def numpy_forward(net, X):
    A = X
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        A = A @ W.T + b
        if l < net.n_layers - 1:
            A = np.maximum(A, 0)
    return A


def test_structure():
    net = small_net()
    assert net.sizes == [3, 4, 2]
    assert net.n_params == 3 * 4 + 4 + 4 * 2 + 2
    assert net.n_layers == 2 and net.n_in == 3 and net.n_out == 2 and net.n_neurons == 4


def test_forward_matches_numpy_batch_single_and_float32():
    net = small_net()
    X = np.random.default_rng(1).normal(size=(1000, 3))
    np.testing.assert_allclose(net.forward(X), numpy_forward(net, X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.forward(X[0]), numpy_forward(net, X[:1])[0], rtol=1e-12)
    np.testing.assert_allclose(net.forward(X.astype(np.float32)), numpy_forward(net, X.astype(np.float32).astype(float)), rtol=1e-12)
    # a Fortran-ordered batch gives the same answer
    np.testing.assert_allclose(net.forward(np.asfortranarray(X)), net.forward(X))
    Z = net.preactivations(X)
    assert [z.shape for z in Z] == [(1000, 4), (1000, 2)]
    np.testing.assert_allclose(Z[0], X @ net.weights[0].T + net.biases[0], rtol=1e-12)


def test_immutable():
    net = small_net()
    with pytest.raises(ValueError):
        net.weights[0][0, 0] = 1.0
    with pytest.raises(AttributeError):
        net.foo = 1


def test_copies_on_construction():
    W = np.ones((2, 2))
    net = Network([W], [np.zeros(2)])
    W[0, 0] = 5
    assert net.weights[0][0, 0] == 1.0


@pytest.mark.parametrize(
    "weights, biases, match",
    [
        ([np.ones((3, 2)), np.ones((2, 4))], [np.ones(3), np.ones(2)], r"layer 1: weights of shape \(2, 4\) take 4 inputs but layer 0 has 3 outputs"),
        ([np.ones((3, 2))], [np.ones(4)], r"layer 0: biases of shape \(4,\) do not match weights of shape \(3, 2\)"),
        ([np.ones((3, 2))], [np.ones((3, 1))], r"layer 0: biases must be 1-D, got shape \(3, 1\)"),
        ([np.ones(3)], [np.ones(3)], r"layer 0: weights must be 2-D"),
        ([np.ones((3, 2))], [np.array([1.0, np.nan, 0])], r"layer 0: biases\[1\] = nan is not finite"),
        ([np.ones((3, 2)), np.array([[1.0, 2, np.inf]])], [np.ones(3), np.ones(1)], r"layer 1: weights\[0, 2\] = inf is not finite"),
        ([], [], "at least one layer"),
        ([np.ones((3, 2))], [], "1 weight matrices but 0 bias"),
    ],
)
def test_validation_errors(weights, biases, match):
    with pytest.raises(ValueError, match=match):
        Network(weights, biases)


def test_domain_validation():
    W, b = [np.ones((1, 2))], [np.zeros(1)]
    with pytest.raises(ValueError, match=r"lo\[1\] = 2.0 > hi\[1\] = 1.0"):
        Network(W, b, [0, 2], [1, 1])
    with pytest.raises(ValueError, match=r"lo has shape \(3,\), expected \(2,\)"):
        Network(W, b, [0, 0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="both lo and hi"):
        Network(W, b, [0, 0], None)
    with pytest.raises(ValueError, match=r"hi\[0\] = nan is not finite"):
        Network(W, b, [0, 0], [np.nan, 1])


def test_forward_rejects_wrong_width():
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        small_net().forward(np.ones((5, 4)))


def test_save_load_round_trip(tmp_path):
    net = small_net([-1, -2, -3], [1, 2, 3])
    net.save(tmp_path / "m.npz")
    back = Network.load(tmp_path / "m.npz")
    assert back == net
    assert back.lo.tolist() == [-1, -2, -3]
    plain = small_net()
    plain.save(tmp_path / "p.npz")
    assert Network.load(tmp_path / "p.npz").lo is None


def test_load_errors_name_the_file(tmp_path):
    np.savez(tmp_path / "bad.npz", W0=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"bad.npz: missing bias arrays \['b0'\]"):
        Network.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "empty.npz", x=np.ones(2))
    with pytest.raises(ValueError, match="empty.npz: no weight matrices"):
        Network.load(tmp_path / "empty.npz")
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ValueError, match="text.npz: not a network file"):
        Network.load(tmp_path / "text.npz")
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(ValueError, match="single.npy: holds a single array"):
        Network.load(tmp_path / "single.npy")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "bad.npz").read_bytes()[:40])
    with pytest.raises(ValueError, match="cut.npz: not a network file"):
        Network.load(tmp_path / "cut.npz")


def test_loads_the_study_network(shared_data):
    net = Network.load(shared_data / "seed_gp" / "model.npz")
    assert net.sizes == [2, 1024, 512, 512, 256, 1]
    assert net.n_params == 922113
    y = net.forward(np.random.default_rng(0).uniform(net.lo, net.hi, size=(1000, 2)))
    assert 20 < y.min() and y.max() < 12500
