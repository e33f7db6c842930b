"""PyTorch import: ``nn.Sequential`` of ``Linear`` and ``ReLU``."""

from __future__ import annotations

import os

from emlpress.io._chain import Affine, Relu, UnsupportedLayerError, build_network
from emlpress.network import Network


def from_torch(module) -> Network:
    """Network from an ``nn.Sequential`` (nested allowed) of ``nn.Linear``, ``nn.ReLU`` and
    ``nn.Identity``, or a file written by ``torch.save(module)``. Anything else raises
    :class:`UnsupportedLayerError` naming the module, its type and position."""
    import torch
    from torch import nn

    source = "torch module"
    if isinstance(module, (str, os.PathLike)):
        source = str(module)
        module = torch.load(source, weights_only=False, map_location="cpu")
    ops: list = []

    def walk(m, prefix: str):
        if isinstance(m, nn.Sequential):
            for name, child in m.named_children():
                walk(child, f"{prefix}.{name}" if prefix else name)
            return
        where = f"module '{prefix or '<root>'}' ({type(m).__name__})"
        if isinstance(m, nn.Linear):
            W = m.weight.detach().cpu().double().numpy()
            b = m.bias.detach().cpu().double().numpy() if m.bias is not None else W[:, 0] * 0.0
            ops.append(Affine(W, b, where))
        elif isinstance(m, nn.ReLU):
            ops.append(Relu(where))
        elif isinstance(m, nn.Identity):
            pass
        else:
            raise UnsupportedLayerError(
                f"{source}: {where} is not supported (only Linear, ReLU, Identity in nn.Sequential)"
            )

    walk(module, "")
    return build_network(ops, source)
