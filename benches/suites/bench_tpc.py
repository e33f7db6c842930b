"""The transprecision main job's truth: brute-force optima and the measure-and-cut loop.

Run: emlpress bench --only tpc (or: python -m pytest benches/suites/bench_tpc.py -s)
(about 10 minutes on 2 cores; --quick, Saxpy's loop and two brute forces: about 2, 132 s in
benches/results/vm.json; EXPECTED_MINUTES in conftest.py. The loop cases need the embedded
data's manifest to match this host, else the oracle is the table and the figures are of the
table-restricted loop)

- ``test_brute_force[B]``: the fewest total bits under error <= 0.01 and time <= 100 ms over
  every configuration of the embedded data's bit range, by the kernel (error-only runs by
  increasing total bits; full runs for the error-feasible ones), no time budget.
- ``test_loop[B]``: ``emlpress tpc run --benchmarks B`` with the default settings (topologies
  9-7 and 12-15, four variants each): per benchmark the answers measured feasible (first and
  final), corrections and probes, loop seconds, and the final answers' bits above the
  optimum. The run's wall time is the benchmark's figure.
"""

import numpy as np
import pandas as pd
import pytest

from conftest import label, quick
from emlpress.data import tpc
from emlpress.data.tpc_oracle import brute_force
from emlpress.pipelines import tpc as pipe

_optimum = {}


@pytest.mark.parametrize("bench", [pytest.param(b, marks=[quick] if b != "Correlation" else [])
                                   for b in tpc.BENCHMARKS])
def test_brute_force(benchmark, bench):
    label(benchmark, f"tpc brute force {bench}", "emlpress.data.tpc_oracle.brute_force")
    data = tpc.load(pipe.DEFAULT_DATA, bench)
    lo, hi = data.bit_range()
    r = benchmark.pedantic(lambda: brute_force(bench, 0.01, 100.0, bit_range=(lo, hi)),
                           rounds=1, iterations=1)
    _optimum[bench] = r["total_bits"]
    benchmark.extra_info.update(total_bits=r["total_bits"], evaluated=r["evaluated"],
                                optimal=[c["bits"] for c in r["configurations"]])
    print(f"\n{bench}: optimum {r['total_bits']} bits ({len(r['configurations'])} optimal "
          f"configurations, e.g. {r['configurations'][0]['bits']}), {r['evaluated']} configurations "
          f"in {r['seconds']:.1f} s")


@pytest.mark.parametrize("bench", [pytest.param(b, marks=[quick] if b == "Saxpy" else [])
                                   for b in tpc.BENCHMARKS])
def test_loop(benchmark, bench, tmp_path):
    label(benchmark, f"tpc loop {bench}", "emlpress tpc run")
    cfg = pipe.Config(benchmarks=[bench], out=tmp_path, progress=False, truth_seconds=0)
    _, s = benchmark.pedantic(lambda: pipe.run(cfg), rounds=1, iterations=1)
    opt = _optimum.get(bench)
    if opt is not None:
        s["bits_above_optimum"] = s["total_bits"] - opt
    info = {
        "answers": len(s), "first_feasible": int((s["first_verdict"] == "feasible").sum()),
        "final_feasible": int(s["measured_feasible"].sum()),
        "iterations_median": float(s["iterations"].median()), "iterations_max": int(s["iterations"].max()),
        "loop_s_median": float(s["loop_s"].median()), "loop_s_max": float(s["loop_s"].max()),
        "oracle": ", ".join(sorted(set(s["oracle"]))),
    }
    if opt is not None:
        above = s.loc[s["measured_feasible"], "bits_above_optimum"]
        info.update(optimum=opt, above_min=int(above.min()), above_median=float(above.median()),
                    above_max=int(above.max()))
    benchmark.extra_info.update(info)
    cols = ["topology", "variant", "r2_error", "first_bits", "first_verdict", "iterations", "probes",
            "loop_s", "bits", "total_bits", "measured_error", "verdict", "bits_above_optimum"]
    with pd.option_context("display.width", 200, "display.float_format", "{:.4g}".format):
        print(f"\n{bench}: {info}\n" + s[[c for c in cols if c in s]].to_string(index=False))
    assert np.isfinite(s["loop_s"]).all()
