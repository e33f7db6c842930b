"""An incumbent at once (issue 34, milp.incumbent): the "optimal adversary" on Serra et al.'s
MNIST 784-100-100-10 (maximise logit[target] - logit[true] over [0,1]^784 with
||x - image||_1 <= eps, the shared images and label pairs; CROWN big-M over the pixel box, as
milp.add_network gives by default), where HiGHS alone found no feasible point in 60 s.

Run: emlpress bench --only incumbent (or python -m pytest benches/suites/bench_incumbent.py
--benchmark-columns=min,rounds -s); --quick: image 0. Rows: find_incumbent's time for its
budget (objective, and the time of its first verified point, in extra_info), then
milp.solve(solver="highs") with a 60 s limit with the start (default) and without
(start=None), side by side in one run (solver="auto" answers this model by emlpress' own
branch-and-bound, milp.bnb, which takes no MIP start): the objective of the verified incumbent and HiGHS' bound.
Skipped without ../shared/data/mnist.
"""

import highspy
import numpy as np
import pytest

from conftest import label, quick, shared
from emlpress import Network
from emlpress.milp import add_network, find_incumbent, solve

EPS = 5.0
IMAGES = (0, 1, 2)
LIMIT = 60.0
#: find_incumbent's budget in its own row (solve gives it a tenth of its limit: 6 s here)
BUDGET = 6.0


def adversary(image: int, eps: float = EPS):
    """(HiGHS model, the network, the image, its objective) of the optimal adversary."""
    try:
        d = np.load(shared("mnist", "serra2021_mnist_784-100-100-10.npz"))
        im = np.load(shared("mnist", "mnist_test_images_20.npz"))
    except OSError:
        pytest.skip("../shared/data/mnist is missing")
    net = Network([d[f"W{k}"] for k in range(3)], [d[f"b{k}"] for k in range(3)], d["lo"], d["hi"])
    x0, (true, target) = im["images"][image], im["labels"][image]
    n = x0.size
    h = highspy.Highs()
    h.silent()
    h.addCols(2 * n, np.zeros(2 * n), np.r_[np.zeros(n), np.zeros(n)], np.r_[np.ones(n), np.full(n, eps)],
              0, np.array([], np.int32), np.array([], np.int32), np.array([], np.float64))
    xi, ti = np.arange(n, dtype=np.int32), np.arange(n, 2 * n, dtype=np.int32)
    idx = np.empty(4 * n, np.int32)
    val = np.empty(4 * n)
    idx[0::4], idx[1::4], idx[2::4], idx[3::4] = ti, xi, ti, xi
    val[0::4], val[1::4], val[2::4], val[3::4] = 1.0, -1.0, 1.0, 1.0
    lo_r = np.empty(2 * n)
    lo_r[0::2], lo_r[1::2] = -x0, x0  # t_i - x_i >= -x0_i, t_i + x_i >= x0_i
    h.addRows(2 * n, lo_r, np.full(2 * n, np.inf), 4 * n, np.arange(0, 4 * n, 2, dtype=np.int32), idx, val)
    h.addRow(-np.inf, eps, n, ti, np.ones(n))
    nn = add_network(h, net, xi)
    y = nn.output_cols
    h.changeColsCost(2, np.array([y[target], y[true]], np.int32), np.array([1.0, -1.0]))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    f = net.forward(x0)
    return h, net, x0, float(f[target] - f[true])


def _cases():
    for i in IMAGES:
        yield pytest.param(i, marks=[quick] if i == 0 else [], id=f"image{i}")


@pytest.mark.parametrize("image", list(_cases()))
def test_incumbent_mnist_adversary(benchmark, image):
    h, net, _, at_image = adversary(image)
    label(benchmark, f"incumbent mnist 100-100 adversary eps {EPS:g} image {image}", "emlpress find_incumbent")
    inc = benchmark.pedantic(find_incumbent, args=(h,), kwargs={"time_limit": BUDGET},
                             rounds=1, iterations=1)
    assert inc, inc.reason
    first = next(t for t in inc.tried if not isinstance(t[1], str))
    benchmark.extra_info.update(objective=inc.objective, how=inc.how, first_s=first[2],
                                first_objective=first[1], image_objective=at_image)
    print(f"\nimage {image}: at the image {at_image:.4f}; first point {first[1]:.4f} at "
          f"{first[2]:.2f} s ({first[0]}); best {inc.objective:.4f} ({inc.how}) in {inc.seconds:.2f} s")


@pytest.mark.parametrize("start", ["auto", None], ids=["start", "no-start"])
@pytest.mark.parametrize("image", list(_cases()))
def test_solve_mnist_adversary(benchmark, image, start):
    h, net, x0, _ = adversary(image)
    label(benchmark, f"solve 60 s mnist 100-100 adversary eps {EPS:g} image {image}",
          f"emlpress solve start={start}")
    sol = benchmark.pedantic(solve, args=(h,), kwargs={"time_limit": LIMIT, "start": start,
                                                       "solver": "highs"},
                             rounds=1, iterations=1)
    if sol.has_solution:
        x = sol.col_values[:784]
        assert np.abs(sol.verify_diff["nn"]) <= 1e-6 * max(1.0, abs(sol.objective))
        # a point of the ball (the rows hold within HiGHS' tolerance)
        assert x.min() >= -1e-7 and x.max() <= 1 + 1e-7 and np.abs(x - x0).sum() <= EPS * (1 + 1e-6)
    benchmark.extra_info.update(status=sol.status, objective=sol.objective, best_bound=sol.best_bound,
                                start=sol.start, start_objective=sol.start_objective,
                                start_used=sol.start_used)
    print(f"\nimage {image} start={start}: {sol.status} objective {sol.objective:.4f} bound "
          f"{sol.best_bound:.4f} (start {sol.start or '-'} {sol.start_objective:.4f})")
