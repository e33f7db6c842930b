"""The lossless-compression study's tasks: what one task costs, by preset and bound method,
on one core (a battery of 2 workers on 2 cores gives each task one).

Run: emlpress bench --only study (or: python -m pytest benches/suites/bench_study.py -s)

Timed, one round each (a task is seconds to minutes):
- `quick` preset: one whole battery task (train, bound with the four methods, compress,
  verify) per optimizer, regularization L1 = L2 = 1e-3;
- `study` preset: one training epoch of the study's `[2, 1024, 512, 512, 256, 1]` on its
  40,000 samples per optimizer (the full task trains 600 to 2,000 of them), and each bound
  method plus lossless compression with verification on the study's own network (seed_gp),
  the hard case of the grid. benches/README.md turns these into the time of a whole study on
  N workers.
"""

import os
import time

import pytest
from threadpoolctl import threadpool_limits

from conftest import label, shared
from emlpress import _core
from emlpress.data import goldstein
from emlpress.pipelines import battery
from emlpress.pipelines import lossless_study as study

pytest.importorskip("tf_keras")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One native thread, as a battery task of 2 workers on 2 cores gets (this module only:
    `emlpress bench` runs every group in one process)."""
    saved = {v: os.environ.get(v) for v in battery.THREAD_VARIABLES}
    with threadpool_limits(1):
        battery.cap_native_threads(1)
        yield
    _core.set_num_threads(0)  # back to every core
    for v, old in saved.items():
        if old is None:
            os.environ.pop(v, None)
        else:
            os.environ[v] = old


@pytest.mark.parametrize("optimizer", list(study.OPTIMIZERS))
def test_quick_task(benchmark, optimizer):
    cfg = study.asdict(study.config("quick", reference=None))
    label(benchmark, "study task quick", optimizer)
    r = benchmark.pedantic(study.model_task, args=(cfg, optimizer, "l1l2=0.001", 0),
                           kwargs=dict(threads=1), rounds=1, iterations=1)
    benchmark.extra_info.update(
        train_s=r["train_s"], epochs=r["epochs"], test_rmse=r["test_rmse"],
        **{f"{m}_s": v["bounds_s"] + v["compress_s"] + v["verify_s"]
           for m, v in r["methods"].items()},
        **{f"{m}_removed": v["neurons_removed"] for m, v in r["methods"].items()})
    print(f"\nquick {optimizer}: train {r['train_s']:.1f} s ({r['epochs']} epochs), "
          + ", ".join(f"{m} {v['bounds_s'] + v['compress_s'] + v['verify_s']:.2f} s"
                      for m, v in r["methods"].items()))


@pytest.mark.parametrize("optimizer", list(study.OPTIMIZERS))
def test_study_epoch(benchmark, optimizer):
    """One epoch of the study's network and data with the optimizer's settings."""
    from emlpress.train import fit_regressor  # TensorFlow: imported by the rows that train

    p, o = study.PRESETS["study"], study.OPTIMIZERS[optimizer]
    X, Y = goldstein.sample(p.n_train, seed=12345)
    label(benchmark, "study epoch", optimizer)

    def one_epoch():
        return fit_regressor(X, Y, list(p.hidden), l1=1e-3, l2=1e-3, epochs=1,
                             batch_size=p.batch_size, learning_rate=o.learning_rate,
                             optimizer=o.keras, clipnorm=o.clipnorm, momentum=o.momentum,
                             scale_targets=False, scale_inputs=False, early_stopping=False,
                             validation=0.0, lo=goldstein.LO, hi=goldstein.HI)

    fit = benchmark.pedantic(one_epoch, rounds=1, iterations=1)
    benchmark.extra_info.update(epoch_s=fit.train_s, epochs_in_task=o.epochs,
                                task_train_s=fit.train_s * o.epochs)
    print(f"\nstudy epoch {optimizer}: {fit.train_s:.1f} s; x {o.epochs} epochs = "
          f"{fit.train_s * o.epochs / 3600:.1f} h of training per task")


@pytest.mark.parametrize("method", list(study.METHODS))
def test_study_bounds(benchmark, method):
    """Bound, compress and verify the study's network (one method of a study task)."""
    path = str(shared("seed_gp", "model.npz"))
    label(benchmark, "study task bounds seed_gp", method)
    t0 = time.perf_counter()
    r = benchmark.pedantic(study.reference_task, args=(path, [method], 600.0),
                           kwargs=dict(threads=1), rounds=1, iterations=1)
    v = r["methods"][method]
    benchmark.extra_info.update(bounds_s=v["bounds_s"], compress_s=v["compress_s"],
                                verify_s=v["verify_s"], neurons_removed=v["neurons_removed"],
                                params_after=v["params_after"], unresolved=sum(v["unresolved"]))
    print(f"\nseed_gp {method}: {time.perf_counter() - t0:.1f} s (bounds {v['bounds_s']:.1f}, "
          f"compress {v['compress_s']:.2f}, verify {v['verify_s']:.2f}): "
          f"{v['neurons_removed']} removed, {v['params_after']} parameters left")
