"""The TPC bit-selection MILP: :func:`optimize` builds and solves it, ``_answer`` reads a
solution back as bits, hardware and the surrogates' predictions."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import highspy
import numpy as np

from emlpress import _highs
from emlpress.data import tpc
from emlpress.eml.cuts import add_no_good
from emlpress.milp import add_predictor, solve
from emlpress.milp import Solution
from emlpress.pipelines.tpc.config import RESOURCES, Config, _check_hw, _limits
from emlpress.pipelines.tpc.surrogate import Surrogate


def optimize(sur: Surrogate, data: tpc.TPCData, cfg: Config, excluded=(), candidates=None,
             max_total: int | None = None, margin_scale: float = 1.0, candidate_milp: bool = False):
    """Build and solve the bit-selection MILP; returns (Solution, error-network handle).
    ``max_total`` bounds the total bits; ``margin_scale`` multiplies every margin.

    ``excluded``: (bits, hw) pairs cut off (no-good cuts: some variable differs by at least one
    bit, or another hardware). ``candidates``: restrict to these (bits, hw) pairs, e.g. the
    measured configurations: solved exactly by :func:`enumerate_candidates` (the surrogate on
    every candidate at once; status ``ENUMERATED``), or with ``candidate_milp=True`` by the MILP
    with one binary per candidate (slow: 1,500 candidates took 20 s and more under load)."""
    if candidates is not None and not candidate_milp:
        return enumerate_candidates(sur, data, cfg, excluded, candidates, max_total, margin_scale)
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


@dataclass
class _Enumerated:
    """The handle of an enumerated answer (no MILP: no binaries)."""

    n_binaries: int = 0


def enumerate_candidates(sur: Surrogate, data: tpc.TPCData, cfg: Config, excluded=(), candidates=(),
                         max_total: int | None = None, margin_scale: float = 1.0):
    """The bit-selection problem over a finite candidate list, solved exactly by evaluating the
    embedded surrogates (the int8 interpreter where the MILP would embed it) on every candidate:
    the fewest total bits among those predicted within every limit and margin (ties: the largest
    predicted error slack). Returns (Solution, handle) like :func:`optimize`: status
    ``ENUMERATED`` with the answer, ``INFEASIBLE`` when no candidate qualifies (a proof over
    the list)."""
    t0 = time.perf_counter()
    if cfg.hw is not None:
        _check_hw(cfg, data)
    excluded = {(tuple(int(v) for v in b), w) for b, w in excluded}
    cand = [(tuple(int(v) for v in c[0]), c[1]) for c in candidates]
    cand = [c for c in cand if c not in excluded and c[1] in data.hardware
            and (cfg.hw is None or c[1] == cfg.hw)]
    if not cand:
        raise _NoCandidates()
    nv = data.n_vars
    hw_index = np.array([data.hardware.index(w) for _, w in cand])
    X = np.zeros((len(cand), nv + len(data.hardware)))
    X[:, :nv] = [c[0] for c in cand]
    X[np.arange(len(cand)), nv + hw_index] = 1.0
    total = X[:, :nv].sum(axis=1)
    limits = _limits(cfg)
    t1 = time.perf_counter()
    pe = sur.error_prediction(X)
    slack = pe - (-math.log10(cfg.max_error) + margin_scale * sur.margin_error)
    ok = slack >= 0
    P = None
    if sur.resource_net is not None:
        P = sur.resource_prediction(X)
        for k, name in enumerate(RESOURCES):
            if name in sur.margins:
                ok &= P[:, k] + margin_scale * sur.margins[name] <= limits[name]
    for name, worst in sur.fallback.items():  # hardware whose measurements break the limit
        bad = [j for j, w in enumerate(data.hardware) if not worst[w] <= limits[name]]
        ok &= ~np.isin(hw_index, bad)
    if max_total is not None:
        ok &= total <= max_total
    solve_s = time.perf_counter() - t1
    encode_s = t1 - t0
    if not ok.any():
        return Solution("INFEASIBLE", float("nan"), float("nan"), float("nan"), 0, encode_s, solve_s,
                        False, None), _Enumerated()
    idx = np.flatnonzero(ok)
    best = idx[np.lexsort((-slack[idx], total[idx]))[0]]  # fewest bits, then most error slack
    outputs = {"error": pe[best:best + 1].copy()}
    inputs = {"error": X[best].copy()}
    if P is not None:
        outputs["resources"], inputs["resources"] = P[best].copy(), X[best].copy()
    sol = Solution("ENUMERATED", float(total[best]), float(total[best]), 0.0, 0, encode_s, solve_s,
                   True, None, inputs=inputs, outputs=outputs)
    return sol, _Enumerated()


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
