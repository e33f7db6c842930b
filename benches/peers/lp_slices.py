"""What repeatable LP bounds cost: ``bounds.lp`` with each thread on a fixed contiguous slice
of a layer's LPs (the default: the same bounds on every run) against the shared queue it
replaced (each thread takes the next LP when free), alternated in one process so that both
see the same load. Prints the times and the ratio of medians.

    python benches/peers/lp_slices.py [rounds]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import emlpress.bounds.relaxation as relaxation
from emlpress import bounds
from emlpress.network import Network

MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


def main(rounds: int = 4) -> None:
    real = relaxation.run_on_free_workers
    mode = {"fixed": True}
    relaxation.run_on_free_workers = lambda *a, fixed=False, **k: real(*a, fixed=mode["fixed"], **k)
    net = Network.load(MNIST / "serra2021_mnist_784-200-200-10.npz")
    images = np.load(MNIST / "mnist_test_images_20.npz")
    x0 = images[images.files[0]][0].reshape(-1).astype(float)
    lo, hi = np.clip(x0 - 0.02, 0, 1), np.clip(x0 + 0.02, 0, 1)
    times = {True: [], False: []}
    for _ in range(rounds):
        for fixed in (True, False):
            mode["fixed"] = fixed
            t0 = time.perf_counter()
            bounds.lp(net, lo, hi, threads=2, full=True)
            times[fixed].append(time.perf_counter() - t0)
    for fixed, name in ((True, "fixed slices"), (False, "shared queue")):
        print(f"{name}: {' '.join(f'{t:.2f}' for t in times[fixed])} s, "
              f"median {np.median(times[fixed]):.2f} s")
    print(f"fixed / shared (medians): {np.median(times[True]) / np.median(times[False]):.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
