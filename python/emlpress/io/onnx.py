"""ONNX import: Gemm, or MatMul followed by Add, and Relu chains."""

from __future__ import annotations

import os

import numpy as np

from emlpress.io._chain import Affine, Relu, UnsupportedLayerError, build_network
from emlpress.network import Network

# Operators that change nothing for a single flat input vector.
_PASS_THROUGH = {"Identity"}


def from_onnx(path) -> Network:
    """Network from an ONNX file whose graph is a chain of ``Gemm`` (or ``MatMul`` + ``Add``)
    and ``Relu`` nodes. Any other operator raises :class:`UnsupportedLayerError` naming the
    node, its operator and its position."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("ONNX support needs the onnx package: pip install 'emlpress[onnx]'") from e
    source = str(path)
    if not os.path.exists(source):
        raise FileNotFoundError(source)
    model = onnx.load(source)
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
    for node in graph.node:  # Constant nodes hold weights in some exporters
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t).astype(np.float64)
    inputs = [i.name for i in graph.input if i.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise UnsupportedLayerError(
            f"{source}: only single-input single-output chains are supported "
            f"({len(inputs)} inputs, {len(graph.output)} outputs)"
        )
    current = inputs[0]
    ops: list = []
    pending_matmul: Affine | None = None
    nodes = [n for n in graph.node if n.op_type != "Constant"]

    def attr(node, name, default):
        for a in node.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default

    def operand(node, where):
        data = [x for x in node.input if x != current]
        if current not in node.input or len(data) < 1 or any(x not in consts for x in data):
            raise UnsupportedLayerError(
                f"{source}: {where} is not a chain step on the previous output with constant weights"
            )
        return data

    for pos, node in enumerate(nodes):
        where = f"node {pos} '{node.name or node.output[0]}' ({node.op_type})"
        if pending_matmul is not None and node.op_type != "Add":
            ops.append(pending_matmul)
            pending_matmul = None
        if node.op_type == "Gemm":
            if attr(node, "transA", 0):
                raise UnsupportedLayerError(f"{source}: {where} has transA=1")
            if node.input[0] != current:
                raise UnsupportedLayerError(f"{source}: {where} does not take the previous output")
            B = consts[node.input[1]] * float(attr(node, "alpha", 1.0))
            W = B if attr(node, "transB", 0) else B.T
            C = consts[node.input[2]] if len(node.input) > 2 and node.input[2] else np.zeros(W.shape[0])
            b = np.broadcast_to(C * float(attr(node, "beta", 1.0)), (W.shape[0],)).copy()
            ops.append(Affine(W, b, where))
        elif node.op_type == "MatMul":
            (w,) = operand(node, where)
            if node.input[0] != current:
                raise UnsupportedLayerError(f"{source}: {where} multiplies the weights from the left")
            W = consts[w].T
            pending_matmul = Affine(W, np.zeros(W.shape[0]), where)
        elif node.op_type == "Add":
            (c,) = operand(node, where)
            if pending_matmul is None:
                raise UnsupportedLayerError(f"{source}: {where} adds a constant without a MatMul before it")
            pending_matmul.b = np.broadcast_to(consts[c], pending_matmul.b.shape).astype(np.float64)
            ops.append(pending_matmul)
            pending_matmul = None
        elif node.op_type == "Relu":
            ops.append(Relu(where))
        elif node.op_type in _PASS_THROUGH:
            pass
        else:
            raise UnsupportedLayerError(
                f"{source}: {where}: operator {node.op_type} is not supported "
                "(only Gemm, MatMul+Add, Relu)"
            )
        current = node.output[0]
    if pending_matmul is not None:
        ops.append(pending_matmul)
    if current != graph.output[0].name:
        raise UnsupportedLayerError(f"{source}: the chain does not end at the graph output")
    return build_network(ops, source)
