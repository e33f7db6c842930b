"""The NPI planning MILP: its optimum against an enumeration of every schedule through the
same model, on 1-2 week instances, for a network and a tree; infeasible instances."""

import itertools

import numpy as np
import pytest

from emlpress import Network
from emlpress.data import sir
from emlpress.pipelines import epidemics as E
from emlpress.pipelines.epidemics import loop as epi_loop
from emlpress.pipelines.epidemics import model as epi_model
from emlpress.pipelines.epidemics import plan


def _chain(model, instance, sched):
    _, beta, _ = sir.combinations(instance.npis, instance.beta0)
    s = instance.state
    for c in sched:
        x = np.concatenate([s, [beta[c]]])[None, :]
        s = np.asarray(model.forward(x) if isinstance(model, Network) else model.predict(x)).reshape(-1)
    return s


def _enumerate(model, instance):
    _, _, cost = sir.combinations(instance.npis, instance.beta0)
    best = -np.inf
    for sched in itertools.product(range(32), repeat=instance.weeks):
        if cost[list(sched)].sum() <= instance.budget + 1e-9:
            best = max(best, _chain(model, instance, sched)[0])
    return best


def _surrogate_network(seed):
    """A small network like a trained one-week model: S' close to S minus an infection term."""
    rng = np.random.default_rng(seed)
    W0 = rng.normal(size=(8, 4)) * 0.8
    b0 = rng.normal(size=8) * 0.2
    W1 = rng.normal(size=(3, 8)) * 0.2
    W1[0] = -np.abs(W1[0])  # the MILP is checked against this network's own forward pass
    return Network([W0, W1], [b0, np.array([0.9, 0.05, 0.05])])


@pytest.mark.parametrize("weeks,budget,seed", [(1, 4.0, 0), (2, 6.0, 1), (2, 20.0, 2)])
def test_planning_optimum_equals_enumeration_through_the_network(weeks, budget, seed):
    inst = sir.Instance(weeks=weeks, budget=budget)
    net = _surrogate_network(seed)
    p = plan(inst, net, mip_gap=0, simulate=False, start=False)
    assert p.status == "OPTIMAL"
    assert p.predicted_s == pytest.approx(_enumerate(net, inst), abs=1e-7)
    # the plan's own prediction is the network chained along its schedule
    np.testing.assert_allclose(p.predicted[-1], _chain(net, inst, p.schedule), atol=1e-7)
    assert p.cost <= budget


def test_planning_with_a_tree_equals_enumeration_through_predict():
    sk = pytest.importorskip("sklearn.tree")
    Xtr, Ytr, _, _ = sir.dataset(2_000, 10, seed=0)
    tree = sk.DecisionTreeRegressor(max_depth=6, random_state=0).fit(Xtr, Ytr)
    inst = sir.Instance(weeks=2, budget=7.0)
    p = plan(inst, tree, mip_gap=0)
    assert p.status == "OPTIMAL"
    assert p.predicted_s == pytest.approx(_enumerate(tree, inst), abs=1e-9)
    assert p.simulated.shape == (3, 3)  # and the plan is simulated with the true SIR


def test_extra_constraints_can_make_it_infeasible_and_no_plan_is_given():
    inst = sir.Instance(weeks=2, budget=3.0)

    def at_least_transport_both_weeks(h, weeks):  # costs 4 a week: over the budget
        for wk in weeks:
            h.addConstr(wk["npis"][4] >= 1)

    p = plan(inst, _surrogate_network(0), constraints=at_least_transport_both_weeks)
    assert p.status == "INFEASIBLE" and p.schedule is None and "no schedule" in p.message


