"""Seeded training of ReLU regressors with tf_keras: moved to :mod:`emlpress.keras.training`;
these names keep importing from here."""

from emlpress.keras.models import keras_optimizer
from emlpress.keras.pruning import check_sparsities
from emlpress.keras.training import FitResult, fit_regressor, fold_scaling, weight_sparsity

__all__ = ["FitResult", "fit_regressor", "fold_scaling", "weight_sparsity", "keras_optimizer",
           "check_sparsities"]
