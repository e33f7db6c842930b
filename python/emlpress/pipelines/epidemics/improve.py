"""The epidemics planning loop on :func:`emlpress.eml.run_loop`: every plan simulated (the
oracle, :class:`SimulatorOracle`), the week-by-week trajectories of planned schedules learnt
where the surrogate was wrong (:class:`Refit`: a warm-started fine-tune of the network, its
pruned zeros kept; a tree refitted with the rows weighted), each simulated schedule cut off,
then only schedules whose predicted S plus the conformal margin beats the best simulated S
(:class:`PlanProblem`); it stops when the MILP proves no such schedule is left, or at the
oracle budget. :func:`improve` runs it for one model and instance.

A schedule is a tuple of combination indices, one per week (``sir.combinations`` order), the
cheapest combination of its beta (a dearer one with the same beta gives the same weeks).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from emlpress.data import sir
from emlpress.network import Network
from emlpress.pipelines.epidemics.model import plan

#: the oracle calls (plan simulations) one loop may spend by default
ORACLE_CALLS = 20
#: coverage of the conformal margin on the surrogate's error in S after the last week
COVERAGE = 0.9
#: seeded random schedules within the budget, simulated once, on which the margin is computed
#: (with the loop's held-out answers); 19 gives a 90% margin (at least 9 are needed)
CALIBRATION = 19
#: a trajectory week whose one-week prediction is off by more than this (any of S, I, R) is
#: where the surrogate was wrong: the model is refit on the loop's rows
WRONG = 1e-4
#: weight of each loop row in a refit beside one training row (a few rows among 10,000)
LOOP_WEIGHT = 200.0
#: the improvement cut asks for a predicted S above (best simulated S - margin) + STEP
STEP = 1e-7
#: simulations the measured local search after the loop (:func:`polish`) may spend by default
POLISH_CALLS = 30
#: the loop's reachable bounding enumerates a week's inputs while at most this many (then
#: boxes): each plan is a new model's MILP, and the run's 10 million took minutes a plan at
#: 6 weeks
LOOP_REACH_MAX = 200_000


def step_of(model):
    """One week of each row (S, I, R, beta) of X as ``model`` predicts it: (n, 3)."""
    if hasattr(model, "forward"):
        return lambda X: np.asarray(model.forward(X), float)
    return lambda X: np.asarray(model.predict(X), float).reshape(len(X), -1)


def canonical(instance: sir.Instance, schedule) -> tuple:
    """``schedule`` with each week's combination replaced by the cheapest one of the same beta
    (same trajectory, no dearer)."""
    _, beta, cost = sir.combinations(instance.npis, instance.beta0)
    keep = sir.distinct_combinations(instance)[0]
    cheapest = {float(beta[k]): int(k) for k in keep}
    return tuple(cheapest[float(beta[int(c)])] for c in schedule)


class SimulatorOracle:
    """The loop's oracle: ``oracle(schedule)`` simulates the schedule with the SIR simulator
    (the reference integrator, DOP853 at 1e-12, by default) and returns what
    :func:`emlpress.eml.measure` reads: ``feasible`` (its cost within the budget),
    ``objective`` (S after the last week), the state after each week ``S1, I1, R1, ...`` and
    ``cost``. A schedule of the wrong length or an index that is no combination raises
    ValueError (the loop labels that answer unmeasured). ``calls`` counts the simulations."""

    def __init__(self, instance: sir.Instance, reference: bool = True):
        self.instance = instance
        self.reference = reference
        self.calls = 0
        _, self.beta, self.cost = sir.combinations(instance.npis, instance.beta0)

    @property
    def source(self) -> str:
        return "reference SIR (DOP853, 1e-12)" if self.reference else f"SIR RK4 ({sir.SUBSTEPS} steps a week)"

    def __call__(self, schedule) -> dict:
        sched = np.asarray(schedule)
        if sched.shape != (self.instance.weeks,) or not np.issubdtype(sched.dtype, np.integer):
            raise ValueError(f"schedule {tuple(schedule)!r}: give {self.instance.weeks} combination "
                             "indices (one per week)")
        if sched.min() < 0 or sched.max() >= self.beta.size:
            raise ValueError(f"schedule {tuple(schedule)!r}: combination indices lie in 0..{self.beta.size - 1}")
        traj = sir.simulate(self.instance, sched, reference=self.reference)
        self.calls += 1
        cost = float(self.cost[sched].sum())
        values = {f"{x}{w}": float(traj[w, k]) for w in range(1, traj.shape[0]) for k, x in enumerate("SIR")}
        return {"feasible": bool(cost <= self.instance.budget + sir.BUDGET_SLACK),
                "objective": float(traj[-1, 0]), "source": self.source, "cost": cost, **values}


def trajectory(instance: sir.Instance, values: dict) -> np.ndarray:
    """The (weeks + 1, 3) trajectory a :class:`SimulatorOracle` measurement holds."""
    weeks = [[values[f"{x}{w}"] for x in "SIR"] for w in range(1, instance.weeks + 1)]
    return np.vstack([instance.state[None, :], np.array(weeks, float)])


def loop_rows(instance: sir.Instance, observations) -> tuple[np.ndarray, np.ndarray]:
    """The one-week rows (S, I, R, beta) -> next (S, I, R) of every measured schedule's
    trajectory (each schedule once)."""
    _, beta, _ = sir.combinations(instance.npis, instance.beta0)
    X, Y, seen = [], [], set()
    for o in observations:
        if o.config in seen or not o.measurement.measured:
            continue
        seen.add(o.config)
        traj = trajectory(instance, o.measurement.values)
        X.append(np.column_stack([traj[:-1], beta[list(o.config)]]))
        Y.append(traj[1:])
    if not X:
        return np.zeros((0, 4)), np.zeros((0, 3))
    return np.vstack(X), np.vstack(Y)


class PlanProblem:
    """The loop's problem: the planning MILP (:func:`plan`) of the current model, with a
    no-good cut per simulated schedule (every combination of the same beta in its week, so a
    dearer twin is cut too) and, once one is simulated within the budget, the improvement cut
    ``predicted S >= best simulated S - margin + STEP``; its answer as an
    :class:`emlpress.eml.Proposal` (INFEASIBLE with no schedule: the proof)."""

    def __init__(self, instance: sir.Instance, bounding: str, time_limit: float | None):
        self.instance = instance
        self.bounding = bounding
        self.time_limit = time_limit
        _, self.beta, _ = sir.combinations(instance.npis, instance.beta0)

    def rows(self, excluded, floor):
        twins = {float(b): np.flatnonzero(self.beta == b) for b in np.unique(self.beta)}

        def add(h, weeks):
            for config in excluded:  # at least one week differs in beta
                h.addConstr(sum(wk["combination"][int(k)] for wk, c in zip(weeks, config)
                                for k in twins[float(self.beta[c])]) <= len(weeks) - 1)
            if floor is not None:
                h.addConstr(weeks[-1]["state"][0] >= floor)
        return add

    def __call__(self, ctx):
        from emlpress.eml import Proposal

        margin = ctx.margins.get("S", 0.0)
        floor = None if ctx.better_than is None else ctx.better_than - max(margin, 0.0) + STEP
        p = plan(self.instance, ctx.model, time_limit=self.time_limit, simulate=False,
                 bounding=self.bounding, constraints=self.rows(ctx.excluded, floor),
                 start=not ctx.excluded,  # the network's own optimum starts the first MILP only
                 reach_max=LOOP_REACH_MAX)
        info = {"solve_s": p.solution.solve_s if p.solution else float("nan"),
                "gap": p.solution.gap if p.solution else float("nan"),
                "floor_S": float("nan") if floor is None else floor}
        if p.schedule is None:
            return Proposal(None, None, p.status, info=info)
        return Proposal(canonical(self.instance, p.schedule), p.predicted_s, p.status,
                        predicted={"S": p.predicted_s}, info=info)


def chained_s(model, instance: sir.Instance, schedules: np.ndarray) -> np.ndarray:
    """The model's S after the last week of each schedule (rows of ``schedules``)."""
    _, beta, _ = sir.combinations(instance.npis, instance.beta0)
    f = step_of(model)
    X = np.repeat(instance.state[None, :], len(schedules), axis=0)
    for w in range(instance.weeks):
        X = f(np.column_stack([X, beta[schedules[:, w]]]))
    return X[:, 0]


def random_schedules(instance: sir.Instance, n: int, seed: int) -> np.ndarray:
    """``n`` distinct schedules within the budget (cheapest combination of each beta), drawn
    week by week uniformly among the affordable ones (seeded)."""
    keep, _, cost = sir.distinct_combinations(instance)
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    for _ in range(100 * n):
        spent, sched = 0.0, []
        for _ in range(instance.weeks):
            ok = np.flatnonzero(spent + cost <= instance.budget + sir.BUDGET_SLACK)
            j = int(rng.choice(ok))
            spent += cost[j]
            sched.append(int(keep[j]))
        if tuple(sched) not in seen:
            seen.add(tuple(sched))
            out.append(sched)
        if len(out) == n:
            break
    return np.array(out, np.int64).reshape(-1, instance.weeks)


class Residuals:
    """The margin's data: the surrogate's error in S after the last week (simulated minus
    predicted), on ``n`` seeded random schedules within the budget (simulated once, here:
    ``simulations`` counts them; the current model's error), and on every plan the loop
    simulated, as the model that proposed it predicted it (before it learnt that plan's
    weeks: out of sample). The plans carry the optimizer's bias (it picks where the model
    is most optimistic, and its error there differs), which random schedules alone miss: a 6-week linear model
    underestimated its plans by 0.36-0.40 where the random schedules gave a margin of 0.28,
    and the loop "proved" a plan 3.9% below the optimum. ``observations``: the loop's
    measured answers (the :class:`Refit` keeps them current)."""

    def __init__(self, instance: sir.Instance, n: int = CALIBRATION, seed: int = 0,
                 reference: bool = True):
        self.instance = instance
        self.schedules = random_schedules(instance, n, seed)
        self.true_s = np.array([sir.simulate(instance, s, reference=reference)[-1, 0]
                                for s in self.schedules])
        self.simulations = len(self.schedules)
        self.observations = []

    def __call__(self, model, calibration) -> dict:
        r = self.true_s - chained_s(model, self.instance, self.schedules)
        seen = {id(o) for o in self.observations}
        plans = [o.measurement.objective - o.proposal.objective
                 for o in [*self.observations, *(o for o in calibration if id(o) not in seen)]
                 if o.measurement.measured and o.proposal.objective is not None]
        return {"S": np.concatenate([r, plans])}


class Finetune:
    """Warm-started training of networks of one architecture (tf_keras, Adam, MSE with
    per-row weights), one Keras model built and traced once and reused: ``self(net, X, Y,
    weights, epochs)`` trains ``net`` further on raw ``X`` (n, n_in), ``Y`` (n, n_out) and
    returns a new Network (the same domain); a weight that is exactly 0 in the first network
    given (pruned) stays 0 (a fixed mask on the kernel)."""

    def __init__(self, seed: int = 0, learning_rate: float = 1e-4, batch_size: int = 64):
        self.seed, self.learning_rate, self.batch_size = seed, learning_rate, batch_size
        self.model = None

    def _build(self, net: Network):
        from emlpress.io.keras import tf_keras

        keras = tf_keras()
        import tensorflow as tf  # after tf_keras(): TF_USE_LEGACY_KERAS is set before TF loads

        tf.config.experimental.enable_op_determinism()  # a resumed run refits as the first did

        class _Mask(keras.constraints.Constraint):
            def __init__(self, mask):
                self.mask = mask

            def __call__(self, w):
                return w * self.mask

        keras.utils.set_random_seed(self.seed)
        layers = [keras.Input(shape=(net.n_in,))]
        for l, W in enumerate(net.weights):
            mask = (W.T != 0).astype(np.float32)
            layers.append(keras.layers.Dense(W.shape[0], activation=None if l == net.n_layers - 1 else "relu",
                                             kernel_constraint=_Mask(mask) if not mask.all() else None))
        self.model = keras.Sequential(layers)
        self.model.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss="mse")
        self.zeros = [W == 0 for W in net.weights]

    def __call__(self, net: Network, X, Y, weights, epochs: int) -> Network:
        if self.model is None:
            self._build(net)
        for dense, W, b in zip(self.model.layers, net.weights, net.biases):
            dense.set_weights([W.T.astype(np.float32), b.astype(np.float32)])
        self.model.fit(np.asarray(X, np.float32), np.asarray(Y, np.float32),
                       sample_weight=np.asarray(weights, np.float32), epochs=epochs,
                       batch_size=self.batch_size, shuffle=True, verbose=0)
        Ws, bs = [], []
        for dense, zero in zip(self.model.layers, self.zeros):
            k, b = dense.get_weights()
            Ws.append(np.where(zero, 0.0, k.T.astype(np.float64)))  # pruned zeros exactly 0
            bs.append(b.astype(np.float64))
        return Network(Ws, bs, net.lo, net.hi)


