"""The side-by-side solver benchmark's answer checker (benches/tools/problems.py): a wrong
peer answer is caught, a right one is not, and the plain HiGHS big-M peer it measures
against finds the optimum a dense grid finds."""

import sys
from pathlib import Path

import numpy as np
import pytest

from emlpress import Network

BENCHES = Path(__file__).resolve().parents[1] / "benches"
sys.path.insert(0, str(BENCHES))

from peers.problem_solvers import emlpress as emlpress_solver  # noqa: E402
from peers.problem_solvers import highs_bigm  # noqa: E402
from tools import problems as P  # noqa: E402


def _net(seed=0, sizes=(2, 8, 8, 1)):
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(size=(o, i)) * np.sqrt(2.0 / i) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=o) * 0.1 for o in sizes[1:]]
    return Network(Ws, bs, -np.ones(sizes[0]), np.ones(sizes[0]))


def _max_problem(net, budget=None):
    """max net(x) over the box, optionally with the row x0 + x1 <= budget."""
    B = P._Builder()
    x = B.cols(net.lo, net.hi)
    if budget is not None:
        B.row({int(x[0]): 1.0, int(x[1]): 1.0}, hi=budget)
    (y,) = B.network(net, x)
    return B.problem("tiny", "small", {int(y): 1.0}, "max")


def _grid_max(net, budget=None, n=401):
    g = np.linspace(-1, 1, n)
    X = np.array(np.meshgrid(g, g)).reshape(2, -1).T
    if budget is not None:
        X = X[X.sum(1) <= budget]
    return float(net.forward(X)[:, 0].max())


def _answer(p, r):
    v, viol = P.evaluate(p, r["x"]) if r["x"] is not None else (None, None)
    return P.Answer(r["status"], r["objective"], r["bound"], v, viol)


def test_solvers_agree_with_a_grid_and_the_checker_says_ok():
    net = _net(0)
    p = _max_problem(net, budget=0.5)
    answers = {"emlpress": _answer(p, emlpress_solver(p, 30.0)), "highs big-M": _answer(p, highs_bigm(p, 30.0))}
    grid = _grid_max(net, budget=0.5)
    for s, a in answers.items():
        assert a.status == "OPTIMAL", s
        # the optimum is at least the grid's best, and not above it by more than the grid's
        # resolution can hide (Lipschitz bound of the net times the grid step)
        lip = np.prod([np.abs(W).sum(1).max() for W in net.weights])
        assert grid - P.tol(grid) <= a.verified <= grid + lip * 2 / 400, (s, a, grid)
    assert P.judge(answers, "max") == {"emlpress": "ok", "highs big-M": "ok"}


def test_a_fabricated_wrong_answer_is_flagged():
    net = _net(1)
    p = _max_problem(net)
    right = highs_bigm(p, 30.0)
    good = _answer(p, right)
    assert P.judge({"highs": good}, "max") == {"highs": "ok"}
    x = right["x"]
    # a worse point claimed optimal: its own value is what it says, but another solver's
    # verified point beats it
    worse = net.lo + 0.0
    f_worse = float(net.forward(worse[None])[0, 0])
    assert f_worse < good.verified - 1e-3  # the test's premise: the corner is not the optimum
    pw = x.copy()
    pw[:2] = worse
    pw[-1] = f_worse
    v = P.judge({"highs": good, "peer": _answer(p, dict(status="OPTIMAL", objective=f_worse, bound=f_worse, x=pw))}, "max")
    assert v["highs"] == "ok" and v["peer"].startswith("WRONG optimum"), v
    # the same point with the optimum's objective reported (the solver's outputs lie): its
    # forward pass gives it away, even with no other solver
    lie = pw.copy()
    lie[-1] = good.verified
    v = P.judge({"peer": _answer(p, dict(status="OPTIMAL", objective=good.verified, bound=good.verified, x=lie))}, "max")
    assert v["peer"].startswith("WRONG: the forward pass at its point gives"), v
    # a time-limited run whose dual bound excludes the verified optimum
    v = P.judge({"highs": good, "peer": P.Answer("TIME_LIMIT", bound=good.verified - 1.0)}, "max")
    assert v["peer"].startswith("WRONG bound"), v
    # INFEASIBLE beside a feasible point
    v = P.judge({"highs": good, "peer": P.Answer("INFEASIBLE")}, "max")
    assert v["peer"].startswith("WRONG: INFEASIBLE"), v
    # a point outside a row: (1, 1) with x0 + x1 <= -1.5, its objective honest
    q = _max_problem(net, budget=-1.5)
    f11 = float(net.forward(np.ones((1, 2)))[0, 0])
    qa = _answer(q, dict(status="OPTIMAL", objective=f11, bound=f11, x=np.array([1.0, 1.0, f11])))
    assert qa.violation == pytest.approx(3.5 / 1.5)
    assert P.judge({"peer": qa}, "max")["peer"].startswith("WRONG: its point violates the model"), qa
    # at the time limit without a point: no verdict on it, and not "ok"
    assert P.judge({"highs": good, "peer": P.Answer("TIME_LIMIT")}, "max")["peer"] == "no solution"


