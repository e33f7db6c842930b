"""NPI planning with a learned one-week SIR model chained over the horizon (the study's first
pipeline). This module holds the planning MILP; training, the run folder and the battery
come with the rest of the pipeline.

The MILP, per week ``w``: five NPI binaries, a one-hot choice among the 32 combinations they
make (linked row by row, so the week's ``beta`` is exactly ``sum_k beta_k c_wk``: no
relaxation of the product of effects), the model (a network by ``add_network``, an int8 one
by ``add_quantized_network``, or a tree by ``add_tree``) from the week's state and ``beta``
to the next state, whose output variables are the next week's inputs; the budget over the
horizon; the objective: the largest S after the last week. Each week's network gets its
input box from the previous week's output bounds (the bounds of its own output variables),
so bounds are propagated, not the whole training box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emlpress.data import sir

__all__ = ["Plan", "plan"]


@dataclass
class Plan:
    """A solved planning MILP: ``schedule`` (combination index per week), ``npis`` (0/1 per
    week and NPI), the model's predicted trajectory, the true (simulated) one, and the
    solver's result."""

    status: str
    schedule: np.ndarray | None
    npis: np.ndarray | None
    predicted: np.ndarray | None  # (weeks + 1, 3)
    simulated: np.ndarray | None  # by the reference integrator
    cost: float | None
    solution: object
    handles: list = field(default_factory=list)
    message: str = ""

    @property
    def predicted_s(self) -> float:
        return float(self.predicted[-1, 0]) if self.predicted is not None else float("nan")

    @property
    def simulated_s(self) -> float:
        return float(self.simulated[-1, 0]) if self.simulated is not None else float("nan")


def _add_model(h, model, inputs, name):
    from emlpress.io.tflite import QuantizedNetwork
    from emlpress.milp import add_network, add_quantized_network, add_tree
    from emlpress.network import Network

    if isinstance(model, Network):
        return add_network(h, model, inputs, name=name)
    if isinstance(model, QuantizedNetwork):
        return add_quantized_network(h, model, inputs, name=name)
    if hasattr(model, "tree_"):
        return add_tree(h, model, inputs, name=name)
    raise TypeError(f"model: expected a Network, a QuantizedNetwork or a fitted scikit-learn tree, "
                    f"got {type(model).__name__}")


def plan(instance: sir.Instance, model, time_limit: float | None = 60.0, mip_gap: float = 1e-4,
         constraints=None, simulate: bool = True) -> Plan:
    """Solve the planning MILP of ``instance`` with ``model`` (inputs S, I, R, beta; outputs
    the state a week later). ``constraints(h, weeks)``, if given, adds a user's rows
    (``weeks[w]`` holds the week's ``npis`` variables and ``state`` variables); an
    infeasible problem returns status ``INFEASIBLE`` and a message, never a plan."""
    import highspy

    from emlpress import _highs
    from emlpress.milp import solve

    choices, beta, cost = sir.combinations(instance.npis, instance.beta0)
    n_c, n_npi = choices.shape
    h = _highs.highs()
    s0 = instance.state
    state = h.addVariables(3, lb=s0.tolist(), ub=s0.tolist())
    weeks, handles = [], []
    npi_cost = [c for _, c in instance.npis.values()]
    spend = []
    for w in range(instance.weeks):
        a = h.addVariables(n_npi, lb=0.0, ub=1.0, type=highspy.HighsVarType.kInteger)
        c = h.addVariables(n_c, lb=0.0, ub=1.0, type=highspy.HighsVarType.kInteger)
        b = h.addVariable(lb=float(beta.min()), ub=float(beta.max()))
        h.addConstr(sum(c[k] for k in range(n_c)) == 1)
        for j in range(n_npi):
            h.addConstr(a[j] - sum(c[k] for k in range(n_c) if choices[k, j]) == 0)
        h.addConstr(b - sum(float(beta[k]) * c[k] for k in range(n_c)) == 0)
        inputs = [state[0], state[1], state[2], b]
        hd = _add_model(h, model, inputs, name=f"week{w}")
        handles.append(hd)
        weeks.append({"npis": a, "combination": c, "beta": b, "state_in": inputs[:3]})
        spend.append(sum(float(npi_cost[j]) * a[j] for j in range(n_npi)))
        out = hd.outputs
        state = [out[0], out[1], out[2]]
        weeks[-1]["state"] = state
    h.addConstr(sum(spend) <= float(instance.budget))
    if constraints is not None:
        constraints(h, weeks)
    h.setObjective(state[0], sense=highspy.ObjSense.kMaximize)
    sol = solve(h, time_limit=time_limit, mip_gap=mip_gap)
    if not sol.has_solution:
        msg = {"INFEASIBLE": "no schedule satisfies the budget and the constraints given"}.get(
            sol.status, f"no plan found ({sol.status})")
        return Plan(sol.status, None, None, None, None, None, sol, handles, msg)
    x = np.asarray(sol.col_values)
    sched = np.array([int(np.argmax([x[v.index] for v in wk["combination"]])) for wk in weeks])
    npis = choices[sched]
    pred = [s0] + [np.array([x[v.index] for v in wk["state"]]) for wk in weeks]
    sim = sir.simulate(instance, sched, reference=True) if simulate else None
    return Plan(sol.status, sched, npis, np.array(pred), sim, float(cost[sched].sum()), sol, handles)
