"""The solve-time goal of issue 34 (point 3): maximise and minimise the output of three small
trained regressors over their box with emlpress' own branch-and-bound (``milp.solve``,
``solver="bab"``), HiGHS on the same model (``solver="highs"``) and gurobi-ml + Gurobi, side by
side in one run, every optimum checked by a forward pass and against the others. ``bab0``: the
same search without the bounds within the incumbent's level set (``bnb.LEVEL_SET_ROUNDS``) and
with every node LP warm-started from its parent's basis (``bab.SIBLING_WARM_START``), as
before issue 34's second speed session, for before/after ratios within one run.

The regressors: scikit-learn ``MLPRegressor`` (seeded, Adam, 400 iterations) on a smooth
synthetic function of the inputs (sum of sines and a product), converted by
``emlpress.io.from_sklearn``, cached in benches/.cache (not committed).

    python benches/tools/bnb_goal.py [--repeat 3] [--time-limit 120] [--solvers bab0,bab,gurobi]
    python benches/tools/bnb_goal.py --mnist 0,1,2 --eps 1,5,10 --time-limit 60

``--mnist``: the optimal adversary on Serra et al.'s MNIST 784-100-100-10 network
(``../shared/data/mnist``): maximise ``logit[target] - logit[true]`` over ``[0, 1]^784``
within l1 distance ``eps`` of a test image, the ball written with auxiliary columns as users
write it; what the search proves within the time limit.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import highspy
import numpy as np

from emlpress import Network
from emlpress import milp

CACHE = Path(__file__).resolve().parents[1] / ".cache"
#: name: (inputs, hidden sizes)
NETS = {"reg_10-16-16-1": (10, [16, 16]), "reg_5-12-12-12-1": (5, [12, 12, 12]),
        "reg_2-24-24-1": (2, [24, 24])}


def target(X: np.ndarray) -> np.ndarray:
    """A smooth function of every input: sines of scaled coordinates and a pairwise product."""
    n = X.shape[1]
    w = np.linspace(1.0, 2.5, n)
    return np.sin(X * w).sum(1) + 0.5 * X[:, 0] * X[:, -1]


def regressor(name: str):
    """(the sklearn model, its Network) for ``name``, trained once on [-2, 2]^n and cached."""
    import pickle

    from sklearn.neural_network import MLPRegressor

    from emlpress.io import from_sklearn

    path = CACHE / f"{name}.pkl"
    if path.exists():
        mlp = pickle.loads(path.read_bytes())
    else:
        n, hidden = NETS[name]
        rng = np.random.default_rng(0)
        X = rng.uniform(-2, 2, (4000, n))
        mlp = MLPRegressor(hidden_layer_sizes=hidden, random_state=0, max_iter=400, tol=1e-6)
        mlp.fit(X, target(X))
        CACHE.mkdir(exist_ok=True)
        path.write_bytes(pickle.dumps(mlp))
    net = from_sklearn(mlp)
    n = NETS[name][0]
    return mlp, Network(net.weights, net.biases, lo=-2 * np.ones(n), hi=2 * np.ones(n))


def as_before(solve):
    """``solve(..., solver, ...)`` taking ``solver="bab0"``: "bab" without the bounds within
    the incumbent's level set and with every node LP warm-started from its parent's basis."""
    from emlpress.bounds import bab
    from emlpress.milp import bnb

    def run(*args):
        args = list(args)
        if args[2] != "bab0":
            return solve(*args)
        saved = bnb.LEVEL_SET_ROUNDS, bab.SIBLING_WARM_START
        bnb.LEVEL_SET_ROUNDS, bab.SIBLING_WARM_START = 0, False
        try:
            return solve(*args[:2], "bab", *args[3:])
        finally:
            bnb.LEVEL_SET_ROUNDS, bab.SIBLING_WARM_START = saved
    return run


@as_before
def emlpress_solve(net: Network, sense: str, solver: str, time_limit: float):
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    x = h.addVariables(net.n_in, lb=net.lo.tolist(), ub=net.hi.tolist())
    t0 = time.perf_counter()
    nn = milp.add_network(h, net, x, bounds="lp")
    h.setObjective(nn.outputs[0], sense=highspy.ObjSense.kMaximize if sense == "max"
                   else highspy.ObjSense.kMinimize)
    sol = milp.solve(h, time_limit=time_limit, mip_gap=1e-4, solver=solver)
    dt = time.perf_counter() - t0
    fwd = float(net.forward(sol.inputs[nn.name])[0]) if sol.has_solution else float("nan")
    return sol.status, sol.objective, sol.best_bound, fwd, dt, sol.nodes


def gurobi_solve(mlp, net: Network, sense: str, time_limit: float):
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from peers import gurobi_ml_peer as G

    t0 = time.perf_counter()
    m, x, y, _, _ = G.build(mlp, net.lo, net.hi, gap=1e-4, abs_gap=1e-6, time_limit=time_limit)
    status, obj, xs, _ = G.solve(m, x, y, sense)
    dt = time.perf_counter() - t0
    fwd = float(net.forward(xs)[0]) if xs is not None else float("nan")
    return status, obj, float(m.ObjBound), fwd, dt, int(m.NodeCount)


MNIST = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mnist"


@as_before
def adversary(image: int, eps: float, solver: str, time_limit: float):
    """(status, objective, bound, forward-pass margin at the answer, seconds, nodes) of the
    optimal adversary on image ``image`` at radius ``eps``."""
    W = np.load(MNIST / "serra2021_mnist_784-100-100-10.npz")
    net = Network([W[f"W{i}"] for i in range(3)], [W[f"b{i}"] for i in range(3)],
                  lo=np.zeros(784), hi=np.ones(784))
    D = np.load(MNIST / "mnist_test_images_20.npz")
    c, (true, tgt) = D["images"][image], D["labels"][image]
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    t0 = time.perf_counter()
    x = h.addVariables(784, lb=[0.0] * 784, ub=[1.0] * 784)
    nn = milp.add_network(h, net, x)
    n, tc = 784, h.getNumCol()
    h.addCols(n, np.zeros(n), np.zeros(n), np.full(n, highspy.kHighsInf), 0, [], [], [])
    starts = np.arange(0, 2 * n + 1, 2)
    idx = np.column_stack([np.arange(tc, tc + n), nn.input_cols]).ravel().astype(np.int32)
    inf = highspy.kHighsInf
    h.addRows(n, -c, np.full(n, inf), 2 * n, starts[:-1].astype(np.int32), idx,
              np.tile([1.0, -1.0], n))  # t - x >= -c
    h.addRows(n, c, np.full(n, inf), 2 * n, starts[:-1].astype(np.int32), idx,
              np.tile([1.0, 1.0], n))  # t + x >= c
    h.addRow(-inf, eps, n, np.arange(tc, tc + n, dtype=np.int32), np.ones(n))
    out = np.asarray(nn.output_cols, np.int32)
    h.changeColsCost(2, out[[tgt, true]], np.array([1.0, -1.0]))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    sol = milp.solve(h, time_limit=time_limit, solver=solver)
    dt = time.perf_counter() - t0
    fwd = float("nan")
    if sol.has_solution:
        y = net.forward(sol.inputs[nn.name])
        fwd = float(y[tgt] - y[true])
    return sol.status, sol.objective, sol.best_bound, fwd, dt, sol.nodes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--only", default="", help="substring of the network names to run")
    ap.add_argument("--solvers", default="bab,highs,gurobi")
    ap.add_argument("--mnist", default="", help="image indices for the optimal adversary")
    ap.add_argument("--eps", default="1,5,10")
    a = ap.parse_args()
    if a.mnist:
        print("image | eps | solver | status | objective | bound | forward pass | seconds | nodes")
        for i in map(int, a.mnist.split(",")):
            for eps in map(float, a.eps.split(",")):
                for solver in a.solvers.split(","):
                    st, obj, bd, fwd, dt, nodes = adversary(i, eps, solver, a.time_limit)
                    print(f"{i} | {eps:g} | {solver} | {st} | {obj:.6g} | {bd:.6g} | {fwd:.6g} | "
                          f"{dt:.1f} | {nodes}", flush=True)
        return
    print("network | sense | solver | status | objective | bound | forward pass | nodes | "
          "median s (of the repeats) | gurobi s / this s")
    for name in NETS:
        if a.only not in name:
            continue
        mlp, net = regressor(name)
        for sense in ("max", "min"):
            solvers = a.solvers.split(",")
            runs = {solver: [] for solver in solvers}
            for _ in range(a.repeat):  # the solvers in turn: a change of load hits them alike
                for solver in solvers:
                    if solver == "gurobi":
                        runs[solver].append(gurobi_solve(mlp, net, sense, a.time_limit))
                    else:
                        runs[solver].append(emlpress_solve(net, sense, solver, a.time_limit))
            rows = {s: (r[-1], float(np.median([x[4] for x in r]))) for s, r in runs.items()}
            ref = rows.get("gurobi", (None, np.nan))[1]
            for solver, (r, t) in rows.items():
                st, obj, bd, fwd, _, nodes = r
                print(f"{name} | {sense} | {solver} | {st} | {obj:.9g} | {bd:.9g} | {fwd:.9g} | "
                      f"{nodes} | {t:.3f} | {ref / t:.2f}x", flush=True)


if __name__ == "__main__":
    main()
