"""The lossless-compression study, rerun: train a grid of Goldstein-Price regressors, bound them
with every method, compress them losslessly, verify, and compare.

The study (Serra, Kumar and Ramalingam's compression applied to 52 networks
``[2, 1024, 512, 512, 256, 1]``) trained one model per optimizer and regularization, bounded
them by LP only and compared the neurons removed. Here each model is a task of a battery
(:mod:`emlpress.pipelines.runner`, on dask.distributed): train (tf_keras, seeded), then for
each bound method (``interval``, ``crown``, ``lp``, ``exact``: the exact stable sets of
:func:`emlpress.bounds.stability`) bound, compress (:func:`emlpress.compress.lossless`, which
verifies on 100,000 points and raises if the networks differ) and record per layer the units
removed by rule, the parameters left, the test loss and the times. The study's own network
(``seed_gp``) is a fixed task of every run, compared with the study's published figures.

Training follows the study's settings: x in [-1.5, -0.5], y in [-0.5, 0.5], 40,000 training
and 8,000 test samples (uniform, seeded), MSE on the raw inputs and targets (the study's own
network works on raw units: its output layer gives 26 to 11,960 directly), the L1/L2 penalty on
every kernel, fixed epochs (no early stopping), a staircase per-epoch learning-rate decay and
gradient-norm clipping per optimizer (:data:`OPTIMIZERS`). Not stated by the study and chosen
here: batch size 128, SGD momentum 0.9, Keras' default initialisation, and the clipping as
Keras' ``clipnorm`` (each weight tensor's gradient clipped to the norm on its own).

Presets (:data:`PRESETS`): ``study`` is the study's settings; ``quick`` the same grid with
``[2, 64, 32, 32, 16, 1]`` networks, 10,000 training samples and a fifth of the epochs (the
decay raised to the 5th power, so the learning rate ends where the study's does, after 20
times fewer steps); ``test`` a tiny network for the test suite. The study's Adam schedule
(x 0.95 per epoch) leaves about 60 useful epochs; compressed so, it leaves ``quick``'s Adam
about 1,000 useful steps, too few to fit the function: those models come out nearly constant
and the summary says so.

The package: :mod:`~.settings` (the settings, presets, the published figures),
:mod:`~.task` (the battery's tasks and :func:`run`), :mod:`~.report` (tables, plots, what
the CLI prints).
"""

from emlpress.pipelines.study.report import print_start, print_summary, reference_table, summarize
from emlpress.pipelines.study.settings import (METHODS, OPTIMIZERS, PRESETS, PUBLISHED,
                                               REGULARIZATIONS, STUDY_SIZES, TINY_WEIGHTS, Config,
                                               Optimizer, Preset, config, default_reference,
                                               params_of)
from emlpress.pipelines.study.task import model_task, reference_task, run, tasks

__all__ = ["Optimizer", "OPTIMIZERS", "REGULARIZATIONS", "METHODS", "PRESETS", "Config",
           "PUBLISHED", "config", "tasks", "run", "summarize", "model_task", "reference_task",
           "default_reference", "params_of"]
