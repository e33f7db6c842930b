import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emlpress import Network
from emlpress.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize("method", ["interval", "crown", "lp", "milp", "exact", "progressive"])
def test_bounds_on_shipped_model(method, capsys):
    assert main(["bounds", str(DATA / "goldstein_32x32.npz"), "--method", method]) == 0
    out = capsys.readouterr().out
    assert f"method: {method} (" in out
    for col in ("units", "stably_active", "stably_inactive", "unstable"):
        assert col in out
    assert "output" in out
    assert ("branch-and-bound per layer" in out) == (method in ("milp", "exact"))


def test_bounds_explicit_box_and_broadcast(tmp_path, capsys):
    net = Network([np.eye(3), np.ones((1, 3))], [np.array([-5.0, 5.0, 0.0]), np.zeros(1)])
    net.save(tmp_path / "m.npz")
    assert main(["bounds", str(tmp_path / "m.npz"), "--lo", "-1", "--hi", "1", "--method", "interval"]) == 0
    out = capsys.readouterr().out
    # unit 0 is always inactive, unit 1 always active, unit 2 unstable
    line = [l for l in out.splitlines() if l.startswith("1 ")][0].split()
    assert line[1:5] == ["3", "1", "1", "1"]


def test_bounds_errors(tmp_path, capsys):
    net = Network([np.ones((2, 2)), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    net.save(tmp_path / "m.npz")
    assert main(["bounds", str(tmp_path / "m.npz"), "--lo", "1", "--hi", "0"]) == 2
    assert "lo[0] = 1.0 > hi[0] = 0.0" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no input domain"):
        main(["bounds", str(tmp_path / "m.npz")])
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
    with pytest.raises(SystemExit, match="must end in"):
        main(["compress", str(DATA / "goldstein_32x32.npz"), "-o", str(tmp_path / "x.txt")])
    assert main(["compress", str(DATA / "goldstein_32x32.npz"), "--lo", "0", "--hi", "-1",
                 "-o", str(tmp_path / "x.npz")]) == 2
    assert "lo[0] = 0.0 > hi[0] = -1.0" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="directory .*nowhere does not exist"):
        main(["compress", str(DATA / "goldstein_32x32.npz"), "-o", str(tmp_path / "nowhere" / "x.npz")])


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
    assert "max_iterations must be an integer >= 0, got -2" in capsys.readouterr().err
    # 5 rows: 1 for calibration, which cannot give a 90% margin
    assert main(["tpc", "run", "--data", str(tmp_path), "--out", str(tmp_path / "runs")]) == 2
    assert "Saxpy has 5 rows, 1 for calibration: too few for a 90% margin" in capsys.readouterr().err
