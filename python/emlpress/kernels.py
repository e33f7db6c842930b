"""The C++ kernels (the extension module ``emlpress._core``): the one module of the package
that imports it; every other module calls the kernels through these names.

Results are small classes with read-only numpy properties (no string-keyed dicts), each
documented with its shapes and units: ``LpBlock`` (columns and CSR rows for HiGHS),
``BigMBlock`` (an ``LpBlock`` with the columns of each unit), ``Affine`` (a layer's
pre-activations over LP columns), ``StartingBasis``, ``LinearBounds`` (CROWN's linear
bounds), ``LayerFold`` (one layer of lossless compression). ``_core.pyi`` holds the
signatures (tests/test_kernels.py checks them against the build; after changing the
bindings, ``python cpp/make_stub.py`` regenerates it). The C++ sources are in ``cpp/``
(``cpp/include/emlpress/*.hpp`` documents each kernel). Kernels release the GIL and split their work over
``num_threads()`` threads.
"""

from emlpress._core import (
    Affine,
    BigMBlock,
    LayerFold,
    LinearBounds,
    LpBlock,
    LpRelaxation,
    Net,
    StartingBasis,
    bigm_network,
    build_info,
    crown,
    crown_boxes,
    crown_linear,
    fold_layer,
    forward,
    interval,
    merge_affine,
    num_threads,
    preactivations,
    safe_lower_bound,
    set_num_threads,
)

__all__ = [
    "Affine",
    "BigMBlock",
    "LayerFold",
    "LinearBounds",
    "LpBlock",
    "LpRelaxation",
    "Net",
    "StartingBasis",
    "bigm_network",
    "build_info",
    "crown",
    "crown_boxes",
    "crown_linear",
    "fold_layer",
    "forward",
    "interval",
    "merge_affine",
    "num_threads",
    "preactivations",
    "safe_lower_bound",
    "set_num_threads",
]
