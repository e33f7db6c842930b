"""The six TFLite post-training quantizations and their table of sizes, errors and latencies
(the ``[keras]`` extra: TensorFlow and LiteRT, imported only when called).

>>> from emlpress.keras import quantization
>>> blob = quantization.quantize(model, "int8", representative=X)       # .tflite bytes
>>> quantization.quantization_table(model, X_test, Y_test, representative=X)   # a DataFrame

Modes (``MODES``): ``dynamic`` (int8 weights, float activations), ``int8`` (full integer,
integer-only input and output), ``int8-fallback`` (full integer, float input and output and
float kernels where no integer one exists), ``float16`` (float16 weights), ``16x8`` (int16
activations, int8 weights, integer-only input and output) and ``16x8-fallback`` (float input
and output, float builtins allowed where no 16x8 kernel exists).
``float32`` (no quantization) is the baseline every size is compared with, in the same format.
"""

from __future__ import annotations

import gzip
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from emlpress._atomic import write_bytes_atomic
from emlpress._quiet import with_fd_on_devnull
from emlpress.io.tflite import interpreter, quantize_unclamped, read_tflite, run_interpreter
from emlpress.keras.models import _keras_model
from emlpress.metrics import r2, rmse

__all__ = ["MODES", "NEEDS_DATA", "DESCRIPTIONS", "quantize", "quantization_table",
           "regression_metrics", "predict_tflite", "quantize_report", "table_report"]

MODES = ("dynamic", "int8", "int8-fallback", "float16", "16x8", "16x8-fallback")
#: modes that calibrate activation ranges on representative inputs
NEEDS_DATA = ("int8", "int8-fallback", "16x8", "16x8-fallback")
DESCRIPTIONS = {
    "float32": "no quantization (baseline)",
    "dynamic": "dynamic range: int8 weights, float activations",
    "int8": "full integer, integer-only input and output",
    "int8-fallback": "full integer with float fallback (float input and output)",
    "float16": "float16 weights",
    "16x8": "int16 activations, int8 weights, integer-only input and output",
    "16x8-fallback": "int16 activations, int8 weights, float builtins allowed",
}


