"""Importers and exporters. Framework packages are imported only when their function is called."""

from __future__ import annotations

import os
from pathlib import Path

from emlpress.io._chain import UnsupportedLayerError
from emlpress.network import Network

__all__ = ["from_keras", "to_keras", "from_onnx", "from_torch", "from_tflite", "from_sklearn", "load_model",
           "UnsupportedLayerError", "ModelFileError"]


class ModelFileError(ValueError):
    """A model file that cannot be read: the message names the file and what to do."""


def from_keras(model_or_path) -> Network:
    """Network from a tf_keras model or ``.h5``/``.keras`` file (Dense + ReLU chains)."""
    from emlpress.io.keras import from_keras as f

    return f(model_or_path)


def to_keras(net: Network):
    """A tf_keras Sequential model computing the same function as ``net``."""
    from emlpress.io.keras import to_keras as f

    return f(net)


def from_onnx(path) -> Network:
    """Network from an ONNX file of Gemm (or MatMul + Add) and Relu nodes."""
    from emlpress.io.onnx import from_onnx as f

    return f(path)


def from_torch(module) -> Network:
    """Network from an ``nn.Sequential`` of Linear/ReLU, or a ``torch.save`` file of one."""
    from emlpress.io.torch import from_torch as f

    return f(module)


def from_tflite(path_or_bytes) -> Network:
    """Network with the dequantized weights of a ``.tflite`` model (any of the six
    post-training quantizations, or none): fully connected layers with ReLU or no activation;
    anything else is refused naming the operator and its index."""
    from emlpress.io.tflite import from_tflite as f

    return f(path_or_bytes)


def from_sklearn(mlp) -> Network:
    """Network from a fitted scikit-learn ``MLPRegressor`` (its prediction) or
    ``MLPClassifier`` (its logits) with ``activation="relu"`` or ``"identity"``."""
    from emlpress.io.sklearn import from_sklearn as f

    return f(mlp)


_LOADERS = {
    ".npz": Network.load,
    ".h5": from_keras,
    ".keras": from_keras,
    ".onnx": from_onnx,
    ".pt": from_torch,
    ".pth": from_torch,
    ".tflite": from_tflite,
}


_KIND = {".npz": "a network file (an .npz archive written by Network.save)",
         ".h5": "a Keras HDF5 model file", ".keras": "a Keras model file", ".onnx": "an ONNX model file",
         ".pt": "a PyTorch model file (torch.save of an nn.Sequential)", ".pth": "a PyTorch model file",
         ".tflite": "a TFLite model file"}
_NEEDS = {".h5": "TensorFlow and tf-keras: pip install 'emlpress[keras]'",
          ".keras": "TensorFlow and tf-keras: pip install 'emlpress[keras]'",
          ".onnx": "onnx: pip install 'emlpress[onnx]'",
          ".pt": "PyTorch: pip install torch (the CPU build is enough)",
          ".pth": "PyTorch: pip install torch (the CPU build is enough)",
          ".tflite": "LiteRT: pip install 'emlpress[keras]' (or ai-edge-litert)"}


def load_model(path: str | os.PathLike) -> Network:
    """Load a network from any supported file, chosen by extension
    (``.npz``, ``.h5``/``.keras``, ``.onnx``, ``.pt``/``.pth``, ``.tflite``). A file that cannot be read
    raises :class:`ModelFileError` naming it (and the package to install, when one is missing);
    a readable model with an unsupported layer raises :class:`UnsupportedLayerError`."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    if p.is_dir():
        raise ModelFileError(f"{p}: is a directory, not a model file")
    suffix = p.suffix.lower()
    loader = _LOADERS.get(suffix)
    if loader is None:
        raise ModelFileError(
            f"{p}: unknown model format '{p.suffix}' (supported: {', '.join(sorted(_LOADERS))})"
        )
    try:
        return loader(p)
    except (UnsupportedLayerError, ModelFileError):
        raise
    except ImportError as e:  # ModuleNotFoundError included
        if suffix in _NEEDS:
            raise ModelFileError(f"{p}: reading {suffix} files needs {_NEEDS[suffix]} "
                                 f"({type(e).__name__}: {e})") from None
        raise
    except ValueError as e:
        if str(e).startswith(str(p)):
            raise  # already names the file (Network.load, the importers' checks)
        raise ModelFileError(f"{p}: not {_KIND[suffix]} ({_first_line(e)})") from None
    except (MemoryError, TypeError, AttributeError, NameError, AssertionError):
        raise  # not the file's fault: a bug, or the machine
    except Exception as e:  # noqa: BLE001  (what a corrupt file raises differs per library and release)
        raise ModelFileError(f"{p}: not {_KIND[suffix]} ({type(e).__name__}: {_first_line(e)})") from None


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
