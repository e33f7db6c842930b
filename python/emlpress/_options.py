"""Checks of the solver settings the public functions take. HiGHS ignores an option value
it rejects (``setOptionValue`` returns an error status that is easy to drop: a time limit
of -1 silently meant no limit) and accepts NaN, so they are checked before they reach it."""

from __future__ import annotations

import math
import numbers
import os
import warnings


class ThreadsCapped(UserWarning):
    """More threads were asked for than this process has cores: the cores were used."""


def cores() -> int:
    """The cores this process may run on (its CPU affinity; at least 1)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, n or 1)


def threads(value, name: str = "threads") -> int | None:
    """``None`` (the default) or a positive integer, capped at :func:`cores` with a
    :class:`ThreadsCapped` warning naming the reason: every thread holds its own HiGHS
    instance (``threads=100000`` spent 50 s building instances) and CPU-bound solves on more
    threads than cores only add that set-up and memory."""
    if value is None:
        return None
    n = positive_int(name, value, " or None")
    limit = cores()
    if n > limit:
        warnings.warn(f"{name}={n} is more than the {limit} cores this process may use: "
                      f"capped at {limit} (each thread holds its own HiGHS instance; more "
                      "threads than cores only add set-up time and memory)", ThreadsCapped,
                      stacklevel=3)
        return limit
    return n


def positive_int(name: str, value, alternative: str = "") -> int:
    """An integer >= 1 (not a bool, not a float)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer{alternative}, got {value!r}")
    return int(value)


def seconds(name: str, value) -> float | None:
    """``None`` (no limit) or a time in seconds > 0 (``inf`` allowed)."""
    if value is None:
        return None
    v = _number(name, value)
    if not v > 0:
        raise ValueError(f"{name} must be > 0 seconds (or None for no limit), got {value!r}")
    return v


def gap(name: str, value) -> float | None:
    """``None`` or a finite relative gap >= 0."""
    if value is None:
        return None
    v = _number(name, value)
    if not (v >= 0 and math.isfinite(v)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)