def _representative(representative, n_max: int = 2000):
    X = np.asarray(representative, np.float32)
    if X.ndim != 2 or len(X) == 0:
        raise ValueError(f"representative data must be a non-empty 2-D array, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("representative data contains NaN or infinite values")
    if len(X) > n_max:  # calibration needs ranges, not every row: a seeded subsample
        X = X[np.sort(np.random.default_rng(0).choice(len(X), n_max, replace=False))]

    def gen():
        for i in range(len(X)):
            yield [X[i:i + 1]]

    return gen


def quantize(model, mode: str, representative=None, output=None) -> bytes:
    """Convert ``model`` (a tf_keras model or a Network) to a ``.tflite`` flatbuffer with the
    post-training quantization ``mode`` (one of ``MODES``, or ``float32`` for none) and return
    its bytes; ``output`` also writes them to that path. The modes in ``NEEDS_DATA`` calibrate on
    ``representative`` inputs (a 2-D array; up to 2000 rows are used, a seeded subsample beyond)."""
    if mode not in MODES and mode != "float32":
        raise ValueError(f"unknown quantization mode {mode!r}: one of {', '.join(('float32',) + MODES)}")
    if mode in NEEDS_DATA and representative is None:
        raise ValueError(f"quantization mode {mode!r} calibrates activation ranges: pass "
                         "representative= (a 2-D array of typical inputs, e.g. the training set)")
    model = _keras_model(model)
    import tensorflow as tf  # after _keras_model (tf_keras): TF_USE_LEGACY_KERAS first

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode in NEEDS_DATA:
        conv.representative_dataset = _representative(representative)
    ops = tf.lite.OpsSet
    if mode == "int8":
        conv.target_spec.supported_ops = [ops.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    elif mode == "float16":
        conv.target_spec.supported_types = [tf.float16]
    elif mode == "16x8":
        conv.target_spec.supported_ops = [ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        conv.inference_input_type = tf.int16
        conv.inference_output_type = tf.int16
    elif mode == "16x8-fallback":
        conv.target_spec.supported_ops = [ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
                                          ops.TFLITE_BUILTINS]
    with warnings.catch_warnings():
        # integer-only I/O: "Statistics for quantized inputs were expected" (the converter
        # derives them from the calibration, as intended)
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        content = with_fd_on_devnull(2, conv.convert)  # the MLIR converter's notes go to fd 2
    if output is not None:
        write_bytes_atomic(output, content)
    return content


def regression_metrics(P: np.ndarray, Y: np.ndarray, names=None) -> dict:
    """RMSE, MAE and R2 per target column (keys ``rmse_<name>``...; names default to the
    column numbers), in the targets' own units."""
    out = {}
    for k in range(Y.shape[1]):
        n = k if names is None else names[k]
        out[f"rmse_{n}"] = rmse(P[:, k], Y[:, k])
        out[f"mae_{n}"] = float(np.mean(np.abs(P[:, k] - Y[:, k])))
        out[f"r2_{n}"] = r2(P[:, k], Y[:, k])
    return out


def predict_tflite(content: bytes, X, kernels: str = "default") -> np.ndarray:
    """Float outputs of a ``.tflite`` model at float inputs ``X``: integer-only models get
    their inputs quantized with the input tensor's scale and zero point (round half away from
    zero in float32 as TFLite's QUANTIZE kernel does, clamped) and their outputs dequantized,
    so every mode is compared in raw units."""
    X = np.atleast_2d(np.asarray(X, np.float64))
    it = interpreter(content)
    d, o = it.get_input_details()[0], it.get_output_details()[0]
    if np.issubdtype(d["dtype"], np.integer):
        s, z = d["quantization"]
        info = np.iinfo(d["dtype"])
        Xin = np.clip(quantize_unclamped(X, s, z), info.min, info.max).astype(d["dtype"])
    else:
        Xin = X.astype(np.float32)
    Y = np.asarray(run_interpreter(content, Xin, kernels), np.float64)
    if np.issubdtype(o["dtype"], np.integer):
        s, z = o["quantization"]
        Y = s * (Y - z)
    return Y


def _latency(content: bytes, X: np.ndarray, n: int = 200) -> float:
    """Median seconds of one single-sample ``invoke`` (the deployed use), default kernels."""
    it = interpreter(content)
    with_fd_on_devnull(2, it.allocate_tensors)  # LiteRT's delegate note
    d = it.get_input_details()[0]
    Xin = np.zeros((1, X.shape[1]), d["dtype"])
    it.set_tensor(d["index"], Xin)
    it.invoke()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def quantization_table(model, X, Y, modes=MODES, representative=None, directory=None,
                       latency_samples: int = 200) -> pd.DataFrame:
    """Per mode (and the float32 baseline): the ``.tflite`` size in bytes and gzip-compressed
    (what pruning's zeros are for), the size relative to float32, RMSE/MAE/R2 per target on
    ``X, Y`` in raw units computed on dequantized outputs (LiteRT's default interpreter), the
    largest difference between the dequantized network (``from_tflite``) and the interpreter on
    ``X`` (what a dequantized MILP embedding ignores), conversion seconds and interpreter
    seconds per single-sample call. ``representative`` defaults to ``X`` (pass the training
    inputs to keep test data out of calibration); ``directory`` keeps every ``.tflite`` file."""
    X = np.atleast_2d(np.asarray(X, np.float64))
    Y = np.asarray(Y, np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    rep = X if representative is None else representative
    modes = list(modes)
    bad = [m for m in modes if m not in MODES and m != "float32"]
    if bad:
        raise ValueError(f"unknown quantization mode {bad[0]!r}: one of {', '.join(('float32',) + MODES)}")
    kmodel = _keras_model(model)
    rows = []
    for mode in ["float32"] + [m for m in modes if m != "float32"]:
        t0 = time.perf_counter()
        content = quantize(kmodel, mode, representative=rep)
        conv_s = time.perf_counter() - t0
        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(Path(directory) / f"{mode}.tflite", content)
        P = predict_tflite(content, X)
        net = read_tflite(content, verify=False).network()  # the converter's own output
        row = {"mode": mode, "description": DESCRIPTIONS[mode], "bytes": len(content),
               "gzip_bytes": len(gzip.compress(content, 9, mtime=0))}
        row.update(regression_metrics(P, Y))
        row["dequantized_max_diff"] = float(np.max(np.abs(net.forward(X) - P)))
        row["convert_s"] = conv_s
        row["latency_us"] = _latency(content, X, latency_samples) * 1e6
        rows.append(row)
    df = pd.DataFrame(rows)
    base = df.loc[df["mode"] == "float32"].iloc[0]
    df.insert(3, "size_vs_float32", df["bytes"] / base["bytes"])
    df.insert(5, "gzip_vs_float32", df["gzip_bytes"] / base["gzip_bytes"])
    return df


def quantize_report(source: str, net, output: str, mode: str, n_bytes: int,
                    calibration: str | None = None) -> str:
    """What ``emlpress quantize -o`` prints (lines, no final newline): the network read from
    ``source``, the file written, its mode and size in bytes, and where the calibration
    inputs came from (``calibration``, shown for the modes of :data:`NEEDS_DATA`)."""
    said = f"; calibration: {calibration}" if mode in NEEDS_DATA and calibration else ""
    return (f"{source}: {net}\n"
            f"wrote {output}: mode {mode} ({DESCRIPTIONS[mode]}), {n_bytes} bytes{said}")


def table_report(df: pd.DataFrame, source: str, net, data: str) -> str:
    """What ``emlpress quantize --table`` prints for :func:`quantization_table`'s ``df``
    (lines, no final newline): the network read from ``source``, where the ``data`` came
    from, and the table without its descriptions. ``RuntimeError`` naming the metrics and
    modes when a metric is NaN (an interpreter returned NaN or infinite outputs): never a
    NaN figure in a table that looks fine."""
    metrics = [c for c in df.columns if c.split("_")[0] in ("rmse", "mae", "r2")] + [
        "dequantized_max_diff"]
    nan = df[metrics].isna().any()
    if nan.any():
        raise RuntimeError(f"quantization table: {', '.join(nan[nan].index)} came out NaN "
                           f"(modes {', '.join(df.loc[df[metrics].isna().any(axis=1), 'mode'])}): "
                           "an interpreter returned NaN or infinite outputs")
    cols = [c for c in df.columns if c != "description"]
    return "\n".join([
        f"{source}: {net}; data: {data}",
        "metrics in raw units on dequantized outputs (LiteRT's default interpreter); "
        "dequantized_max_diff: largest |from_tflite(...).forward - interpreter|",
        df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")])
