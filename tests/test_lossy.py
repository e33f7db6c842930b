"""Lossy compression: TMOT pruning, the six TFLite post-training quantizations, from_tflite,
the exact integer model and its MILP embedding, all checked against LiteRT's interpreter."""

import gzip
import itertools

import numpy as np
import pytest

pytest.importorskip("tf_keras")
pytest.importorskip("ai_edge_litert")

import flatbuffers
import highspy
import tensorflow as tf  # loaded by the importorskip above, TF_USE_LEGACY_KERAS set (conftest)
from ai_edge_litert import schema_py_generated as S
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from emlpress import Network, milp
from emlpress._highs import highs
from emlpress.compress import lossy
from emlpress.io import ModelFileError, UnsupportedLayerError, from_tflite, load_model
from emlpress.io.keras import from_keras, tf_keras
from emlpress.io.tflite import QuantizedNetwork, read_tflite
from emlpress.testing import trained_like


def trained_looking(sizes, seed, dead=0.2, tiny=0.3):
    """A network like a trained one: per-layer scales, near-zero weights beside large ones,
    dead units (dead on the box [-1, 1]^n_in)."""
    return trained_like(sizes, seed, big=1.0 - tiny, near_dead=0, dead=dead, bias=0.1,
                        big_scale=[c / np.sqrt(a) for c, a in zip(itertools.cycle((1.0, 3.0, 0.3)), sizes[:-1])],
                        layer_scale=1.0)


def _interp(content, kernels="reference"):
    kind = {"reference": OpResolverType.BUILTIN_REF, "default": OpResolverType.AUTO}[kernels]
    return Interpreter(model_content=content, experimental_op_resolver_type=kind)


def _run(content, X, kernels="reference"):
    it = _interp(content, kernels)
    d = it.get_input_details()[0]
    it.resize_tensor_input(d["index"], list(X.shape))
    it.allocate_tensors()
    it.set_tensor(d["index"], X.astype(d["dtype"]))
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


@pytest.fixture(scope="module")
def small():
    net = trained_looking([3, 16, 12, 2], seed=1)
    X = np.random.default_rng(0).uniform(-1, 1, (1000, 3))
    models = {m: lossy.quantize(net, m, representative=X) for m in ("float32",) + lossy.MODES}
    return net, X, models


def test_every_mode_converts_to_the_kind_it_names(small):
    _, _, models = small
    kinds = {m: read_tflite(b).kind for m, b in models.items()}
    # dynamic range leaves tensors under 1024 elements in float32 (TFLite's rule): all of them here
    assert kinds == {"float32": "float32", "dynamic": "float32", "int8": "int8",
                     "int8-fallback": "int8", "float16": "float16", "16x8": "int16x8",
                     "16x8-fallback": "int16x8"}
    io = {m: _interp(b).get_input_details()[0]["dtype"] for m, b in models.items()}
    assert io["int8"] == np.int8 and io["16x8"] == np.int16
    assert all(io[m] == np.float32 for m in ("float32", "int8-fallback", "float16", "16x8-fallback"))


def test_sizes_are_ordered_as_the_storage_types_say():
    """On a model big enough for weights to dominate the flatbuffer: float16 about half of
    float32, int8 about a quarter, measured on the same kind of file."""
    net = trained_looking([4, 256, 256, 2], seed=2)
    X = np.random.default_rng(0).uniform(-1, 1, (300, 4))
    blobs = {m: lossy.quantize(net, m, representative=X) for m in ("float32", "float16", "int8", "dynamic")}
    size = {m: len(b) for m, b in blobs.items()}
    assert read_tflite(blobs["dynamic"]).kind == "dynamic"
    assert 0.45 < size["float16"] / size["float32"] < 0.6
    assert 0.2 < size["int8"] / size["float32"] < 0.35
    assert 0.2 < size["dynamic"] / size["float32"] < 0.35


