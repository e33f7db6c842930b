"""The TPC pipeline's truth: oracles and manifests, conformal margins, the brute force, the
MILP's cuts and restrictions, warm-started refits, and the closed loop end to end."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from emlpress.data import tpc
from emlpress.data import tpc_generate as gen
from emlpress.data.tpc_oracle import Oracle, brute_force
from emlpress.network import Network

LIMITS = {"error": 0.01, "time": 100.0, "memory_peak": None, "memory_mean": None}


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("tpcdata")
    gen.generate(d, ["Saxpy"], n_rows=40, hw="h1", repeats=1, progress=False)
    return d


def _edit_manifest(src, dst, **host_or_entry):
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.glob("*.csv"):
        (dst / f.name).write_bytes(f.read_bytes())
    m = json.loads((src / gen.MANIFEST).read_text())
    entry = m["hardware"]["h1"]
    for k, v in host_or_entry.items():
        if k in entry["host"]:
            entry["host"][k] = v
        else:
            entry[k] = v
    (dst / gen.MANIFEST).write_text(json.dumps(m))
    return dst


def test_generate_writes_a_manifest_and_the_rerun_reproduces_its_errors(small_data):
    entries = gen.read_manifest(small_data)
    assert entries["h1"]["kernel_version"] == gen.KERNEL_VERSION
    assert entries["h1"]["benchmarks"] == ["Saxpy"] and entries["h1"]["seed"] == 0
    data = tpc.load(small_data, "Saxpy")
    o = Oracle(data, "auto", small_data)
    assert o.source("h1") == "kernel re-run" and "like this one" in o.reason["h1"]
    for i in (0, 7, 21):
        row = data.frame.iloc[i]
        m = o.measure(row[data.var_cols].to_numpy(), "h1", LIMITS)
        assert m.source == "kernel re-run"
        assert float(f"{m.error:.6g}") == row["error"]  # the CSV keeps 6 digits
        assert m.feasible == (m.error <= 0.01 and m.time <= 100)


def test_embedded_data_is_what_this_kernel_version_measures():
    """The guard of KERNEL_VERSION: the embedded data's errors are re-computed exactly."""
    from emlpress.pipelines.tpc import DEFAULT_DATA

    entries = gen.read_manifest(DEFAULT_DATA)
    assert set(entries) == {"epyc2"} and entries["epyc2"]["kernel_version"] == gen.KERNEL_VERSION
    for bench in tpc.BENCHMARKS:
        data = tpc.load(DEFAULT_DATA, bench)
        for i in (0, 500, 1499):
            row = data.frame.iloc[i]
            e = gen.run_kernel(bench, row[data.var_cols].to_numpy(), seed=entries["epyc2"]["seed"],
                               error_only=True)["error"]
            assert float(f"{e:.6g}") == row["error"], (bench, i)


@pytest.mark.parametrize("change, why", [
    ({"cpu": "Some Other CPU"}, "measured on another host: cpu"),
    ({"cores": 64}, "measured on another host: cores"),
    ({"kernel_version": "0"}, "kernel version '0'"),
    ({"benchmarks": ["Correlation"]}, "does not list Saxpy"),
])
def test_a_manifest_of_another_host_or_kernel_falls_back_to_the_table(small_data, tmp_path, change, why):
    d = _edit_manifest(small_data, tmp_path / "copy", **change)
    data = tpc.load(d, "Saxpy")
    o = Oracle(data, "auto", d)
    assert o.source("h1") == "data" and why in o.reason["h1"]
    with pytest.raises(ValueError, match="oracle 'kernel' cannot re-run"):
        Oracle(data, "kernel", d)
    Oracle(data, "kernel", d, hardware=["another"])  # h1 is not asked for: nothing to refuse


def test_the_same_data_elsewhere_is_judged_the_same_way(small_data, tmp_path):
    """The verdict does not depend on where the folder lies: a copy keeps its manifest."""
    d = _edit_manifest(small_data, tmp_path / "elsewhere" / "deep")
    assert Oracle(tpc.load(d, "Saxpy"), "auto", d).source("h1") == "kernel re-run"


