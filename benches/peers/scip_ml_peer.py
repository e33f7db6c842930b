"""The peer: PySCIPOpt-ML (``pyscipopt_ml.add_predictor_constr``) on SCIP, with its default
formulations (SOS1 for ReLU). Needs the [peers] extra."""

import time

import numpy as np
import pytest


def require() -> None:
    """A pytest skip naming the missing package; call it before the benchmark starts timing."""
    try:
        import pyscipopt  # noqa: F401
        import pyscipopt_ml  # noqa: F401
    except ImportError as e:
        pytest.skip(f"PySCIPOpt-ML is not usable here ({type(e).__name__}: {e}; the [peers] extra)")


def scip_model(gap: float, abs_gap: float, time_limit: float):
    """An empty, quiet SCIP model with the gaps and time limit every peer run gets, on one
    thread (as Gurobi is run)."""
    from pyscipopt import Model

    m = Model()
    m.hideOutput()
    m.setParam("limits/gap", gap)
    m.setParam("limits/absgap", abs_gap)
    m.setParam("limits/time", float(time_limit))
    m.setParam("parallel/maxnthreads", 1)
    return m


def build(model, lo, hi, gap=1e-4, abs_gap=1e-6, time_limit=120.0):
    """A SCIP model with inputs on the box and ``model`` added by PySCIPOpt-ML; returns
    (Model, input variables (1, n), output variables (1, 1), predictor constraint, seconds)."""
    from pyscipopt_ml import add_predictor_constr

    t0 = time.perf_counter()
    m = scip_model(gap, abs_gap, time_limit)
    x = np.array([[m.addVar(lb=float(a), ub=float(b)) for a, b in zip(lo, hi)]], dtype=object)
    y = np.array([[m.addVar(lb=None, ub=None)]], dtype=object)
    pc = add_predictor_constr(m, model, x, y)
    return m, x, y, pc, time.perf_counter() - t0


def solve(m, x, y, sense):
    """Optimise y; returns (status, objective, x at the solution or None, seconds)."""
    m.setObjective(y[0, 0], "maximize" if sense == "max" else "minimize")
    t0 = time.perf_counter()
    m.optimize()
    dt = time.perf_counter() - t0
    # gaplimit: stopped within the gap it was given, what the others call optimal
    status = {"optimal": "OPTIMAL", "gaplimit": "OPTIMAL", "timelimit": "TIME_LIMIT",
              "infeasible": "INFEASIBLE"}.get(
        m.getStatus(), m.getStatus())
    if m.getNSols() == 0:
        return status, float("nan"), None, dt
    sol = m.getBestSol()
    return status, float(m.getObjVal()), np.array([sol[v] for v in x[0]], float), dt
