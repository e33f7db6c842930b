"""LP and progressive bound tightening beside the naive highspy baseline (naive_lp.py).

Run: python -m pytest bench_tighten.py -o python_files='bench_*.py' --benchmark-columns=min,rounds -s
"""

import pytest

import naive_lp
from emlpress import bounds
from trained import HIDDEN, trained


def stable_per_layer(lower, upper):
    return [(int((u <= 0).sum()), int((l >= 0).sum())) for l, u in zip(lower[:-1], upper[:-1])]


@pytest.fixture(scope="module", params=sorted(HIDDEN))
def net(request):
    return request.param, trained(request.param)


@pytest.mark.parametrize("impl", ["lp", "progressive", "naive"])
def test_lp(benchmark, net, impl):
    name, n = net
    benchmark.group = f"LP bounds {name}"
    if impl == "naive":
        L, U = benchmark.pedantic(naive_lp.lp_bounds, args=(n, n.lo, n.hi), rounds=1, iterations=1)
    else:
        b = benchmark.pedantic(bounds.tighten, args=(n,), kwargs={"method": impl}, rounds=3, iterations=1)
        L, U = b.lower, b.upper
    per_layer = stable_per_layer(L, U)
    benchmark.extra_info["stable (inactive, active) per layer"] = per_layer
    print(f"\n{name} {impl}: stable {sum(a + b for a, b in per_layer)} {per_layer}")
    bi, bc = bounds.interval(n), bounds.crown(n)
    print(f"{name} interval: {stable_per_layer(bi.lower, bi.upper)}  crown: {stable_per_layer(bc.lower, bc.upper)}")