def test_no_manifest_means_the_table(small_data, tmp_path):
    d = tmp_path / "bare"
    d.mkdir()
    (d / "Saxpy_h1.csv").write_bytes((small_data / "Saxpy_h1.csv").read_bytes())
    o = Oracle(tpc.load(d, "Saxpy"), "auto", d)
    assert o.source("h1") == "data" and "does not describe hardware 'h1'" in o.reason["h1"]


def test_the_table_oracle_measures_only_what_is_in_it(shared_data):
    data = tpc.load(shared_data / "tpc", "Saxpy")
    o = Oracle(data, "auto", shared_data / "tpc")
    assert o.source("g100") == "data"
    f = data.frame[data.frame.hardware == "g100"]
    bits = f.iloc[0][data.var_cols].to_numpy().astype(int)
    same = f[(f[data.var_cols].to_numpy() == bits).all(1)]
    m = o.measure(bits, "g100", LIMITS)
    assert m.measured and m.error == pytest.approx(same["error"].mean())
    assert m.source == f"data ({len(same)} row{'s' if len(same) > 1 else ''})"
    present = {tuple(r) for r in f[data.var_cols].to_numpy()}
    missing = next(c for c in itertools.product(range(4, 53), repeat=3) if c not in present)
    m = o.measure(missing, "g100", LIMITS)
    assert not m.measured and m.feasible is None and m.source.startswith("unmeasured")


def test_conformal_margin_covers_at_the_asked_rate():
    from emlpress.pipelines.tpc import conformal_margin

    rng = np.random.default_rng(0)
    hits = []
    for _ in range(400):
        r = rng.standard_t(3, size=60)  # heavy tails, exchangeable
        q = conformal_margin(r[:59], 0.9)
        hits.append(r[59] <= q)
    # split conformal guarantees >= 0.9 (and < 0.9 + 1/60); 400 trials: 3 sigma is 0.045
    assert 0.9 - 0.045 <= np.mean(hits) <= 0.9 + 1 / 60 + 0.045
    with pytest.raises(ValueError, match="5 calibration rows cannot give a 90% margin"):
        conformal_margin(np.arange(5.0), 0.9)


def test_brute_force_is_the_enumerated_optimum():
    lo, hi = [4, 4, 4], [9, 8, 9]
    errs = {c: gen.run_kernel("Saxpy", c, error_only=True)["error"]
            for c in itertools.product(*[range(a, b + 1) for a, b in zip(lo, hi)])}
    for limit in (0.01, 0.004):
        ok = [sum(c) for c, e in errs.items() if e <= limit]
        r = brute_force("Saxpy", limit, bit_range=(lo, hi))
        assert r["proven"] and r["total_bits"] == min(ok)
        assert sorted(tuple(c["bits"]) for c in r["configurations"]) == sorted(
            c for c, e in errs.items() if e <= limit and sum(c) == min(ok))
    # totals 12, 13 and 14 hold 1, 3 and 6 configurations: 5 runs finish 12 and 13 only
    cut = brute_force("Saxpy", 0.004, bit_range=(lo, hi), max_evaluations=5)
    assert not cut["proven"] and cut["total_bits"] == 14 and cut["evaluated"] == 5
    # a budget that ends inside the optimal total after a feasible configuration keeps the proof
    # (total 15 starts with 4 4 7, then 4 5 6, feasible at 0.01)
    part = brute_force("Saxpy", 0.01, bit_range=(lo, hi), max_evaluations=12)
    assert part["proven"] and part["total_bits"] == 15 and not part["complete_list"]
    assert [c["bits"] for c in part["configurations"]] == [[4, 5, 6]]


def _toy(n_vars=2, seed=0):
    """A 2-variable 'benchmark' view and a network whose prediction is known at every point."""
    rng = np.random.default_rng(seed)
    W = [rng.normal(size=(6, n_vars + 1)), rng.normal(size=(1, 6))]
    b = [rng.normal(size=6), np.array([3.0])]
    return Network(W, b)


