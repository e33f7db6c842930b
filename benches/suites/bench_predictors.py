"""Model kinds against the peers (issue 36), and emlpress' bounds on the peers' own models.

Run: emlpress bench --only predictors (or: python -m pytest benches/suites/bench_predictors.py -s)

Kinds: every model kind emlpress embeds through ``milp.add_predictor`` (a ReLU MLPRegressor as
a Network, DecisionTreeRegressor, and the kinds other branches register: LinearRegression,
RandomForestRegressor, GradientBoostingRegressor; a kind emlpress does not embed in this build
is skipped naming it), trained on scikit-learn's bundled load_diabetes and load_digits (the
digit as a number: a 64-input regression) and on the shared TPC data (Correlation on g100,
-log10 error). Each is maximised and minimised over the training data's box by emlpress +
HiGHS, gurobi-ml + Gurobi (its size-limited licence: larger models say "over the licence"),
highs-ml + HiGHS and PySCIPOpt-ML + SCIP, same gaps everywhere (relative 1e-4, absolute 1e-6),
Gurobi and SCIP on one thread, HiGHS' threads as emlpress sets them for the process,
TIME_LIMIT s. Timed: encode (building the model) + solve, each part in the figures.
Checked: every answer's ``predict`` at its solution against its reported objective, and every
optimum against the verified solutions of the others; a wrong one is reported in the figures
(``check``), never silently; a wrong emlpress answer fails the row.

Interop: the peer's solve time with and without emlpress' bounds written onto its model
(``emlpress.interop``): gurobi-ml + Gurobi and OMLT + HiGHS on MLPs trained on the same data,
the emlpress time (bounds) counted in the "with" rows.
"""

from __future__ import annotations

import time
import warnings
from functools import lru_cache

import highspy
import numpy as np
import pytest

from conftest import label, quick, shared
from emlpress import Network
from emlpress.milp import add_predictor, solve

TIME_LIMIT = 60.0
GAP, ABS_GAP = 1e-4, 1e-6

# ---- data and models ----------------------------------------------------------------------


@lru_cache(maxsize=None)
def dataset(name):
    """(X, y) of a bundled or shared data set (seeded subsample of TPC's rows)."""
    from sklearn import datasets

    if name == "diabetes":
        return datasets.load_diabetes(return_X_y=True)
    if name == "digits":
        X, y = datasets.load_digits(return_X_y=True)
        return X, y.astype(float)
    if name == "tpc":
        from emlpress.data import tpc

        d = tpc.load(shared("tpc"), "Correlation", hardware="g100")
        rows = np.random.default_rng(0).permutation(len(d.frame))[:3000]
        return d.frame[d.var_cols].to_numpy(float)[rows], d.frame["neg_log_error"].to_numpy(float)[rows]
    raise KeyError(name)


KINDS = {
    "mlp": lambda: __import__("sklearn.neural_network", fromlist=["x"]).MLPRegressor(
        hidden_layer_sizes=(16, 16), max_iter=300, random_state=0),
    "tree": lambda: __import__("sklearn.tree", fromlist=["x"]).DecisionTreeRegressor(
        max_depth=6, random_state=0),
    "linear": lambda: __import__("sklearn.linear_model", fromlist=["x"]).LinearRegression(),
    "forest": lambda: __import__("sklearn.ensemble", fromlist=["x"]).RandomForestRegressor(
        n_estimators=10, max_depth=4, random_state=0),
    "gbr": lambda: __import__("sklearn.ensemble", fromlist=["x"]).GradientBoostingRegressor(
        n_estimators=20, max_depth=3, random_state=0),
    # beyond Gurobi's size-limited licence (about 2,100 variables in gurobi-ml's encoding):
    # one instance (digits, max), every solver at its time limit or the licence
    "mlp-512": lambda: __import__("sklearn.neural_network", fromlist=["x"]).MLPRegressor(
        hidden_layer_sizes=(512, 512), max_iter=50, random_state=0),
}
#: the (data, kind, sense) instances beyond the full grid of DATA x the first five KINDS
LARGE = [("digits", "mlp-512", "max")]


