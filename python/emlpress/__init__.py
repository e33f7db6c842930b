"""emlpress: sound bounds, lossless/lossy compression and MILP embedding of ReLU networks."""

from emlpress.network import Network
from emlpress.bounds import Bounds

__all__ = ["Network", "Bounds"]
__version__ = "0.1.0"
