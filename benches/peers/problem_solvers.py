"""Every solver of ``suites/bench_solve.py`` on a ``tools.problems.Problem``: emlpress
(``milp.add_network`` + ``milp.solve``), gurobi-ml + Gurobi, PySCIPOpt-ML + SCIP (SOS1 and
big-M), OMLT + HiGHS, highs-ml + HiGHS, and plain HiGHS on an interval big-M encoding written
here in numpy (what a user would write with highspy alone).

Each ``run(problem, time_limit)`` builds the model from the problem's arrays (networks through
the library's own ``add_predictor_constr`` / formulation, as a user of it would), solves it
with the same gaps (tools.problems.GAP, ABS_GAP), Gurobi and SCIP on one thread (HiGHS'
threads are process-wide: left as emlpress sets them), and returns a dict: ``status``
(OPTIMAL, TIME_LIMIT, INFEASIBLE, ..., "over the licence", "refused: ..."), ``objective``
and ``bound`` (nan when none), ``x`` (the problem's columns at the solver's point, or None),
``encode_s``, ``solve_s``, and what else the solver says (emlpress' Solution fields)."""

from __future__ import annotations

import logging
import time

import numpy as np

from tools.problems import ABS_GAP, GAP, Problem

E_I, E_F = np.array([], dtype=np.int32), np.array([], dtype=np.float64)
NAN = float("nan")


def as_mlp(net):
    """A fitted-looking scikit-learn MLPRegressor computing ``net`` (the form gurobi-ml,
    PySCIPOpt-ML and highs-ml take): ``coefs_[l] = weights[l].T``, ReLU hidden layers,
    identity output."""
    from sklearn.neural_network import MLPRegressor

    m = MLPRegressor(hidden_layer_sizes=tuple(W.shape[0] for W in net.weights[:-1]), activation="relu")
    m.coefs_ = [np.asarray(W, float).T.copy() for W in net.weights]
    m.intercepts_ = [np.asarray(b, float).copy() for b in net.biases]
    m.n_layers_ = len(net.weights) + 1
    m.n_outputs_ = net.weights[-1].shape[0]
    m.out_activation_ = "identity"
    m.n_features_in_ = net.weights[0].shape[1]
    return m


def _result(status, objective=NAN, bound=NAN, x=None, encode_s=NAN, solve_s=NAN, **extra):
    return dict(status=status, objective=float(objective), bound=float(bound), x=x,
                encode_s=encode_s, solve_s=solve_s, **extra)


def _add_rows(h, A, lo, hi, colmap=None) -> None:
    """Rows lo <= A x <= hi into a highspy model in one call (columns through ``colmap``)."""
    if A.shape[0] == 0:
        return
    A = A.tocsr()
    idx = A.indices if colmap is None else colmap[A.indices]
    h.addRows(A.shape[0], lo, hi, A.nnz, A.indptr[:-1].astype(np.int32), idx.astype(np.int32),
              A.data.astype(float))


def _highs_objective(h, p: Problem, colmap=None) -> None:
    import highspy

    nz = np.flatnonzero(p.c)
    cols = nz if colmap is None else colmap[nz]
    h.changeColsCost(len(nz), cols.astype(np.int32), p.c[nz])
    h.changeObjectiveSense(highspy.ObjSense.kMaximize if p.sense == "max" else highspy.ObjSense.kMinimize)


def _highs_status(h) -> str:
    import highspy

    s = h.getModelStatus()
    return {highspy.HighsModelStatus.kOptimal: "OPTIMAL", highspy.HighsModelStatus.kTimeLimit: "TIME_LIMIT",
            highspy.HighsModelStatus.kInfeasible: "INFEASIBLE"}.get(s, s.name.removeprefix("k").upper())


def _highs_answer(h, n_cols: int, colmap=None):
    info = h.getInfo()
    sol = h.getSolution()
    x = None
    if sol.value_valid and info.primal_solution_status == 2:  # kSolutionStatusFeasible
        v = np.asarray(sol.col_value)
        x = v[:n_cols] if colmap is None else v[colmap]
    bound = info.mip_dual_bound if info.mip_node_count >= 0 else NAN
    obj = info.objective_function_value if x is not None else NAN
    return _highs_status(h), obj, bound, x, int(max(info.mip_node_count, 0))


# ---- emlpress ---------------------------------------------------------------------------


