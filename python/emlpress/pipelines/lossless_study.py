"""The lossless-compression study: the names of :mod:`emlpress.pipelines.study`, where it
lives, under the module path scripts and the CLI have used."""

from emlpress.pipelines.study import (METHODS, OPTIMIZERS, PRESETS, PUBLISHED, REGULARIZATIONS,
                                      STUDY_SIZES, TINY_WEIGHTS, Config, Optimizer, Preset,
                                      __all__, config, default_reference, model_task, params_of,
                                      print_start, print_summary, reference_table, reference_task,
                                      run, summarize, tasks)
