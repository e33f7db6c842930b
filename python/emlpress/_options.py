"""Checks of the solver settings the public functions take. HiGHS ignores an option value
it rejects (``setOptionValue`` returns an error status that is easy to drop: a time limit
of -1 silently meant no limit) and accepts NaN, so they are checked before they reach it."""

from __future__ import annotations

import math
import numbers


def threads(value) -> int | None:
    """``None`` (the default) or a positive integer."""
    return None if value is None else positive_int("threads", value, " or None")


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
