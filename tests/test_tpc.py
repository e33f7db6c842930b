"""Transprecision data, generator and pipeline."""

import json
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from emlpress.data import tpc


@pytest.fixture(scope="module")
def published(shared_data):
    return tpc.load_dir(shared_data / "tpc")


def test_published_data_loads_with_one_hot_and_capped_targets(published):
    assert set(published) == {"Convolution", "Correlation", "Saxpy"}
    corr = published["Correlation"]
    assert corr.hardware == ["g100", "pc", "vm"]
    f = corr.frame
    assert list(f.index) == list(range(len(f)))  # reset: no duplicate labels
    assert np.all(f[corr.hw_cols].sum(axis=1) == 1.0)
    zero = f["error"] == 0
    assert zero.sum() == 56  # 18 + 20 + 18 exact zeros in the published files
    assert np.all(f.loc[zero, "neg_log_error"] == tpc.NEG_LOG_ERROR_CAP)
    pos = f[~zero]
    np.testing.assert_allclose(pos["neg_log_error"], -np.log10(pos["error"]))
    assert corr.X().shape == (len(f), 7 + 3) and corr.Y().shape == (len(f), 4)


def test_best_measured_configurations_match_the_design_notes(published):
    for bench, bits in (("Convolution", 29), ("Correlation", 88), ("Saxpy", 17)):
        d = published[bench]
        best = tpc.best_measured(d, 0.01, 100.0, hardware=["g100", "vm"])
        assert int(best[d.var_cols].sum()) == bits


def test_split_is_seeded_and_disjoint(published):
    d = published["Saxpy"]
    tr, te = d.split(0.2, seed=3)
    tr2, te2 = d.split(0.2, seed=3)
    assert tr.index.equals(tr2.index) and te.index.equals(te2.index)
    assert len(set(tr.index) & set(te.index)) == 0 and len(tr) + len(te) == len(d.frame)
    assert len(te) == round(0.2 * len(d.frame))


def test_normalisation_fit_on_train_round_trips(published, tmp_path):
    d = published["Convolution"]
    tr, te = d.split(0.25, seed=0)
    cols = d.input_cols + list(tpc.TARGETS)
    norm = tpc.MinMax.fit(tr, cols)
    A = tr[cols].to_numpy(float)
    Z = norm.transform(A)
    assert Z.min() >= 0.0 and Z.max() <= 1.0
    np.testing.assert_allclose(norm.inverse(Z), A, rtol=1e-12, atol=1e-9)
    norm.save(tmp_path / "n.json")
    back = tpc.MinMax.from_json(json.loads((tmp_path / "n.json").read_text()))
    np.testing.assert_array_equal(back.lo, norm.lo)
    # fit on the training split only: its range, not the whole data's
    np.testing.assert_array_equal(norm.lo, A.min(0))
    varying = A.max(0) > A.min(0)
    np.testing.assert_array_equal(norm.hi[varying], A.max(0)[varying])


OK_CSV = "var_0,var_1,var_2,error,time,memory_mean,memory_peak\n4,5,6,0.1,20,1,2\n"


@pytest.mark.parametrize("text,message", [
    (OK_CSV.replace(",memory_peak", "").replace(",1,2", ",1"),
     r"Saxpy_x\.csv: missing column\(s\) \['memory_peak'\]"),
    (OK_CSV + "4,x5,6,0.1,20,1,2\n", r"Saxpy_x\.csv: row 3 .*column 'var_1': 'x5'"),
    ("", r"Saxpy_x\.csv: empty file"),
    (OK_CSV + "4,5,6,-1,20,1,2\n", r"Saxpy_x\.csv: row 3, column 'error': -1.0 is negative"),
    (OK_CSV + "4,5.5,6,0.1,20,1,2\n", r"row 3, column 'var_1': 5.5 is not a bit count"),
])
def test_malformed_files_name_file_row_and_column(tmp_path, text, message):
    (tmp_path / "Saxpy_a.csv").write_text(OK_CSV)
    assert len(tpc.load(tmp_path, "Saxpy").frame) == 1
    (tmp_path / "Saxpy_x.csv").write_text(text)
    with pytest.raises(tpc.TPCDataError, match=message):
        tpc.load(tmp_path, "Saxpy")


