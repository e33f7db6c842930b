"""Lossy compression: TFLite conversion and table time per mode, and the exact int8 MILP
embedding against the dequantized one on the same problem.

Run: emlpress bench --only lossy (or: python -m pytest benches/suites/bench_lossy.py -s)

Networks: Goldstein-Price regressors trained here (seeded, Adam, 40 epochs on 8,000 samples
of the study's box, min-max scaled), of the sizes a MILP embeds (TPC's surrogates are 9-7 and
12-15), and the bound benchmarks' trained `[2,128,128,64,1]` for the conversion times.
Problem for the MILPs: maximise, then minimise, the network's output over its box. The
exact embedding's answer is the reference interpreter's output at its input (bit for bit);
the dequantized embedding's answer is evaluated there too: what the deployed int8 model
gives at the input the dequantized MILP chose.
"""

import time

import highspy
import pytest

from conftest import label, quick
from emlpress import milp
from emlpress._highs import highs
from emlpress.compress import lossy
from emlpress.data import goldstein
from emlpress.io.tflite import QuantizedNetwork, from_tflite
from tools.trained import trained

TIME_LIMIT = 120.0
SIZES = {"gp_2-8-8-1": [8, 8], "gp_2-12-15-1": [12, 15], "gp_2-16-16-1": [16, 16],
         "gp_2-32-32-1": [32, 32]}
_CACHE: dict = {}


def small_gp(name):
    if name not in _CACHE:
        from emlpress.train import fit_regressor  # TensorFlow: imported by the rows that train

        X, y = goldstein.sample(8_000, seed=0)
        res = fit_regressor(X, y, SIZES[name], epochs=40, batch_size=64, seed=0,
                            lo=goldstein.LO, hi=goldstein.HI)
        _CACHE[name] = (res.net, X, y)
    return _CACHE[name]


@pytest.mark.parametrize("mode", [pytest.param(m, marks=[quick] if m in ("float32", "int8") else [])
                                  for m in ("float32",) + lossy.MODES])
def test_convert(benchmark, mode):
    net = trained("gp_2-128-128-64-1")
    X, _ = goldstein.sample(2_000, seed=1)
    label(benchmark, "convert gp_2-128-128-64-1", mode)
    content = benchmark.pedantic(lossy.quantize, args=(net, mode), kwargs={"representative": X},
                                 rounds=3, iterations=1)
    benchmark.extra_info["bytes"] = len(content)
    print(f"\n{mode}: {len(content)} bytes")


def test_table(benchmark):
    net = trained("gp_2-128-128-64-1")
    X, y = goldstein.sample(2_000, seed=1)
    Xt, yt = goldstein.sample(2_000, seed=2)
    label(benchmark, "quantization_table gp_2-128-128-64-1", "all seven modes")
    df = benchmark.pedantic(lossy.quantization_table, args=(net, Xt, yt),
                            kwargs={"representative": X}, rounds=1, iterations=1)
    for _, r in df.iterrows():  # per mode, for emlpress bench compare --info
        benchmark.extra_info[r["mode"]] = (
            f"{int(r['bytes']):,} B ({r['size_vs_float32']:.2f} of float32, gzip {int(r['gzip_bytes']):,}), "
            f"RMSE {r['rmse_0']:.4g}, R2 {r['r2_0']:.3f}, max |dequantized - interpreter| "
            f"{r['dequantized_max_diff']:.2g}, {r['latency_us']:.3g} µs/sample")
    cols = ["mode", "bytes", "size_vs_float32", "gzip_bytes", "rmse_0", "r2_0",
            "dequantized_max_diff", "convert_s", "latency_us"]
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for _, r in df[cols].iterrows():
        print("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) + " |")


def _solve(build, sense):
    h = highs()
    x = h.addVariables(2, lb=[float(v) for v in goldstein.LO], ub=[float(v) for v in goldstein.HI])
    t0 = time.perf_counter()
    hd = build(h, [v.index for v in x])
    enc = time.perf_counter() - t0
    h.setObjective(hd.outputs[0], sense=sense)
    sol = milp.solve(h, time_limit=TIME_LIMIT, mip_gap=0, mip_abs_gap=0)
    return hd, sol, enc


_rows: dict = {}  # network -> the table's rows, printed once both embeddings ran


@pytest.mark.parametrize("embedding", ["exact", "dequantized"])
@pytest.mark.parametrize("name", sorted(SIZES))
def test_exact_against_dequantized(benchmark, name, embedding):
    """Timed: both senses (max, then min) of one embedding, encode and solve."""
    net, X, y = small_gp(name)
    content = lossy.quantize(net, "int8-fallback", representative=X)
    q = QuantizedNetwork.from_tflite(content)
    deq = from_tflite(content)
    label(benchmark, f"int8 embedding {name}", embedding)
    senses = (highspy.ObjSense.kMaximize, highspy.ObjSense.kMinimize)
    if embedding == "exact":
        build = lambda h, x: milp.add_quantized_network(h, q, x)  # noqa: E731
    else:
        build = lambda h, x: milp.add_network(h, deq, x, bounds="lp")  # noqa: E731
    runs = benchmark.pedantic(lambda: [_solve(build, s) for s in senses], rounds=1, iterations=1)
    rows = _rows.setdefault(name, {})
    for sense, (hd, sol, enc) in zip(senses, runs):
        key = sense.name[1:4].lower()
        if embedding == "exact":
            v = hd.verify_bits(sol)
            answer = float(q.dequantize_output(v["interpreter_int8"])[0])
            rows.setdefault(key, {}).update(exact=(sol.status, answer, v["output_mismatches"], hd.n_binaries,
                                                   enc, sol.solve_s))
            benchmark.extra_info.update({f"{key} answer": answer, f"{key} status": sol.status,
                                         f"{key} mismatches": int(v["output_mismatches"]),
                                         "binaries": hd.n_binaries})
        else:
            x2 = sol.inputs[hd.name]
            interp = float(q.interpreter_float(x2[None, :])[0, 0])
            rows.setdefault(key, {}).update(dequantized=(sol.status, sol.objective, interp, hd.n_binaries,
                                                         enc, sol.solve_s))
            benchmark.extra_info.update({f"{key} objective": sol.objective, f"{key} status": sol.status,
                                         f"{key} interpreter at its input": interp, "binaries": hd.n_binaries})
    if all(len(r) == 2 for r in rows.values()):
        print(f"\n{name} (int8, {q.n_in} inputs):")
        print("| sense | exact status | exact answer (interpreter) | mismatches | exact binaries | "
              "exact encode s | exact solve s | dequantized status | dequantized objective | "
              "interpreter at its input | dequantized binaries | dequantized encode s | dequantized solve s |")
        print("|" + "---|" * 13)
        for key, r in rows.items():
            cells = (key,) + r["exact"] + r["dequantized"]
            print("| " + " | ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in cells) + " |")