def test_the_milp_optimum_and_its_cuts_match_enumeration(tmp_path):
    """optimize() against enumeration of the integer grid, with cuts and with a candidate list."""
    from emlpress.pipelines import tpc as pipe

    frame = pd.DataFrame({"var_0": [4, 9, 6], "var_1": [4, 9, 7], "var_2": [4, 9, 5],
                          "error": [1e-2, 1e-9, 1e-4], "time": [1.0] * 3, "memory_mean": [1.0] * 3,
                          "memory_peak": [1.0] * 3})
    frame.to_csv(tmp_path / "Saxpy_h1.csv", index=False)
    data = tpc.load(tmp_path, "Saxpy")
    rng = np.random.default_rng(3)
    net = Network([rng.normal(size=(8, 4)), rng.normal(size=(1, 8))], [rng.normal(size=8), np.array([2.5])])
    cfg = pipe.Config(max_error=0.01, time_limit=30)
    sur = pipe.Surrogate(net, None, margin_error=0.3)
    grid = np.array(list(itertools.product(range(4, 10), repeat=3)))
    pred = net.forward(np.hstack([grid, np.ones((len(grid), 1))]))[:, 0]
    ok = pred >= 2 + 0.3
    excluded = []
    for _ in range(3):
        feasible = [tuple(c) for c in grid[ok] if (tuple(c), "h1") not in {(tuple(e), w) for e, w in excluded}]
        sol, _ = pipe.optimize(sur, data, pipe.Config(max_error=0.01, time_limit=30), excluded)
        if not feasible:
            assert sol.status == "INFEASIBLE"
            break
        best = min(sum(c) for c in feasible)
        bits = tuple(int(round(v)) for v in sol.inputs["error"][:3])
        assert sum(bits) == best and bits in feasible
        excluded.append((np.array(bits), "h1"))
    cand = [((4, 4, 4), "h1"), ((9, 9, 9), "h1"), ((6, 7, 5), "h1")]
    keep = [c for c in cand if ok[np.flatnonzero((grid == c[0]).all(1))[0]]]
    sol, _ = pipe.optimize(sur, data, cfg, candidates=cand)
    if keep:
        assert tuple(int(round(v)) for v in sol.inputs["error"][:3]) == min(keep, key=lambda c: sum(c[0]))[0]
    else:
        assert sol.status == "INFEASIBLE"


def test_the_enumerated_candidates_answer_as_the_candidate_milp(tmp_path):
    """The table's configurations enumerated with the surrogate (the default for a candidate
    list) against the one-binary-per-candidate MILP: the same fewest total bits, an answer the
    surrogate predicts within the error and time margins, the same proof when none is; with
    two hardware, a time network and its margin, cuts and a bound on the total."""
    from emlpress.pipelines import tpc as pipe

    for hw in ("h1", "h2"):
        frame = pd.DataFrame({"var_0": [4, 9], "var_1": [4, 9], "var_2": [4, 9], "error": [1e-2, 1e-9],
                              "time": [1.0, 2.0], "memory_mean": [1.0] * 2, "memory_peak": [1.0] * 2})
        frame.to_csv(tmp_path / f"Saxpy_{hw}.csv", index=False)
    data = tpc.load(tmp_path, "Saxpy")
    grid = np.array(list(itertools.product(range(4, 10), repeat=3)))
    answered = proofs = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        err = Network([rng.normal(size=(8, 5)), rng.normal(size=(1, 8))], [rng.normal(size=8), np.array([2.5])])
        res = Network([rng.normal(size=(6, 5)), rng.normal(size=(3, 6))],
                      [rng.normal(size=6), np.array([50.0, 1.0, 1.0])])
        sur = pipe.Surrogate(err, res, margin_error=0.2, margins={"time": 5.0})
        cfg = pipe.Config(max_error=0.01, max_time=52.0, time_limit=30)
        rows = grid[rng.choice(len(grid), 40, replace=False)]
        cand = [(tuple(int(v) for v in r), data.hardware[rng.integers(2)]) for r in rows]
        excluded = [(np.array(c[0]), c[1]) for c in cand[:3]]
        max_total = int(rng.integers(18, 26))
        a, _ = pipe.optimize(sur, data, cfg, excluded, cand, max_total=max_total)
        b, _ = pipe.optimize(sur, data, cfg, excluded, cand, max_total=max_total, candidate_milp=True)
        if b.status == "INFEASIBLE":
            assert a.status == "INFEASIBLE" and not a.has_solution
            proofs += 1
            continue
        assert a.status == "ENUMERATED" and a.objective == b.objective
        x = a.inputs["error"]
        bits, hw = tuple(int(v) for v in x[:3]), data.hardware[int(np.argmax(x[3:]))]
        assert (bits, hw) in cand[3:] and sum(bits) <= max_total
        assert err.forward(x[None])[0, 0] >= 2 + 0.2 and res.forward(x[None])[0, 0] + 5.0 <= 52.0
        answered += 1
    assert answered and proofs  # both outcomes compared


