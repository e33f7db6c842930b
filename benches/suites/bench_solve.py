"""EML problems solved side by side (issue 34, point 5): emlpress' ``milp.solve`` against
gurobi-ml + Gurobi, PySCIPOpt-ML + SCIP (SOS1 and big-M), OMLT + HiGHS, highs-ml + HiGHS and
plain HiGHS on an interval big-M encoding, on the same problems in the same run.

Run: emlpress bench --only solve [--quick]   (or: python -m pytest benches/suites/bench_solve.py -s)

Problems (``tools/problems.py``, one solver-neutral form that every solver builds with its own
library): max and min of small trained networks (10-16-16-1, 5-12-12-12-1, 2-24-24-1 trained
here with scikit-learn, and the Goldstein-Price ``gp_2-128-128-64-1``); the optimal adversary
(maximise logit[target] - logit[true] over an l1 ball) on Serra's MNIST 784-100-100-10 with
the 20 shared images and their target classes at radius 1, 5 and 10, and on a 64-32-32-10
``load_digits`` classifier (20 test images, target (true + 1) mod 10) at the same radii; the
epidemics planning MILP with the [16]*16 and [64]*8 one-week networks over 3, 6 and 10 weeks;
the TPC bit-selection MILP of each benchmark with 12-15 error and time networks trained here
on the shared data.

Timed: building the model + solving (each solver's imports and Gurobi's first environment
paid before), one round (three for the small networks outside
``--quick``), time limit TIME_LIMIT s per solve ($EMLPRESS_BENCH_SOLVE_TIME_LIMIT; --quick:
QUICK_TIME_LIMIT), gaps relative 1e-4 and absolute 1e-6 for every solver. Checked: every
point by forward passes (``problems.evaluate``) and every answer against the others'
verified points (``problems.judge``): the ``check`` figure says "ok" or "WRONG: ...", and a
wrong row leaves the peer table (its role says why), as do "over the licence" (Gurobi's
size-limit error) and "refused" rows. ``test_emlpress_never_wrong`` (last) fails when an
emlpress answer was proven wrong.
"""

from __future__ import annotations

import importlib
import os
from functools import lru_cache

import pytest

from conftest import label, quick, shared
from peers.problem_solvers import SOLVERS, warm
from tools import problems as P

TIME_LIMIT = float(os.environ.get("EMLPRESS_BENCH_SOLVE_TIME_LIMIT", 60.0))
#: the quick profile's limits (16 problems x 7 solvers within about 10 minutes on 2 cores):
#: the small networks, where most solvers finish, QUICK_TIME_LIMIT s; the adversary and the
#: epidemics rows, where most stop at the limit, QUICK_HARD_TIME_LIMIT s
QUICK_TIME_LIMIT = float(os.environ.get("EMLPRESS_BENCH_SOLVE_QUICK_TIME_LIMIT", 10.0))
QUICK_HARD_TIME_LIMIT = QUICK_TIME_LIMIT / 2

SMALL_NETS = [*P.SMALL, "gp_2-128-128-64-1"]
EPS = (1.0, 5.0, 10.0)
IMAGES = range(20)


def _problems():
    """(problem id, quick?) in the suite's order."""
    for name in SMALL_NETS:
        for sense in ("max", "min"):
            yield f"small:{name}:{sense}", True
    for fam in ("mnist", "digits"):
        for eps in EPS:
            for i in IMAGES:
                yield f"{fam}:{i}:{eps:g}", eps == 5.0 and i < 3
    for bench in ("Convolution", "Correlation", "Saxpy"):
        yield f"tpc:{bench}:-", False
    for topo in ("16x16", "64x8"):
        for weeks in (3, 6, 10):
            yield f"epidemics:{topo}:{weeks}", weeks == 3


@lru_cache(maxsize=4)
def problem(pid: str) -> P.Problem:
    kind, a, b = pid.split(":")
    if kind == "small":
        return P.max_min(a, b)
    if kind == "mnist":
        shared("mnist", "serra2021_mnist_784-100-100-10.npz")
        return P.adversary("mnist", int(a), float(b))
    if kind == "digits":
        return P.adversary("digits", int(a), float(b))
    if kind == "tpc":
        shared("tpc")
        return P.tpc_problem(a)
    return P.epidemics(a, int(b))


#: problem id -> solver -> (Answer, the row's extra_info): the verdicts are redone after each
#: new answer, and earlier rows' figures updated (pytest-benchmark writes them at the end)
ANSWERS: dict = {}


def _update_checks(pid: str, sense: str) -> None:
    rows = ANSWERS[pid]
    verdicts = P.judge({s: a for s, (a, _) in rows.items()}, sense)
    for s, (a, info) in rows.items():
        info["check"] = verdicts[s]
        if s != "emlpress":  # a wrong or unsolved peer row is no speed figure
            bad = verdicts[s].startswith("WRONG") or a.status == "over the licence" or a.status.startswith("refused")
            info["role"] = f"peer, not compared: {verdicts[s][:60]}" if bad else "peer"


def _cases():
    for pid, q in _problems():
        for solver in SOLVERS:  # emlpress first
            yield pytest.param(pid, solver, marks=[quick] if q else [], id=f"{pid}-{solver}")


@pytest.mark.parametrize("pid, solver", list(_cases()))
def test_solve(benchmark, request, pid, solver):
    run, peer_module = SOLVERS[solver]
    if peer_module is not None:
        importlib.import_module(f"peers.{peer_module}").require()  # a skip naming the package
    p = problem(pid)
    quick_run = "quick" in (request.config.getoption("markexpr") or "")
    limit = TIME_LIMIT if not quick_run else QUICK_TIME_LIMIT if p.family == "small" else QUICK_HARD_TIME_LIMIT
    rounds = 3 if p.family == "small" and not quick_run else 1
    label(benchmark, f"problem {p.name}", solver, peer=solver != "emlpress")
    warm(solver)  # imports and Gurobi's first licence check: not the problem's time
    r = benchmark.pedantic(run, args=(p, limit), rounds=rounds, iterations=1)
    ans = P.checked(p, r)
    info = {k: v for k, v in r.items() if k != "x"}
    info.update(verified=float("nan") if ans.verified is None else ans.verified,
                violation=float("nan") if ans.violation is None else ans.violation, time_limit=limit,
                columns=p.n, rows=p.A.shape[0])
    benchmark.extra_info.update(info)
    ANSWERS.setdefault(pid, {})[solver] = (ans, benchmark.extra_info)
    _update_checks(pid, p.sense)
    print(f"\n{p.name} {solver}: " + ", ".join(
        f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in benchmark.extra_info.items()
        if k not in ("impl", "role")))


@quick
def test_emlpress_never_wrong():
    """No emlpress answer of this run was proven wrong by its own forward pass or by another
    solver's verified point (the peers' rows show their verdicts; emlpress' must be ok)."""
    wrong = {pid: rows["emlpress"][1]["check"] for pid, rows in ANSWERS.items()
             if "emlpress" in rows and str(rows["emlpress"][1].get("check", "")).startswith("WRONG")}
    if not ANSWERS:
        pytest.skip("no problem of this suite ran in this session")
    assert not wrong, wrong
