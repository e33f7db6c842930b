"""A trained ReLU network (:class:`~emlpress.Network`) as rows of a HiGHS MILP:
:func:`add_network` and its :class:`NetworkHandle`.

Encoding per hidden unit (``cpp/include/emlpress/bigm.hpp``): stably inactive units have no
variable, stably active ones a continuous variable equal to their affine expression, unstable
ones a pre-activation variable, an output variable and a binary, with the unit's own bounds as
big-M. Bounds default to :func:`emlpress.bounds.crown` over the input variables' box; pass
tighter ones (``lp``, ``progressive``, or the ``report.bounds`` of a losslessly compressed
network) to remove binaries and tighten M.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import highspy
import numpy as np

from emlpress import kernels
from emlpress import bounds as _bounds
from emlpress._highs import col_name, option_value
from emlpress.bounds import Bounds
from emlpress.bounds.conditioning import CONDITIONING_RTOL, integrality_error
from emlpress.bounds.relaxation import add_block
from emlpress.milp.handle import PredictorHandle, _new_inputs
from emlpress.network import Network

__all__ = ["add_network", "NetworkHandle", "MAX_COEFFICIENT", "MAX_RANGE"]


@dataclass
class NetworkHandle(PredictorHandle):
    """One network inside a HiGHS model. ``outputs``/``inputs`` are highspy variables;
    ``layer_cols[l]`` the column of every unit's output in layer ``l`` (-1: no variable, the
    unit is stably inactive), ``binary_cols[l]`` its binary and ``pre_cols[l]`` its
    pre-activation column (-1: none, the unit is stable)."""

    name: str
    net: Network
    bounds: Bounds
    input_cols: np.ndarray
    layer_cols: list
    binary_cols: list
    pre_cols: list
    n_vars: int
    n_binaries: int
    n_constraints: int
    n_nonzeros: int
    encode_s: float
    _h: object = field(repr=False, default=None)
    #: the largest movement of an output that HiGHS' integrality tolerance allows in this
    #: encoding (:func:`emlpress.bounds.conditioning.integrality_error`), and its largest big-M
    tolerance_error: float = 0.0
    max_bigm: float = 0.0
    #: per hidden layer, (units, 2) row indices of each unstable unit's big-M rows
    #: ``a <= z - l (1 - d)`` and ``a <= u d`` (-1: none), which :func:`~emlpress.milp.tighten` rewrites
    bigm_rows: list | None = None
    #: (first row, CSR starts, indices, values) of the network's rows as written, before
    #: HiGHS drops coefficients below its small_matrix_value (1e-9): what tighten certifies over
    row_block: tuple | None = field(default=None, repr=False)
    #: the encoding of the unstable units: "bigm" or "partition" (milp/partition.py)
    formulation: str = "bigm"

    def values_at(self, col_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, outputs) of this network in ``col_values``, the inputs clipped into the
        box the encoding holds on (``bounds.lo``/``bounds.hi``): HiGHS' feasibility tolerance
        lets a column end a few ulps outside its bounds (0.5000000000000001 for hi 0.5), and
        a verified answer must be a point of the box."""
        x, y = super().values_at(col_values)
        return np.clip(x, self.bounds.lo, self.bounds.hi), y

    @property
    def output_cols(self) -> np.ndarray:
        return self.layer_cols[-1]

    def layer_vars(self, l: int) -> list:
        """Variables of the units of layer ``l`` (``None`` for units without one)."""
        return [None if c < 0 else highspy.highs.highs_var(int(c), self._h) for c in self.layer_cols[l]]

    def stats(self) -> dict:
        stable = self.bounds.n_stable
        return {
            "network": self.name,
            "sizes": self.net.sizes,
            "variables": self.n_vars,
            "binaries": self.n_binaries,
            "constraints": self.n_constraints,
            "nonzeros": self.n_nonzeros,
            "stable_units": stable,
            "hidden_units": self.net.n_neurons,
            "bounds": self.bounds.method,
            "formulation": self.formulation,
            "max_bigm": self.max_bigm,
            "tolerance_error": self.tolerance_error,
            "encode_ms": self.encode_s * 1e3,
        }

    def print_stats(self, file=None) -> None:
        """One-paragraph summary of the encoding, like gurobi-ml's ``print_stats``."""
        s = self.stats()
        print(
            f"Network {s['network']!r} {s['sizes']} ({s['formulation']}): {s['variables']} variables "
            f"({s['binaries']} binary), {s['constraints']} constraints, {s['nonzeros']} nonzeros; "
            f"{s['stable_units']} of {s['hidden_units']} hidden units stable ({s['bounds']} bounds); "
            f"largest big-M {s['max_bigm']:.3g} (outputs exact to {s['tolerance_error']:.2g} at "
            f"HiGHS' integrality tolerance, before solve() verifies); encoded in {s['encode_ms']:.2f} ms",
            file=file,
        )

    def start_values(self, x) -> tuple[np.ndarray, np.ndarray]:
        """(columns, values) of this network's inputs, units, binaries and outputs at the
        input point ``x``, from a forward pass: a feasible partial MIP start."""
        x = np.asarray(x, dtype=np.float64).reshape(1, -1)
        zs = [z[0] for z in self.net.preactivations(x)]
        cols, vals = [self.input_cols], [x[0]]
        for l, z in enumerate(zs):
            hidden = l < len(zs) - 1
            c = self.layer_cols[l]
            m = c >= 0
            cols.append(c[m])
            vals.append(np.maximum(z[m], 0.0) if hidden else z[m])
            if hidden:
                bc, pc = self.binary_cols[l], self.pre_cols[l]
                mb = bc >= 0
                cols += [bc[mb], pc[mb]]
                # a unit tighten() proved active has its binary fixed at 1, even where z is 0
                vals += [((z[mb] > 0) | (self.bounds.lower[l][mb] >= 0)).astype(np.float64), z[mb]]
        return np.concatenate(cols).astype(np.int32), np.concatenate(vals)

    def _exact_columns(self, x) -> tuple[np.ndarray, np.ndarray]:
        return self.start_values(x)

    def suggest(self, x) -> None:
        """Give HiGHS a MIP start: this network evaluated at input ``x`` (HiGHS completes
        the other columns of the model, if it can). Branch and bound on networks often
        finds no incumbent for a long time; a start from any input fixes that."""
        cols, vals = self.start_values(x)
        self._h.setSolution(int(cols.size), cols, vals)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``net.forward`` at one input point ``x`` (shape ``(n_in,)``): shape ``(n_out,)``."""
        return self.net.forward(x)


def add_network(h, net: Network, inputs, bounds: Bounds | str | None = None, name: str = "nn",
                names: bool = True, formulation: str = "bigm", groups: int | None = None,
                split: str = "sorted") -> NetworkHandle:
    """Add ``net`` to the ``highspy.Highs`` model ``h`` with ``inputs`` (highspy variables or
    column indices, continuous or integer, with finite bounds) as its inputs.

    ``bounds``: a :class:`~emlpress.bounds.Bounds` valid on a box that contains the input
    variables' box, or a method name for :func:`emlpress.bounds.tighten` over that box
    (default ``"crown"``); bounds of :func:`emlpress.bounds.on_points` where the inputs can
    take no values but those points (the input variables' box inside their hull). ``name`` prefixes the new columns' names (``names=False`` skips
    naming) and must be unique within the model. Returns a :class:`NetworkHandle`.

    ``formulation``: ``"bigm"`` (default) or ``"partition"`` (Tsay et al. 2021: each unstable
    unit's inputs in ``groups`` groups, default 2, ``split`` ``"sorted"`` by weight or
    ``"equal"`` in input order; a :class:`~emlpress.milp.partition.PartitionHandle`;
    ``milp/partition.py``). The handle records it as ``handle.formulation``.
    """
    from emlpress.milp import partition as _partition  # it imports this module

    t0 = time.perf_counter()
    n_groups = _partition.check_options(formulation, groups, split)
    registry, cols, lo, hi = _new_inputs(h, inputs, net.n_in, name)
    if bounds is None or isinstance(bounds, str):
        b = _bounds.tighten(net, lo, hi, method=bounds or "crown")
    elif isinstance(bounds, Bounds):
        b = bounds
        # bounds of a constrained domain hold there only: refused unless it holds the box
        b.check(net) if b.domain is None else b.check(net, lo, hi)
        bad = np.flatnonzero((b.lo > lo) | (b.hi < hi))
        if bad.size:
            q = bad[0]
            raise ValueError(
                f"network {name!r}: the bounds hold on [{b.lo[q]}, {b.hi[q]}] for input {q} but "
                f"{col_name(h, cols[q])} ranges over [{lo[q]}, {hi[q]}]"
            )
    else:
        raise TypeError(f"bounds must be a Bounds, a method name or None, got {type(bounds).__name__}")

    _check_representable(net, b, name)
    first, first_row = h.getNumCol(), h.getNumRow()
    enc = kernels.bigm_network(net._core, list(b.lower), list(b.upper), cols.tolist(), first)
    add_block(h, enc)
    # --- formulation="partition": its columns and rows on top of big-M's (milp/partition.py)
    cls, extra = NetworkHandle, {"fields": {}, "n_vars": 0, "n_constraints": 0, "n_nonzeros": 0}
    if formulation == "partition":
        cls = _partition.PartitionHandle
        extra = _partition.add_groups(h, net, b, enc, first, cols, lo, hi, n_groups, split)
    # ---
    layer_cols, binary_cols, pre_cols = enc.unit_cols, enc.binary_cols, enc.pre_cols
    if names:
        for l, lc in enumerate(layer_cols):
            tag = "y" if l == len(layer_cols) - 1 else f"h{l}_"  # layer l, as Bounds numbers it
            for i, c in enumerate(lc):
                if c >= 0:
                    h.passColName(int(c), f"{name}.{tag}{i}")
        for l, (bc, pc) in enumerate(zip(binary_cols, pre_cols)):
            for i in np.flatnonzero(bc >= 0):
                h.passColName(int(bc[i]), f"{name}.d{l}_{i}")
                h.passColName(int(pc[i]), f"{name}.z{l}_{i}")
    handle = cls(
        name=name, net=net, bounds=b, input_cols=cols, layer_cols=layer_cols,
        binary_cols=binary_cols, pre_cols=pre_cols, n_vars=len(enc.col_lower) + extra["n_vars"],
        n_binaries=len(enc.binary), n_constraints=len(enc.row_lower) + extra["n_constraints"],
        n_nonzeros=len(enc.values) + extra["n_nonzeros"], encode_s=time.perf_counter() - t0, _h=h,
        formulation=formulation, **extra["fields"],
        bigm_rows=_bigm_rows(enc, first_row),
        row_block=(first_row, np.asarray(enc.starts, np.int64), np.asarray(enc.indices, np.int64),
                   np.array(enc.values, np.float64)),
    )
    e, layer, m = integrality_error(net, b, option_value(h, "mip_feasibility_tolerance"))
    handle.tolerance_error, handle.max_bigm = float(e.max(initial=0.0)), m
    scale = max(1.0, float(np.max(np.maximum(np.abs(b.lower[-1]), np.abs(b.upper[-1])), initial=0.0)))
    if handle.tolerance_error > CONDITIONING_RTOL * scale:
        warnings.warn(
            f"network {name!r}: big-Ms up to {m:.3g} (layer {layer}) let HiGHS' integrality "
            f"tolerance ({option_value(h, 'mip_feasibility_tolerance'):g}) move the MILP's outputs by "
            f"up to {handle.tolerance_error:.3g} (output scale {scale:.3g}); solve() verifies and "
            "repairs every answer, but a better conditioned encoding solves more exactly: tighter "
            "bounds, compress.lossless(..., max_coefficient=...) to keep layers whose folding "
            "creates large weights, or a lower mip_feasibility_tolerance",
            RuntimeWarning, stacklevel=2)
    registry.append(handle)
    return handle


def _bigm_rows(enc, first_row: int) -> list:
    """Per hidden layer, the model rows (units, 2) of each binary's two big-M rows, in the
    block's order (``a - z - l d <= -l`` first, then ``a - u d <= 0``; bigm.hpp); -1: none."""
    starts = np.asarray(enc.starts, np.int64)
    row_of = np.repeat(np.arange(starts.size - 1), np.diff(starts))
    idx = np.asarray(enc.indices, np.int64)
    out = []
    for bc in enc.binary_cols:
        rows = np.full((bc.size, 2), -1, np.int64)
        has = np.flatnonzero(bc >= 0)
        if has.size:
            hit = np.isin(idx, bc[has])
            col, row = idx[hit], row_of[hit]
            order = np.lexsort((row, col))  # by binary, its two rows in block order
            pos = {int(c): k for k, c in enumerate(bc[has])}
            pairs = row[order].reshape(-1, 2)
            for c, pr in zip(col[order][::2], pairs):
                rows[has[pos[int(c)]]] = pr + first_row
        out.append(rows)
    return out


#: coefficients and ranges HiGHS cannot take exactly (it drops coefficients <= 1e-9 relative
#: and warns beyond 1e9)
MAX_COEFFICIENT, MAX_RANGE = 1e9, 1e12


def _check_representable(net: Network, b: Bounds, name: str) -> None:
    """Warn, naming the layer, where the rows would carry coefficients or bounds HiGHS
    cannot represent exactly."""
    for l, (W, lower, upper) in enumerate(zip(net.weights, b.lower, b.upper)):
        w = float(np.max(np.abs(W), initial=0.0))
        r = float(np.max(upper - lower, initial=0.0))
        if w > MAX_COEFFICIENT or r > MAX_RANGE:
            warnings.warn(
                f"network {name!r}, layer {l}: weights up to {w:.3g} and bound ranges up to "
                f"{r:.3g} exceed what HiGHS represents exactly (coefficients {MAX_COEFFICIENT:g}, "
                f"ranges {MAX_RANGE:g}); solve() verifies every answer against the forward pass "
                "and reports NUMERICAL where none can be verified", RuntimeWarning, stacklevel=3)