@pytest.mark.slow
def test_a_tiny_run_writes_its_folder_and_measures_every_plan(tmp_path):
    pytest.importorskip("tf_keras")
    pytest.importorskip("sklearn")
    from emlpress.pipelines import epidemics as E

    cfg = E.Config(topologies=["linear", "8"], epochs=3, n_train=600, n_test=200, horizons=[1, 2],
                   out=tmp_path, time_limit=30, variants=["baseline", "int8"], ptq_table=False,
                   bounding=["reachable", "chained+lossless"], loop=False)
    folder, s = E.run(cfg)
    assert len(s) == 14 and set(s["model"]) == {"linear", "linear+int8", "8", "8+int8", "tree"}
    assert (folder / "run.summary.csv").exists() and (folder / "solver_time.png").exists()
    assert (folder / "trajectories_2w.png").exists() and len(list((folder / "logs").glob("*.json"))) == 14
    solved = s[s["status"] == "OPTIMAL"]
    assert len(solved) == 14
    # compression per week changes the encoding, not the optimum of the surrogate (within the
    # MIP gaps solve() passes: 1e-4 relative, 1e-6 absolute)
    for _, g in solved[solved["model"].isin(["linear", "8"])].groupby(["model", "weeks"]):
        top = g["predicted_S"].abs().max()
        assert g["predicted_S"].max() - g["predicted_S"].min() <= 2 * max(1e-4 * top, 1e-6) + 1e-12
    # the network's own optimum, by enumeration (1-2 weeks: exhaustive), is what the MILP proved
    nets = solved[solved["model"].isin(["linear", "8"])]
    assert np.allclose(nets["predicted_S"], nets["network_optimum_S"], rtol=2e-4, atol=2e-6)
    # one format for every model's size; the int8 model's parameters are the fewest bytes
    size = s.groupby("model")[["size_bytes", "param_bytes"]].first()
    assert (size > 0).all().all()
    assert size.loc["8+int8", "param_bytes"] < size.loc["8", "param_bytes"]
    # every plan is simulated, and no plan beats the brute force's true optimum
    assert (solved["simulated_S"] <= solved["optimum_S"] + 1e-9).all()
    inst = sir.Instance(weeks=2, budget=cfg.budget_per_week * 2)
    for _, r in solved[solved["weeks"] == 2].iterrows():
        sched = [int(v) for v in r["schedule"].split()]
        assert sir.simulate(inst, sched, reference=True)[-1, 0] == pytest.approx(r["simulated_S"], abs=1e-12)


@pytest.mark.parametrize("seed", [1, 2])
def test_lossless_compression_per_week_keeps_the_optimum_and_single_box_only_restricts(seed):
    inst = sir.Instance(weeks=2, budget=8.0)
    net = _surrogate_network(seed)
    best = _enumerate(net, inst)
    chained = plan(inst, net, mip_gap=0, simulate=False, bounding="chained", start=False)
    comp = plan(inst, net, mip_gap=0, simulate=False, bounding="chained+lossless", start=False)
    assert chained.predicted_s == pytest.approx(best, abs=1e-7)
    assert comp.predicted_s == pytest.approx(best, abs=1e-7)
    assert len(comp.removed) == 2 and all(r >= 0 for r in comp.removed)
    try:
        single = plan(inst, net, mip_gap=0, simulate=False, bounding="single-box")
    except ValueError as e:  # the network's outputs left the training box altogether
        assert "single-box bounding cannot apply" in str(e)
    else:  # restricting the weeks' inputs can only lose plans (or all of them)
        assert single.status in ("OPTIMAL", "INFEASIBLE")
        if single.status == "OPTIMAL":
            assert single.predicted_s <= best + 1e-7
    with pytest.raises(ValueError, match="unknown bounding 'box'"):
        plan(inst, net, bounding="box")


@pytest.mark.parametrize("reach_max, start", [(E.REACH_MAX, False), (E.REACH_MAX, True), (40, False)])
def test_reachable_bounding_keeps_the_enumerated_optimum(monkeypatch, reach_max, start):
    """Bounds at every reachable input (all three weeks, or with REACH_MAX = 40 the first
    week only, then the hull of its states and chained boxes) lose no schedule."""
    monkeypatch.setattr(epi_model, "REACH_MAX", reach_max)
    inst = sir.Instance(weeks=3, budget=6.0)
    net = _surrogate_network(3)
    p = plan(inst, net, mip_gap=0, simulate=False, bounding="reachable", start=start)
    assert p.status == "OPTIMAL"
    assert p.predicted_s == pytest.approx(_enumerate(net, inst), abs=1e-7)
    np.testing.assert_allclose(p.predicted[-1], _chain(net, inst, p.schedule), atol=1e-7)
    assert len(p.removed) == 3
    # the enumerated weeks' bounds are tighter than chained CROWN: fewer binaries
    chained = plan(inst, net, mip_gap=0, simulate=False, start=False)
    assert sum(hd.n_binaries for hd in p.handles) <= sum(hd.n_binaries for hd in chained.handles)