def test_warm_started_refits_leave_their_start_alone_and_keep_pruned_zeros():
    from emlpress.train import fit_regressor

    rng = np.random.default_rng(0)
    X = rng.uniform(size=(400, 3))
    Y = (X**2).sum(1, keepdims=True)
    base = fit_regressor(X, Y, [8, 8], epochs=10, seed=0)
    before = [w.copy() for w in base.model.get_weights()]
    pruned = fit_regressor(X, Y, [8, 8], epochs=8, pruning=(0.0, 0.5), init=base)
    assert all(np.array_equal(a, b) for a, b in zip(before, base.model.get_weights()))
    assert 0.4 < pruned.sparsity < 0.6
    X2, Y2 = np.vstack([X, X[:4]]), np.vstack([Y, Y[:4] + 1.0])
    again = fit_regressor(X2, Y2, [8, 8], epochs=3, init=pruned, early_stopping=False)
    assert all(np.array_equal(a == 0, b == 0) for a, b in zip(pruned.net.weights, again.net.weights))
    assert any(not np.array_equal(a, b) for a, b in zip(pruned.net.weights, again.net.weights))
    refit = fit_regressor(X2, Y2, [8, 8], epochs=3, init=base, early_stopping=False)
    assert any(not np.array_equal(a, b) for a, b in zip(base.net.weights, refit.net.weights))
    assert all(np.array_equal(a, b) for a, b in zip(before, base.model.get_weights()))
    with pytest.raises(ValueError, match="init is a"):
        fit_regressor(X, Y, [8, 4], epochs=1, init=base)


def test_checkpointed_networks_refit_bit_for_bit_and_foreign_layers_are_refused(tmp_path):
    """What a resumed tpc run trains from: the checkpoint of a group's networks gives the
    same refits as the networks in memory (pruned masks included); a checkpoint whose layer
    configuration holds anything training does not make is refused before it is built."""
    from emlpress.pipelines import tpc as pipe
    from emlpress.train import fit_regressor

    rng = np.random.default_rng(0)
    X = rng.uniform(size=(200, 3))
    Y = (X**2).sum(1, keepdims=True)
    base = fit_regressor(X, Y, [8, 8], epochs=3, seed=0)
    pruned = fit_regressor(X, Y, [8, 8], epochs=3, pruning=(0.0, 0.5), init=base)
    pipe._save_fits(tmp_path / "fits.npz", (base, pruned))
    loaded = pipe._load_fits(tmp_path / "fits.npz")
    for a, b in zip((base, pruned), loaded):
        assert b.pruned == a.pruned and b.epochs == a.epochs and b.sparsity == a.sparsity
        assert all(np.array_equal(u, v) for u, v in zip(a.net.weights, b.net.weights))
    # a refit of the pruned one (its masks and pruning step restored too)
    ra, rb = (fit_regressor(X, Y, [8, 8], epochs=2, init=f, early_stopping=False, seed=5)
              for f in (pruned, loaded[1]))
    assert all(np.array_equal(u, v) for u, v in zip(ra.net.weights, rb.net.weights))
    with np.load(tmp_path / "fits.npz") as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    meta[0]["keras_config"]["layers"][1]["class_name"] = "Lambda"
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=r"bad.npz: layer 'Lambda'.*is not one training makes"):
        pipe._load_fits(tmp_path / "bad.npz")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "fits.npz").read_bytes()[:100])
    with pytest.raises(ValueError, match=r"cut.npz: not a readable checkpoint"):
        pipe._load_fits(tmp_path / "cut.npz")


