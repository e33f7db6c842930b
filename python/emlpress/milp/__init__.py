"""Embedding trained ReLU networks in a HiGHS MILP (Empirical Model Learning).

>>> import highspy, numpy as np
>>> from emlpress import Network
>>> from emlpress.milp import add_network, solve
>>> net = Network([np.array([[1.0, -1.0], [0.5, 2.0]]), np.array([[1.0, -1.0]])],
...               [np.zeros(2), np.zeros(1)], lo=[-1.0, -1.0], hi=[1.0, 1.0])
>>> h = highspy.Highs()
>>> h.setOptionValue("output_flag", False)      # no HiGHS log
<HighsStatus.kOk: 0>
>>> x = h.addVariables(2, lb=net.lo.tolist(), ub=net.hi.tolist())  # lists: highspy 1.16
>>> nn = add_network(h, net, x)                  # big-M rows generated in C++, added in bulk
>>> h.setObjective(nn.outputs[0], sense=highspy.ObjSense.kMaximize)  # or addConstr on outputs
>>> sol = solve(h, time_limit=60)                # every network's solution is verified
>>> sol.status, round(sol.objective, 9)
('OPTIMAL', 2.0)

Encoding per hidden unit (``cpp/include/emlpress/bigm.hpp``): stably inactive units have no
variable, stably active ones a continuous variable equal to their affine expression, unstable
ones a pre-activation variable, an output variable and a binary, with the unit's own bounds as
big-M. Bounds default to
:func:`emlpress.bounds.crown` over the input variables' box; pass tighter ones (``lp``,
``progressive``, or the ``report.bounds`` of a losslessly compressed network) to remove
binaries and tighten M.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from emlpress import _options, kernels
from emlpress import bounds as _bounds
from emlpress.bounds import Bounds
from emlpress.bounds.conditioning import CONDITIONING_RTOL, integrality_error
from emlpress.network import Network
from emlpress.bounds.relaxation import add_block
from emlpress.milp import repair as _repair_mod

__all__ = ["add_network", "add_quantized_network", "QuantizedHandle", "add_tree", "TreeHandle", "solve", "NetworkHandle", "Solution", "VERIFY_RTOL", "MIP_GAP", "MIP_ABS_GAP"]

VERIFY_RTOL = 1e-6
_REGISTRY_ATTR = "_emlpress_networks"


def _highspy():
    import highspy

    return highspy


def _column_indices(h, inputs) -> np.ndarray:
    highspy = _highspy()
    if isinstance(inputs, highspy.highs.highs_var) or np.isscalar(inputs):
        inputs = [inputs]
    cols = []
    for k, v in enumerate(inputs):
        if isinstance(v, highspy.highs.highs_var):
            cols.append(int(v.index))
        elif isinstance(v, (int, np.integer)):
            cols.append(int(v))
        else:
            raise TypeError(f"input {k}: expected a highspy variable or a column index, got {type(v).__name__}")
    cols = np.asarray(cols, dtype=np.int32)
    n = h.getNumCol()
    bad = np.flatnonzero((cols < 0) | (cols >= n))
    if bad.size:
        raise ValueError(f"input {bad[0]}: column {cols[bad[0]]} does not exist (the model has {n} columns)")
    return cols


def _col_name(h, c: int) -> str:
    try:
        status, name = h.getColName(int(c))
        if name:
            return f"column {c} ({name!r})"
    except Exception:  # noqa: BLE001 - names are optional in HiGHS
        pass
    return f"column {c}"


class _Builder:
    """New columns and rows of an encoding written in Python, collected and added to HiGHS in
    bulk by :func:`~emlpress.bounds.relaxation.add_block` (as the C++ encodings are)."""

    def __init__(self, first_col: int):
        self.first = first_col
        self.lb, self.ub, self.integer = [], [], []
        self.rows_lo, self.rows_hi, self.rows = [], [], []  # rows: list of (cols, vals)

    def col(self, lb, ub, integer: bool) -> int:
        self.lb.append(float(lb))
        self.ub.append(float(ub))
        self.integer.append(bool(integer))
        return self.first + len(self.lb) - 1

    def row(self, cols, vals, lo, hi) -> None:
        self.rows.append((np.asarray(cols, np.int32), np.asarray(vals, np.float64)))
        self.rows_lo.append(float(lo))
        self.rows_hi.append(float(hi))

    def flush(self, h) -> tuple[int, int, int]:
        """Add everything to ``h``; returns (columns, rows, nonzeros)."""
        sizes = [c.size for c, _ in self.rows]
        blk = kernels.LpBlock(
            col_lower=np.asarray(self.lb, np.float64), col_upper=np.asarray(self.ub, np.float64),
            binary=np.asarray([self.first + k for k, i in enumerate(self.integer) if i], np.int32),
            row_lower=np.asarray(self.rows_lo, np.float64),
            row_upper=np.asarray(self.rows_hi, np.float64),
            starts=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32),
            indices=(np.concatenate([c for c, _ in self.rows]) if self.rows
                     else np.zeros(0)).astype(np.int32),
            values=(np.concatenate([v for _, v in self.rows]) if self.rows
                    else np.zeros(0)).astype(np.float64))
        add_block(h, blk)
        return len(self.lb), len(self.rows), int(blk.indices.size)


class _HandleVars:
    """Variables of a handle's inputs and outputs (``input_cols``, ``output_cols``)."""

    def _vars(self, cols):
        highspy = _highspy()
        return [highspy.highs.highs_var(int(c), self._h) for c in cols]

    @property
    def inputs(self) -> list:
        return self._vars(self.input_cols)

    @property
    def outputs(self) -> list:
        """Output variables, usable in highspy expressions (``h.setObjective(nn.outputs[0])``)."""
        return self._vars(self.output_cols)

    def values_at(self, col_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, outputs) of this model in the model's column values ``col_values``."""
        x = np.asarray(col_values)
        return x[self.input_cols], x[self.output_cols]

    def _exact_columns(self, x) -> tuple[np.ndarray, np.ndarray] | None:
        """(columns, values) of this model's encoding evaluated exactly at input ``x``, or
        None where the encoding cannot be rebuilt column by column."""
        return None

    def values(self, solution: "Solution") -> tuple[np.ndarray, np.ndarray]:
        """(inputs, outputs) of this network in ``solution``."""
        return self.values_at(solution.col_values)

    def _mismatch(self, diff: float, scale: float) -> str | None:
        """The warning for a verification difference ``diff`` (of ``_check``), or None."""
        if diff > VERIFY_RTOL * scale:
            return (f"network {self.name!r}: the MILP's outputs differ from the network's forward "
                    f"pass by {diff:.3g} (relative {diff / scale:.3g}); the encoding is only as "
                    "exact as the solver's feasibility tolerance")
        return None


