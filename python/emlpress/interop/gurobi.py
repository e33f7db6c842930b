"""emlpress bounds for a network that gurobi-ml embedded (``gurobi_ml.add_predictor_constr``
on a PyTorch ``nn.Sequential``, a Keras model or a scikit-learn ``MLPRegressor``).

gurobi-ml models each ReLU with Gurobi's ``max`` general constraint on unbounded
pre-activation variables, so Gurobi derives its big-Ms from whatever bounds it propagates
itself (gurobi-ml #237 asks for neuron bounds). :func:`tighten_gurobi_ml` reads the layers
gurobi-ml encoded (its own coefficients: the bounds hold for the rows Gurobi has, whatever the
framework computes in float32), computes emlpress' sound bounds on the box of each input row
and writes them on the pre-activation and ReLU output variables of every layer.
"""

from __future__ import annotations

import time

import numpy as np

from emlpress.interop._common import (Dense, Tightening, UnsupportedPeerModel, chain_network,
                                      dense, intersect, row_bounds)
from emlpress.network import Network

__all__ = ["tighten_gurobi_ml", "gurobi_ml_network"]


def _parts(pred_constr) -> tuple[list, object]:
    """(the StandardScaler steps before the network, the network's BaseNNConstr) of a
    gurobi-ml predictor constraint: a network, or a Pipeline of scalers and a network."""
    # gurobi-ml, gurobipy: the [peers] extra, imported only when a gurobi-ml model is given
    from gurobi_ml.modeling.neuralnet import BaseNNConstr
    from gurobi_ml.sklearn.pipeline import PipelineConstr
    from gurobi_ml.sklearn.preprocessing import StandardScalerConstr

    if isinstance(pred_constr, PipelineConstr):
        steps = list(pred_constr)
        for i, step in enumerate(steps[:-1]):
            if not isinstance(step, StandardScalerConstr):
                raise UnsupportedPeerModel(f"pred_constr: pipeline step {i} ({type(step).__name__}) "
                                           "is not supported before the network (StandardScaler only)")
        if steps and isinstance(steps[-1], BaseNNConstr):
            return steps[:-1], steps[-1]
        last = type(steps[-1]).__name__ if steps else "nothing"
        raise TypeError(f"pred_constr: the pipeline ends in {last}, not one of gurobi-ml's neural "
                        "networks")
    if not isinstance(pred_constr, BaseNNConstr):
        raise TypeError(f"pred_constr: a {type(pred_constr).__name__} is not one of gurobi-ml's "
                        "neural networks (BaseNNConstr: a PyTorch nn.Sequential, a Keras model or "
                        "an MLPRegressor given to add_predictor_constr, alone or after "
                        "StandardScaler steps in a Pipeline)")
    return [], pred_constr