def test_from_tflite_equals_a_hand_dequantized_reference(small):
    """Weights read through LiteRT's own tensor API and dequantized by hand (per axis)."""
    _, _, models = small
    for mode, content in models.items():
        net = from_tflite(content)
        it = Interpreter(model_content=content, experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        it.invoke()  # fills DEQUANTIZE outputs of constants (float16 weights) too
        ref = []
        for t in it.get_tensor_details():
            if len(t["shape"]) != 2 or t["shape"][0] == 1:  # weights: (n_out, n_in), not activations
                continue
            w = it.get_tensor(t["index"]).astype(np.float64)
            q = t["quantization_parameters"]
            if q["scales"].size:
                w = q["scales"].astype(np.float64)[:, None] * (w - q["zero_points"][:, None])
            ref.append(w)
        got = {W.shape: W for W in net.weights}
        for w in ref:
            if w.shape in got:
                np.testing.assert_allclose(got[w.shape], w, rtol=0, atol=1e-12, err_msg=mode)
        assert len([w for w in ref if w.shape in got]) >= 2, mode


def test_dequantized_network_is_close_to_the_float_one(small):
    net, X, models = small
    for mode, content in models.items():
        d = from_tflite(content)
        tol = {"float32": 1e-6, "float16": 5e-3}.get(mode, 0.05)
        assert np.max(np.abs(d.forward(X) - net.forward(X))) < tol * (1 + np.abs(net.forward(X)).max()), mode


@pytest.mark.parametrize("seed,sizes", [(3, [3, 16, 12, 2]), (4, [5, 32, 1]), (5, [2, 8, 8, 8, 3])])
def test_integer_model_equals_the_reference_interpreter_bit_for_bit(seed, sizes):
    net = trained_looking(sizes, seed)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (500, sizes[0]))
    for mode in ("int8", "int8-fallback"):
        content = lossy.quantize(net, mode, representative=X)
        q = QuantizedNetwork.from_tflite(content)
        XQ = rng.integers(-128, 128, (20000, sizes[0]))
        got = q.forward_int(XQ)
        if mode == "int8":
            ref = _run(content, XQ.astype(np.int8)).astype(np.int64)
            np.testing.assert_array_equal(got, ref)
        # float inputs, including far outside the calibration range (clamping) and exact ties
        Xf = np.vstack([rng.uniform(-3, 3, (5000, sizes[0])),
                        (rng.integers(-140, 140, (500, sizes[0])) + 0.5) * q.s_in])
        out = _run(content, Xf.astype(np.float32) if mode == "int8-fallback"
                   else q.quantize_input(Xf).astype(np.int8)).astype(np.float64)
        if mode == "int8-fallback":
            out = np.rint(out / q.s_out) + q.z_out
        np.testing.assert_array_equal(q.forward_int(q.quantize_input(Xf)), out.astype(np.int64))


def _brute_force(q, box_lo, box_hi):
    """Every int8 input reachable from the box, and the integer model's outputs there."""
    lo, hi = q.quantize_input(box_lo), q.quantize_input(box_hi)
    grid = np.array(list(itertools.product(*[range(a, b + 1) for a, b in zip(lo, hi)])))
    return grid, q.dequantize_output(q.forward_int(grid))


@pytest.mark.parametrize("bounds,shift", [("lp", 0.0), ("interval", 0.0), ("lp", 1.0)])
def test_exact_embedding_optimum_equals_enumeration_and_the_interpreter(bounds, shift):
    """shift 1: inputs in [0, 2], so the input zero point is -128 and |x / s| reaches 255."""
    net = trained_looking([2, 10, 8, 2], seed=7, dead=0.1)
    X = np.random.default_rng(7).uniform(-1, 1, (400, 2)) + shift
    q = QuantizedNetwork.from_tflite(lossy.quantize(net, "int8-fallback", representative=X))
    box_lo, box_hi = np.array([-0.8, -0.6]) + shift, np.array([0.9, 0.7]) + shift
    _, outs = _brute_force(q, box_lo, box_hi)
    for k in range(2):
        for sense, best in ((highspy.ObjSense.kMaximize, outs[:, k].max()),
                            (highspy.ObjSense.kMinimize, outs[:, k].min())):
            h = highs()
            x = h.addVariables(2, lb=box_lo.tolist(), ub=box_hi.tolist())
            hd = milp.add_quantized_network(h, q, [v.index for v in x], bounds=bounds)
            h.setObjective(hd.outputs[k], sense=sense)
            sol = milp.solve(h, mip_gap=0, mip_abs_gap=0, time_limit=120)
            assert sol.status == "OPTIMAL"
            assert sol.objective == pytest.approx(best, abs=1e-9)
            v = hd.verify_bits(sol)
            assert v["output_mismatches"] == 0 and v["input_mismatches"] == 0
            assert sol.verify_diff[hd.name] == 0.0


