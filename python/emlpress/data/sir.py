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
           "BruteForce", "count_schedules", "distinct_combinations", "local_search"]

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
    def lanes(S, I, R, N, beta, m, gamma, h, steps):
        """One week (RK4, ``steps`` steps of ``h`` days) of each of the first ``m`` lanes, in
        place: lane k from (S[k], I[k], R[k]) under beta[k]; N is scratch. The lanes are
        independent and side by side in the inner loop, so it vectorises; each lane's
        arithmetic is the same as alone."""
        for k in range(m):
            N[k] = S[k] + I[k] + R[k]
        for _ in range(steps):
            for k in range(m):
                b, s, i, n = beta[k], S[k], I[k], N[k]
                f1 = b * s * i / n
                k1s, k1i = -f1, f1 - gamma * i
                s2, i2 = s + 0.5 * h * k1s, i + 0.5 * h * k1i
                f2 = b * s2 * i2 / n
                k2s, k2i = -f2, f2 - gamma * i2
                s3, i3 = s + 0.5 * h * k2s, i + 0.5 * h * k2i
                f3 = b * s3 * i3 / n
                k3s, k3i = -f3, f3 - gamma * i3
                s4, i4 = s + h * k3s, i + h * k3i
                f4 = b * s4 * i4 / n
                k4s, k4i = -f4, f4 - gamma * i4
                S[k] = s + h / 6.0 * (k1s + 2 * k2s + 2 * k3s + k4s)
                I[k] = i + h / 6.0 * (k1i + 2 * k2i + 2 * k3i + k4i)
        for k in range(m):
            R[k] = N[k] - S[k] - I[k]  # N is invariant: dR = -(dS + dI)

    @numba.njit(cache=True, fastmath=False)
    def weeks(S, I, R, beta, gamma, days, steps):
        S, I, R = S.copy(), I.copy(), R.copy()
        lanes(S, I, R, np.empty(S.size), beta, S.size, gamma, days / steps, steps)
        return S, I, R

    @numba.njit(cache=True, fastmath=False, parallel=True)
    def search(X, spent, beta, cost, budget, depth, gamma, days, steps):
        """Depth-first over the last ``depth`` weeks from every row of ``X`` (already spent
        ``spent``), combinations in ascending cost, a node's children simulated together;
        per row the best S, its tail, and the weeks simulated."""
        n, nb = X.shape[0], beta.size
        h = days / steps
        best = np.full(n, -np.inf)
        tail = np.zeros((n, depth), np.int64)
        count = np.zeros(n, np.int64)
        for p in numba.prange(n):
            S, I, R = np.empty((depth, nb)), np.empty((depth, nb)), np.empty((depth, nb))
            bs, bi, br, bn = np.empty(nb), np.empty(nb), np.empty(nb), np.empty(nb)
            m = np.zeros(depth, np.int64)  # children of the node open at each level
            nxt = np.zeros(depth, np.int64)  # the next child to open
            sp = np.empty(depth)
            path = np.zeros(depth, np.int64)
            level, s0, i0, r0, sp[0] = 0, X[p, 0], X[p, 1], X[p, 2], spent[p]
            while True:
                # expand the node (s0, i0, r0) at ``level``: the combinations within the budget
                c = 0
                while c < nb and sp[level] + cost[c] <= budget:
                    c += 1
                bs[:c], bi[:c], br[:c] = s0, i0, r0
                lanes(bs, bi, br, bn, beta, c, gamma, h, steps)
                count[p] += c
                m[level], nxt[level] = c, 0
                S[level, :c], I[level, :c], R[level, :c] = bs[:c], bi[:c], br[:c]
                if level == depth - 1:  # leaves
                    for k in range(c):
                        if S[level, k] > best[p]:
                            best[p] = S[level, k]
                            tail[p, :level] = path[:level]
                            tail[p, level] = k
                    level -= 1
                while level >= 0 and nxt[level] >= m[level]:  # back to an unopened child
                    level -= 1
                if level < 0:
                    break
                k = nxt[level]
                nxt[level] = k + 1
                path[level] = k
                s0, i0, r0 = S[level, k], I[level, k], R[level, k]
                sp[level + 1] = sp[level] + cost[k]
                level += 1
        return best, tail, count

    return weeks, search


_KERNELS = None


def _kernels():
    global _KERNELS
    if _KERNELS is None:
        _KERNELS = _numba()
    return _KERNELS


def week(states: np.ndarray, beta, gamma: float = GAMMA, days: float = WEEK,
         substeps: int = SUBSTEPS) -> np.ndarray:
    """One week from each row of ``states`` (n, 3) with its ``beta`` (scalar or (n,)): the
    fast RK4 (numba)."""
    X = np.atleast_2d(np.asarray(states, float))
    b = np.broadcast_to(np.asarray(beta, float), (X.shape[0],)).copy()
    S, I, R = _kernels()[0](X[:, 0].copy(), X[:, 1].copy(), X[:, 2].copy(), b, float(gamma),
                            float(days), int(substeps))
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
    n_schedules: int | None  # within the budget, every combination (None: costs not integers)
    n_simulated_weeks: int  # distinct prefixes simulated (duplicates of a cheaper beta skipped)
    seconds: float


#: a spend within the budget plus this counts as within it (the MILP's rows hold to 1e-9)
BUDGET_SLACK = 1e-9


def affordable(spent: np.ndarray, cost: np.ndarray, budget: float) -> tuple[np.ndarray, np.ndarray]:
    """(prefix index, combination index) of every child within ``budget`` of prefixes that
    have spent ``spent``, combinations costing ``cost``."""
    return np.nonzero(spent[:, None] + cost[None, :] <= budget + BUDGET_SLACK)


#: the breadth-first part of the brute force keeps at most this many prefixes in memory; the
#: remaining weeks are searched depth-first (numba, in parallel over those prefixes)
FRONTIER = 100_000


def distinct_combinations(instance: Instance):
    """The cheapest combination of each beta (the first of equal cost), in ascending cost:
    (indices into :func:`combinations`, beta, cost). A dearer combination with the same beta
    gives the same weeks; no schedule's best needs it."""
    _, beta, cost = combinations(instance.npis, instance.beta0)
    keep = [k for k in range(beta.size)
            if not any(beta[j] == beta[k] and (cost[j], j) < (cost[k], k) for j in range(beta.size))]
    keep = np.array(sorted(keep, key=lambda k: (cost[k], k)))
    return keep, beta[keep], cost[keep]


def count_schedules(instance: Instance, simulated: bool = False) -> int | None:
    """Schedules within the budget, every combination counted (dynamic programming over the
    spend); with ``simulated``, the weeks :func:`brute_force` simulates (its distinct
    prefixes). None where the costs are not integers."""
    cost = distinct_combinations(instance)[2] if simulated else combinations(instance.npis, instance.beta0)[2]
    if not np.allclose(cost, np.round(cost)):
        return None
    cost = np.round(cost).astype(int)
    cap = int(np.floor(instance.budget + BUDGET_SLACK))
    ways, total = [1] + [0] * cap, 0
    for _ in range(instance.weeks):
        nxt = [0] * (cap + 1)
        for c in cost:
            for b in range(cap - c, -1, -1):
                nxt[b + c] += ways[b]
        ways = nxt
        total += sum(ways)
    return total if simulated else sum(ways)


def brute_force(instance: Instance) -> BruteForce:
    """The best schedule (largest S after the last week) over every schedule within the
    budget, by the fast integrator. Exact shortcuts only: a combination with the same beta as
    a cheaper one is skipped (its schedules have the same trajectories and cost more), and
    schedules that share their first weeks share those weeks' simulations (one per distinct
    prefix: breadth-first while at most ``FRONTIER`` prefixes, then depth-first in parallel)."""
    import time

    t0 = time.perf_counter()
    keep, kb, kc = distinct_combinations(instance)
    states = instance.state[None, :]
    spent = np.zeros(1)
    prefix = np.zeros((1, 0), np.int64)
    simulated, w = 0, 0
    while w < instance.weeks:
        p_idx, c_idx = affordable(spent, kc, instance.budget)
        if p_idx.size > FRONTIER and w > 0:
            break
        states = week(states[p_idx], kb[c_idx])
        simulated += p_idx.size
        spent = spent[p_idx] + kc[c_idx]
        prefix = np.column_stack([prefix[p_idx], c_idx])
        w += 1
    if w < instance.weeks:  # the remaining weeks depth-first
        best, tail, count = _kernels()[1](np.ascontiguousarray(states), spent, kb, kc,
                                          instance.budget + BUDGET_SLACK, instance.weeks - w,
                                          GAMMA, WEEK, SUBSTEPS)
        simulated += int(count.sum())
        k = int(np.argmax(best))
        best_s, sched = float(best[k]), np.concatenate([prefix[k], tail[k]])
    else:
        k = int(np.argmax(states[:, 0]))
        best_s, sched = float(states[k, 0]), prefix[k]
    return BruteForce(best_s, keep[sched], count_schedules(instance), simulated,
                      time.perf_counter() - t0)


def local_search(instance: Instance, schedule, step=None) -> tuple[np.ndarray, float, int]:
    """Improve ``schedule`` with the true simulator (the fast integrator; or ``step(X)``, a
    week of every row (S, I, R, beta) of X, such as a learned model's): among the schedules
    within the budget that differ from it in one or two weeks, take the one with the largest
    S after the last week, until none gains. Returns (schedule, its S, rounds). A best known
    plan where the brute force cannot run; not a proof of optimality."""
    keep = distinct_combinations(instance)[0]
    _, beta, cost = combinations(instance.npis, instance.beta0)
    sched = np.asarray(schedule, np.int64).copy()
    if sched.size != instance.weeks:
        raise ValueError(f"the schedule has {sched.size} weeks; the instance {instance.weeks}")
    if step is None:
        def step(X):
            return week(X[:, :3], X[:, 3])

    def final_s(C):
        X = np.repeat(instance.state[None, :], len(C), axis=0)
        for w in range(instance.weeks):
            X = np.asarray(step(np.column_stack([X, beta[C[:, w]]])))
        return X[:, 0]

    best = final_s(sched[None, :])[0]
    n, rounds = instance.weeks, 0
    pairs = [(w,) for w in range(n)] + list(itertools.combinations(range(n), 2))
    while True:
        rounds += 1
        cand = []
        for ws in pairs:
            C = np.repeat(sched[None, :], len(keep) ** len(ws), axis=0)
            C[:, list(ws)] = np.array(list(itertools.product(keep, repeat=len(ws))))
            cand.append(C)
        C = np.vstack(cand)
        C = C[cost[C].sum(1) <= instance.budget + BUDGET_SLACK]
        S = final_s(C)
        k = int(np.argmax(S))
        if not S[k] > best:
            return sched, float(best), rounds
        sched, best = C[k], S[k]
