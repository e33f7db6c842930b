"""MILP embedding: encode time and encode+solve time against OMLT + HiGHS (the [peers] extra).

Run: emlpress bench --only milp (or: python -m pytest benches/suites/bench_milp.py -s)

Encode: building the model for a network over its box. emlpress is timed both with its
bound computation (CROWN) inside and with bounds given; OMLT's time is its model
construction (NetworkDefinition + ReluBigMFormulation, which computes its own interval
bounds). Solve: "maximise output 0 over the box" end to end, one round each, time limit
TIME_LIMIT s for every solver: emlpress' time is its bounds (the variant's method) + lossless
compression where the variant has it (without its verification pass) + encode + solve, each
part in the figures (bounds_s, lossless_s, encode_s, solve_s); OMLT's is its model
construction (with its own interval bounds) + solve.
"""

import time

import highspy
import pytest

from conftest import label, quick, random_network, shared
from emlpress import Network, bounds
from emlpress.compress import lossless
from emlpress.milp import add_network, solve
from peers.omlt_peer import omlt_model, omlt_solve, require
from tools.trained import trained

TIME_LIMIT = 120.0

ENCODE_NETS = {
    "random_784-256-256-10": lambda: random_network([784, 256, 256, 10]),
    "random_2-1024-512-512-256-1": lambda: random_network([2, 1024, 512, 512, 256, 1]),
}


def emlpress_encode(net, b):
    h = highspy.Highs()
    h.silent()
    x = h.addVariables(net.n_in, lb=[float(v) for v in net.lo], ub=[float(v) for v in net.hi])
    return h, add_network(h, net, x, bounds=b)


@pytest.mark.parametrize("impl", ["emlpress+crown", "emlpress(bounds given)", "omlt"])
@pytest.mark.parametrize("name", [pytest.param(n, marks=[quick] if n.startswith("random_784") else [])
                                  for n in sorted(ENCODE_NETS)])
def test_encode(benchmark, name, impl):
    net = ENCODE_NETS[name]()
    label(benchmark, f"encode {name}", impl, peer=impl == "omlt")
    if impl == "omlt":
        require()
        benchmark.pedantic(omlt_model, args=(net,), rounds=1, iterations=1)
    elif impl == "emlpress+crown":
        benchmark(emlpress_encode, net, "crown")
    else:
        b = bounds.crown(net)
        benchmark(emlpress_encode, net, b)


SOLVE_NETS = {
    "gp_2-128-128-64-1": lambda: trained("gp_2-128-128-64-1"),
    "gp_2-256-128-128-64-1": lambda: trained("gp_2-256-128-128-64-1"),
    "gp_2-1024-512-512-256-1": lambda: trained("gp_2-1024-512-512-256-1"),
    "seed_gp_2-1024-512-512-256-1": lambda: Network.load(shared("seed_gp", "model.npz")),
    "random_7-12-60-4": lambda: random_network([7, 12, 60, 4]),
}


def emlpress_end_to_end(net, method, compress):
    """Bounds, lossless compression (when `compress`), encode and solve: everything emlpress
    needs from the network to the answer. Returns (solution, encoding, network solved,
    seconds of the bounds and of the compression)."""
    t0 = time.perf_counter()
    # "lp" is the progressive tightening: interval, CROWN, then LP for the units still
    # unstable (the same LP bounds, fewer LPs)
    b = bounds.tighten(net, method="progressive" if method == "lp" else method)
    t1 = time.perf_counter()
    if compress:
        net, rep = lossless(net, bounds=b, verify=False)
        b = rep.bounds
    t2 = time.perf_counter()
    h, nn = emlpress_encode(net, b)
    h.setObjective(nn.outputs[0], sense=highspy.ObjSense.kMaximize)
    sol = solve(h, time_limit=TIME_LIMIT)
    return sol, nn, net, t1 - t0, t2 - t1


VARIANTS = ["interval", "crown", "lp", "interval+lossless", "crown+lossless", "lp+lossless", "omlt"]
QUICK_SOLVES = {("gp_2-128-128-64-1", v) for v in ("lp", "lp+lossless", "omlt")}


@pytest.mark.parametrize("name, variant", [
    pytest.param(n, v, marks=[quick] if (n, v) in QUICK_SOLVES else []) for n in SOLVE_NETS for v in VARIANTS])
def test_solve(benchmark, name, variant):
    net = SOLVE_NETS[name]()
    label(benchmark, f"solve {name}", variant if variant == "omlt" else "emlpress " + variant,
          peer=variant == "omlt")
    if variant == "omlt":
        require()

        def run():
            m, enc = omlt_model(net)
            status, obj, dt = omlt_solve(m, TIME_LIMIT)
            return status, obj, enc, dt

        status, obj, enc, dt = benchmark.pedantic(run, rounds=1, iterations=1)
        info = dict(status=status, objective=obj, encode_s=enc, solve_s=dt)
    else:
        sol, nn, n, tb, tl = benchmark.pedantic(
            emlpress_end_to_end, args=(net, variant.split("+")[0], variant.endswith("+lossless")),
            rounds=1, iterations=1)
        info = dict(status=sol.status, objective=sol.objective, bounds_s=tb, lossless_s=tl,
                    encode_s=sol.encode_s, solve_s=sol.solve_s, binaries=nn.n_binaries,
                    hidden=n.n_neurons, nodes=sol.nodes, gap=sol.gap,
                    verify=max(sol.verify_diff.values(), default=float("nan")))
    benchmark.extra_info.update(info)
    print(f"\n{name} {variant}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in info.items()))
