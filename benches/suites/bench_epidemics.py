"""Epidemics planning: the brute force over NPI schedules, and the planning MILP of every
bounding on the trained one-week SIR networks (the run's own training, cached).

Run: emlpress bench --only epidemics (or: python -m pytest benches/suites/bench_epidemics.py -s)

The MILP's time limit is TIME_LIMIT; each plan is solved once (pedantic, one round) and its
status, gap, binaries, predicted and simulated S go to extra_info and are printed. The
brute force's optimum is checked against the reference integrator.
"""

import itertools

import numpy as np
import pytest

from conftest import label, quick
from emlpress.data import sir
from emlpress.pipelines import epidemics as E
from tools.trained import sir_network

TIME_LIMIT = 60.0


@quick
def test_brute_force_3_weeks(benchmark):
    label(benchmark, "epidemics brute force 3 weeks", "emlpress sir.brute_force")
    inst = sir.Instance()
    sir.brute_force(inst)  # compiles the kernels
    bf = benchmark(sir.brute_force, inst)
    assert bf.n_schedules == 22_364
    ref = sir.simulate(inst, bf.best_schedule, reference=True)[-1, 0]
    assert abs(ref - bf.best_s) < 1e-9
    benchmark.extra_info.update(best_s=bf.best_s, simulated_weeks=bf.n_simulated_weeks)


@quick
def test_brute_force_3_weeks_plain_numpy_rk4(benchmark):
    """The peer: every in-budget schedule's three weeks, vectorised over schedules (numpy
    RK4, the same steps), no shared prefixes."""
    label(benchmark, "epidemics brute force 3 weeks", "plain numpy RK4", peer=True)
    inst = sir.Instance()
    _, beta, cost = sir.combinations()
    scheds = np.array([s for s in itertools.product(range(32), repeat=3) if cost[list(s)].sum() <= 20])
    h = sir.WEEK / sir.SUBSTEPS

    def run():
        S = np.full(len(scheds), inst.s0)
        I = np.full(len(scheds), inst.i0)
        R = np.full(len(scheds), inst.r0)
        N = S + I + R
        g = sir.GAMMA
        for w in range(3):
            b = beta[scheds[:, w]]
            for _ in range(sir.SUBSTEPS):
                f1 = b * S * I / N
                k1s, k1i = -f1, f1 - g * I
                s2, i2 = S + 0.5 * h * k1s, I + 0.5 * h * k1i
                f2 = b * s2 * i2 / N
                k2s, k2i = -f2, f2 - g * i2
                s3, i3 = S + 0.5 * h * k2s, I + 0.5 * h * k2i
                f3 = b * s3 * i3 / N
                k3s, k3i = -f3, f3 - g * i3
                s4, i4 = S + h * k3s, I + h * k3i
                f4 = b * s4 * i4 / N
                k4s, k4i = -f4, f4 - g * i4
                S = S + h / 6 * (k1s + 2 * k2s + 2 * k3s + k4s)
                I = I + h / 6 * (k1i + 2 * k2i + 2 * k3i + k4i)
        return S.max()

    best = benchmark(run)
    assert best == pytest.approx(sir.brute_force(inst).best_s, abs=1e-12)


@pytest.mark.parametrize("weeks", [6])
def test_brute_force_long(benchmark, weeks):
    inst = sir.Instance(weeks=weeks, budget=20 / 3 * weeks)
    label(benchmark, f"epidemics brute force {weeks} weeks", "emlpress sir.brute_force")
    sir.brute_force(sir.Instance())
    bf = benchmark.pedantic(sir.brute_force, args=(inst,), rounds=1, iterations=1)
    ref = sir.simulate(inst, bf.best_schedule, reference=True)[-1, 0]
    assert abs(ref - bf.best_s) < 1e-9
    benchmark.extra_info.update(best_s=bf.best_s, simulated_weeks=bf.n_simulated_weeks,
                                schedules=bf.n_schedules)
    print(f"\n{weeks} weeks: {bf.n_schedules:,} schedules, {bf.n_simulated_weeks:,} weeks "
          f"simulated, optimum {bf.best_s:.6f} {bf.best_schedule}")


CASES = [(t, 3, b) for t in ("8-8-8-8", "16-16", "16x16", "64x8")
         for b in ("reachable", "chained+lossless", "chained", "single-box")]
CASES += [(t, w, b) for t in ("8", "8-8-8-8") for w in (6, 10) for b in ("reachable", "chained+lossless")]
QUICK_PLANS = {("8-8-8-8", 3, "reachable")}