@pytest.mark.parametrize("weeks, budget", [(1, 3.0), (2, 7.0)])
def test_surrogate_search_is_the_networks_optimum_when_exhaustive(weeks, budget):
    inst = sir.Instance(weeks=weeks, budget=budget)
    net = _surrogate_network(4)
    sched, s, exhaustive = E.surrogate_search(inst, net)
    assert exhaustive and s == pytest.approx(_enumerate(net, inst), abs=1e-12)
    assert _chain(net, inst, sched)[0] == pytest.approx(s, abs=1e-12)
    _, _, cost = sir.combinations()
    assert cost[sched].sum() <= budget
    # a narrow beam is a heuristic: never better than the optimum, and says so
    sched, s2, exhaustive = E.surrogate_search(inst, net, width=2)
    assert (not exhaustive or weeks == 1) and s2 <= s + 1e-12


@pytest.mark.slow
def test_a_run_stopped_while_pruning_resumes_from_its_checkpoint_to_the_same_results(tmp_path, monkeypatch):
    """Stopped while fine-tuning the pruned network (the baseline saved): the resume keeps the
    baseline file, continues from the baseline's checkpoint (not trained again), makes the
    pruned and int8 models and the PTQ table; stopped again at the first plan, the next resume
    keeps all of them, and ends as an uninterrupted run."""
    pytest.importorskip("tf_keras")
    import pandas as pd

    from emlpress import train

    cfg = dict(topologies=["8"], epochs=1, prune_epochs=1, n_train=600, n_test=200, horizons=[1],
               tree=False, bounding=["chained"], time_limit=30, progress=False, loop=False)
    clean, s_clean = E.run(E.Config(out=tmp_path / "clean", **cfg))
    fit = train.fit_regressor
    calls = []

    def stop_at_pruning(*args, **kw):
        calls.append("pruned" if kw.get("pruning") else "baseline")
        if kw.get("pruning") and len(calls) == 2:  # the first run: a Ctrl-C while pruning
            raise KeyboardInterrupt
        return fit(*args, **kw)

    monkeypatch.setattr(train, "fit_regressor", stop_at_pruning)
    with pytest.raises(KeyboardInterrupt):
        E.run(E.Config(out=tmp_path / "stopped", **cfg))
    folder = E.last_folder
    assert "1 of 3 models saved in models/ (8), 0 of 3 plan rows" in (folder / E.INCOMPLETE).read_text()
    assert (folder / "models" / "8_fit.npz").exists() and not (folder / "ptq_8.csv").exists()
    base = folder / "models" / "8.npz"
    kept = (base.stat().st_mtime_ns, base.read_bytes())
    plan = E.plan

    def stop_at_planning(*args, **kw):  # the second run: a Ctrl-C at the first plan
        raise KeyboardInterrupt

    monkeypatch.setattr(epi_loop, "plan", stop_at_planning)
    with pytest.raises(KeyboardInterrupt):
        E.run(None, resume=folder)
    assert calls == ["baseline", "pruned", "pruned"]  # the baseline was not trained again
    assert (base.stat().st_mtime_ns, base.read_bytes()) == kept
    assert "3 of 3 models saved in models/ (8, 8+pruned, 8+int8), 0 of 3 plan rows" in (
        folder / E.INCOMPLETE).read_text()
    made = [folder / "models" / f for f in ("8.npz", "8+pruned.npz", "8+int8.tflite")] + [folder / "ptq_8.csv"]
    kept = {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in made}
    monkeypatch.setattr(epi_loop, "plan", plan)
    _, s = E.run(None, resume=folder)
    assert calls == ["baseline", "pruned", "pruned"]
    assert {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in made} == kept  # models, PTQ kept
    assert not (folder / E.INCOMPLETE).exists() and not (folder / "models" / "8_fit.npz").exists()
    timed = [c for c in s.columns if c.endswith("_s")]
    pd.testing.assert_frame_equal(s.drop(columns=timed), s_clean.drop(columns=timed))
    for name in ("8", "8+pruned"):  # pruning continued from the checkpoint as from memory
        a, b = Network.load(folder / "models" / f"{name}.npz"), Network.load(clean / "models" / f"{name}.npz")
        assert all(np.array_equal(x, y) for x, y in zip(a.weights + a.biases, b.weights + b.biases))
    ptq = [pd.read_csv(f / "ptq_8.csv") for f in (folder, clean)]
    # the metrics (file sizes hold Keras' per-process layer names: this test runs twice in one)
    stable = [c for c in ptq[0].columns if c == "mode" or c.split("_")[0] in ("rmse", "mae", "r2")
              or c == "dequantized_max_diff"]
    pd.testing.assert_frame_equal(ptq[0][stable], ptq[1][stable])


# --- the planning loop (emlpress.eml) and the pruned-model flag (issue 38) ---------------------

