"""TFLite (LiteRT) flatbuffers: a dequantized :class:`Network`, and the exact integer model of a
full-integer (int8) one.

Supported graphs: one input, one output, a chain of ``FULLY_CONNECTED`` operators with no or a
fused ReLU activation, with ``QUANTIZE``/``DEQUANTIZE`` of activations (float I/O around an
integer model) and ``DEQUANTIZE`` of constant weights (float16 models). Any other operator
(a convolution, an LSTM, a custom operator, ...) raises :class:`UnsupportedLayerError` naming
it and its index; a file that is not a TFLite flatbuffer, or a truncated one, raises
:class:`~emlpress.io.ModelFileError` naming the file. Nothing is ever silently left out.

The interpreter is LiteRT's (``ai_edge_litert``; ``tf.lite.Interpreter`` is deprecated in
TensorFlow 2.20+ in favour of it and is only used when LiteRT is absent). Its CPU kernels do
not agree with each other on int8 arithmetic: by default it hands the whole graph to XNNPACK,
which requantizes accumulators in float32 (rounding half to even); its builtin optimized
kernels round differently again; its reference kernels (``kernels="reference"``) are the
platform-independent semantics, so :class:`QuantizedNetwork` reproduces them bit for bit:
``acc = sum_j W[i,j] (x_j - z_in) + b_i`` in integers, ``y = round(acc * input_scale *
weight_scale / output_scale)`` (the multiplier in float64 from the float32 scales,
``std::round``: ties away from zero), then ``y + z_out`` clamped to [-128, 127] (a fused ReLU
clamps at ``z_out``). This rule was measured, not read: the fixed-point forms (gemmlowp's
double rounding, TFLite's single rounding ``(acc M + 2^(s-1)) >> s``) each differ from this
interpreter on inputs whose product is an exact half.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from emlpress.io._chain import Affine, Relu, UnsupportedLayerError, build_network
from emlpress.network import Network

__all__ = ["from_tflite", "read_tflite", "TFLiteModel", "QuantizedNetwork", "QuantizedLayer",
           "interpreter", "run_interpreter", "round_half_away", "quantize_unclamped"]

_FILE_ID = b"TFL3"


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as S
    except ImportError:
        try:
            from tensorflow.lite.python import schema_py_generated as S
        except ImportError as e:
            raise ImportError("reading .tflite files needs LiteRT: pip install 'emlpress[keras]' "
                              "(or ai-edge-litert)") from e
    return S


_NP_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16,
             9: np.int8, 10: np.float64}
_TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16",
               9: "int8", 10: "float64"}


@dataclass
class _Tensor:
    index: int
    name: str
    dtype: int
    shape: tuple
    data: np.ndarray | None  # constant values (raw storage type) or None for activations
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    axis: int

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES.get(self.dtype, f"type {self.dtype}")

    def dequantized(self) -> np.ndarray:
        """Float values of a constant tensor (scale * (q - zero point), per axis if so)."""
        d = self.data.astype(np.float64)
        if self.scale is None or self.dtype in (0, 1, 10):
            return d
        shape = [1] * d.ndim
        if self.scale.size > 1:
            shape[self.axis] = -1
        s = self.scale.astype(np.float64).reshape(shape)
        z = self.zero_point.astype(np.float64).reshape(shape) if self.zero_point is not None else 0
        return s * (d - z)


@dataclass
class _FC:
    index: int  # operator index in the graph
    x: _Tensor
    W: _Tensor  # the weights as stored (int8, or float after a DEQUANTIZE of float16)
    b: _Tensor | None
    y: _Tensor
    relu: bool
    w_float: np.ndarray  # dequantized weights (n_out, n_in)
    b_float: np.ndarray


@dataclass
class TFLiteModel:
    """A parsed TFLite chain of fully connected layers. ``kind`` is ``float32``, ``float16``
    (float16 weights), ``dynamic`` (int8 weights, float activations), ``int8`` (full integer)
    or ``int16x8`` (int16 activations, int8 weights); ``float_io`` tells whether the model's
    input and output are float (then ``QUANTIZE``/``DEQUANTIZE`` surround the integer layers)."""

    source: str
    content: bytes
    kind: str
    layers: list
    input: _Tensor
    output: _Tensor
    float_io: bool

    @property
    def n_in(self) -> int:
        return int(self.layers[0].w_float.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.layers[-1].w_float.shape[0])

    def network(self) -> Network:
        ops = []
        for fc in self.layers:
            where = f"operator {fc.index} FULLY_CONNECTED"
            ops.append(Affine(fc.w_float, fc.b_float, where))
            if fc.relu:
                ops.append(Relu(where))
        return build_network(ops, self.source)


def _read_bytes(path_or_bytes) -> tuple[bytes, str]:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), "tflite model"
    p = Path(path_or_bytes)
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    return p.read_bytes(), str(p)


def _file_error(source: str, what: str):
    from emlpress.io import ModelFileError

    return ModelFileError(f"{source}: {what}")


def read_tflite(path_or_bytes, verify: bool = True) -> TFLiteModel:
    """Parse a ``.tflite`` file (or its bytes) into a :class:`TFLiteModel`.

    ``verify`` (default) also loads it in the interpreter, whose flatbuffer verifier rejects
    truncated or inconsistent files that a parser alone could half read."""
    content, source = _read_bytes(path_or_bytes)
    if len(content) < 8 or content[4:8] != _FILE_ID:
        raise _file_error(source, "not a TFLite flatbuffer (no 'TFL3' identifier)")
    S = _schema()
    try:
        model = S.ModelT.InitFromPackedBuf(bytearray(content), 0)
        graphs = model.subgraphs or []
    except Exception as e:  # noqa: BLE001 - a corrupt buffer fails anywhere inside the parser
        raise _file_error(source, f"not a readable TFLite flatbuffer, truncated or corrupt "
                                  f"({type(e).__name__}: {e})") from None
    if verify:
        try:
            interpreter(content)
        except ImportError:
            pass
        except Exception as e:  # noqa: BLE001
            raise _file_error(source, f"the TFLite interpreter refuses it, truncated or corrupt "
                                      f"({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})"
                              ) from None
    if len(graphs) != 1:
        raise UnsupportedLayerError(f"{source}: {len(graphs)} subgraphs (only one is supported)")
    try:
        return _parse(S, model, graphs[0], content, source)
    except (UnsupportedLayerError, ValueError):
        raise
    except Exception as e:  # noqa: BLE001
        raise _file_error(source, f"not a readable TFLite model ({type(e).__name__}: {e})") from None


def _op_name(S, model, op) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    bc = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
    name = names.get(bc, f"builtin {bc}")
    if name == "CUSTOM":
        custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
        name = f"CUSTOM '{custom}'"
    return name


def _tensor(model, g, i: int) -> _Tensor:
    t = g.tensors[i]
    buf = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else None
    shape = tuple(int(s) for s in (t.shape if t.shape is not None else ()))
    data = None
    if buf is not None and len(buf):
        dt = _NP_TYPES.get(int(t.type))
        if dt is None:
            raise UnsupportedLayerError(f"tensor {i} '{t.name}': storage type {t.type} is not supported")
        data = np.frombuffer(bytes(buf), dtype=dt).reshape(shape)
    q = t.quantization
    scale = zp = None
    axis = 0
    if q is not None and q.scale is not None and len(q.scale):
        scale = np.asarray(q.scale, np.float32)
        zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else np.zeros(scale.size), np.int64)
        axis = int(q.quantizedDimension)
    name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
    return _Tensor(i, name, int(t.type), shape, data, scale, zp, axis)


def _parse(S, model, g, content: bytes, source: str) -> TFLiteModel:
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise UnsupportedLayerError(f"{source}: {len(g.inputs)} inputs and {len(g.outputs)} "
                                    "outputs (only one of each is supported)")
    consts: dict[int, np.ndarray] = {}  # float values of DEQUANTIZEd constants (float16 weights)
    const_src: dict[int, _Tensor] = {}
    cur = int(g.inputs[0])  # the activation tensor flowing through the chain
    layers: list[_FC] = []
    relu_act = {int(S.ActivationFunctionType.RELU)}
    none_act = int(S.ActivationFunctionType.NONE)
    for k, op in enumerate(g.operators or []):
        name = _op_name(S, model, op)
        ins = [int(i) for i in (op.inputs if op.inputs is not None else [])]
        outs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
        where = f"{source}: operator {k} {name}"
        if name == "DEQUANTIZE" and ins and ins[0] != cur:
            t = _tensor(model, g, ins[0])
            if t.data is None:
                raise UnsupportedLayerError(f"{where} dequantizes a tensor that is neither the "
                                            "activation nor a constant")
            consts[outs[0]] = t.dequantized()
            const_src[outs[0]] = t
            continue
        if name in ("QUANTIZE", "DEQUANTIZE"):
            if ins[0] != cur:
                raise UnsupportedLayerError(f"{where} is not on the chain of activations")
            a, b = _tensor(model, g, ins[0]), _tensor(model, g, outs[0])
            floats = (0, 10)
            if (a.dtype in floats) == (b.dtype in floats):  # a requantization: not modelled
                raise UnsupportedLayerError(f"{where} converts {a.type_name} to {b.type_name} "
                                            "(only float <-> int8/int16 at the ends are supported)")
            cur = outs[0]
            continue
        if name != "FULLY_CONNECTED":
            raise UnsupportedLayerError(f"{where} is not supported (only FULLY_CONNECTED with "
                                        "ReLU or no activation, QUANTIZE, DEQUANTIZE)")
        if not ins or ins[0] != cur:
            raise UnsupportedLayerError(f"{where} does not take the previous layer's output")
        opt = op.builtinOptions
        act = int(getattr(opt, "fusedActivationFunction", none_act))
        if act not in relu_act and act != none_act:
            acts = {v: k2 for k2, v in vars(S.ActivationFunctionType).items() if not k2.startswith("_")}
            raise UnsupportedLayerError(f"{where}: fused activation {acts.get(act, act)} is not "
                                        "supported (only RELU or NONE)")
        if int(getattr(opt, "weightsFormat", 0)) != 0:
            raise UnsupportedLayerError(f"{where}: shuffled weights are not supported")
        x = _tensor(model, g, ins[0])

        def constant(i: int, what: str):
            """(tensor as stored, float values) of a constant input (or a DEQUANTIZE of one)."""
            if i in consts:
                return const_src[i], consts[i]
            t = _tensor(model, g, i)
            if t.data is None:
                raise UnsupportedLayerError(f"{where}: its {what} is not a constant tensor")  # noqa: B023  (called in this iteration)
            return t, t.dequantized()

        wt, w_float = constant(ins[1], "weights")
        bt = None
        if len(ins) > 2 and ins[2] >= 0:
            bt, b_float = constant(ins[2], "bias")
        else:
            b_float = np.zeros(w_float.shape[0])
        if w_float.ndim != 2:
            raise UnsupportedLayerError(f"{where}: weights of shape {w_float.shape}")
        y = _tensor(model, g, outs[0])
        layers.append(_FC(k, x, wt, bt, y, act in relu_act, w_float.astype(np.float64),
                          np.asarray(b_float, np.float64).reshape(-1)))
        cur = outs[0]
    if not layers:
        raise UnsupportedLayerError(f"{source}: no FULLY_CONNECTED operator found")
    if cur != int(g.outputs[0]):
        raise UnsupportedLayerError(f"{source}: the graph's output is not the end of the chain")
    inp, out = _tensor(model, g, int(g.inputs[0])), _tensor(model, g, int(g.outputs[0]))
    for t, what in ((inp, "input"), (out, "output")):
        if t.dtype not in (0, 10, 9, 7):
            raise UnsupportedLayerError(f"{source}: the model's {what} is {t.type_name} "
                                        "(supported: float32, int8, int16)")
    act_types = {fc.x.dtype for fc in layers} | {fc.y.dtype for fc in layers}
    w_types = {fc.W.dtype for fc in layers}
    if act_types == {9}:
        kind = "int8"
    elif act_types == {7}:
        kind = "int16x8"
    elif act_types <= {0} and 9 in w_types:  # small tensors may stay float32
        kind = "dynamic"
    elif act_types <= {0} and 1 in w_types:
        kind = "float16"
    elif act_types <= {0}:
        kind = "float32"
    else:
        kind = "mixed"
    return TFLiteModel(source, content, kind, layers, inp, out, inp.dtype in (0, 10))


def from_tflite(path_or_bytes) -> Network:
    """A :class:`Network` with the dequantized weights of a ``.tflite`` model (float32,
    float16, dynamic-range int8, full-integer int8 or 16x8; per-tensor or per-axis scales).
    It ignores what the integer interpreter also does (input and activation rounding,
    clamping, requantization): :class:`QuantizedNetwork` models that exactly, and
    ``emlpress.compress.lossy.quantization_table`` reports the difference."""
    return read_tflite(path_or_bytes).network()


# ---------------------------------------------------------------------------------------------
# the integer arithmetic of the reference kernels


def quantize_unclamped(x, scale: float, zero_point: int) -> np.ndarray:
    """``round(float32(x) / float32(scale)) + zero_point``, half away from zero, as TFLite's
    reference ``QUANTIZE`` kernel computes it (then clamped to the integer type)."""
    return round_half_away(np.asarray(x, np.float32) / np.float32(scale)) + int(zero_point)


def round_half_away(v: np.ndarray) -> np.ndarray:
    """``std::round`` (TfLiteRound): to nearest, ties away from zero; exact for |v| < 2^52."""
    v = np.asarray(v, np.float64)
    a = np.abs(v)
    r = np.floor(a)
    return (np.where(a - r >= 0.5, r + 1, r) * np.sign(v)).astype(np.int64)


@dataclass
class QuantizedLayer:
    """One int8 fully connected layer as LiteRT's reference kernel computes it: the int32
    accumulator times the real multiplier ``scale = s_in * s_w / s_out`` (float64, from the
    float32 scales), rounded with ``std::round``; ``ratio`` is that multiplier as the exact
    fraction of the float32 scales (the MILP's rows use it)."""

    W: np.ndarray  # int64 (n_out, n_in), int8 values
    b: np.ndarray  # int64 (n_out,), int32 values
    z_in: int
    z_out: int
    s_out: float
    scale: np.ndarray  # float64 (n_out,)
    ratio: list  # fractions.Fraction per output
    act_min: int
    act_max: int
    relu: bool

    def accumulate(self, xq: np.ndarray) -> np.ndarray:
        return (np.asarray(xq, np.int64) - self.z_in) @ self.W.T + self.b

    def requantize(self, acc: np.ndarray) -> np.ndarray:
        """The unclamped output minus its zero point: ``round(acc * scale)`` in float64,
        ties away from zero (measured to match the reference kernel bit for bit; its
        fixed-point ``M >> s`` forms round some exact halves the other way)."""
        return round_half_away(np.asarray(acc, np.int64).astype(np.float64) * self.scale)

    def forward(self, xq: np.ndarray) -> np.ndarray:
        return np.clip(self.requantize(self.accumulate(xq)) + self.z_out, self.act_min, self.act_max)


@dataclass
class QuantizedNetwork:
    """The exact integer function of a full-integer (int8) TFLite model, as LiteRT's reference
    kernels compute it. ``quantize_input`` is the ``QUANTIZE`` operator (or what a user feeding
    an integer-only model must do): ``round(x / s_in)`` half away from zero in float32, plus
    ``z_in``, clamped; ``dequantize_output`` is ``s_out * (q - z_out)``."""

    source: str
    content: bytes
    layers: list
    s_in: float
    z_in: int
    s_out: float
    z_out: int
    float_io: bool
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    _interp: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_tflite(cls, path_or_bytes) -> "QuantizedNetwork":
        m = path_or_bytes if isinstance(path_or_bytes, TFLiteModel) else read_tflite(path_or_bytes)
        if m.kind != "int8":
            raise UnsupportedLayerError(
                f"{m.source}: a {m.kind} model; the exact integer embedding needs a full-integer "
                "int8 model (quantize mode 'int8' or 'int8-fallback')")
        layers = []
        for fc in m.layers:
            x, W, y = fc.x, fc.W, fc.y
            if W.dtype != 9 or W.scale is None or (W.zero_point is not None and np.any(W.zero_point != 0)):
                raise UnsupportedLayerError(f"{m.source}: operator {fc.index}: weights are not "
                                            "symmetric int8")
            s_x, z_x = float(x.scale[0]), int(x.zero_point[0])
            s_y, z_y = float(y.scale[0]), int(y.zero_point[0])
            n_out = W.data.shape[0]
            s_w = np.broadcast_to(W.scale.astype(np.float64), (n_out,))
            scale = (np.float64(np.float32(s_x)) * s_w.astype(np.float32).astype(np.float64)
                     / np.float64(np.float32(s_y)))
            ratio = [Fraction(float(np.float32(s_x))) * Fraction(float(np.float32(sw)))
                     / Fraction(float(np.float32(s_y))) for sw in s_w]
            b = (fc.b.data.astype(np.int64) if fc.b is not None else np.zeros(n_out, np.int64))
            lo = max(-128, z_y) if fc.relu else -128
            layers.append(QuantizedLayer(W.data.astype(np.int64), b, z_x, z_y, s_y, scale, ratio,
                                         lo, 127, fc.relu))
        first, last = m.layers[0].x, m.layers[-1].y
        return cls(m.source, m.content, layers, float(first.scale[0]), int(first.zero_point[0]),
                   float(last.scale[0]), int(last.zero_point[0]), m.float_io)

    @property
    def n_in(self) -> int:
        return int(self.layers[0].W.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.layers[-1].W.shape[0])

    def quantize_input_unclamped(self, x) -> np.ndarray:
        """``round(x / s_in) + z_in`` before the clamp to [-128, 127] (float32 division, round
        half away from zero, as the reference ``QUANTIZE`` kernel)."""
        return quantize_unclamped(x, self.s_in, self.z_in)

    def quantize_input(self, x) -> np.ndarray:
        return np.clip(self.quantize_input_unclamped(x), -128, 127)

    def dequantize_output(self, q) -> np.ndarray:
        return self.s_out * (np.asarray(q, np.float64) - self.z_out)

    def forward_int(self, xq) -> np.ndarray:
        h = np.atleast_2d(np.asarray(xq, np.int64))
        for layer in self.layers:
            h = layer.forward(h)
        return h

    def forward(self, x) -> np.ndarray:
        """Float inputs to dequantized outputs through the exact integer arithmetic."""
        return self.dequantize_output(self.forward_int(self.quantize_input(np.atleast_2d(x))))

    def interpreter_int(self, xq) -> np.ndarray:
        """The reference interpreter's int8 outputs at int8 inputs ``xq`` (for float-I/O models
        the inputs are fed as their dequantized floats, which quantize back to ``xq``)."""
        xq = np.atleast_2d(np.asarray(xq, np.int64))
        if self.float_io:
            y = run_interpreter(self.content, (self.s_in * (xq - self.z_in)).astype(np.float32),
                                kernels="reference", cache=self._interp)
            return np.rint(np.asarray(y, np.float64) / self.s_out).astype(np.int64) + self.z_out
        return run_interpreter(self.content, xq.astype(np.int8), kernels="reference",
                               cache=self._interp).astype(np.int64)

    def interpreter_float(self, x) -> np.ndarray:
        """The reference interpreter at float inputs, outputs dequantized (for integer-only
        models the inputs are quantized by :meth:`quantize_input` first)."""
        x = np.atleast_2d(np.asarray(x, np.float64))
        if self.float_io:
            return np.asarray(run_interpreter(self.content, x.astype(np.float32), kernels="reference",
                                              cache=self._interp), np.float64)
        q = run_interpreter(self.content, self.quantize_input(x).astype(np.int8), kernels="reference",
                            cache=self._interp)
        return self.dequantize_output(q)


# ---------------------------------------------------------------------------------------------
# the interpreter


def interpreter(content: bytes, kernels: str = "default", num_threads: int | None = 1):
    """A LiteRT interpreter for ``content``. ``kernels``: ``default`` (what
    ``Interpreter(model_content=...)`` uses: the XNNPACK delegate), ``builtin`` (TFLite's
    optimized kernels, no delegate) or ``reference`` (the reference kernels)."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        import tensorflow as tf

        Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    resolver = {"default": OpResolverType.AUTO,
                "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                "reference": OpResolverType.BUILTIN_REF}
    if kernels not in resolver:
        raise ValueError(f"kernels must be one of {sorted(resolver)}, got {kernels!r}")
    from emlpress._quiet import with_fd_on_devnull

    # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on fd 2
    return with_fd_on_devnull(2, lambda: Interpreter(
        model_content=bytes(content), experimental_op_resolver_type=resolver[kernels],
        num_threads=num_threads))


def run_interpreter(content: bytes, X: np.ndarray, kernels: str = "default", cache: dict | None = None):
    """Run the model on the batch ``X`` (already in the input tensor's dtype)."""
    key = (kernels, X.shape)
    it = cache.get(key) if cache is not None else None
    if it is None:
        from emlpress._quiet import with_fd_on_devnull

        it = interpreter(content, kernels)
        d = it.get_input_details()[0]
        it.resize_tensor_input(d["index"], list(X.shape))
        with_fd_on_devnull(2, it.allocate_tensors)  # LiteRT's "Created ... delegate" note
        if cache is not None:
            cache.clear()  # one shape at a time: interpreters hold their buffers
            cache[key] = it
    d, o = it.get_input_details()[0], it.get_output_details()[0]
    it.set_tensor(d["index"], np.ascontiguousarray(X, dtype=d["dtype"]))
    it.invoke()
    return it.get_tensor(o["index"]).copy()
