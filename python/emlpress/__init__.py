"""emlpress: sound bounds, lossless/lossy compression and MILP embedding of ReLU networks."""

from emlpress.network import Network
from emlpress.bounds import Bounds

__all__ = ["Network", "Bounds"]
__version__ = "0.1.0"

# Submodules as attributes (emlpress.compress.lossless, emlpress.milp.add_network, ...),
# imported on first use so that `import emlpress` stays fast and TensorFlow-free.
_SUBMODULES = ("bench", "bounds", "compress", "data", "host", "interop", "io", "keras", "kernels", "metrics",
               "milp", "network", "pipelines", "testing", "train")


def __getattr__(name: str):
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"emlpress.{name}")
    raise AttributeError(f"module 'emlpress' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_SUBMODULES])