@dataclass
class NetworkHandle(_HandleVars):
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
        highspy = _highspy()
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
            "max_bigm": self.max_bigm,
            "tolerance_error": self.tolerance_error,
            "encode_ms": self.encode_s * 1e3,
        }

    def print_stats(self, file=None) -> None:
        """One-paragraph summary of the encoding, like gurobi-ml's ``print_stats``."""
        s = self.stats()
        print(
            f"Network {s['network']!r} {s['sizes']}: {s['variables']} variables "
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
                vals += [(z[mb] > 0).astype(np.float64), z[mb]]
        return np.concatenate(cols).astype(np.int32), np.concatenate(vals)

    def _exact_columns(self, x) -> tuple[np.ndarray, np.ndarray]:
        return self.start_values(x)

    def suggest(self, x) -> None:
        """Give HiGHS a MIP start: this network evaluated at input ``x`` (HiGHS completes
        the other columns of the model, if it can). Branch and bound on networks often
        finds no incumbent for a long time; a start from any input fixes that."""
        cols, vals = self.start_values(x)
        self._h.setSolution(int(cols.size), cols, vals)

    def verify(self, solution: Solution) -> float:
        """Largest absolute difference between the MILP's outputs and ``net.forward`` at the
        MILP's inputs (``nan`` when the solution has no values)."""
        if solution.col_values is None:
            return float("nan")
        return self._check(*self.values(solution))[0]

    def _check(self, x, y) -> tuple[float, float]:
        """(max |forward(x) - y|, max(1, max |forward(x)|)) from one forward pass."""
        fx = self.net.forward(x)
        return float(np.max(np.abs(fx - y))), max(1.0, float(np.max(np.abs(fx))))


def _new_inputs(h, inputs, n_in: int, name: str):
    """(the model's network registry, input columns, their bounds) for a new network named
    ``name`` taking ``n_in`` inputs; the name must be new and the bounds finite."""
    registry = h.__dict__.setdefault(_REGISTRY_ATTR, [])
    if any(hd.name == name for hd in registry):
        raise ValueError(f"a network named {name!r} is already in this model: pass another name=")
    cols = _column_indices(h, inputs)
    if cols.size != n_in:
        raise ValueError(f"network {name!r} takes {n_in} inputs, got {cols.size}")
    _, _, _, lo, hi, _ = h.getCols(int(cols.size), cols)
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    for q in range(cols.size):
        if not (np.isfinite(lo[q]) and np.isfinite(hi[q])):
            raise ValueError(
                f"network {name!r}, input {q} ({_col_name(h, cols[q])}): bounds [{lo[q]}, {hi[q]}] "
                "must be finite for the big-M encoding"
            )
    return registry, cols, lo, hi


def tighten_tolerances(h, tol: float) -> None:
    """Set HiGHS' MIP and primal feasibility tolerances of ``h`` to at most ``tol`` (encodings
    whose exactness needs integrality finer than HiGHS' defaults of 1e-6 and 1e-7)."""
    for opt in ("mip_feasibility_tolerance", "primal_feasibility_tolerance"):
        if _option(h, opt) > tol:
            h.setOptionValue(opt, float(tol))


def add_network(h, net: Network, inputs, bounds: Bounds | str | None = None, name: str = "nn",
                names: bool = True) -> NetworkHandle:
    """Add ``net`` to the ``highspy.Highs`` model ``h`` with ``inputs`` (highspy variables or
    column indices, continuous or integer, with finite bounds) as its inputs.

    ``bounds``: a :class:`~emlpress.bounds.Bounds` valid on a box that contains the input
    variables' box, or a method name for :func:`emlpress.bounds.tighten` over that box
    (default ``"crown"``); bounds of :func:`emlpress.bounds.on_points` where the inputs can
    take no values but those points (the input variables' box inside their hull). ``name`` prefixes the new columns' names (``names=False`` skips
    naming) and must be unique within the model. Returns a :class:`NetworkHandle`.
    """
    t0 = time.perf_counter()
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
                f"{_col_name(h, cols[q])} ranges over [{lo[q]}, {hi[q]}]"
            )
    else:
        raise TypeError(f"bounds must be a Bounds, a method name or None, got {type(bounds).__name__}")

    _check_representable(net, b, name)
    first = h.getNumCol()
    enc = kernels.bigm_network(net._core, list(b.lower), list(b.upper), cols.tolist(), first)
    add_block(h, enc)
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
    handle = NetworkHandle(
        name=name, net=net, bounds=b, input_cols=cols, layer_cols=layer_cols,
        binary_cols=binary_cols, pre_cols=pre_cols, n_vars=len(enc.col_lower),
        n_binaries=len(enc.binary), n_constraints=len(enc.row_lower),
        n_nonzeros=len(enc.values), encode_s=time.perf_counter() - t0, _h=h,
    )
    e, layer, m = integrality_error(net, b, _option(h, "mip_feasibility_tolerance"))
    handle.tolerance_error, handle.max_bigm = float(e.max(initial=0.0)), m
    scale = max(1.0, float(np.max(np.maximum(np.abs(b.lower[-1]), np.abs(b.upper[-1])), initial=0.0)))
    if handle.tolerance_error > CONDITIONING_RTOL * scale:
        warnings.warn(
            f"network {name!r}: big-Ms up to {m:.3g} (layer {layer}) let HiGHS' integrality "
            f"tolerance ({_option(h, 'mip_feasibility_tolerance'):g}) move the MILP's outputs by "
            f"up to {handle.tolerance_error:.3g} (output scale {scale:.3g}); solve() verifies and "
            "repairs every answer, but a better conditioned encoding solves more exactly: tighter "
            "bounds, compress.lossless(..., max_coefficient=...) to keep layers whose folding "
            "creates large weights, or a lower mip_feasibility_tolerance",
            RuntimeWarning, stacklevel=2)
    registry.append(handle)
    return handle


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


