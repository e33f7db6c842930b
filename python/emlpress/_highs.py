"""Quiet HiGHS instances: HiGHS prints its banner ("Running HiGHS ... Copyright") to the
process' stdout when the first instance is created, before any option can silence it. The
first instance emlpress creates is built with file descriptor 1 pointed at /dev/null (other
threads' writes to fd 1 in that instant are lost with it), so
emlpress' output (tables, a CLI piped into a file) never starts with it; HiGHS prints the
banner once per process, so later instances (the user's too) stay quiet.

Below it, the plumbing the MILP encodings share: input columns and their names, option
values, and :class:`Builder`, which adds an encoding written in Python in bulk."""

from __future__ import annotations

import threading

import highspy
import numpy as np

from emlpress import kernels
from emlpress._quiet import with_fd_on_devnull

_lock = threading.Lock()
_banner_done = False


def highs(silent: bool = True):
    """A new ``highspy.Highs`` instance with output off (``silent``), the banner swallowed."""
    global _banner_done
    with _lock:
        if _banner_done:
            h = highspy.Highs()
        else:
            h = with_fd_on_devnull(1, highspy.Highs)
            _banner_done = True
    if silent:
        h.setOptionValue("output_flag", False)
    return h


# --- bulk adds of C++ row blocks (bounds, MILP encodings) ---------------------------------

EMPTY_I = np.array([], dtype=np.int32)
EMPTY_F = np.array([], dtype=np.float64)


def add_block(h: highspy.Highs, blk: kernels.LpBlock, integral: bool = True) -> None:
    """Append a C++ row block (``col_lower``/``col_upper``, ``binary``, CSR rows; the block of
    ``LpRelaxation.add_layer`` or ``bigm_network``) to ``h``: one addCols, one addRows.
    ``integral=False`` leaves the binary columns continuous in [0, 1] (the LP relaxation
    that branch-and-bound fixes column by column)."""
    n = len(blk.col_lower)
    checked(h.addCols(n, np.zeros(n), blk.col_lower, blk.col_upper, 0, EMPTY_I,
                       EMPTY_I, EMPTY_F), "columns", blk.col_lower, blk.col_upper)
    nb = len(blk.binary)
    if nb and integral:
        h.changeColsIntegrality(nb, blk.binary, np.full(nb, highspy.HighsVarType.kInteger))
    checked(h.addRows(len(blk.row_lower), blk.row_lower, blk.row_upper,
                       len(blk.values), blk.starts[:-1], blk.indices, blk.values),
             "rows", blk.values, blk.row_lower, blk.row_upper)


class MagnitudeError(RuntimeError):
    """HiGHS refused rows or columns with values of 1e15 and above: the input box or the
    weights are too large for an LP (the CLI's exit status 2, like a float64 overflow)."""


def checked(status, what: str, *arrays) -> None:
    """Raise when HiGHS refused an addCols/addRows (it then adds nothing, and every later
    index and dual would be off), naming the largest finite magnitude it was given."""
    if status == highspy.HighsStatus.kError:
        big = max((float(np.max(np.abs(a[np.isfinite(a)]), initial=0.0)) for a in arrays), default=0.0)
        raise MagnitudeError(f"HiGHS refused the {what} of the LP relaxation (largest finite "
                             f"|value| {big:.3g}; HiGHS rejects 1e15 and above): the input box "
                             "or the weights are too large; scale the inputs or shrink the box")


# --- the MILP encodings' plumbing: input columns, names, options, bulk adds ---------------


def column_indices(h, inputs) -> np.ndarray:
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


def col_name(h, c: int) -> str:
    try:
        status, name = h.getColName(int(c))
        if name:
            return f"column {c} ({name!r})"
    except Exception:  # noqa: BLE001 - names are optional in HiGHS
        pass
    return f"column {c}"


def option_value(h, name):
    """An option's value (highspy returns (status, value) or the value, by version)."""
    v = h.getOptionValue(name)
    return v[1] if isinstance(v, tuple) else v


def tighten_tolerances(h, tol: float) -> None:
    """Set HiGHS' MIP and primal feasibility tolerances of ``h`` to at most ``tol`` (encodings
    whose exactness needs integrality finer than HiGHS' defaults of 1e-6 and 1e-7)."""
    for opt in ("mip_feasibility_tolerance", "primal_feasibility_tolerance"):
        if option_value(h, opt) > tol:
            h.setOptionValue(opt, float(tol))


class Builder:
    """New columns and rows of an encoding written in Python, collected and added to HiGHS in
    bulk by :func:`add_block` (as the C++ encodings are)."""

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
