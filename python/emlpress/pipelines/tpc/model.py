"""The TPC bit-selection MILP: :func:`optimize` builds and solves it, ``_answer`` reads a
solution back as bits, hardware and the surrogates' predictions."""

from __future__ import annotations

import math

import highspy
import numpy as np

from emlpress import _highs
from emlpress.data import tpc
from emlpress.eml.cuts import add_no_good
from emlpress.milp import add_predictor, solve
from emlpress.pipelines.tpc.config import RESOURCES, Config, _check_hw, _limits
from emlpress.pipelines.tpc.surrogate import Surrogate


def optimize(sur: Surrogate, data: tpc.TPCData, cfg: Config, excluded=(), candidates=None,
             max_total: int | None = None, margin_scale: float = 1.0):
    """Build and solve the bit-selection MILP; returns (Solution, error-network handle).
    ``max_total`` bounds the total bits; ``margin_scale`` multiplies every margin.

    ``excluded``: (bits, hw) pairs cut off (no-good cuts: some variable differs by at least one
    bit, or another hardware). ``candidates``: restrict to these (bits, hw) pairs (one binary
    each), e.g. the measured configurations."""
    h = _highs.highs()
    blo, bhi = data.bit_range()
    nv, nh = data.n_vars, len(data.hardware)
    bits = h.addVariables(nv, lb=[float(v) for v in blo], ub=[float(v) for v in bhi])
    hw = h.addVariables(nh, lb=0.0, ub=1.0)
    h.changeColsIntegrality(nv + nh, np.arange(nv + nh, dtype=np.int32), np.ones(nv + nh, np.uint8))
    h.addConstr(sum(hw[i] for i in range(nh)) == 1)
    if cfg.hw is not None:
        _check_hw(cfg, data)
        h.addConstr(hw[data.hardware.index(cfg.hw)] == 1)
    excluded = {(tuple(int(v) for v in b), w) for b, w in excluded}
    if candidates is not None:
        cand = [c for c in candidates if (tuple(c[0]), c[1]) not in excluded]
        if not cand:
            raise _NoCandidates()
        z = h.addVariables(len(cand), lb=0.0, ub=1.0)
        h.changeColsIntegrality(len(cand), np.array([z[k].index for k in range(len(cand))], np.int32),
                                np.ones(len(cand), np.uint8))
        h.addConstr(sum(z[k] for k in range(len(cand))) == 1)
        for i in range(nv):
            h.addConstr(bits[i] - sum(float(c[0][i]) * z[k] for k, c in enumerate(cand)) == 0)
        for j, name in enumerate(data.hardware):
            on = [k for k, c in enumerate(cand) if c[1] == name]
            h.addConstr(hw[j] - sum(z[k] for k in on) == 0 if on else hw[j] == 0)
    else:
        for c, name in sorted(excluded):
            if name in data.hardware:  # another hardware also leaves the configuration
                add_no_good(h, [bits[i] for i in range(nv)], c, blo, bhi,
                            switch=hw[data.hardware.index(name)])
    inputs = [*[bits[i] for i in range(nv)], *[hw[i] for i in range(nh)]]

    def embed(net, qnet, net_bounds, name):  # the int8 model where the surrogate has one
        if qnet is not None:
            return add_predictor(h, qnet, inputs, name=name)
        return add_predictor(h, net, inputs, bounds=net_bounds, name=name)

    err = embed(sur.error_net, sur.error_q, sur.error_bounds, "error")
    h.addConstr(err.outputs[0] >= -math.log10(cfg.max_error) + margin_scale * sur.margin_error)
    limits = _limits(cfg)
    if sur.resource_net is not None:
        res = embed(sur.resource_net, sur.resource_q, sur.resource_bounds, "resources")
        for k, name in enumerate(RESOURCES):
            if name in sur.margins:
                h.addConstr(res.outputs[k] + margin_scale * sur.margins[name] <= limits[name])
    for name, worst in sur.fallback.items():  # hardware whose measurements break the limit
        for j, w in enumerate(data.hardware):
            if not worst[w] <= limits[name]:
                h.addConstr(hw[j] == 0)
    if max_total is not None:
        h.addConstr(sum(bits[i] for i in range(nv)) <= float(max_total))
    h.setObjective(sum(bits[i] for i in range(nv)), sense=highspy.ObjSense.kMinimize)
    sol = solve(h, time_limit=cfg.time_limit)
    return sol, err


class _NoCandidates(Exception):
    """Every measured configuration has been cut off."""


def _answer(sol, data: tpc.TPCData, sur: Surrogate):
    x = sol.inputs["error"]
    bits = np.round(x[: data.n_vars]).astype(int)
    hw = data.hardware[int(np.argmax(x[data.n_vars:]))]
    pred = {"predicted_error": float(10 ** -sol.outputs["error"][0])}
    if "resources" in sol.outputs:
        for k, name in enumerate(RESOURCES):
            pred[f"predicted_{name}"] = float(sol.outputs["resources"][k])
    for name, worst in sur.fallback.items():  # the fallback's prediction: the largest measured
        pred[f"predicted_{name}"] = worst[hw]
    if "error" in sur.deployed:  # what the deployed int8 model says at the answer
        xin = np.asarray(x, float)[None, :]
        pred["interpreter_predicted_error"] = float(10 ** -sur.deployed["error"].interpreter_float(xin)[0, 0])
        if "resources" in sur.deployed and "resources" in sol.outputs:
            pred["interpreter_predicted_time"] = float(sur.deployed["resources"].interpreter_float(xin)[0, 0])
    diff = max(sol.verify_diff.values()) if sol.verify_diff else float("nan")
    return bits, hw, pred, diff
