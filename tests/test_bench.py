"""emlpress bench: the machine description, the comparison of results, bad input, and one tiny
real run of a suite (a two-benchmark suite written here, not the repository's)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emlpress import bench
from emlpress.cli import main

REPO = Path(__file__).resolve().parents[1]


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
    if hasattr(_core, "build_info"):  # compiled in by CMakeLists.txt
        assert "-O3" in flags and m["build"]["compiler"] and m["build"]["build_type"] == "Release"
        assert m["build"]["native"] == ("-march=native" in flags)
    json.dumps(m)  # the description goes into the result file as is


def test_compare_ratios_medians_min_max(tmp_path, capsys):
    a = result("pc", [entry("bench_x.py::t[a]", 2e-3, 1e-3, 4e-3, impl="emlpress"),
                      entry("bench_x.py::t[b]", 6e-3, 5e-3, 9e-3, impl="numpy", role="peer"),
                      entry("bench_x.py::u", 10.0, 9.0, 11.0, group="h")])
    b = result("g100", [entry("bench_x.py::t[a]", 1e-3, 0.5e-3, 3e-3, impl="emlpress"),
                        entry("bench_x.py::t[b]", 9e-3, 8e-3, 12e-3, impl="numpy", role="peer"),
                        entry("bench_x.py::u", 25.0, 20.0, 30.0, group="h")])
    c = bench.compare([bench.load(write(tmp_path, "a.json", a)), bench.load(write(tmp_path, "b.json", b))])
    assert c.labels == ["pc", "g100"]
    assert c.times["bench_x.py::t[a]", 1] == (1e-3, 0.5e-3, 3e-3)
    assert c.ratios["bench_x.py::t[a]", 1] == pytest.approx(0.5)
    assert c.ratios["bench_x.py::u", 1] == pytest.approx(2.5)
    (group, e, p, cells), = c.peers  # one pair: numpy over emlpress, in each run
    assert (group, e, p) == ("g", "emlpress", "numpy")
    assert cells[0][0] == pytest.approx(3.0) and cells[1][0] == pytest.approx(9.0)
    md = bench.markdown(c)
    assert "| g | emlpress | 2.00 ms (1.00-4.00) | 1.00 ms (0.500-3.00) | 0.500x |" in md  # one unit per row
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
    assert "must end in .png" in capsys.readouterr().err


def test_benches_not_found_and_bad_group(tmp_path, monkeypatch, capsys):
    pytest.importorskip("pytest_benchmark")
    monkeypatch.delenv("EMLPRESS_BENCHES", raising=False)
    assert main(["bench", "--benches", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"no benchmark suite at --benches {tmp_path}" in err and "--benches DIR" in err
    assert bench.find_benches() == REPO / "benches"  # the source checkout's, from anywhere
    assert main(["bench", "--only", "nosuch", "-o", str(tmp_path / "r.json")]) == 2
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


def test_tiny_run_saves_a_machine_tagged_result(tmp_path):
    pytest.importorskip("pytest_benchmark")
    suite = tmp_path / "benches"
    suite.mkdir()
    (suite / "conftest.py").write_text(TINY_CONFTEST)
    (suite / "bench_tiny.py").write_text(TINY_BENCH)
    (suite / "pytest.ini").write_text("[pytest]\nmarkers =\n    quick: quick\n")
    out = tmp_path / "res" / "vm.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "python"), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "emlpress", "bench", "--benches", str(suite), "--quick",
                        "--tag", "vm", "-o", str(out)], capture_output=True, text=True, env=env, cwd=tmp_path)
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
    assert 0.002 <= med["fast"] < 0.015 and 0.02 <= med["slow"] < 0.1
    c = bench.compare([res, res])
    (_, _, _, cells), = c.peers
    assert 1.5 < cells[0][0] < 50 and c.ratios["bench_tiny.py::test_sleep[fast]", 1] == pytest.approx(1.0)
    bad = subprocess.run([sys.executable, "-m", "emlpress", "bench", "--benches", str(suite), "--tag", "a b"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "--tag 'a b'" in bad.stderr