def test_encoding_admits_exactly_the_interpreters_value_at_random_integer_inputs():
    """Inputs fixed to random int8 values: maximising and minimising every output must both
    give the interpreter's value (the rows leave no other)."""
    net = trained_looking([3, 12, 10, 2], seed=8)
    X = np.random.default_rng(8).uniform(-1, 1, (400, 3))
    content = lossy.quantize(net, "int8", representative=X)
    q = QuantizedNetwork.from_tflite(content)
    rng = np.random.default_rng(9)
    XQ = rng.integers(-128, 128, (12, 3))
    ref = _run(content, XQ.astype(np.int8)).astype(np.int64)
    for xq, r in zip(XQ, ref):
        for k in range(2):
            for sense in (highspy.ObjSense.kMaximize, highspy.ObjSense.kMinimize):
                assert _fixed_input_value(q, xq, k, sense) == r[k]


def _fixed_input_value(q, xq, k, sense):
    """Output k (int8) of the MILP with its int8 inputs fixed by constraints (not by bounds,
    which would make every unit a constant and leave the rows untested), optimised."""
    h = highs()
    x = h.addVariables(len(xq), lb=-128, ub=127, type=highspy.HighsVarType.kInteger)
    for v, val in zip(x, xq):
        h.addConstr(v == float(val))
    hd = milp.add_quantized_network(h, q, [v.index for v in x], quantized_inputs=True,
                                    bounds="interval")
    assert hd.n_integers >= 1  # a requantized unit is a column with its rows, not a constant
    h.setObjective(hd.outputs[k], sense=sense)
    sol = milp.solve(h, mip_gap=0, mip_abs_gap=0)
    assert sol.status == "OPTIMAL"
    return int(np.rint(sol.objective / q.s_out) + q.z_out)


def _dyadic_model(W, b, s_in, s_w, s_out, relu=False):
    """A one-layer int8 model with chosen integer weights and power-of-two scales, where
    requantization ties (exact halves) happen: written by editing a converted flatbuffer."""
    W, b = np.asarray(W, np.int8), np.asarray(b, np.int32)
    net = Network([np.ones(W.shape)], [np.full(W.shape[0], 0.1)], -np.ones(W.shape[1]), np.ones(W.shape[1]))  # a bias tensor
    content = lossy.quantize(net, "int8", representative=np.random.default_rng(0).uniform(-1, 1, (50, W.shape[1])))
    m = S.ModelT.InitFromPackedBuf(bytearray(content), 0)
    g = m.subgraphs[0]
    (op,) = g.operators
    xi, wi, bi = op.inputs[:3]
    for ti, sc in ((xi, [s_in]), (op.outputs[0], [s_out]), (wi, [s_w] * W.shape[0]),
                   (bi, [s_in * s_w] * W.shape[0])):
        qp = g.tensors[ti].quantization
        qp.scale, qp.zeroPoint, qp.min, qp.max = sc, [0] * len(sc), None, None
    m.buffers[g.tensors[wi].buffer].data = np.frombuffer(W.tobytes(), np.uint8).copy()
    m.buffers[g.tensors[bi].buffer].data = np.frombuffer(b.tobytes(), np.uint8).copy()
    op.builtinOptions.fusedActivationFunction = 1 if relu else 0
    fb = flatbuffers.Builder(1024)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