def _scaled(scaler, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """The box of a StandardScaler's outputs, (x - mean_) / scale_ on [lo, hi], widened by two
    ulps each side: gurobi-ml's row x - out * scale_ == mean_ holds the exact quotient, which
    float64 division may round inward."""
    t = scaler.transformer
    mean = np.zeros(lo.size) if getattr(t, "mean_", None) is None else np.asarray(t.mean_, float)
    scale = np.ones(lo.size) if getattr(t, "scale_", None) is None else np.asarray(t.scale_, float)
    a, b = (lo - mean) / scale, (hi - mean) / scale
    lo2, hi2 = np.minimum(a, b), np.maximum(a, b)
    for _ in range(2):
        lo2, hi2 = np.nextafter(lo2, -np.inf), np.nextafter(hi2, np.inf)
    return lo2, hi2


def _layers(pred_constr) -> list[Dense]:
    from gurobi_ml.modeling.neuralnet.activations import Identity, ReLU
    from gurobi_ml.modeling.neuralnet.layers import ActivationLayer, DenseLayer

    out: list[Dense] = []
    pending = None  # a linear dense layer whose ReLU may come as the next layer
    for i, layer in enumerate(pred_constr.layers):
        act = layer.activation
        where = f"layer {i} ({type(layer).__name__}, activation {type(act).__name__})"
        if isinstance(layer, DenseLayer):
            if pending is not None:
                out.append(pending)
                pending = None
            if type(act) is ReLU:
                out.append(dense(layer.coefs, layer.intercept, True, layer.mixing, layer.output,
                                 where))
            elif type(act) is Identity:
                pending = dense(layer.coefs, layer.intercept, False, layer.output, None, where)
            else:
                raise UnsupportedPeerModel(f"pred_constr: {where} is not supported (ReLU or "
                                           "identity only, as gurobi-ml formulates them)")
        elif isinstance(layer, ActivationLayer):
            if type(act) is not ReLU:
                raise UnsupportedPeerModel(f"pred_constr: {where} is not supported (ReLU only)")
            if pending is None:
                raise UnsupportedPeerModel(f"pred_constr: {where}: a ReLU that does not follow "
                                           "a linear layer")
            pending.relu, pending.post, pending.where = True, layer.output, f"{pending.where} + {where}"
            out.append(pending)
            pending = None
        else:
            raise UnsupportedPeerModel(f"pred_constr: {where} is not supported (dense and ReLU "
                                       "layers only)")
    if pending is not None:
        out.append(pending)
    return out


def gurobi_ml_network(pred_constr) -> Network:
    """The :class:`~emlpress.Network` that gurobi-ml encoded in ``pred_constr`` (the object
    ``gurobi_ml.add_predictor_constr`` returned for a network, or a pipeline's network step),
    without a domain."""
    return chain_network(_layers(_parts(pred_constr)[1]))


def _input_boxes(x) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per input row, (lo, hi) of the input variables ``x`` (an MVar); an infinite bound is
    refused naming the variable."""
    lo = np.atleast_2d(np.asarray(x.lb, dtype=np.float64))
    hi = np.atleast_2d(np.asarray(x.ub, dtype=np.float64))
    bad = np.argwhere(~(np.isfinite(lo) & np.isfinite(hi)))
    if bad.size:
        r, j = (int(v) for v in bad[0])
        var = np.atleast_2d(np.asarray(x.tolist(), dtype=object))[r, j]
        raise ValueError(f"input variable {var.VarName!r} (row {r}, feature {j}) has bounds "
                         f"[{lo[r, j]}, {hi[r, j]}]: emlpress' bounds need a finite box; set its "
                         "LB and UB")
    bad = np.argwhere(lo > hi)
    if bad.size:
        r, j = (int(v) for v in bad[0])
        var = np.atleast_2d(np.asarray(x.tolist(), dtype=object))[r, j]
        raise ValueError(f"input variable {var.VarName!r}: LB {lo[r, j]} > UB {hi[r, j]}")
    return list(zip(lo, hi))


def _write(mvar, row: int, lo, hi) -> int:
    """Tighten the bounds of row ``row`` of ``mvar`` (2-D, as gurobi-ml makes them) to
    [lo, hi] (never loosen); returns how many bounds changed."""
    v = mvar[row]
    new_lo, new_hi, n = intersect(v.lb, v.ub, lo, hi)
    if n:
        v.lb = new_lo
        v.ub = new_hi
    return n


def tighten_gurobi_ml(pred_constr, method: str = "crown", *, time_limit: float | None = None,
                      threads: int | None = None) -> Tightening:
    """Write emlpress' sound neuron bounds onto the variables of a network gurobi-ml embedded.

    ``pred_constr``: what ``gurobi_ml.add_predictor_constr(model, net, x, y)`` returned for a
    PyTorch ``nn.Sequential`` of Linear/ReLU, a Keras model of Dense (ReLU or linear) and ReLU
    layers, an ``MLPRegressor`` with ReLU, or a ``Pipeline`` of ``StandardScaler`` steps and
    such a network (the network's box is then the scaled box, also written onto the scalers'
    output variables). ``method``: a bound method of
    :func:`emlpress.bounds.tighten` (``"crown"``: fast; ``"lp"`` or ``"progressive"``:
    tighter; ``"stability"``: CROWN with the exact stable sets, ``time_limit`` seconds in
    all). The bounds are computed on the box of each row of ``x`` (its variables' LB/UB, which
    must be finite: an infinite one is refused naming the variable), so they hold for every
    feasible point of the model as long as those boxes stay as they were (call it after the
    inputs' bounds are final: widening them later leaves bounds that may cut off solutions);
    each layer's pre-activation variables get ``[lower, upper]`` and its ReLU output ``[max(lower, 0), max(upper, 0)]``, intersected with the bounds they
    had (never loosened). A stably inactive unit's output is thereby fixed to 0 and a stably
    active one's ``max`` has a non-negative argument: Gurobi's presolve removes both.

    Returns a :class:`~emlpress.interop.Tightening`. A layer that is not dense + ReLU/identity
    raises :class:`~emlpress.interop.UnsupportedPeerModel` naming it, before anything is
    written."""
    t0 = time.perf_counter()
    scalers, nn = _parts(pred_constr)
    layers = _layers(nn)
    net = chain_network(layers)
    pred_constr.gp_model.update()  # bounds and names of variables added since the last update
    boxes = _input_boxes(pred_constr.input)
    scaled = []  # the network's box: the scaled box of the pipeline's inputs, step by step
    for sc in scalers:
        boxes = [_scaled(sc, lo, hi) for lo, hi in boxes]
        scaled.append((sc, boxes))
    if boxes and boxes[0][0].size != net.n_in:
        raise ValueError(f"pred_constr: {boxes[0][0].size} input variables per row, the network "
                         f"takes {net.n_in}")
    found, seconds = row_bounds(net, boxes, method, time_limit, threads)
    written = sum(_write(sc.output, r, lo, hi) for sc, bx in scaled for r, (lo, hi) in enumerate(bx))
    for r, b in enumerate(found):
        for l, d in enumerate(layers):
            written += _write(d.pre, r, b.lower[l], b.upper[l])
            if d.relu:
                written += _write(d.post, r, np.maximum(b.lower[l], 0.0), np.maximum(b.upper[l], 0.0))
    pred_constr.gp_model.update()
    return Tightening(net, tuple(found), method, written, 0, seconds, time.perf_counter() - t0,
                      rows=len(found))