def _option(h, name):
    """An option's value (highspy returns (status, value) or the value, by version)."""
    v = h.getOptionValue(name)
    return v[1] if isinstance(v, tuple) else v


_STATUS = {
    "kOptimal": "OPTIMAL",
    "kInfeasible": "INFEASIBLE",
    "kUnbounded": "UNBOUNDED",
    "kUnboundedOrInfeasible": "INFEASIBLE_OR_UNBOUNDED",
    "kTimeLimit": "TIME_LIMIT",
    "kIterationLimit": "ITERATION_LIMIT",
    "kSolutionLimit": "SOLUTION_LIMIT",
    "kInterrupt": "INTERRUPTED",
    "kHighsInterrupt": "INTERRUPTED",
    "kObjectiveBound": "OBJECTIVE_BOUND",
    "kObjectiveTarget": "OBJECTIVE_TARGET",
    "kMemoryLimit": "MEMORY_LIMIT",
    "kModelEmpty": "MODEL_EMPTY",
}


@dataclass
class Solution:
    """Result of :func:`solve`. ``status`` is a name such as ``OPTIMAL`` (a verified answer
    within the MIP gap asked for), ``FEASIBLE`` (verified, not proven within the gap),
    ``INFEASIBLE``, ``TIME_LIMIT`` (with the verified incumbent when one was found:
    ``has_solution``), ``INFEASIBLE_OR_UNBOUNDED``, ``NUMERICAL`` (HiGHS' answer failed its
    check and no verified point was found: ``mismatch`` says by how much). ``objective`` is
    always that of a verified point; ``repaired`` names the repair that found it ("" when
    HiGHS' answer passed as it came)."""

    status: str
    objective: float
    best_bound: float
    gap: float
    nodes: int
    encode_s: float
    solve_s: float
    has_solution: bool
    col_values: np.ndarray | None
    inputs: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    verify_diff: dict = field(default_factory=dict)
    repaired: str = ""
    mismatch: float = 0.0

    def __repr__(self) -> str:
        return (
            f"Solution(status={self.status}, objective={self.objective:.6g}, "
            f"best_bound={self.best_bound:.6g}, gap={self.gap:.3g}, nodes={self.nodes}, "
            f"encode_s={self.encode_s:.4f}, solve_s={self.solve_s:.4f})"
        )


