"""The transprecision main job's truth: brute-force optima, the EML loop, the open loop and
random search with the same oracle calls.

Run: emlpress bench --only tpc (or: python -m pytest benches/suites/bench_tpc.py -s)
(about 20 minutes on 2 quiet cores; --quick, Saxpy's loops and two brute forces; EXPECTED_MINUTES in
conftest.py). The loop cases need the data's manifest to match this host, else the oracle is
the table and the figures are of the table-restricted loop: on another host, regenerate the
embedded data's configurations here (``emlpress tpc generate --out DIR --rows 1500 --hw epyc2``)
and set ``EMLPRESS_BENCH_TPC_DATA=DIR``.

- ``test_brute_force[B]``: the fewest total bits under error <= 0.01 and time <= 100 ms over
  every configuration of the data's bit range, by the kernel (error-only runs by increasing
  total bits; full runs for the error-feasible ones), no time budget; ``evaluated`` is the
  brute force's count of kernel runs, the figure the loop's oracle calls compare with.
- ``test_loop[B]``: ``emlpress tpc run --benchmarks B`` with the default settings (topologies
  9-7 and 12-15, four variants each; the loop of :mod:`emlpress.eml`): per answer the oracle
  calls and loop seconds, the final answers' bits above the optimum; beside them, random
  search with the same number of oracle calls per answer (seeded, uniform over the bit box and
  the hardware, the fewest-bit measured-feasible draw).
- ``test_open_loop[B]``: the same run with ``max_iterations=0`` (one answer per variant,
  measured, no learning and no cut).
"""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import label, quick
from emlpress.data import tpc
from emlpress.data.tpc_oracle import Oracle, brute_force
from emlpress.pipelines import tpc as pipe

DATA = Path(os.environ.get("EMLPRESS_BENCH_TPC_DATA", pipe.DEFAULT_DATA))
LIMITS = {"error": 0.01, "time": 100.0, "memory_peak": None, "memory_mean": None}
_optimum = {}


@pytest.mark.parametrize("bench", [pytest.param(b, marks=[quick] if b != "Correlation" else [])
                                   for b in tpc.BENCHMARKS])
def test_brute_force(benchmark, bench):
    label(benchmark, f"tpc brute force {bench}", "emlpress.data.tpc_oracle.brute_force")
    data = tpc.load(DATA, bench)
    lo, hi = data.bit_range()
    r = benchmark.pedantic(lambda: brute_force(bench, 0.01, 100.0, bit_range=(lo, hi)),
                           rounds=1, iterations=1)
    _optimum[bench] = r["total_bits"]
    benchmark.extra_info.update(total_bits=r["total_bits"], evaluated=r["evaluated"],
                                optimal=[c["bits"] for c in r["configurations"]])
    print(f"\n{bench}: optimum {r['total_bits']} bits ({len(r['configurations'])} optimal "
          f"configurations, e.g. {r['configurations'][0]['bits']}), {r['evaluated']} configurations "
          f"in {r['seconds']:.1f} s")


def random_search(bench: str, calls: int, seed: int):
    """Fewest total bits of a measured-feasible configuration among ``calls`` seeded uniform
    draws over the data's bit box and hardware (None: none feasible)."""
    data = tpc.load(DATA, bench)
    oracle = Oracle(data, "auto", DATA)
    lo, hi = data.bit_range()
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(int(calls)):
        bits = rng.integers(lo, hi + 1)
        hw = data.hardware[int(rng.integers(len(data.hardware)))]
        m = oracle.measure(bits, hw, LIMITS)
        if m.feasible and (best is None or bits.sum() < best):
            best = int(bits.sum())
    return best


def _run(benchmark, bench, tmp_path, **kw):
    cfg = pipe.Config(data=DATA, benchmarks=[bench], out=tmp_path, progress=False, truth_seconds=0, **kw)
    _, s = benchmark.pedantic(lambda: pipe.run(cfg), rounds=1, iterations=1)
    opt = _optimum.get(bench)
    if opt is not None:
        s["bits_above_optimum"] = s["total_bits"] - opt
    info = {"answers": len(s), "final_feasible": int(s["measured_feasible"].sum()),
            "oracle": ", ".join(sorted(set(s["oracle"]))),
            "oracle_calls_median": float(s["oracle_calls"].median()),
            "oracle_calls_max": int(s["oracle_calls"].max()),
            "loop_s_median": float(s["loop_s"].median()), "loop_s_max": float(s["loop_s"].max())}
    if opt is not None:
        above = s.loc[s["measured_feasible"], "bits_above_optimum"]
        info.update(optimum=opt, above_min=int(above.min()), above_median=float(above.median()),
                    above_max=int(above.max()))
        if "milp_best_bits" in s:  # the same answers before the local search (the MILP phase's best)
            before = (s.loc[s["measured_feasible"], "milp_best_bits"] - opt).dropna()
            if len(before):
                info.update(milp_above_median=float(before.median()), milp_above_max=int(before.max()),
                            local_calls_median=float(s["local_oracle_calls"].median()))
    return s, info, opt


def _show(bench, info, s, extra=()):
    cols = ["topology", "variant", "r2_error", "first_bits", "first_verdict", "oracle_calls",
            "oracle_calls_to_answer", "loop_s", "bits", "total_bits", "verdict", "loop_stop",
            "bits_above_optimum", "milp_best_bits", "milp_oracle_calls", "local_oracle_calls", *extra]
    with pd.option_context("display.width", 250, "display.max_colwidth", 60,
                           "display.float_format", "{:.4g}".format):
        print(f"\n{bench}: {info}\n" + s[[c for c in cols if c in s]].to_string(index=False))


@pytest.mark.parametrize("bench", [pytest.param(b, marks=[quick] if b == "Saxpy" else [])
                                   for b in tpc.BENCHMARKS])
def test_loop(benchmark, bench, tmp_path):
    label(benchmark, f"tpc loop {bench}", "emlpress tpc run")
    s, info, opt = _run(benchmark, bench, tmp_path)
    if opt is not None:  # random search with each answer's oracle calls
        rand = [random_search(bench, c, seed=k) for k, c in enumerate(s["oracle_calls"])]
        s["random_above_optimum"] = [np.nan if r is None else r - opt for r in rand]
        found = s["random_above_optimum"].dropna()
        info.update(random_found=len(found), random_above_median=float(found.median()) if len(found) else None,
                    random_above_max=float(found.max()) if len(found) else None)
    benchmark.extra_info.update(info)
    _show(bench, info, s, ["random_above_optimum"])
    assert np.isfinite(s["loop_s"]).all()


@pytest.mark.parametrize("bench", [pytest.param(b, marks=[quick] if b == "Saxpy" else [])
                                   for b in tpc.BENCHMARKS])
def test_open_loop(benchmark, bench, tmp_path):
    label(benchmark, f"tpc open loop {bench}", "emlpress tpc run --max-iterations 0")
    s, info, _ = _run(benchmark, bench, tmp_path, max_iterations=0)
    benchmark.extra_info.update(info)
    _show(bench, info, s)
    assert (s["oracle_calls"] <= 1).all()


def descend(bench: str, start, max_calls: int = 1000) -> tuple[int, int]:
    """:class:`emlpress.eml.CoordinateDescent` alone from ``start`` (a feasible configuration),
    every proposal measured by the kernel's error (<= 0.01; the time limit never binds on
    quiet cores: at most 21 ms in the embedded data): (final total bits, kernel runs)."""
    from emlpress import eml
    from emlpress.data import tpc_generate as gen

    data = tpc.load(DATA, bench)
    lo, hi = data.bit_range()
    inputs = gen.make_inputs(bench, 0)
    ref = gen.kernel_reference(bench, inputs)
    r = eml.run_loop(lambda ctx: (eml.Proposal(start, float(sum(start[:-1]))) if ctx.allowed(start)
                                  else eml.Proposal(None, status="INFEASIBLE")),
                     lambda c: gen.run_kernel(bench, list(c[:-1]), inputs, ref, error_only=True)["error"] <= 0.01,
                     local=eml.CoordinateDescent(lo, hi, data.n_vars), local_calls=max_calls)
    return int(r.best.objective), r.oracle_calls - 1


@pytest.mark.parametrize("bench", [pytest.param(b, marks=[quick] if b == "Saxpy" else [])
                                   for b in tpc.BENCHMARKS])
def test_local_descent(benchmark, bench):
    """The local search alone from five of the table's error-feasible rows (seeded), the
    figure beside the loop's: how far the oracle alone gets from a start and at what cost."""
    label(benchmark, f"tpc local descent {bench}", "emlpress.eml.CoordinateDescent")
    data = tpc.load(DATA, bench)
    f = data.frame[data.frame["error"] <= 0.01]
    starts = f.sample(5, random_state=1)
    out = benchmark.pedantic(lambda: [descend(bench, (*map(int, r[data.var_cols]), r["hardware"]))
                                      for _, r in starts.iterrows()], rounds=1, iterations=1)
    benchmark.extra_info.update(starts=[int(v) for v in starts[data.var_cols].sum(axis=1)],
                                final=[b for b, _ in out], kernel_runs=[c for _, c in out])
    print(f"\n{bench}: from {benchmark.extra_info['starts']} bits to {benchmark.extra_info['final']} "
          f"in {benchmark.extra_info['kernel_runs']} kernel runs")
