"""PyTorch import: ``nn.Sequential`` of ``Linear`` and ``ReLU``.

Files are read without running code from them: ``torch.load(..., weights_only=True)`` with
only ``nn.Sequential``, ``nn.Linear``, ``nn.ReLU`` and ``nn.Identity`` allowed beside the
tensors, so a file naming any other class or function is refused by that name before anything
of it is built. A state dict (``torch.save(model.state_dict())``) holds no architecture (where
the ReLUs are is not in it) and a TorchScript archive (``torch.jit.save``) would be read by its
modules' class names while its own code defines what they compute: both are refused with what
to do instead.
"""

from __future__ import annotations

import os
import re

from emlpress.io._chain import Affine, Relu, UnsupportedLayerError, build_network
from emlpress.network import Network


def from_torch(module) -> Network:
    """Network from an ``nn.Sequential`` (nested allowed) of ``nn.Linear``, ``nn.ReLU`` and
    ``nn.Identity``, or a file written by ``torch.save(module)``. Anything else raises
    :class:`UnsupportedLayerError` naming the module, its type and position."""
    from torch import nn

    source = "torch module"
    if isinstance(module, (str, os.PathLike)):
        source = str(module)
        module = _load(source)
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


def _load(path: str):
    """The module a ``torch.save(module)`` file holds, unpickled by torch's restricted
    (weights-only) unpickler with the four supported classes allowed."""
    import pickle
    import zipfile

    import torch
    from torch import nn

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if any(n.endswith("/code/__torch__.py") or "/code/" in n for n in z.namelist()):
                raise UnsupportedLayerError(
                    f"{path}: a TorchScript archive (torch.jit.save) is not read: its modules "
                    "compute what its own code says, not what their class names say; save the "
                    "nn.Sequential with torch.save(model) instead")
    allowed = [nn.Sequential, nn.Linear, nn.ReLU, nn.Identity]
    try:
        with torch.serialization.safe_globals(allowed):
            obj = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found is None:
            raise
        raise UnsupportedLayerError(
            f"{path}: refused without loading it: the file needs {found.group(1)}, and only "
            "torch.nn Sequential, Linear, ReLU and Identity are read (nothing in the file was "
            "run)") from None
    if isinstance(obj, dict):
        raise UnsupportedLayerError(
            f"{path}: a state dict ({len(obj)} tensors) has no architecture (where the ReLUs "
            "are is not in it): load it into your nn.Sequential and pass the module to "
            "from_torch, or save the module with torch.save(model)")
    if not isinstance(obj, nn.Module):
        raise UnsupportedLayerError(f"{path}: holds a {type(obj).__name__}, not an nn.Sequential")
    return obj
