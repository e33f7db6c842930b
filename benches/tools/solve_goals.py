"""Issue 34's goals (point 6) read from a saved result of ``suites/bench_solve.py``, as a
markdown table for benches/README.md.

Run: python benches/tools/solve_goals.py benches/results/vm-solve-quick.json
     python benches/tools/solve_goals.py benches/results/vm-adversary-60s.jsonl

A ``.jsonl`` file is the adversary goal's own run (``tools/adversary_goal.py``: emlpress and
gurobi-ml + Gurobi back to back, one line per answer): its table is per family and eps.

- max/min of the small networks: per problem, Gurobi's time over emlpress' (the goal: >= 1,
  emlpress at least as fast) and whether any emlpress answer was WRONG;
- the optimal adversary: per family, instances proven OPTIMAL within the limit by emlpress and
  by gurobi-ml + Gurobi (its big-M), and instances where emlpress returned an incumbent;
- epidemics: status and time of emlpress on each planning problem (the goal: [64]*8 over 10
  weeks proven optimal within 10 minutes; the suite's limit is its TIME_LIMIT).
Every row names the statuses, so a ratio taken at a time limit shows as such (">=": the peer
stopped at its limit, "<=": emlpress did).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict

GUROBI = "gurobi-ml+gurobi"


def _rows(result: dict) -> dict:
    """problem name -> solver -> (median seconds, extra_info)."""
    out: dict = defaultdict(dict)
    for b in result["benchmarks"]:
        if not b["name"].startswith("bench_solve.py::test_solve["):
            continue
        group = (b.get("group") or "").removeprefix("problem ")
        out[group][b["extra_info"]["impl"]] = (b["stats"]["median"], b["extra_info"])
    return out


def _ratio(peer, eml) -> str:
    (tp, ip), (te, ie) = peer, eml
    lp, le = "LIMIT" in str(ip.get("status")).upper(), "LIMIT" in str(ie.get("status")).upper()
    if str(ip.get("status")) == "over the licence":
        return "over the licence"
    if lp and le:
        return "both at the limit"
    return (">=" if lp else "<=" if le else "") + f"{tp / te:.2f}x"


def goals(result: dict) -> str:
    rows = _rows(result)
    lines = ["| problem | emlpress | gurobi-ml + Gurobi | Gurobi time / emlpress time | emlpress check |",
             "|---|---|---|---|---|"]
    adv: dict = defaultdict(lambda: defaultdict(int))
    epi = []
    for name, by in rows.items():
        e = by.get("emlpress")
        if e is None:
            continue
        fam = name.split(" ")[0]
        if re.match(r"(mnist|digits) image", name):
            adv[fam]["instances"] += 1
            adv[fam]["emlpress optimal"] += e[1].get("status") == "OPTIMAL"
            adv[fam]["emlpress incumbent"] += e[1].get("check") not in ("no solution", None)
            g = by.get(GUROBI)
            adv[fam]["gurobi optimal"] += g is not None and g[1].get("status") == "OPTIMAL"
            adv[fam]["gurobi over the licence"] += g is not None and g[1].get("status") == "over the licence"
        elif fam == "epidemics":
            epi.append(f"| {name} | {e[1].get('status')} in {e[0]:.3g} s (limit {e[1].get('time_limit'):g} s) | "
                       f"check {e[1].get('check')} |")
        elif fam != "tpc":
            g = by.get(GUROBI)
            lines.append(f"| {name} | {e[1].get('status')} {e[0]:.3g} s | "
                         + (f"{g[1].get('status')} {g[0]:.3g} s | {_ratio(g, e)}" if g else "absent | n/c")
                         + f" | {e[1].get('check')} |")
    out = ["Max/min of the small networks (goal: Gurobi time / emlpress time >= 1, never WRONG):", "",
           *lines, "", "Optimal adversary (goal: more proven optimal than Gurobi's big-M, an incumbent on every one):",
           "", "| family | instances | emlpress OPTIMAL | emlpress with an incumbent | Gurobi OPTIMAL | Gurobi over the licence |",
           "|---|---|---|---|---|---|"]
    for fam, c in adv.items():
        out.append(f"| {fam} | {c['instances']} | {c['emlpress optimal']} | {c['emlpress incumbent']} | "
                   f"{c['gurobi optimal']} | {c['gurobi over the licence']} |")
    if epi:
        out += ["", "Epidemics (goal: [64]*8 over 10 weeks proven optimal within 10 minutes):", "",
                "| problem | emlpress | |", "|---|---|---|", *epi]
    return "\n".join(out)


def _median(xs) -> str:
    return f"{statistics.median(xs):.3g} s" if xs else "-"


def adversary_goal(records: list) -> str:
    """The optimal-adversary goal from ``adversary_goal.py``'s records (one dict per answer):
    per family and eps (and in all), instances with both answers, proven OPTIMAL by each
    solver, proven by one only, with a verified incumbent (``check`` not "no solution"), over
    the licence, WRONG answers, and the median time to proof of each over the instances it
    proved and, on those both proved, the median of Gurobi's time over emlpress'."""
    by: dict = defaultdict(dict)
    for r in records:
        by[(r["family"], r["eps"], r["image"])][r["solver"]] = r
    groups: dict = defaultdict(list)
    for (fam, eps, _), rows in by.items():
        if "emlpress" in rows and GUROBI in rows:
            groups[(fam, eps)].append(rows)
            groups[(fam, "all")].append(rows)
    out = ["| family | eps | instances | emlpress OPTIMAL | Gurobi OPTIMAL | emlpress only | Gurobi only "
           "| emlpress incumbent | Gurobi incumbent | Gurobi over the licence | WRONG "
           "| emlpress median time to proof | Gurobi median time to proof | Gurobi / emlpress time, both proven |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    order = lambda k: (k[0] != "digits", k[0], k[1] == "all", 0 if k[1] == "all" else k[1])  # noqa: E731
    for (fam, eps), insts in sorted(groups.items(), key=lambda kv: order(kv[0])):
        opt = {s: [i[s]["status"] == "OPTIMAL" for i in insts] for s in ("emlpress", GUROBI)}
        inc = {s: sum(i[s]["check"] not in ("no solution", "over the licence") for i in insts)
               for s in ("emlpress", GUROBI)}
        t = {s: [i[s]["seconds"] for i, o in zip(insts, opt[s]) if o] for s in ("emlpress", GUROBI)}
        both = [i[GUROBI]["seconds"] / i["emlpress"]["seconds"] for i, a, b in
                zip(insts, opt["emlpress"], opt[GUROBI]) if a and b]
        wrong = sum(str(i[s]["check"]).startswith("WRONG") for i in insts for s in ("emlpress", GUROBI))
        out.append(f"| {fam} | {eps if eps == 'all' else f'{eps:g}'} | {len(insts)} | {sum(opt['emlpress'])} | "
                   f"{sum(opt[GUROBI])} | {sum(a and not b for a, b in zip(opt['emlpress'], opt[GUROBI]))} | "
                   f"{sum(b and not a for a, b in zip(opt['emlpress'], opt[GUROBI]))} | {inc['emlpress']} | "
                   f"{inc[GUROBI]} | {sum(i[GUROBI]['status'] == 'over the licence' for i in insts)} | {wrong} | "
                   f"{_median(t['emlpress'])} | {_median(t[GUROBI])} | "
                   + (f"{statistics.median(both):.2f}x (n={len(both)})" if both else "-") + " |")
    return "\n".join(out)


if __name__ == "__main__":
    for path in sys.argv[1:] or ["benches/results/vm-solve-quick.json"]:
        with open(path) as f:
            if path.endswith(".jsonl"):
                print(adversary_goal([json.loads(line) for line in f if line.strip()]))
            else:
                print(goals(json.load(f)))
