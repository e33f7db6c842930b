"""Exact MILP embedding of a full-integer (int8) TFLite model: what the reference interpreter
computes, not its dequantized approximation.

Per unit of layer ``l`` (see :class:`emlpress.io.tflite.QuantizedNetwork` for the arithmetic):

- the accumulator ``acc = sum_j W[i,j] (q_j - z_in) + b_i`` is an integer affine expression of
  the integer inputs ``q`` (no variable);
- the requantized value ``t = round(acc r)`` (``r = p / q`` the exact multiplier of the
  float32 scales, ties away from zero) is one integer variable and two inequalities on the
  residue ``acc r - t``, a multiple of ``1/q``: within ``1/2 - 1/(2q)`` of 0 where no tie is
  reachable (a tie needs ``acc`` to be an odd multiple of ``q/2``, so only scales whose ratio
  has a small denominator have any), narrowed to the residues the accumulator range reaches
  when it is short; where ties are reachable, the sides depend on the sign of ``acc`` (a
  binary only when ``acc`` takes both signs). The float64 multiplier the interpreter uses
  rounds like ``r`` wherever the float64 product's error (``|acc r| 2^-52``) is below the
  residue's distance from 1/2 (at least ``1/(2q)``): always for ``q < 2^36`` and
  ``|acc r| < 2^14``, and with a probability of about ``2^-40`` per accumulator otherwise;
- the output ``clamp(t + z_out, act_min, 127)``: no variable when ``t``'s range never reaches
  a clamp, else one binary per clamp it can reach (a fused ReLU is the clamp at ``z_out``).
  Ranges come from exact integer interval arithmetic on the inputs' box.

Float inputs ``x`` are quantized as the ``QUANTIZE`` operator does, ``r = round(x / s_in) +
z_in`` (an integer variable, ``|x / s_in - (r - z_in)| <= 1/2 - eps``, excluding points within
``eps`` quantization steps of a rounding tie, where float32 rounding decides), then clamped to
[-128, 127]. Outputs are dequantized: ``y = s_out (q - z_out)``.

:func:`emlpress.milp.solve` verifies every solution against LiteRT's reference interpreter at
the MILP's input, bit for bit; ``handle.verify_bits(solution)`` gives the details.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from emlpress import kernels
from emlpress._highs import Builder, col_name, highs, tighten_tolerances
from emlpress.bounds.relaxation import add_block
from emlpress.io.tflite import QuantizedNetwork
from emlpress.milp.handle import PredictorHandle, _new_inputs

__all__ = ["add_quantized_network", "QuantizedHandle", "TIE_MARGIN", "INT_TOL"]

#: quantization steps kept away from an input rounding tie, beyond the float32 rounding of
#: x and x / s (2^-22 |x / s| more, per input)
TIE_MARGIN = 1e-6
#: integrality and feasibility tolerance the encoding needs (set on the model when looser)
INT_TOL = 1e-9


@dataclass
class _Val:
    """An integer quantity: ``x[col] + off`` (``col`` = -1: the constant ``off``), in
    [lo, hi]."""

    col: int
    off: int
    lo: int
    hi: int


def _clamp_low(B: Builder, v: _Val, c: int, stats: dict) -> _Val:
    """max(v, c) exactly: a binary only when v's range crosses c."""
    if v.lo >= c:
        return v
    if v.hi <= c:
        return _Val(-1, c, c, c)
    o = B.col(c, v.hi, False)
    d = B.col(0, 1, True)
    stats["binaries"] += 1
    M1, M2 = c - v.lo, v.hi - c
    if v.col < 0:  # cannot happen: a constant has lo == hi
        raise AssertionError
    B.row([o, v.col], [1, -1], v.off, np.inf)                     # o >= v
    B.row([o, v.col, d], [1, -1, M1], -np.inf, v.off + M1)        # o <= v + M1 (1 - d)
    B.row([o, d], [1, -M2], -np.inf, c)                           # o <= c + M2 d
    return _Val(o, 0, c, v.hi)