def _reference_optimum(instance):
    """Every schedule within the budget simulated by the reference integrator (independent of
    sir.brute_force and its shortcuts): (best S, its schedule, schedules simulated)."""
    _, _, cost = sir.combinations(instance.npis, instance.beta0)
    best, arg, n = -np.inf, None, 0
    for sched in itertools.product(range(32), repeat=instance.weeks):
        if cost[list(sched)].sum() <= instance.budget + 1e-9:
            n += 1
            s = sir.simulate(instance, sched, reference=True)[-1, 0]
            if s > best:
                best, arg = s, sched
    return best, arg, n


def test_the_oracle_simulates_a_plan_and_a_bad_schedule_is_labelled_unmeasured():
    from emlpress.eml import measure
    from emlpress.pipelines.epidemics import improve as I

    inst = sir.Instance(weeks=2, budget=4.0)
    oracle = I.SimulatorOracle(inst)
    m = measure(oracle, (3, 2))  # both masks (cost 2), then outdoor masks (1)
    traj = sir.simulate(inst, [3, 2], reference=True)
    assert m.feasible and m.objective == traj[-1, 0] and m.values["cost"] == 3.0
    np.testing.assert_array_equal(I.trajectory(inst, m.values), traj)
    over = measure(oracle, (31, 31))  # 12 a week: measured, over the budget
    assert over.measured and not over.feasible
    for bad in [(1, 2, 3), (0, 32)]:
        m = measure(oracle, bad)
        assert not m.measured and "ValueError" in m.reason and "schedule" in m.reason
    assert oracle.calls == 2


def test_the_loop_measures_and_labels_every_plan_and_its_gap_is_against_the_brute_force():
    """A 2-week instance through a poor surrogate (refit off): every answer is simulated and
    labelled, the best is the best measured one, cut schedules never come back, and the row's
    gap to the optimum is the one an independent enumeration gives."""
    from emlpress.eml import FEASIBLE
    from emlpress.pipelines.epidemics import improve as I

    inst = sir.Instance(weeks=2, budget=3.0)
    net = _surrogate_network(5)
    out = I.improve(inst, net, None, None, bounding="chained", oracle_calls=6, refit=False,
                    calibration=9, time_limit=30)
    r = out.result
    assert r.oracle_calls == len(r.answers) <= 6 and out.calibration_simulations == 9
    configs = [a.config for a in r.answers]
    assert len(set(configs)) == len(configs)  # no-good cuts: no schedule twice
    _, beta, cost = sir.combinations()
    for a in r.answers:
        assert a.label == FEASIBLE and cost[list(a.config)].sum() <= inst.budget
        assert a.objective == sir.simulate(inst, a.config, reference=True)[-1, 0]
        # the MILP's objective is the surrogate chained along the schedule
        assert a.proposal.objective == pytest.approx(_chain(net, inst, a.config)[0], abs=1e-6)
    assert r.best.objective == max(a.objective for a in r.answers)
    best, arg, n = _reference_optimum(inst)
    assert r.best.objective <= best
    cfg = E.Config(oracle_calls=6, calibration=9, time_limit=30, bounding=["chained"])
    truth = sir.BruteForce(best, np.array(arg), n, n * inst.weeks, 0.0)  # the enumeration's
    sk = pytest.importorskip("sklearn.tree")
    Xtr, Ytr, _, _ = sir.dataset(500, 10, seed=0)
    tree = sk.DecisionTreeRegressor(max_depth=4, random_state=0).fit(Xtr, Ytr)
    rec = epi_loop._loop_row(cfg, inst, 2, "tree", (tree, 0.0, epi_loop.Path("tree.npz")), {},
                             (1, 1), truth, Xtr, Ytr)
    row = rec["row"]
    assert row["oracle_calls"] >= 1 and row["brute_force_schedules"] == n
    # the local search after the loop: its simulations are in the row's calls and its log
    assert row["oracle_calls"] == row["loop_calls"] + row["polish_calls"] == len(rec["loop"]) - (
        rec["loop"][-1].get("label") == "no answer") + len(rec["polish"])
    assert row["simulated_S"] >= row["loop_S"] and 1 <= row["calls_to_best"] <= row["oracle_calls"]
    assert row["gap_to_optimum"] == pytest.approx((best - row["simulated_S"]) / best, abs=1e-9)
    assert row["simulated_S"] == sir.simulate(inst, [int(v) for v in row["schedule"].split()],
                                              reference=True)[-1, 0]
    assert len(rec["loop"]) >= row["oracle_calls"]


