"""`emlpress bench` and `emlpress bench compare`: the benchmark suite run on any machine, one
JSON result per run with the machine's description, and results compared side by side.

:mod:`~emlpress.bench.suite` finds and runs the suite (the repository's ``benches/``),
:mod:`~emlpress.bench.machine` describes the machine, :mod:`~emlpress.bench.compare` loads and
aligns result files, :mod:`~emlpress.bench.report` shows a comparison.
"""

from emlpress.bench.compare import FORMAT, NOISY, BenchError, Comparison, compare, load
from emlpress.bench.machine import machine
from emlpress.bench.report import machines, markdown, plot, tables, text
from emlpress.bench.suite import RESULTS_DIR, SUITES, default_output, expected_minutes, find_benches, groups, run

__all__ = ["FORMAT", "NOISY", "RESULTS_DIR", "SUITES", "BenchError", "Comparison", "compare", "default_output",
           "expected_minutes", "find_benches", "groups", "load", "machine", "machines", "markdown", "plot",
           "run", "tables", "text"]