def _clamp_high(B: Builder, v: _Val, c: int, stats: dict) -> _Val:
    """min(v, c) exactly: a binary only when v's range crosses c."""
    if v.hi <= c:
        return v
    if v.lo >= c:
        return _Val(-1, c, c, c)
    o = B.col(v.lo, c, False)
    g = B.col(0, 1, True)
    stats["binaries"] += 1
    M1, M2 = v.hi - c, c - v.lo
    B.row([o, v.col], [1, -1], -np.inf, v.off)                    # o <= v
    B.row([o, v.col, g], [1, -1, M1], v.off, np.inf)              # o >= v - M1 g
    B.row([o, g], [1, -M2], v.lo, np.inf)                         # o >= c - M2 (1 - g)
    return _Val(o, 0, v.lo, c)


#: enumerate a unit's accumulator range (to set its rows' sides to the residues it reaches)
#: when it holds at most this many integers
ENUMERATE_MAX = 1 << 21


def _requantize_rows(B: Builder, r, cols, w, c0: int, acc_lo: int, acc_hi: int,
                     t_lo: int, t_hi: int, stats: dict) -> _Val:
    """Rows making the integer column t equal round(acc * r), ties away from zero, for the
    accumulator acc = c0 + sum w_k x[cols_k] in [acc_lo, acc_hi] and the exact multiplier
    r = p / q (a Fraction). The residue acc r - t is a multiple of 1/q in [-1/2, 1/2]; it is
    -1/2 only at a positive tie and +1/2 only at a negative one, and a tie needs acc to be
    an odd multiple of q/2. Without reachable ties: -1/2 + 1/(2q) <= acc r - t <= 1/2 - 1/(2q)
    (narrowed to the residues reached when the range is short enough to enumerate); with
    them: acc r - t - sigma/q in [-1/2, 1/2 - 1/q], sigma = [acc < 0] (a binary only where
    acc takes both signs)."""
    t = B.col(t_lo, t_hi, True)
    q = r.denominator
    m = float(r)
    rc, rv = list(cols) + [t], [m * v for v in w] + [-1.0]
    if q == 1:  # an integer multiplier: no rounding
        B.row(rc, rv, -m * c0, -m * c0)
        return _Val(t, 0, t_lo, t_hi)
    ties = q % 2 == 0 and max(abs(acc_lo), abs(acc_hi)) >= q // 2
    if not ties:
        lo_r, hi_r = -0.5 + 0.5 / q, 0.5 - 0.5 / q
        if acc_hi - acc_lo < ENUMERATE_MAX:
            a = np.arange(acc_lo, acc_hi + 1, dtype=np.int64)
            # exact residues: (a p mod q) / q, shifted into (-1/2, 1/2)
            num = (a * np.int64(r.numerator)) % np.int64(q) if q < 2 ** 31 else None
            if num is not None:
                res = np.where(2 * num > q, num - q, num)
                lo_r, hi_r = float(res.min()) / q, float(res.max()) / q
        B.row(rc, rv, lo_r - m * c0, hi_r - m * c0)
        return _Val(t, 0, t_lo, t_hi)
    shift = 0.0
    if acc_hi <= -1:
        shift = 1.0 / q
    elif acc_lo < 0:
        sig = B.col(0, 1, True)
        stats["binaries"] += 1
        rc.append(sig)
        rv.append(-1.0 / q)
        B.row(list(cols) + [sig], list(w) + [float(acc_hi + 1)], -np.inf, acc_hi - c0)  # sigma=1: acc <= -1
        B.row(list(cols) + [sig], list(w) + [float(-acc_lo)], -c0, np.inf)              # sigma=0: acc >= 0
    B.row(rc, rv, -0.5 - m * c0 + shift, 0.5 - 1.0 / q - m * c0 + shift)
    return _Val(t, 0, t_lo, t_hi)