def test_the_loop_with_a_tree_learns_the_trajectories_and_finds_the_optimum():
    """The tree is refit on the simulated weeks of its plans; on a 2-week instance, with a
    budget of as many calls as there are schedules, the loop ends at the enumerated optimum
    (the no-good cuts never repeat a schedule), and stops by its proof well before the budget.
    (With 25 calls it reached the optimum or not depending on which of the piecewise-constant
    tree's tied optima HiGHS returned first: a test of luck, not of the loop.)"""
    sk = pytest.importorskip("sklearn.tree")
    from emlpress.pipelines.epidemics import improve as I

    Xtr, Ytr, _, _ = sir.dataset(1_000, 10, seed=0)
    tree = sk.DecisionTreeRegressor(max_depth=5, random_state=0).fit(Xtr, Ytr)
    inst = sir.Instance(weeks=2, budget=6.0)
    best, _, n = _reference_optimum(inst)
    out = I.improve(inst, tree, Xtr, Ytr, oracle_calls=n, calibration=9, time_limit=30)
    assert out.refits >= 1  # the first plan's weeks were mispredicted and learnt
    assert out.result.best.objective == best  # both by the reference integrator
    assert len(out.result.answers) < n and "proven" in out.result.stop


def test_neighbours_are_the_one_npi_changes_within_the_budget():
    """Against every 3-week schedule enumerated: the neighbours are exactly the schedules
    within the budget whose NPIs differ from the start's in one NPI of one week, or in one
    NPI moved between two weeks (its column of the NPI matrix: one 1 -> 0, one 0 -> 1), as
    their cheapest combination of the same beta (each once, never the start)."""
    from emlpress.pipelines.epidemics import improve as I

    inst = sir.Instance(weeks=3, budget=9.0)
    choices, beta, cost = sir.combinations()
    every = np.array(list(itertools.product(range(32), repeat=3)))
    for start in [(0, 0, 0), (3, 4, 0), (4, 1, 2)]:  # none, masks + dad then dad, ...
        diff = choices[every] - choices[list(start)]  # (schedules, weeks, NPIs)
        changed = np.abs(diff).sum(axis=(1, 2))
        moved = (changed == 2) & (np.abs(diff).sum(1).max(1) == 2) & (diff.sum(axis=(1, 2)) == 0)
        near = every[((changed == 1) | moved) & (cost[every].sum(1) <= 9.0)]
        want = {I.canonical(inst, s) for s in near} - {I.canonical(inst, start)}
        got = I.neighbours(inst, start)
        assert len(got) == len(set(got)) and set(got) == want and want


def test_polish_ends_at_a_local_optimum_of_the_simulator_and_counts_its_calls():
    """The measured local search from a poor plan, ranked by a poor surrogate: it never gets
    worse, every simulation is counted and recorded, and where it says local optimum every
    neighbour's S (simulated here, independently) is at most its own; a budget of 3 calls
    stops it after 3."""
    from emlpress.eml import measure
    from emlpress.pipelines.epidemics import improve as I

    inst = sir.Instance(weeks=3, budget=9.0)
    net = _surrogate_network(3)
    start = (0, 0, 0)
    oracle = I.SimulatorOracle(inst)
    m0 = measure(oracle, start)
    p = I.polish(inst, net, start, m0, oracle, max_calls=200)
    sched, m = p.best
    assert oracle.calls == 1 + p.calls == 1 + len(p.tried) and p.moves >= 1
    assert m.objective == sir.simulate(inst, sched, reference=True)[-1, 0] > m0.objective
    assert m.objective == max([m0.objective] + [t.objective for _, t in p.tried if t.feasible])
    assert "local optimum" in p.stop
    for c in I.neighbours(inst, sched):
        assert sir.simulate(inst, c, reference=True)[-1, 0] <= m.objective
    short = I.polish(inst, net, start, m0, I.SimulatorOracle(inst), max_calls=3)
    assert short.calls == 3 and "budget" in short.stop
    assert short.best[1].objective >= m0.objective


def test_layer_sparsities_keep_weights_in_small_layers():
    from emlpress.pipelines.epidemics.surrogate import layer_sparsities

    ini, fin = layer_sparsities([4, 8, 8, 3], 0.2, 0.9, keep=4)
    assert fin == [0.0, 0.5, 0.5] and ini == [0.0, 0.2, 0.2]
    _, fin = layer_sparsities([4, 64, 3], 0.2, 0.9, keep=4)
    assert fin == [0.0, 0.9]  # 64 weights a unit: the study's 0.9 leaves 6.4


def test_a_pruned_model_that_lost_r2_is_flagged_and_not_planned_with():
    from emlpress.pipelines.epidemics import surrogate as S

    Xtr, Ytr, Xte, Yte = sir.dataset(2_000, 400, seed=0)
    base = _least_squares_net(Xtr, Ytr)
    W = [w.copy() for w in base.weights]
    W[0][:, 1:] = 0.0  # only S left: I's prediction is lost
    bad = Network(W, base.biases)
    cfg = E.Config(pruned_r2_margin=0.01)
    models = {"8": (base, 0.0, epi_loop.Path("8.npz")), "8+pruned": (bad, 0.0, epi_loop.Path("8+pruned.npz"))}
    metrics, sizes = S.evaluate(models, Xte, Yte, cfg)
    m = metrics["8+pruned"]
    assert m["sparsity"] == pytest.approx(np.mean(np.concatenate([w.ravel() for w in W]) == 0))
    assert m["baseline_r2_I"] == metrics["8"]["r2_I"] and m["r2_loss"] > 0.01
    assert "below the baseline's" in m["flag"] and "not planned with" in m["flag"]
    assert metrics["8"].get("flag", "") == ""
    inst = sir.Instance(weeks=1, budget=3.0)
    for bounding in ("chained", "loop"):
        row = (epi_loop._loop_row(cfg, inst, 1, "8+pruned", models["8+pruned"], m, sizes["8+pruned"],
                                  None, Xtr, Ytr) if bounding == "loop" else
               epi_loop._plan_row(cfg, inst, 1, "8+pruned", bounding, models["8+pruned"], m,
                                  sizes["8+pruned"], None))["row"]
        assert row["status"] == "NOT_PLANNED" and row["message"] == m["flag"] and row["schedule"] == ""
    same = {"8": models["8"], "8+pruned": models["8"]}  # nothing lost: planned with
    kept = S.evaluate(same, Xte, Yte, cfg)[0]["8+pruned"]
    assert kept["flag"] == "" and kept["r2_loss"] == 0.0


def _least_squares_net(X, Y):
    """A linear one-week model (least squares), as a one-layer Network."""
    A = np.column_stack([X, np.ones(len(X))])
    coef, *_ = np.linalg.lstsq(A, Y, rcond=None)
    return Network([coef[:-1].T], [coef[-1]])


@pytest.mark.parametrize("field, value, words", [("oracle_calls", -1, "oracle_calls"),
                                                 ("polish_calls", 2.5, "polish_calls"),
                                                 ("calibration", 5, "calibration = 5"),
                                                 ("pruned_r2_margin", 2.0, "pruned_r2_margin"),
                                                 ("coverage", 1.0, "coverage")])
def test_loop_settings_are_checked(field, value, words):
    with pytest.raises(ValueError, match=words):
        E.check(E.Config(**{field: value}))


@pytest.mark.slow
def test_per_layer_pruning_reaches_each_layers_sparsity_and_keeps_small_layers_dense():
    """TMOT with a schedule per layer (keras.pruning.prune via fit_regressor): the 4-input layer
    stays dense, the others reach their final sparsity, counted in the stripped weights."""
    pytest.importorskip("tensorflow_model_optimization")
    from emlpress.pipelines.epidemics.surrogate import layer_sparsities, pruning_summary
    from emlpress.train import fit_regressor

    Xtr, Ytr, _, _ = sir.dataset(256, 10, seed=0)
    fit = fit_regressor(Xtr, Ytr, [8, 8], epochs=1, batch_size=64)
    pruned = fit_regressor(Xtr, Ytr, [8, 8], epochs=2, batch_size=64, init=fit,
                           pruning=layer_sparsities([4, 8, 8, 3], 0.2, 0.9, keep=4))
    got = pruning_summary(pruned.net)
    assert got["layer_sparsity"] == "0.000 0.500 0.500"
    assert got["sparsity"] == pytest.approx(pruned.sparsity) and got["sparsity"] == pytest.approx(44 / 120)
    np.testing.assert_array_equal(pruned.net.weights[0] != 0, fit.net.weights[0] != 0)


def test_cli_refuses_a_negative_oracle_budget_naming_the_option(capsys):
    from emlpress import cli

    assert cli.main(["epidemics", "run", "--oracle-calls", "-1"]) == 2
    assert "--oracle-calls: must be an integer >= 0, got -1" in capsys.readouterr().err
