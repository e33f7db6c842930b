"""The peer auto_LiRPA (interval bound propagation and CROWN on a float64 torch copy of the
network), when it is installed. Its PyPI release 0.3 needs torch < 1.13 and does not import
with numpy 2; a release from its source repository that supports the installed torch does.
Timed: `compute_bounds` alone (the BoundedModule built beforehand, as a user would reuse it)."""

import numpy as np
import pytest


def bounded(net):
    """(compute(method) -> (lower, upper) of the output), or a pytest skip naming the reason."""
    try:
        import torch
        from auto_LiRPA import BoundedModule, BoundedTensor, PerturbationLpNorm
    except Exception as e:  # noqa: BLE001  (not installed, or a release that fails to import in any way)
        pytest.skip(f"auto_LiRPA is not usable here ({type(e).__name__}: {e})")
    layers = []
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        lin = torch.nn.Linear(W.shape[1], W.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.asarray(W)))
            lin.bias.copy_(torch.from_numpy(np.asarray(b)))
        layers.append(lin)
        if l < net.n_layers - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    lo = torch.from_numpy(np.asarray(net.lo))[None, :]
    hi = torch.from_numpy(np.asarray(net.hi))[None, :]
    x = (lo + hi) / 2
    bm = BoundedModule(model, x, device="cpu")
    xt = BoundedTensor(x, PerturbationLpNorm(norm=float("inf"), x_L=lo, x_U=hi))

    def compute(method):
        with torch.no_grad():
            lb, ub = bm.compute_bounds(x=(xt,), method=method)
        return lb.numpy()[0], ub.numpy()[0]

    return compute