def _run(tmp_path, data_dir, **kw):
    from emlpress.pipelines import tpc as pipe

    cfg = pipe.Config(data=data_dir, topologies=["9-7"], epochs=60, prune_epochs=10, refit_epochs=10,
                      time_limit=20, out=tmp_path / "runs", progress=False, timing_repeats=3, **kw)
    return pipe.run(cfg)


@pytest.fixture(scope="module")
def loop_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("loopdata")
    gen.generate(d, ["Saxpy"], n_rows=300, hw="h1", repeats=1, progress=False)
    return d


@pytest.mark.slow
def test_the_closed_loop_ends_in_measured_feasible_answers(tmp_path, loop_data):
    """Median margins (coverage 0.5) make some first answers fail; the loop (emlpress.eml)
    must correct them with the kernel as the oracle, never re-propose a cut configuration,
    after a feasible answer ask only for fewer bits, keep the best measured-feasible answer,
    and say why it stopped; a proof is checked against the brute force."""
    folder, s = _run(tmp_path, loop_data, coverage=0.5, max_iterations=8, loop_seconds=120)
    assert (folder / "run.summary.csv").exists() and (folder / "solver_time_Saxpy.png").exists()
    assert list(s["variant"]) == ["baseline", "pruned", "baseline+lossless", "pruned+lossless"]
    assert (s["measured_source"] == "kernel re-run").all()
    assert (s["first_verdict"] == "infeasible").any()  # else this test exercised nothing
    for row in s.itertuples():
        log = json.loads((folder / "logs" / f"Saxpy_9-7_{row.variant.replace('+', '_')}.json").read_text())
        its = [it for it in log["iterations"] if "bits" in it]
        answers = [(it["bits"], it["chosen_hardware"]) for it in its]
        assert len(answers) == len(set(answers)) and len(log["iterations"]) == row.iterations
        assert [it["oracle_calls"] for it in its] == list(range(1, len(its) + 1)) == \
            list(range(1, row.oracle_calls + 1))
        assert row.verdict == "feasible"
        feasible = [it for it in its if it["verdict"] == "feasible"]
        assert row.total_bits == min(it["total_bits"] for it in feasible)
        # improvement cuts: after a feasible answer, only fewer bits than the best so far
        best = None
        for it in its:
            if best is not None:
                assert it["total_bits"] < best and it["better_than"] == best
            if it["verdict"] == "feasible":
                best = it["total_bits"]
        assert row.loop_proven == row.loop_stop.startswith("proven") and (
            row.loop_proven or "budget" in row.loop_stop or row.loop_stop.startswith("handed over to the local search"))
        if row.loop_proven:  # the MILP phase's last row; the local search's rows follow it
            milp = [it for it in log["iterations"] if it.get("phase") == "milp"]
            assert milp[-1]["status"] == "INFEASIBLE"
        # before and after the local search in one run: its calls, its best never worse
        assert row.milp_oracle_calls + row.local_oracle_calls == row.oracle_calls
        assert row.total_bits <= row.milp_best_bits
        # the final answer is what the kernel measures
        m = gen.run_kernel("Saxpy", [int(b) for b in row.bits.split()], error_only=True)["error"]
        assert m == row.measured_error and m <= 0.01
    # brute force ran (kernel oracle): no feasible answer is below the optimum
    assert s["optimum_proven"].all() and (s["bits_above_optimum"] >= 0).all()
    assert (s["brute_force_evaluated"] > 0).all()
    assert (s["milp_forward_diff"] <= 1e-6).all()


