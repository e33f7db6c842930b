"""Threads of the per-neuron LP and exact bounds: the same result on every run, a thread
count above the cores capped with its reason, Ctrl-C acting within an LP (not at the end
of the layer), and a MILP answer's inputs inside the box."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings

import highspy
import numpy as np
import pytest

from emlpress import _options, bounds
from emlpress.milp import add_network, solve
from emlpress.network import Network


def _net(sizes, seed=0):
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=o) * 0.1 for o in sizes[1:]]
    return Network(Ws, bs, -np.ones(sizes[0]), np.ones(sizes[0]))


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.lower + a.upper, b.lower + b.upper))


def test_lp_with_two_threads_gives_the_same_bounds_on_every_run():
    # before the fixed slices, 3 runs of this differed by up to 2e-12 (warm starts taken from
    # whichever LP a thread had solved before)
    net = _net([20, 64, 64, 64, 1])
    runs = [bounds.lp(net, threads=2, full=True) for _ in range(3)]
    assert all(_same(r, runs[0]) for r in runs[1:])
    X = np.random.default_rng(1).uniform(-1, 1, (2000, 20))
    for l, z in enumerate(net.preactivations(X)):  # and sound
        assert (runs[0].lower[l] <= z.min(0)).all() and (z.max(0) <= runs[0].upper[l]).all()


def test_deterministic_exact_bounds_with_two_threads():
    net = _net([8, 16, 16, 2], seed=3)
    runs = [bounds.milp(net, threads=2, node_limit=20, time_limit=None, full=True,
                        deterministic=True) for _ in range(2)]
    assert _same(runs[0], runs[1])
    b = bounds.tighten(net, method="milp", threads=2, deterministic=True, milp_time_limit=60)
    X = np.random.default_rng(2).uniform(-1, 1, (2000, 8))
    for l, z in enumerate(net.preactivations(X)):
        assert (b.lower[l] <= z.min(0)).all() and (z.max(0) <= b.upper[l]).all()


def test_more_threads_than_cores_are_capped_with_the_reason():
    net = _net([6, 12, 1])
    with pytest.warns(_options.ThreadsCapped, match=r"threads=100000 is more than the \d+ cores"
                      r".*capped at \d+ \(each thread holds its own HiGHS instance"):
        b = bounds.lp(net, threads=100000)
    assert _same(b, bounds.lp(net, threads=_options.cores()))  # what the cap gives
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _options.threads(1) == 1 and _options.threads(None) is None
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        _options.threads(0)


def test_ctrl_c_during_lp_bounds_stops_within_the_lp_not_at_the_end_of_the_layer(shared_data):
    """seed_gp's third layer takes minutes of LPs (548 s on one thread): Ctrl-C must end the
    call after the LPs being solved, not after the layer."""
    code = ("from emlpress import bounds; from emlpress.network import Network; "
            f"net = Network.load({str(shared_data / 'seed_gp' / 'model.npz')!r}); "
            "bounds.lp(net, threads=2, progress=True)")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, start_new_session=True)
    seen = b""
    deadline = time.monotonic() + 300
    os.set_blocking(p.stderr.fileno(), False)
    try:
        while b"layer=2, solves=" not in seen:  # inside the long layer
            assert p.poll() is None, seen.decode(errors="replace")
            assert time.monotonic() < deadline, "the third layer did not start in 300 s"
            seen += p.stderr.read() or b""
            time.sleep(0.05)
        seen += p.stderr.read() or b""
        before = _solves(seen)
        os.killpg(p.pid, signal.SIGINT)
        p.wait(timeout=600)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    os.set_blocking(p.stderr.fileno(), True)
    seen += p.stderr.read()
    assert b"KeyboardInterrupt" in seen
    assert b"layer=3" not in seen  # it stopped inside the layer
    # the bar counts the layer's LPs by 16: after the interrupt only the LPs being solved end
    # (and the bar may have been a count or two ahead of what was read); the layer's
    # remaining LPs (hundreds) are not solved
    assert _solves(seen) - before <= 48, (before, _solves(seen))


def _solves(progress: bytes) -> int:
    """The last LP count of the progress bar of seed_gp's third layer."""
    import re

    return max(int(n) for n in re.findall(rb"layer=2, solves=(\d+)", progress))


def test_milp_inputs_are_clipped_into_the_box():
    """HiGHS' feasibility tolerance can leave an input a few ulps past its bound
    (0.5000000000000001 for hi 0.5): the answer's inputs are the box's points."""
    net = Network([np.array([[1.0, -1.0], [0.5, 2.0]]), np.array([[1.0, 1.0]])],
                  [np.array([0.1, -0.2]), np.array([0.0])], np.array([-0.5, -0.5]),
                  np.array([0.5, 0.5]))
    h = highspy.Highs()
    h.silent()
    x = h.addVariables(2, lb=[-0.5, -0.5], ub=[0.5, 0.5])
    nn = add_network(h, net, x, bounds="lp")
    h.setObjective(nn.outputs[0], sense=highspy.ObjSense.kMaximize)
    sol = solve(h)
    assert sol.status == "OPTIMAL"
    off = sol.col_values.copy()
    off[nn.input_cols] = [np.nextafter(0.5, 1.0), np.nextafter(-0.5, -1.0)]  # 1 ulp outside
    sol.col_values = off
    xin, _ = nn.values(sol)
    assert xin.tolist() == [0.5, -0.5]
    assert nn.verify(sol) == pytest.approx(abs(net.forward(xin[None, :])[0, 0] - off[nn.output_cols][0]))