#: solve()'s default gaps: HiGHS 1.x's own defaults, set explicitly so that no result
#: depends on what a HiGHS release chooses
MIP_GAP = 1e-4
MIP_ABS_GAP = 1e-6


def solve(h, time_limit: float | None = None, mip_gap: float = MIP_GAP,
          threads: int | None = None, verbose: bool = False,
          confirm_infeasible: bool = True, mip_abs_gap: float = MIP_ABS_GAP) -> Solution:
    """Run HiGHS on ``h`` and return a :class:`Solution` with the values of every network's
    inputs and outputs. The answer is optimal within the relative ``mip_gap`` (default
    ``MIP_GAP`` = 1e-4) or the absolute ``mip_abs_gap`` (default 1e-6), both always passed
    to HiGHS; pass ``mip_gap=0`` to compare optima more closely.

    Every answer is verified: each network added with :func:`add_network` against its
    forward pass, a tree against ``predict``, a quantized network from
    :func:`add_quantized_network` against LiteRT's reference interpreter (bit for bit). An
    answer that differs by more than ``VERIFY_RTOL`` (relative to max(1, |output|); HiGHS'
    tolerances can make a big-M encoding lie) is repaired as :mod:`emlpress.milp.repair`
    describes (exact evaluation at the MILP's inputs, the LP with the integers fixed, a
    re-solve at tolerance 1e-9), with a warning naming the model: the objective reported is
    then that of the verified point, ``Solution.repaired`` says how it was found and
    ``Solution.mismatch`` how far HiGHS' own answer was. The status is ``OPTIMAL`` only when
    the verified objective is within the gaps of HiGHS' bound, else ``FEASIBLE`` (or the time
    limit's status); when no point can be verified it is ``NUMERICAL`` with no solution and a
    ``nan`` objective. ``threads`` sets HiGHS' process-wide scheduler: give it once per process.

    With ``confirm_infeasible`` (default), an ``INFEASIBLE`` verdict is re-checked by a
    second run without presolve: HiGHS 1.15's MIP presolve was seen declaring nearly
    constant networks (bounds of width ~1e-9 on outputs of ~1e3) infeasible although every
    forward pass satisfies the encoding to 1e-11; the re-run found the optimum. If the
    verdicts differ, the second one is returned with a warning."""
    highspy = _highspy()
    time_limit = _options.seconds("time_limit", time_limit)
    mip_gap = _options.gap("mip_gap", mip_gap)
    mip_abs_gap = _options.gap("mip_abs_gap", mip_abs_gap)
    if mip_gap is None or mip_abs_gap is None:
        raise ValueError("mip_gap and mip_abs_gap must be numbers >= 0 (HiGHS' defaults vary by release)")
    threads = _options.threads(threads)
    h.setOptionValue("output_flag", bool(verbose))
    if time_limit is not None:
        h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", float(mip_gap))
    h.setOptionValue("mip_abs_gap", float(mip_abs_gap))
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    t0 = time.perf_counter()
    h.run()
    ms = h.getModelStatus()
    status = _STATUS.get(ms.name, ms.name.removeprefix("k").upper())
    if confirm_infeasible and status in ("INFEASIBLE", "INFEASIBLE_OR_UNBOUNDED"):
        presolve = _option(h, "presolve")
        h.setOptionValue("presolve", "off")
        if time_limit is not None:
            h.setOptionValue("time_limit", max(0.0, float(time_limit) - (time.perf_counter() - t0)))
        h.clearSolver()
        h.run()
        h.setOptionValue("presolve", presolve)
        if time_limit is not None:
            h.setOptionValue("time_limit", float(time_limit))
        ms2 = h.getModelStatus()
        status2 = _STATUS.get(ms2.name, ms2.name.removeprefix("k").upper())
        if status2 != status:
            warnings.warn(
                f"HiGHS reported {status} with presolve and {status2} without; returning the "
                "latter (presolve tolerances on nearly degenerate bounds)", RuntimeWarning,
                stacklevel=2,
            )
            status = status2
    info = h.getInfo()
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    integrality = h.getLp().integrality_  # a copy of the model: fetch it once
    mip = any(int(v) != 0 for v in integrality)
    col_values = np.asarray(h.getSolution().col_value) if has_solution else None
    nodes = int(info.mip_node_count) if info.mip_node_count >= 0 else 0
    sense_max = h.getObjectiveSense()[1] == highspy.ObjSense.kMaximize
    best = info.mip_dual_bound if mip else info.objective_function_value
    if status == "INFEASIBLE":
        best = -np.inf if sense_max else np.inf
    handles = h.__dict__.get(_REGISTRY_ATTR, [])
    objective = float(info.objective_function_value) if has_solution else float("nan")
    gap = float(info.mip_gap) if mip and has_solution else (0.0 if has_solution else float("inf"))
    repaired, mismatch = "", 0.0
    # (inputs, outputs, (max |difference|, scale)) of every model: one evaluation each
    checks = {}
    if has_solution:
        for hd in handles:
            x, y = hd.values_at(col_values)
            checks[hd.name] = (x, y, hd._check(x, y))
    failed = {n: c[2] for n, c in checks.items()
              if next(hd for hd in handles if hd.name == n)._mismatch(*c[2]) is not None}
    if failed:
        mismatch = max(d / s for d, s in failed.values())
        cand, best, nodes = _repair(h, handles, col_values, status, best, nodes, sense_max,
                                    mip_gap, mip_abs_gap, time_limit, t0)
        names = ", ".join(f"network {n!r} by {d:.3g} (relative {d / s:.3g})"
                          for n, (d, s) in failed.items())
        head = (f"{names}: the MILP's outputs differ from the model's own evaluation at the "
                f"MILP's inputs, so HiGHS' objective {objective:.9g} is not verified (its "
                "feasibility tolerances let a big-M encoding move)")
        if cand is None:
            status, has_solution, objective, gap = "NUMERICAL", False, float("nan"), float("inf")
            _repair_mod.warn(f"{head}; no verified point was found (exact evaluation, the LP "
                             f"with the integers fixed, a re-solve at tolerance "
                             f"{_repair_mod.REPAIR_TOL:g}): status NUMERICAL")
        else:
            col_values, objective, repaired = cand.values, cand.objective, cand.how
            checks = {}  # the repaired point's, below
            status, best, gap = _verified_status(status, objective, best, sense_max, mip_gap,
                                                 mip_abs_gap)
            _repair_mod.warn(f"{head}; repaired by {repaired}: verified objective "
                             f"{objective:.9g}, status {status}")
    solve_s = time.perf_counter() - t0
    sol = Solution(
        status=status,
        objective=objective,
        best_bound=float(best),
        gap=gap,
        nodes=nodes,
        encode_s=float(sum(hd.encode_s for hd in handles)),
        solve_s=solve_s,
        has_solution=has_solution,
        col_values=col_values,
        repaired=repaired,
        mismatch=mismatch,
    )
    if col_values is not None:
        for hd in handles:
            if hd.name not in checks:
                x, y = hd.values_at(col_values)
                checks[hd.name] = (x, y, hd._check(x, y))
            x, y, (diff, _) = checks[hd.name]
            sol.inputs[hd.name], sol.outputs[hd.name], sol.verify_diff[hd.name] = x, y, diff
    return sol