class Refit:
    """The loop's refit: where the model is wrong (a week of a measured trajectory predicted off
    by more than ``WRONG``), the model learns the loop's rows (each of weight ``LOOP_WEIGHT``)
    beside its training data: a network by :class:`Finetune` (``epochs``), a tree fitted again
    with the same settings; an int8 model is not refit (``refits`` stays 0). Else the model is
    kept as it is. ``refits`` counts them."""

    def __init__(self, instance: sir.Instance, Xtr, Ytr, epochs: int = 5, seed: int = 0):
        self.instance = instance
        self.Xtr, self.Ytr = np.asarray(Xtr, float), np.asarray(Ytr, float)
        self.epochs, self.seed = epochs, seed
        self.refits = 0
        self.finetune = Finetune(seed)
        self.residuals = None  # a Residuals to tell of the loop's measured plans

    def __call__(self, model, train):
        if self.residuals is not None:  # the plans' errors join the margin's data
            self.residuals.observations = list(train)
        X, Y = loop_rows(self.instance, train)
        if not X.size or not isinstance(model, Network) and not hasattr(model, "tree_"):
            return model
        if not np.max(np.abs(step_of(model)(X) - Y)) > WRONG:
            return model
        Xa, Ya = np.vstack([self.Xtr, X]), np.vstack([self.Ytr, Y])
        w = np.concatenate([np.ones(len(self.Xtr)), np.full(len(X), LOOP_WEIGHT)])
        self.refits += 1
        if isinstance(model, Network):
            return self.finetune(model, Xa, Ya, w, self.epochs)
        from sklearn.base import clone

        return clone(model).fit(Xa, Ya, sample_weight=w)


def neighbours(instance: sir.Instance, schedule) -> list[tuple]:
    """The schedules within the budget one step from ``schedule``: one NPI switched on or off
    in one week, or one NPI moved from one week to another (off in the one, on in the other:
    the same spend, which a plan that spends the whole budget can only change that way); each
    as :func:`canonical` gives it, each once, ``schedule`` itself not."""
    choices, _, cost = sir.combinations(instance.npis, instance.beta0)
    index = {tuple(row): k for k, row in enumerate(choices)}
    rows = choices[[int(k) for k in schedule]]
    own = canonical(instance, schedule)
    out = {}

    def add(r):
        s = [index[tuple(x)] for x in r]
        if cost[s].sum() <= instance.budget + sir.BUDGET_SLACK:
            c = canonical(instance, s)
            if c != own:
                out.setdefault(c, None)

    for w in range(len(rows)):
        for j in range(choices.shape[1]):
            r = rows.copy()
            r[w, j] ^= 1
            add(r)
            for v in range(len(rows)):  # NPI j moved from week w to week v
                if rows[w, j] and not rows[v, j]:
                    r = rows.copy()
                    r[w, j], r[v, j] = 0, 1
                    add(r)
    return list(out)


LOCAL_OPTIMUM = ("local optimum: every neighbour (one NPI changed in one week or moved to another) "
                 "simulated, none better")


@dataclass
class Polished:
    """:func:`polish`'s result: ``best`` (schedule, its measurement) where it ended (the start
    if nothing gained), ``start_s``, ``calls`` (simulations), ``moves`` (improving steps
    taken), ``stop`` (why it ended), ``tried``: (schedule, measurement) in the order
    simulated."""

    best: tuple
    start_s: float
    calls: int
    moves: int
    stop: str
    tried: list


