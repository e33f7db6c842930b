"""Quiet HiGHS instances: HiGHS prints its banner ("Running HiGHS ... Copyright") to the
process' stdout when the first instance is created, before any option can silence it. The
first instance emlpress creates is built with file descriptor 1 pointed at /dev/null (other
threads' writes to fd 1 in that instant are lost with it), so
emlpress' output (tables, a CLI piped into a file) never starts with it; HiGHS prints the
banner once per process, so later instances (the user's too) stay quiet."""

from __future__ import annotations

import ctypes
import os
import sys
import threading

_lock = threading.Lock()
_banner_done = False


def highs(silent: bool = True):
    """A new ``highspy.Highs`` instance with output off (``silent``), the banner swallowed."""
    global _banner_done
    import highspy

    with _lock:
        if _banner_done:
            h = highspy.Highs()
        else:
            h = _without_stdout(highspy.Highs)
            _banner_done = True
    if silent:
        h.setOptionValue("output_flag", False)
    return h


def _without_stdout(make):
    """``make()`` with file descriptor 1 (C's stdout, where HiGHS writes) on /dev/null."""
    try:
        sys.stdout.flush()
    except (AttributeError, OSError, ValueError):
        pass
    _flush_c_stdout()
    try:
        saved = os.dup(1)
    except OSError:  # no fd 1 at all
        return make()
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 1)
            obj = make()
            _flush_c_stdout()
        finally:
            os.close(null)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return obj


def _flush_c_stdout() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass
