"""Partition-based formulations (Tsay et al. 2021) against big-M, same run, same bounds.

Run: python -m pytest benches/suites/bench_partition.py -s (from the repository's root);
``-k small`` or ``-k mnist`` for one family.

Each row is encode + solve with HiGHS through ``milp.solve(..., solver="highs", start=None)``
(60 s limit, the default gaps),
for ``add_network(..., formulation="bigm")`` and ``formulation="partition"`` with N groups
(``hull``: one group per input, the convex hull of every unit over its inputs' box). Both
formulations get the same CROWN bounds of the inputs' box.

- small: maximise / minimise the output of scikit-learn MLPRegressors over their box (the
  networks of issue 34: Friedman #1 10-16-16-1 and 5-12-12-12-1, MATLAB's peaks 2-24-24-1;
  seeded, cached in benches/.cache).
- mnist: the optimal adversary of Tsay et al. on Serra's 784-100-100-10: maximise
  logit[target] - logit[true] over ``[0,1]^784`` with ``||x - image||_1 <= 5`` (columns
  ``d >= |x - image|``, ``sum d <= 5``), the image given as a MIP start to every
  formulation (the image is feasible; HiGHS alone finds no point in 60 s).

Figures: status, objective (verified), HiGHS' bound, nodes, the LP relaxation's optimum
(``lp``: the root strength of the formulation, after the cuts where there are) and the
model's size; ``bigm+anderson`` rows: the cuts added, their rounds and seconds.
"""

import time
import warnings

import highspy
import numpy as np
import pytest
import scipy.sparse as sp

from conftest import CACHE, label, shared
from emlpress import Network
from emlpress.milp import add_network, solve
from emlpress.milp.cuts import add_anderson_cuts
from emlpress.milp.partition import relaxation_objective

TIME_LIMIT = 60.0
#: (data, hidden layers) of the small regressors
SMALL = {"friedman_10-16-16-1": ("friedman10", (16, 16)),
         "friedman_5-12-12-12-1": ("friedman5", (12, 12, 12)),
         "peaks_2-24-24-1": ("peaks", (24, 24))}
#: formulation rows: (name, formulation, groups); "hull" gets one group per input;
#: "bigm+anderson": big-M with Anderson et al.'s cuts separated at the root (milp/cuts.py)
FORMS = [("bigm", "bigm", None), ("partition-2", "partition", 2), ("partition-4", "partition", 4),
         ("partition-8", "partition", 8), ("partition-hull", "partition", 10**6),
         ("bigm+anderson", "bigm", None)]
MNIST_FORMS = FORMS[:4] + FORMS[5:]
IMAGES, EPS = (0, 1, 2), 5.0


