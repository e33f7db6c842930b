"""NPI planning with a learned one-week SIR model chained over the horizon (the study's first
pipeline): :func:`plan` (the planning MILP) and :func:`run` (``emlpress epidemics run``: train
the models, evaluate them, plan every horizon, simulate every plan with the reference SIR,
compare with the brute force or the best known plan; run folder with ``run.summary.csv``,
JSON logs, models and plots). Variants: the trained network, its TMOT-pruned fine-tuning and
its int8 model (embedded exactly, predictions by the reference interpreter); the six PTQ
modes' table per network; a decision tree.

The package: :mod:`~.config` (the settings), :mod:`~.surrogate` (training, pruning, int8, the
tree), :mod:`~.model` (the planning MILP, the weeks chained), :mod:`~.loop` (the run: plan,
simulate, compare), :mod:`~.folder` (the run folder), :mod:`~.report` (the summary, plots and
printed table).
"""

from emlpress.pipelines.epidemics import loop as _loop
from emlpress.pipelines.epidemics.config import (CONFIG_FILE, MAX_WEEKS, TOPOLOGIES, VARIANTS,
                                                 Config, _config_payload, check, differences,
                                                 load_config)
from emlpress.pipelines.epidemics.folder import TRAIN_TIMES
from emlpress.pipelines.epidemics.loop import BRUTE_FORCE_MAX, run
from emlpress.pipelines.epidemics.model import (BOUNDING, REACH_BOXES, REACH_MAX, SEARCH_WIDTH,
                                                TRAINING_BOX, NotApplicable, Plan, plan,
                                                surrogate_search)
from emlpress.pipelines.epidemics.report import print_summary
from emlpress.pipelines.runner import INCOMPLETE

__all__ = ["Plan", "plan", "Config", "run", "load_config", "TOPOLOGIES", "NotApplicable"]


def __getattr__(name):
    if name == "last_folder":  # rebound by each run: read where run() sets it, not a copy
        return _loop.last_folder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
