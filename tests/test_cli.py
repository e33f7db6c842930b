import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emlpress import Network
from emlpress.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize("method", ["interval", "crown", "lp", "milp", "exact", "stability",
                                    "progressive"])
def test_bounds_on_shipped_model(method, capsys):
    assert main(["bounds", str(DATA / "goldstein_32x32.npz"), "--method", method]) == 0
    out = capsys.readouterr().out
    assert f"method: {method} (" in out
    for col in ("units", "stably_active", "stably_inactive", "unstable"):
        assert col in out
    assert "output" in out
    assert ("branch-and-bound per layer" in out) == (method in ("milp", "exact"))
    assert ("stability of every hidden unit" in out) == (method == "stability")


def test_bounds_explicit_box_and_broadcast(tmp_path, capsys):
    net = Network([np.eye(3), np.ones((1, 3))], [np.array([-5.0, 5.0, 0.0]), np.zeros(1)])
    net.save(tmp_path / "m.npz")
    assert main(["bounds", str(tmp_path / "m.npz"), "--lo", "-1", "--hi", "1", "--method", "interval"]) == 0
    out = capsys.readouterr().out
    # unit 0 is always inactive, unit 1 always active, unit 2 unstable
    line = [l for l in out.splitlines() if l.startswith("0 ")][0].split()
    assert line[1:6] == ["hidden", "3", "1", "1", "1"]  # layer 0, the index the API takes


