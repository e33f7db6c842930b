"""emlpress bench: the machine description, the comparison of results, bad input, and one tiny
real run of a suite (a two-benchmark suite written here, not the repository's)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import emlpress
from emlpress import bench
from emlpress.cli import main

REPO = Path(__file__).resolve().parents[1]
# the emlpress this process imported (site-packages in CI, python/ with PYTHONPATH in-tree),
# first on the path of the `python -m emlpress` subprocesses
IMPORTED = Path(emlpress.__file__).resolve().parents[1]
# without pytest-xdist's worker variables: pytest-benchmark disables itself where it sees them
ENV = dict({k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}, PYTHONPATH=os.pathsep.join([str(IMPORTED)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))


def entry(name, median, lo=None, hi=None, group="g", impl=None, role="emlpress", **info):
    lo = median * 0.9 if lo is None else lo
    hi = median * 1.2 if hi is None else hi
    return {"name": name, "group": group, "params": None,
            "stats": {"min": lo, "max": hi, "median": median, "mean": median, "rounds": 5},
            "extra_info": {"impl": impl or name, "role": role, **info}}


def result(tag, benchmarks, suite="1"):
    return {"format": bench.FORMAT, "suite_version": suite, "tag": tag, "created": "2026-12-02T10:00:00",
            "machine": {"cpu": "x"}, "benchmarks": benchmarks}


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def test_machine_description_fields():
    import numpy
    from emlpress import _core

    m = bench.machine(REPO / "benches")
    assert isinstance(m["cpu"], str) and m["cpu"]
    assert m["cores"] == os.cpu_count() and 1 <= m["cores_usable"] <= m["cores"]
    with open("/proc/meminfo") as f:
        kib = int(next(l for l in f if l.startswith("MemTotal")).split()[1])
    assert m["memory_gib"] == pytest.approx(kib / 2**20, abs=0.01)
    assert m["numpy"] == numpy.__version__ and m["versions"]["numpy"] == numpy.__version__
    assert m["versions"]["highspy"] and m["versions"]["HiGHS"].count(".") == 2
    assert m["versions"]["emlpress"] == __import__("emlpress").__version__
    assert m["python"].endswith(sys.version.split()[0])
    assert m["os"] and m["kernel"].startswith(os.uname().sysname)
    assert any(b.get("user_api") == "blas" for b in m["blas"])
    flags = m["build"]["flags"]
    assert _core.build_info["flags"] == flags  # compiled in by CMakeLists.txt
    assert "-O3" in flags and m["build"]["compiler"] and m["build"]["build_type"] == "Release"
    assert m["build"]["native"] == ("-march=native" in flags)
    json.dumps(m)  # the description goes into the result file as is


def test_host_fingerprint_is_the_machine_cpu_and_mismatch_names_what_differs():
    """One reading of the host for emlpress bench and the TPC data: the fingerprint's CPU and
    cores are the machine description's; a manifest entry from another host is named by the
    fields that decide kernel times (not the host name, Python or numba)."""
    from emlpress import host
    from emlpress.data import tpc_generate, tpc_oracle

    here = host.host_fingerprint()
    m = bench.machine(REPO / "benches")
    assert (m["cpu"], m["cores"], m["machine"], m["node"]) == (here["cpu"], here["cores"], here["machine"], here["node"])
    assert here["cores"] == os.cpu_count() and here["system"] == os.uname().sysname
    assert host.host_mismatch({"host": dict(here, node="elsewhere", python="2.7", numba="0")}, here) is None
    other = dict(here, cpu="Other CPU", cores=here["cores"] + 2)
    why = host.host_mismatch({"host": other}, here)
    assert why.startswith("cpu 'Other CPU'") and f"cores {here['cores'] + 2} (here {here['cores']})" in why
    assert "machine" not in why and host.host_mismatch({}, here).count("None") == len(host.HOST_KEYS)
    # the TPC modules keep exporting the names they exported before the host module
    assert tpc_generate.host_fingerprint is host.host_fingerprint and "host_fingerprint" in tpc_generate.__all__
    assert (tpc_oracle.host_mismatch, tpc_oracle.HOST_KEYS) == (host.host_mismatch, host.HOST_KEYS)


def test_compare_ratios_medians_min_max(tmp_path, capsys):
    a = result("pc", [entry("bench_x.py::t[a]", 2e-3, 1.5e-3, 4e-3, impl="emlpress"),
                      entry("bench_x.py::t[b]", 6e-3, 5e-3, 9e-3, impl="numpy", role="peer"),
                      entry("bench_x.py::u", 10.0, 9.0, 11.0, group="h")])
    b = result("g100", [entry("bench_x.py::t[a]", 1e-3, 0.5e-3, 1.4e-3, impl="emlpress"),
                        entry("bench_x.py::t[b]", 9e-3, 8e-3, 12e-3, impl="numpy", role="peer"),
                        entry("bench_x.py::u", 25.0, 20.0, 30.0, group="h")])
    c = bench.compare([bench.load(write(tmp_path, "a.json", a)), bench.load(write(tmp_path, "b.json", b))])
    assert c.labels == ["pc", "g100"]
    assert c.times["bench_x.py::t[a]", 1] == (1e-3, 0.5e-3, 1.4e-3)
    assert c.ratios["bench_x.py::t[a]", 1] == pytest.approx(0.5)
    assert c.ratios["bench_x.py::u", 1] == pytest.approx(2.5)
    (group, e, p, cells), = c.peers  # one pair: numpy over emlpress, in each run
    assert (group, e, p) == ("g", "emlpress", "numpy")
    assert cells[0][0] == pytest.approx(3.0) and cells[1][0] == pytest.approx(9.0)
    md = bench.markdown(c)
    assert not c.noisy  # max at most 3x min everywhere
    assert "| g | emlpress | 2.00 ms (1.50-4.00) | 1.00 ms (0.500-1.40) | 0.500x |" in md  # one unit per row
    assert "| h | bench_x.py::u | 10.0 s (9.00-11.0) | 25.0 s (20.0-30.0) | 2.50x |" in md
    assert "| g | emlpress | numpy | 3.00x | 9.00x |" in md
    # the command prints the same and writes the plot
    png = tmp_path / "c.png"
    assert main(["bench", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "0.500x" in out and "9.00x" in out and "pc: x" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_peer_at_time_limit_is_a_lower_bound_and_against_restricts_pairs():
    a = result("vm", [entry("bench_s.py::s[lp]", 2.0, impl="emlpress lp"),
                      entry("bench_s.py::s[crown]", 50.0, impl="emlpress crown", status="TIME_LIMIT"),
                      entry("bench_s.py::s[omlt]", 120.0, impl="omlt", role="peer", status="maxTimeLimit",
                            against=["emlpress lp", "emlpress crown"]),
                      entry("bench_s.py::s[sign]", 1.0, impl="emlpress sign")])
    c = bench.compare([a])
    pairs = {(e, p): cells[0] for _, e, p, cells in c.peers}
    assert set(pairs) == {("emlpress lp", "omlt"), ("emlpress crown", "omlt")}  # not sign
    assert pairs["emlpress lp", "omlt"][1] == ">=" and pairs["emlpress lp", "omlt"][0] == pytest.approx(60)
    assert pairs["emlpress crown", "omlt"] == "n/c: both at the time limit"
    assert "| g | emlpress lp | omlt | >=60.0x |" in bench.markdown(c)


def test_noisy_rows_are_marked():
    # the saved vm result's numpy interval on seed_gp: median 15.9 ms, min 0.855 ms
    a = result("vm", [entry("bench_b.py::i[emlpress]", 467e-6, 370e-6, 1.1e-3, impl="emlpress"),
                      entry("bench_b.py::i[numpy]", 15.9e-3, 0.855e-3, 25.2e-3, impl="numpy", role="peer")])
    b = result("pc", [entry("bench_b.py::i[emlpress]", 400e-6, 390e-6, 410e-6, impl="emlpress"),
                      entry("bench_b.py::i[numpy]", 1.0e-3, 0.9e-3, 1.1e-3, impl="numpy", role="peer")])
    c = bench.compare([a, b])
    assert c.noisy == {("bench_b.py::i[numpy]", 0)}
    (_, _, _, cells), = c.peers
    assert cells[0][0] == pytest.approx(15.9e-3 / 467e-6) and cells[0][2] is True and cells[1][2] is False
    md = bench.markdown(c)
    assert "| g | emlpress | numpy | 34.0x noisy | 2.50x |" in md
    assert "| g | numpy | 15.9 ms (0.855-25.2) noisy | 1.00 ms (0.900-1.10) | 0.063x noisy |" in md
    assert "| g | emlpress | 467 µs (370-1,100) | 400 µs (390-410) | 0.857x |" in md  # 1.1/0.37 < 3


def test_cross_machine_ratio_at_the_time_limit():
    a = result("vm", [entry("bench_m.py::s[a]", 120.0, 120.0, 120.0, status="TIME_LIMIT"),
                      entry("bench_m.py::s[b]", 120.0, 120.0, 120.0, status="TIME_LIMIT"),
                      entry("bench_m.py::s[c]", 30.0, 30.0, 30.0, status="OPTIMAL")])
    b = result("pc", [entry("bench_m.py::s[a]", 120.0, 120.0, 120.0, status="TIME_LIMIT"),
                      entry("bench_m.py::s[b]", 60.0, 60.0, 60.0, status="OPTIMAL"),
                      entry("bench_m.py::s[c]", 120.0, 120.0, 120.0, status="TIME_LIMIT")])
    c = bench.compare([a, b])
    assert c.ratios["bench_m.py::s[a]", 1] == "n/c: both at the time limit"
    assert c.ratios["bench_m.py::s[b]", 1] == (pytest.approx(0.5), "<=")  # vm's 120 s: at least
    assert c.ratios["bench_m.py::s[c]", 1] == (pytest.approx(4.0), ">=")  # pc's 120 s: at least
    md = bench.markdown(c)
    assert "| n/c: both at the time limit |" in md and "| <=0.500x |" in md and "| >=4.00x |" in md


def test_mismatched_suite_or_names_are_not_divided(tmp_path):
    a = result("pc", [entry("bench_x.py::t[a]", 1.0), entry("bench_x.py::only_pc", 2.0)])
    b = result("vm", [entry("bench_x.py::t[a]", 3.0), entry("bench_x.py::only_vm", 4.0)])
    v2 = result("g100", [entry("bench_x.py::t[a]", 5.0)], suite="2")
    c = bench.compare([a, b, v2])
    assert c.ratios["bench_x.py::t[a]", 1] == pytest.approx(3.0)
    assert c.ratios["bench_x.py::t[a]", 2] == "n/c: suite 2 vs 1"
    assert c.ratios["bench_x.py::only_pc", 1] == "n/c: not in vm"
    assert c.ratios["bench_x.py::only_vm", 1] == "n/c: not in pc"
    assert ("bench_x.py::only_vm", 0) not in c.times
    md = bench.markdown(c)
    assert "| g | bench_x.py::only_vm | absent | 4.00 s (3.60-4.80) | absent | n/c: not in pc | n/c |" in md
    assert any("suite version 2" in n for n in c.notes)
    assert any(n.startswith("pc: 1 of the 3") for n in c.notes)
    # same name, other parameters: not divided either
    d = result("vm", [dict(entry("bench_x.py::t[a]", 3.0), params={"n": 2})])
    assert bench.compare([a, d]).ratios["bench_x.py::t[a]", 1] == "n/c: other group or parameters"


@pytest.mark.parametrize("name", ["vm.json", "vm-stability.json", "vm-stability-quick.json", "vm-study.json"])
def test_saved_results_load_and_compare_with_the_suite_as_laid_out(name):
    """A result saved before the suite moved to benches/suites/ still loads, names each benchmark
    by a group the suite has today, and compares with itself (ratio 1) and per group (--only)."""
    path = REPO / "benches" / "results" / name
    if not path.is_file():
        pytest.skip(f"no {path} in this checkout")
    res = bench.load(path)
    known = bench.groups(bench.find_benches(REPO / "benches"))
    in_result = sorted({b["name"].split("::")[0][len("bench_"):-len(".py")] for b in res["benchmarks"]})
    assert in_result and set(in_result) <= set(known) and set(in_result) <= set(res["groups"])
    c = bench.compare([res, res])
    assert len(c.rows) == len(res["benchmarks"])
    assert all(c.ratios[n, 1] in (pytest.approx(1.0), "n/c: both at the time limit") for _, n, _ in c.rows
               if c.times[n, 0][0] > 0)
    one = bench.compare([res], only=[in_result[0]])
    assert one.rows and {n.split("::")[0] for _, n, _ in one.rows} == {f"bench_{in_result[0]}.py"}


def test_bad_result_files_name_the_file(tmp_path, capsys):
    missing = tmp_path / "missing.json"
    with pytest.raises(FileNotFoundError, match="missing.json"):
        bench.load(missing)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(bench.BenchError, match=r"junk\.json: not JSON"):
        bench.load(tmp_path / "junk.json")
    raw = write(tmp_path, "raw.json", {"machine_info": {}, "benchmarks": []})  # pytest-benchmark's own
    with pytest.raises(bench.BenchError, match=r"raw\.json: not an emlpress bench result \(a raw pytest-benchmark"):
        bench.load(raw)
    other = write(tmp_path, "list.json", [1, 2])
    with pytest.raises(bench.BenchError, match=r"list\.json: not an emlpress bench result"):
        bench.load(other)
    broken = write(tmp_path, "broken.json", dict(result("pc", [{"name": "x", "stats": {"min": 1}}])))
    with pytest.raises(bench.BenchError, match=r"broken\.json: benchmark 0 has no name or no min/median/max"):
        bench.load(broken)
    good = write(tmp_path, "good.json", result("pc", [entry("bench_x.py::t", 1.0)]))
    assert main(["bench", "compare", str(good), str(missing), "--no-plot"]) == 2
    assert "missing.json: no such result file" in capsys.readouterr().err
    assert main(["bench", "compare", str(good), str(raw), "--no-plot"]) == 2
    assert "raw.json" in capsys.readouterr().err
    assert main(["bench", "compare", str(good), "--plot", str(tmp_path / "p.jpg")]) == 2
    assert "--plot " in (err := capsys.readouterr().err) and "must end in .png" in err and "-o " not in err


def suite(path: Path) -> Path:
    (path / "suites").mkdir(parents=True)
    (path / "conftest.py").write_text(TINY_CONFTEST)
    (path / "suites" / "bench_tiny.py").write_text(TINY_BENCH)
    return path


def test_find_benches_search_order(tmp_path, monkeypatch):
    """--benches, else $EMLPRESS_BENCHES, else ./benches; never a folder found from where
    emlpress is installed."""
    flag, env, cwd = suite(tmp_path / "flag"), suite(tmp_path / "env"), suite(tmp_path / "here" / "benches")
    monkeypatch.chdir(tmp_path / "here")
    monkeypatch.setenv("EMLPRESS_BENCHES", str(env))
    assert bench.find_benches(flag) == flag
    assert bench.find_benches() == env
    monkeypatch.delenv("EMLPRESS_BENCHES")
    assert bench.find_benches() == cwd
    monkeypatch.chdir(tmp_path)  # no ./benches here: not even the checkout emlpress is imported from
    with pytest.raises(bench.BenchError, match=r"no benchmark suite at \./benches.*set EMLPRESS_BENCHES or pass --benches DIR"):
        bench.find_benches()
    (tmp_path / "flat").mkdir()  # bench_*.py beside conftest.py, not in suites/: not a suite
    (tmp_path / "flat" / "conftest.py").write_text(TINY_CONFTEST)
    (tmp_path / "flat" / "bench_tiny.py").write_text(TINY_BENCH)
    with pytest.raises(bench.BenchError, match=r"conftest\.py and suites/bench_\*\.py"):
        bench.find_benches(tmp_path / "flat")
    (tmp_path / "empty").mkdir()
    with pytest.raises(bench.BenchError, match="no benchmark suite at --benches"):
        bench.find_benches(tmp_path / "empty")  # no fallback once a place is given
    monkeypatch.setenv("EMLPRESS_BENCHES", str(tmp_path / "empty"))
    with pytest.raises(bench.BenchError, match="EMLPRESS_BENCHES="):
        bench.find_benches()


def test_expected_minutes_read_without_importing_the_suite(tmp_path, monkeypatch, capsys):
    d = suite(tmp_path / "s")
    assert bench.expected_minutes(d) == (0.1, 0.05)
    (d / "conftest.py").write_text("raise SystemExit('imported')\nEXPECTED_MINUTES = {'a': (2, 1), 'b': (3, 0.5)}\n")
    assert bench.expected_minutes(d) == (5.0, 1.5)
    monkeypatch.setenv("EMLPRESS_BENCHES", str(d))
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert "(this suite: about 5 minutes on 2 cores, --quick about 2)." in " ".join(capsys.readouterr().out.split())
    monkeypatch.setenv("EMLPRESS_BENCHES", str(tmp_path / "nowhere"))
    assert bench.expected_minutes() is None
    with pytest.raises(SystemExit):
        main(["bench", "--help"])  # no suite: the help still shows, without the figure
    assert "It prints the expected time of what it selected when it starts." in " ".join(capsys.readouterr().out.split())


def test_benches_not_found_and_bad_group(tmp_path, monkeypatch, capsys):
    pytest.importorskip("pytest_benchmark")
    monkeypatch.delenv("EMLPRESS_BENCHES", raising=False)
    assert main(["bench", "--benches", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"no benchmark suite at --benches {tmp_path}" in err and "--benches DIR" in err
    assert main(["bench", "--benches", str(REPO / "benches"), "--only", "nosuch", "-o", str(tmp_path / "r.json")]) == 2
    assert "--only nosuch: no such group" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


TINY_CONFTEST = '''
SUITE_VERSION = "t1"
EXPECTED_MINUTES = {"tiny": (0.1, 0.05)}
'''
TINY_BENCH = '''
import time
import pytest

@pytest.mark.quick
@pytest.mark.parametrize("impl", ["fast", "slow"])
def test_sleep(benchmark, impl):
    benchmark.group = "sleep"
    benchmark.extra_info.update(impl=impl, role="peer" if impl == "slow" else "emlpress")
    benchmark.pedantic(time.sleep, args=(0.002 if impl == "fast" else 0.02,), rounds=3, iterations=1)

def test_not_quick(benchmark):
    benchmark(lambda: None)
'''


def run_bench(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "emlpress", "bench", *map(str, args)], capture_output=True,
                          text=True, env=ENV, cwd=tmp_path)


def test_tiny_run_saves_a_machine_tagged_result(tmp_path):
    pytest.importorskip("pytest_benchmark")
    suite_dir = suite(tmp_path / "benches")
    (suite_dir / "pytest.ini").write_text("[pytest]\nmarkers =\n    quick: quick\n")
    out = tmp_path / "res" / "vm.json"
    r = run_bench(tmp_path, "--benches", suite_dir, "--quick", "--tag", "vm", "-o", out)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "2 benchmarks in tiny; expected about 0.05 min" in r.stdout
    res = bench.load(out)
    assert (res["tag"], res["suite_version"], res["quick"]) == ("vm", "t1", True)
    assert res["machine"]["cores"] == os.cpu_count()
    assert 0.05 < res["group_s"]["tiny"] <= res["wall_s"] + 0.1
    assert res["outcomes"] == {"passed": 2, "failed": [], "skipped": 0, "errors": []}
    names = sorted(b["name"] for b in res["benchmarks"])
    assert names == ["bench_tiny.py::test_sleep[fast]", "bench_tiny.py::test_sleep[slow]"]  # quick only
    med = {b["extra_info"]["impl"]: b["stats"]["median"] for b in res["benchmarks"]}
    assert 0.001 < med["fast"] < 1 and 0.02 <= med["slow"] < 1  # measured (a loaded machine may be slow)
    c = bench.compare([res, res])
    (_, _, _, cells), = c.peers
    assert 1.5 < cells[0][0] < 50 and c.ratios["bench_tiny.py::test_sleep[fast]", 1] == pytest.approx(1.0)
    bad = run_bench(tmp_path, "--benches", suite_dir, "--tag", "a b")
    assert bad.returncode == 2 and "--tag 'a b'" in bad.stderr


FAILING_BENCH = '''
import pytest

def test_ok(benchmark):
    benchmark(lambda: None)

def test_check_fails(benchmark):  # timed, then its result's check fails
    assert benchmark(lambda: 1) == 2

def test_raises(benchmark):
    benchmark(lambda: 1 / 0)

def test_skipped(benchmark):
    pytest.skip("not here")

def test_skipped_while_timed(benchmark):  # a peer that finds itself missing inside the timing
    benchmark.pedantic(lambda: pytest.skip("peer not installed"), rounds=1, iterations=1)
'''


def test_failed_benchmarks_are_named_and_left_out(tmp_path):
    pytest.importorskip("pytest_benchmark")
    suite_dir = suite(tmp_path / "benches")
    (suite_dir / "suites" / "bench_tiny.py").write_text(FAILING_BENCH)
    out = tmp_path / "r.json"
    r = run_bench(tmp_path, "--benches", suite_dir, "--tag", "vm", "-o", out)
    assert r.returncode == 1, r.stderr + r.stdout
    for name in ("test_check_fails", "test_raises"):
        assert f"failed: bench_tiny.py::{name} (its figure is not in the result)" in r.stderr
    res = bench.load(out)
    assert [b["name"] for b in res["benchmarks"]] == ["bench_tiny.py::test_ok"]
    assert res["outcomes"] == {"passed": 1, "skipped": 2, "errors": [],
                               "failed": ["bench_tiny.py::test_check_fails", "bench_tiny.py::test_raises"]}
    # nothing timed at all (pytest-benchmark then writes no file, or an empty one before 5.3)
    (suite_dir / "suites" / "bench_tiny.py").write_text("import pytest\n\ndef test_s(benchmark):\n    pytest.skip('no')\n")
    r = run_bench(tmp_path, "--benches", suite_dir, "--tag", "vm", "-o", tmp_path / "none.json")
    assert r.returncode == 1 and "no benchmark ran: 0 passed, 1 skipped, 0 failed or errors in tiny; nothing saved" in r.stderr
    assert "JSON" not in r.stderr and not (tmp_path / "none.json").exists()


def test_readme_tables_are_the_saved_results():
    """benches/README.md's generated tables equal what readme_tables.py renders now (a block
    whose result file is not in this checkout is skipped)."""
    import importlib.util

    path = REPO / "benches" / "tools" / "readme_tables.py"
    if not path.is_file():
        pytest.skip("no benches/ in this checkout")
    spec = importlib.util.spec_from_file_location("readme_tables", path)
    rt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rt)
    blocks = list(rt.BLOCK.finditer((REPO / "benches" / "README.md").read_text()))
    assert blocks
    checked = 0
    for m in blocks:
        if not all(p.is_file() for p in rt.result_files(m.group(2))):
            continue
        assert m.group(3) == rt.render(m.group(2)) + "\n", f"stale table under <!-- {m.group(2)} -->: run python benches/tools/readme_tables.py"
        checked += 1
    if not checked:
        pytest.skip("none of the README's result files is in this checkout")