def _gap(objective: float, bound: float) -> float:
    """HiGHS' relative gap: |bound - objective| / |objective| (inf at objective 0 unless equal)."""
    d = abs(bound - objective)
    if d == 0.0:
        return 0.0
    return d / abs(objective) if objective != 0.0 else float("inf")


def _within(objective: float, best: float, sense_max: bool, mip_gap: float, mip_abs_gap: float) -> bool:
    """Whether ``objective`` is within the gaps asked for of the bound ``best`` (and does not
    beat it beyond them)."""
    d = (best - objective) if sense_max else (objective - best)
    tol = max(mip_abs_gap, mip_gap * abs(objective))
    return abs(d) <= tol or (d >= 0 and _gap(objective, best) <= mip_gap)


def _verified_status(status: str, objective: float, best: float, sense_max: bool,
                     mip_gap: float, mip_abs_gap: float) -> tuple[str, float, float]:
    """(status, bound, gap) for a verified objective against HiGHS' bound: OPTIMAL only
    within the gaps asked for; a bound the verified point beats is dropped (trivial bound)."""
    beats = objective - best if sense_max else best - objective
    if beats > max(mip_abs_gap, 1e-9 * max(1.0, abs(objective))):
        _repair_mod.warn(f"the verified objective {objective:.9g} beats HiGHS' bound {best:.9g}: "
                         "the bound is dropped")
        return "FEASIBLE", (np.inf if sense_max else -np.inf), float("inf")
    best = max(best, objective) if sense_max else min(best, objective)
    gap = _gap(objective, best)
    if _within(objective, best, sense_max, mip_gap, mip_abs_gap):
        return ("OPTIMAL" if status == "OPTIMAL" else status), best, gap
    return ("FEASIBLE" if status == "OPTIMAL" else status), best, gap


