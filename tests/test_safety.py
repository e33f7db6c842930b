"""Issue 37: nothing runs on load, nothing half-written, services on localhost, every option
checked before any work, one error line naming the option or file; tried as a user would,
through the CLI (or the API where the user meets it there)."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emlpress import Network
from emlpress.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"
MODEL = str(DATA / "goldstein_32x32.npz")


def _one_line(err: str) -> str:
    lines = [l for l in err.splitlines() if l.startswith("emlpress:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- 2. model files: nothing in them runs --------------------------------------------------

@pytest.fixture(scope="module")
def keras():
    from emlpress.io.keras import tf_keras

    return tf_keras()


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_a_lambda_layer_is_refused_before_its_code_runs(keras, tmp_path, capsys, suffix):
    marker = tmp_path / "ran"
    code = f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]"
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(3, activation="relu"),
                              keras.layers.Lambda(eval(code), name="hook"), keras.layers.Dense(1)])
    path = tmp_path / f"m{suffix}"
    model.save(path)
    marker.unlink(missing_ok=True)  # building the model ran it once; loading must not
    assert main(["bounds", str(path), "--lo", "0", "--hi", "1"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(path) in line and "layer 1 'hook' (Lambda) is not supported" in line
    assert not marker.exists()


def test_keras_files_outside_dense_relu_name_the_file_and_layer(keras, tmp_path, capsys):
    m = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(3, activation="sigmoid", name="s"),
                          keras.layers.Dense(1)])
    m.save(tmp_path / "sig.h5")
    assert main(["bounds", str(tmp_path / "sig.h5"), "--lo", "0", "--hi", "1"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{tmp_path / 'sig.h5'}: layer 0 's' (Dense): activation 'sigmoid'" in line and "activation 'sigmoid'" in line
    import h5py

    with h5py.File(tmp_path / "foreign.h5", "w") as f:  # an HDF5 file, not a Keras model
        f["x"] = np.arange(3)
    assert main(["bounds", str(tmp_path / "foreign.h5"), "--lo", "0", "--hi", "1"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{tmp_path / 'foreign.h5'}: an HDF5 file without a Keras model" in line
    assert "GFile" not in line


class _Payload:
    """A pickle that runs code when unpickled (what weights_only=False would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_torch_files_are_unpickled_without_running_code(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 1), nn.Identity()))
    torch.save(model, tmp_path / "ok.pt")
    assert main(["bounds", str(tmp_path / "ok.pt"), "--lo", "0", "--hi", "1"]) == 0
    capsys.readouterr()
    marker = tmp_path / "ran"
    torch.save({"model": model, "x": _Payload(marker)}, tmp_path / "evil.pt")
    assert main(["bounds", str(tmp_path / "evil.pt"), "--lo", "0", "--hi", "1"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{tmp_path / 'evil.pt'}: refused without loading it" in line and "mkdir" in line
    assert not marker.exists()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    assert main(["bounds", str(tmp_path / "sd.pt"), "--lo", "0", "--hi", "1"]) == 2
    assert "a state dict (4 tensors) has no architecture" in _one_line(capsys.readouterr().err)
    torch.jit.script(model).save(tmp_path / "ts.pt")
    assert main(["bounds", str(tmp_path / "ts.pt"), "--lo", "0", "--hi", "1"]) == 2
    assert "a TorchScript archive (torch.jit.save) is not read" in _one_line(capsys.readouterr().err)


# --- 3. Dask: every service on the loopback interface --------------------------------------

def test_a_battery_listens_on_loopback_only(tmp_path):
    psutil = pytest.importorskip("psutil")
    from emlpress.pipelines import battery

    seen = []

    def listening(folder):  # the cluster is up: every socket this run listens on
        me = psutil.Process()
        for p in [me, *me.children(recursive=True)]:
            seen.extend(c.laddr for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN)

    res = battery.run(tmp_path / "b", "loopback", {}, [battery.Task("t", dict)], workers=1,
                      on_start=listening, progress=False)
    assert res.complete and res.results["t"]["threads"] >= 1
    # scheduler, its dashboard, the nanny and the worker (and the worker's own dashboard)
    assert len(seen) >= 3, seen
    assert {a.ip for a in seen} == {"127.0.0.1"}, seen


# --- 4. outputs: atomic, checked before the work -------------------------------------------

@pytest.fixture(params=["tmpfs", "injected"])
def small_disk(request, tmp_path):
    """A 512 KiB tmpfs to fill (root only; skipped elsewhere), or None: the disk then fills
    by a fault injected into the write."""
    if request.param == "injected":
        yield None
        return
    d = tmp_path / "disk"
    d.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(d)],
                                           capture_output=True).returncode:
        pytest.skip("no tmpfs can be mounted here (the injected fault runs instead)")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def _fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` until at most ``leave`` bytes are free."""
    with open(disk / "filler", "wb") as f:
        try:
            while os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize > leave:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError:
            pass


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_a_full_disk_leaves_the_existing_output_intact(small_disk, tmp_path, capsys, suffix,
                                                       monkeypatch):
    """compress -o over a good file on a disk that fills: the old file is still there and
    loadable, no temporary file is left, the error names the file (exit 1)."""
    from emlpress.io import load_model

    where = small_disk or tmp_path
    out = where / f"model{suffix}"
    assert main(["compress", MODEL, "--bounds", "interval", "-o", str(out)]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    if small_disk is not None:
        _fill(small_disk, 0)
    else:  # the disk fills during the write
        from emlpress import _atomic

        real = _atomic._fsync_path

        def full(path, directory=False):
            if not directory:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real(path, directory)

        monkeypatch.setattr(_atomic, "_fsync_path", full)
    assert main(["compress", MODEL, "--bounds", "crown", "-o", str(out)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert f"{out}: cannot be written (" in line and "No space left on device" in line
    assert out.read_bytes() == before
    assert load_model(out).n_params > 0
    assert sorted(p.name for p in where.iterdir()) == sorted(
        ["filler", out.name] if small_disk is not None else [out.name])


def _writers():
    """Every writer of emlpress._atomic, each with content larger than a full disk takes:
    every output of the package (compress -o, quantize -o, run folders' CSV/JSON/plots/models,
    bench results) goes through one of them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from emlpress import Network, _atomic

    def figure(path):
        fig, ax = plt.subplots(figsize=(8, 6))
        ax.plot(np.random.default_rng(0).normal(size=20_000))
        _atomic.save_figure_atomic(fig, path, dpi=100)
        plt.close(fig)

    net = Network([np.ones((300, 300)), np.ones((1, 300))], [np.zeros(300), np.zeros(1)])
    return {
        "bytes": lambda path: _atomic.write_bytes_atomic(path, b"x" * 200_000),
        "text": lambda path: _atomic.write_text_atomic(path, "x" * 200_000),
        "csv": lambda path: _atomic.write_csv_atomic(path, pd.DataFrame({"a": np.arange(50_000)})),
        "json": lambda path: _atomic.write_json_atomic(path, list(range(50_000))),
        "figure.png": figure,
        "network.npz": lambda path: _atomic.write_atomic(path, net.save),
    }


@pytest.mark.parametrize("kind", ["bytes", "text", "csv", "json", "figure.png", "network.npz"])
def test_every_writer_leaves_the_old_file_on_a_full_disk(small_disk, tmp_path, kind, monkeypatch):
    """Each atomic writer over an existing file on a disk that fills: WriteError naming the
    file, the old content byte for byte, no temporary file left."""
    from emlpress import _atomic

    where = small_disk or tmp_path
    out = where / f"out.{kind}"
    out.write_bytes(b"the good old content")
    if small_disk is not None:
        _fill(small_disk, 0)
    else:
        monkeypatch.setattr(_atomic, "_fsync_path", lambda path, directory=False: (_ for _ in ()).throw(
            OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
    with pytest.raises(_atomic.WriteError, match=rf"{out}: cannot be written \(No space left on device\); "
                                                 "the existing file is unchanged"):
        _writers()[kind](out)
    assert out.read_bytes() == b"the good old content"
    assert sorted(p.name for p in where.iterdir()) == sorted(
        ["filler", out.name] if small_disk is not None else [out.name])


def test_an_unwritable_output_is_refused_before_the_work(tmp_path, capsys, monkeypatch):
    import emlpress.cli as cli

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK) and os.geteuid() != 0:
            pytest.skip("permissions are not enforced here")
        calls = []
        monkeypatch.setattr(cli, "_tighten", lambda *a: calls.append(a))
        probe = ro / "probe"
        try:
            probe.write_text("x")  # root writes anywhere: a read-only file system instead
            probe.unlink()
            import tempfile

            def refuse(*a, **k):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))

            monkeypatch.setattr(tempfile, "mkstemp", refuse)
        except PermissionError:
            pass
        for args in (["compress", MODEL, "-o", str(ro / "small.npz")],
                     ["quantize", MODEL, "-o", str(ro / "m.tflite")]):
            assert main(args) == 2
            line = _one_line(capsys.readouterr().err)
            assert line.startswith(f"emlpress: error: -o {ro / args[-1].split('/')[-1]}: cannot write in {ro}")
        assert calls == []  # no bounds were computed
    finally:
        ro.chmod(0o700)


# --- 5. options checked before any work: one line naming the option, exit 2 -----------------

@pytest.mark.parametrize("argv, message", [
    (["epidemics", "run", "--time-limit", "-1"], "argument --time-limit: must be a number of seconds > 0, got -1"),
    (["epidemics", "run", "--time-limit", "0"], "argument --time-limit: must be a number of seconds > 0, got 0"),
    (["epidemics", "run", "--horizons", "3", "1000"], "argument --horizons: must be an integer >= 1 and <= 52"),
    (["epidemics", "run", "--epochs", "0"], "argument --epochs: must be an integer >= 1, got 0"),
    (["epidemics", "run", "--budget-per-week", "nan"], "argument --budget-per-week: must be a finite number >= 0"),
    (["quantize", MODEL, "--table", "--samples", "-5"], "argument --samples: must be an integer >= 2, got -5"),
    (["bounds", MODEL, "--threads", "100000"], "argument --threads: must be an integer >= 1 and <= "),
    (["bounds", MODEL, "--method", "stability", "--time-limit", "-1"], "argument --time-limit: must be a number of seconds >= 0"),
    (["compress", MODEL, "-o", "x.npz", "--milp-time-limit", "0"], "argument --milp-time-limit: must be a number of seconds > 0"),
    (["tpc", "run", "--coverage", "1.5"], "argument --coverage: must be a fraction in (0, 1)"),
    (["tpc", "run", "--max-error", "-0.01"], "argument --max-error: must be a finite limit > 0"),
    (["tpc", "run", "--epochs", "ten"], "argument --epochs: 'ten' is not an integer"),
    (["tpc", "run", "--workers", "0"], "argument --workers: must be an integer >= 1"),
    (["study", "run", "--seeds", "0"], "argument --seeds: must be an integer >= 1, got 0"),
    (["tpc", "generate", "--rows", "0"], "argument --rows: must be an integer >= 1, got 0"),
    (["epidemics", "run", "--topologies", "9"], "argument --topologies: invalid choice: '9'"),
    (["epidemics", "run", "--out", MODEL], f"argument --out: {MODEL} is a file"),
    (["tpc", "run", "--initial-sparsity", "0.5", "--final-sparsity", "0.2"],
     "--initial-sparsity 0.5 > --final-sparsity 0.2"),
])
def test_bad_options_are_one_line_naming_the_option(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)  # any run folder would appear here
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("emlpress: error: ") and message in line, line
    assert "_" not in line.split(":")[2].split()[-1]  # --time-limit, never time_limit
    assert list(tmp_path.iterdir()) == []  # nothing trained, no folder left


def test_the_epidemics_api_checks_before_the_folder(tmp_path):
    from emlpress.pipelines import epidemics as epi

    for bad, text in ((dict(time_limit=-1.0), "time_limit must be > 0 seconds"),
                      (dict(epochs=0), "epochs must be a positive integer"),
                      (dict(horizons=[1000]), "horizons: 1000 weeks; give 1 to 52")):
        with pytest.raises(ValueError, match=text):
            epi.run(epi.Config(out=tmp_path, **bad))
    assert list(tmp_path.iterdir()) == []


def test_quantize_data_errors_name_the_file_and_the_cause(tmp_path, capsys):
    pytest.importorskip("ai_edge_litert")
    text = tmp_path / "data.npz"
    text.write_text("x,y\n1,2\n")
    assert main(["quantize", MODEL, "--table", "--data", str(text)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"--data {text}: not an .npz archive" in line and "allow_pickle" not in line
    nan = tmp_path / "nan.npz"
    np.savez(nan, X=np.random.default_rng(0).uniform(-1, 1, (50, 2)), Y=np.full(50, np.nan))
    assert main(["quantize", MODEL, "--table", "--data", str(nan)]) == 2
    assert f"--data {nan}: Y has 50 NaN or infinite values (the first in row 0)" in _one_line(
        capsys.readouterr().err)
    flat = tmp_path / "flat.npz"
    np.savez(flat, X=np.random.default_rng(0).uniform(-1, 1, (50, 2)), Y=np.ones(50))
    assert main(["quantize", MODEL, "--table", "--data", str(flat)]) == 2
    assert "output 0 is constant (1 on every row), so R2 is undefined" in _one_line(
        capsys.readouterr().err)


def test_a_nan_quantization_table_fails(tmp_path, capsys, monkeypatch):
    """Whatever makes a metric NaN, the command does not exit 0 with it."""
    pytest.importorskip("ai_edge_litert")
    from emlpress.keras import quantization as lossy  # where quantization_table looks it up

    real = lossy.predict_tflite
    monkeypatch.setattr(lossy, "predict_tflite", lambda c, X, *a: real(c, X, *a) * np.nan)
    assert main(["quantize", MODEL, "--table", "--samples", "50", "--modes", "int8"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("emlpress: failed: quantization table: rmse_0") and "came out NaN" in line


# --- 7. messages ---------------------------------------------------------------------------

def test_huge_weights_are_blamed_on_the_weights(tmp_path, capsys):
    net = Network([np.array([[1e300, 1.0]]), np.array([[1e300]])], [np.zeros(1), np.zeros(1)])
    net.save(tmp_path / "huge.npz")
    assert main(["bounds", str(tmp_path / "huge.npz"), "--lo", "0", "--hi", "1"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "bounds overflow float64" in line and "the weights are too large (largest |weight| 1e+300;" in line
    assert "input box is too large" not in line


def test_exact_bounds_on_a_huge_box_are_a_usage_error_on_their_own_line(capsys):
    assert main(["bounds", MODEL, "--lo", "-1e16", "--hi", "1e16", "--method", "exact"]) == 2
    err = capsys.readouterr().err
    line = _one_line(err)
    assert line == err.splitlines()[-1]  # after the progress bar, not glued to it
    assert "HiGHS refused" in line and "the input box or the weights are too large" in line


def test_a_corrupt_run_config_on_resume_names_the_file(tmp_path, capsys):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "config.json").write_text("{ not json")
    assert main(["tpc", "run", "--resume", str(tmp_path)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"--resume {tmp_path}: {tmp_path / 'logs' / 'config.json'} cannot be read" in line


def test_stability_without_a_time_limit_does_not_blame_one(capsys):
    from emlpress.bounds.stability import TIME_LIMIT

    assert main(["bounds", MODEL, "--method", "stability", "--time-limit", "inf"]) == 0
    out = capsys.readouterr().out
    assert "by the time limit" not in out and "no time limit was set" in out
    assert main(["bounds", MODEL, "--method", "stability", "--time-limit", "5"]) == 0
    assert "the time limit (5 s)" in capsys.readouterr().out
    # no --time-limit: the documented default limit, named
    assert main(["bounds", MODEL, "--method", "stability"]) == 0
    assert f"the time limit ({TIME_LIMIT:g} s)" in capsys.readouterr().out


# --- 9. the emlpress.milp docstring's example runs ------------------------------------------

def test_the_milp_module_example_runs():
    import doctest

    import emlpress.milp

    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder(recurse=False).find(emlpress.milp):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 8 and result.failed == 0


# --- 1. the README's commands on the install the README gives: emlpress[keras] ----------------

_CLOSURE = r'''
import importlib.abc, importlib.metadata as md, json, sys
from packaging.requirements import Requirement

def closure(name, extras=()):
    """Distributions `pip install name[extras]` brings, by the installed metadata."""
    seen, todo = set(), [(name, tuple(extras))]
    while todo:
        dist, ex = todo.pop()
        key = dist.lower().replace("_", "-")
        if (key, ex) in seen:
            continue
        seen.add((key, ex))
        try:
            reqs = md.requires(dist) or []
        except md.PackageNotFoundError:
            continue
        for r in map(Requirement, reqs):
            env = [{"extra": e} for e in ex] or [{"extra": ""}]
            if r.marker is None or any(r.marker.evaluate(e) for e in env):
                todo.append((r.name, tuple(sorted(r.extras))))
    return {k for k, _ in seen}

'''

_GUARD = _CLOSURE + r'''
allowed = closure("emlpress", ["keras"])
owners = md.packages_distributions()

class OnlyTheInstall(importlib.abc.MetaPathFinder):
    """Modules of distributions the install would not bring are not there."""
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        dists = {d.lower().replace("_", "-") for d in owners.get(top, [])}
        if top in sys.stdlib_module_names or not dists or dists & allowed:
            return None
        raise ModuleNotFoundError(f"No module named {top!r} (from {sorted(dists)}, outside "
                                  "emlpress[keras])", name=top)

sys.meta_path.insert(0, OnlyTheInstall())
from emlpress.cli import main
for argv in json.loads(sys.argv[1]):
    code = main(argv)
    print("exit", code, " ".join(argv[:2]), flush=True)
    if code:
        sys.exit(code)
'''


@pytest.mark.slow
def test_readme_commands_run_their_default_paths_on_the_keras_install(tmp_path):
    """`pip install '.[keras]'` then the README's commands, each on its default path (small
    sizes): a module from outside the install (scikit-learn in [test] only, once) fails it."""
    pytest.importorskip("packaging")
    pytest.importorskip("ai_edge_litert")
    runs = [
        ["epidemics", "run", "--topologies", "8", "--variants", "baseline", "int8", "--horizons",
         "1", "--epochs", "2", "--bounding", "reachable", "--out", str(tmp_path / "runs")],
        ["compress", MODEL, "--bounds", "lp", "-o", str(tmp_path / "small.h5")],
        ["bounds", str(tmp_path / "small.h5")],
        ["quantize", MODEL, "--table", "--samples", "100", "--modes", "int8"],
        ["quantize", MODEL, "-o", str(tmp_path / "m.tflite")],
        ["tpc", "generate", "--out", str(tmp_path / "tpc"), "--rows", "5", "--benchmarks", "Saxpy",
         "--hw", "t1", "--repeats", "1"],
    ]
    r = subprocess.run([sys.executable, "-c", _GUARD, json.dumps(runs)], capture_output=True,
                       text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert r.stdout.count("exit 0") == len(runs)
    import pandas as pd

    summary = pd.read_csv(next((tmp_path / "runs").glob("epidemics*/run.summary.csv")))
    tree = summary[summary["model"] == "tree"]  # the default tree was trained and planned
    assert list(tree["bounding"]) == ["-", "loop"] and np.isfinite(tree["simulated_S"]).all()
    assert set(summary["model"]) == {"8", "8+int8", "tree"}
    ptq = pd.read_csv(next((tmp_path / "runs").glob("epidemics*/ptq_8.csv")))
    assert len(ptq) == 7 and np.isfinite(ptq.filter(like="rmse_")).all().all()


#: imports of the package outside emlpress[keras], each where its own extra is documented
_OTHER_EXTRAS = {"onnx": {"io/onnx.py"}, "torch": {"io/torch.py"},
                 "pytest": {"bench/suite.py"}, "pytest_benchmark": {"bench/suite.py"},
                 "dask_jobqueue": {"pipelines/jobqueue.py"},  # the [hpc] extra (--cluster)
                 # the [peers] extra: emlpress.interop writes bounds onto the peers' models
                 "gurobi_ml": {"interop/gurobi.py"}, "omlt": {"interop/omlt.py"}}


def test_every_import_of_the_package_is_in_the_keras_install():
    """Every module the package imports anywhere (inside functions too, as epidemics' tree
    did) comes with `pip install '.[keras]'`, but the importers and the bench, whose
    extras the README names; the static side of the README-commands test above."""
    import ast
    import importlib.metadata as md

    pytest.importorskip("packaging")
    ns = {}
    exec(_CLOSURE, ns)
    allowed = ns["closure"]("emlpress", ["keras"])
    owners = md.packages_distributions()
    root = Path(__file__).resolve().parents[1] / "python" / "emlpress"
    outside = {}
    for f in root.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for top in {n.split(".")[0] for n in names}:
                dists = {d.lower().replace("_", "-") for d in owners.get(top, [])}
                if top not in sys.stdlib_module_names and top != "emlpress" and not dists & allowed:
                    outside.setdefault(top, set()).add(f.relative_to(root).as_posix())
    assert "numpy" not in outside and "scikit-learn" in allowed
    assert outside == {k: v for k, v in _OTHER_EXTRAS.items() if k in outside}, outside
    assert set(outside) == set(_OTHER_EXTRAS)  # the list above is not stale
