"""The fault suite (marker ``fault``; CI runs it with everything else): runs killed with
SIGKILL (or interrupted with SIGINT) at seeded points, resumed through the CLI, and compared
with an uninterrupted run's summary.

- ``emlpress tpc run``: a written answer is never solved again and its files stay as they
  were; INCOMPLETE says what was written; the resumed summary equals the uninterrupted one.
- ``emlpress study run`` (the Dask battery of tests/test_battery.py): killed after a seeded
  number of tasks plus a seeded delay; the resumed summaries equal the uninterrupted ones.
- ``emlpress epidemics run``: killed while training (after a seeded number of models) or
  while planning (after a seeded number of plan rows); the resume keeps every model and row
  (files untouched) and ends with the uninterrupted run's summary. Its refusals (other
  settings, a folder of another pipeline) are fast tests.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.fault

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")

# -- emlpress tpc run ---------------------------------------------------------------------

# the smallest run that still trains, compresses, solves, measures and corrects (one group of
# four answers); the CLI has no options for the pruning and resource epochs, so the run is
# started from the library with the same settings the CLI would store, and resumed by the CLI
TPC_CONFIG = dict(topologies=["9-7"], epochs=3, prune_epochs=3, resource_epochs=3, refit_epochs=2,
                  max_iterations=1, improve_probes=0, time_limit=10, timing_repeats=20,
                  truth_seconds=0, loop_seconds=1e6, progress=False)
# times differ between runs (the kernel's own measured time too); every other column must not
# timing_solves: the solver-time comparison repeats a solve until timing_seconds have passed
TPC_VOLATILE = re.compile(r"(_ms|_s)(_median|_min|_max)?$|measured_time$|^timing_solves$")


def _tpc_start(data: Path, out: Path) -> subprocess.Popen:
    code = ("import sys; from pathlib import Path; from emlpress.pipelines import tpc; "
            f"tpc.run(tpc.Config(data=Path({str(data)!r}), out=Path({str(out)!r}), **{TPC_CONFIG!r}))")
    # SIGINT at its default in the child, as from a terminal (an ignored SIGINT is inherited)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _tpc_summary(folder: Path) -> pd.DataFrame:
    s = pd.read_csv(folder / "run.summary.csv", dtype={"topology": str})
    return s[sorted(c for c in s.columns if not TPC_VOLATILE.search(c))]


def _written(folder: Path) -> int:
    path = folder / "run.summary.csv"
    return len(pd.read_csv(path)) if path.exists() else 0


@pytest.fixture(scope="module")
def tpc_data(tmp_path_factory):
    from emlpress.data import tpc_generate as gen

    d = tmp_path_factory.mktemp("faultdata")
    gen.generate(d, ["Saxpy"], n_rows=150, hw="h1", repeats=1, progress=False)
    return d


@pytest.fixture(scope="module")
def tpc_clean(tpc_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    p = _tpc_start(tpc_data, out)
    stdout, stderr = p.communicate(timeout=600)
    assert p.returncode == 0, stdout + stderr
    (folder,) = out.glob("run*")
    assert not (folder / "INCOMPLETE").exists()
    return _tpc_summary(folder)


# seed 1: killed after 2 answers; seed 0: interrupted after 3, while the last one is computed
# (after all 4 the solver timings of this tiny run end within tens of ms on a quiet machine:
# the signal arrived after the end in a clean CI run)
@pytest.mark.slow
@pytest.mark.parametrize("seed, sig", [(1, signal.SIGKILL), (0, signal.SIGINT)])
def test_tpc_run_killed_at_a_seeded_point_resumes_without_redoing_answers(
        tpc_data, tpc_clean, tmp_path, seed, sig):
    rng = np.random.default_rng(seed)
    after = int(rng.integers(1, 4))  # answers written before the kill (of 4)
    # short: on a quiet machine the rest of this tiny run takes well under a second, and a
    # signal that arrives after the end tests nothing
    delay = float(rng.uniform(0.0, 0.05))
    out = tmp_path / "runs"
    p = _tpc_start(tpc_data, out)
    deadline = time.monotonic() + 300
    try:
        while not list(out.glob("run*")) or _written(next(out.glob("run*"))) < after:
            assert p.poll() is None, "the run ended before it could be killed:\n" + p.stderr.read()
            assert time.monotonic() < deadline, f"{after} answers not written in 300 s"
            time.sleep(0.01)
        time.sleep(delay)
    finally:
        os.killpg(p.pid, sig)  # SIGINT as Ctrl-C in a terminal sends it: to the whole group
        p.communicate(timeout=120)
    (folder,) = out.glob("run*")
    n = _written(folder)
    if n == len(tpc_clean) and not (folder / "INCOMPLETE").exists():
        pytest.skip("the run finished before the signal arrived")
    assert p.returncode == -sig  # Python ends on an uncaught KeyboardInterrupt by SIGINT
    # INCOMPLETE says what was written, and every file is whole (atomic writes)
    marker = (folder / "INCOMPLETE").read_text()
    assert f"{n} of {len(tpc_clean)} answers written" in marker
    for f in (folder / "logs").glob("*.json"):
        json.loads(f.read_text())
    written = pd.read_csv(folder / "run.summary.csv")
    tags = [f"Saxpy_9-7_{v.replace('+', '_')}" for v in written["variant"]]
    kept = [folder / "logs" / f"{t}.json" for t in tags] + \
           [folder / "models" / f"{t}_error.npz" for t in tags] + \
           list((folder / "models").glob("*_fits.npz"))
    stamps = {f: f.stat().st_mtime_ns for f in kept}

    r = subprocess.run([sys.executable, "-m", "emlpress", "tpc", "run", "--resume", str(folder),
                        "--no-progress"], capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{n} answers already written are kept" in r.stderr
    for v in written["variant"]:
        assert v in r.stderr.split("skipped:")[1]
    # nothing written before the kill was computed again
    assert {f: f.stat().st_mtime_ns for f in kept} == stamps
    assert not (folder / "INCOMPLETE").exists()
    pd.testing.assert_frame_equal(_tpc_summary(folder), tpc_clean)


# -- emlpress study run (the Dask battery runner) -----------------------------------------


@pytest.fixture(scope="module")
def study_clean(tmp_path_factory):
    pytest.importorskip("distributed")
    from test_battery import N_TASKS, _cli

    from emlpress.pipelines import battery

    clean = tmp_path_factory.mktemp("study") / "clean"
    _cli(clean)
    assert len(battery.finished(clean)) == N_TASKS
    return clean


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_study_run_killed_at_a_seeded_point_resumes_to_the_same_summary(study_clean, tmp_path, seed):
    from test_battery import GRID, N_TASKS, _cli, _layers, _models

    from emlpress.pipelines import battery

    rng = np.random.default_rng(seed)
    after = int(rng.integers(1, N_TASKS - 1))  # tasks finished before the kill
    delay = float(rng.uniform(0.0, 1.5))
    folder = tmp_path / "killed"
    cmd = [sys.executable, "-m", "emlpress", "study", "run", *GRID, "--folder", str(folder)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=ENV)
    deadline = time.monotonic() + 300
    try:
        while len(battery.finished(folder)) < after:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, f"{after} tasks not finished in 300 s"
            time.sleep(0.05)
        time.sleep(delay)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client, the LocalCluster and its workers
        proc.wait()
    done = battery.finished(folder)
    assert after <= len(done) < N_TASKS, f"killed too late: {len(done)} of {N_TASKS} finished"
    assert (folder / battery.INCOMPLETE).exists()
    for p in (folder / "tasks").glob("*.json"):  # every result file whole (atomic writes)
        json.loads(p.read_text())
    for r in battery.load_results(folder).values():  # 2 workers share the cores
        assert r["_task"]["native_threads"] == r["_task"]["emlpress_threads"] == max(
            1, len(os.sched_getaffinity(0)) // 2)

    p = _cli(folder)
    assert f"{N_TASKS - len(done)} run now, {len(done)} already finished, 0 failed" in p.stdout
    assert not (folder / battery.INCOMPLETE).exists()
    pd.testing.assert_frame_equal(_models(folder), _models(study_clean))
    pd.testing.assert_frame_equal(_layers(folder), _layers(study_clean))
    if seed == 0:  # a third run has nothing left to do and rebuilds the same summary
        p = _cli(folder)
        assert f"0 run now, {N_TASKS} already finished" in p.stdout
        pd.testing.assert_frame_equal(_models(folder), _models(study_clean))


# -- emlpress epidemics run ---------------------------------------------------------------

# the smallest run the CLI allows with a hidden layer (the 8-unit network) and every bounding
EPI_ARGS = ["--topologies", "linear", "8", "--variants", "baseline", "--horizons", "3",
            "--epochs", "1", "--no-ptq", "--oracle-calls", "3"]
EPI_VOLATILE = re.compile(r"_s$")  # train_s, solve_s: times


def _epi_start(out: Path, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "emlpress", "epidemics", "run", *EPI_ARGS,
                             *extra, "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)


def _epi_summary(folder: Path) -> pd.DataFrame:
    s = pd.read_csv(folder / "run.summary.csv", dtype={"model": str, "file": str})
    return s[[c for c in s.columns if not EPI_VOLATILE.search(c)]]


def _epi_rows(folder: Path) -> list:
    return sorted((folder / "logs").glob("*.json"))  # a row's record


@pytest.fixture(scope="module")
def epi_clean(tmp_path_factory):
    pytest.importorskip("tf_keras")
    pytest.importorskip("sklearn")
    out = tmp_path_factory.mktemp("epiclean")
    p = _epi_start(out)
    stdout, stderr = p.communicate(timeout=600)
    assert p.returncode == 0, stdout + stderr
    (folder,) = out.glob("epidemics*")
    assert not (folder / "INCOMPLETE").exists()
    return folder


# seed 0, no tree: killed while training, after the first network is saved; seed 1, with the
# tree: killed while planning, after a seeded number of plan rows plus a seeded delay
@pytest.mark.slow
@pytest.mark.parametrize("seed, phase, tree", [(0, "training", False), (1, "plans", True)])
def test_epidemics_run_killed_at_a_seeded_point_resumes_keeping_models_and_rows(
        epi_clean, tmp_path, seed, phase, tree):
    from emlpress import Network

    rng = np.random.default_rng(seed)
    clean = _epi_summary(epi_clean)
    if not tree:
        clean = clean[clean["model"] != "tree"].reset_index(drop=True)
    n_models = 2 + tree
    after = int(rng.integers(1, 2 if phase == "training" else len(clean)))
    # training "8" takes seconds, a plan row some 50 ms: the kill lands within the phase
    delay = float(rng.uniform(0.0, 0.5 if phase == "training" else 0.05))
    out = tmp_path / "runs"
    p = _epi_start(out, *([] if tree else ["--no-tree"]))

    def reached() -> bool:
        folders = list(out.glob("epidemics*"))
        if not folders:
            return False
        written = (folders[0] / "models").glob("*.npz") if phase == "training" else _epi_rows(folders[0])
        return len([f for f in written if not f.name.endswith("_fit.npz")]) >= after

    deadline = time.monotonic() + 300
    try:
        while not reached():
            assert p.poll() is None, "the run ended before it could be killed:\n" + p.stderr.read()
            assert time.monotonic() < deadline, f"{after} {phase} files not written in 300 s"
            time.sleep(0.02)
        time.sleep(delay)
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate(timeout=120)
    (folder,) = out.glob("epidemics*")
    rows = _epi_rows(folder)
    models = sorted(f for f in (folder / "models").iterdir() if not f.name.endswith("_fit.npz"))
    if len(rows) == len(clean) or (phase == "training" and len(models) == n_models):
        pytest.skip(f"the run got past the {phase} before the signal arrived")
    assert p.returncode == -signal.SIGKILL
    # INCOMPLETE says what was written and how to resume; every file is whole (atomic writes)
    marker = (folder / "INCOMPLETE").read_text()
    # the marker follows each model and each row's record: a kill between the two leaves it
    # one behind (the records, not the marker, decide what a resume keeps)
    assert any(f"{k} of {n_models} models saved" in marker for k in (len(models), len(models) - 1))
    assert any(f"{k} of {len(clean)} plan rows written" in marker for k in (len(rows), len(rows) - 1))
    assert f"resume with: emlpress epidemics run --resume {folder}" in marker
    for f in rows:
        json.loads(f.read_text())
    if phase == "plans":  # as a kill between a row's log and the summary after it would leave
        summary = pd.read_csv(folder / "run.summary.csv")
        summary.iloc[:len(rows) - 1].to_csv(folder / "run.summary.csv", index=False)
    kept = {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in models + rows}

    r = subprocess.run([sys.executable, "-m", "emlpress", "epidemics", "run", "--resume", str(folder)],
                       capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"kept {len(models)} models" in r.stderr and f"{len(rows)} of {len(clean)} plan rows" in r.stderr
    # nothing written before the kill was computed or written again
    assert {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in kept} == kept
    assert not (folder / "INCOMPLETE").exists() and not list((folder / "models").glob("*_fit.npz"))
    pd.testing.assert_frame_equal(_epi_summary(folder), clean)
    for name in ("linear", "8"):  # the networks (kept or trained on resume) are the clean run's
        a, b = Network.load(folder / "models" / f"{name}.npz"), Network.load(epi_clean / "models" / f"{name}.npz")
        assert all(np.array_equal(x, y) for x, y in zip(a.weights + a.biases, b.weights + b.biases))
    if phase == "training":
        return
    # a resume of the finished run computes nothing and rebuilds the same summary
    stamps = {f: f.stat().st_mtime_ns for f in (folder / "logs").iterdir()}
    r = subprocess.run([sys.executable, "-m", "emlpress", "epidemics", "run", "--resume", str(folder)],
                       capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0 and "the run is finished" in r.stderr, r.stdout + r.stderr
    assert {f: f.stat().st_mtime_ns for f in (folder / "logs").iterdir()} == stamps
    pd.testing.assert_frame_equal(_epi_summary(folder), clean)


def test_epidemics_resume_refuses_other_settings_and_foreign_folders(tmp_path, capsys):
    from emlpress._atomic import write_json_atomic
    from emlpress.cli import main
    from emlpress.pipelines import epidemics as E

    folder = tmp_path / "epidemics20260101000000"
    (folder / "logs").mkdir(parents=True)
    write_json_atomic(folder / E.CONFIG_FILE, E._config_payload(E.Config(topologies=["linear"], epochs=1,
                                                                          horizons=[3], ptq_table=False)))
    before = sorted(folder.rglob("*"))

    def cli(*args):
        rc = main(["epidemics", "run", *args])
        return rc, capsys.readouterr().err

    rc, err = cli("--resume", str(folder), "--epochs", "2", "--no-tree", "--topologies", "linear")
    assert rc == 2 and err.count("\n") == 1, err
    assert "--epochs 2 (the run has epochs = 1)" in err and "--no-tree (the run has tree = True)" in err
    assert "--topologies" not in err  # given as the run has it
    rc, err = cli("--resume", str(folder), "--seed", "0", "--budget-per-week", "0")  # 0 is a value
    assert rc == 2 and "--budget-per-week 0.0 (the run has budget_per_week = 6.666" in err, err
    assert "--seed" not in err  # given as the run has it
    rc, err = cli("--resume", str(folder), "--out", str(tmp_path))
    assert rc == 2 and "--out" in err
    with pytest.raises(ValueError, match=r"other settings: epochs 5 \(the run has 1\)"):
        E.run(E.Config(topologies=["linear"], epochs=5, horizons=[3], ptq_table=False), resume=folder)
    assert sorted(folder.rglob("*")) == before  # refused before anything is written
    # a tpc run folder, another pipeline's config.json, a corrupt one, no folder at all
    tpc_folder = tmp_path / "run20260101000000"
    write_json_atomic(tpc_folder / "logs" / "config.json", {"epochs": 3})
    other = tmp_path / "other"
    write_json_atomic(other / E.CONFIG_FILE, {"pipeline": "tpc", "config": {}})
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / E.CONFIG_FILE).write_text('{"pipeline": "epidemics", "con')
    for path, said in ((tpc_folder, "not an epidemics run folder (no config.json)"),
                       (other, "written by the 'tpc' pipeline"),
                       (corrupt, "not the settings of an epidemics run"),
                       (tmp_path / "missing", "no such run folder")):
        rc, err = cli("--resume", str(path))
        assert rc == 2 and f"--resume: {path}" in err and said in err, err
