"""emlpress bounds for a network in an OMLT block (``OmltBlock.build_formulation`` with a
``NetworkDefinition`` of dense layers: ``FullSpaceNNFormulation``, ``ReluBigMFormulation``,
``ReluComplementarityFormulation``, ...).

OMLT bounds every pre-activation by interval arithmetic on the scaled input bounds while it
builds the formulation (its dense layer overwrites any bound set before), and its big-M ReLU
keeps those bounds in mutable parameters. :func:`tighten_omlt` therefore runs on the built
block: it reads the layers from the ``NetworkDefinition``, computes emlpress' sound bounds on
the block's scaled input box and writes them onto the layers' ``zhat`` (pre-activation) and
``z`` (output) variables and the big-M parameters, and fixes the binary of every stable unit
to its linear piece.
"""

from __future__ import annotations

import time

import numpy as np

from emlpress.interop._common import (Dense, Tightening, UnsupportedPeerModel, chain_network,
                                      dense, intersect, row_bounds)
from emlpress.network import Network

__all__ = ["tighten_omlt", "omlt_network"]


def _layers(network_definition, block=None) -> tuple[list[Dense], object]:
    """The dense layers of a NetworkDefinition (with the block's variables when ``block`` is
    given) and its input layer."""
    # omlt and pyomo: the [peers] extra, imported only when an OMLT model is given
    from omlt.neuralnet import NetworkDefinition
    from omlt.neuralnet.layer import DenseLayer, InputLayer

    if not isinstance(network_definition, NetworkDefinition):
        raise TypeError(f"network_definition: expected omlt.neuralnet.NetworkDefinition, got "
                        f"{type(network_definition).__name__}")
    layers = list(network_definition.layers)
    if not layers or not isinstance(layers[0], InputLayer) or len(layers[0].output_size) != 1:
        raise UnsupportedPeerModel("network_definition: the first layer must be a flat "
                                   "InputLayer")
    out: list[Dense] = []
    prev = layers[0]
    for i, layer in enumerate(layers[1:], start=1):
        where = f"layer {i} ({type(layer).__name__}, activation {layer.activation!r})"
        if type(layer) is not DenseLayer:
            raise UnsupportedPeerModel(f"network_definition: {where} is not supported (dense "
                                       "layers only)")
        preds = list(network_definition.predecessors(layer))
        mapper = layer.input_index_mapper  # OMLT gives every layer one; flat to flat is the identity
        flat = mapper is None or (len(mapper.input_size) == 1 and
                                  list(mapper.input_size) == list(mapper.output_size))
        if preds != [prev] or not flat or len(layer.output_size) != 1:
            raise UnsupportedPeerModel(f"network_definition: {where}: not a plain chain (each "
                                       "dense layer takes the flat output of the one before)")
        if layer.activation not in ("relu", "linear"):
            raise UnsupportedPeerModel(f"network_definition: {where} is not supported (relu, "
                                       "or linear for the output layer)")
        blk = None if block is None else block.layer[id(layer)]  # its zhat and z
        out.append(dense(layer.weights, layer.biases, layer.activation == "relu", blk, blk, where))
        prev = layer
    return out, layers[0]


def omlt_network(network_definition) -> Network:
    """The :class:`~emlpress.Network` of an OMLT ``NetworkDefinition`` of dense layers, on its
    scaled input box when it has one."""
    layers, inp = _layers(network_definition)
    net = chain_network(layers)
    sib = network_definition.scaled_input_bounds
    if sib:
        idx = list(inp.output_indexes)
        lo = [sib.get(j[0] if len(j) == 1 else j, (None, None))[0] for j in idx]
        hi = [sib.get(j[0] if len(j) == 1 else j, (None, None))[1] for j in idx]
        if all(v is not None for v in lo + hi):
            return net.with_domain(lo, hi)
    return net