@lru_cache(maxsize=None)
def fitted(data, kind, hidden=None):
    X, y = dataset(data)
    model = KINDS[kind]()
    if hidden is not None:
        model.set_params(hidden_layer_sizes=hidden)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the MLP's ConvergenceWarning: a trained-looking model is enough
        return model.fit(X, y)


def box(data):
    X, _ = dataset(data)
    return X.min(0), X.max(0)


def emlpress_model(model):
    """What emlpress' add_predictor takes for ``model``: an MLPRegressor as a Network
    (emlpress.io.from_sklearn where this build has it), the model itself otherwise."""
    from sklearn.neural_network import MLPRegressor

    if isinstance(model, MLPRegressor):
        from emlpress import io

        if hasattr(io, "from_sklearn"):
            return io.from_sklearn(model)
        # until emlpress.io.from_sklearn lands (branch sk): the same layers, math order
        return Network([W.T for W in model.coefs_], list(model.intercepts_))
    return model


def emlpress_supports(model) -> None:
    """Skip naming the kind when this build of emlpress embeds no such model (before timing)."""
    h = highspy.Highs()
    h.silent()
    m = emlpress_model(model)
    n = m.n_in if isinstance(m, Network) else model.n_features_in_
    x = h.addVariables(n, lb=[0.0] * n, ub=[1.0] * n)
    try:
        add_predictor(h, m, x)
    except TypeError as e:
        if "no MILP encoding is registered" in str(e):
            pytest.skip(f"emlpress does not embed {type(model).__name__} in this build ({e})")
        raise


# ---- the solvers --------------------------------------------------------------------------


def emlpress_run(model, lo, hi, sense):
    t0 = time.perf_counter()
    h = highspy.Highs()
    h.silent()
    x = h.addVariables(len(lo), lb=[float(v) for v in lo], ub=[float(v) for v in hi])
    handle = add_predictor(h, emlpress_model(model), x)
    enc = time.perf_counter() - t0
    h.setObjective(handle.outputs[0], sense=highspy.ObjSense.kMaximize if sense == "max"
                   else highspy.ObjSense.kMinimize)
    # HiGHS' threads are process-wide and set once (a second value fails the next run): every
    # HiGHS row of the suite leaves them as emlpress' solve sets them
    sol = solve(h, time_limit=TIME_LIMIT, mip_gap=GAP, mip_abs_gap=ABS_GAP)
    xs = handle.values(sol)[0] if sol.has_solution else None
    return sol.status, float(sol.objective), None if xs is None else np.asarray(xs, float).ravel(), \
        enc, sol.solve_s


def _peer(module):
    import importlib

    return importlib.import_module(f"peers.{module}")


PEERS = {"gurobi-ml+gurobi": "gurobi_ml_peer", "highs-ml+highs": "highs_ml_peer",
         "pyscipopt-ml+scip": "scip_ml_peer"}


def peer_run(solver, model, lo, hi, sense):
    mod = _peer(PEERS[solver])
    try:
        m, x, y, _, enc = mod.build(model, lo, hi, GAP, ABS_GAP, TIME_LIMIT)
    except Exception as e:  # noqa: BLE001  (each peer refuses an unsupported kind its own way)
        if "too large" in str(e).lower() or getattr(e, "errno", None) == 10010:
            return "over the licence", float("nan"), None, float("nan"), float("nan")
        return f"refused: {type(e).__name__}: {str(e).splitlines()[0][:80]}", float("nan"), None, \
            float("nan"), float("nan")
    status, obj, xs, dt = mod.solve(m, x, y, sense)
    return status, obj, xs, enc, dt


# ---- the checks ---------------------------------------------------------------------------

#: per (data, kind, sense): solver -> (status, objective, predict at its solution, extra_info)
ANSWERS: dict = {}


def tol(a, b=0.0):
    """Two optima of gap GAP/ABS_GAP agree within this (plus float32 thresholds' rounding)."""
    return 2 * (GAP * max(abs(a), abs(b), 1.0) + ABS_GAP) + 1e-6


