"""Quiet HiGHS instances: HiGHS prints its banner ("Running HiGHS ... Copyright") to the
process' stdout when the first instance is created, before any option can silence it. The
first instance emlpress creates is built with file descriptor 1 pointed at /dev/null, so
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
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no real stdout (e.g. captured): nothing to hide
        return make()
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, fd)
            obj = make()
            _flush_c_stdout()
        finally:
            os.close(null)
    finally:
        os.dup2(saved, fd)
        os.close(saved)
    return obj


def _flush_c_stdout() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass
