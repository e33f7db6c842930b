import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from emlpress import Network

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CACHE = Path(__file__).resolve().parent / ".cache"


def random_network(sizes, seed=0, lo=-1.0, hi=1.0) -> Network:
    """Seeded He-initialised ReLU network with small random biases on the box [lo, hi]^n."""
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(size=(o, i)) * np.sqrt(2.0 / i) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=o) * 0.1 for o in sizes[1:]]
    return Network(Ws, bs, np.full(sizes[0], lo), np.full(sizes[0], hi))


NETWORKS = {
    "random_2-1024-512-512-256-1": lambda: random_network([2, 1024, 512, 512, 256, 1]),
    "random_784-256-256-10": lambda: random_network([784, 256, 256, 10]),
    "seed_gp_2-1024-512-512-256-1": lambda: Network.load(SHARED / "seed_gp" / "model.npz"),
}


@pytest.fixture(scope="session", params=sorted(NETWORKS))
def network(request):
    return request.param, NETWORKS[request.param]()