def test_unknown_hardware_and_names_are_refused(tmp_path):
    (tmp_path / "Saxpy_a.csv").write_text(OK_CSV)
    with pytest.raises(tpc.TPCDataError, match=r"unknown hardware \['g100'\].*files exist for \['a'\]"):
        tpc.load(tmp_path, "Saxpy", hardware="g100")
    (tmp_path / "Saxpy_b@d.csv").write_text(OK_CSV)
    with pytest.raises(tpc.TPCDataError, match="hardware name 'b@d'"):
        tpc.load(tmp_path, "Saxpy")
    with pytest.raises(ValueError, match="unknown benchmark 'Fft'"):
        tpc.load(tmp_path, "Fft")


def rne_reference(x: float, p: int) -> float:
    """Round-to-nearest-even to p mantissa bits via Python integers (independent)."""
    if p >= 52 or x == 0.0 or not np.isfinite(x):
        return x
    (u,) = struct.unpack("<Q", struct.pack("<d", x))
    shift = 52 - p
    low = u & ((1 << shift) - 1)
    u >>= shift
    half = 1 << (shift - 1)
    if low > half or (low == half and (u & 1)):
        u += 1
    (y,) = struct.unpack("<d", struct.pack("<Q", (u << shift) & (2**64 - 1)))
    return y


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e30, max_value=1e30),
       st.integers(1, 52))
def test_round_bits_is_round_to_nearest_even(x, p):
    from emlpress.data.tpc_generate import round_bits

    got = float(round_bits(np.array([x]), p)[0])
    want = rne_reference(x, p)
    if p <= 23 and abs(want) > np.finfo(np.float32).max:
        assert np.isinf(got)  # float32 storage overflows, as on the platform
    elif p <= 23 and 0 < abs(want) < np.finfo(np.float32).tiny:
        assert abs(got - want) <= np.finfo(np.float32).smallest_subnormal  # float32 subnormal range
    else:
        assert got == want


def test_kernels_error_grows_as_precision_drops():
    from emlpress.data.tpc_generate import run_kernel

    for bench, n in tpc.BENCHMARKS.items():
        full = run_kernel(bench, [52] * n, repeats=1)
        assert full["error"] == 0.0 and full["time"] > 0 and full["memory_peak"] > 0
        mid = run_kernel(bench, [20] * n, repeats=1)
        low = run_kernel(bench, [5] * n, repeats=1)
        assert 0.0 < mid["error"] < low["error"]
        assert low["memory_peak"] < full["memory_peak"]  # float32 storage below 24 bits