def small_network(name: str) -> Network:
    """A seeded MLPRegressor (ReLU, Adam, 500 epochs at most) on 4,000 samples of its data,
    as a Network on the data's box; cached."""
    path = CACHE / f"partition_{name}.npz"
    if path.exists():
        return Network.load(path)
    from sklearn.datasets import make_friedman1
    from sklearn.neural_network import MLPRegressor

    from emlpress.io import from_sklearn

    data, hidden = SMALL[name]
    if data == "peaks":
        X = np.random.default_rng(2).uniform(-3, 3, (4000, 2))
        a, b = X[:, 0], X[:, 1]
        y = (3 * (1 - a) ** 2 * np.exp(-a ** 2 - (b + 1) ** 2) - 10 * (a / 5 - a ** 3 - b ** 5)
             * np.exp(-a ** 2 - b ** 2) - np.exp(-(a + 1) ** 2 - b ** 2) / 3)
        lo, hi = np.full(2, -3.0), np.full(2, 3.0)
    else:
        n = 10 if data == "friedman10" else 5
        X, y = make_friedman1(4000, n_features=n, noise=0.5, random_state=0 if n == 10 else 1)
        lo, hi = np.zeros(n), np.ones(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a trained-looking network is enough
        model = MLPRegressor(hidden_layer_sizes=hidden, max_iter=500, random_state=0).fit(X, y)
    net = from_sklearn(model).with_domain(lo, hi)
    CACHE.mkdir(exist_ok=True)
    net.save(path)
    return net


def _run(benchmark, build, formulation, groups, cuts=False, start=None):
    """Encode (``build(h, formulation, groups)`` -> handle), separate the cuts (``cuts``)
    and solve, timed together (the cuts' time counts in the limit); the figures recorded on
    the benchmark."""
    out = {}

    def once():
        t0 = time.perf_counter()
        h = highspy.Highs()
        h.silent()
        nn = build(h, formulation, groups)
        if cuts:
            out["cuts"] = add_anderson_cuts(h, time_limit=TIME_LIMIT / 2)
        if start is not None:  # the MIP start on the final model, after the cuts
            start(h, nn)
        # HiGHS on each formulation (solver="auto" would answer big-M's one-network models by
        # milp.bnb), no automatic MIP start (the MNIST rows give the image themselves)
        sol = solve(h, time_limit=max(1.0, TIME_LIMIT - (time.perf_counter() - t0)),
                    solver="highs", start=None)
        out.update(h=h, nn=nn, sol=sol, seconds=time.perf_counter() - t0)

    benchmark.pedantic(once, rounds=1, iterations=1)
    sol, nn = out["sol"], out["nn"]
    assert sol.has_solution and sol.verify_diff[nn.name] <= 1e-6 * max(1.0, abs(sol.objective))
    benchmark.extra_info.update(
        status=sol.status, objective=sol.objective, bound=sol.best_bound, nodes=sol.nodes,
        encode_s=nn.encode_s, solve_s=sol.solve_s, lp=relaxation_objective(out["h"]),
        variables=nn.n_vars, rows=nn.n_constraints, binaries=nn.n_binaries,
        limit=sol.status == "TIME_LIMIT")
    if cuts:
        benchmark.extra_info.update(cuts=out["cuts"]["cuts"], cut_rounds=out["cuts"]["rounds"],
                                    cut_s=out["cuts"]["seconds"])
    return sol


@pytest.mark.parametrize("form", [f[0] for f in FORMS])
@pytest.mark.parametrize("sense", ["max", "min"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_small(benchmark, name, sense, form):
    net = small_network(name)
    _, formulation, groups = next(f for f in FORMS if f[0] == form)
    label(benchmark, f"partition {name} {sense}", form, against=["bigm"] if form != "bigm" else None)

    def build(h, formulation, groups):
        x = h.addVariables(net.n_in, lb=net.lo.tolist(), ub=net.hi.tolist())
        nn = add_network(h, net, x, formulation=formulation, groups=groups)
        h.setObjective(nn.outputs[0], sense=highspy.ObjSense.kMaximize if sense == "max"
                       else highspy.ObjSense.kMinimize)
        return nn

    _run(benchmark, build, formulation, groups, cuts=form.endswith("anderson"))


def adversary_network(net: Network, true: int, target: int) -> Network:
    """``net`` with its last layer replaced by logit[target] - logit[true] (one output)."""
    W, b = list(net.weights), list(net.biases)
    W[-1] = (W[-1][target] - W[-1][true])[None, :]
    b[-1] = np.array([b[-1][target] - b[-1][true]])
    return Network(W, b, net.lo, net.hi)


@pytest.mark.parametrize("form", [f[0] for f in MNIST_FORMS])
@pytest.mark.parametrize("image", IMAGES)
def test_mnist(benchmark, image, form):
    net = Network.load(shared("mnist", "serra2021_mnist_784-100-100-10.npz"))
    data = np.load(shared("mnist", "mnist_test_images_20.npz"))
    x0 = np.asarray(data["images"][image], float).reshape(-1)
    true, target = (int(v) for v in data["labels"][image])
    diff = adversary_network(net, true, target)
    _, formulation, groups = next(f for f in MNIST_FORMS if f[0] == form)
    label(benchmark, f"partition mnist image {image} eps {EPS:g}", form,
          against=["bigm"] if form != "bigm" else None)
    n = x0.size

    def build(h, formulation, groups):
        x = h.addVariables(n, lb=np.maximum(0.0, x0 - EPS).tolist(), ub=np.minimum(1.0, x0 + EPS).tolist())
        h.addVariables(n, lb=[0.0] * n, ub=[EPS] * n)  # d, columns n..2n-1
        # d - x >= -x0, d + x >= x0, sum d <= eps: one bulk add
        I = sp.identity(n, format="csr")
        A = sp.vstack([sp.hstack([-I, I]), sp.hstack([I, I]),
                       sp.hstack([sp.csr_matrix((1, n)), sp.csr_matrix(np.ones((1, n)))])]).tocsr()
        lo = np.concatenate([-x0, x0, [-np.inf]])
        hi = np.concatenate([np.full(2 * n, np.inf), [EPS]])
        h.addRows(A.shape[0], lo, hi, A.nnz, A.indptr[:-1].astype(np.int32),
                  A.indices.astype(np.int32), A.data)
        nn = add_network(h, diff, list(range(n)), formulation=formulation, groups=groups)
        h.setObjective(nn.outputs[0], sense=highspy.ObjSense.kMaximize)
        return nn

    def start(h, nn):
        cols, vals = nn.start_values(x0)  # the image: feasible, d = 0
        cols = np.concatenate([cols, np.arange(n, 2 * n, dtype=np.int32)])
        vals = np.concatenate([vals, np.zeros(n)])
        h.setSolution(int(cols.size), cols, vals)

    sol = _run(benchmark, build, formulation, groups, cuts=form.endswith("anderson"), start=start)
    benchmark.extra_info["clean"] = float(diff.forward(x0[None])[0, 0])
    assert sol.objective >= benchmark.extra_info["clean"] - 1e-6  # never worse than the image