@pytest.mark.parametrize("s_out", [2.0 ** -3, 3 * 2.0 ** -6, 5 * 2.0 ** -7])
def test_requantization_ties_round_away_from_zero_as_the_interpreter(s_out):
    """Power-of-two scales make acc * scale an exact half for some accumulators: the
    interpreter rounds those away from zero; so must the integer model and the MILP."""
    content = _dyadic_model([[3, 5]], [0], 2.0 ** -4, 2.0 ** -6, s_out)
    q = QuantizedNetwork.from_tflite(content)
    grid = np.array(list(itertools.product(range(-128, 128), repeat=2)))
    ref = _run(content, grid.astype(np.int8)).astype(np.int64)
    np.testing.assert_array_equal(q.forward_int(grid), ref)
    acc = q.layers[0].accumulate(grid)[:, 0]
    r = q.layers[0].ratio[0]  # acc * r is an exact half: 2 acc p = q (mod 2q)
    exact = (2 * acc * r.numerator) % (2 * r.denominator) == r.denominator
    assert exact.any() and (exact & (acc < 0)).any()  # ties of both signs are reachable
    for i in np.flatnonzero(exact)[::max(1, exact.sum() // 6)][:6]:
        for sense in (highspy.ObjSense.kMaximize, highspy.ObjSense.kMinimize):
            assert _fixed_input_value(q, grid[i], 0, sense) == ref[i, 0], (acc[i], sense)


def test_units_that_never_reach_a_clamp_need_no_binary():
    net = trained_looking([2, 8, 1], seed=10, dead=0.0)
    X = np.random.default_rng(0).uniform(-1, 1, (300, 2))
    q = QuantizedNetwork.from_tflite(lossy.quantize(net, "int8", representative=X))
    h = highs()
    x = h.addVariables(2, lb=-128, ub=127, type=highspy.HighsVarType.kInteger)
    hd = milp.add_quantized_network(h, q, [v.index for v in x], quantized_inputs=True)
    # on a single point every unit is fixed: no binary at all
    h2 = highs()
    x2 = h2.addVariables(2, lb=[3.0, -7.0], ub=[3.0, -7.0], type=highspy.HighsVarType.kInteger)
    hd2 = milp.add_quantized_network(h2, q, [v.index for v in x2], quantized_inputs=True)
    assert hd2.n_binaries == 0 and hd.n_binaries > 0


def test_quantization_table_metrics_equal_an_independent_computation(small, tmp_path):
    net, X, models = small
    Y = net.forward(X) + np.random.default_rng(1).normal(0, 0.05, (len(X), 2))
    df = lossy.quantization_table(net, X, Y, modes=["int8", "float16"], latency_samples=20,
                                  directory=tmp_path)
    assert list(df["mode"]) == ["float32", "int8", "float16"]
    for _, row in df.iterrows():
        content = (tmp_path / f"{row['mode']}.tflite").read_bytes()  # the files it measured
        it = _interp(content, "default")
        d, o = it.get_input_details()[0], it.get_output_details()[0]
        if d["dtype"] == np.int8:
            s, z = d["quantization"]
            Xin = np.clip(np.round(X / s) + z, -128, 127).astype(np.int8)  # no ties in random data
        else:
            Xin = X.astype(np.float32)
        P = _run(content, Xin, "default").astype(np.float64)
        if o["dtype"] == np.int8:
            s, z = o["quantization"]
            P = s * (P - z)
        for k in range(2):
            err = P[:, k] - Y[:, k]
            assert row[f"rmse_{k}"] == pytest.approx(np.sqrt(np.mean(err ** 2)), rel=1e-9)
            assert row[f"mae_{k}"] == pytest.approx(np.mean(np.abs(err)), rel=1e-9)
            r2 = 1 - np.sum(err ** 2) / np.sum((Y[:, k] - Y[:, k].mean()) ** 2)
            assert row[f"r2_{k}"] == pytest.approx(r2, rel=1e-9)
        assert row["bytes"] == len(content)
        assert row["gzip_bytes"] == len(gzip.compress(content, 9, mtime=0))
    assert df.loc[df["mode"] == "float32", "size_vs_float32"].item() == 1.0


def test_modes_that_calibrate_refuse_to_run_without_data(small):
    net, _, _ = small
    for mode in lossy.NEEDS_DATA:
        with pytest.raises(ValueError, match="representative"):
            lossy.quantize(net, mode)
    with pytest.raises(ValueError, match="unknown quantization mode 'int4'"):
        lossy.quantize(net, "int4")
    with pytest.raises(UnsupportedLayerError, match="full-integer int8"):
        QuantizedNetwork.from_tflite(lossy.quantize(net, "float16"))


def test_prune_reaches_its_sparsity_per_layer_and_returns_a_plain_model():
    keras = tf_keras()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (600, 2))
    Y = np.sin(3 * X[:, :1]) * X[:, 1:]
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    res = lossy.prune(model, 0.2, 0.8, X, Y, epochs=8, batch_size=32)
    assert set(res.sparsity) == {l.name for l in res.model.layers}
    for name, s in res.sparsity.items():
        assert s == pytest.approx(0.8, abs=0.05), name
    net = from_keras(res.model)  # stripped: a plain chain
    zeros = np.mean(np.concatenate([W.ravel() for W in net.weights]) == 0)
    assert zeros == pytest.approx(0.8, abs=0.05)
    np.testing.assert_allclose(net.forward(X), res.model.predict(X, verbose=0), atol=1e-5)
    assert res.end_step == int(8 * np.ceil(600 / 32) * 0.75)


# --- bad files ---------------------------------------------------------------------------


def test_bad_tflite_files_name_the_file(tmp_path, small):
    _, _, models = small
    content = models["int8"]
    p = tmp_path / "cut.tflite"
    p.write_bytes(content[: len(content) // 2])
    with pytest.raises(ModelFileError, match="cut.tflite"):
        load_model(p)
    q = tmp_path / "noise.tflite"
    q.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(ModelFileError, match="noise.tflite.*not a TFLite flatbuffer"):
        load_model(q)


def _converted(layers, shape):
    keras = tf_keras()
    model = keras.Sequential([keras.Input(shape)] + layers)
    return lossy.quantize(model, "float32")


def test_convolutions_and_lstms_are_refused_naming_the_operator(tmp_path):
    keras = tf_keras()
    conv = _converted([keras.layers.Conv2D(2, 2), keras.layers.Flatten(), keras.layers.Dense(1)], (4, 4, 1))
    (tmp_path / "conv.tflite").write_bytes(conv)
    with pytest.raises(UnsupportedLayerError, match=r"conv.tflite: operator 0 CONV_2D is not supported"):
        load_model(tmp_path / "conv.tflite")
    model = keras.Sequential([keras.Input((5, 2), batch_size=1), keras.layers.LSTM(3),
                              keras.layers.Dense(1)])
    lstm = lossy.quantize(model, "float32")
    with pytest.raises(UnsupportedLayerError, match=r"operator \d+ UNIDIRECTIONAL_SEQUENCE_LSTM"):
        from_tflite(lstm)


def test_a_custom_operator_is_refused_by_name(small):
    _, _, models = small
    m = S.ModelT.InitFromPackedBuf(bytearray(models["float32"]), 0)
    code = m.operatorCodes[m.subgraphs[0].operators[0].opcodeIndex]
    code.builtinCode = code.deprecatedBuiltinCode = S.BuiltinOperator.CUSTOM
    code.customCode = "MyFancyOp"
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    with pytest.raises((UnsupportedLayerError, ModelFileError), match="MyFancyOp|CUSTOM"):
        read_tflite(bytes(b.Output()), verify=False)


def test_integer_conversions_inside_the_graph_are_refused():
    """uint8 input and output: QUANTIZE operators that requantize between integer types."""
    keras = tf_keras()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    X = np.random.default_rng(0).uniform(-1, 1, (100, 2)).astype(np.float32)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([X[i:i + 1]] for i in range(len(X)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.uint8
    with pytest.raises(UnsupportedLayerError, match="operator 0 QUANTIZE converts uint8 to int8"):
        read_tflite(conv.convert())


def test_quantized_inputs_must_be_integer_columns(small):
    net, X, models = small
    q = QuantizedNetwork.from_tflite(models["int8"])
    h = highs()
    x = h.addVariables(3, lb=-128, ub=127)
    with pytest.raises(ValueError, match="input 0 .*needs integer columns"):
        milp.add_quantized_network(h, q, [v.index for v in x], quantized_inputs=True)