def test_chained_networks_are_evaluated_from_the_recomputed_state():
    """The second network's value is the forward pass of the first's forward pass, not of the
    output the solver reported for the first (a lie there would otherwise go unseen)."""
    n1, n2 = _net(2, (1, 4, 1)), _net(3, (1, 4, 1))
    B = P._Builder()
    x = B.cols([-1.0], [1.0])
    y1 = B.network(n1, x)
    (y2,) = B.network(n2, y1)
    p = B.problem("chain", "small", {int(y2): 1.0}, "max")
    pt = np.array([0.3, 0.0, 0.0])
    pt[1] = n1.forward(pt[None, :1])[0, 0] + 0.5  # a lie in the first network's output
    pt[2] = n2.forward(pt[None, 1:2])[0, 0]       # consistent with the lie
    obj, _ = P.evaluate(p, pt)
    assert obj == pytest.approx(n2.forward(n1.forward(pt[None, :1]))[0, 0], abs=1e-12)


def test_adversary_problem_is_the_l1_ball_and_the_logit_difference():
    """The adversary's rows are the l1 ball: the image is feasible with the logit difference
    as objective, a point 2 eps away is not; and the optimum solved by the plain big-M is
    beaten by no sampled point of the ball (nor below the image's own value)."""
    rng = np.random.default_rng(4)
    net = _net(4, (6, 10, 10, 4))
    x0 = rng.uniform(0.2, 0.8, 6)
    eps, true, target = 0.5, 1, 3
    p = P.adversary_problem(net, x0, true, target, eps, "tiny adversary")
    logits = net.forward(x0[None])[0]
    d0 = np.abs(x0 - x0)
    obj, viol = P.evaluate(p, np.concatenate([x0, d0, [0.0]]))
    assert viol == 0.0 and obj == pytest.approx(logits[target] - logits[true], abs=1e-12)
    far = x0.copy()
    far[:2] += [eps, eps]  # l1 distance 2 eps, d honest
    assert P.evaluate(p, np.concatenate([far, np.abs(far - x0), [0.0]]))[1] > P.FEAS_TOL
    r = highs_bigm(p, 30.0)
    assert r["status"] == "OPTIMAL"
    best, viol = P.evaluate(p, r["x"])
    assert viol <= P.FEAS_TOL and best >= obj - P.tol(obj)
    # random points of the ball (directions scaled to l1 radius eps, clipped to [0, 1])
    u = rng.laplace(size=(20000, 6))
    X = np.clip(x0 + u / np.abs(u).sum(1, keepdims=True) * eps * rng.uniform(0, 1, (20000, 1)), 0, 1)
    L = net.forward(X)
    assert (L[:, target] - L[:, true]).max() <= best + P.tol(best)


def _goal_record(image, solver, status, seconds, check="ok", eps=5.0, family="digits"):
    return dict(family=family, eps=eps, image=image, solver=solver, status=status, seconds=seconds, check=check)


def test_adversary_goal_table_counts_what_each_solver_proved():
    """solve_goals' adversary table from adversary_goal.py's records: proofs by each solver and
    by one only, incumbents (a "no solution" row has none), WRONG answers, medians of the
    proven instances' times, and an instance with one solver's answer only left out."""
    from tools.solve_goals import GUROBI, adversary_goal

    recs = [_goal_record(0, "emlpress", "OPTIMAL", 2.0), _goal_record(0, GUROBI, "TIME_LIMIT", 60.0, "no solution"),
            _goal_record(1, "emlpress", "OPTIMAL", 4.0), _goal_record(1, GUROBI, "OPTIMAL", 2.0),
            _goal_record(2, "emlpress", "TIME_LIMIT", 60.0), _goal_record(2, GUROBI, "OPTIMAL", 6.0),
            _goal_record(3, "emlpress", "TIME_LIMIT", 60.0, "WRONG bound 1: ..."),
            _goal_record(4, "emlpress", "OPTIMAL", 1.0)]  # Gurobi's answer missing: not counted
    rows = [r.split(" | ") for r in adversary_goal(recs).splitlines()[2:]]
    assert len(rows) == 2  # digits eps 5, digits in all
    # instances, emlpress OPTIMAL, Gurobi OPTIMAL, emlpress only, Gurobi only, incumbents
    # (emlpress, Gurobi), over the licence, WRONG, median times, Gurobi / emlpress on both
    assert rows[0][1:] == ["5", "3", "2", "2", "1", "1", "3", "2", "0", "0", "3 s", "4 s", "0.50x (n=1) |"], rows[0]
    recs[7:8] = [_goal_record(3, GUROBI, "OPTIMAL", 3.0)]
    rows = [r.split(" | ") for r in adversary_goal(recs).splitlines()[2:]]
    assert rows[0][2:5] == ["4", "2", "3"] and rows[0][10] == "1", rows[0]


def test_adversary_goal_driver_runs_both_solvers_verified_and_resumes(tmp_path, capsys):
    """adversary_goal.py on one digits instance: one verified, judged line per solver, both
    at the same optimum; a rerun skips it; a malformed spec is one line naming it."""
    from peers.gurobi_ml_peer import require
    from tools import adversary_goal as G

    require()
    out = tmp_path / "adv.jsonl"
    assert G.main(["digits:1:0", "-o", str(out), "--time-limit", "30"]) == 0
    import json

    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["solver"] for r in recs] == list(G.PAIR)
    assert all(r["status"] == "OPTIMAL" and r["check"] == "ok" and r["violation"] <= P.FEAS_TOL for r in recs), recs
    assert recs[0]["verified"] == pytest.approx(recs[1]["verified"], abs=P.tol(recs[1]["verified"]))
    assert recs[0]["verified"] >= recs[0]["clean"]  # the image itself is in the ball
    assert G.main(["digits:1:0", "-o", str(out)]) == 0 and len(out.read_text().splitlines()) == 2
    with pytest.raises(SystemExit, match="instance spec 'digits:1' is not family:eps"):
        G.main(["digits:1", "-o", str(out)])
