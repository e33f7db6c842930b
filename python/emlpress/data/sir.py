"""SIR epidemics with non-pharmaceutical interventions (NPIs): simulation, training data and
the brute force over weekly NPI schedules (the epidemics pipeline's ground truth).

Model: dS = -beta S I / N, dI = beta S I / N - gamma I, dR = gamma I, N = S + I + R,
gamma = 1/14, integrated over one week (7 days) per step. The reference integrator is
``scipy.integrate.solve_ivp`` (DOP853, rtol = atol = 1e-12); the fast one is a fixed-step RK4
in numba (``SUBSTEPS`` steps per week) that :func:`max_deviation` checks against it.

NPIs (effect on beta, cost per week): masks-indoor 0.75/1, masks-outdoor 0.9/1, dad 0.7/3,
bar-rest 0.6/3, transport 0.6/4; a week's beta is ``BETA0 = 0.35`` times the product of the
chosen effects, one of 32 combinations.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["GAMMA", "WEEK", "BETA0", "NPIS", "SUBSTEPS", "Instance", "combinations", "week",
           "week_reference", "simulate", "max_deviation", "sample", "dataset", "brute_force",
           "BruteForce"]

GAMMA = 1.0 / 14.0
WEEK = 7.0
BETA0 = 0.35
#: name -> (effect on beta, cost per week)
NPIS = {"masks-indoor": (0.75, 1.0), "masks-outdoor": (0.9, 1.0), "dad": (0.7, 3.0),
        "bar-rest": (0.6, 3.0), "transport": (0.6, 4.0)}
#: RK4 steps per week of the fast integrator (max_deviation against the reference: 3.4e-10 on
#: 30 seeded points of the training box; the tests ask for 1e-9)
SUBSTEPS = 56


def _check_npis(npis: dict) -> None:
    for name, (eff, cost) in npis.items():
        if not (0.0 < eff <= 1.0):
            raise ValueError(f"NPI {name!r}: effect {eff!r} must lie in (0, 1] (it multiplies beta)")
        if not (cost >= 0.0 and math.isfinite(cost)):
            raise ValueError(f"NPI {name!r}: cost {cost!r} must be a finite number >= 0")


def combinations(npis: dict = NPIS, beta0: float = BETA0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All 2^k NPI combinations of a week: (choices (2^k, k) of 0/1, beta of each, cost of
    each), in binary order (the first NPI is the lowest bit)."""
    _check_npis(npis)
    eff = np.array([e for e, _ in npis.values()])
    cost = np.array([c for _, c in npis.values()])
    k = len(npis)
    choices = np.array(list(itertools.product([0, 1], repeat=k)))[:, ::-1]
    beta = beta0 * np.prod(np.where(choices == 1, eff, 1.0), axis=1)
    return choices, beta, choices @ cost


def _rhs(y, beta, gamma):
    S, I, R = y
    N = S + I + R
    inf = beta * S * I / N
    return np.array([-inf, inf - gamma * I, gamma * I])


def week_reference(state, beta: float, gamma: float = GAMMA, days: float = WEEK) -> np.ndarray:
    """One week by the reference integrator (scipy's DOP853 at rtol = atol = 1e-12)."""
    from scipy.integrate import solve_ivp

    sol = solve_ivp(lambda t, y: _rhs(y, beta, gamma), (0.0, days), np.asarray(state, float),
                    method="DOP853", rtol=1e-12, atol=1e-12)
    return sol.y[:, -1]


def _numba():
    import numba

    @numba.njit(cache=True, fastmath=False)
    def weeks(S, I, R, beta, gamma, days, steps):
        n = S.size
        outS, outI, outR = np.empty(n), np.empty(n), np.empty(n)
        h = days / steps
        for j in range(n):
            s, i, r, b = S[j], I[j], R[j], beta[j]
            N = s + i + r
            for _ in range(steps):
                f1 = b * s * i / N
                k1s, k1i = -f1, f1 - gamma * i
                s2, i2 = s + 0.5 * h * k1s, i + 0.5 * h * k1i
                f2 = b * s2 * i2 / N
                k2s, k2i = -f2, f2 - gamma * i2
                s3, i3 = s + 0.5 * h * k2s, i + 0.5 * h * k2i
                f3 = b * s3 * i3 / N
                k3s, k3i = -f3, f3 - gamma * i3
                s4, i4 = s + h * k3s, i + h * k3i
                f4 = b * s4 * i4 / N
                k4s, k4i = -f4, f4 - gamma * i4
                s += h / 6.0 * (k1s + 2 * k2s + 2 * k3s + k4s)
                i += h / 6.0 * (k1i + 2 * k2i + 2 * k3i + k4i)
            outS[j], outI[j] = s, i
            outR[j] = N - s - i  # N is invariant: dR = -(dS + dI)
        return outS, outI, outR

    return weeks


_WEEKS = None


def week(states: np.ndarray, beta, gamma: float = GAMMA, days: float = WEEK,
         substeps: int = SUBSTEPS) -> np.ndarray:
    """One week from each row of ``states`` (n, 3) with its ``beta`` (scalar or (n,)): the
    fast RK4 (numba)."""
    global _WEEKS
    if _WEEKS is None:
        _WEEKS = _numba()
    X = np.atleast_2d(np.asarray(states, float))
    b = np.broadcast_to(np.asarray(beta, float), (X.shape[0],)).copy()
    S, I, R = _WEEKS(X[:, 0].copy(), X[:, 1].copy(), X[:, 2].copy(), b, float(gamma), float(days),
                     int(substeps))
    return np.column_stack([S, I, R])


@dataclass
class Instance:
    """A planning instance: initial state, weeks, budget over the horizon, NPIs."""

    s0: float = 0.99
    i0: float = 0.01
    r0: float = 0.0
    weeks: int = 3
    budget: float = 20.0
    npis: dict = None
    beta0: float = BETA0

    def __post_init__(self):
        if self.npis is None:
            self.npis = dict(NPIS)
        state = np.array([self.s0, self.i0, self.r0], float)
        names = ("s0", "i0", "r0")
        for n, v in zip(names, state):
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"initial state {n} = {float(v)!r} must be a finite number >= 0")
        if not state.sum() > 0:
            raise ValueError(f"initial state s0 + i0 + r0 = {float(state.sum())!r} must be positive")
        if isinstance(self.weeks, bool) or int(self.weeks) != self.weeks or self.weeks < 1:
            raise ValueError(f"weeks = {self.weeks!r}: the horizon must be at least 1 week")
        if not (math.isfinite(self.budget) and self.budget >= 0):
            raise ValueError(f"budget = {self.budget!r} must be a finite number >= 0")
        if not (self.beta0 > 0 and math.isfinite(self.beta0)):
            raise ValueError(f"beta0 = {self.beta0!r} must be a finite number > 0")
        _check_npis(self.npis)

    @property
    def state(self) -> np.ndarray:
        return np.array([self.s0, self.i0, self.r0], float)


def simulate(instance: Instance, schedule, reference: bool = False) -> np.ndarray:
    """The (weeks + 1, 3) trajectory of a schedule: per week the index of its NPI
    combination (``combinations`` order) or a 0/1 row per NPI."""
    choices, beta, _ = combinations(instance.npis, instance.beta0)
    sched = np.asarray(schedule)
    if sched.ndim == 2:  # 0/1 per NPI: the first NPI is the lowest bit of the index
        sched = (sched.astype(np.int64) << np.arange(sched.shape[1])).sum(1)
    if sched.size != instance.weeks:
        raise ValueError(f"the schedule has {sched.size} weeks; the instance {instance.weeks}")
    traj = [instance.state]
    for c in sched:
        y = week_reference(traj[-1], beta[c]) if reference else week(traj[-1][None, :], beta[c])[0]
        traj.append(np.asarray(y, float))
    return np.array(traj)


def max_deviation(n: int = 50, seed: int = 0, substeps: int = SUBSTEPS) -> float:
    """Largest |fast - reference| after one week over ``n`` seeded points of the training box."""
    X, beta = sample(n, seed)
    fast = week(X, beta, substeps=substeps)
    ref = np.array([week_reference(x, b) for x, b in zip(X, beta)])
    return float(np.max(np.abs(fast - ref)))


def sample(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` states (S, I, R) and betas by a seeded Latin hypercube: S, I, R in [0, 1] divided by
    their sum, beta in [0, 0.4]."""
    from scipy.stats import qmc

    U = qmc.LatinHypercube(d=4, seed=seed).random(n)
    SIR = U[:, :3]
    tot = SIR.sum(1, keepdims=True)
    tot[tot == 0] = 1.0
    return SIR / tot, 0.4 * U[:, 3]


def dataset(n_train: int = 10_000, n_test: int = 2_000, seed: int = 0):
    """(X_train, Y_train, X_test, Y_test): inputs (S, I, R, beta), targets the state a week
    later by the fast integrator (within ``max_deviation`` of the reference)."""
    X, b = sample(n_train + n_test, seed)
    Y = week(X, b)
    Xb = np.column_stack([X, b])
    return Xb[:n_train], Y[:n_train], Xb[n_train:], Y[n_train:]


@dataclass
class BruteForce:
    best_s: float
    best_schedule: np.ndarray  # combination index per week
    n_schedules: int  # within the budget
    n_simulated_weeks: int  # distinct prefixes simulated
    seconds: float


def brute_force(instance: Instance) -> BruteForce:
    """The best schedule (largest S after the last week) over every schedule within the
    budget, by the fast integrator; schedules that share their first weeks share those
    weeks' simulations (one simulation per distinct prefix)."""
    import time

    t0 = time.perf_counter()
    _, beta, cost = combinations(instance.npis, instance.beta0)
    states = instance.state[None, :]
    spent = np.zeros(1)
    prefix = np.zeros((1, 0), np.int64)
    simulated = 0
    for _ in range(instance.weeks):
        # children of every prefix within the budget
        p_idx, c_idx = np.nonzero(spent[:, None] + cost[None, :] <= instance.budget + 1e-9)
        states = week(states[p_idx], beta[c_idx])
        simulated += p_idx.size
        spent = spent[p_idx] + cost[c_idx]
        prefix = np.column_stack([prefix[p_idx], c_idx])
    k = int(np.argmax(states[:, 0]))
    return BruteForce(float(states[k, 0]), prefix[k], int(states.shape[0]), simulated,
                      time.perf_counter() - t0)