def emlpress(p: Problem, time_limit: float):
    """``milp.add_network`` for every block (default bounds), ``milp.solve(h, time_limit=...)``:
    the public API only, whatever ``solve`` does in this build."""
    import highspy

    from emlpress.milp import add_network, solve

    t0 = time.perf_counter()
    h = highspy.Highs()
    h.silent()
    outs = np.zeros(p.n, bool)
    outs[p.output_cols] = True
    dec = np.flatnonzero(~outs)
    colmap = np.full(p.n, -1, dtype=np.int64)
    colmap[dec] = np.arange(len(dec))
    h.addCols(len(dec), np.zeros(len(dec)), p.lb[dec], p.ub[dec], 0, E_I, E_I, E_F)
    ints = np.flatnonzero(p.integer[dec]).astype(np.int32)
    if len(ints):
        h.changeColsIntegrality(len(ints), ints, np.ones(len(ints), np.uint8))
    for k, blk in enumerate(p.blocks):
        hd = add_network(h, blk.net, [int(c) for c in colmap[blk.inputs]], name=f"nn{k}")
        colmap[blk.outputs] = np.asarray(hd.output_cols)
    _add_rows(h, p.A, p.row_lo, p.row_hi, colmap)
    _highs_objective(h, p, colmap)
    enc = time.perf_counter() - t0
    sol = solve(h, time_limit=time_limit, mip_gap=GAP, mip_abs_gap=ABS_GAP)
    x = np.asarray(sol.col_values)[colmap] if sol.has_solution else None
    # every scalar field of the Solution (the other parts of issue 34 add theirs: which search
    # answered, the MIP start, ...), and named properties where present
    scalar = (str, int, float, bool)
    extra = {k: v for k, v in vars(sol).items() if isinstance(v, scalar) and k not in _SHOWN}
    extra.update({k: getattr(sol, k) for k in ("solver", "start", "certified")
                  if k not in extra and isinstance(getattr(sol, k, None), scalar)})
    return _result(sol.status, sol.objective if sol.has_solution else NAN, sol.best_bound, x, enc,
                   sol.solve_s, verify=max(sol.verify_diff.values(), default=NAN), **extra)


#: Solution fields that _result records under its own names
_SHOWN = {"status", "objective", "best_bound", "encode_s", "solve_s", "has_solution"}


# ---- plain HiGHS, interval big-M --------------------------------------------------------


def bigm_rows(net, lo, hi, in_cols, out_cols, first: int):
    """The textbook big-M encoding of ``net`` with interval bounds from the box lo/hi of its
    input columns: per hidden unit a column ``a`` and, when unstable, a binary ``d`` with
    a >= W a' + b, a <= W a' + b - l (1 - d), a <= u d; the outputs tied to ``out_cols``.
    Returns (column lb, ub, integrality (bool), CSR rows (indptr, indices, values), row lo,
    row hi) for new columns numbered from ``first``."""
    clb, cub, cint = [], [], []
    indptr, ind, val, rlo, rhi = [0], [], [], [], []

    def row(cols, coefs, lo_, hi_):
        ind.extend(int(c) for c in cols)
        val.extend(float(v) for v in coefs)
        indptr.append(len(ind))
        rlo.append(lo_)
        rhi.append(hi_)

    prev = np.asarray(in_cols)
    l_in, u_in = np.asarray(lo, float), np.asarray(hi, float)
    for k, (W, b) in enumerate(zip(net.weights, net.biases)):
        W, b = np.asarray(W), np.asarray(b)
        c, r = (l_in + u_in) / 2, (u_in - l_in) / 2
        zl, zu = W @ c + b - np.abs(W) @ r, W @ c + b + np.abs(W) @ r
        if k == len(net.weights) - 1:
            for i in range(W.shape[0]):  # y_i - W_i a' = b_i
                row([out_cols[i], *prev], [1.0, *(-W[i])], b[i], b[i])
            break
        a = first + len(clb) + np.arange(W.shape[0])
        clb += [0.0] * W.shape[0]
        cub += np.maximum(zu, 0.0).tolist()
        cint += [False] * W.shape[0]
        for i in range(W.shape[0]):
            if zu[i] <= 0:
                continue  # a in [0, 0]
            if zl[i] >= 0:
                row([a[i], *prev], [1.0, *(-W[i])], b[i], b[i])
                continue
            d = first + len(clb)
            clb.append(0.0)
            cub.append(1.0)
            cint.append(True)
            row([a[i], *prev], [1.0, *(-W[i])], b[i], np.inf)
            row([a[i], *prev, d], [1.0, *(-W[i]), -zl[i]], -np.inf, b[i] - zl[i])
            row([a[i], d], [1.0, -zu[i]], -np.inf, 0.0)
        prev, l_in, u_in = a, np.maximum(zl, 0.0), np.maximum(zu, 0.0)
    return (np.array(clb), np.array(cub), np.array(cint, bool),
            (np.array(indptr, np.int32), np.array(ind, np.int32), np.array(val)), np.array(rlo), np.array(rhi))