@pytest.mark.slow
def test_open_loop_and_table_oracle(tmp_path, loop_data):
    folder, s = _run(tmp_path, loop_data, max_iterations=0, truth_seconds=0)
    assert (s["iterations"] == 1).all() and s["loop_stop"].str.startswith("open loop").all()
    assert any(n.startswith("open loop") for n in s.attrs["notes"])
    assert "optimum_bits" in s and s["optimum_bits"].isna().all()
    other = _edit_manifest(loop_data, tmp_path / "other", cpu="Another CPU")
    folder, s = _run(tmp_path, other, max_iterations=3)
    data = tpc.load(other, "Saxpy")
    present = {tuple(r) for r in data.frame[data.var_cols].to_numpy()}
    assert s["measured_only"].all() and s["oracle"].eq("data").all()
    assert s["measured_source"].str.startswith("data (").all()
    assert all(tuple(int(b) for b in bits.split()) in present for bits in s["bits"])
    assert s["verdict"].isin(["feasible", "infeasible"]).all()
    log = json.loads((folder / "logs" / "Saxpy_9-7_data.json").read_text())
    assert "measured on another host: cpu 'Another CPU'" in log["oracle"]["h1"]
    assert s["oracle_reason"].str.contains("measured on another host: cpu 'Another CPU'").all()
    assert any("restricted to its configurations" in n for n in s.attrs["notes"])
    # unrestricted with the table: answers outside it are labelled, never judged by neighbours
    folder, s = _run(tmp_path, other, max_iterations=3, measured_only=False, truth_seconds=0)
    outside = [tuple(int(b) for b in row.bits.split()) not in present for row in s.itertuples()]
    assert any(outside)  # 300 of 117,649 configurations: the optimizer leaves the table
    for row, out in zip(s.itertuples(), outside):
        if out:
            assert row.verdict == "unmeasured" and not row.measured_feasible
            assert pd.isna(getattr(row, "bits_above_best_measured", np.nan))
        else:
            assert row.verdict in ("feasible", "infeasible") and row.measured_source.startswith("data (")
        # an unmeasured answer is labelled with the reason, cut off, and the loop goes on
        log = json.loads((folder / "logs" / f"Saxpy_9-7_{row.variant.replace('+', '_')}.json").read_text())
        its = [it for it in log["iterations"] if "bits" in it]
        for k, it in enumerate(its):
            if it["verdict"] == "unmeasured":
                assert it["reason"] == "unmeasured (not in the data)"
                assert k + 1 < len(its) or row.loop_stop.startswith(("oracle budget", "time budget", "proven"))


@pytest.mark.slow
def test_an_interrupted_run_is_marked_and_resumes(tmp_path, loop_data, monkeypatch):
    from emlpress.pipelines import tpc as pipe
    from emlpress.pipelines.tpc import tasks

    calls = {"n": 0}
    real = pipe.solve_loop

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real(*a, **k)

    cfg = pipe.Config(data=loop_data, topologies=["9-7", "12-15"], epochs=3, prune_epochs=3,
                      resource_epochs=3, refit_epochs=2, max_iterations=1, improve_probes=0,
                      time_limit=10, out=tmp_path / "runs", progress=False, timing_repeats=3,
                      truth_seconds=0)
    monkeypatch.setattr(tasks, "solve_loop", interrupted)
    with pytest.raises(KeyboardInterrupt) as stopped:
        pipe.run(cfg)
    folder = stopped.value.folder
    marker = (folder / pipe.INCOMPLETE).read_text()
    assert "5 of 8 answers written" in marker and f"--resume {folder}" in marker
    before = pd.read_csv(folder / "run.summary.csv")
    assert len(before) == 5
    # the second topology's networks were trained and checkpointed before the interruption
    fits = sorted(p.name for p in (folder / "models").glob("*_fits.npz"))
    assert fits == [f"Saxpy_{t}_{b}_fits.npz" for t in ("12-15", "9-7") for b in ("baseline", "pruned")]
    stamps = {p: p.stat().st_mtime_ns for p in (folder / "models").iterdir()}
    solved = []

    def counted(m, *a, **k):
        solved.append(m)
        return real(m, *a, **k)

    import emlpress.train as train
    trained = []
    real_fit = train.fit_regressor
    monkeypatch.setattr(tasks, "solve_loop", counted)
    monkeypatch.setattr(train, "fit_regressor",
                        lambda *a, **k: trained.append(k.get("init")) or real_fit(*a, **k))
    again, s = pipe.run(pipe.Config(progress=False), resume=folder)
    # only the 3 answers not written were solved; no network was trained from scratch
    # (refits of the closed loop start from a trained one)
    assert len(solved) == 3 and all(init is not None for init in trained)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # nothing kept rewritten
    assert s["group_done"].all()
    assert again == folder and not (folder / pipe.INCOMPLETE).exists()
    assert list(zip(s["topology"].astype(str), s["variant"])) == [
        (t, v) for t in ("9-7", "12-15") for v in pipe.VARIANTS]
    # the finished topology was kept as written, not recomputed
    kept = s[s["topology"].astype(str) == "9-7"].reset_index(drop=True)
    first = before[before["topology"].astype(str) == "9-7"].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept[first.columns], first, check_dtype=False)