def check(key, solver, status, obj, f, info, sense):
    """The row's verdict: its predict at its solution against its objective, and its optimum
    against every other solver's verified value (updating theirs too). Returns whether an
    emlpress answer was proven wrong by a peer's verified point."""
    sign = 1.0 if sense == "max" else -1.0
    verdict = []
    if f is not None and abs(f - obj) > tol(obj, f):
        verdict.append(f"WRONG: predict at its solution is {f:.8g}, it reports {obj:.8g}")
    emlpress_wrong = False
    for other, (st, ob, fo, oinfo) in ANSWERS.get(key, {}).items():
        # a verified value beyond an OPTIMAL answer proves that answer wrong
        if status == "OPTIMAL" and fo is not None and sign * (fo - obj) > tol(obj, fo):
            verdict.append(f"WRONG optimum: {other} reached {fo:.8g} (by predict)")
        if st == "OPTIMAL" and f is not None and sign * (f - ob) > tol(ob, f):
            said = [c for c in (oinfo.get("check", "ok"),) if c not in ("ok", "no solution")]
            oinfo["check"] = "; ".join(said + [f"WRONG optimum: {solver} reached {f:.8g} (by predict)"])
            emlpress_wrong |= other == "emlpress+highs"
    info["check"] = "; ".join(verdict) or ("ok" if f is not None else "no solution")
    ANSWERS.setdefault(key, {})[solver] = (status, obj, f, info)
    return emlpress_wrong


SOLVERS = ["emlpress+highs", *PEERS]
DATA = ["diabetes", "digits", "tpc"]
QUICK = {("diabetes", "mlp", "max"), ("diabetes", "tree", "max")}


def _cases():
    grid = [(d, k, s) for d in DATA for k in list(KINDS)[:5] for s in ("max", "min")]
    for data, kind, sense in grid + LARGE:
        for solver in SOLVERS:  # emlpress first: the peers are checked against its answer
            marks = [quick] if (data, kind, sense) in QUICK else []
            yield pytest.param(data, kind, sense, solver, marks=marks,
                               id=f"{data}-{kind}-{sense}-{solver}")


@pytest.mark.parametrize("data, kind, sense, solver", list(_cases()))
def test_kind(benchmark, data, kind, sense, solver):
    model = fitted(data, kind)
    lo, hi = box(data)
    label(benchmark, f"{kind} {data} {sense}", solver, peer=solver != "emlpress+highs")
    if solver == "emlpress+highs":
        emlpress_supports(model)
        run = emlpress_run
    else:
        _peer(PEERS[solver]).require()

        def run(model, lo, hi, sense):
            return peer_run(solver, model, lo, hi, sense)

    status, obj, xs, enc, dt = benchmark.pedantic(run, args=(model, lo, hi, sense), rounds=1,
                                                  iterations=1)
    f = None if xs is None else float(np.ravel(model.predict(np.asarray(xs, float)[None]))[0])
    info = dict(status=status, objective=obj, encode_s=enc, solve_s=dt,
                predict_at_solution=float("nan") if f is None else f)
    wrong = check((data, kind, sense), solver, status, obj, f, info, sense)
    benchmark.extra_info.update(info)
    print(f"\n{data} {kind} {sense} {solver}: " + ", ".join(
        f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items()))
    if solver == "emlpress+highs":
        assert status in ("OPTIMAL", "TIME_LIMIT"), status
        # at the time limit without an incumbent (the (512,512) MLP) there is nothing to check
        assert info["check"] == "ok" or (status, info["check"]) == ("TIME_LIMIT", "no solution"), \
            info["check"]
    assert not wrong, f"emlpress' optimum is beaten by {solver}'s verified solution: {info}"


# ---- interop: the peers' solve time with and without emlpress' bounds ---------------------

INTEROP = {"diabetes": (32, 32), "tpc": (32, 32)}
INTEROP_VARIANTS = ["gurobi-ml", "gurobi-ml+crown", "gurobi-ml+lp", "omlt", "omlt+crown", "omlt+lp"]
INTEROP_ANSWERS: dict = {}


