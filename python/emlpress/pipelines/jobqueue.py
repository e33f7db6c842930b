"""Dask workers as batch jobs of an HPC queue (SLURM or PBS, through dask-jobqueue: the
``[hpc]`` extra), for the batteries of :mod:`emlpress.pipelines.runner`: pass a
:class:`JobQueue` as ``runner.run``'s (or a pipeline's) ``scheduler``."""

from __future__ import annotations

import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from emlpress import _options
from emlpress.pipelines.threads import THREAD_VARIABLES

__all__ = ["JobQueue"]


@dataclass(frozen=True)
class JobQueue:
    """Workers started as batch jobs of an HPC queue (dask-jobqueue, the ``[hpc]`` extra): pass
    it to ``battery.run`` (or a pipeline's ``run``) as ``scheduler``.

    ``kind``: ``"slurm"`` or ``"pbs"``. Each of the ``jobs`` jobs books ``cores`` CPUs and
    ``memory`` (``"64GB"``; the worker's memory limit too) for ``walltime`` (``"HH:MM:SS"``) in
    ``queue`` (SLURM's partition, ``-p``; PBS' ``-q``) on ``account`` (``-A``), and runs one Dask
    worker of ``threads_per_worker`` tasks at a time. The scheduler runs in the calling process
    and listens on ``interface`` (``"ib0"``; default: the address of the host's default
    route); its dashboard only on 127.0.0.1. Anything else comes from dask-jobqueue's
    configuration (``~/.config/dask/jobqueue.yaml``), e.g. ``job-extra-directives``;
    ``job-script-prologue`` and ``worker-extra-args`` there come before emlpress' own (thread
    caps, ``--lifetime``), while the job's name, Python, log folder and death timeout are
    emlpress'.

    Walltime: each worker closes gracefully ``LEAVE_BEFORE`` before its walltime (its task goes
    back to the queue of tasks) and a new job replaces it, so tasks longer than the walltime
    never finish: book more."""

    kind: str
    cores: int
    memory: str
    walltime: str
    jobs: int = 1
    queue: str | None = None
    account: str | None = None
    interface: str | None = None

    KINDS = ("slurm", "pbs")
    #: how long before its walltime a worker leaves (seconds; at most half the walltime)
    LEAVE_BEFORE = 300

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise ValueError(f"cluster {self.kind!r}: use one of {', '.join(self.KINDS)}")
        _options.positive_int("cores", self.cores)
        _options.positive_int("jobs", self.jobs)
        self.walltime_seconds()
        self.memory_bytes()
        for name in ("queue", "account", "interface"):
            value = getattr(self, name)
            if value is not None and (not value or any(c.isspace() for c in value)):
                raise ValueError(f"{name} {value!r}: a name without spaces")
        if self.interface is None:
            self._default_host()
        else:
            import psutil  # distributed's dependency: only with an interface to check

            ours = {a.address for a in psutil.net_if_addrs().get(self.interface, ())
                    if a.family == socket.AF_INET}
            if not ours or all(a.startswith("127.") for a in ours):
                raise ValueError(f"interface {self.interface!r}: not a network interface of "
                                 "this host that other hosts reach (see `ip addr`)")

    @staticmethod
    def _default_host() -> str:
        """This host's address on its default route (what the compute nodes reach)."""
        from distributed.utils import get_ip  # Dask only for an HPC cluster

        host = get_ip()
        if host.startswith("127."):
            raise ValueError(f"interface: this host's default address is {host}, which the "
                             "jobs' workers cannot reach; give the network interface of the "
                             "compute nodes (ib0, eth0)")
        return host

    def walltime_seconds(self) -> int:
        """The walltime in seconds (``[[D-]HH:]MM:SS`` or ``HH:MM:SS``)."""
        text = str(self.walltime)
        days, _, clock = text.rpartition("-")
        parts = clock.split(":")
        try:
            if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts) \
                    or (days and not days.isdigit()):
                raise ValueError
            seconds = 0
            for p in parts:
                seconds = seconds * 60 + int(p)
            seconds += int(days or 0) * 86400
        except ValueError:
            raise ValueError(f"walltime {text!r}: use HH:MM:SS (or D-HH:MM:SS)") from None
        if seconds < 60:
            raise ValueError(f"walltime {text!r}: at least a minute")
        return seconds

    def memory_bytes(self) -> int:
        """``memory`` in bytes (``"64GB"``, ``"500MiB"``)."""
        from dask.utils import parse_bytes  # Dask only for an HPC cluster

        try:
            n = parse_bytes(str(self.memory))
        except (ValueError, TypeError):
            n = 0
        if n < 2**20:
            raise ValueError(f"memory {self.memory!r}: a size such as 64GB or 500MiB")
        return n

    def make(self, folder: Path, threads_per_worker: int, native_threads: int):
        """The dask-jobqueue cluster (its scheduler started here, no job submitted yet: see
        ``scale``/``adapt``); the jobs' output goes to ``folder/logs/jobs``."""
        # dask_jobqueue.runner replaces the SIGINT handler on import (Ctrl-C would exit quietly
        # instead of stopping the battery with its INCOMPLETE marker): keep ours
        handler = signal.getsignal(signal.SIGINT)
        try:
            import dask_jobqueue
        except ImportError:
            raise ImportError(f"--cluster {self.kind} needs dask-jobqueue: pip install "
                              "'emlpress[hpc]'") from None
        finally:
            signal.signal(signal.SIGINT, handler)
        logs = Path(folder).resolve() / "logs" / "jobs"
        made = [d for d in reversed([logs, *logs.parents]) if not d.exists()]  # outermost first
        wall = self.walltime_seconds()
        leave = min(self.LEAVE_BEFORE, wall // 2)
        env = {v: str(native_threads) for v in THREAD_VARIABLES}
        env.update(TF_CPP_MIN_LOG_LEVEL="2", TF_USE_LEGACY_KERAS="1")
        import dask  # Dask only for an HPC cluster

        def configured(name):  # what the user's jobqueue.yaml says; ours is added to it
            return list(dask.config.get(f"jobqueue.{self.kind}.{name}", None) or [])

        options = dict(
            cores=threads_per_worker, processes=1, memory=self.memory, walltime=self.walltime,
            queue=self.queue, account=self.account, interface=self.interface,
            python=sys.executable, job_name="emlpress", death_timeout=120,
            log_directory=str(logs),
            job_script_prologue=(configured("job-script-prologue")
                                 + [f"export {k}={v}" for k, v in env.items()]),
            # leave before the walltime kills the job: the task is rescheduled, not failed
            worker_extra_args=configured("worker-extra-args") + [
                "--lifetime", f"{wall - leave}s", "--lifetime-stagger", f"{max(1, leave // 4)}s"],
            scheduler_options={"dashboard_address": "127.0.0.1:0"})
        if self.interface is None:  # the default route's address only, not every interface
            options["scheduler_options"]["host"] = self._default_host()
        if self.kind == "slurm":
            cls = dask_jobqueue.SLURMCluster
            options["job_cpu"] = self.cores
        else:
            from dask_jobqueue.pbs import pbs_format_bytes_ceil

            cls = dask_jobqueue.PBSCluster
            options["resource_spec"] = (f"select=1:ncpus={self.cores}"
                                        f":mem={pbs_format_bytes_ceil(self.memory_bytes())}")
        try:
            cluster = cls(**options)
        except BaseException:
            self._remove(made)
            raise
        cluster.emlpress_made = made  # folders this call made (job_script removes them)
        return cluster

    def job_script(self, folder: Path, threads_per_worker: int = 1,
                   native_threads: int | None = None) -> str:
        """The batch script each worker job would run (nothing submitted, nothing left on
        disk: the log folders that dask-jobqueue makes are removed again)."""
        native = native_threads or max(1, self.cores // threads_per_worker)
        cluster = self.make(folder, threads_per_worker, native)
        try:
            return cluster.job_script()
        finally:
            cluster.close()
            self._remove(cluster.emlpress_made)

    @staticmethod
    def _remove(made: list) -> None:
        for d in reversed(made):  # deepest first; only if still empty
            try:
                d.rmdir()
            except OSError:
                pass