def test_regenerating_on_another_host_does_not_vouch_for_old_files(tmp_path):
    gen.generate(tmp_path, ["Saxpy"], n_rows=6, hw="h1", repeats=1, progress=False)
    m = json.loads((tmp_path / gen.MANIFEST).read_text())
    m["hardware"]["h1"]["host"]["cpu"] = "Elsewhere CPU"
    (tmp_path / gen.MANIFEST).write_text(json.dumps(m))
    gen.generate(tmp_path, ["Correlation"], n_rows=6, hw="h1", repeats=1, progress=False)
    assert gen.read_manifest(tmp_path)["h1"]["benchmarks"] == ["Correlation"]
    gen.generate(tmp_path, ["Saxpy"], n_rows=6, hw="h1", repeats=1, progress=False)  # same host now
    assert gen.read_manifest(tmp_path)["h1"]["benchmarks"] == ["Correlation", "Saxpy"]


def test_the_no_good_cut_separates_hardware(tmp_path):
    """Cutting ((4,4,4), h1) leaves ((4,4,4), h2) open: the cut's hardware term."""
    from emlpress.pipelines import tpc as pipe

    for hw in ("h1", "h2"):
        pd.DataFrame({"var_0": [4, 9], "var_1": [4, 9], "var_2": [4, 9], "error": [1e-3, 1e-9],
                      "time": [1.0, 1.0], "memory_mean": [1.0, 1.0], "memory_peak": [1.0, 1.0]}
                     ).to_csv(tmp_path / f"Saxpy_{hw}.csv", index=False)
    data = tpc.load(tmp_path, "Saxpy")
    # prediction: 3 everywhere on h2, on h1 3 - 0.1 * (total bits - 12): (4,4,4) is best on both
    W = [np.array([[0.0, 0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]]), np.array([[3.0, 3.0]])]
    net = Network(W, [np.zeros(2), np.array([0.0])])
    sur = pipe.Surrogate(net, None, margin_error=0.0)
    cfg = pipe.Config(max_error=0.01, time_limit=30)
    seen = []
    excluded = []
    for _ in range(3):
        sol, _ = pipe.optimize(sur, data, cfg, excluded)
        x = sol.inputs["error"]
        ans = (tuple(int(round(v)) for v in x[:3]), data.hardware[int(np.argmax(x[3:]))])
        assert ans not in seen
        seen.append(ans)
        excluded.append((np.array(ans[0]), ans[1]))
    assert sorted(seen[:2]) == [((4, 4, 4), "h1"), ((4, 4, 4), "h2")]
    assert sum(seen[2][0]) == 13


