"""Importers and exporters. Framework packages are imported only when their function is called."""

from __future__ import annotations

import os
from pathlib import Path

from emlpress.io._chain import UnsupportedLayerError
from emlpress.network import Network

__all__ = ["from_keras", "to_keras", "from_onnx", "from_torch", "load_model", "UnsupportedLayerError"]


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


_LOADERS = {
    ".npz": Network.load,
    ".h5": from_keras,
    ".keras": from_keras,
    ".onnx": from_onnx,
    ".pt": from_torch,
    ".pth": from_torch,
}


def load_model(path: str | os.PathLike) -> Network:
    """Load a network from any supported file, chosen by extension
    (``.npz``, ``.h5``/``.keras``, ``.onnx``, ``.pt``/``.pth``)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    loader = _LOADERS.get(p.suffix.lower())
    if loader is None:
        raise ValueError(
            f"{p}: unknown model format '{p.suffix}' (supported: {', '.join(sorted(_LOADERS))})"
        )
    return loader(p)
