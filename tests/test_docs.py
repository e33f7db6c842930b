"""The documentation site (docs/, mkdocs.yml): it builds with MkDocs in strict mode (a broken
link, a page left out of the navigation or an API name mkdocstrings cannot find fails), and
every ```python block of its pages and of the README runs, page by page, so the examples
cannot drift from the code. Blocks of one page run in order in one process, from a scratch
folder holding the repository's data/; code that must not run here (a batch queue, a shell)
goes in ```bash or ```text blocks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# pages whose examples train with TensorFlow (the [keras] extra): tens of seconds
SLOW_PAGES = {"guide/compression.md"}
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md")) + [ROOT / "README.md"]


def _name(page: Path) -> str:
    return page.relative_to(DOCS).as_posix() if page.is_relative_to(DOCS) else page.name


def _blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


def _env() -> dict:
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_USE_LEGACY_KERAS="1",
                NO_MKDOCS_2_WARNING="1", PYTHONWARNINGS="ignore::DeprecationWarning")


def test_the_site_builds_without_warnings(tmp_path):
    site = tmp_path / "site"
    p = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                       cwd=ROOT, capture_output=True, text=True, env=_env(), timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    # the API reference is generated from the docstrings: the public names are on its pages
    for page, names in {"network": ["emlpress.network.Network.forward"],
                        "bounds": ["emlpress.bounds.crown", "emlpress.bounds.stability.stability"],
                        "compress": ["emlpress.compress.lossless.lossless",
                                     "emlpress.compress.lossy.quantize"],
                        "milp": ["emlpress.milp.add_network", "emlpress.milp.solve"],
                        "io": ["emlpress.io.from_keras", "emlpress.io.load_model"],
                        "pipelines": ["emlpress.pipelines.jobqueue.JobQueue",
                                      "emlpress.pipelines.tpc.run"]}.items():
        html = (site / "reference" / page / "index.html").read_text()
        for name in names:
            assert f'id="{name}"' in html, f"{name} is not documented on reference/{page}"
    for page in ("getting-started", "architecture", "guide/bounds", "guide/batteries"):
        assert (site / page / "index.html").exists(), page


PAGES = [pytest.param(p, id=_name(p),
                      marks=[pytest.mark.slow] if _name(p) in SLOW_PAGES else [])
         for p in _pages() if _blocks(p)]


def test_the_tour_and_every_guide_have_examples():
    named = {_name(p.values[0]) for p in PAGES}
    assert {"getting-started.md", "guide/networks.md", "guide/bounds.md", "guide/compression.md",
            "guide/milp.md", "guide/pipelines.md", "guide/batteries.md", "README.md"} <= named


@pytest.mark.parametrize("page", PAGES)
def test_the_examples_run(page, tmp_path):
    script = "\n\n".join(_blocks(page))
    (tmp_path / "data").symlink_to(ROOT / "data")  # the pages read data/..., write here
    (tmp_path / "example.py").write_text(script)
    p = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True,
                       text=True, env=_env(), timeout=900)
    assert p.returncode == 0, f"{_name(page)}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"


def test_the_readme_commands_are_the_ones_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    install = re.search(r"^pip install (.*)$", ci, re.M).group(1)
    test = ci.strip().splitlines()[-1]  # the test command, with its options (-n: xdist)
    assert test.startswith("python -m pytest")
    assert f"pip install {install} && {test}\n" in readme
    assert "mkdocs serve" in readme and "docs/" in readme
