"""Embedding trained models in a HiGHS MILP (Empirical Model Learning).

>>> import highspy, numpy as np
>>> from emlpress import Network
>>> from emlpress.milp import add_network, solve
>>> net = Network([np.array([[1.0, -1.0], [0.5, 2.0]]), np.array([[1.0, -1.0]])],
...               [np.zeros(2), np.zeros(1)], lo=[-1.0, -1.0], hi=[1.0, 1.0])
>>> h = highspy.Highs()
>>> h.setOptionValue("output_flag", False)      # no HiGHS log
<HighsStatus.kOk: 0>
>>> x = h.addVariables(2, lb=net.lo.tolist(), ub=net.hi.tolist())  # lists: highspy 1.16
>>> nn = add_network(h, net, x)                  # big-M rows generated in C++, added in bulk
>>> h.setObjective(nn.outputs[0], sense=highspy.ObjSense.kMaximize)  # or addConstr on outputs
>>> sol = solve(h, time_limit=60)                # every network's solution is verified
>>> sol.status, round(sol.objective, 9)
('OPTIMAL', 2.0)


The package: :func:`add_predictor` (``registry.py``) embeds any registered kind of model by
its type; :func:`add_network` (``network.py``: the big-M encoding), :func:`add_tree`
(``tree.py``), :func:`add_ensemble` (``ensemble.py``: forests, gradient boosting, XGBoost and
LightGBM through ``boosters.py``, with sound output bounds), :func:`add_quantized_network`
(``quantized.py``: the int8 interpreter's exact integer function) and :func:`add_sklearn`
(``pipeline.py``: scikit-learn linear models, MLPs, scalers, pipelines, classifiers by
:func:`add_argmax` of ``classify.py``) are the typed entry points; ``add_network(...,
formulation="partition", groups=N)`` (``partition.py``) and :func:`add_anderson_cuts`
(``cuts.py``) give stronger LP relaxations than big-M. Each returns a :class:`PredictorHandle`
(``handle.py``); :func:`solve` (``solution.py``) answers a model of one network, linear rows
over its inputs and a linear objective over its outputs by emlpress' own certified
branch-and-bound (``bnb.py``), any other by HiGHS, verifies every answer against every
registered model and repairs it where it fails (``repair.py``). The HiGHS plumbing they share
is :mod:`emlpress._highs`.
"""

from emlpress._highs import tighten_tolerances
from emlpress.milp.bnb import SOLVERS
from emlpress.milp.classify import add_argmax, argmax_indicators
from emlpress.milp.ensemble import EnsembleHandle, add_ensemble, output_bounds, read_ensemble
from emlpress.milp.incumbent import Incumbent, find_incumbent
from emlpress.milp.handle import VERIFY_RTOL, PredictorHandle, registered_handles
from emlpress.milp.network import MAX_COEFFICIENT, MAX_RANGE, NetworkHandle, add_network
from emlpress.milp.obbt import TightenReport, tighten
from emlpress.milp.partition import FORMULATIONS, PartitionHandle
from emlpress.milp.cuts import add_anderson_cuts
from emlpress.milp.quantized import QuantizedHandle, add_quantized_network
from emlpress.milp.registry import add_predictor, register_predictor, registered_predictors
from emlpress.milp.pipeline import SklearnHandle, add_sklearn
from emlpress.milp.solution import MIP_ABS_GAP, MIP_GAP, Solution, solve
from emlpress.milp.tree import TreeHandle, add_tree

__all__ = ["add_network", "add_quantized_network", "QuantizedHandle", "add_tree", "TreeHandle",
           "solve", "NetworkHandle", "Solution", "VERIFY_RTOL", "MIP_GAP", "MIP_ABS_GAP",
           "add_predictor", "register_predictor", "registered_predictors", "PredictorHandle",
           "registered_handles", "tighten_tolerances", "MAX_COEFFICIENT", "MAX_RANGE",
           "add_sklearn", "SklearnHandle", "add_argmax", "argmax_indicators",
           "add_ensemble", "EnsembleHandle", "output_bounds", "read_ensemble", "SOLVERS",
           "find_incumbent", "Incumbent", "PartitionHandle", "FORMULATIONS", "add_anderson_cuts",
           "tighten", "TightenReport"]
