import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from emlpress import Network

#: The study's data (seed_gp), beside the repository and never copied into it.
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CACHE = Path(__file__).resolve().parent / ".cache"


def shared(*parts) -> Path:
    """SHARED / parts, or a pytest skip naming the missing path (a machine without
    ../shared/data runs every other benchmark)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is missing: the seed_gp rows need ../shared/data beside the repository")
    return path

#: The suite's version, saved in every result of `emlpress bench`. Bump it when a benchmark's
#: workload changes (its network, sizes, settings or what it times): `emlpress bench compare`
#: does not divide figures of different versions. 2: milp's solve rows time emlpress' bounds
#: and lossless compression too (1: encode + solve, the bounds computed beforehand).
SUITE_VERSION = "2"

#: Expected minutes per group (bench_<group>.py) on a 2-core VM shared with other work, full
#: suite and --quick, printed by `emlpress bench` before it starts (--quick: from the saved
#: result benches/results/vm.json); the first run on a machine adds about 2 minutes to train
#: the cached networks (trained.py).
EXPECTED_MINUTES = {
    "bounds": (0.5, 0.3), "tighten": (3, 0.4), "exact": (6, 0.4), "lossless": (2, 0.8),
    "lossy": (3, 0.3), "milp": (35, 0.5), "tpc": (20, 5), "epidemics": (20, 0.1),
    "stability": (46, 5), "study": (3, 0), "verified": (60, 6), "predictors": (18, 0.5),
    "solve": (900, 10),
}

quick = pytest.mark.quick  # part of `emlpress bench --quick`


def label(benchmark, group: str, impl: str, peer: bool = False, against=None) -> None:
    """Name a figure: its `group` (the rows measured side by side), the implementation, and
    whether it is a peer (what a user would pick instead of emlpress). `emlpress bench
    compare` gives each peer's time over the time of each emlpress row of the same group, or
    of the emlpress impls in `against` only (those that compute the same thing)."""
    benchmark.group = group
    benchmark.extra_info.update(impl=impl, role="peer" if peer else "emlpress")
    if against is not None:
        benchmark.extra_info["against"] = list(against)


def random_network(sizes, seed=0, lo=-1.0, hi=1.0) -> Network:
    """Seeded He-initialised ReLU network with small random biases on the box [lo, hi]^n."""
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(size=(o, i)) * np.sqrt(2.0 / i) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=o) * 0.1 for o in sizes[1:]]
    return Network(Ws, bs, np.full(sizes[0], lo), np.full(sizes[0], hi))


NETWORKS = {
    "random_2-1024-512-512-256-1": lambda: random_network([2, 1024, 512, 512, 256, 1]),
    "random_784-256-256-10": lambda: random_network([784, 256, 256, 10]),
    "seed_gp_2-1024-512-512-256-1": lambda: Network.load(shared("seed_gp", "model.npz")),
}


@pytest.fixture(scope="session", params=[pytest.param(n, marks=quick) for n in sorted(NETWORKS)])
def network(request):
    return request.param, NETWORKS[request.param]()
