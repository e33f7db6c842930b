"""The problems of the side-by-side solver benchmark (``suites/bench_solve.py``), in one
solver-neutral form, and the checker that judges every solver's answer.

A :class:`Problem` is what every solver is given: columns with bounds and integrality,
linear rows ``row_lo <= A x <= row_hi``, networks (each a :class:`~emlpress.Network` whose
``inputs`` and ``outputs`` are columns: an output column is the network's value, nothing
else sets it), and a linear objective ``c x`` to maximise or minimise. Every output column
has finite bounds that hold for any input of its input columns' box (CROWN over that box):
they cut nothing off, and every peer that needs bounded variables can build the model.

The families (issue 34, point 5):
- ``small``: max and min of the output of small trained networks over their box
  (:func:`small_network`: scikit-learn MLPRegressors trained here, seeded, cached in
  benches/.cache; and the Goldstein-Price ``gp_2-128-128-64-1`` of ``trained.py``).
- ``mnist`` / ``digits``: the optimal adversary (Tsay et al. 2021): maximise ``logit[target]
  - logit[true]`` over ``x`` in ``[0,1]^n`` with ``||x - image||_1 <= eps``. The logit
  difference is folded into the network's last layer (one output: the same function for
  every solver, and highs-ml takes single-output networks only). MNIST: Serra et al.'s
  784-100-100-10 and the 20 shared images with their (true, target) pairs (the pairs of
  Tsay et al.'s repository, in the shared file). digits: a 64-32-32-10 MLPClassifier on
  scikit-learn's ``load_digits`` (pixels / 16), test images of a seeded split, target
  ``(true + 1) mod 10``.
- ``tpc``: the transprecision bit-selection MILP of ``pipelines.tpc.model.optimize``
  (integer bits per program variable, a one-hot hardware choice, an error network with
  ``-log10 error >= 2`` and a time network with ``time <= 100``, minimise the total bits),
  its two 12-15 surrogates trained here on the shared data (:func:`tpc_networks`).
- ``epidemics``: the NPI planning MILP of ``emlpress.pipelines.epidemics.plan`` (one-hot
  choice of the week's NPI combination, the budget row, the trained one-week SIR network
  chained week after week, maximise the last week's S), written out here.

:func:`evaluate` recomputes an answer from its decision columns by forward passes (networks
in order, so that a chained network sees the recomputed state); :func:`judge` gives each
solver's verdict against its own point and against every other solver's verified point.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from emlpress import Network, bounds

CACHE = Path(__file__).resolve().parents[1] / ".cache"  # benches/.cache, beside conftest.py's
MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"

#: relative and absolute MIP gaps given to every solver
GAP, ABS_GAP = 1e-4, 1e-6
#: a row, bound or integrality violation above this (relative to max(1, |side|)) is infeasible
FEAS_TOL = 1e-5


@dataclass
class Block:
    """A network inside a problem: ``outputs = net.forward(inputs)`` (column indices)."""

    net: Network
    inputs: np.ndarray
    outputs: np.ndarray


@dataclass
class Problem:
    """One instance; every solver of the suite builds it from these arrays (shapes: ``n``
    columns, ``m`` rows)."""

    name: str
    family: str
    lb: np.ndarray              # (n,)
    ub: np.ndarray              # (n,)
    integer: np.ndarray         # (n,) bool
    A: sp.csr_matrix            # (m, n)
    row_lo: np.ndarray          # (m,)
    row_hi: np.ndarray          # (m,)
    blocks: list                # [Block], in evaluation order (a block's inputs are earlier columns)
    c: np.ndarray               # (n,) objective
    sense: str                  # "max" | "min"
    note: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.lb)

    @property
    def output_cols(self) -> np.ndarray:
        return np.concatenate([b.outputs for b in self.blocks]) if self.blocks else np.array([], int)


class _Builder:
    """Columns and rows added one group at a time (bounds checked finite where outputs)."""

    def __init__(self):
        self.lb, self.ub, self.int = [], [], []
        self.rows, self.rlo, self.rhi = [], [], []
        self.blocks = []

    def cols(self, lb, ub, integer=False) -> np.ndarray:
        lb, ub = np.atleast_1d(np.asarray(lb, float)), np.atleast_1d(np.asarray(ub, float))
        lb, ub = np.broadcast_arrays(lb, ub)
        first = len(self.lb)
        self.lb += lb.tolist()
        self.ub += ub.tolist()
        self.int += [bool(integer)] * len(lb)
        return np.arange(first, first + len(lb))

    def row(self, coefs: dict, lo=-np.inf, hi=np.inf) -> None:
        self.rows.append(coefs)
        self.rlo.append(float(lo))
        self.rhi.append(float(hi))

    def network(self, net: Network, inputs) -> np.ndarray:
        """Output columns of ``net`` on ``inputs``, bounded by CROWN over the inputs' box."""
        inputs = np.asarray(inputs)
        lo, hi = np.asarray(self.lb)[inputs], np.asarray(self.ub)[inputs]
        b = bounds.crown(net, lo, hi)
        out = self.cols(b.lower[-1], b.upper[-1])
        self.blocks.append(Block(net, inputs, out))
        return out

    def problem(self, name, family, c: dict, sense, note="", **meta) -> Problem:
        n = len(self.lb)
        A = sp.lil_matrix((len(self.rows), n))
        for i, r in enumerate(self.rows):
            for j, v in r.items():
                A[i, j] = v
        cv = np.zeros(n)
        for j, v in c.items():
            cv[j] = v
        return Problem(name, family, np.array(self.lb), np.array(self.ub), np.array(self.int, bool),
                       A.tocsr(), np.array(self.rlo), np.array(self.rhi), self.blocks, cv, sense,
                       note, meta)


