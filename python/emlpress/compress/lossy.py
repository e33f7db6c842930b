"""Lossy compression: TMOT magnitude pruning and the six TFLite post-training quantizations
(the ``[keras]`` extra: TensorFlow, tf-keras, TMOT and LiteRT, imported only when called).
The code lives in :mod:`emlpress.keras` (``pruning``, ``quantization``); these names keep
importing from here.

>>> from emlpress.compress import lossy
>>> pruned = lossy.prune(model, 0.2, 0.9, X, Y, epochs=30)       # pruned.model, pruned.sparsity
>>> blob = lossy.quantize(model, "int8", representative=X)       # .tflite bytes
>>> lossy.quantization_table(model, X_test, Y_test, representative=X)   # a DataFrame

The modes (``MODES``: ``dynamic``, ``int8``, ``int8-fallback``, ``float16``, ``16x8``,
``16x8-fallback``, beside the ``float32`` baseline) are described in
:mod:`emlpress.keras.quantization`.
"""

from emlpress.keras.pruning import PruneResult, layer_sparsity, prune, pruning_schedule
from emlpress.keras.quantization import (DESCRIPTIONS, MODES, NEEDS_DATA, predict_tflite, quantization_table,
                                         quantize, quantize_report, regression_metrics, table_report)

__all__ = ["MODES", "NEEDS_DATA", "DESCRIPTIONS", "prune", "PruneResult", "pruning_schedule",
           "quantize", "quantization_table", "layer_sparsity", "regression_metrics",
           "predict_tflite", "quantize_report", "table_report"]
