"""Round trips through every framework: the imported network's forward pass equals the
framework's own prediction; unsupported layers are refused with their name and position."""

import numpy as np
import pytest

from emlpress import Network
from emlpress.io import UnsupportedLayerError, from_keras, from_onnx, from_torch, load_model, to_keras


def rel_close(a, b, rtol=1e-6):
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = max(1.0, float(np.abs(b).max()))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


X = np.random.default_rng(0).uniform(-2, 2, size=(500, 3)).astype(np.float32)


# ---- keras ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras():
    from emlpress.io.keras import tf_keras

    return tf_keras()


def test_keras_sequential_round_trip(keras, tmp_path):
    model = keras.Sequential(
        [
            keras.Input(shape=(3,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(8),
            keras.layers.ReLU(),
            keras.layers.Dense(8),
            keras.layers.Activation("relu"),
            keras.layers.Dense(2, activation="linear"),
        ]
    )
    net = from_keras(model)
    assert net.sizes == [3, 16, 8, 8, 2]
    rel_close(net.forward(X), model.predict(X, verbose=0))
    for name in ("m.h5", "m.keras"):
        model.save(tmp_path / name)
        rel_close(load_model(tmp_path / name).forward(X), model.predict(X, verbose=0))


def test_keras_functional_chain_and_linear_stack(keras):
    inp = keras.Input(shape=(3,))
    h = keras.layers.Dense(10, activation="relu")(inp)
    h = keras.layers.Dense(6)(h)  # linear followed by linear: composed exactly
    h = keras.layers.Dense(4, activation="relu")(h)  # final ReLU: identity output layer
    model = keras.Model(inp, h)
    net = from_keras(model)
    assert net.sizes == [3, 10, 4, 4]
    rel_close(net.forward(X), model.predict(X, verbose=0))


def test_to_keras_round_trip(keras):
    rng = np.random.default_rng(1)
    net = Network([rng.normal(size=(7, 3)), rng.normal(size=(2, 7))], [rng.normal(size=7), rng.normal(size=2)])
    model = to_keras(net)
    rel_close(model.predict(X, verbose=0), net.forward(X))
    assert from_keras(model).sizes == net.sizes


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda k: k.layers.Dense(4, activation="sigmoid"), r"layer 1 'bad' \(Dense\): activation 'sigmoid' is not supported"),
        (lambda k: k.layers.Dropout(0.5), r"layer 1 'bad' \(Dropout\) is not supported"),
        (lambda k: k.layers.BatchNormalization(), r"layer 1 'bad' \(BatchNormalization\) is not supported"),
        (lambda k: k.layers.ReLU(max_value=6.0), r"layer 1 'bad' \(ReLU\) is not a plain ReLU"),
        (lambda k: k.layers.LeakyReLU(), r"layer 1 'bad' \(LeakyReLU\) is not supported"),
    ],
)
def test_keras_unsupported_layers(keras, bad, match):
    layer = bad(keras)
    layer._name = "bad"
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(4, activation="relu"), layer, keras.layers.Dense(1)])
    with pytest.raises(UnsupportedLayerError, match=match):
        from_keras(model)


# ---- onnx -----------------------------------------------------------------------------
def onnx_model(nodes, inits, n_in, n_out, path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, n_in])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, [None, n_out])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return model


def onnx_predict(model, x):
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(None, {"x": x})[0]


def test_onnx_gemm_and_matmul_add(tmp_path):
    from onnx import helper

    rng = np.random.default_rng(2)
    inits = {
        "W1": rng.normal(size=(12, 3)), "b1": rng.normal(size=12),  # Gemm with transB=1
        "W2": rng.normal(size=(12, 5)), "b2": rng.normal(size=5),  # Gemm, transB=0, alpha/beta
        "W3": rng.normal(size=(5, 2)), "b3": rng.normal(size=2),  # MatMul + Add
    }
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "b1"], ["h1"], transB=1, name="fc1"),
        helper.make_node("Relu", ["h1"], ["a1"]),
        helper.make_node("Gemm", ["a1", "W2", "b2"], ["h2"], alpha=0.5, beta=2.0, name="fc2"),
        helper.make_node("Relu", ["h2"], ["a2"]),
        helper.make_node("MatMul", ["a2", "W3"], ["h3"]),
        helper.make_node("Add", ["h3", "b3"], ["y"]),
    ]
    model = onnx_model(nodes, inits, 3, 2, tmp_path / "m.onnx")
    net = from_onnx(tmp_path / "m.onnx")
    assert net.sizes == [3, 12, 5, 2]
    rel_close(net.forward(X), onnx_predict(model, X))
    rel_close(load_model(tmp_path / "m.onnx").forward(X), onnx_predict(model, X))


def test_onnx_unsupported_op(tmp_path):
    from onnx import helper

    rng = np.random.default_rng(3)
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "b1"], ["h1"], transB=1, name="fc1"),
        helper.make_node("Sigmoid", ["h1"], ["y"], name="act1"),
    ]
    onnx_model(nodes, {"W1": rng.normal(size=(4, 3)), "b1": rng.normal(size=4)}, 3, 4, tmp_path / "s.onnx")
    with pytest.raises(UnsupportedLayerError, match=r"node 1 'act1' \(Sigmoid\): operator Sigmoid is not supported"):
        from_onnx(tmp_path / "s.onnx")


# ---- torch ----------------------------------------------------------------------------
def test_torch_round_trip(tmp_path):
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 20), nn.ReLU(), nn.Sequential(nn.Linear(20, 9), nn.ReLU()), nn.Linear(9, 2)).double()
    net = from_torch(model)
    assert net.sizes == [3, 20, 9, 2]
    with torch.no_grad():
        ref = model(torch.from_numpy(X.astype(np.float64))).numpy()
    rel_close(net.forward(X), ref)
    torch.save(model, tmp_path / "m.pt")
    rel_close(load_model(tmp_path / "m.pt").forward(X), ref)


@pytest.mark.parametrize("bad, match", [("tanh", r"module '2' \(Tanh\) is not supported"), ("conv", r"module '2' \(Conv1d\) is not supported")])
def test_torch_unsupported(bad, match):
    from torch import nn

    layer = nn.Tanh() if bad == "tanh" else nn.Conv1d(1, 1, 1)
    with pytest.raises(UnsupportedLayerError, match=match):
        from_torch(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), layer, nn.Linear(4, 1)))


# ---- dispatch -------------------------------------------------------------------------
def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_model(tmp_path / "nope.npz")
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(ValueError, match=r"unknown model format '.txt'"):
        load_model(tmp_path / "m.txt")
