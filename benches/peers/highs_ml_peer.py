"""The peer: highs-ml (``highs_ml.add_predictor_constr``, gurobi-ml's interface on HiGHS,
interval bounds per unit). Needs the [peers] extra."""

import time

import numpy as np
import pytest


def require() -> None:
    """A pytest skip naming the missing package; call it before the benchmark starts timing."""
    try:
        import highs_ml  # noqa: F401
    except ImportError as e:
        pytest.skip(f"highs-ml is not usable here ({type(e).__name__}: {e}; the [peers] extra)")


def build(model, lo, hi, gap=1e-4, abs_gap=1e-6, time_limit=120.0):
    """A highspy model with inputs on the box and ``model`` added by highs-ml; returns
    (Highs, input variables, output variable, predictor constraint, seconds)."""
    import highspy
    from highs_ml import add_predictor_constr

    t0 = time.perf_counter()
    h = highspy.Highs()
    h.silent()
    # no "threads": HiGHS takes it once per process (a second value fails the next run)
    for k, v in {"mip_rel_gap": gap, "mip_abs_gap": abs_gap, "time_limit": float(time_limit)}.items():
        h.setOptionValue(k, v)
    x = [h.addVariable(lb=float(a), ub=float(b)) for a, b in zip(lo, hi)]
    pc = add_predictor_constr(h, model, x)
    return h, x, pc.output_var, pc, time.perf_counter() - t0


def solve(h, x, y, sense):
    """Optimise y; returns (status, objective, x at the solution or None, seconds)."""
    import highspy

    h.changeColCost(y.index, 1.0)
    h.changeObjectiveSense(highspy.ObjSense.kMaximize if sense == "max" else highspy.ObjSense.kMinimize)
    t0 = time.perf_counter()
    h.run()
    dt = time.perf_counter() - t0
    status = {highspy.HighsModelStatus.kOptimal: "OPTIMAL",
              highspy.HighsModelStatus.kTimeLimit: "TIME_LIMIT",
              highspy.HighsModelStatus.kInfeasible: "INFEASIBLE"}.get(h.getModelStatus(),
                                                                      str(h.getModelStatus()))
    sol = h.getSolution()
    if not sol.value_valid:
        return status, float("nan"), None, dt
    cols = np.asarray(sol.col_value)
    return status, float(h.getInfo().objective_function_value), cols[[v.index for v in x]], dt
