"""The benchmark suite and ``emlpress bench``: where the suite is, its groups and expected time,
the pytest plugin that records outcomes, and :func:`run`, which saves one result file.

The suite is the repository's ``benches/``: ``conftest.py`` (``SUITE_VERSION``,
``EXPECTED_MINUTES``) and ``pytest.ini`` at its top, the pytest-benchmark files
``bench_<group>.py`` in ``suites/``. It is not installed with the package: :func:`find_benches`
looks for it at ``--benches DIR``, else ``$EMLPRESS_BENCHES``, else ``./benches``.
"""

from __future__ import annotations

import ast
import datetime as _dt
import json
import os
import platform
import re
import tempfile
import time
from pathlib import Path

from emlpress._atomic import write_text_atomic
from emlpress.bench.compare import FORMAT, BenchError
from emlpress.bench.machine import machine

RESULTS_DIR = "bench-results"
#: The folder of ``bench_<group>.py`` files inside the benches directory.
SUITES = "suites"


# --------------------------------------------------------------------------- the suite

def find_benches(path=None) -> Path:
    """The benches directory: `path`, else $EMLPRESS_BENCHES, else ./benches (never a folder
    found from where this package is installed: an installed emlpress has no suite beside it)."""
    if path is not None:
        where, said = Path(path), f"--benches {path}"
    elif os.environ.get("EMLPRESS_BENCHES"):
        where, said = Path(os.environ["EMLPRESS_BENCHES"]), f"EMLPRESS_BENCHES={os.environ['EMLPRESS_BENCHES']}"
    else:
        where, said = Path.cwd() / "benches", f"./benches (in {Path.cwd()})"
    if where.is_dir() and any((where / SUITES).glob("bench_*.py")) and (where / "conftest.py").is_file():
        return where.resolve()
    raise BenchError(f"no benchmark suite at {said}: the suite is the repository's benches/ (conftest.py and "
                     f"{SUITES}/bench_*.py); run from the repository's root, set EMLPRESS_BENCHES or pass --benches DIR")


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
    """The groups of the suite: its suites/bench_<group>.py files."""
    return sorted(p.stem[len("bench_"):] for p in (Path(benches) / SUITES).glob("bench_*.py"))


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

    def pytest_runtest_teardown(self, item):
        # a benchmark skipped while timed (pytest.skip is no Exception, so pytest-benchmark
        # keeps it) has an empty record on which pytest-benchmark's JSON fails: the whole
        # run's figures would be lost. Marked as erred, it is left out like a failed one.
        fixture = getattr(item, "funcargs", {}).get("benchmark")
        if fixture is not None and getattr(fixture, "skipped", False):
            fixture.has_error = True

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
    try:  # the [bench] extra: imported only when a suite runs
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
    files = [str(benches / SUITES / f"bench_{g}.py") for g in (only or known)]
    rec = _Recorder(benches, quick)
    desc = machine(benches)  # before the run: the threads and versions the run starts with
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "pytest-benchmark.json"
        # rootdir suites/: node ids (printed, and the failed ones saved) stay bench_<group>.py::...;
        # confcutdir benches/: its conftest.py (SUITE_VERSION, fixtures) is loaded above the rootdir
        args = files + ["--rootdir", str(benches / SUITES), "--confcutdir", str(benches),
                        "-c", str(benches / "pytest.ini"),
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