# ---- the networks -------------------------------------------------------------------------

#: small trained regressors: name -> (data, hidden layers)
SMALL = {"friedman_10-16-16-1": ("friedman10", (16, 16)),
         "friedman_5-12-12-12-1": ("friedman5", (12, 12, 12)),
         "peaks_2-24-24-1": ("peaks", (24, 24))}


def _regression_data(kind: str):
    """(X, y, lo, hi) of a seeded synthetic regression: scikit-learn's Friedman #1 on
    [0,1]^10 or [0,1]^5, or MATLAB's peaks on [-3,3]^2."""
    from sklearn.datasets import make_friedman1

    if kind == "friedman10":
        X, y = make_friedman1(4000, n_features=10, noise=0.5, random_state=0)
        return X, y, np.zeros(10), np.ones(10)
    if kind == "friedman5":
        X, y = make_friedman1(4000, n_features=5, noise=0.5, random_state=1)
        return X, y, np.zeros(5), np.ones(5)
    if kind == "peaks":
        X = np.random.default_rng(2).uniform(-3, 3, (4000, 2))
        a, b = X[:, 0], X[:, 1]
        y = (3 * (1 - a) ** 2 * np.exp(-a ** 2 - (b + 1) ** 2) - 10 * (a / 5 - a ** 3 - b ** 5)
             * np.exp(-a ** 2 - b ** 2) - np.exp(-(a + 1) ** 2 - b ** 2) / 3)
        return X, y, np.full(2, -3.0), np.full(2, 3.0)
    raise KeyError(kind)


def _mlp_network(model, lo=None, hi=None) -> Network:
    from emlpress.io import from_sklearn

    net = from_sklearn(model)
    return net if lo is None else net.with_domain(lo, hi)