def _omlt_model(model, lo, hi):
    import pyomo.environ as pyo
    from omlt import OmltBlock
    from omlt.neuralnet import ReluBigMFormulation

    from peers.omlt_peer import omlt_definition

    net = emlpress_model(model).with_domain(lo, hi)
    nd = omlt_definition(net)
    m = pyo.ConcreteModel()
    m.nn = OmltBlock()
    m.nn.build_formulation(ReluBigMFormulation(nd))
    m.obj = pyo.Objective(expr=m.nn.outputs[0], sense=pyo.maximize)
    return m, nd


def _omlt_solve(m):
    import pyomo.environ as pyo
    from pyomo.contrib.appsi.solvers import Highs

    opt = Highs()
    opt.config.time_limit = TIME_LIMIT
    opt.config.load_solution = False  # a time limit without a feasible point is an answer too
    opt.highs_options = {"mip_rel_gap": GAP, "mip_abs_gap": ABS_GAP}  # threads: see emlpress_run
    t0 = time.perf_counter()
    res = opt.solve(m)
    dt = time.perf_counter() - t0
    status = "OPTIMAL" if res.termination_condition.name == "optimal" else res.termination_condition.name
    if res.best_feasible_objective is None:
        return status, float("nan"), None, dt
    res.solution_loader.load_vars()
    x = np.array([pyo.value(m.nn.inputs[i]) for i in range(len(m.nn.inputs))])
    return status, float(res.best_feasible_objective), x, dt


@pytest.mark.parametrize("data, variant", [
    pytest.param(d, v, marks=[quick] if d == "diabetes" and v in ("gurobi-ml", "gurobi-ml+crown") else [])
    for d in INTEROP for v in INTEROP_VARIANTS])
def test_interop(benchmark, data, variant):
    from emlpress import interop

    model = fitted(data, "mlp", INTEROP[data])
    lo, hi = box(data)
    peer, _, method = variant.partition("+")
    label(benchmark, f"interop mlp{list(INTEROP[data])} {data} {peer}", variant, peer=not method,
          against=[f"{peer}+crown", f"{peer}+lp"])
    if peer == "gurobi-ml":
        mod = _peer("gurobi_ml_peer")
        mod.require()

        def run():
            m, x, y, pc, enc = mod.build(model, lo, hi, GAP, ABS_GAP, TIME_LIMIT)
            t = interop.tighten_gurobi_ml(pc, method) if method else None
            status, obj, xs, dt = mod.solve(m, x, y, "max")
            return status, obj, xs, enc, t, dt
    else:
        _peer("omlt_peer").require()

        def run():
            t0 = time.perf_counter()
            m, nd = _omlt_model(model, lo, hi)
            enc = time.perf_counter() - t0
            t = interop.tighten_omlt(m.nn, nd, method) if method else None
            status, obj, xs, dt = _omlt_solve(m)
            return status, obj, xs, enc, t, dt

    status, obj, xs, enc, t, dt = benchmark.pedantic(run, rounds=1, iterations=1)
    f = float(model.predict(np.asarray(xs)[None])[0]) if xs is not None else float("nan")
    info = dict(status=status, objective=obj, predict_at_solution=f, encode_s=enc,
                bounds_s=0.0 if t is None else t.total_s, solve_s=dt,
                stable=0 if t is None else t.n_stable, written=0 if t is None else t.written)
    benchmark.extra_info.update(info)
    print(f"\n{data} {variant}: " + ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in info.items()))
    if xs is None:
        return
    assert abs(f - obj) <= tol(obj, f), f"{variant}: predict at its solution {f} != objective {obj}"
    # the bounds are sound: with them the peer's optimum is the one it finds without them, and
    # no verified incumbent (of a run stopped at the limit) exceeds an optimum
    for other, (st, ob) in INTEROP_ANSWERS.get((data, peer), {}).items():
        if status == st == "OPTIMAL":
            assert abs(ob - obj) <= tol(ob, obj), f"{variant}: optimum {obj} != {other}'s {ob}"
        elif st == "OPTIMAL":
            assert obj <= ob + tol(ob, obj), f"{variant}: reached {obj} > {other}'s optimum {ob}"
        elif status == "OPTIMAL":
            assert ob <= obj + tol(ob, obj), f"{other}: reached {ob} > {variant}'s optimum {obj}"
    INTEROP_ANSWERS.setdefault((data, peer), {})[variant] = (status, obj)