class _Relaxation:
    """The LP relaxation of the encoding built so far (the inputs' box and the builder's
    columns and rows, integrality dropped), for rigorous bounds on accumulators: HiGHS'
    optimum is only a hint; the bound kept is certified from its duals
    (``kernels.safe_lower_bound``) and rounded inward to integers (accumulators are integers)."""

    def __init__(self, B: Builder, in_cols, in_lo, in_hi):
        self.map = {int(c): k for k, c in enumerate(in_cols)}
        n_in = len(in_cols)
        self.col_lo = np.concatenate([np.asarray(in_lo, float), np.asarray(B.lb, float)])
        self.col_hi = np.concatenate([np.asarray(in_hi, float), np.asarray(B.ub, float)])
        self.first, self.n_in = B.first, n_in
        starts, idx, val = [0], [], []
        for cols, vals in B.rows:
            idx.extend(self._local(c) for c in cols)
            val.extend(vals)
            starts.append(len(idx))
        self.starts = np.asarray(starts, np.int32)
        self.idx = np.asarray(idx, np.int32)
        self.val = np.asarray(val, np.float64)
        self.row_lo = np.asarray(B.rows_lo, float)
        self.row_hi = np.asarray(B.rows_hi, float)
        h = self.h = highs()
        h.setOptionValue("output_flag", False)
        add_block(h, kernels.LpBlock(col_lower=self.col_lo, col_upper=self.col_hi,
                                     binary=np.zeros(0, np.int32), row_lower=self.row_lo,
                                     row_upper=self.row_hi, starts=self.starts,
                                     indices=self.idx, values=self.val))

    def _local(self, c: int) -> int:
        c = int(c)
        return self.map[c] if c in self.map else self.n_in + c - self.first

    def min_of(self, cols, coefs) -> float:
        """A rigorous lower bound of sum coefs * x[cols] over the relaxation (-inf if HiGHS
        fails)."""
        cost = np.zeros(self.col_lo.size)
        for c, w in zip(cols, coefs):
            cost[self._local(c)] += w
        h = self.h
        h.changeColsCost(cost.size, np.arange(cost.size, dtype=np.int32), cost)
        h.run()
        sol = h.getSolution()
        if not sol.dual_valid:
            h.clearSolver()
            return -np.inf
        y = np.asarray(sol.row_dual, np.float64)
        return float(kernels.safe_lower_bound(cost, self.col_lo, self.col_hi, self.row_lo, self.row_hi,
                                            self.starts, self.idx, self.val, y))


@dataclass
class QuantizedHandle(PredictorHandle):
    """One exact int8 network inside a HiGHS model. ``inputs``/``outputs`` are the float
    input and dequantized output variables; ``q_inputs``/``q_outputs`` the int8 values
    (:class:`_Val`: a column plus an offset, or a constant)."""

    name: str
    qnet: QuantizedNetwork
    input_cols: np.ndarray
    q_inputs: list
    q_outputs: list
    output_cols: np.ndarray
    n_vars: int
    n_binaries: int
    n_integers: int
    n_constraints: int
    n_nonzeros: int
    encode_s: float
    quantized_inputs: bool
    _h: object = field(repr=False, default=None)

    def _mismatch(self, diff: float, scale: float) -> str | None:
        """Any difference is one: solve() verifies bit for bit against the interpreter."""
        if diff > 0:
            return (f"network {self.name!r}: the MILP's int8 outputs differ from LiteRT's "
                    f"reference interpreter at the MILP's input by {diff:.3g} (dequantized); "
                    "see handle.verify_bits(solution)")
        return None

    def stats(self) -> dict:
        return {"network": self.name, "sizes": [self.qnet.n_in] + [l.W.shape[0] for l in self.qnet.layers],
                "variables": self.n_vars, "binaries": self.n_binaries, "integers": self.n_integers,
                "constraints": self.n_constraints, "nonzeros": self.n_nonzeros,
                "encode_ms": self.encode_s * 1e3}

    @staticmethod
    def _ints(x: np.ndarray, vals: list) -> np.ndarray:
        return np.asarray([v.off if v.col < 0 else int(np.rint(x[v.col])) + v.off for v in vals],
                          np.int64)

    def milp_ints(self, solution) -> tuple[np.ndarray, np.ndarray]:
        """(int8 inputs, int8 outputs) in the MILP's solution (values rounded to integers)."""
        x = np.asarray(solution.col_values)
        return self._ints(x, self.q_inputs), self._ints(x, self.q_outputs)

    def _interpreter_at(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the int8 inputs the reference interpreter sees at the MILP's inputs x, its int8
        outputs there)."""
        q = self.qnet
        if self.quantized_inputs:
            seen = np.rint(x).astype(np.int64)
            return seen, q.interpreter_int(seen[None, :])[0]
        seen = q.quantize_input(x[None, :])[0]
        if q.float_io:  # the interpreter quantizes x itself
            y = q.interpreter_float(x[None, :])[0]
            return seen, np.rint(y / q.s_out).astype(np.int64) + q.z_out
        return seen, q.interpreter_int(seen[None, :])[0]

    def verify_bits(self, solution) -> dict:
        """The MILP against LiteRT's reference interpreter at the MILP's input: the int8
        inputs the interpreter sees (its own quantization of float inputs), its int8 outputs,
        the MILP's, and the number of outputs that differ (0: bit for bit)."""
        x = np.asarray(solution.col_values)[self.input_cols]
        q_in, q_out = self.milp_ints(solution)
        seen, interp = self._interpreter_at(x)
        return {"inputs_float": x, "inputs_int8": seen, "milp_inputs_int8": q_in,
                "interpreter_int8": interp, "milp_int8": q_out,
                "input_mismatches": int(np.sum(seen != q_in)),
                "output_mismatches": int(np.sum(interp != q_out))}

    def predict(self, x: np.ndarray) -> np.ndarray:
        """LiteRT's reference interpreter at one float input point ``x`` (int8 values with
        ``quantized_inputs``), its outputs dequantized: shape ``(n_out,)``."""
        return self.qnet.dequantize_output(self._interpreter_at(np.asarray(x, float))[1])

    def _check(self, x, y) -> tuple[float, float]:
        """(largest |output| difference in dequantized units between the MILP and the
        interpreter at x, scale 1): 0 exactly when they agree bit for bit."""
        q = self.qnet
        _, interp = self._interpreter_at(np.asarray(x, float))
        milp = np.rint(np.asarray(y) / q.s_out).astype(np.int64) + q.z_out
        return float(np.max(np.abs(interp - milp)) * q.s_out), 1.0