def _repair(h, handles, raw, status, best, nodes, sense_max, mip_gap, mip_abs_gap, time_limit, t0):
    """(the best verified point or None, HiGHS' bound, nodes) after the steps of
    :mod:`emlpress.milp.repair`."""
    R = _repair_mod
    deadline = None if time_limit is None else t0 + float(time_limit)
    M = R.model_arrays(h)
    tol = _option(h, "primal_feasibility_tolerance")
    cand = R.repair(M, handles, raw, tol, deadline)
    good = cand is not None and _within(cand.objective, best, sense_max, mip_gap, mip_abs_gap)
    left = None if deadline is None else deadline - time.perf_counter()
    if good or (left is not None and left <= 0.05):
        return cand, best, nodes
    # step 3: the MILP again, tolerances tight, from the verified point
    saved = {o: _option(h, o) for o in ("mip_feasibility_tolerance", "primal_feasibility_tolerance",
                                        "time_limit")}
    try:
        tighten_tolerances(h, R.REPAIR_TOL)
        if left is not None:
            h.setOptionValue("time_limit", float(left))
        if cand is not None:
            h.setSolution(int(cand.values.size), np.arange(cand.values.size, dtype=np.int32),
                          cand.values)
        h.run()
        info = h.getInfo()
        nodes += max(0, int(info.mip_node_count))
        if h.getModelStatus().name in ("kOptimal", "kTimeLimit", "kInterrupt", "kHighsInterrupt"):
            b2 = info.mip_dual_bound
            if np.isfinite(b2):
                best = min(best, b2) if sense_max else max(best, b2)
        if info.primal_solution_status == 2:
            raw2 = np.asarray(h.getSolution().col_value)
            # the LP of step 2 gets at least a second even when the re-solve used the rest
            lp_deadline = None if deadline is None else max(deadline, time.perf_counter() + 1.0)
            c2 = R.repair(M, handles, raw2, tol, lp_deadline)
            cand = R.better(cand, c2, sense_max)
    finally:
        for o, val in saved.items():
            h.setOptionValue(o, val)
    return cand, best, nodes

from emlpress.milp.quantized import QuantizedHandle, add_quantized_network  # noqa: E402
from emlpress.milp.tree import TreeHandle, add_tree  # noqa: E402
