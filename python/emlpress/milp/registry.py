"""One entry point for every kind of model: :func:`add_predictor` picks the encoding by the
model's type from a registry (as gurobi-ml's ``add_predictor_constr``), and
:func:`register_predictor` adds a kind without editing the pipelines that embed models.

>>> import highspy, numpy as np
>>> from emlpress import Network
>>> from emlpress.milp import add_predictor, solve
>>> net = Network([np.array([[1.0, -1.0]])], [np.zeros(1)], lo=[-1.0, -1.0], hi=[1.0, 1.0])
>>> h = highspy.Highs()
>>> h.setOptionValue("output_flag", False)
<HighsStatus.kOk: 0>
>>> x = h.addVariables(2, lb=[-1.0, -1.0], ub=[1.0, 1.0])
>>> nn = add_predictor(h, net, x)              # a Network: add_network
>>> h.setObjective(nn.outputs[0], sense=highspy.ObjSense.kMaximize)
>>> round(solve(h).objective, 9)
2.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from emlpress.io.tflite import QuantizedNetwork
from emlpress.milp.boosters import LIGHTGBM_MODELS, XGBOOST_MODELS
from emlpress.milp.ensemble import SKLEARN_ENSEMBLES, add_ensemble, read_ensemble
from emlpress.milp.handle import PredictorHandle
from emlpress.milp.network import add_network
from emlpress.milp.quantized import add_quantized_network
from emlpress.milp.tree import add_tree
from emlpress.network import Network

__all__ = ["add_predictor", "register_predictor", "registered_predictors"]


@dataclass(frozen=True)
class _Entry:
    key: object  # a type (isinstance) or a predicate on the model
    add: Callable
    description: str

    def matches(self, model) -> bool:
        return isinstance(model, self.key) if isinstance(self.key, type) else bool(self.key(model))


#: in registration order; add_predictor tries the latest first, so a user's entry overrides
_ENTRIES: list[_Entry] = []


def register_predictor(type_or_predicate, add_function: Callable, description: str | None = None) -> None:
    """Make :func:`add_predictor` embed the models that ``type_or_predicate`` accepts with
    ``add_function(h, model, inputs, **options)``, which returns a
    :class:`~emlpress.milp.PredictorHandle`.

    ``type_or_predicate``: a class (its instances and its subclasses' match) or a function
    ``model -> bool``. ``description`` names the kind in :func:`registered_predictors` and in
    the error for an unknown model (default: the class's name, or the function's). Entries
    registered later are tried first: registering a built-in kind's class again overrides
    its encoding."""
    if not (isinstance(type_or_predicate, type) or callable(type_or_predicate)):
        raise TypeError("type_or_predicate: expected a class or a function model -> bool, got "
                        f"{type(type_or_predicate).__name__}")
    if not callable(add_function):
        raise TypeError(f"add_function: expected a function (h, model, inputs, **options), got "
                        f"{type(add_function).__name__}")
    if description is None:
        description = getattr(type_or_predicate, "__name__", repr(type_or_predicate))
    _ENTRIES.append(_Entry(type_or_predicate, add_function, description))


def registered_predictors() -> list[str]:
    """The descriptions of the registered kinds, in the order :func:`add_predictor` tries them."""
    return [e.description for e in reversed(_ENTRIES)]


def add_predictor(h, model, inputs, **options) -> PredictorHandle:
    """Add ``model`` to the ``highspy.Highs`` model ``h`` with ``inputs`` (highspy variables
    or column indices with finite bounds) as its inputs, encoded as its type says: a
    :class:`~emlpress.Network` by :func:`~emlpress.milp.add_network`, an int8
    :class:`~emlpress.io.tflite.QuantizedNetwork` by
    :func:`~emlpress.milp.add_quantized_network`, a fitted scikit-learn decision tree by
    :func:`~emlpress.milp.add_tree`, a tree ensemble (forests, gradient boosting,
    XGBoost, LightGBM, a decision tree classifier) by :func:`~emlpress.milp.add_ensemble`,
    and the kinds of :func:`register_predictor`.
    ``options`` go to that function (``name=``, ``bounds=``, ...). Returns its
    :class:`~emlpress.milp.PredictorHandle`, registered on ``h`` so that
    :func:`~emlpress.milp.solve` verifies every answer against the model."""
    entry = next((e for e in reversed(_ENTRIES) if e.matches(model)), None)
    if entry is None:
        kind = f"{type(model).__module__}.{type(model).__qualname__}"
        raise TypeError(f"model: no MILP encoding is registered for {kind}; registered: "
                        f"{', '.join(registered_predictors())} (add one with register_predictor)")
    handle = entry.add(h, model, inputs, **options)
    if not isinstance(handle, PredictorHandle):
        raise TypeError(f"{getattr(entry.add, '__name__', entry.add)!r} (registered for "
                        f"{entry.description}) returned a {type(handle).__name__}, not a PredictorHandle")
    handle.register()
    return handle


def _is_sklearn_tree(model) -> bool:
    return hasattr(model, "tree_")  # a fitted scikit-learn tree, without importing scikit-learn


register_predictor(Network, add_network)
register_predictor(QuantizedNetwork, add_quantized_network, "QuantizedNetwork (int8 TFLite)")
register_predictor(_is_sklearn_tree, add_tree, "a fitted scikit-learn decision tree (tree_)")


# tree ensembles (ensemble.py, boosters.py): matched by class name, so that an unfitted model
# gets "not fitted" rather than "no encoding", and without importing the libraries
def _is_tree_ensemble(model) -> bool:
    mod, kind = type(model).__module__, type(model).__name__
    if mod.startswith("sklearn."):
        return kind in SKLEARN_ENSEMBLES
    return (mod.startswith("xgboost.") and kind in XGBOOST_MODELS) or (
        mod.startswith("lightgbm.") and kind in LIGHTGBM_MODELS)


def _add_tree_model(h, model, inputs, **options):
    if type(model).__name__ in ("DecisionTreeRegressor", "ExtraTreeRegressor") and \
            options.get("output", "raw") in (None, "raw") and "margin" not in options:
        read_ensemble(model)  # unfitted, NaN: the ensemble's one-line errors
        options.pop("output", None)
        return add_tree(h, model, inputs, **options)
    return add_ensemble(h, model, inputs, **options)


register_predictor(_is_tree_ensemble, _add_tree_model,
                   "a scikit-learn DecisionTree/RandomForest/ExtraTrees/GradientBoosting "
                   "regressor or classifier, an XGBoost or LightGBM model (tree ensembles)")


# scikit-learn estimators, transformers, pipelines and classifiers by argmax: milp/pipeline.py
# (linear.py, classify.py, emlpress.io.sklearn); a pipeline's last step may be any kind above
from emlpress.milp import pipeline as _sklearn  # noqa: E402  (it looks the registry up at call time)

register_predictor(_sklearn.is_sklearn_model, _sklearn.add_sklearn, f"scikit-learn: {_sklearn.SUPPORTED}")
