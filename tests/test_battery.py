"""The Dask battery runner (emlpress.pipelines.battery) through the lossless study's CLI
(killed and resumed: tests/test_faults.py): refusal of another configuration, an
unreachable scheduler, failed tasks retried, atomic results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from emlpress.pipelines import battery

pytest.importorskip("distributed")

GRID = ["--preset", "test", "--optimizers", "adam", "sgd", "--regularizations", "none",
        "l1=0.01", "l2=0.01", "--no-reference", "--workers", "2", "--no-progress"]
N_TASKS = 6
# times and where a task ran differ between runs; everything else must not
VOLATILE = ("train_s", "bounds_s", "compress_s", "verify_s", "task_s")


def _cli(folder, *extra, check=True, **kw):
    cmd = [sys.executable, "-m", "emlpress", "study", "run", *GRID, "--folder", str(folder),
           *extra]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, **kw)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def _models(folder) -> pd.DataFrame:
    df = pd.read_csv(Path(folder) / "models.csv")
    return df.drop(columns=list(VOLATILE)).sort_values(["model", "method"]).reset_index(drop=True)


def _layers(folder) -> pd.DataFrame:
    df = pd.read_csv(Path(folder) / "layers.csv")
    return df.sort_values(["model", "method", "layer"]).reset_index(drop=True)


def _snapshot(folder) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in Path(folder).rglob("*")}


# killed at seeded points and resumed to the same summary: tests/test_faults.py (marker fault)


@pytest.mark.slow
def test_another_configuration_is_refused_and_nothing_written(tmp_path):
    folder = tmp_path / "run"
    _cli(folder, "--methods", "interval", "crown")
    before = _snapshot(folder)
    p = _cli(folder, "--methods", "interval", "lp", check=False)
    assert p.returncode == 2
    assert "another configuration" in p.stderr and "methods" in p.stderr
    assert "'crown'" in p.stderr and "'lp'" in p.stderr  # what differs, both sides
    assert _snapshot(folder) == before


def test_a_folder_that_is_not_a_battery_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(battery.ConfigMismatch, match="not a battery run folder"):
        battery.check_folder(tmp_path, "lossless-study", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_an_unreachable_scheduler_is_an_error_within_its_timeout(tmp_path):
    folder = tmp_path / "run"
    t0 = time.monotonic()
    p = _cli(folder, "--scheduler", "tcp://127.0.0.1:9", "--scheduler-timeout", "2", check=False)
    assert p.returncode != 0
    assert "no Dask scheduler answered at 'tcp://127.0.0.1:9' within 2 s" in p.stderr
    assert time.monotonic() - t0 < 60
    assert not folder.exists()  # nothing written


def test_unknown_names_are_refused():
    from emlpress.pipelines import lossless_study as study

    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'; known: adam"):
        study.config("test", optimizers=["rmsprop"])
    with pytest.raises(ValueError, match="unknown regularization 'l1=0.2'"):
        study.config("test", regularizations=["l1=0.2"])
    with pytest.raises(ValueError, match="unknown preset"):
        study.config("huge")
    p = subprocess.run([sys.executable, "-m", "emlpress", "study", "run", "--optimizers", "nadam"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "invalid choice: 'nadam'" in p.stderr


@pytest.mark.slow
def test_a_failed_task_is_reported_and_retried(tmp_path):
    from emlpress.pipelines import lossless_study as study

    folder = tmp_path / "run"
    missing = tmp_path / "later.npz"
    ok = battery.Task("fine", study.reference_task,
                      dict(path=str(_tiny_net(tmp_path / "net.npz")), methods=["interval"],
                           exact_time_limit=1.0))
    bad = battery.Task("bad", study.reference_task,
                       dict(path=str(missing), methods=["interval"], exact_time_limit=1.0))
    res = battery.run(folder, "t", {"x": 1}, [ok, bad], workers=1, progress=False)
    assert res.ran == ["fine"] and list(res.failed) == ["bad"]
    assert "FileNotFoundError" in res.failed["bad"]
    assert (folder / "tasks" / "bad.error").exists() and (folder / battery.INCOMPLETE).exists()
    _tiny_net(missing)
    res = battery.run(folder, "t", {"x": 1}, [ok, bad], workers=1, progress=False)
    assert res.ran == ["bad"] and res.skipped == ["fine"] and res.complete
    assert not (folder / "tasks" / "bad.error").exists()
    assert not (folder / battery.INCOMPLETE).exists()
    assert set(res.results) == {"fine", "bad"}


def _tiny_net(path):
    import numpy as np

    from emlpress.network import Network

    rng = np.random.default_rng(0)
    Network([rng.normal(size=(4, 2)), rng.normal(size=(1, 4))], [rng.normal(size=4),
            rng.normal(size=1)], [-1, -1], [1, 1]).save(path)
    return path


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "r.json"
    battery.write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        battery.write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left


def test_task_keys_are_checked(tmp_path):
    t = battery.Task("a/b", print)
    with pytest.raises(ValueError, match="task key 'a/b'"):
        battery.run(tmp_path / "x", "t", {}, [t], progress=False)
    with pytest.raises(ValueError, match="unique"):
        battery.run(tmp_path / "x", "t", {}, [battery.Task("a", print)] * 2, progress=False)
    assert not (tmp_path / "x").exists()


def test_native_threads_share_the_cores():
    cores = len(os.sched_getaffinity(0))
    assert battery.native_threads_default(1, 1) == cores
    assert battery.native_threads_default(cores, 1) == 1
    assert battery.native_threads_default(4 * cores, 2) == 1


@pytest.mark.slow
def test_an_existing_scheduler_runs_the_tasks(tmp_path):
    """--scheduler ADDRESS: the tasks go to a cluster started elsewhere (here a LocalCluster
    of this test), one native thread each by default."""
    from distributed import LocalCluster

    from emlpress.pipelines import lossless_study as study

    net = str(_tiny_net(tmp_path / "net.npz"))
    tasks = [battery.Task(f"t{k}", study.reference_task,
                          dict(path=net, methods=["interval", "crown"], exact_time_limit=1.0))
             for k in range(3)]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        res = battery.run(tmp_path / "run", "t", {"x": 1}, tasks,
                          scheduler=cluster.scheduler_address, progress=False)
        worker_pids = {w.pid for w in cluster.workers.values()}
    assert res.complete and sorted(res.ran) == ["t0", "t1", "t2"]
    for r in res.results.values():
        assert r["_task"]["native_threads"] == 1 and r["_task"]["pid"] in worker_pids
        assert r["methods"]["crown"]["rel_diff"] <= 1e-9


@pytest.mark.slow
def test_ctrl_c_stops_the_run_keeps_the_finished_tasks_and_says_how_to_resume(tmp_path):
    folder = tmp_path / "run"
    cmd = [sys.executable, "-m", "emlpress", "study", "run", *GRID, "--folder", str(folder)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while len(battery.finished(folder)) < 1:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "rerun the same command to resume" in err
    done = battery.finished(folder)
    assert 1 <= len(done) < N_TASKS and (folder / battery.INCOMPLETE).exists()
    # the summary was rebuilt from the tasks that finished
    assert set(pd.read_csv(folder / "models.csv")["model"]) == done
    p = _cli(folder)
    assert f"{N_TASKS - len(done)} run now, {len(done)} already finished" in p.stdout


def test_a_folder_in_use_is_refused(tmp_path):
    import fcntl

    from emlpress.pipelines import lossless_study as study

    folder = tmp_path / "run"
    net = str(_tiny_net(tmp_path / "net.npz"))
    t = battery.Task("t", study.reference_task, dict(path=net, methods=["interval"],
                                                    exact_time_limit=1.0))
    battery.run(folder, "t", {"x": 1}, [t], workers=1, progress=False)
    with open(folder / ".lock", "w") as held:  # another run holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(battery.FolderBusy, match="in use by another run"):
            battery.run(folder, "t", {"x": 1}, [t], workers=1, progress=False)


def test_a_new_folder_in_use_is_refused(tmp_path):
    import fcntl

    folder = tmp_path / "new"
    folder.mkdir()
    with open(folder / ".lock", "w") as held:  # a run that has just created it
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(battery.FolderBusy):
            battery.run(folder, "t", {"x": 1}, [battery.Task("a", print)], progress=False)
    assert [p.name for p in folder.iterdir()] == [".lock"]


def test_a_scheduler_without_workers_is_an_error(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=True, dashboard_address=":0") as cluster:
        with pytest.raises(battery.SchedulerUnreachable, match="has no worker"):
            battery.run(tmp_path / "run", "t", {}, [battery.Task("a", print)],
                        scheduler=cluster.scheduler_address, timeout=1, progress=False)
    assert not (tmp_path / "run").exists()


def test_battery_options_of_tpc_run_need_a_battery(capsys):
    from emlpress.cli import main

    assert main(["tpc", "run", "--native-threads", "2"]) == 2
    assert "--native-threads: options of a battery; add --workers N" in capsys.readouterr().err
    assert main(["tpc", "run", "--workers", "2", "--resume", "x", "--folder", "y"]) == 2
    assert "give one of them" in capsys.readouterr().err
