"""The transprecision (TPC) pipeline: data -> surrogates (baseline, pruned, and their lossless
compressions) -> MILP choosing the fewest total bits under error/time limits -> the answer
measured by an oracle -> if infeasible: measurement added, configuration cut off, surrogate
refit, solved again -> run folder with ``run.summary.csv``, JSON logs, models and plots.

Surrogates, per benchmark, topology and variant (inputs ``var_*`` bits and one-hot hardware,
raw units: the min-max normalisation fit on the training split is folded into the first and
last layers):

- the *error* network predicts ``-log10(error)`` (one output, trained alone: shared with the
  noisy time it fit worse);
- the *resource* network predicts time, memory_mean and memory_peak. An output is used in the
  MILP only when its held-out R2 is at least ``Config.resource_r2_min``; otherwise its limit is
  imposed by the documented fallback: the largest time (memory) measured on each hardware in
  the training split must be within the limit, else that hardware is not chosen.

Margins are split conformal: the data is split into training, calibration and test rows; the
``coverage`` quantile of the calibration residuals (over-prediction of ``-log10(error)``,
under-prediction of time and memory) is added to each constraint, so that a configuration
drawn like the data meets the limits with probability about ``coverage``. The optimizer does
not draw like the data (it looks for the surrogate's most optimistic corner), so the answer is
then measured: the *closed loop* (:func:`solve_loop`, on :func:`emlpress.eml.run_loop`)
cuts off each measured configuration, adds its measurement to the training rows (weighted
``refit_weight`` times), refits the surrogate warm-started from its weights on every row (no
validation split: the refit does not stop early), recompresses it (``refit_on="miss"``: only a
network that missed, whose measurement breaks a limit it predicted met or lies outside its
two-sided ``coverage`` conformal band; cheaper per call, but measured 2-12 bits worse on
Convolution, see benches/README.md), re-computes the margins, and solves again; after a measured-feasible answer it asks for fewer
total bits than the best measured one (improvement cut). When the MILP with its margins is
infeasible, the loop goes on with the margins of ``improve_coverage`` (if smaller), and stops
when that MILP is infeasible too (``loop_proven``: no answer with fewer bits within the
margins), or after ``max_iterations + 1`` oracle calls or ``loop_seconds``. The final answer
is the best measured-feasible one (else the last, labelled). ``max_iterations=0`` is the open
loop: one answer, measured, never corrected. Per answer ``oracle_calls`` stands beside the
brute force's kernel runs (``brute_force_evaluated``).

Oracles (:mod:`emlpress.data.tpc_oracle`): a kernel re-run where the data folder's manifest
says the data was measured by this kernel version on a host like this one, else the table (an
answer not in the table is *unmeasured*, no verdict). ``measured_only`` restricts the answers
to configurations in the table (the default when the table is the oracle, so every answer gets a
verdict); that finite problem is solved exactly by evaluating the surrogate on every candidate
(:func:`~emlpress.pipelines.tpc.model.enumerate_candidates`, status ``ENUMERATED``), not by a
MILP.

The package: :mod:`~emlpress.pipelines.tpc.config` (settings, presets, variants, checks),
:mod:`~emlpress.pipelines.tpc.surrogate` (surrogates, compression, quantization, conformal
margins), :mod:`~emlpress.pipelines.tpc.model` (the MILP), :mod:`~emlpress.pipelines.tpc.loop`
(the closed loop and the verdicts), :mod:`~emlpress.pipelines.tpc.tasks` (the battery tasks),
:mod:`~emlpress.pipelines.tpc.pipeline` (:func:`run` on the runner, which owns the run folder)
and :mod:`~emlpress.pipelines.tpc.report` (the summary, plots and what the CLI prints).
"""

from emlpress.pipelines.checkpoints import load_fits as _load_fits
from emlpress.pipelines.checkpoints import save_fits as _save_fits
from emlpress.pipelines.tpc.config import (ANSWER_MODELS, DEFAULT_DATA, PRESETS, QUANTIZED_VARIANTS,
                                           R2_ERROR_GOAL, RESOURCES, VARIANTS, Config, embedding,
                                           load_config, variants)
from emlpress.pipelines.tpc.loop import best_measured_bits, solve_loop
from emlpress.pipelines.tpc.model import optimize
from emlpress.pipelines.tpc.pipeline import INCOMPLETE, run
from emlpress.pipelines.tpc.report import print_summary, solver_time_ratios
from emlpress.eml import conformal_margin
from emlpress.pipelines.tpc.surrogate import Surrogate
from emlpress.pipelines.tpc.tasks import job_task, truth_task

__all__ = ["PRESETS", "Config", "Surrogate", "run", "load_config", "truth_task", "job_task",
           "optimize", "solve_loop", "conformal_margin",
           "solver_time_ratios", "DEFAULT_DATA", "VARIANTS", "QUANTIZED_VARIANTS", "variants",
           "ANSWER_MODELS", "embedding", "RESOURCES", "R2_ERROR_GOAL", "INCOMPLETE",
           "best_measured_bits", "print_summary"]