def _run_highs(h, p: Problem, time_limit: float, t0: float) -> dict:
    """The objective, the gaps and the limit set on a built highspy model ``h`` (its columns
    those of ``p``, built since ``t0``), HiGHS run, its answer read: the plain big-M's and
    highs-ml's common end."""
    _highs_objective(h, p)
    for k, v in {"mip_rel_gap": GAP, "mip_abs_gap": ABS_GAP, "time_limit": float(time_limit)}.items():
        h.setOptionValue(k, v)
    enc = time.perf_counter() - t0
    t1 = time.perf_counter()
    h.run()
    dt = time.perf_counter() - t1
    status, obj, bound, x, nodes = _highs_answer(h, p.n)
    return _result(status, obj, bound, x, enc, dt, nodes=nodes)


def highs_bigm(p: Problem, time_limit: float):
    """Plain highspy: the problem's columns and rows, each network by :func:`bigm_rows`
    (interval bounds over its input columns' box), HiGHS' MIP."""
    import highspy

    t0 = time.perf_counter()
    h = highspy.Highs()
    h.silent()
    h.addCols(p.n, np.zeros(p.n), p.lb, p.ub, 0, E_I, E_I, E_F)
    ints = np.flatnonzero(p.integer).astype(np.int32)
    if len(ints):
        h.changeColsIntegrality(len(ints), ints, np.ones(len(ints), np.uint8))
    _add_rows(h, p.A, p.row_lo, p.row_hi)
    for blk in p.blocks:
        first = h.getNumCol()
        clb, cub, cint, (ptr, ind, val), rlo, rhi = bigm_rows(
            blk.net, p.lb[blk.inputs], p.ub[blk.inputs], blk.inputs, blk.outputs, first)
        h.addCols(len(clb), np.zeros(len(clb)), clb, cub, 0, E_I, E_I, E_F)
        bins = (first + np.flatnonzero(cint)).astype(np.int32)
        if len(bins):
            h.changeColsIntegrality(len(bins), bins, np.ones(len(bins), np.uint8))
        h.addRows(len(rlo), rlo, rhi, len(ind), ptr[:-1], ind, val)
    return _run_highs(h, p, time_limit, t0)


# ---- highs-ml ---------------------------------------------------------------------------


def highs_ml(p: Problem, time_limit: float):
    import highspy
    from highs_ml import add_predictor_constr

    t0 = time.perf_counter()
    h = highspy.Highs()
    h.silent()
    xs = [h.addVariable(lb=float(a), ub=float(b)) for a, b in zip(p.lb, p.ub)]
    ints = np.flatnonzero(p.integer).astype(np.int32)
    if len(ints):
        h.changeColsIntegrality(len(ints), ints, np.ones(len(ints), np.uint8))
    _add_rows(h, p.A, p.row_lo, p.row_hi)
    for blk in p.blocks:
        if len(blk.outputs) != 1:  # highs-ml 1.0: "Multi-output MLPs are not supported yet."
            return _result(f"refused: highs-ml embeds single-output MLPs only ({len(blk.outputs)} outputs)")
        add_predictor_constr(h, as_mlp(blk.net), [xs[int(j)] for j in blk.inputs],
                             output_var=xs[int(blk.outputs[0])])
    return _run_highs(h, p, time_limit, t0)


# ---- gurobi-ml + Gurobi -----------------------------------------------------------------

#: Gurobi's error number for a model beyond the size-limited licence
OVER_LICENCE = 10010


