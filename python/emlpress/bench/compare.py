"""Result files of ``emlpress bench`` read and aligned side by side: ``emlpress bench compare``.

A result file (``FORMAT``) holds: ``suite_version`` (``SUITE_VERSION`` of benches/conftest.py),
``tag`` (the machine's name: pc, vm, g100, ...), ``machine`` (:func:`emlpress.bench.machine`),
``quick``, ``groups``, ``wall_s``, ``outcomes`` and ``benchmarks``: pytest-benchmark's entries
(times in seconds: ``stats`` min, max, median, mean, rounds) with their ``group`` and
``extra_info`` (``impl``, ``role`` emlpress or peer, the benchmark's own figures), each named
``bench_<group>.py::test[params]`` whatever folder the suite's files stand in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "emlpress-bench/1"


class BenchError(ValueError):
    """A bad benches directory, group, or result file (a usage error, exit status 2)."""


# --------------------------------------------------------------------------- loading

def load(path) -> dict:
    """A result file, checked: errors name the file and what it lacks."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such result file")
    if path.is_dir():
        raise BenchError(f"{path}: is a directory; give result files (.json written by emlpress bench)")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BenchError(f"{path}: not JSON ({e}); give a result file written by emlpress bench") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        hint = ("a raw pytest-benchmark file; run the suite with emlpress bench"
                if isinstance(data, dict) and "benchmarks" in data and "machine_info" in data
                else f"no \"format\": \"{FORMAT}\"")
        raise BenchError(f"{path}: not an emlpress bench result ({hint})")
    for k, kind in (("suite_version", str), ("tag", str), ("machine", dict), ("benchmarks", list)):
        if not isinstance(data.get(k), kind):
            raise BenchError(f"{path}: emlpress bench result without a valid {k!r}")
    for i, b in enumerate(data["benchmarks"]):
        st = b.get("stats") if isinstance(b, dict) else None
        if not isinstance(b.get("name") if isinstance(b, dict) else None, str) or not isinstance(st, dict) \
                or not all(isinstance(st.get(k), (int, float)) for k in ("min", "median", "max")):
            raise BenchError(f"{path}: benchmark {i} has no name or no min/median/max times")
    data["_path"] = str(path)
    return data


# --------------------------------------------------------------------------- comparing

def _labels(results: list) -> list:
    """Column names: the tags, numbered where a tag repeats."""
    out = []
    for r in results:
        lab, i = r["tag"], 2
        while lab in out:
            lab, i = f"{r['tag']}#{i}", i + 1
        out.append(lab)
    return out


@dataclass
class Comparison:
    """Side-by-side figures of results (the first is the reference).

    ``times``: per benchmark and result the time (median, min, max in seconds) or None where
    the result lacks it; ``ratios``: per benchmark and later result the median over the
    first's (a float; ``(ratio, ">=" or "<=")`` where one side stopped at its time limit), or
    a note saying why not comparable; ``peers``: per result, peer time over emlpress time of
    each pair of a group, ``(ratio, sign, noisy)``; ``noisy``: the (benchmark, result) whose
    rounds spread more than ``NOISY``-fold (max over min), so that their median may be far
    from a quiet machine's; ``notes``: what is not comparable and why."""

    labels: list
    rows: list = field(default_factory=list)  # (group, name, impl)
    times: dict = field(default_factory=dict)  # (name, k) -> (median, min, max)
    ratios: dict = field(default_factory=dict)  # (name, k) -> float or str
    peers: list = field(default_factory=list)  # (group, emlpress impl, peer impl, {k: float|str})
    info: dict = field(default_factory=dict)  # (name, k) -> {key: value}
    noisy: set = field(default_factory=set)  # (name, k) whose max > NOISY * min
    notes: list = field(default_factory=list)


#: A figure whose slowest round took more than this many times its fastest is marked noisy:
#: something else ran on the cores during its rounds (its median may be inflated as much).
NOISY = 3.0


def _at_limit(info: dict) -> bool:
    return any("limit" in str(v).lower() for k, v in info.items() if "status" in k.lower())


