"""Issue 34's optimal-adversary goal measured in full: emlpress and gurobi-ml + Gurobi back to
back on each instance of ``suites/bench_solve.py``'s adversary family, one JSON line per
answer appended as soon as it is judged (a crash or a kill loses at most the instance running).

Run (from the repository's root; hours at 60 s per solve, so in the background):

    nohup python benches/tools/adversary_goal.py -o benches/results/vm-adversary-60s.jsonl \
        digits:1,5,10:0-19 mnist:1:0-19 mnist:5,10:0-9 &
    python benches/tools/solve_goals.py benches/results/vm-adversary-60s.jsonl   # the table

An instance spec is ``family:eps[,eps...]:first-last`` (images), taken in the order given, eps
before image within a spec. Instances already in the output file are skipped (a rerun
resumes). Each line: problem, family, image, eps, solver, the solver's result fields (as
``problem_solvers`` returns them, without the point), ``seconds`` (wall time of building +
solving, as the bench times it), ``search`` (emlpress: which search answered), ``verified``/``violation`` (``problems.evaluate`` at the
solver's point) and ``check`` (``problems.judge`` against the other solver's verified point).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benches/: tools.*, peers.*

from peers.problem_solvers import SOLVERS, warm
from tools import problems as P

#: the two solvers of the goal, emlpress first (as in bench_solve.py)
PAIR = ("emlpress", "gurobi-ml+gurobi")


def instances(specs):
    """(family, image, eps) in the order of ``specs`` ("family:eps,eps:first-last")."""
    for spec in specs:
        try:
            fam, eps_s, imgs = spec.split(":")
            first, _, last = imgs.partition("-")
            epss = [float(e) for e in eps_s.split(",")]
            images = range(int(first), int(last or first) + 1)
        except ValueError:
            raise SystemExit(f"adversary_goal: instance spec {spec!r} is not family:eps[,eps]:first-last") from None
        if fam not in ("mnist", "digits"):
            raise SystemExit(f"adversary_goal: family {fam!r} of spec {spec!r} is not mnist or digits")
        for eps in epss:
            for i in images:
                yield fam, i, eps


def _clean(v):
    """JSON-safe: nan/inf as None, numpy scalars as Python ones."""
    if isinstance(v, float) or hasattr(v, "item"):
        v = float(v) if not isinstance(v, (bool, int)) else v
        return None if isinstance(v, float) and not math.isfinite(v) else v
    return v


def run_instance(fam: str, image: int, eps: float, limit: float, solvers=PAIR) -> list[dict]:
    """Every solver of ``solvers`` on one instance, back to back, each answer verified by
    forward passes and judged against the others: one record per solver."""
    p = P.adversary(fam, image, eps)
    answers, recs = {}, []
    for s in solvers:
        run, _ = SOLVERS[s]
        warm(s)  # imports and Gurobi's first licence check: not the problem's time
        t0 = time.perf_counter()
        r = run(p, limit)
        secs = time.perf_counter() - t0
        answers[s] = P.checked(p, r)
        rec = {k: _clean(v) for k, v in r.items() if k != "x"}
        if "solver" in rec:  # emlpress' Solution says which search answered: kept as "search"
            rec["search"] = rec.pop("solver")
        rec.update(problem=p.name, family=fam, image=image, eps=eps, solver=s, seconds=secs,
                   time_limit=limit, verified=_clean(answers[s].verified),
                   violation=_clean(answers[s].violation),
                   clean=p.meta["clean"], columns=p.n, rows=p.A.shape[0])
        recs.append(rec)
    verdicts = P.judge(answers, p.sense)
    for rec in recs:
        rec["check"] = verdicts[rec["solver"]]
    return recs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("specs", nargs="+", help="family:eps[,eps]:first-last, e.g. digits:1,5,10:0-19")
    ap.add_argument("-o", "--output", required=True, help="JSON-lines file, appended to")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per solve (default 60)")
    a = ap.parse_args(argv)
    if not a.time_limit > 0:
        ap.error(f"--time-limit must be positive, got {a.time_limit}")
    out = Path(a.output)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done.add((r["family"], r["image"], r["eps"], r["solver"]))
    for fam, i, eps in instances(a.specs):
        if all((fam, i, eps, s) in done for s in PAIR):
            continue
        recs = run_instance(fam, i, eps, a.time_limit)
        with out.open("a") as f:
            for rec in recs:
                f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())
        print(" | ".join(f"{r['problem']} {r['solver']}: {r['status']} {r['seconds']:.1f} s "
                         f"obj {r['objective']} bound {r['bound']} {r['check']}" for r in recs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
