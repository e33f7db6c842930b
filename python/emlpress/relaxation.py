"""Deprecated location: the per-neuron LP problems moved to :mod:`emlpress.bounds.relaxation`.

This module is that module (same objects), so ``from emlpress.relaxation import ...`` keeps
working; import from ``emlpress.bounds.relaxation`` in new code.
"""

import sys
import warnings

from emlpress.bounds import relaxation as _relaxation

warnings.warn("emlpress.relaxation moved to emlpress.bounds.relaxation", DeprecationWarning,
              stacklevel=2)

sys.modules[__name__] = _relaxation
