"""The loop's cuts as HiGHS rows, for problems built with highspy: :func:`add_no_good` (cut off
one integer configuration) and :func:`add_improvement` (objective strictly better than a
measured one)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["add_no_good", "add_improvement"]


def add_no_good(h, variables, config, lower, upper, switch=None) -> None:
    """Cut off the integer point ``config`` of ``variables`` (bounded integer columns with
    bounds ``lower``/``upper``, per variable): at least one variable moves by at least 1.

    Two binaries per variable: ``a_i = 1`` forces ``x_i <= c_i - 1``, ``b_i = 1`` forces
    ``x_i >= c_i + 1`` (big-Ms from the bounds, so tight), and ``sum(a + b) >= 1``.
    ``switch``: a binary column (or highspy expression) that, when 0, also satisfies the cut
    (e.g. another hardware chosen: ``sum(a + b) >= switch``)."""
    n = len(variables)
    lower = np.broadcast_to(np.asarray(lower, float), (n,))
    upper = np.broadcast_to(np.asarray(upper, float), (n,))
    a = h.addVariables(n, lb=0.0, ub=1.0)
    b = h.addVariables(n, lb=0.0, ub=1.0)
    idx = np.array([a[i].index for i in range(n)] + [b[i].index for i in range(n)], np.int32)
    h.changeColsIntegrality(len(idx), idx, np.ones(len(idx), np.uint8))
    terms = []
    for i in range(n):
        c, L, U = float(config[i]), float(lower[i]), float(upper[i])
        x = variables[i]
        if c - 1 >= L:
            h.addConstr(x + (U - c + 1) * a[i] <= U)        # a_i = 1: x_i <= c_i - 1
            terms.append(a[i])
        if c + 1 <= U:
            h.addConstr(x - (c + 1 - L) * b[i] >= L)        # b_i = 1: x_i >= c_i + 1
            terms.append(b[i])
    if not terms:  # a one-point box: only the switch can leave it
        h.addConstr(switch <= 0) if switch is not None else h.addConstr(a[0] >= 2)
        return
    lhs = sum(terms[1:], terms[0])
    h.addConstr((lhs - switch >= 0) if switch is not None else (lhs >= 1))


def add_improvement(h, objective, better_than: float | None, sense: str = "min",
                    step: float = 1.0) -> None:
    """Require ``objective`` (a highspy expression) strictly better than ``better_than``: at
    most ``better_than - step`` (``sense="min"``) or at least ``better_than + step``. Use
    ``step=1`` for an integer objective (total bits), a tolerance above the solver's for a
    continuous one. None: no cut."""
    if better_than is None:
        return
    if not step > 0 or not math.isfinite(step):
        raise ValueError(f"step must be a finite number > 0, got {step!r}")
    if sense == "min":
        h.addConstr(objective <= float(better_than) - step)
    elif sense == "max":
        h.addConstr(objective >= float(better_than) + step)
    else:
        raise ValueError(f"sense must be 'min' or 'max', got {sense!r}")
