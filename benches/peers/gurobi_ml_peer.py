"""The peer: gurobi-ml (``gurobi_ml.add_predictor_constr``) on Gurobi, with the
size-limited licence that comes with gurobipy's wheel (about 2,000 variables and rows: larger
models are reported "over the licence", not timed). Needs the [peers] extra."""

import time

import numpy as np
import pytest

#: Gurobi's error number for a model beyond the size-limited licence
OVER_LICENCE = 10010


def require() -> None:
    """A pytest skip naming the missing package; call it before the benchmark starts timing."""
    try:
        import gurobi_ml  # noqa: F401
        import gurobipy  # noqa: F401
    except ImportError as e:
        pytest.skip(f"gurobi-ml is not usable here ({type(e).__name__}: {e}; the [peers] extra)")


def build(model, lo, hi, gap=1e-4, abs_gap=1e-6, time_limit=120.0):
    """A Gurobi model with inputs on the box lo/hi and ``model`` added by gurobi-ml; returns
    (gurobipy model, input MVar (1, n), output MVar (1, 1), predictor constraint, seconds).
    Gap, absolute gap, one thread and the time limit are set explicitly (no solver default)."""
    import gurobipy as gp
    from gurobi_ml import add_predictor_constr

    t0 = time.perf_counter()
    m = gp.Model()
    m.Params.OutputFlag = 0
    m.Params.MIPGap = gap
    m.Params.MIPGapAbs = abs_gap
    m.Params.Threads = 1
    m.Params.TimeLimit = time_limit
    x = m.addMVar((1, len(lo)), lb=np.asarray(lo, float)[None], ub=np.asarray(hi, float)[None], name="x")
    y = m.addMVar((1, 1), lb=-gp.GRB.INFINITY, name="y")
    pc = add_predictor_constr(m, model, x, y)
    m.update()
    return m, x, y, pc, time.perf_counter() - t0


def solve(m, x, y, sense):
    """Optimise y (sense "max" or "min"); returns (status, objective, x at the solution or
    None, seconds). A model over the licence returns status "over the licence"."""
    import gurobipy as gp

    m.setObjective(y.sum(), gp.GRB.MAXIMIZE if sense == "max" else gp.GRB.MINIMIZE)
    t0 = time.perf_counter()
    try:
        m.optimize()
    except gp.GurobiError as e:
        if e.errno == OVER_LICENCE:
            return "over the licence", float("nan"), None, time.perf_counter() - t0
        raise
    dt = time.perf_counter() - t0
    names = {gp.GRB.OPTIMAL: "OPTIMAL", gp.GRB.TIME_LIMIT: "TIME_LIMIT", gp.GRB.INFEASIBLE: "INFEASIBLE"}
    status = names.get(m.Status, f"status {m.Status}")
    if m.SolCount == 0:
        return status, float("nan"), None, dt
    return status, float(m.ObjVal), np.asarray(x.X, float)[0], dt