def gurobi_ml(p: Problem, time_limit: float):
    """gurobi-ml's add_predictor_constr on Gurobi; a model over the size-limited licence
    (Gurobi's error 10010, raised while building or optimising) is "over the licence"."""
    import gurobipy as gp
    from gurobi_ml import add_predictor_constr

    t0 = time.perf_counter()
    env = gp.Env(params={"OutputFlag": 0})
    m = gp.Model(env=env)
    try:
        m.Params.MIPGap = GAP
        m.Params.MIPGapAbs = ABS_GAP
        m.Params.Threads = 1
        m.Params.TimeLimit = float(time_limit)
        vt = np.where(p.integer, gp.GRB.INTEGER, gp.GRB.CONTINUOUS)
        x = m.addMVar(p.n, lb=p.lb, ub=p.ub, vtype=vt)
        fin_hi, fin_lo = np.isfinite(p.row_hi), np.isfinite(p.row_lo)
        if fin_hi.any():
            m.addMConstr(p.A[np.flatnonzero(fin_hi)], x, "<", p.row_hi[fin_hi])
        if fin_lo.any():
            m.addMConstr(p.A[np.flatnonzero(fin_lo)], x, ">", p.row_lo[fin_lo])
        for blk in p.blocks:
            add_predictor_constr(m, as_mlp(blk.net), x[blk.inputs].reshape(1, -1), x[blk.outputs].reshape(1, -1))
        m.setObjective(p.c @ x, gp.GRB.MAXIMIZE if p.sense == "max" else gp.GRB.MINIMIZE)
        m.update()
        enc = time.perf_counter() - t0
        t1 = time.perf_counter()
        m.optimize()
        dt = time.perf_counter() - t1
    except gp.GurobiError as e:
        if e.errno == OVER_LICENCE:
            return _result("over the licence", encode_s=time.perf_counter() - t0, note=str(e)[:80])
        raise
    status = {gp.GRB.OPTIMAL: "OPTIMAL", gp.GRB.TIME_LIMIT: "TIME_LIMIT",
              gp.GRB.INFEASIBLE: "INFEASIBLE"}.get(m.Status, f"status {m.Status}")
    bound = float(m.ObjBound) if m.Status in (gp.GRB.OPTIMAL, gp.GRB.TIME_LIMIT) else NAN
    out = _result(status, m.ObjVal if m.SolCount else NAN, bound,
                  np.asarray(x.X, float) if m.SolCount else None, enc, dt, nodes=int(m.NodeCount))
    m.dispose()
    env.dispose()
    return out


# ---- PySCIPOpt-ML + SCIP ----------------------------------------------------------------


def scip_ml(p: Problem, time_limit: float, formulation: str = "sos"):
    """PySCIPOpt-ML's add_predictor_constr on SCIP with ReLU ``formulation`` "sos" (its
    default, SOS1) or "bigm"."""
    from pyscipopt import quicksum
    from pyscipopt_ml import add_predictor_constr
    from peers.scip_ml_peer import scip_model

    t0 = time.perf_counter()
    m = scip_model(GAP, ABS_GAP, time_limit)
    x = np.array([m.addVar(lb=float(a) if np.isfinite(a) else None, ub=float(b) if np.isfinite(b) else None,
                           vtype="I" if i else "C") for a, b, i in zip(p.lb, p.ub, p.integer)], dtype=object)
    A = p.A.tocsr()
    for r in range(A.shape[0]):
        sl = slice(A.indptr[r], A.indptr[r + 1])
        e = quicksum(float(v) * x[j] for j, v in zip(A.indices[sl], A.data[sl]))
        lo, hi = p.row_lo[r], p.row_hi[r]
        if lo == hi:
            m.addCons(e == float(lo))
        else:
            if np.isfinite(lo):
                m.addCons(e >= float(lo))
            if np.isfinite(hi):
                m.addCons(e <= float(hi))
    for k, blk in enumerate(p.blocks):
        add_predictor_constr(m, as_mlp(blk.net), x[blk.inputs][None], x[blk.outputs][None],
                             unique_naming_prefix=f"p{k}_", formulation=formulation)
    nz = np.flatnonzero(p.c)
    m.setObjective(quicksum(float(p.c[j]) * x[j] for j in nz), "maximize" if p.sense == "max" else "minimize")
    enc = time.perf_counter() - t0
    t1 = time.perf_counter()
    m.optimize()
    dt = time.perf_counter() - t1
    # gaplimit: stopped within the gap it was given, what the others call optimal
    status = {"optimal": "OPTIMAL", "gaplimit": "OPTIMAL", "timelimit": "TIME_LIMIT",
              "infeasible": "INFEASIBLE"}.get(m.getStatus(), m.getStatus())
    xs = None
    if m.getNSols():
        sol = m.getBestSol()
        xs = np.array([sol[v] for v in x], float)
    return _result(status, m.getObjVal() if xs is not None else NAN, m.getDualbound(), xs, enc, dt,
                   nodes=int(m.getNNodes()))


# ---- OMLT + HiGHS -----------------------------------------------------------------------