def add_quantized_network(h, qmodel, inputs, name: str = "qnn", quantized_inputs: bool = False,
                          bounds: str = "lp", names: bool = True) -> QuantizedHandle:
    """Add the exact integer function of a full-integer int8 TFLite model to the
    ``highspy.Highs`` model ``h``.

    ``qmodel``: a :class:`~emlpress.io.tflite.QuantizedNetwork`, a ``.tflite`` path or its
    bytes. ``inputs``: highspy variables or column indices with finite bounds; float inputs
    (quantized in the MILP as the ``QUANTIZE`` operator does) or, with
    ``quantized_inputs=True``, integer columns holding the int8 input values themselves.
    ``bounds``: how accumulator ranges (the big-M's and which clamps need a binary) are found:
    ``interval`` (exact integer interval arithmetic) or ``lp`` (default: also, layer by layer,
    two LPs per unit over the relaxation of the layers before, certified from their duals).
    Returns a :class:`QuantizedHandle` whose ``outputs`` are the dequantized outputs.
    Sets HiGHS' ``mip_feasibility_tolerance`` and ``primal_feasibility_tolerance`` to at most
    ``INT_TOL`` (1e-9): the requantization rows need integrality that tight."""
    t0 = time.perf_counter()
    if bounds not in ("lp", "interval"):
        raise ValueError(f"bounds must be 'lp' or 'interval', got {bounds!r}")
    q = qmodel if isinstance(qmodel, QuantizedNetwork) else QuantizedNetwork.from_tflite(qmodel)
    registry, cols, lo, hi = _new_inputs(h, inputs, q.n_in, name)
    tighten_tolerances(h, INT_TOL)
    B = Builder(h.getNumCol())
    stats = {"binaries": 0}
    q_in: list[_Val] = []
    if quantized_inputs:
        kinds = list(h.getLp().integrality_)  # empty when every column is continuous
        cont = [k for k, c in enumerate(cols) if not kinds or int(kinds[c]) == 0]
        if cont:
            raise ValueError(f"network {name!r}, input {cont[0]} ({col_name(h, cols[cont[0]])}): "
                             "quantized_inputs=True needs integer columns (the int8 values)")
    for k, c in enumerate(cols):
        if quantized_inputs:
            a, b = int(np.ceil(lo[k] - 1e-9)), int(np.floor(hi[k] + 1e-9))
            if a < -128 or b > 127:
                raise ValueError(f"network {name!r}, input {k} ({col_name(h, c)}): int8 inputs "
                                 f"must lie in [-128, 127], got [{lo[k]}, {hi[k]}]")
            q_in.append(_Val(int(c), 0, a, b))
            continue
        s, z = q.s_in, q.z_in
        r_lo = int(q.quantize_input_unclamped(lo[k]))
        r_hi = int(q.quantize_input_unclamped(hi[k]))
        r = B.col(r_lo, r_hi, True)
        # x / s - (r - z) in [-1/2 + eps, 1/2 - eps]: eps covers the float32 roundings of x
        # and of x / s (2^-24 each, relative) over the input's range, and the row tolerance
        eps = TIE_MARGIN + 2.0 ** -22 * (max(abs(lo[k]), abs(hi[k])) / s + 1.0)
        B.row([int(c), r], [1.0 / s, -1.0], -z - 0.5 + eps, -z + 0.5 - eps)
        v = _clamp_high(B, _clamp_low(B, _Val(r, 0, r_lo, r_hi), -128, stats), 127, stats)
        q_in.append(v)
    vals = q_in
    for l, layer in enumerate(q.layers):
        W = layer.W
        nxt: list[_Val] = []
        const_in = np.asarray([v.off for v in vals], np.int64)  # offsets (whole value if constant)
        qlo = np.asarray([v.lo for v in vals], np.int64)
        qhi = np.asarray([v.hi for v in vals], np.int64)
        var_idx = [j for j, v in enumerate(vals) if v.col >= 0]
        shifted_lo, shifted_hi = qlo - layer.z_in, qhi - layer.z_in
        acc_lo = layer.b + np.minimum(W * shifted_lo, W * shifted_hi).sum(1)
        acc_hi = layer.b + np.maximum(W * shifted_lo, W * shifted_hi).sum(1)
        big = np.flatnonzero(np.maximum(np.abs(acc_lo), np.abs(acc_hi)) >= 2 ** 31)
        if big.size:
            i = big[0]
            raise ValueError(f"network {name!r}, layer {l} unit {i}: the int32 accumulator can "
                             f"overflow on this input box ([{acc_lo[i]}, {acc_hi[i]}])")
        c0s = layer.b + W @ (const_in - layer.z_in)  # acc = c0 + sum_j W_ij x[col_j]
        # per unit, the columns and weights of its accumulator's variable terms
        terms = [([vals[j].col for j in var_idx if W[i, j] != 0],
                  [float(W[i, j]) for j in var_idx if W[i, j] != 0]) for i in range(W.shape[0])]
        if bounds == "lp" and l > 0 and var_idx:
            R = _Relaxation(B, cols, lo, hi)
            for i, (cs, ws) in enumerate(terms):
                if not cs:
                    continue
                low = R.min_of(cs, ws) + c0s[i]
                high = -R.min_of(cs, [-w for w in ws]) + c0s[i]
                if np.isfinite(low):
                    acc_lo[i] = max(acc_lo[i], int(np.ceil(low)))
                if np.isfinite(high):
                    acc_hi[i] = min(acc_hi[i], int(np.floor(high)))
        t_los, t_his = layer.requantize(acc_lo), layer.requantize(acc_hi)
        for i, (cs, ws) in enumerate(terms):
            c0, t_lo, t_hi = int(c0s[i]), int(t_los[i]), int(t_his[i])
            if t_lo == t_hi:
                t = _Val(-1, t_lo, t_lo, t_lo)
            else:
                t = _requantize_rows(B, layer.ratio[i], cs, ws, c0,
                                     int(acc_lo[i]), int(acc_hi[i]), t_lo, t_hi, stats)
            u = _Val(t.col, t.off + layer.z_out, t.lo + layer.z_out, t.hi + layer.z_out)
            nxt.append(_clamp_high(B, _clamp_low(B, u, layer.act_min, stats), layer.act_max, stats))
        vals = nxt
    out_cols = []
    for v in vals:
        y_lo, y_hi = q.s_out * (v.lo - q.z_out), q.s_out * (v.hi - q.z_out)
        y = B.col(y_lo, y_hi, False)
        if v.col < 0:
            B.row([y], [1.0], y_lo, y_lo)
        else:
            B.row([y, v.col], [1.0, -q.s_out], q.s_out * (v.off - q.z_out), q.s_out * (v.off - q.z_out))
        out_cols.append(y)
    n_int = sum(B.integer)
    n_vars, n_rows, nnz = B.flush(h)
    if names:
        for k, c in enumerate(out_cols):
            h.passColName(int(c), f"{name}.y{k}")
    handle = QuantizedHandle(name, q, cols, q_in, vals, np.asarray(out_cols, np.int32), n_vars,
                             stats["binaries"], n_int, n_rows, nnz, time.perf_counter() - t0,
                             quantized_inputs, h)
    registry.append(handle)
    return handle