def small_network(name: str) -> Network:
    """A trained small regressor of SMALL (scikit-learn MLPRegressor, ReLU, Adam, seed 0,
    500 epochs at most), or ``gp_*`` from trained.py; cached in benches/.cache."""
    if name.startswith("gp_"):
        from tools.trained import trained

        return trained(name)
    path = CACHE / f"solve_{name}.npz"
    if path.exists():
        return Network.load(path)
    from sklearn.neural_network import MLPRegressor

    data, hidden = SMALL[name]
    X, y, lo, hi = _regression_data(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a trained-looking network is enough
        model = MLPRegressor(hidden_layer_sizes=hidden, max_iter=500, random_state=0).fit(X, y)
    net = _mlp_network(model, lo, hi)
    CACHE.mkdir(exist_ok=True)
    net.save(path)
    return net


def digits():
    """(64-32-32-10 Network of the logits, test images (n, 64) in [0,1], true labels): an
    MLPClassifier trained on a seeded 75% split of load_digits (pixels / 16), cached."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)
    path = CACHE / "solve_digits_64-32-32-10.npz"
    if path.exists():
        return Network.load(path), Xte, yte
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(hidden_layer_sizes=(32, 32), max_iter=300, random_state=0).fit(Xtr, ytr)
    net = _mlp_network(model, np.zeros(64), np.ones(64))
    CACHE.mkdir(exist_ok=True)
    net.save(path)
    return net, Xte, yte


# ---- the problems -------------------------------------------------------------------------


def max_min(name: str, sense: str) -> Problem:
    """Maximise or minimise the (single) output of a small network over its box."""
    net = small_network(name)
    B = _Builder()
    x = B.cols(net.lo, net.hi)
    (y,) = B.network(net, x)
    return B.problem(f"{name} {sense}", "small", {int(y): 1.0}, sense, sizes=list(net.sizes))


def difference_network(net: Network, true: int, target: int) -> Network:
    """``net`` with its last layer replaced by logit[target] - logit[true] (one output)."""
    W, b = list(net.weights), list(net.biases)
    W[-1] = (W[-1][target] - W[-1][true])[None, :]
    b[-1] = np.array([b[-1][target] - b[-1][true]])
    return Network(W, b, net.lo, net.hi)


def adversary(family: str, image: int, eps: float) -> Problem:
    """The optimal adversary of image ``image`` at l1 radius ``eps`` (family "mnist": Serra's
    784-100-100-10 and the shared (true, target) pairs; "digits": the 64-32-32-10 classifier,
    target (true + 1) mod 10). Columns: x (n), d (n) with d >= |x - x0|, sum d <= eps."""
    if family == "mnist":
        net = Network.load(MNIST / "serra2021_mnist_784-100-100-10.npz")
        data = np.load(MNIST / "mnist_test_images_20.npz")
        x0 = np.asarray(data["images"][image], float).reshape(-1)
        true, target = (int(v) for v in data["labels"][image])
    elif family == "digits":
        net, Xte, yte = digits()
        x0, true = Xte[image].astype(float), int(yte[image])
        target = (true + 1) % 10
    else:
        raise KeyError(family)
    return adversary_problem(net, x0, true, target, eps, f"{family} image {image} eps {eps:g}", family)


def adversary_problem(net: Network, x0, true: int, target: int, eps: float, name: str,
                      family: str = "adversary") -> Problem:
    """max logit[target] - logit[true] of ``net`` over x in [0,1]^n, ||x - x0||_1 <= eps."""
    x0 = np.asarray(x0, float)
    n = x0.size
    diff = difference_network(net, true, target)
    B = _Builder()
    # x within the box and the ball's own box, |x_i - x0_i| <= eps
    x = B.cols(np.maximum(0.0, x0 - eps), np.minimum(1.0, x0 + eps))
    d = B.cols(np.zeros(n), np.full(n, float(eps)))
    for i in range(n):
        B.row({int(d[i]): 1.0, int(x[i]): -1.0}, lo=-x0[i])   # d >= x - x0
        B.row({int(d[i]): 1.0, int(x[i]): 1.0}, lo=x0[i])     # d >= x0 - x
    B.row({int(j): 1.0 for j in d}, hi=float(eps))
    (y,) = B.network(diff, x)
    return B.problem(name, family, {int(y): 1.0}, "max", true=true, target=target, x0=x0,
                     clean=float(diff.forward(x0[None])[0, 0]))


def epidemics(topology: str, weeks: int) -> Problem:
    """The planning MILP of ``pipelines.epidemics.plan`` with the cached one-week network of
    ``topology`` (``tools.trained.sir_network``), budget 20/3 per week: per week binary NPIs
    ``a``, a one-hot combination ``c``, beta = sum beta_k c_k; the network maps (S, I, R, beta)
    to next week's (S, I, R); maximise the last S. Each week's state columns are bounded by
    CROWN over the previous week's bounds (chained boxes, sound)."""
    from emlpress.data import sir
    from tools.trained import sir_network

    net = sir_network(topology)
    inst = sir.Instance(weeks=weeks, budget=20 / 3 * weeks)
    choices, beta, _ = sir.combinations(inst.npis, inst.beta0)
    n_c, n_npi = choices.shape
    npi_cost = [c for _, c in inst.npis.values()]
    B = _Builder()
    state = B.cols(inst.state, inst.state)
    spend = {}
    for _ in range(weeks):
        a = B.cols(np.zeros(n_npi), np.ones(n_npi), integer=True)
        c = B.cols(np.zeros(n_c), np.ones(n_c), integer=True)
        b = B.cols(beta.min(), beta.max())
        B.row({int(k): 1.0 for k in c}, 1.0, 1.0)
        for j in range(n_npi):
            B.row({int(a[j]): 1.0, **{int(c[k]): -1.0 for k in range(n_c) if choices[k, j]}}, 0.0, 0.0)
        B.row({int(b[0]): 1.0, **{int(c[k]): -float(beta[k]) for k in range(n_c)}}, 0.0, 0.0)
        spend.update({int(a[j]): float(npi_cost[j]) for j in range(n_npi)})
        state = B.network(net, np.concatenate([state, b]))
    B.row(spend, hi=float(inst.budget))
    return B.problem(f"epidemics {topology} {weeks} weeks", "epidemics", {int(state[0]): 1.0}, "max",
                     weeks=weeks, topology=topology)


def _fold_scaling(net: Network, mean, std, y_mean, y_std, lo, hi) -> Network:
    """``net`` trained on (x - mean) / std with targets (y - y_mean) / y_std, as a network of
    the raw x and y: the scalings folded into the first and last layers (exact affine maps)."""
    W, b = [np.array(w) for w in net.weights], [np.array(v) for v in net.biases]
    b[0] = b[0] - W[0] @ (mean / std)
    W[0] = W[0] / std
    W[-1], b[-1] = W[-1] * y_std, b[-1] * y_std + y_mean
    return Network(W, b, lo, hi)


def tpc_networks(bench: str):
    """(error network, time network, bit range (lo, hi), hardware names): MLPRegressors
    (12, 15), seed 0, on 5,000 seeded rows of the shared data of ``bench`` (all hardware):
    inputs the bits and the hardware one-hot, targets ``-log10 error`` (the data's
    ``neg_log_error``) and ``time``; standardised for training, the scalings folded in. Cached."""
    from emlpress.data import tpc

    data = tpc.load(MNIST.parent / "tpc", bench)
    lo_b, hi_b = data.bit_range()
    nh = len(data.hardware)
    lo, hi = np.concatenate([lo_b, np.zeros(nh)]), np.concatenate([hi_b, np.ones(nh)])
    paths = [CACHE / f"solve_tpc_{bench}_{t}.npz" for t in ("error", "time")]
    if all(p.exists() for p in paths):
        return (*[Network.load(p) for p in paths], (lo_b, hi_b), list(data.hardware))
    from sklearn.neural_network import MLPRegressor

    f = data.frame
    rows = np.random.default_rng(0).permutation(len(f))[:5000]
    X = np.column_stack([f[data.var_cols].to_numpy(float), f[[f"hw_{h}" for h in data.hardware]].to_numpy(float)])[rows]
    mean, std = X.mean(0), np.where(X.std(0) > 0, X.std(0), 1.0)
    nets = []
    for col, path in zip(("neg_log_error", "time"), paths):
        y = f[col].to_numpy(float)[rows]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = MLPRegressor(hidden_layer_sizes=(12, 15), max_iter=500, random_state=0).fit(
                (X - mean) / std, (y - y.mean()) / y.std())
        net = _fold_scaling(_mlp_network(m), mean, std, y.mean(), y.std(), lo, hi)
        CACHE.mkdir(exist_ok=True)
        net.save(path)
        nets.append(net)
    return (*nets, (lo_b, hi_b), list(data.hardware))


def tpc_problem(bench: str) -> Problem:
    """Fewest total bits with predicted -log10 error >= 2 (error <= 0.01) and predicted time
    <= 100 ms, bits integer in the data's range, one hardware."""
    err, tim, (lo_b, hi_b), hw = tpc_networks(bench)
    B = _Builder()
    bits = B.cols(lo_b, hi_b, integer=True)
    onehot = B.cols(np.zeros(len(hw)), np.ones(len(hw)), integer=True)
    B.row({int(j): 1.0 for j in onehot}, 1.0, 1.0)
    x = np.concatenate([bits, onehot])
    (e,) = B.network(err, x)
    (t,) = B.network(tim, x)
    B.row({int(e): 1.0}, lo=2.0)
    B.row({int(t): 1.0}, hi=100.0)
    return B.problem(f"tpc {bench}", "tpc", {int(j): 1.0 for j in bits}, "min", hardware=hw)


# ---- the checks ---------------------------------------------------------------------------


def evaluate(p: Problem, x) -> tuple[float, float]:
    """(objective, violation) of the point ``x`` (n,) with every network output replaced by
    the forward pass of its inputs (integers rounded first): the objective the solver's
    decisions really give, and the largest bound, integrality or row violation there
    (relative to max(1, |side|))."""
    x = np.array(x, float)
    viol = 0.0
    if p.integer.any():
        r = np.round(x[p.integer])
        viol = max(viol, float(np.max(np.abs(r - x[p.integer]), initial=0.0)))
        x[p.integer] = r
    for blk in p.blocks:  # in order: a chained network sees the recomputed state
        x[blk.outputs] = blk.net.forward(x[blk.inputs][None])[0]
    scale = lambda v: np.maximum(1.0, np.abs(np.where(np.isfinite(v), v, 0.0)))  # noqa: E731
    viol = max(viol, float(np.max(np.maximum(p.lb - x, x - p.ub) / scale(np.maximum(np.abs(p.lb), np.abs(p.ub))),
                                  initial=0.0)))
    if p.A.shape[0]:
        ax = p.A @ x
        viol = max(viol, float(np.max((p.row_lo - ax) / scale(p.row_lo), initial=0.0)),
                   float(np.max((ax - p.row_hi) / scale(p.row_hi), initial=0.0)))
    return float(p.c @ x), viol


def tol(a: float, b: float = 0.0) -> float:
    """Two answers of gap GAP/ABS_GAP agree within this (plus float32 weights' rounding)."""
    return 2 * (GAP * max(abs(a), abs(b), 1.0) + ABS_GAP) + 1e-6


@dataclass
class Answer:
    """One solver's answer: its status, reported objective and bound, and (when it returned a
    point) the forward-pass objective and violation at its point from :func:`evaluate`."""

    status: str
    objective: float = float("nan")
    bound: float = float("nan")
    verified: float | None = None
    violation: float | None = None


def checked(p: Problem, r: dict) -> Answer:
    """A solver's result ``r`` (status, objective, bound, x: as ``problem_solvers`` returns
    it) on ``p`` as an :class:`Answer`, its point (if any) recomputed by :func:`evaluate`."""
    verified, violation = evaluate(p, r["x"]) if r["x"] is not None else (None, None)
    return Answer(r["status"], r["objective"], r["bound"], verified, violation)


def judge(answers: dict, sense: str) -> dict:
    """solver -> verdict ("ok", "no solution", "over the licence", ..., or "WRONG: ..."), from
    the solvers' ``answers`` (solver -> :class:`Answer`) of one problem:
    - a point infeasible by more than FEAS_TOL, or whose forward-pass objective differs from
      the reported one, is WRONG;
    - an OPTIMAL objective worse than another solver's verified point by more than the gap
      (``tol``) is WRONG, and so is any reported bound that such a point beats (a dual bound
      that excludes a value the networks take), and an INFEASIBLE verdict beside such a point."""
    sign = 1.0 if sense == "max" else -1.0
    good = {s: a.verified for s, a in answers.items()
            if a.verified is not None and a.violation is not None and a.violation <= FEAS_TOL}
    out = {}
    for s, a in answers.items():
        said = []
        if a.verified is not None:
            if a.violation > FEAS_TOL:
                said.append(f"WRONG: its point violates the model by {a.violation:.3g}")
            elif np.isfinite(a.objective) and abs(a.verified - a.objective) > tol(a.objective, a.verified):
                said.append(f"WRONG: the forward pass at its point gives {a.verified:.8g}, it reports {a.objective:.8g}")
        others = {o: v for o, v in good.items() if o != s}
        if others and a.status.startswith("INFEASIBLE"):
            o = next(iter(others))
            said.append(f"WRONG: {a.status}, but {o}'s point is feasible (forward pass, {others[o]:.8g})")
        elif others:
            best_o = max(others, key=lambda o: sign * others[o])
            best = others[best_o]
            if a.status == "OPTIMAL" and np.isfinite(a.objective) and sign * (best - a.objective) > tol(best, a.objective):
                said.append(f"WRONG optimum {a.objective:.8g}: {best_o} reached {best:.8g} (forward pass)")
            elif np.isfinite(a.bound) and sign * (best - a.bound) > tol(best, a.bound):
                said.append(f"WRONG bound {a.bound:.8g}: {best_o} reached {best:.8g} (forward pass)")
        if said:
            out[s] = "; ".join(said)
        elif a.verified is None:
            out[s] = a.status if a.status in ("over the licence",) or a.status.startswith("refused") else "no solution"
        else:
            out[s] = "ok"
    return out
