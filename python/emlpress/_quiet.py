"""Dropping what C and C++ libraries write below Python (HiGHS' banner on stdout,
TensorFlow's start-up lines on stderr), where no Python stream or log level reaches."""

from __future__ import annotations

import ctypes
import os
import sys


def with_fd_on_devnull(fd: int, fn):
    """``fn()`` with file descriptor ``fd`` pointed at /dev/null: what C++ libraries write
    there below Python (HiGHS' banner on 1, TensorFlow's start-up lines on 2) is dropped.
    Python's and C's buffers are flushed first and after, so nothing else goes with it."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    _flush_c_stdio()
    try:
        saved = os.dup(fd)
    except OSError:  # no such descriptor: nothing to hide
        return fn()
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, fd)
            out = fn()
            _flush_c_stdio()
        finally:
            os.close(null)
    finally:
        os.dup2(saved, fd)
        os.close(saved)
    return out


def _flush_c_stdio() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass
