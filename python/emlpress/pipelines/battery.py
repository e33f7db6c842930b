"""Batteries of independent tasks on dask.distributed, with a resumable run folder.

A battery is a list of :class:`Task` s (one trained model, say: train, bound, compress,
verify) and a configuration: the settings that decide the tasks' results. :func:`run` runs the
tasks that have no result yet on a Dask cluster (a ``LocalCluster`` by default, or an existing
scheduler) and rebuilds the battery's summary from every task result at the end.

The run folder::

    battery.json        kind and configuration (written once; a rerun must match it)
    .lock               held by the run using the folder (a second one is refused)
    tasks/<key>.json    one result per finished task, written atomically by the task itself
                        (a temporary file in the same folder, then a rename)
    tasks/<key>.error   why a task failed (it is retried by the next run)
    logs/               what the workers' native libraries wrote on stderr
    INCOMPLETE          while a run goes on, or after it stopped early

A rerun of the same command on the same folder skips every task whose result exists, so a run
stopped by a crash, Ctrl-C or a killed job continues where it was. A folder made by another
configuration is refused (what differs is named) and nothing in it is touched.

Threads: each Dask worker runs ``threads_per_worker`` tasks at a time and every task caps the
native kernels (emlpress' C++ threads and HiGHS instances, BLAS through threadpoolctl,
TensorFlow's thread pools) at ``native_threads``; with a LocalCluster the default is the
machine's cores divided by ``workers x threads_per_worker`` (at least 1), so that the workers do
not oversubscribe the cores. With an existing scheduler the default is 1 per task.

On a cluster of several machines, the run folder must be visible to every worker at the same
path (a shared file system): the tasks write their results there. A task result the client
cannot see afterwards is reported as such.

On an HPC cluster, ``scheduler=JobQueue("slurm", cores=48, memory="64GB",
walltime="04:00:00", ...)`` starts the scheduler in this process and the workers as batch jobs
(SLURM or PBS, through dask-jobqueue: the ``[hpc]`` extra); a worker leaves before its job's
walltime and a new job replaces it, and a run whose own process is killed resumes on the same
command, as above.

From a script of your own, call :func:`run` (or a pipeline's ``run``) under
``if __name__ == "__main__":``: the LocalCluster's workers are spawned processes, which import
the script's main module again.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import time
import traceback
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from emlpress import _atomic
from emlpress._atomic import write_atomic
from emlpress.pipelines.jobqueue import JobQueue

__all__ = ["Task", "JobQueue", "BatteryResult", "ConfigMismatch", "SchedulerUnreachable", "FolderBusy", "run",
           "load_results", "finished", "write_atomic", "write_json_atomic",
           "native_threads_default", "config_of", "check_folder", "THREAD_VARIABLES"]

VERSION = 1
INCOMPLETE = "INCOMPLETE"


class ConfigMismatch(ValueError):
    """The run folder was made by another configuration."""


class SchedulerUnreachable(ConnectionError):
    """No Dask scheduler answered at the address within the timeout, or it has no worker."""


class FolderBusy(RuntimeError):
    """Another run holds the run folder."""


@dataclass(frozen=True)
class Task:
    """One unit of a battery: ``fn(**kwargs, threads=n)`` returns a JSON-serialisable dict
    (``threads``: the native threads the task may use).

    ``fn`` must be importable by the workers (a module-level function of an installed
    package); ``key`` names the result file (letters, digits, ``-_.=+``)."""

    key: str
    fn: Callable
    kwargs: dict = field(default_factory=dict)


@dataclass
class BatteryResult:
    folder: Path
    results: dict            # key -> result dict, every finished task (this run and earlier)
    ran: list                # keys finished in this run
    skipped: list            # keys whose result was already there
    failed: dict             # key -> error text, this run
    summary: object = None   # what ``summarize`` returned
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def complete(self) -> bool:
        return not self.failed and not self.interrupted


_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.=+")


def _check_key(key: str) -> str:
    if not key or not set(key) <= _SAFE or key.startswith("."):
        raise ValueError(f"task key {key!r}: use letters, digits and -_.=+ only")
    return key


def write_json_atomic(path: Path, payload) -> None:
    """Write ``payload`` as JSON to ``path`` atomically (:func:`emlpress._atomic.write_atomic`)."""
    _atomic.write_json_atomic(path, payload, default=_json_default)


def _json_default(o):
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def config_of(kind: str, config: dict) -> dict:
    """The configuration as stored in ``battery.json`` (JSON round trip: tuples become
    lists, paths strings), so that a rerun compares like with like."""
    return json.loads(json.dumps({"kind": kind, "version": VERSION, "config": config},
                                 default=_json_default))


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: folder has {a!r}, this run {b!r}")
    return out


def check_folder(folder: Path, kind: str, config: dict) -> bool:
    """True when ``folder`` holds a battery of this kind and configuration, False when it
    holds none (absent or empty); :class:`ConfigMismatch` otherwise. Reads only."""
    folder = Path(folder)
    meta = folder / "battery.json"
    if not meta.exists():
        if folder.exists() and any(p.name != ".lock" for p in folder.iterdir()):
            raise ConfigMismatch(f"{folder}: not empty and not a battery run folder "
                                 "(no battery.json); choose another folder")
        return False
    try:
        saved = json.loads(meta.read_text())
    except json.JSONDecodeError as e:
        raise ConfigMismatch(f"{meta}: unreadable ({e})") from e
    want = config_of(kind, config)
    diff = _differences(saved, want)
    if diff:
        raise ConfigMismatch(f"{folder} was made by another configuration; not resuming, nothing "
                             "written. Differences:\n  " + "\n  ".join(diff)
                             + "\nRun with the folder's settings, or choose another folder.")
    return True


def _result_files(folder: Path) -> list[Path]:
    """The result files in ``folder/tasks``, sorted (not the hidden temporary files)."""
    return sorted(p for p in (Path(folder) / "tasks").glob("*.json") if not p.name.startswith("."))


def finished(folder: Path) -> set[str]:
    """Keys of the tasks with a result in ``folder/tasks``."""
    return {p.stem for p in _result_files(folder)}


def load_results(folder: Path) -> dict:
    """Every task result of the folder, by key (sorted)."""
    return {p.stem: json.loads(p.read_text()) for p in _result_files(folder)}


def _visible(path: Path, seconds: float = 5.0) -> bool:
    """Whether ``path`` exists, waiting a little for a shared file system's attribute cache."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _lock(folder: Path):
    """An exclusive lock on the run folder for this run (released when the file closes)."""
    import fcntl

    f = open(folder / ".lock", "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise FolderBusy(f"{folder} is in use by another run (its .lock is held); wait for it "
                         "to end, or choose another folder") from None
    return f


def native_threads_default(workers: int, threads_per_worker: int) -> int:
    """Cores per running task on this machine (at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, workers * threads_per_worker))


#: The thread-count variables of the native libraries a task may start (read when each starts).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "NUMBA_NUM_THREADS")


def cap_native_threads(n: int) -> None:
    """Cap the threads of every native library a task uses at ``n`` (in this process)."""
    for var in THREAD_VARIABLES:
        os.environ[var] = str(n)
    from emlpress import kernels

    kernels.set_num_threads(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)


def _blas_threads() -> int | None:
    from threadpoolctl import threadpool_info

    return max((p["num_threads"] for p in threadpool_info()), default=None)


def _tf_threads(n: int) -> None:
    import sys

    if "tensorflow" not in sys.modules:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:  # TensorFlow already initialised in this worker: pools are fixed
        pass


_LOGGING = {}


def _worker_log(folder: str) -> None:
    """In a worker of this run's LocalCluster: send what native libraries write on stderr
    (TensorFlow's log lines) to ``logs/worker-<host>-<pid>.log`` of the run folder, once per
    process."""
    if _LOGGING.get(os.getpid()) == folder:
        return
    import sys

    path = Path(folder) / "logs" / f"worker-{socket.gethostname()}-{os.getpid()}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stderr.flush()
    os.dup2(fd, 2)
    os.close(fd)
    _LOGGING[os.getpid()] = folder


def run_task(folder: str, key: str, fn: Callable, kwargs: dict, native_threads: int,
             own_worker: bool = False) -> dict:
    """What a worker runs: cap the threads, run the task, write its result atomically.
    Returns a short record (the result itself stays in the file). ``own_worker``: the worker
    belongs to this run's LocalCluster, so its stderr may go to the run folder's log."""
    if own_worker:
        _worker_log(folder)
    cap_native_threads(native_threads)
    _tf_threads(native_threads)
    t0 = time.perf_counter()
    err = Path(folder) / "tasks" / f"{key}.error"
    try:
        result = dict(fn(**kwargs, threads=native_threads))
        seconds = time.perf_counter() - t0
        from emlpress import kernels

        result["_task"] = {"key": key, "seconds": seconds, "host": socket.gethostname(),
                           "pid": os.getpid(), "native_threads": native_threads,
                           "emlpress_threads": kernels.num_threads(),
                           "blas_threads": _blas_threads()}
        write_json_atomic(Path(folder) / "tasks" / f"{key}.json", result)
    except Exception:
        text = traceback.format_exc()
        _atomic.write_text_atomic(err, text)
        return {"key": key, "ok": False, "error": text}
    err.unlink(missing_ok=True)
    return {"key": key, "ok": True, "seconds": seconds}


def _connect(scheduler, workers: int, threads_per_worker: int, native: int,
             timeout: float, folder: Path):
    from distributed import Client, LocalCluster

    if isinstance(scheduler, JobQueue):
        cluster = scheduler.make(folder, threads_per_worker, native)
        # adapt, not scale: a job that ends at its walltime is replaced by a new one
        cluster.adapt(minimum_jobs=scheduler.jobs, maximum_jobs=scheduler.jobs)
        print(f"emlpress: {scheduler.jobs} {scheduler.kind.upper()} worker job(s) submitted "
              f"(scheduler {cluster.scheduler_address}); tasks start when they run; job "
              f"output in {folder}/logs/jobs", flush=True)
        return Client(cluster), cluster
    if scheduler is None:
        env = {v: str(native) for v in THREAD_VARIABLES}
        env["TF_CPP_MIN_LOG_LEVEL"] = "2"
        env["TF_USE_LEGACY_KERAS"] = "1"
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                               processes=True, host="127.0.0.1",
                               dashboard_address="127.0.0.1:0", env=env,
                               silence_logs=40)
        return Client(cluster), cluster
    try:
        client = Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError) as e:
        raise SchedulerUnreachable(f"no Dask scheduler answered at {scheduler!r} within "
                                   f"{timeout:g} s ({type(e).__name__}: {e})") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError, asyncio.TimeoutError):
        client.close()
        raise SchedulerUnreachable(f"the Dask scheduler at {scheduler!r} has no worker (waited "
                                   f"{timeout:g} s): start workers with `dask worker "
                                   f"{scheduler}`") from None
    return client, None


def _collect(client, folder: Path, kind: str, todo: list, native_threads: int,
             own_workers: bool, bar, ran: list, failed: dict) -> None:
    """Submit ``todo`` and record each task as it ends: its key in ``ran``, or why it failed
    in ``failed`` (filled as they come, so an interruption keeps what finished)."""
    from distributed import as_completed

    futures = {client.submit(run_task, str(folder.resolve()), t.key, t.fn, t.kwargs,
                             native_threads, own_workers,
                             key=f"{kind}-{t.key}-{uuid.uuid4().hex[:8]}", pure=False,
                             retries=0): t.key
               for t in todo}
    for fut in as_completed(list(futures)):
        key = futures[fut]
        try:
            rec = fut.result()
        except Exception as e:  # the worker died (killed, out of memory)
            rec = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            _atomic.write_text_atomic(folder / "tasks" / f"{key}.error",
                                      f"the task's worker failed: {rec['error']}\n")
        if not rec["ok"]:
            failed[key] = rec["error"]
        elif not _visible(folder / "tasks" / f"{key}.json"):
            failed[key] = (f"the task finished but its result is not in {folder}/tasks: the "
                           "workers do not see this run folder (use a shared file system path)")
        else:
            ran.append(key)
        if bar is not None:
            bar.update(1)
            if failed:
                bar.set_postfix(failed=len(failed))


def run(folder, kind: str, config: dict, tasks: list[Task], *,
        summarize: Callable | None = None, workers: int = 2, threads_per_worker: int = 1,
        native_threads: int | None = None, scheduler: str | None = None,
        timeout: float = 10.0, progress: bool = True, desc: str | None = None,
        on_start: Callable | None = None,
        resume_hint: str = "rerun the same command") -> BatteryResult:
    """Run the battery's unfinished ``tasks`` in ``folder`` and rebuild its summary.

    ``summarize(folder, results)`` (results: key -> dict, every finished task) is called at
    the end of every run, also one stopped by Ctrl-C or with failed tasks, and its return value
    is ``BatteryResult.summary``. ``workers``/``threads_per_worker`` size the LocalCluster;
    ``scheduler`` (an address such as ``tcp://10.0.0.5:8786``) uses an existing cluster
    instead, which must answer within ``timeout`` seconds; a :class:`JobQueue` starts the
    workers as SLURM or PBS jobs (``workers`` is then ignored: ``JobQueue.jobs``). ``on_start(folder)`` is called
    once, when the folder is new, before ``battery.json`` is written; ``resume_hint`` is what
    the ``INCOMPLETE`` file tells to do. Raises :class:`ConfigMismatch` (nothing written) when
    the folder holds another configuration, :class:`FolderBusy` when another run holds it.

    ``threads_per_worker > 1`` runs several tasks in one worker process, which share its
    random seeds (TensorFlow's are per process) and thread caps: seeded tasks are then not
    reproducible, and a warning says so."""
    from emlpress import _options

    folder = Path(folder)
    workers = _options.positive_int("workers", workers)
    threads_per_worker = _options.positive_int("threads_per_worker", threads_per_worker)
    if native_threads is None and isinstance(scheduler, JobQueue):
        native_threads = max(1, scheduler.cores // threads_per_worker)  # a job's own cores
    elif native_threads is None:
        native_threads = 1 if scheduler else native_threads_default(workers, threads_per_worker)
    native_threads = _options.positive_int("native_threads", native_threads)
    timeout = _options.seconds("timeout", timeout) or 10.0
    keys = [_check_key(t.key) for t in tasks]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"task keys must be unique: {dup}")
    if threads_per_worker > 1:
        warnings.warn(f"threads_per_worker={threads_per_worker}: tasks sharing a worker process "
                      "share its random seeds and thread caps, so seeded tasks are not "
                      "reproducible; use more workers instead", stacklevel=2)
    check_folder(folder, kind, config)  # refuses before anything is written
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    with _lock(folder):  # held until the summary is written, on every path
        existed = check_folder(folder, kind, config)  # again, under the lock
        done = finished(folder) if existed else set()
        todo = [t for t in tasks if t.key not in done]
        skipped = [t.key for t in tasks if t.key in done]
        t0 = time.perf_counter()
        client = cluster = None
        marker = folder / INCOMPLETE
        ran, failed, interrupted = [], {}, False
        bar = None
        try:
            try:
                if todo:
                    client, cluster = _connect(scheduler, workers, threads_per_worker,
                                               native_threads, timeout, folder)
                if not existed:
                    (folder / "tasks").mkdir(exist_ok=True)
                    if on_start is not None:
                        on_start(folder)
                    # last: a folder is a battery's once everything it needs is there
                    write_json_atomic(folder / "battery.json", config_of(kind, config))
            except BaseException:
                if created and not (folder / "battery.json").exists():
                    shutil.rmtree(folder, ignore_errors=True)  # this call made it: leave nothing
                raise
            if todo:
                _atomic.write_text_atomic(
                    marker, f"this battery stopped before its end ({len(skipped)} of "
                            f"{len(tasks)} tasks had results when it started); {resume_hint} "
                            "to resume it\n")
                if progress:
                    from tqdm import tqdm

                    bar = tqdm(total=len(tasks), initial=len(skipped), desc=desc or kind,
                               unit="task")
                _collect(client, folder, kind, todo, native_threads,
                         cluster is not None and not isinstance(scheduler, JobQueue), bar,
                         ran, failed)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if bar is not None:
                bar.close()
            try:
                if client is not None:
                    client.close()
            finally:
                if cluster is not None:
                    cluster.close()
        if not (folder / "battery.json").exists():  # interrupted before the folder was set up
            raise KeyboardInterrupt
        results = load_results(folder)
        summary = summarize(folder, results) if summarize is not None else None
        if not failed and not interrupted and set(keys) <= set(results):
            marker.unlink(missing_ok=True)
            for stale in folder.rglob(".*.tmp"):  # renames that never happened
                stale.unlink(missing_ok=True)
        elif not marker.exists():
            _atomic.write_text_atomic(
                marker, f"this battery has unfinished tasks; {resume_hint} to resume it\n")
        return BatteryResult(folder, results, ran, skipped, failed, summary,
                             time.perf_counter() - t0, interrupted)