@pytest.mark.slow
def test_the_battery_on_dask_answers_as_the_sequential_run(tmp_path, loop_data):
    """The same run as tasks on a LocalCluster of 2 workers: the same networks and first
    optima as one after the other (seeded training, the same kernel oracle), every answer
    measured, brute force joined from its own task, and a resume with nothing left to do
    rebuilds the same summary."""
    pytest.importorskip("distributed")
    from emlpress.pipelines import battery
    from emlpress.pipelines import tpc as pipe

    cfg = dict(data=loop_data, topologies=["12-15"], epochs=3, prune_epochs=3,
               resource_epochs=3, refit_epochs=2, max_iterations=1, improve_probes=0,
               time_limit=10, progress=False, timing_repeats=3, truth_seconds=5,
               oracle="kernel")
    _, seq = pipe.run(pipe.Config(out=tmp_path / "seq", **cfg))
    folder, par = pipe.run(pipe.Config(out=tmp_path / "par", **cfg), workers=2)
    assert sorted(battery.finished(folder)) == ["Saxpy_12-15", "truth_Saxpy"]
    assert not (folder / pipe.INCOMPLETE).exists()
    assert (folder / "logs" / "config.json").exists() and (folder / "run.summary.csv").exists()
    keys = ["benchmark", "topology", "variant"]
    assert par[keys].astype(str).values.tolist() == seq[keys].astype(str).values.tolist()
    same = ["r2_error", "neurons_before", "neurons_after", "status_first"]
    pd.testing.assert_frame_equal(par[same], seq[same], check_dtype=False)
    # the first MILP's optimum: the same number of bits where both proved it (which of several
    # configurations with that many bits HiGHS returns can differ with its thread count: one
    # native thread per task here, every core in the sequential run)
    both = (seq["status_first"] == "OPTIMAL").to_numpy()
    assert both.any()
    first_par, first_seq = par["first_total_bits"].to_numpy(), seq["first_total_bits"].to_numpy()
    assert (first_par[both] == first_seq[both]).all()
    assert par["first_verdict"].isin(["feasible", "infeasible"]).all()
    # the brute force is cut at truth_seconds: its optimum compares where both finished
    if seq["optimum_proven"].all() and par["optimum_proven"].all():
        assert (par["optimum_bits"] == seq["optimum_bits"]).all()
    assert par["optimum_bits"].notna().all()  # joined from the truth task
    assert par["verdict"].isin(["feasible", "infeasible", "no answer"]).all()
    for f in ("Saxpy_12-15_baseline_error.npz", "Saxpy_12-15_pruned_lossless_error.npz"):
        assert (folder / "models" / f).exists()
    again, s = pipe.run(pipe.Config(progress=False), resume=folder)  # resumes as a battery
    assert again == folder
    again_cols = same + keys + ["optimum_bits", "first_bits", "bits", "verdict"]
    pd.testing.assert_frame_equal(s[again_cols], par[again_cols], check_dtype=False)


def test_the_table_local_search_measures_only_table_rows_and_ends_with_none_left():
    """Where answers are restricted to the table: the local search proposes only the table's
    configurations with fewer bits than the best, never one at or below a measured-infeasible
    one, and ends only when every such configuration is measured or so pruned."""
    from emlpress import eml
    from emlpress.pipelines.tpc.loop import _TableDescent

    data = tpc.load(tpc_default_data(), "Saxpy")
    o = Oracle(data, "data")
    cand = o.measured_configurations()[:300]  # a part of the table: a short test
    start = max(((*b, w) for b, w in cand), key=lambda c: sum(c[:-1]))  # the most bits
    rng = np.random.default_rng(0)
    scores = {(*b, w): s for (b, w), s in zip(cand, rng.random(len(cand)))}

    def oracle(config):
        m = o.measure(config[:-1], config[-1], LIMITS)
        return eml.Measurement(m.feasible, values={"error": m.error}, source=m.source)

    r = eml.run_loop(lambda ctx: eml.Proposal(start, float(sum(start[:-1]))) if ctx.allowed(start)
                     else eml.Proposal(None, status="INFEASIBLE"), oracle,
                     local=_TableDescent(cand, lambda cs: [scores[c] for c in cs]))
    assert all(a.measured and a.measurement.source.startswith("data") for a in r.answers)
    best = r.best.objective
    assert o.measure(r.best.config[:-1], r.best.config[-1], LIMITS).feasible and best < sum(start[:-1])
    bad = np.array([a.config[:-1] for a in r.answers if not a.feasible])
    measured = {a.config for a in r.answers}
    for b, w in cand:  # nothing with fewer bits left untried, but what an infeasible one prunes
        if sum(b) < best and (*b, w) not in measured:
            assert len(bad) and (np.asarray(b) <= bad).all(axis=1).any()
    # the best the table holds, where its errors are monotone: the table's own best
    assert best == min(sum(b) for b, w in cand if o.measure(b, w, LIMITS).feasible)


def tpc_default_data():
    from emlpress.pipelines.tpc.config import DEFAULT_DATA

    return DEFAULT_DATA
