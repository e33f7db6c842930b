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
    # as from a terminal: SIGINT at its default in the child, whatever this process' state (an
    # ignored SIGINT is inherited across exec and Python then never raises KeyboardInterrupt)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
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


def _stop(**kwargs):
    raise KeyboardInterrupt  # Ctrl-C while this task runs


def _reference_tasks(tmp_path, stop: str | None = None) -> list:
    from emlpress.pipelines import lossless_study as study

    net = str(_tiny_net(tmp_path / "net.npz"))
    return [battery.Task(f"t{k}", _stop if f"t{k}" == stop else study.reference_task,
                         dict(path=net, methods=["interval", "crown"], exact_time_limit=1.0))
            for k in range(3)]


def _without_times(r):
    """A task result without where it ran and what took how long (seconds: ``*_s``)."""
    if isinstance(r, dict):
        return {k: _without_times(v) for k, v in r.items() if k != "_task" and not k.endswith("_s")}
    return r


def test_in_process_a_battery_stopped_by_ctrl_c_resumes_and_leaves_the_threads_alone(tmp_path):
    """workers=0: the tasks run one after another in this process; Ctrl-C in the second leaves
    the first's result, the marker and a free lock; the rerun runs only the others, and its
    thread caps hold only while each task runs."""
    from emlpress import _core

    folder = tmp_path / "run"
    res = battery.run(folder, "t", {"x": 1}, _reference_tasks(tmp_path, stop="t1"), workers=0,
                      progress=False)
    assert res.interrupted and res.ran == ["t0"] and not res.failed
    assert battery.finished(folder) == {"t0"} and (folder / battery.INCOMPLETE).exists()
    before = ({v: os.environ.get(v) for v in battery.THREAD_VARIABLES}, _core.num_threads())
    res = battery.run(folder, "t", {"x": 1}, _reference_tasks(tmp_path), workers=0,
                      native_threads=1, progress=False)
    assert res.complete and res.ran == ["t1", "t2"] and res.skipped == ["t0"]
    assert not (folder / battery.INCOMPLETE).exists()
    assert all(r["_task"]["emlpress_threads"] == 1 for k, r in res.results.items() if k != "t0")
    assert ({v: os.environ.get(v) for v in battery.THREAD_VARIABLES}, _core.num_threads()) == before
    with pytest.raises(battery.ConfigMismatch):  # the same folder semantics as on a cluster
        battery.run(folder, "t", {"x": 2}, _reference_tasks(tmp_path), workers=0, progress=False)
    with pytest.raises(ValueError, match="workers=0 runs the tasks in this process"):
        battery.run(tmp_path / "other", "t", {}, [], workers=0, scheduler="tcp://127.0.0.1:1")


@pytest.mark.slow
def test_in_process_and_on_a_local_cluster_a_battery_gives_the_same_results(tmp_path):
    here = battery.run(tmp_path / "here", "t", {"x": 1}, _reference_tasks(tmp_path), workers=0,
                       progress=False)
    there = battery.run(tmp_path / "there", "t", {"x": 1}, _reference_tasks(tmp_path), workers=1,
                        progress=False)
    assert here.complete and there.complete and len(here.results) == 3
    assert {r["_task"]["pid"] for r in here.results.values()} == {os.getpid()}
    assert os.getpid() not in {r["_task"]["pid"] for r in there.results.values()}
    assert _without_times(here.results) == _without_times(there.results)


def test_battery_options_of_tpc_run_need_a_battery(capsys):
    from emlpress.cli import main

    assert main(["tpc", "run", "--native-threads", "2"]) == 2
    assert "--native-threads: options of a battery; add --workers N" in capsys.readouterr().err
    assert main(["tpc", "run", "--workers", "2", "--resume", "x", "--folder", "y"]) == 2
    assert "give one of them" in capsys.readouterr().err


# --------------------------------------------------------------------------- HPC clusters
# No queue here: the job script dask-jobqueue would submit is what is checked, through the CLI.

HPC = ["--cluster", "slurm", "--cores", "48", "--memory", "64GB", "--walltime", "04:00:00",
       "--queue", "g100_usr_prod", "--account", "IscrC_TEST", "--workers", "3"]


def _job_script(capsys, tmp_path, *options):
    from emlpress import cli

    folder = tmp_path / "runs" / "hpc"
    code = cli.main(["study", "run", "--preset", "test", "--folder", str(folder), *options,
                     "--job-script"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert not (tmp_path / "runs").exists(), "--job-script must leave nothing on disk"
    return out.out, folder


def _directives(script: str, prefix: str) -> list[str]:
    return [line[len(prefix):].strip() for line in script.splitlines() if line.startswith(prefix)]


def _worker_command(script: str) -> str:
    lines = [line for line in script.splitlines() if "distributed.cli.dask_worker" in line]
    assert len(lines) == 1, script
    return lines[0]


def test_slurm_job_script_books_what_was_asked_and_runs_a_reachable_worker(capsys, tmp_path):
    pytest.importorskip("dask_jobqueue")
    script, folder = _job_script(capsys, tmp_path, *HPC)
    d = _directives(script, "#SBATCH")
    assert "-p g100_usr_prod" in d and "-A IscrC_TEST" in d and "-t 04:00:00" in d
    assert "--cpus-per-task=48" in d and "-n 1" in d
    assert "--mem=60G" in d  # 64 GB = 59.6 GiB, rounded up in SLURM's GiB ("G")
    logs = str(folder.resolve() / "logs" / "jobs")
    assert f"-o {logs}/emlpress-%J.out" in d and f"-e {logs}/emlpress-%J.err" in d
    cmd = _worker_command(script).split()
    assert cmd[:3] == [sys.executable, "-m", "distributed.cli.dask_worker"]
    address = cmd[3]
    host = address.split("://")[1].rsplit(":", 1)[0]
    assert address.startswith("tcp://") and not host.startswith("127."), address
    assert cmd[cmd.index("--nthreads") + 1] == "1"  # one task at a time per worker
    # leaves 5 minutes before the 4 h walltime, so its task is rescheduled, not lost
    assert cmd[cmd.index("--lifetime") + 1] == f"{4 * 3600 - 300}s"
    # every task's native kernels use the job's 48 cores
    assert "export OMP_NUM_THREADS=48" in script and "export OPENBLAS_NUM_THREADS=48" in script


def test_pbs_job_script_and_threads_per_worker(capsys, tmp_path):
    pytest.importorskip("dask_jobqueue")
    script, _ = _job_script(capsys, tmp_path, "--cluster", "pbs", "--cores", "8", "--memory",
                            "16GB", "--walltime", "1-00:00:00", "--queue", "workq",
                            "--threads-per-worker", "2")
    d = _directives(script, "#PBS")
    assert "-q workq" in d and "-l walltime=1-00:00:00" in d
    assert "-l select=1:ncpus=8:mem=15GB" in d, d  # 16 GB = 14.9 GiB, rounded up
    cmd = _worker_command(script).split()
    assert cmd[cmd.index("--nthreads") + 1] == "2"
    assert "export OMP_NUM_THREADS=4" in script  # 8 cores / 2 tasks at a time


@pytest.mark.parametrize("options, says", [
    (["--cluster", "slurm", "--cores", "4"], "--cluster slurm needs --memory --walltime"),
    (["--cores", "4"], "--cores: an option of --cluster slurm|pbs"),
    (HPC[:-2] + ["--workers", "0"], "argument --workers: must be an integer >= 1"),
    (HPC[:2] + ["--cores", "0", "--memory", "1GB", "--walltime", "1:00:00"],
     "--cores must be a positive integer"),
    (HPC[:4] + ["--memory", "lots", "--walltime", "1:00:00"], "--memory 'lots'"),
    (HPC[:6] + ["--walltime", "4h"], "--walltime '4h': use HH:MM:SS"),
    (HPC + ["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler and --cluster slurm"),
    (HPC + ["--interface", "lo"], "--interface 'lo': not a network interface"),  # loopback
    (HPC + ["--interface", "nosuch0"], "--interface 'nosuch0'"),
])
def test_bad_cluster_options_are_refused_before_any_work(capsys, tmp_path, options, says):
    pytest.importorskip("dask_jobqueue")
    from emlpress import cli

    folder = tmp_path / "runs" / "hpc"
    code = cli.main(["study", "run", "--preset", "test", "--folder", str(folder), *options])
    err = capsys.readouterr().err
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


def test_the_scheduler_listens_where_the_jobs_reach_it_and_the_dashboard_on_loopback(tmp_path):
    pytest.importorskip("dask_jobqueue")
    import psutil

    q = battery.JobQueue("slurm", cores=4, memory="4GB", walltime="01:00:00", jobs=2)
    cluster = q.make(tmp_path / "run", threads_per_worker=1, native_threads=4)
    try:
        listening = {c.laddr for c in psutil.Process().net_connections()
                     if c.status == psutil.CONN_LISTEN}
        host = cluster.scheduler_address.split("://")[1].rsplit(":", 1)[0]
        port = int(cluster.scheduler_address.rsplit(":", 1)[1])
        assert (host, port) in listening and not host.startswith("127.")
        assert not any(ip in ("0.0.0.0", "::", "") for ip, _ in listening), listening
        dashboard = cluster.scheduler.services["dashboard"]
        ports = {s.getsockname()[:2] for s in dashboard._sockets.values()}
        assert all(ip == "127.0.0.1" for ip, _ in ports), ports
        assert (tmp_path / "run" / "logs" / "jobs").is_dir()  # where SLURM writes the jobs' output
    finally:
        cluster.close()


def test_tpc_run_takes_the_cluster_options_too(capsys, tmp_path):
    pytest.importorskip("dask_jobqueue")
    from emlpress import cli

    folder = tmp_path / "runs" / "tpc"
    code = cli.main(["tpc", "run", *HPC[:-2], "--folder", str(folder), "--job-script"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "#SBATCH --cpus-per-task=48" in out.out and f"{folder.resolve()}/logs/jobs" in out.out
    assert not (tmp_path / "runs").exists()


# A stand-in for SLURM: `sbatch` runs the job script dask-jobqueue generated, unchanged, as a
# background process on this machine; `scancel` kills that process and its descendants, by
# their ids. Everything stays on the loopback interface (the scheduler's address is set to
# 127.0.0.1 for this test only).
_SBATCH = """#!/bin/bash
set -e
cp "$1" "{jobs}/job-$$.sh"
bash "{jobs}/job-$$.sh" > "{jobs}/job-$$.log" 2>&1 < /dev/null &
echo "$!" >> "{jobs}/pids"
echo "Submitted batch job $!"
"""
_SCANCEL = """#!/bin/bash
tree() {{ for c in $(ps -o pid= --ppid "$1"); do tree "$c"; done; kill -KILL "$1" 2>/dev/null || true; }}
tree "$1"
"""


def _job_killed_at_its_walltime(marker: str, threads: int = 1) -> dict:
    """First run: record it and kill this worker and its nanny, so that the job ends as at
    its walltime. Second run (on the job that replaced it): finish."""
    import os
    import signal
    from pathlib import Path

    if not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getppid(), signal.SIGKILL)  # the nanny
        os.kill(os.getpid(), signal.SIGKILL)
    return {"first_pid": int(Path(marker).read_text()), "pid": os.getpid()}


def _quick(x: int, threads: int = 1) -> dict:
    return {"x": x, "threads": threads}


@pytest.mark.slow
def test_a_job_killed_at_its_walltime_is_replaced_and_its_task_rerun(tmp_path, monkeypatch):
    pytest.importorskip("dask_jobqueue")
    import dask

    jobs = tmp_path / "queue"
    jobs.mkdir()
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name, text in (("sbatch", _SBATCH.format(jobs=jobs)), ("scancel", _SCANCEL.format())):
        (bin_ / name).write_text(text)
        (bin_ / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}:{os.environ['PATH']}")
    # the jobs inherit the environment (as SLURM's do): their workers import this module
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    monkeypatch.setattr(battery.JobQueue, "_default_host", staticmethod(lambda: "127.0.0.1"))

    q = battery.JobQueue("slurm", cores=1, memory="2GB", walltime="01:00:00", jobs=1)
    tasks = [battery.Task("walltime", _job_killed_at_its_walltime,
                          {"marker": str(tmp_path / "first-attempt")}),
             battery.Task("quick", _quick, {"x": 3})]
    try:
        with dask.config.set({"distributed.deploy.lost-worker-timeout": "1s"}):
            res = battery.run(tmp_path / "run", "hpc-test", {"n": 2}, tasks, scheduler=q,
                              progress=False)
    finally:
        pids = (jobs / "pids").read_text().split() if (jobs / "pids").exists() else []
        for pid in pids:  # a job left running (its script is this test's), by its id
            subprocess.run([str(bin_ / "scancel"), pid], capture_output=True)
    assert res.complete and sorted(res.ran) == ["quick", "walltime"], res.failed
    r = res.results["walltime"]
    assert r["pid"] != r["first_pid"]  # finished by another worker than the one killed
    assert len(pids) >= 2  # a second job replaced the first
    assert res.results["quick"]["x"] == 3 and res.results["quick"]["threads"] == 1
    script = next(jobs.glob("job-*.sh")).read_text()
    assert "#SBATCH -t 01:00:00" in script and "export OMP_NUM_THREADS=1" in script
    assert not (tmp_path / "run" / "INCOMPLETE").exists()


def test_the_users_jobqueue_configuration_is_kept(capsys, tmp_path):
    pytest.importorskip("dask_jobqueue")
    import dask

    with dask.config.set({"jobqueue.slurm.job-extra-directives": ["--qos=normal"],
                          "jobqueue.slurm.job-script-prologue": ["module load python"]}):
        script, _ = _job_script(capsys, tmp_path, *HPC)
    lines = script.splitlines()
    assert "#SBATCH --qos=normal" in lines and "module load python" in lines
    # the site's prologue first, then emlpress' thread caps, then the worker
    assert lines.index("module load python") < lines.index("export OMP_NUM_THREADS=48") \
        < lines.index(_worker_command(script))
