"""The battery runner's former home: :mod:`emlpress.pipelines.runner` (names only)."""

from emlpress.pipelines.runner import (INCOMPLETE, THREAD_VARIABLES, VERSION, BatteryResult,  # noqa: F401
                                       ConfigMismatch, FolderBusy, JobQueue,
                                       SchedulerUnreachable, Task, cap_native_threads,
                                       check_folder, config_of, finished, interruption,
                                       load_results, mark_incomplete, native_threads_default, run,
                                       run_task, write_atomic, write_json_atomic)
from emlpress.pipelines.runner import __all__  # noqa: F401
