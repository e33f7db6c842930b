"""Everything that runs TensorFlow (the ``[keras]`` extra): seeded training (``training``),
TMOT magnitude pruning (``pruning``), the TFLite post-training quantizations and their table
(``quantization``), and the Keras models and optimizers they share (``models``).

TensorFlow, tf_keras and TMOT are imported only when a function needs them (after
``emlpress.io.keras.tf_keras`` has set ``TF_USE_LEGACY_KERAS``), so importing this package
does not load them. Reading and writing model files stays in :mod:`emlpress.io`.
"""

from emlpress.keras.models import keras_optimizer
from emlpress.keras.pruning import PruneResult, check_sparsities, layer_sparsity, prune, pruning_schedule
from emlpress.keras.quantization import (DESCRIPTIONS, MODES, NEEDS_DATA, predict_tflite, quantization_table,
                                         quantize, regression_metrics)
from emlpress.keras.training import FitResult, fit_regressor, fold_scaling, weight_sparsity

__all__ = ["fit_regressor", "FitResult", "weight_sparsity", "fold_scaling", "keras_optimizer",
           "check_sparsities", "prune", "PruneResult", "pruning_schedule", "layer_sparsity",
           "quantize", "quantization_table", "regression_metrics", "predict_tflite", "MODES",
           "NEEDS_DATA", "DESCRIPTIONS"]
