"""The SIR simulator, the NPI combinations and the brute force over schedules."""

import itertools

import numpy as np
import pytest

pytest.importorskip("scipy")

from emlpress.data import sir


def test_fast_integrator_matches_the_reference_to_1e_9():
    assert sir.max_deviation(n=40, seed=3) < 1e-9


def test_the_state_total_is_kept_and_the_epidemic_moves_the_right_way():
    X, b = sir.sample(200, seed=1)
    Y = sir.week(X, b)
    np.testing.assert_allclose(Y.sum(1), X.sum(1), rtol=0, atol=1e-12)
    assert np.all(Y[:, 0] <= X[:, 0] + 1e-15) and np.all(Y[:, 2] >= X[:, 2] - 1e-15)


def test_every_combination_has_the_product_of_its_effects_and_the_sum_of_its_costs():
    choices, beta, cost = sir.combinations()
    assert choices.shape == (32, 5) and len({tuple(c) for c in choices}) == 32
    names = list(sir.NPIS)
    for k, c in enumerate(choices):
        on = [names[j] for j in range(5) if c[j]]
        assert beta[k] == pytest.approx(0.35 * np.prod([sir.NPIS[n][0] for n in on]), rel=1e-15)
        assert cost[k] == sum(sir.NPIS[n][1] for n in on)
        assert k == sum(int(c[j]) << j for j in range(5))  # the first NPI is the lowest bit


def test_brute_force_equals_a_plain_loop_over_every_schedule():
    inst = sir.Instance(weeks=2, budget=7.0)
    _, beta, cost = sir.combinations()
    best, n = -1.0, 0
    for sched in itertools.product(range(32), repeat=2):
        if cost[list(sched)].sum() > inst.budget:
            continue
        n += 1
        best = max(best, sir.simulate(inst, sched)[-1, 0])
    bf = sir.brute_force(inst)
    assert bf.n_schedules == n and bf.best_s == pytest.approx(best, abs=1e-15)
    assert cost[bf.best_schedule].sum() <= inst.budget
    assert sir.simulate(inst, bf.best_schedule)[-1, 0] == pytest.approx(bf.best_s, abs=1e-15)


def test_the_depth_first_search_equals_every_schedule_simulated_alone(monkeypatch):
    """Three weeks, the last two depth-first (FRONTIER = 1), NPIs with equal effects at
    different costs (the dearer one skipped) and costs that are not integers."""
    npis = {"a": (0.75, 1.5), "b": (0.6, 3.0), "c": (0.6, 2.0), "d": (0.9, 0.5)}
    inst = sir.Instance(weeks=3, budget=7.0, npis=npis)
    _, beta, cost = sir.combinations(npis)
    scheds = np.array([s for s in itertools.product(range(16), repeat=3)
                       if cost[list(s)].sum() <= inst.budget])
    X = np.repeat(inst.state[None, :], len(scheds), axis=0)
    for w in range(3):  # every schedule on its own: no shared prefixes, no skipped combination
        X = sir.week(X, beta[scheds[:, w]])
    monkeypatch.setattr(sir, "FRONTIER", 1)
    bf = sir.brute_force(inst)
    assert bf.best_s == pytest.approx(X[:, 0].max(), abs=1e-15)
    assert bf.n_schedules is None  # costs are not integers
    assert bf.n_simulated_weeks < 3 * len(scheds)
    assert cost[bf.best_schedule].sum() <= inst.budget
    assert sir.simulate(inst, bf.best_schedule)[-1, 0] == pytest.approx(bf.best_s, abs=1e-15)


@pytest.mark.parametrize("weeks, budget", [(1, 0.0), (2, 7.0), (3, 9.0)])
def test_schedules_are_counted_as_a_plain_loop_counts_them(weeks, budget):
    inst = sir.Instance(weeks=weeks, budget=budget)
    _, _, cost = sir.combinations()
    n = sum(1 for s in itertools.product(range(32), repeat=weeks) if cost[list(s)].sum() <= budget)
    assert sir.count_schedules(inst) == n
    assert sir.count_schedules(inst, simulated=True) == sir.brute_force(inst).n_simulated_weeks


def test_the_course_instance():
    """3 weeks, budget 20: 22,364 schedules within the budget; the true optimum 0.95547."""
    bf = sir.brute_force(sir.Instance())
    assert bf.n_schedules == 22_364
    assert bf.best_s == pytest.approx(0.95547, abs=5e-6)
    ref = sir.simulate(sir.Instance(), bf.best_schedule, reference=True)[-1, 0]
    assert abs(ref - bf.best_s) < 1e-9


@pytest.mark.parametrize("kw, match", [
    ({"budget": -1.0}, "budget = -1.0"), ({"weeks": 0}, "weeks = 0: the horizon must be at least 1"),
    ({"s0": -0.1}, "s0 = -0.1"), ({"s0": 0.0, "i0": 0.0, "r0": 0.0}, "must be positive"),
    ({"npis": {"x": (1.5, 1.0)}}, "NPI 'x': effect 1.5 must lie in \\(0, 1\\]"),
    ({"npis": {"x": (0.0, 1.0)}}, "NPI 'x': effect 0.0"),
])
def test_bad_instances_name_the_value(kw, match):
    with pytest.raises(ValueError, match=match):
        sir.Instance(**kw)


def test_local_search_climbs_and_never_passes_the_brute_force():
    inst = sir.Instance(weeks=4, budget=26.0)
    bf = sir.brute_force(inst)
    _, _, cost = sir.combinations()
    for start in ([0, 0, 0, 0], [31, 31, 0, 0], [5, 9, 17, 3]):
        sched, s, rounds = sir.local_search(inst, start)
        assert cost[sched].sum() <= inst.budget
        assert s == pytest.approx(sir.simulate(inst, sched)[-1, 0], abs=1e-15)
        assert s >= sir.simulate(inst, start)[-1, 0]
        assert s <= bf.best_s + 1e-15
        # no schedule one or two weeks away is better (what it stops at)
        for a, b in itertools.combinations(range(4), 2):
            for ka, kb in itertools.product(range(32), repeat=2):
                c = sched.copy()
                c[a], c[b] = ka, kb
                if cost[c].sum() <= inst.budget:
                    assert sir.simulate(inst, c)[-1, 0] <= s + 1e-15
    with pytest.raises(ValueError, match="the schedule has 2 weeks; the instance 3"):
        sir.local_search(sir.Instance(), [0, 0])
