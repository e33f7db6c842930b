"""`emlpress bench` and `emlpress bench compare`: the benchmark suite run on any machine, one
JSON result per run with the machine's description, and results compared side by side.

The suite is the repository's ``benches/`` (pytest-benchmark files ``bench_<group>.py``); it
is not installed with the package. :func:`find_benches` looks for it at ``--benches DIR``,
else ``$EMLPRESS_BENCHES``, else ``./benches`` and the checkout this module was imported from.

A result file (``FORMAT``) holds: ``suite_version`` (``SUITE_VERSION`` of benches/conftest.py),
``tag`` (the machine's name: pc, vm, g100, ...), ``machine`` (:func:`machine`), ``quick``,
``groups``, ``wall_s``, ``outcomes`` and ``benchmarks``: pytest-benchmark's entries (times in
seconds: ``stats`` min, max, median, mean, rounds) with their ``group`` and ``extra_info``
(``impl``, ``role`` emlpress or peer, the benchmark's own figures).
"""

from __future__ import annotations

import ast
import datetime as _dt
import json
import math
import os
import platform
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from emlpress._atomic import save_figure_atomic, write_text_atomic

FORMAT = "emlpress-bench/1"
RESULTS_DIR = "bench-results"


class BenchError(ValueError):
    """A bad benches directory, group, or result file (a usage error, exit status 2)."""


# --------------------------------------------------------------------------- the suite

def find_benches(path=None) -> Path:
    """The benches directory: `path`, else $EMLPRESS_BENCHES, else ./benches, else the
    benches/ of the source checkout this package was imported from."""
    if path is not None:
        candidates, said = [Path(path)], f"--benches {path}"
    elif os.environ.get("EMLPRESS_BENCHES"):
        candidates, said = [Path(os.environ["EMLPRESS_BENCHES"])], f"EMLPRESS_BENCHES={os.environ['EMLPRESS_BENCHES']}"
    else:
        candidates = [Path.cwd() / "benches", Path(__file__).resolve().parents[2] / "benches"]
        said = f"./benches (in {Path.cwd()}) or the source checkout's benches/"
    for c in candidates:
        if c.is_dir() and any(c.glob("bench_*.py")) and (c / "conftest.py").is_file():
            return c.resolve()
    raise BenchError(f"no benchmark suite at {said}: the suite is the repository's benches/ "
                     "(bench_*.py and conftest.py); run from the repository's root or pass --benches DIR")