@pytest.mark.parametrize("topology, weeks, bounding", [
    pytest.param(*c, marks=[quick] if c in QUICK_PLANS else []) for c in CASES])
def test_plan(benchmark, topology, weeks, bounding):
    label(benchmark, f"epidemics plan {topology} {weeks} weeks", bounding)
    net = sir_network(topology)
    inst = sir.Instance(weeks=weeks, budget=20 / 3 * weeks)

    def run():
        try:
            return E.plan(inst, net, time_limit=TIME_LIMIT, bounding=bounding)
        except ValueError as e:  # single-box: the outputs leave the training box
            return str(e)

    p = benchmark.pedantic(run, rounds=1, iterations=1)
    if isinstance(p, str):
        benchmark.extra_info.update(status="NOT_APPLICABLE")
        print(f"\n{topology} {weeks}w {bounding}: not applicable ({p[:80]})")
        return
    bins = sum(hd.n_binaries for hd in p.handles)
    info = dict(status=p.status, solve_s=p.solution.solve_s, gap=p.solution.gap, binaries=bins,
                predicted_S=p.predicted_s, simulated_S=p.simulated_s,
                start_S=p.search[1] if p.search else None,
                start_exhaustive=bool(p.search[2]) if p.search else None)
    benchmark.extra_info.update(info)
    print(f"\n{topology} {weeks}w {bounding}: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    if p.schedule is not None:  # the plan, measured
        sim = sir.simulate(inst, p.schedule, reference=True)[-1, 0]
        assert sim == pytest.approx(p.simulated_s, abs=1e-12)


# --- the planning loop (issue 38): oracle calls, wall time and gap to the optimum per plan,
# against the open loop (one MILP plan, simulated) and random search with as many simulations

LOOP_CASES = [(t, w) for t in ("8", "8-8-8-8", "16-16") for w in (3, 6)]
_TRUTH: dict = {}


def _truth(weeks):
    if weeks not in _TRUTH:
        _TRUTH[weeks] = sir.brute_force(sir.Instance(weeks=weeks, budget=20 / 3 * weeks))
    return _TRUTH[weeks]


@pytest.mark.parametrize("topology, weeks", [pytest.param(*c, marks=[quick] if c == ("8", 3) else [])
                                             for c in LOOP_CASES])
def test_loop(benchmark, topology, weeks):
    """The loop (emlpress.eml) from the trained network, at most 20 plan simulations, then the
    measured local search from its best plan (at most 30 more); the open loop's plan is its
    first answer; random search gets as many simulations (plans, local search and
    calibration), seeded."""
    from emlpress.pipelines.epidemics import improve as I

    label(benchmark, f"epidemics loop {topology} {weeks} weeks", "emlpress.eml loop")
    net = sir_network(topology)
    c = E.Config()
    Xtr, Ytr, _, _ = sir.dataset(c.n_train, c.n_test, seed=c.seed)
    inst = sir.Instance(weeks=weeks, budget=20 / 3 * weeks)
    truth = _truth(weeks)
    out = benchmark.pedantic(lambda: I.improve(inst, net, Xtr, Ytr, bounding="reachable",
                                               oracle_calls=c.oracle_calls, time_limit=TIME_LIMIT,
                                               polish_calls=c.polish_calls),
                             rounds=1, iterations=1)
    r = out.result
    first = next(a for a in r.answers if a.measured)
    sims = out.oracle_calls + out.calibration_simulations
    rand = I.random_schedules(inst, sims, seed=1)
    rand_s = max(sir.simulate(inst, s, reference=True)[-1, 0] for s in rand)
    gap = lambda s: (truth.best_s - s) / truth.best_s  # noqa: E731
    order = [a.config for a in r.answers] + [s for s, _ in out.polish.tried]
    best, meas = out.best
    info = dict(oracle_calls=out.oracle_calls, loop_calls=r.oracle_calls, polish_calls=out.polish.calls,
                calibration=out.calibration_simulations, calls_to_best=1 + order.index(tuple(best)),
                refits=out.refits, stop=r.stop[:60], polish_stop=out.polish.stop[:40], proven=r.proven,
                gap=gap(meas.objective), loop_gap=gap(r.best.objective), open_loop_gap=gap(first.objective),
                random_gap=gap(rand_s), seconds=out.seconds, brute_force_weeks=truth.n_simulated_weeks,
                loop_weeks=sims * weeks)
    benchmark.extra_info.update(info)
    print(f"\n{topology} {weeks}w loop: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    assert meas.objective <= truth.best_s + 1e-9  # no plan beats the brute force
    assert meas.objective == sir.simulate(inst, best, reference=True)[-1, 0]