def test_bounds_errors(tmp_path, capsys):
    net = Network([np.ones((2, 2)), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    net.save(tmp_path / "m.npz")
    assert main(["bounds", str(tmp_path / "m.npz"), "--lo", "1", "--hi", "0"]) == 2
    assert "lo[0] = 1.0 > hi[0] = 0.0" in capsys.readouterr().err
    assert main(["bounds", str(tmp_path / "m.npz")]) == 2
    assert "has no input domain: pass --lo and --hi" in capsys.readouterr().err
    assert main(["bounds", str(tmp_path / "missing.onnx")]) == 2
    assert "missing.onnx" in capsys.readouterr().err


def test_console_script_runs():
    r = subprocess.run(
        [sys.executable, "-m", "emlpress", "bounds", str(DATA / "goldstein_32x32.npz")],
        capture_output=True, text=True, check=True,
    )
    assert "stable hidden units" in r.stdout


@pytest.mark.parametrize("method,suffix", [("interval", ".npz"), ("lp", ".npz"), ("crown", ".h5")])
def test_compress_writes_an_equal_smaller_model(method, suffix, tmp_path, capsys):
    from emlpress.io import load_model

    out = tmp_path / f"small{suffix}"
    src = DATA / "goldstein_32x32.npz"
    assert main(["compress", str(src), "--bounds", method, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    for col in ("units_before", "units_after", "removed_inactive", "folded_dependent", "merged"):
        assert col in text
    assert f"wrote {out}" in text
    net, small = Network.load(src), load_model(out)
    assert small.n_neurons < net.n_neurons
    X = np.random.default_rng(0).uniform(net.lo, net.hi, (5000, 2))
    Y = net.forward(X)
    assert np.abs(small.forward(X) - Y).max() <= 1e-9 * np.abs(Y).max()  # float64 in .h5 too


def test_compress_errors(tmp_path, capsys):
    assert main(["compress", str(DATA / "goldstein_32x32.npz"), "-o", str(tmp_path / "x.txt")]) == 2
    assert "must end in .npz, .h5 or .keras" in capsys.readouterr().err
    assert main(["compress", str(DATA / "goldstein_32x32.npz"), "--lo", "0", "--hi", "-1",
                 "-o", str(tmp_path / "x.npz")]) == 2
    assert "lo[0] = 0.0 > hi[0] = -1.0" in capsys.readouterr().err
    assert main(["compress", str(DATA / "goldstein_32x32.npz"), "-o", str(tmp_path / "nowhere" / "x.npz")]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err


def test_tpc_generate_and_run_errors(tmp_path, capsys):
    assert main(["tpc", "generate", "--out", str(tmp_path), "--rows", "5", "--benchmarks", "Saxpy",
                 "--hw", "t1", "--repeats", "1"]) == 0
    assert (tmp_path / "Saxpy_t1.csv").exists()
    assert main(["tpc", "run", "--data", str(tmp_path), "--topologies", "3-3-3"]) == 2
    assert "unknown topology '3-3-3'" in capsys.readouterr().err
    assert main(["tpc", "run", "--data", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert (tmp_path / "manifest.json").exists()
    assert main(["tpc", "run", "--data", str(tmp_path), "--max-iterations", "-2"]) == 2
    assert "argument --max-iterations: must be an integer >= 0, got -2" in capsys.readouterr().err
    # 5 rows: 1 for calibration, which cannot give a 90% margin
    assert main(["tpc", "run", "--data", str(tmp_path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "Saxpy has 5 rows, 1 for calibration and 3 for training: too few" in err
    assert "(at least 54 rows" in err


# --- everyday use (issue 25): one line and a documented exit status, never a traceback ---

@pytest.mark.parametrize("suffix, content, message", [
    (".npz", b"just some text\n", "not a network file (an .npz archive written by Network.save)"),
    (".h5", b"just some text\n", "not a Keras HDF5 model file (OSError"),
    (".onnx", b"\x08\xff\xff\xff\x12garbage", "not an ONNX model file (DecodeError"),
    (".pt", b"just some text\n", "not a PyTorch model file"),
])
def test_corrupt_model_files_name_the_file(tmp_path, capsys, suffix, content, message):
    p = tmp_path / f"bad{suffix}"
    p.write_bytes(content)
    assert main(["bounds", str(p), "--lo", "0", "--hi", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(p) in err and message in err
    assert "allow_pickle" not in err and "Traceback" not in err


def test_a_missing_framework_names_the_extra(tmp_path, capsys, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_onnx(name, *a, **k):
        if name == "onnx" or name.startswith("onnx."):
            raise ModuleNotFoundError("No module named 'onnx'")
        return real(name, *a, **k)

    p = tmp_path / "m.onnx"
    p.write_bytes(b"\x08\x07")
    monkeypatch.setattr(builtins, "__import__", no_onnx)
    monkeypatch.delitem(sys.modules, "onnx", raising=False)
    monkeypatch.delitem(sys.modules, "emlpress.io.onnx", raising=False)
    assert main(["bounds", str(p), "--lo", "0", "--hi", "1"]) == 2
    assert "needs onnx: pip install 'emlpress[onnx]'" in capsys.readouterr().err


def test_negative_and_infinite_numbers_on_the_command_line(capsys):
    model = str(DATA / "goldstein_32x32.npz")
    assert main(["bounds", model, "--lo", "-1e-3", "-0.4", "--hi", "0", "0.1"]) == 0
    assert "input box: lo=[-0.001, -0.4] hi=[0.0, 0.1]" in capsys.readouterr().out
    assert main(["bounds", model, "--lo", "-inf", "--hi", "1"]) == 2
    assert "--lo -inf: the input box must be finite" in capsys.readouterr().err


def test_overflowing_bounds_are_an_error_not_nan(capsys):
    model = str(DATA / "goldstein_32x32.npz")
    for method in ("interval", "crown", "lp"):
        assert main(["bounds", model, "--lo", "-1e307", "--hi", "1e307", "--method", method]) == 2
        err = capsys.readouterr().err
        assert "bounds overflow float64 at layer" in err and "nan" in err.split("(")[1]


def test_bounds_output_is_clean_and_numbered_as_the_api(tmp_path):
    """A fresh process writing to a file: no HiGHS banner on stdout; the table's rows are
    the API's layer indices."""
    import subprocess

    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        r = subprocess.run([sys.executable, "-m", "emlpress", "bounds", str(DATA / "goldstein_32x32.npz"),
                            "--method", "lp"], stdout=f, stderr=subprocess.PIPE, text=True)
    assert r.returncode == 0
    text = out.read_text()
    assert text.startswith(str(DATA / "goldstein_32x32.npz")) and "HiGHS" not in text
    rows = [line.split()[:2] for line in text.splitlines() if line.split()[:1] in (["0"], ["1"], ["2"])]
    assert rows == [["0", "hidden"], ["1", "hidden"], ["2", "output"]]


def test_compressed_keras_files_keep_their_domain(tmp_path, capsys):
    from emlpress.io import load_model

    src = Network.load(DATA / "goldstein_32x32.npz")
    for suffix in (".h5", ".keras"):
        out = tmp_path / f"small{suffix}"
        assert main(["compress", str(DATA / "goldstein_32x32.npz"), "-o", str(out)]) == 0
        back = load_model(out)
        np.testing.assert_array_equal(back.lo, src.lo)
        np.testing.assert_array_equal(back.hi, src.hi)
        capsys.readouterr()
        assert main(["bounds", str(out)]) == 0  # no --lo/--hi needed
    assert main(["compress", str(DATA / "goldstein_32x32.npz"), "-o", str(tmp_path)]) == 2
    assert "must end in" in capsys.readouterr().err


def test_interrupts_and_closed_pipes_end_in_one_line(monkeypatch, capsys):
    import emlpress.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    def closed(args):
        raise BrokenPipeError

    for fn, code, text in ((interrupted, cli.EXIT_INTERRUPTED, "emlpress: interrupted"), (closed, cli.EXIT_FAILURE, "")):
        monkeypatch.setattr(cli, "_cmd_bounds", fn)
        assert main(["bounds", str(DATA / "goldstein_32x32.npz")]) == code
        assert capsys.readouterr().err.strip() == text


def test_random_bytes_as_tpc_data_name_the_file(tmp_path, capsys):
    (tmp_path / "Saxpy_h1.csv").write_bytes(bytes(range(256)) * 4)
    assert main(["tpc", "run", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Saxpy_h1.csv: not a CSV text file" in err


def test_tpc_out_pointing_at_a_file(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    assert main(["tpc", "run", "--out", str(f)]) == 2
    assert f"argument --out: {f} is a file" in capsys.readouterr().err


def test_help_is_plain_and_every_tpc_run_option_says_its_default(capsys):
    from emlpress.cli import build_parser

    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and ":func:" not in text and "Exit status" in text
    run = build_parser()._subparsers._group_actions[0].choices["tpc"]._subparsers._group_actions[0].choices["run"]
    for action in run._actions:
        if action.dest in ("help",):
            continue
        assert action.help, f"--{action.dest} has no help text"
        if action.default not in (None, False) and not action.choices:
            assert "default" in action.help, f"--{action.dest} does not say its default"


def test_submodules_are_attributes_and_import_lazily():
    code = ("import sys, emlpress; assert 'emlpress.compress' not in sys.modules; "
            "f = emlpress.compress.lossless; g = emlpress.milp.add_network; "
            "assert 'tensorflow' not in sys.modules; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_help_loads_neither_numba_nor_tensorflow():
    """`emlpress --help` (and a subcommand's) must start fast: numba (the TPC kernels, ~0.4 s,
    reached through the host fingerprint and the tpc pipeline), TensorFlow, torch and Dask
    load only in the commands that run them."""
    heavy = ("numba", "tensorflow", "tf_keras", "torch", "dask", "distributed")
    code = ("import sys\nfrom emlpress.cli import main\n"
            "for argv in (['--help'], ['tpc', 'run', '--help'], ['bench', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            f"print('loaded:', *[m for m in {heavy!r} if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "usage: emlpress [-h]" in r.stdout and "usage: emlpress tpc run" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "loaded:"


def test_tensorflow_starts_quietly():
    code = "from emlpress.io.keras import tf_keras; tf_keras(); print('ok')"
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "EMLPRESS_VERBOSE")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "ok"
    assert "oneDNN" not in r.stderr and "cuda" not in r.stderr.lower() and "absl" not in r.stderr


def test_resume_refuses_other_settings(tmp_path, capsys):
    assert main(["tpc", "run", "--resume", str(tmp_path), "--coverage", "0.8"]) == 2
    assert "drop --coverage" in capsys.readouterr().err
    assert main(["tpc", "run", "--resume", str(tmp_path)]) == 2
    assert "not a tpc run folder (no logs/config.json)" in capsys.readouterr().err


def test_quantize_writes_a_model_the_other_commands_read(tmp_path, capsys):
    pytest.importorskip("ai_edge_litert")
    src = str(DATA / "goldstein_32x32.npz")
    out = tmp_path / "gp8.tflite"
    assert main(["quantize", src, "--mode", "int8", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}: mode int8" in text and "calibration: 2000 uniform samples" in text
    from emlpress.io.tflite import read_tflite

    assert read_tflite(out).kind == "int8"
    net = Network.load(src)
    lo, hi = (str(v) for v in (net.lo[0], net.hi[0]))
    assert main(["bounds", str(out), "--lo", lo, "--hi", hi, "--method", "crown"]) == 0
    assert "stable hidden units" in capsys.readouterr().out
    assert main(["compress", str(out), "--lo", lo, "--hi", hi, "--bounds", "interval",
                 "-o", str(tmp_path / "c.npz")]) == 0
    assert main(["bounds", str(out)]) == 2  # a .tflite has no stored domain
    assert "has no input domain" in capsys.readouterr().err


def test_quantize_table_prints_every_mode(tmp_path, capsys):
    pytest.importorskip("ai_edge_litert")
    src = str(DATA / "goldstein_32x32.npz")
    assert main(["quantize", src, "--table", "--samples", "300"]) == 0
    text = capsys.readouterr().out
    for mode in ("float32", "dynamic", "int8", "int8-fallback", "float16", "16x8", "16x8-fallback"):
        assert f"\n{mode} " in text or f"\n  {mode} " in text or f" {mode} " in text
    assert "targets: the float model's outputs" in text


def test_quantize_errors(tmp_path, capsys):
    net = Network([np.ones((2, 2)), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    net.save(tmp_path / "m.npz")
    assert main(["quantize", str(tmp_path / "m.npz"), "--table"]) == 2
    assert "has no input domain: pass --data, or --lo and --hi" in capsys.readouterr().err
    assert main(["quantize", str(tmp_path / "m.npz"), "-o", str(tmp_path / "x.onnx")]) == 2
    assert "must end in .tflite" in capsys.readouterr().err
    assert main(["quantize", str(tmp_path / "m.npz")]) == 2
    assert "give -o OUT.tflite" in capsys.readouterr().err
    np.savez(tmp_path / "d.npz", X=np.zeros((5, 3)))
    assert main(["quantize", str(tmp_path / "m.npz"), "--table", "--data", str(tmp_path / "d.npz")]) == 2
    assert "the model takes 2 inputs" in capsys.readouterr().err


def test_epidemics_run_help_gives_every_default(capsys):
    with pytest.raises(SystemExit) as e:
        main(["epidemics", "run", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for opt in ("--topologies", "--variants", "--horizons", "--budget-per-week", "--epochs", "--time-limit"):
        assert opt in out
    assert out.count("(default:") >= 7


def test_epidemics_bad_horizon_is_a_usage_error(tmp_path, capsys):
    assert main(["epidemics", "run", "--horizons", "0", "--out", str(tmp_path)]) == 2
    assert "argument --horizons: must be an integer >= 1 and <= 52" in capsys.readouterr().err


def test_bounds_milp_node_limit_reaches_the_search(capsys):
    model = str(DATA / "goldstein_32x32.npz")
    assert main(["bounds", model, "--method", "exact", "--milp-node-limit", "1",
                 "--milp-time-limit", "inf"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("branch-and-bound per layer"):].splitlines()[3:]
    unresolved = [int(line.split()[7]) for line in table]  # per layer, after "layer"
    assert sum(unresolved) > 0  # one node per side: the output's sides are cut short
    assert main(["bounds", model, "--method", "exact"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("branch-and-bound per layer"):].splitlines()[3:]
    assert sum(int(line.split()[7]) for line in table) == 0
    assert main(["bounds", model, "--method", "exact", "--milp-node-limit", "0"]) == 2
    assert "--milp-node-limit: must be an integer >= 1, got 0" in capsys.readouterr().err