def expected_minutes(benches=None):
    """(full suite, --quick) minutes on 2 cores: the sums of EXPECTED_MINUTES in the suite's
    conftest.py, read without importing it; None when no suite is found or it has none."""
    try:
        tree = ast.parse((find_benches(benches) / "conftest.py").read_text())
    except (BenchError, OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(getattr(t, "id", None) == "EXPECTED_MINUTES" for t in targets) and node.value is not None:
            try:
                table = ast.literal_eval(node.value)
                return tuple(float(sum(v[i] for v in table.values())) for i in (0, 1))
            except (ValueError, TypeError, IndexError, AttributeError):
                return None
    return None


def groups(benches: Path) -> list[str]:
    """The groups of the suite: bench_<group>.py files."""
    return sorted(p.stem[len("bench_"):] for p in Path(benches).glob("bench_*.py"))


# --------------------------------------------------------------------------- the machine

def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _version(dist: str):
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _blas() -> list:
    """The BLAS/OpenMP libraries numpy loaded, by threadpoolctl (else numpy's build config)."""
    import numpy as np

    try:
        from threadpoolctl import threadpool_info

        return [{k: d.get(k) for k in ("user_api", "internal_api", "version", "num_threads",
                                        "threading_layer", "architecture")}
                | {"library": Path(d.get("filepath", "")).name} for d in threadpool_info()]
    except ImportError:
        try:
            cfg = np.show_config(mode="dicts")["Build Dependencies"]
            return [{"user_api": "blas", **{k: cfg["blas"].get(k) for k in ("name", "version")}}]
        except Exception:  # numpy < 1.26: no dict form
            return []


def _git(benches: Path | None) -> dict:
    if benches is None:
        return {}
    try:
        head = subprocess.run(["git", "-C", str(benches), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(benches), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {}
    if head.returncode:
        return {}
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def machine(benches: Path | None = None) -> dict:
    """What decides the figures: CPU (model, logical and usable cores, flags that matter to
    the kernels, cache), memory, OS, Python, numpy and its BLAS, the versions of emlpress,
    highspy and the peers, how emlpress' extension was compiled, thread settings."""
    import numpy as np

    from emlpress import kernels
    from emlpress.data.tpc_generate import host_fingerprint

    host = host_fingerprint()  # one reading of the CPU model, the TPC oracle's too
    cpuinfo = _read("/proc/cpuinfo")
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            flags = set(line.split(":", 1)[1].split())
            break
    cache = re.search(r"^cache size\s*:\s*(.+)$", cpuinfo, re.M)
    physical = {m for m in re.findall(r"^physical id\s*:\s*(\d+).*?^core id\s*:\s*(\d+)", cpuinfo, re.M | re.S)}
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    osrel = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', _read("/etc/os-release"), re.M)
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    versions = {d: _version(d) for d in ("emlpress", "highspy", "numpy", "scipy", "numba", "pandas",
                                         "pytest", "pytest-benchmark", "omlt", "pyomo", "tensorflow",
                                         "ai-edge-litert", "torch", "auto_LiRPA")}
    import emlpress

    versions["emlpress"] = emlpress.__version__  # the one imported, which may not be pip's
    try:
        from emlpress._highs import highs

        h = highs()  # without HiGHS' banner on stdout
        versions["HiGHS"] = f"{h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"
    except Exception:
        versions["HiGHS"] = None
    build = dict(getattr(kernels, "build_info", None) or {"flags": "unknown (an extension built before build_info)"})
    build["native"] = "-march=native" in build.get("flags", "")
    return {
        "cpu": host["cpu"],
        "cores": host["cores"],
        "cores_usable": usable,
        "cores_physical": len(physical) or None,
        "cpu_flags": sorted(flags & {"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw",
                                     "avx512vl", "avx512_vnni", "amx_tile", "asimd", "sve"}),
        "cpu_cache": cache.group(1) if cache else None,
        "memory_gib": round(int(mem.group(1)) / 2**20, 2) if mem else None,
        "machine": host["machine"],
        "os": osrel.group(1) if osrel else host["system"],
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {host['python']}",
        "node": host["node"],
        "numpy": np.__version__,
        "blas": _blas(),
        "versions": versions,
        "build": build,
        "threads": {"emlpress kernels": kernels.num_threads(),
                    **{k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
                       if k in os.environ}},
        "source": {"emlpress": str(Path(emlpress.__file__).resolve().parent), **_git(benches)},
    }


# --------------------------------------------------------------------------- running

class _Recorder:
    """pytest plugin: the suite's version and expected time (from benches/conftest.py), each
    test's outcome."""

    def __init__(self, benches: Path, quick: bool):
        self.benches, self.quick = benches, quick
        self.suite_version = None
        self.outcomes = {"passed": 0, "failed": [], "skipped": 0, "errors": []}
        self.group_s: dict = {}  # wall seconds per group (setup, call, teardown), unrounded

    def pytest_collection_finish(self, session):
        conftest = next((m for m in session.config.pluginmanager.get_plugins()
                         if getattr(m, "__file__", None) and Path(m.__file__).resolve() == self.benches / "conftest.py"),
                        None)
        self.suite_version = getattr(conftest, "SUITE_VERSION", None)
        expected = getattr(conftest, "EXPECTED_MINUTES", {})
        files = {Path(str(i.fspath)).stem[len("bench_"):] for i in session.items}
        minutes = sum(expected.get(g, (0, 0))[1 if self.quick else 0] for g in files)
        unknown = sorted(g for g in files if g not in expected)
        print(f"emlpress bench: {len(session.items)} benchmarks in {', '.join(sorted(files)) or 'none'}; "
              f"expected about {minutes:g} min on 2 cores" + (f" (plus {', '.join(unknown)}: no estimate)" if unknown else ""),
              flush=True)

    def pytest_runtest_logreport(self, report):
        group = Path(report.nodeid.split("::")[0]).stem[len("bench_"):]
        self.group_s[group] = self.group_s.get(group, 0.0) + report.duration
        if report.when == "call" and report.passed:
            self.outcomes["passed"] += 1
        elif report.skipped and report.when in ("setup", "call"):
            self.outcomes["skipped"] += 1
        elif report.failed:
            self.outcomes["failed" if report.when == "call" else "errors"].append(report.nodeid)


def default_output(tag: str, now: _dt.datetime | None = None) -> Path:
    now = now or _dt.datetime.now()
    return Path(RESULTS_DIR) / f"{tag}-{now:%Y%m%d-%H%M%S}.json"


def run(benches=None, quick: bool = False, tag: str | None = None, only=None, output=None,
        pytest_args=()) -> tuple[Path, dict, int]:
    """Run the suite (pytest-benchmark) and save one result; returns (path, result, exit
    status: 0, or 1 when a benchmark failed, its figures left out and its name saved)."""
    try:
        import pytest
        import pytest_benchmark  # noqa: F401
    except ImportError:
        raise BenchError("emlpress bench needs pytest-benchmark: pip install 'emlpress[bench]' "
                         "(from the repository: pip install '.[bench]')") from None
    benches = find_benches(benches)
    tag = tag or re.sub(r"[^A-Za-z0-9._-]", "-", platform.node()) or "machine"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", tag):
        raise BenchError(f"--tag {tag!r}: use letters, digits, '.', '_' and '-' (e.g. pc, vm, g100)")
    known = groups(benches)
    only = list(only or [])
    bad = [g for g in only if g not in known]
    if bad:
        raise BenchError(f"--only {' '.join(bad)}: no such group in {benches}; the groups are {', '.join(known)}")
    out = Path(output) if output else default_output(tag)
    if out.suffix != ".json":
        raise BenchError(f"--output {out}: the result must end in .json")
    if out.is_dir():
        raise BenchError(f"--output {out}: is a directory; give a file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    files = [str(benches / f"bench_{g}.py") for g in (only or known)]
    rec = _Recorder(benches, quick)
    desc = machine(benches)  # before the run: the threads and versions the run starts with
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "pytest-benchmark.json"
        args = files + ["--rootdir", str(benches), "-c", str(benches / "pytest.ini"),
                        "-o", "python_files=bench_*.py", "-p", "no:cacheprovider",
                        f"--benchmark-json={raw}", "--benchmark-columns=min,median,max,rounds",
                        "--benchmark-sort=name", "-rfEs"]
        if not (benches / "pytest.ini").is_file():
            args[args.index("-c"):args.index("-c") + 2] = []
        if quick:
            args += ["-m", "quick"]
        args += list(pytest_args)
        t0 = time.perf_counter()
        code = pytest.main(args, plugins=[rec])
        wall = time.perf_counter() - t0
        text = raw.read_text() if raw.is_file() else ""
        if int(code) == 5 or (code in (0, 1) and not text.strip()):
            # pytest-benchmark writes no file when no benchmark ran (an empty one before 5.3)
            o = rec.outcomes
            failed = o["failed"] + o["errors"]
            raise RuntimeError(f"no benchmark ran: {o['passed']} passed, {o['skipped']} skipped, "
                               f"{len(failed)} failed or errors" + (f" ({', '.join(failed)})" if failed else "")
                               + f" in {', '.join(only or known)}; nothing saved")
        if code not in (0, 1):
            raise RuntimeError(f"the benchmark run did not complete (pytest exit status {int(code)}); nothing saved")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise RuntimeError(f"pytest-benchmark's result {raw} is not JSON ({e}); nothing saved") from None
    if rec.suite_version is None:
        raise BenchError(f"{benches / 'conftest.py'} defines no SUITE_VERSION: not an emlpress benchmark suite")
    # pytest-benchmark keeps a figure whose test failed after the timing (a check of its
    # result): a failed benchmark's figure is not saved
    failed = {_key(n) for n in rec.outcomes["failed"] + rec.outcomes["errors"]}
    result = {
        "format": FORMAT, "suite_version": str(rec.suite_version), "tag": tag,
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": quick, "groups": only or known, "wall_s": round(wall, 1),
        "command": " ".join(["emlpress", "bench"] + (["--quick"] if quick else []) + ["--tag", tag]
                            + (["--only", *only] if only else [])),
        "group_s": {g: round(s, 1) for g, s in rec.group_s.items()}, "machine": desc, "outcomes": rec.outcomes,
        "benchmarks": [_entry(b) for b in data.get("benchmarks", []) if _key(b["fullname"]) not in failed],
    }
    write_text_atomic(out, json.dumps(result, indent=1, default=str) + "\n")
    return out, result, 0 if code == 0 else 1


def _entry(b: dict) -> dict:
    """One pytest-benchmark entry, without the raw per-round data, keyed by file::test[params]."""
    stats = {k: b["stats"][k] for k in ("min", "max", "median", "mean", "stddev", "rounds", "iterations")
             if k in b["stats"]}
    return {"name": _key(b["fullname"]), "group": b.get("group"), "params": b.get("params"),
            "stats": stats, "extra_info": b.get("extra_info", {})}


def _key(fullname: str) -> str:
    path, _, rest = fullname.partition("::")
    return f"{Path(path).name}::{rest}"


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
    for k, r in enumerate(results):
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
    for group, name, _ in c.rows:
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
    for group, name, impl in c.rows:
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


# --------------------------------------------------------------------------- output

_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))


def _unit(values) -> tuple:
    v = min((x for x in values if x > 0), default=1.0)
    return next(((s, u) for s, u in _UNITS if v >= s), _UNITS[-1])


def _num(x: float) -> str:
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    digits = max(0, 2 - int(math.floor(math.log10(abs(x)))))
    return f"{x:,.{min(digits, 3)}f}"


def _ratio(v, noisy: bool = False) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, tuple):
        x, sign, *rest = v
        return f"{sign}{_num(x)}x" + (" noisy" if noisy or any(rest) else "")
    return f"{_num(v)}x" + (" noisy" if noisy else "")


def _info_text(info: dict) -> str:
    skip = {"impl", "role", "against"}
    parts = []
    for k, v in info.items():
        if k in skip:
            continue
        if isinstance(v, float):
            parts.append(f"{k} {v:.4g}")
        elif isinstance(v, (int, str, bool)) or v is None:
            parts.append(f"{k} {v}")
        elif isinstance(v, list) and len(v) <= 8 and all(not isinstance(x, dict) for x in v):
            parts.append(f"{k} {json.dumps(v)}")
    return "; ".join(parts)


def tables(c: Comparison, info: bool = False) -> list:
    """(title, header, rows) of the time table, the peer table and (info) the figures table."""
    n = len(c.labels)
    out = []
    head = ["group", "benchmark"] + [f"{lab}: median (min-max)" for lab in c.labels] \
        + [f"{lab} / {c.labels[0]}" for lab in c.labels[1:]]
    rows = []
    for group, name, impl in c.rows:
        scale, unit = _unit([c.times[name, k][0] for k in range(n) if (name, k) in c.times])
        cells = []
        for k in range(n):
            t = c.times.get((name, k))
            cells.append("absent" if t is None else
                         f"{_num(t[0] / scale)} {unit} ({_num(t[1] / scale)}-{_num(t[2] / scale)})"
                         + (" noisy" if (name, k) in c.noisy else ""))
        cells += [_ratio(c.ratios.get((name, k), "n/c"), (name, 0) in c.noisy or (name, k) in c.noisy)
                  for k in range(1, n)]
        rows.append([group, impl or name.split("::", 1)[1]] + cells)
    out.append((f"times (median, min-max over the rounds; ratio of medians; noisy: max over {NOISY:g}x min, "
                "the median may be inflated; >=, <=: that result stopped at its time limit)", head, rows))
    if c.peers:
        prow = [[g, e, p] + [_ratio(cells[k]) for k in range(n)] for g, e, p, cells in c.peers]
        out.append(("peer time / emlpress time, measured side by side in each run "
                    f"(>=: the peer stopped at its time limit; <=: emlpress did; noisy: either time's max "
                    f"over {NOISY:g}x its min, the ratio may be far off)",
                    ["group", "emlpress", "peer"] + c.labels, prow))
    if info:
        irows = [[g, impl or name.split("::", 1)[1]] + [_info_text(c.info.get((name, k), {})) for k in range(n)]
                 for g, name, impl in c.rows]
        if any(any(x for x in r[2:]) for r in irows):
            out.append(("figures recorded by the benchmarks", ["group", "benchmark"] + c.labels,
                        [r for r in irows if any(r[2:])]))
    return out


def markdown(c: Comparison, info: bool = False) -> str:
    parts = []
    for title, head, rows in tables(c, info):
        esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
        lines = [f"{title}:", "", "| " + " | ".join(map(esc, head)) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
        parts.append("\n".join(lines))
    parts += [f"- {note}" for note in c.notes]
    return "\n\n".join(parts)


def text(c: Comparison, info: bool = False) -> str:
    parts = []
    for title, head, rows in tables(c, info):
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        fmt = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
        parts.append("\n".join([title + ":", fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]))
    parts += [f"note: {note}" for note in c.notes]
    return "\n\n".join(parts)


def machines(results: list, labels: list) -> str:
    """One line per result: tag, CPU, cores, memory, OS, versions, build flags."""
    lines = []
    for lab, r in zip(labels, results):
        m = r["machine"]
        v = m.get("versions", {})
        blas = ", ".join(f"{b.get('internal_api') or b.get('name')} {b.get('version')}" for b in m.get("blas", [])
                         if b.get("user_api") == "blas")
        lines.append(f"{lab}: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB, {m.get('os')}, "
                     f"{m.get('python')}, numpy {m.get('numpy')} ({blas or 'BLAS unknown'}), highspy {v.get('highspy')}, "
                     f"emlpress {v.get('emlpress')} [{m.get('build', {}).get('flags')}], suite {r['suite_version']}"
                     f"{', quick' if r.get('quick') else ''}, {r.get('created', '')[:16]}, {r.get('wall_s')} s")
    return "\n".join(lines)


def plot(c: Comparison, path) -> Path:
    """A PNG of the time table (median bars, min-max whiskers, log scale; one bar per result,
    hatched where not comparable) and of the peer ratios."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    n = len(c.labels)
    rows = c.rows
    npeer = len(c.peers)
    fig_h = 1.2 + 0.28 * (len(rows) * max(1, n) * 0.5 + 2) + (0.28 * npeer * max(1, n) * 0.5 + 1.5 if npeer else 0)
    fig, axes = plt.subplots(2 if npeer else 1, 1, figsize=(11, min(max(fig_h, 4), 200)), squeeze=False,
                             gridspec_kw={"height_ratios": [max(len(rows), 1), max(npeer, 1)] if npeer else [1]})
    ax = axes[0][0]
    height = 0.8 / max(n, 1)
    y = np.arange(len(rows))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, lab in enumerate(c.labels):
        med, lo, hi, ys, hatch = [], [], [], [], []
        for i, (_, name, _) in enumerate(rows):
            t = c.times.get((name, k))
            if t is None:
                continue
            med.append(t[0]); lo.append(t[0] - t[1]); hi.append(t[2] - t[0]); ys.append(i + (k - (n - 1) / 2) * height)
            hatch.append(isinstance(c.ratios.get((name, k)), str))
        bars = ax.barh(ys, med, height=height, xerr=[lo, hi], color=colors[k % len(colors)], label=lab,
                       error_kw={"elinewidth": 0.8, "capsize": 1.5})
        for b, h in zip(bars, hatch):
            if h:
                b.set_hatch("//")
                b.set_alpha(0.5)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{g}: {impl or name.split('::', 1)[1]}"[:70] for g, name, impl in rows], fontsize=6)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("seconds (median; whiskers min-max; hatched: not comparable with the first)")
    ax.legend(fontsize=7, loc="lower right")
    if npeer:
        ax2 = axes[1][0]
        for k, lab in enumerate(c.labels):
            ys, vals = [], []
            for i, (_, _, _, cells) in enumerate(c.peers):
                v = cells.get(k)
                if isinstance(v, tuple):
                    ys.append(i + (k - (n - 1) / 2) * height)
                    vals.append(v[0])
            ax2.barh(ys, vals, height=height, color=colors[k % len(colors)], label=lab)
        ax2.set_yticks(np.arange(npeer))
        ax2.set_yticklabels([f"{g}: {p} / {e}"[:70] for g, e, p, _ in c.peers], fontsize=6)
        ax2.invert_yaxis()
        ax2.set_xscale("log")
        ax2.axvline(1.0, color="k", lw=0.6)
        ax2.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax2.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax2.set_xlabel("peer time / emlpress time (same run)")
    fig.tight_layout()
    path = Path(path)
    save_figure_atomic(fig, path, dpi=110)
    plt.close(fig)
    return path