@pytest.mark.parametrize("kw, match", [
    ({"n_rows": 0}, "n_rows must be a positive integer, got 0"), ({"hw": "b@d"}, "hardware name 'b@d'"),
    ({"hw": "a_b"}, "hardware name 'a_b'"), ({"repeats": 0}, "repeats must be"),
    ({"benchmarks": ["Fft"]}, "unknown benchmark 'Fft'"),
])
def test_generate_rejects_what_the_loader_would_reject(tmp_path, kw, match):
    from emlpress.data.tpc_generate import generate

    args = {"benchmarks": ["Saxpy"], "n_rows": 3, "hw": "h", "repeats": 1, "progress": False, **kw}
    with pytest.raises(ValueError, match=match):
        generate(tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


def test_load_dir_names_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere: no such data directory"):
        tpc.load_dir(tmp_path / "nowhere")


def test_generated_files_load(tmp_path):
    from emlpress.data.tpc_generate import generate

    paths = generate(tmp_path, ["Saxpy", "Correlation"], n_rows=12, hw="testhw", repeats=1, progress=False)
    assert [p.name for p in paths] == ["Saxpy_testhw.csv", "Correlation_testhw.csv"]
    d = tpc.load(tmp_path, "Correlation")
    assert d.hardware == ["testhw"] and len(d.frame) == 12
    lo, hi = d.bit_range()
    assert lo.min() >= 3 and hi.max() <= 52


def test_embedded_default_data_is_small_and_loads():
    from emlpress.pipelines.tpc import DEFAULT_DATA

    files = sorted(DEFAULT_DATA.glob("*.csv"))
    assert {f.name.split("_")[0] for f in files} == set(tpc.BENCHMARKS)
    assert sum(f.stat().st_size for f in files) < 2_000_000
    for b in tpc.BENCHMARKS:
        assert len(tpc.load(DEFAULT_DATA, b).frame) >= 1000


@pytest.mark.slow
def test_pipeline_end_to_end_on_a_tiny_battery(tmp_path):
    from emlpress.data.tpc_generate import generate
    from emlpress.pipelines import tpc as pipe

    generate(tmp_path / "data", ["Saxpy"], n_rows=300, hw="h1", repeats=1, progress=False)
    cfg = pipe.Config(data=tmp_path / "data", topologies=["9-7"], epochs=3, prune_epochs=3,
                      resource_epochs=3, time_limit=20, out=tmp_path / "runs", progress=False,
                      max_error=1e-3, oracle="kernel", max_iterations=1, truth_seconds=5)
    folder, summary = pipe.run(cfg)
    assert (folder / "run.summary.csv").exists() and (folder / "solver_time_Saxpy.png").exists()
    assert len(list((folder / "logs").glob("*.json"))) >= 6
    assert list(summary["variant"]) == list(pipe.VARIANTS)
    for col in ("topology", "train_ms", "size_bytes", "r2_error", "rmse_error", "encode_ms", "solver_ms",
                "status", "sparsity", "neurons_before", "neurons_after", "binaries", "nodes",
                "first_bits", "first_verdict", "iterations", "verdict", "measured_source",
                "margin_error", "test_coverage_error", "optimum_bits", "time_constraint",
                "oracle_calls", "oracle_calls_to_answer", "brute_force_evaluated", "loop_proven"):
        assert col in summary
    assert (summary["neurons_after"] <= summary["neurons_before"]).all()
    solved = summary[summary["verdict"].isin(["feasible", "infeasible"])]
    assert len(solved) >= 1
    # the MILP's predicted outputs are the network's forward pass at the solution
    assert (solved["milp_forward_diff"] <= 1e-6 * 1e3).all()
    assert solved["measured_source"].eq("kernel re-run").all()
    assert (solved["measured_feasible"] == (solved["measured_error"] <= 1e-3)).all()
    # per answer the loop's oracle calls (at most max_iterations + 1 in its MILP phase, then at most
    # local_calls in its local search) beside the brute force's
    assert summary["milp_oracle_calls"].between(1, 2).all()
    assert summary["local_oracle_calls"].between(0, cfg.local_calls).all()
    assert (summary["oracle_calls"] == summary["milp_oracle_calls"] + summary["local_oracle_calls"]).all()
    from emlpress.data import tpc
    from emlpress.data.tpc_oracle import _compositions

    lo, hi = tpc.load(tmp_path / "data", "Saxpy").bit_range()
    for row in summary[summary["optimum_proven"].astype(bool)].itertuples():
        # the brute force ran every configuration below the optimum's total, and some of it
        below = sum(1 for t in range(int(lo.sum()), int(row.optimum_bits))
                    for _ in _compositions(t, list(lo), list(hi)))
        assert below < row.brute_force_evaluated
    pruned = summary[summary["variant"] == "pruned"]["sparsity"].iloc[0]
    assert 0.2 < pruned < 0.8  # final_sparsity 0.5, measured


@pytest.mark.slow
def test_quantized_variants_answer_with_the_int8_model(tmp_path):
    """The int8 variants: the exact one's MILP outputs are the interpreter's bit for bit (its
    prediction is what the deployed model says), the dequantized one reports what the
    interpreter says at its answer; sizes are .tflite bytes for every variant."""
    pytest.importorskip("ai_edge_litert")
    from emlpress.data.tpc_generate import generate
    from emlpress.pipelines import tpc as pipe

    generate(tmp_path / "data", ["Saxpy"], n_rows=300, hw="h1", repeats=1, progress=False)
    cfg = pipe.Config(data=tmp_path / "data", topologies=["9-7"], epochs=30, prune_epochs=3,
                      resource_epochs=3, time_limit=30, out=tmp_path / "runs", progress=False,
                      max_error=1e-3, oracle="kernel", max_iterations=0, truth_seconds=0,
                      quantized=True)
    folder, summary = pipe.run(cfg)
    assert list(summary["variant"]) == list(pipe.VARIANTS + pipe.QUANTIZED_VARIANTS)
    s = summary.set_index("variant")
    exact, deq = s.loc["baseline+int8-exact"], s.loc["baseline+int8-dequantized"]
    assert exact["answer_model"] == pipe.ANSWER_MODELS["exact"]
    assert deq["answer_model"] == pipe.ANSWER_MODELS["dequantized"]
    for row in (exact, deq):
        assert row["verdict"] in ("feasible", "infeasible")
        # like with like; on networks this small the int8 file is the larger (its
        # quantization parameters and QUANTIZE/DEQUANTIZE operators outweigh the weights)
        assert row["tflite_bytes"] > 0 and s.loc["baseline", "tflite_bytes"] > 0
        assert np.isfinite(row["interpreter_predicted_error"])
    assert exact["milp_forward_diff"] == 0.0  # bit for bit
    assert exact["predicted_error"] == pytest.approx(exact["interpreter_predicted_error"], rel=1e-5)
    assert (folder / "models" / "Saxpy_9-7_baseline_int8-exact_error.tflite").exists()


@pytest.mark.parametrize("change, match", [
    ({"time_limit": -1}, "time_limit must be > 0"), ({"max_error": 0.0}, "max_error must be a finite limit > 0"),
    ({"max_time": float("nan")}, "max_time must be"), ({"max_memory_peak": -5}, "max_memory_peak must be"),
    ({"epochs": 0}, "epochs must be a positive integer"), ({"test_size": 1.0}, "test_size"),
    ({"final_sparsity": 1.0}, "final_sparsity=1.0"), ({"compression_bounds": "dual"}, "compression_bounds 'dual'"),
    ({"topologies": ["3-3"]}, "unknown topology '3-3'"), ({"hw": "nothere"}, r"--hw 'nothere': .* has data for"),
    ({"coverage": 1.0}, "coverage = 1.0 must lie in"), ({"max_iterations": -1}, "max_iterations must be"),
    ({"oracle": "psychic"}, "unknown oracle 'psychic'"), ({"improve_probes": 1.5}, "improve_probes must be"),
    ({"calibration_size": 0}, "calibration_size = 0"), ({"holdout": 1}, "holdout must be 0"), ({"coverage": 0.999}, "too few for a 100% margin"),
    ({"refit_on": "sometimes"}, "refit_on must be one of"),
])
def test_pipeline_rejects_a_bad_configuration_before_training(tmp_path, change, match):
    from emlpress.pipelines import tpc as pipe

    cfg = pipe.Config(out=tmp_path / "runs", progress=False, **change)
    with pytest.raises(ValueError, match=match):
        pipe.run(cfg)
    assert not (tmp_path / "runs").exists()  # nothing started


def test_the_table_oracle_flags_an_infeasible_pick(published, shared_data):
    from emlpress.data.tpc_oracle import Oracle

    d = published["Saxpy"]
    o = Oracle(d, "auto", shared_data / "tpc")
    limits = {"error": 0.01, "time": 100.0}
    f = d.frame[d.frame.hardware == "g100"]
    low = f[f["error"] > 0.01].iloc[0][d.var_cols].to_numpy().astype(int)
    m = o.measure(low, "g100", limits)
    assert m.feasible is False and m.error > 0.01 and m.source.startswith("data (")
    assert int(tpc.best_measured(d, 0.01, 100.0, "g100")[d.var_cols].sum()) == 17