def polish(instance: sir.Instance, model, start, start_measurement, oracle, max_calls: int,
           seen=()) -> Polished:
    """A measured local search from ``start`` (a schedule the oracle measured feasible, as
    ``start_measurement``): its :func:`neighbours` not in ``seen`` (already simulated), ranked
    by ``model``'s predicted S (:func:`chained_s`: the surrogate orders, the simulator decides),
    are simulated one by one until one beats the current S; the search moves there and goes
    on, until no neighbour gains (a local optimum of the simulator, every neighbour simulated)
    or ``max_calls`` simulations are spent. A neighbour the oracle cannot measure is skipped.
    Where the surrogate's last percent is noise, its ranking still puts the few schedules
    worth simulating first."""
    from emlpress.eml import measure

    seen = {tuple(s) for s in seen}
    cur, cur_m = tuple(start), start_measurement
    seen.add(cur)
    calls, moves, tried = 0, 0, []
    while True:
        cand = [c for c in neighbours(instance, cur) if c not in seen]
        if not cand:
            stop = LOCAL_OPTIMUM
            break
        order = np.argsort(-chained_s(model, instance, np.array(cand, np.int64)), kind="stable")
        moved = False
        for k in order:
            if calls >= max_calls:
                break
            c = cand[int(k)]
            m = measure(oracle, c)
            calls += 1
            seen.add(c)
            tried.append((c, m))
            if m.measured and m.feasible and m.objective > cur_m.objective:
                cur, cur_m, moved = c, m, True
                moves += 1
                break
        if not moved:
            stop = f"simulation budget ({max_calls} calls) spent" if calls >= max_calls else LOCAL_OPTIMUM
            break
    return Polished((cur, cur_m), float(start_measurement.objective), calls, moves, stop, tried)


@dataclass
class Improved:
    """:func:`improve`'s result: the loop's (``result``: an :class:`emlpress.eml.LoopResult`),
    the calibration simulations spent on the margins, the refits, the wall time, and the
    measured local search from the loop's best plan (``polish``: a :class:`Polished`, None
    when it did not run)."""

    result: object
    calibration_simulations: int
    refits: int
    seconds: float
    polish: Polished | None = None

    @property
    def best(self):
        """(schedule, measurement) of the best simulated plan within the budget (the loop's,
        or the local search's where it gained), None if none."""
        if self.polish is not None:
            return self.polish.best
        b = self.result.best
        return None if b is None else (b.config, b.measurement)

    @property
    def oracle_calls(self) -> int:
        """Plan simulations: the loop's and the local search's (not the calibration's)."""
        return self.result.oracle_calls + (self.polish.calls if self.polish else 0)


def improve(instance: sir.Instance, model, Xtr, Ytr, *, bounding: str = "reachable",
            oracle_calls: int = ORACLE_CALLS, time_limit: float | None = 60.0,
            coverage: float = COVERAGE, calibration: int = CALIBRATION, refit_epochs: int = 5,
            seed: int = 0, refit: bool = True, polish_calls: int = POLISH_CALLS) -> Improved:
    """The planning loop for ``model`` (a Network, an int8 model or a tree) on ``instance``:
    :func:`emlpress.eml.run_loop` with :class:`PlanProblem`, :class:`SimulatorOracle`,
    :class:`Refit` (on ``Xtr``, ``Ytr``; none with ``refit=False``) and :class:`Residuals`
    (``calibration`` schedules, ``coverage``), maximizing S, at most ``oracle_calls`` plan
    simulations (0: the open loop, one plan, not simulated); then :func:`polish` from the
    loop's best plan, at most ``polish_calls`` more simulations (0: none), ranked by the
    loop's last model."""
    from emlpress.eml import run_loop

    t0 = time.perf_counter()
    res = Residuals(instance, calibration, seed)
    fit = Refit(instance, Xtr, Ytr, refit_epochs, seed) if refit else _Keep()
    fit.residuals = res
    oracle = SimulatorOracle(instance)
    out = run_loop(PlanProblem(instance, bounding, time_limit), oracle, model=model,
                   refit=fit, residuals=res, coverage=coverage, sense="max", max_calls=oracle_calls)
    pol = None
    if polish_calls and out.best is not None:
        pol = polish(instance, out.model, out.best.config, out.best.measurement, oracle, polish_calls,
                     seen=[a.config for a in out.answers])
    return Improved(out, res.simulations, fit.refits, time.perf_counter() - t0, pol)


class _Keep:
    """No refit (``improve(refit=False)``): the model kept, the plans told to the margin."""

    refits = 0
    residuals = None

    def __call__(self, model, train):
        self.residuals.observations = list(train)
        return model
