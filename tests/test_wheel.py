"""Wheels that run elsewhere: the sdist builds, a wheel built from it is portable (no
instruction beyond the x86-64 baseline unless EMLPRESS_NATIVE=ON is asked for), and it imports
and computes a sound bound in a fresh virtual environment, through the API and the installed
`emlpress` command.

One slow test, a few minutes: it compiles the extension once (from the sdist, in a temporary
build folder, so the checkout's build/ and any editable install are left alone). The fresh venv
gets the wheel with --no-deps and sees the runtime dependencies already installed where the
tests run (a .pth file, no download); emlpress itself must come from the wheel."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# instructions beyond x86-64's baseline (SSE2): VEX/EVEX-encoded (AVX, AVX2, FMA, AVX-512, BMI2)
# and the SSE3/SSSE3/SSE4 ones a compiler picks for Eigen's loops
_BEYOND_BASELINE = re.compile(
    r"%[yz]mm\d|\t(v[a-z]+|roundsd|roundpd|roundss|roundps|ptest|pminsd|pmaxsd|pmulld|pblendvb|"
    r"blendvpd|blendvps|pcmpgtq|pshufb|haddpd|lddqu|movddup|dppd|insertps|pextrq|popcnt|lzcnt|"
    r"tzcnt|andn|shlx|shrx|sarx|bextr)\b")


def _run(cmd, **kw):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=1500, **kw)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))}\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
    return p


@pytest.mark.slow
def test_sdist_builds_a_portable_wheel_that_runs_in_a_fresh_venv(tmp_path):
    pytest.importorskip("build")
    dist = tmp_path / "dist"
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)

    # the sdist: everything the build needs, nothing of a checkout's by-products
    _run([sys.executable, "-m", "build", "--sdist", "--outdir", dist, ROOT], env=env)
    (sdist,) = dist.glob("emlpress-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("CMakeLists.txt", "pyproject.toml", "cpp/src/bound_propagation.cpp",
                   "cpp/bindings/module.cpp", "cpp/include/emlpress/rounding.hpp",
                   "python/emlpress/network.py", "data/goldstein_32x32.npz"):
        assert needed in names, f"the sdist lacks {needed}"
    assert not any(n.startswith(("build/", ".venv/", "site/")) for n in names)

    # a wheel from the sdist, with the defaults: portable
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist, sdist,
          f"-Cbuild-dir={tmp_path / 'build'}"], env=env)
    (wheel,) = dist.glob("emlpress-*.whl")

    # a fresh venv: the wheel alone, the runtime dependencies seen through a .pth file
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    py = venv / "bin" / "python"
    _run([py, "-m", "pip", "install", "--no-deps", "--no-index", wheel], env=env)
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
                .stdout.strip())
    here = [p for p in sys.path if p.endswith("-packages") and Path(p).is_dir()]
    (site / "zz_test_dependencies.pth").write_text("\n".join(here) + "\n")

    work = tmp_path / "work"  # not the checkout: python/ and build/ must not be importable
    work.mkdir()
    shutil.copy(ROOT / "data" / "goldstein_32x32.npz", work)
    check = r"""
import json, sys
import numpy as np
import emlpress, emlpress._core as core
from emlpress import Network, bounds
net = Network.load("goldstein_32x32.npz")
b = bounds.crown(net)
X = np.random.default_rng(0).uniform(net.lo, net.hi, size=(20000, net.n_in))
sound = all(((Z >= b.lower[l]) & (Z <= b.upper[l])).all() for l, Z in enumerate(net.preactivations(X)))
from pathlib import Path
print(json.dumps({"emlpress": emlpress.__file__, "core": core.__file__, "sound": bool(sound),
                  "stub": (Path(core.__file__).parent / "_core.pyi").is_file(),
                  "flags": core.build_info["flags"], "unstable": int(b.summary()["unstable"].sum())}))
"""
    out = json.loads(_run([py, "-c", check], cwd=work, env=env).stdout.strip().splitlines()[-1])
    assert out["emlpress"].startswith(str(venv)) and out["core"].startswith(str(venv)), out
    assert out["sound"] and out["unstable"] > 0 and out["stub"], out
    assert "-march=native" not in out["flags"], out["flags"]

    # the installed command, on the same file
    cli = _run([venv / "bin" / "emlpress", "bounds", "goldstein_32x32.npz", "--method", "crown"],
               cwd=work, env=env)
    assert "unstable" in cli.stdout

    # and the machine code is portable: nothing beyond x86-64's baseline instruction set
    if platform.machine() == "x86_64" and shutil.which("objdump"):
        asm = _run(["objdump", "-d", "--no-show-raw-insn", out["core"]]).stdout
        beyond = sorted({m.group(0).strip() for m in _BEYOND_BASELINE.finditer(asm)})
        assert not beyond, f"the portable build uses {beyond[:10]}"