def omlt(p: Problem, time_limit: float):
    """OMLT's ReluBigMFormulation (its own interval bounds from the input columns' box) on
    Pyomo, HiGHS through appsi."""
    import pyomo.environ as pyo
    from omlt import OmltBlock
    from omlt.neuralnet import ReluBigMFormulation
    from pyomo.contrib.appsi.solvers import Highs

    from peers.omlt_peer import omlt_definition

    # OMLT sets its input variables' initial values outside their bounds (Pyomo warning W1002
    # per variable): noise in the benchmark's log, not a fault of the model
    logging.getLogger("pyomo.core").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(p.n), within=pyo.Reals)
    for j in range(p.n):
        m.x[j].setlb(float(p.lb[j]) if np.isfinite(p.lb[j]) else None)
        m.x[j].setub(float(p.ub[j]) if np.isfinite(p.ub[j]) else None)
        if p.integer[j]:
            m.x[j].domain = pyo.Integers
    m.rows = pyo.ConstraintList()
    A = p.A.tocsr()
    for r in range(A.shape[0]):
        sl = slice(A.indptr[r], A.indptr[r + 1])
        e = sum(float(v) * m.x[int(j)] for j, v in zip(A.indices[sl], A.data[sl]))
        lo, hi = p.row_lo[r], p.row_hi[r]
        m.rows.add(pyo.inequality(float(lo) if np.isfinite(lo) else None, e, float(hi) if np.isfinite(hi) else None)
                   if lo != hi else e == float(lo))
    m.links = pyo.ConstraintList()
    for k, blk in enumerate(p.blocks):
        b = OmltBlock()
        m.add_component(f"nn{k}", b)
        b.build_formulation(ReluBigMFormulation(omlt_definition(
            blk.net.with_domain(p.lb[blk.inputs], p.ub[blk.inputs]))))
        for i, j in enumerate(blk.inputs):
            m.links.add(b.inputs[i] == m.x[int(j)])
        for i, j in enumerate(blk.outputs):
            m.links.add(b.outputs[i] == m.x[int(j)])
    nz = np.flatnonzero(p.c)
    m.obj = pyo.Objective(expr=sum(float(p.c[j]) * m.x[int(j)] for j in nz),
                          sense=pyo.maximize if p.sense == "max" else pyo.minimize)
    enc = time.perf_counter() - t0
    opt = Highs()
    opt.config.time_limit = float(time_limit)
    opt.config.load_solution = False  # a time limit without a feasible point is an answer too
    opt.highs_options = {"mip_rel_gap": GAP, "mip_abs_gap": ABS_GAP}
    t1 = time.perf_counter()
    res = opt.solve(m)
    dt = time.perf_counter() - t1
    status = {"optimal": "OPTIMAL", "maxTimeLimit": "TIME_LIMIT", "infeasible": "INFEASIBLE"}.get(
        res.termination_condition.name, res.termination_condition.name)
    x = None
    if res.best_feasible_objective is not None:
        res.solution_loader.load_vars()
        x = np.array([pyo.value(m.x[j]) for j in range(p.n)], float)
    bound = res.best_objective_bound
    return _result(status, NAN if x is None else res.best_feasible_objective,
                   NAN if bound is None or not np.isfinite(bound) else bound, x, enc, dt)


def warm(solver: str) -> None:
    """What the first run of ``solver`` in a process would pay outside its problem, paid
    before timing: its modules imported, and Gurobi's first environment (its licence check
    took 3.8 s here, against 0.05 s for later ones)."""
    import sklearn.neural_network  # noqa: F401  (as_mlp)

    if solver == "gurobi-ml+gurobi":
        import gurobi_ml  # noqa: F401
        import gurobipy as gp

        gp.Env(params={"OutputFlag": 0}).dispose()
    elif solver.startswith("pyscipopt-ml"):
        import pyscipopt_ml  # noqa: F401
    elif solver == "omlt+highs":
        import omlt.neuralnet  # noqa: F401
        import pyomo.contrib.appsi.solvers
        import pyomo.environ  # noqa: F401
    elif solver == "highs-ml+highs":
        import highs_ml  # noqa: F401
    else:
        import emlpress.milp  # noqa: F401


#: the suite's solvers: name -> (run(problem, time_limit), the peer module whose require()
#: skips naming a missing package, or None)
SOLVERS = {
    "emlpress": (emlpress, None),
    "gurobi-ml+gurobi": (gurobi_ml, "gurobi_ml_peer"),
    "pyscipopt-ml+scip sos1": (scip_ml, "scip_ml_peer"),
    "pyscipopt-ml+scip bigm": (lambda p, t: scip_ml(p, t, "bigm"), "scip_ml_peer"),
    "omlt+highs": (omlt, "omlt_peer"),
    "highs-ml+highs": (highs_ml, "highs_ml_peer"),
    "highs interval big-M": (highs_bigm, None),
}