def compare(results: list, only=None) -> Comparison:
    """Align `results` (loaded by :func:`load`) benchmark by benchmark."""
    if not results:
        raise BenchError("give at least one result file")
    labels = _labels(results)
    c = Comparison(labels)
    ref = results[0]
    by = [{b["name"]: b for b in r["benchmarks"]} for r in results]
    seen = set()
    for r in results:
        for b in r["benchmarks"]:
            group_ok = only is None or b["name"].split("::")[0][len("bench_"):-len(".py")] in only
            if b["name"] not in seen and group_ok:
                seen.add(b["name"])
                c.rows.append((b.get("group") or "", b["name"], b.get("extra_info", {}).get("impl")))
    # keep each group's rows together, in the order groups first appear
    order = {g: i for i, g in reversed(list(enumerate(g for g, _, _ in c.rows)))}
    c.rows.sort(key=lambda row: order[row[0]])
    for k, r in enumerate(results[1:], start=1):
        if r["suite_version"] != ref["suite_version"]:
            c.notes.append(f"{labels[k]}: suite version {r['suite_version']} against {ref['suite_version']} "
                           f"of {labels[0]}: its figures are shown, not divided")
    for _group, name, _ in c.rows:
        for k, r in enumerate(results):
            b = by[k].get(name)
            if b is None:
                continue
            st = b["stats"]
            c.times[name, k] = (float(st["median"]), float(st["min"]), float(st["max"]))
            c.info[name, k] = b.get("extra_info", {})
            if c.times[name, k][2] > NOISY * c.times[name, k][1]:
                c.noisy.add((name, k))
            if k == 0:
                continue
            b0 = by[0].get(name)
            if r["suite_version"] != ref["suite_version"]:
                c.ratios[name, k] = f"n/c: suite {r['suite_version']} vs {ref['suite_version']}"
            elif b0 is None:
                c.ratios[name, k] = f"n/c: not in {labels[0]}"
            elif (b0.get("group"), b0.get("params")) != (b.get("group"), b.get("params")):
                c.ratios[name, k] = "n/c: other group or parameters"
            elif c.times[name, 0][0] <= 0:
                c.ratios[name, k] = "n/c: zero time"
            else:
                x = c.times[name, k][0] / c.times[name, 0][0]
                lim0, limk = _at_limit(c.info[name, 0]), _at_limit(c.info[name, k])
                # a time at the limit is a lower bound of the time the run would have taken
                c.ratios[name, k] = ("n/c: both at the time limit" if lim0 and limk else
                                     (x, ">=") if limk else (x, "<=") if lim0 else x)
        for k in range(1, len(results)):
            if (name, k) not in c.times and name in by[0]:
                c.ratios[name, k] = f"n/c: not in {labels[k]}"
    missing = [(labels[k], sum(1 for _, n, _ in c.rows if n not in by[k])) for k in range(len(results))]
    for lab, n in missing:
        if n:
            c.notes.append(f"{lab}: {n} of the {len(c.rows)} benchmarks are not in this result (not compared)")
    # peers: within each result, each peer's time over each emlpress row's of its group
    groups_rows: dict = {}
    for group, name, _impl in c.rows:
        groups_rows.setdefault(group, []).append(name)
    for group, names in groups_rows.items():
        pairs = []
        for name in names:
            inf = next((c.info[name, k] for k in range(len(results)) if (name, k) in c.info), {})
            pairs.append((name, inf.get("impl"), inf.get("role"), inf.get("against")))
        for pname, pimpl, prole, against in pairs:
            if prole != "peer":
                continue
            for ename, eimpl, erole, _ in pairs:
                if erole != "emlpress" or (against is not None and eimpl not in against):
                    continue
                cells = {}
                for k in range(len(results)):
                    if (pname, k) not in c.times or (ename, k) not in c.times:
                        cells[k] = "n/c: not measured in this run"
                        continue
                    tp, te = c.times[pname, k][0], c.times[ename, k][0]
                    pl, el = _at_limit(c.info[pname, k]), _at_limit(c.info[ename, k])
                    if pl and el:
                        cells[k] = "n/c: both at the time limit"
                    elif te <= 0:
                        cells[k] = "n/c: zero time"
                    else:
                        cells[k] = (tp / te, ">=" if pl else "<=" if el else "",
                                    (pname, k) in c.noisy or (ename, k) in c.noisy)
                c.peers.append((group, eimpl, pimpl, cells))
    return c
