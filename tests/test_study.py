"""The lossless-compression study (emlpress.pipelines.lossless_study): what a run records is
what the saved networks give, the exact stable sets contain every sound method's, and the
study's own network row against its reference LP bounds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from emlpress.network import Network
from emlpress.pipelines import battery
from emlpress.pipelines import lossless_study as study

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def test_run(tmp_path_factory):
    pytest.importorskip("tf_keras")
    folder = tmp_path_factory.mktemp("study") / "run"
    cfg = study.config("test", optimizers=["adadelta", "sgd-momentum"],
                       regularizations=["none", "l1l2=0.01"], seeds=2, reference=None)
    res = study.run(cfg, folder, workers=2, progress=False)
    assert res.complete and len(res.ran) == 8
    return cfg, folder, res


def test_the_recorded_figures_are_what_the_saved_networks_give(test_run):
    from emlpress import bounds
    from emlpress.compress import lossless
    from emlpress.data import goldstein

    cfg, folder, res = test_run
    _, Yt = goldstein.sample(cfg.n_test, seed=cfg.data_seed + 1)
    Xt, _ = goldstein.sample(cfg.n_test, seed=cfg.data_seed + 1)
    for key, r in res.results.items():
        net = Network.load(folder / "models" / f"{key}.npz")
        assert r["sizes"] == [2, *cfg.hidden, 1] and r["params"] == net.n_params
        mse = float(np.mean((net.forward(Xt)[:, 0] - Yt) ** 2))
        assert r["test_mse"] == pytest.approx(mse, rel=1e-12)
        for method in ("interval", "crown"):  # deterministic: recompute and compare
            b = getattr(bounds, method)(net, goldstein.LO, goldstein.HI)
            small, rep = lossless(net, goldstein.LO, goldstein.HI, bounds=b)
            v = r["methods"][method]
            assert v["params_after"] == small.n_params
            assert v["units_after"] == [int(u) for u in rep.layers["units_after"]]
            assert v["stably_inactive"] == [int(b.stably_inactive(l).sum())
                                            for l in range(net.n_layers - 1)]
        for v in r["methods"].values():
            assert v["rel_diff"] <= 1e-9 and v["verify_points"] >= 100_000
            removed = (sum(v["removed_inactive"]) + sum(v["removed_zero_weight"])
                       + sum(v["folded_dependent"]) + sum(v["removed_merged"]))
            assert removed == v["neurons_removed"]


def test_the_exact_stable_sets_contain_every_sound_methods(test_run):
    """Every method is sound, and exact is the network's stable set (nothing unresolved on
    these small networks): per layer and side, no method proves more units than exact."""
    _, _, res = test_run
    for key, r in res.results.items():
        e = r["methods"]["exact"]
        assert sum(e["unresolved"]) == 0, key
        for m in ("interval", "crown", "lp"):
            v = r["methods"][m]
            for side in ("stably_active", "stably_inactive"):
                assert all(a <= b for a, b in zip(v[side], e[side])), (key, m, side)


def test_the_summary_tables_and_plots(test_run):
    cfg, folder, res = test_run
    models = pd.read_csv(folder / "models.csv")
    assert len(models) == 8 * len(cfg.methods)
    assert set(models["method"]) == set(study.METHODS)
    layers = pd.read_csv(folder / "layers.csv")
    assert len(layers) == 8 * len(cfg.methods) * len(cfg.hidden)
    assert (layers["units_after"] <= layers["units"]).all()
    for png in ("removed_by_method.png", "removed_by_layer.png", "loss_vs_params.png"):
        assert (folder / png).stat().st_size > 10_000
    text = (folder / "summary.md").read_text()
    assert "l1l2=0.01" in text and "sgd-momentum" in text
    # two seeds per setting: two different networks
    a = Network.load(folder / "models" / "adadelta_none_s0.npz")
    b = Network.load(folder / "models" / "adadelta_none_s1.npz")
    assert not np.array_equal(a.weights[0], b.weights[0])
    saved = json.loads((folder / "battery.json").read_text())
    assert saved["kind"] == "lossless-study" and saved["config"]["preset"] == "test"
    assert not (folder / battery.INCOMPLETE).exists()


@pytest.mark.slow
def test_the_study_network_row(shared_data, tmp_path):
    """The study's network: LP bounds give the reference file's stable sets (computed
    separately, plain warm-started LP), the explanation lines come from measured figures,
    and the exact stable sets remove at least what LP removes."""
    path = shared_data / "seed_gp" / "model.npz"
    ref = np.load(shared_data / "seed_gp" / "lp_bounds.npz")
    r = study.reference_task(str(path), ["lp", "exact"], exact_time_limit=300.0, threads=2)
    lp = r["methods"]["lp"]
    for l in range(4):
        U, L = ref[f"U{l}"], ref[f"L{l}"]
        assert lp["stably_inactive"][l] == int((U <= 0).sum())
        assert lp["stably_active"][l] == int((L >= 0).sum())
    a = r["analysis"]
    assert (a["layer0_rank_active_weights"], a["layer0_rank_active_weights_bias"]) == (2, 3)
    assert lp["folded_dependent"][0] == a["layer0_active"] - 2
    e = r["methods"]["exact"]
    assert sum(e["unresolved"]) == 0
    assert e["neurons_removed"] >= lp["neurons_removed"]
    assert e["params_after"] <= lp["params_after"]
    tab, lines = study.reference_table(r)
    assert tab.loc["parameters left", "lp: inactive"] == lp["params_after"]
    assert tab.loc["parameters left", "study: inactive"] == study.PUBLISHED["params_after"]
    # the widths emlpress reports are the compressed network's: its parameter count follows
    assert study.params_of([2, *lp["units_after"], 1]) == lp["params_after"]
    assert any("not of one network" in x for x in lines)
    # the summary of a run holding only this row
    out = study.summarize(tmp_path, {"reference": r})
    assert (tmp_path / "reference.csv").exists()
    text = (tmp_path / "summary.md").read_text()
    assert "The study's own network" in text and lines[0] in text
    assert out["reference_notes"] == lines


def test_a_reference_that_is_not_the_study_network_is_refused(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    path = tmp_path / "other.npz"
    Network([rng.normal(size=(4, 2)), rng.normal(size=(1, 4))], [np.zeros(4), np.zeros(1)],
            [-1, -1], [1, 1]).save(path)
    with pytest.raises(ValueError, match=r"sizes \[2, 4, 1\], not the study's"):
        study.config("test", reference=str(path))
    with pytest.raises(FileNotFoundError, match="no such file"):
        study.config("test", reference=str(tmp_path / "missing.npz"))
    monkeypatch.setenv("EMLPRESS_SEED_GP", str(tmp_path / "missing.npz"))
    with pytest.raises(FileNotFoundError, match="EMLPRESS_SEED_GP"):
        study.config("test")
