"""Quiet HiGHS instances: HiGHS prints its banner ("Running HiGHS ... Copyright") to the
process' stdout when the first instance is created, before any option can silence it. The
first instance emlpress creates is built with file descriptor 1 pointed at /dev/null (other
threads' writes to fd 1 in that instant are lost with it), so
emlpress' output (tables, a CLI piped into a file) never starts with it; HiGHS prints the
banner once per process, so later instances (the user's too) stay quiet."""

from __future__ import annotations

import threading

import highspy
import numpy as np

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

_EMPTY_I = np.array([], dtype=np.int32)
_EMPTY_F = np.array([], dtype=np.float64)


def add_block(h: highspy.Highs, blk: dict, integral: bool = True) -> None:
    """Append a C++ row block (``col_lower``/``col_upper``, ``binary``, CSR rows; the dict of
    ``LpRelaxation.add_layer`` or ``bigm_network``) to ``h``: one addCols, one addRows.
    ``integral=False`` leaves the binary columns continuous in [0, 1] (the LP relaxation
    that branch-and-bound fixes column by column)."""
    n = len(blk.col_lower)
    _checked(h.addCols(n, np.zeros(n), blk.col_lower, blk.col_upper, 0, _EMPTY_I,
                       _EMPTY_I, _EMPTY_F), "columns", blk.col_lower, blk.col_upper)
    nb = len(blk.binary)
    if nb and integral:
        h.changeColsIntegrality(nb, blk.binary, np.full(nb, highspy.HighsVarType.kInteger))
    _checked(h.addRows(len(blk.row_lower), blk.row_lower, blk.row_upper,
                       len(blk.values), blk.starts[:-1], blk.indices, blk.values),
             "rows", blk.values, blk.row_lower, blk.row_upper)


class MagnitudeError(RuntimeError):
    """HiGHS refused rows or columns with values of 1e15 and above: the input box or the
    weights are too large for an LP (the CLI's exit status 2, like a float64 overflow)."""


def _checked(status, what: str, *arrays) -> None:
    """Raise when HiGHS refused an addCols/addRows (it then adds nothing, and every later
    index and dual would be off), naming the largest finite magnitude it was given."""
    if status == highspy.HighsStatus.kError:
        big = max((float(np.max(np.abs(a[np.isfinite(a)]), initial=0.0)) for a in arrays), default=0.0)
        raise MagnitudeError(f"HiGHS refused the {what} of the LP relaxation (largest finite "
                             f"|value| {big:.3g}; HiGHS rejects 1e15 and above): the input box "
                             "or the weights are too large; scale the inputs or shrink the box")
