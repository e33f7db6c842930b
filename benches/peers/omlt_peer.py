"""The peer: the same network in OMLT (ReluBigMFormulation) on Pyomo, solved by HiGHS
through Pyomo's appsi_highs interface. Needs the [peers] extra (omlt, pyomo)."""

import time

import numpy as np
import pytest


def require() -> None:
    """A pytest skip naming the reason when the [peers] extra is not installed (as
    auto_LiRPA's); call it before the benchmark starts timing (a benchmark skipped while
    timed leaves pytest-benchmark an empty record that breaks its summary)."""
    try:
        import omlt  # noqa: F401
        import pyomo.environ  # noqa: F401
    except ImportError as e:
        pytest.skip(f"OMLT is not usable here ({type(e).__name__}: {e}; the [peers] extra)")


def omlt_definition(net):
    # omlt and pyomo: the [peers] extra, imported only when an OMLT row runs
    from omlt.neuralnet import NetworkDefinition
    from omlt.neuralnet.layer import DenseLayer, InputLayer

    bounds = {i: (float(l), float(h)) for i, (l, h) in enumerate(zip(net.lo, net.hi))}
    nd = NetworkDefinition(scaled_input_bounds=bounds)
    prev = InputLayer([net.n_in])
    nd.add_layer(prev)
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        last = l == net.n_layers - 1
        layer = DenseLayer(prev.output_size, [W.shape[0]], weights=np.asarray(W).T.copy(),
                           biases=np.asarray(b).copy(), activation="linear" if last else "relu")
        nd.add_layer(layer)
        nd.add_edge(prev, layer)
        prev = layer
    return nd


def omlt_model(net, output=0):
    """Pyomo model maximising output `output` over the box; returns (model, seconds)."""
    import pyomo.environ as pyo
    from omlt import OmltBlock
    from omlt.neuralnet import ReluBigMFormulation

    t0 = time.perf_counter()
    m = pyo.ConcreteModel()
    m.nn = OmltBlock()
    m.nn.build_formulation(ReluBigMFormulation(omlt_definition(net)))
    m.obj = pyo.Objective(expr=m.nn.outputs[output], sense=pyo.maximize)
    return m, time.perf_counter() - t0


def omlt_solve(m, time_limit):
    """Solve with HiGHS through Pyomo's appsi interface; returns
    (termination condition name, best objective or nan, seconds)."""
    from pyomo.contrib.appsi.solvers import Highs

    opt = Highs()
    opt.config.time_limit = time_limit
    opt.config.load_solution = False
    t0 = time.perf_counter()
    res = opt.solve(m)
    dt = time.perf_counter() - t0
    obj = res.best_feasible_objective
    return res.termination_condition.name, float("nan") if obj is None else float(obj), dt