def _box(block, inp) -> tuple[np.ndarray, np.ndarray]:
    z = block.layer[id(inp)].z
    idx = list(inp.output_indexes)
    lo = np.array([np.nan if z[j].lb is None else z[j].lb for j in idx], dtype=np.float64)
    hi = np.array([np.nan if z[j].ub is None else z[j].ub for j in idx], dtype=np.float64)
    bad = np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))
    if bad.size:
        j = idx[bad[0]]
        raise ValueError(f"scaled input {j[0] if len(j) == 1 else j} has bounds "
                         f"[{z[j].lb}, {z[j].ub}]: emlpress' bounds need a finite box; give "
                         "NetworkDefinition(scaled_input_bounds=...) a finite bound for every input")
    bad = np.flatnonzero(lo > hi)
    if bad.size:
        raise ValueError(f"scaled input {idx[bad[0]]}: lower bound {lo[bad[0]]} > upper {hi[bad[0]]}")
    return lo, hi


def _write_vars(var, idx, lo, hi) -> int:
    old_lo = [var[j].lb for j in idx]
    old_hi = [var[j].ub for j in idx]
    new_lo, new_hi, n = intersect(old_lo, old_hi, lo, hi)
    if n:
        for k, j in enumerate(idx):
            var[j].setlb(float(new_lo[k]))
            var[j].setub(float(new_hi[k]))
    return n


def tighten_omlt(block, network_definition, method: str = "crown", *,
                 time_limit: float | None = None, threads: int | None = None) -> Tightening:
    """Write emlpress' sound neuron bounds onto an OMLT block built from
    ``network_definition`` (call it after ``block.build_formulation(...)``).

    The network is the ``NetworkDefinition``'s chain of ``DenseLayer`` s (ReLU hidden layers,
    a linear or ReLU output layer); the box is the block's scaled input bounds (finite: an
    input without one is refused naming it; the bounds hold while that box stays as it is). ``method``: as
    :func:`~emlpress.interop.tighten_gurobi_ml`. Each layer's ``zhat`` gets ``[lower, upper]``
    and its ``z`` ``[max(lower, 0), max(upper, 0)]`` (a linear layer's ``z`` the same as its
    ``zhat``), intersected with OMLT's own (never loosened); the big-M ReLU's parameters take
    the tighter bounds, and its binary ``q_relu`` is fixed to 0 for a stably inactive unit and
    to 1 for a stably active one. Returns a :class:`~emlpress.interop.Tightening`; a layer
    that is not dense + ReLU/linear raises :class:`~emlpress.interop.UnsupportedPeerModel`
    naming it, before anything is written."""
    t0 = time.perf_counter()
    built = getattr(block, "layers", None)
    if built is None:
        raise ValueError("block: no formulation is built on it (call block.build_formulation "
                         "first: OMLT overwrites layer bounds while it builds)")
    if list(built) != [id(l) for l in network_definition.layers]:
        raise ValueError("block: it was not built from this network_definition (its layers differ)")
    layers, inp = _layers(network_definition, block)
    net = chain_network(layers)
    lo, hi = _box(block, inp)
    (b,), seconds = row_bounds(net, [(lo, hi)], method, time_limit, threads)
    written = fixed = 0
    ldefs = list(network_definition.layers)[1:]
    for l, (d, layer) in enumerate(zip(layers, ldefs)):
        idx = list(layer.output_indexes)
        lower, upper = b.lower[l], b.upper[l]
        blk = d.pre
        written += _write_vars(blk.zhat, idx, lower, upper)
        if not d.relu:  # a linear layer: z == zhat
            written += _write_vars(blk.z, idx, lower, upper)
            continue
        written += _write_vars(blk.z, idx, np.maximum(lower, 0.0), np.maximum(upper, 0.0))
        if hasattr(blk, "_big_m_lb_relu"):  # the big-M ReLU: mutable parameters and a binary
            for k, j in enumerate(idx):
                if lower[k] > blk._big_m_lb_relu[j].value:
                    blk._big_m_lb_relu[j] = float(lower[k])
                    written += 1
                if upper[k] < blk._big_m_ub_relu[j].value:
                    blk._big_m_ub_relu[j] = float(upper[k])
                    written += 1
                side = 1 if lower[k] >= 0.0 else 0 if upper[k] <= 0.0 else None
                if side is not None and not blk.q_relu[j].fixed:
                    blk.q_relu[j].fix(side)
                    fixed += 1
    return Tightening(net.with_domain(lo, hi), (b,), method, written, fixed, seconds,
                      time.perf_counter() - t0)
