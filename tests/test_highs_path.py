"""The HiGHS path of ``milp.solve`` (issue 34) on networks whose rows reach 1e11: never a
wrong OPTIMAL. HiGHS checks an incumbent's rows absolutely against its
``mip_feasibility_tolerance``; float64 rounds such rows by more than 1e-6 at exactly computed
points, so HiGHS 1.16 rejected the true optimum and reported a worse point OPTIMAL (or
SOLVEERROR, or INFEASIBLE). ``solve`` now runs HiGHS no tighter than the model's rounding
(:func:`emlpress.milp.repair.rounding_floor`), refuses models beyond ``MAX_TOLERANCE``, and
probes HiGHS' bound with verified points near its answer. Checked against the exact maximum
of 1-input networks (at a breakpoint of some unit, or a corner of the box)."""

import os
import warnings

import highspy
import numpy as np
import pytest
from hypothesis import event, given, settings, strategies as st

from emlpress import Network, bounds
from emlpress._highs import MagnitudeError, option_value, tighten_tolerances
from emlpress.milp import MAX_COEFFICIENT, MAX_RANGE, VERIFY_RTOL, add_network, solve
from emlpress.milp import repair as R
from emlpress.testing import trained_like
from test_partition import _HIGHS_FAILS

MAX = highspy.ObjSense.kMaximize
MIN = highspy.ObjSense.kMinimize
LO, HI = np.array([-66.78922712450053]), np.array([96.07887391312731])


def _fails_net(case):
    W, b = _HIGHS_FAILS[case]
    return Network([np.asarray(w) for w in W], [np.asarray(v) for v in b], LO, HI)


def breakpoints(net) -> np.ndarray:
    """Every input of the 1-input ``net``'s box where some unit's pre-activation crosses 0,
    with the box's ends and each point's float64 neighbours: the network is linear between
    them, so its extremes over the box are among their values. Layer by layer: between two
    consecutive points found so far, every unit of the next layer is linear in the input."""
    lo, hi = float(net.lo[0]), float(net.hi[0])
    pts = np.unique([lo, hi])
    for l in range(net.n_layers - 1):
        z = net.preactivations(pts[:, None])[l]
        a, b = z[:-1], z[1:]
        s = (a < 0) != (b < 0)
        k, _ = np.nonzero(s)
        t = a[s] / (a[s] - b[s])
        pts = np.unique(np.clip(np.concatenate([pts, pts[k] + t * (pts[k + 1] - pts[k])]), lo, hi))
    near = np.concatenate([pts, np.nextafter(pts, -np.inf), np.nextafter(pts, np.inf)])
    return np.unique(np.clip(near, lo, hi))


def _model(nets, formulation="bigm", sense=MAX, share=True):
    """max (or min) of the sum of the networks' outputs over one shared input (``share``) or
    one input each."""
    h = highspy.Highs()
    h.silent()
    x = h.addVariables(1, lb=nets[0].lo.tolist(), ub=nets[0].hi.tolist())
    hs, obj = [], 0
    for k, net in enumerate(nets):
        xi = x if share or k == 0 else h.addVariables(1, lb=net.lo.tolist(), ub=net.hi.tolist())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the conditioning warning of such weights
            hs.append(add_network(h, net, xi, formulation=formulation, name=f"n{k}"))
        obj = obj + hs[-1].outputs[0]
    h.setObjective(obj, sense=sense)
    return h, hs


@pytest.mark.parametrize("formulation", ["bigm", "partition"])
@pytest.mark.parametrize("case", range(len(_HIGHS_FAILS)))
def test_the_two_networks_answer_right_on_highs(case, formulation):
    """The defect's two networks: OPTIMAL at the true maximum (the box's upper corner), the
    bound above it, with a warning naming the network and the tolerance raised; the user's
    tolerance (set below the rounding here, as encodings that need exactness do) is back
    on the model afterwards."""
    net = _fails_net(case)
    true = float(net.forward(net.hi[None, :])[0, 0])
    assert true == float(net.forward(breakpoints(net)[:, None]).max())
    h, _ = _model([net], formulation)
    tighten_tolerances(h, 1e-9)
    with pytest.warns(RuntimeWarning,
                      match=r"network 'n0': a row reaches .* mip_feasibility_tolerance 1e-09 raised to"):
        s = solve(h, mip_gap=0, mip_abs_gap=1e-9, solver="highs", start=None)
    assert s.solver == "highs" and s.status == "OPTIMAL", s
    assert s.objective == pytest.approx(true, rel=1e-12) and s.best_bound >= true
    assert option_value(h, "mip_feasibility_tolerance") == 1e-9


def test_a_bound_a_verified_point_beats_is_never_reported(monkeypatch):
    """What is left when HiGHS still cuts the optimum off (here: the tolerance floor turned
    off, so HiGHS reports 2.75e9 OPTIMAL with that bound): the probe moves the input to the
    box's corners, finds 4.83e10, and the answer names both numbers and carries the
    certified LP relaxation's bound, which is above the true maximum."""
    monkeypatch.setattr(R, "rounding_floor", lambda M: (0.0, -1, -1))
    net = _fails_net(0)
    true = float(net.forward(net.hi[None, :])[0, 0])
    h, _ = _model([net])
    with pytest.warns(RuntimeWarning, match=r"models 'n0': the verified objective 4\.83069108e\+10 beats "
                                            r"HiGHS' bound 2\.75414\d+e\+09, so HiGHS' OPTIMAL is wrong"):
        s = solve(h, mip_gap=0, mip_abs_gap=1e-9, solver="highs", start=None)
    assert s.objective == pytest.approx(true, rel=1e-12)
    assert s.best_bound >= true and s.best_bound < np.inf
    assert s.status != "OPTIMAL" or s.best_bound - s.objective <= 1e-9 * abs(s.objective)


def test_after_a_highs_failure_the_bound_is_certified_not_highs_zero(monkeypatch):
    """The second network with the floor off: HiGHS ends in SOLVEERROR (its 'bound' 0); the
    answer is the verified point repaired from HiGHS' failed one, with the certified LP
    relaxation's bound, never 0."""
    monkeypatch.setattr(R, "rounding_floor", lambda M: (0.0, -1, -1))
    net = _fails_net(1)
    true = float(net.forward(net.hi[None, :])[0, 0])
    h, _ = _model([net])
    s = solve(h, mip_gap=0, mip_abs_gap=1e-9, solver="highs", start=None)
    assert s.status == "FEASIBLE" and s.has_solution and s.repaired == s.probed != ""
    assert s.objective == pytest.approx(true, rel=1e-12)
    assert true <= s.best_bound <= true * (1 + 1e-6)


@pytest.mark.parametrize("what", ["partition", "two networks, one input",
                                  "two networks, two inputs"])
def test_models_that_take_the_highs_path(what):
    """What users run on HiGHS by default (solver="auto": a partition model, several
    networks): the maximum of the sum, checked against every breakpoint of both networks."""
    a, b = _fails_net(0), _fails_net(1)
    nets = [a] if what == "partition" else [a, b]
    h, hs = _model(nets, "partition" if what == "partition" else "bigm", share="one" in what)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tolerance raised: tested above
        s = solve(h, mip_gap=1e-9, mip_abs_gap=1e-9)
    assert s.solver == "highs" and s.status == "OPTIMAL", s
    if what == "two networks, two inputs":  # separable: the sum of the maxima
        X = [breakpoints(n)[:, None] for n in nets]
        true = sum(float(n.forward(x).max()) for n, x in zip(nets, X))
    else:
        X = np.unique(np.concatenate([breakpoints(n) for n in nets]))[:, None]
        true = float(sum(n.forward(X)[:, 0] for n in nets).max())
    assert s.objective == pytest.approx(true, rel=1e-9)
    assert s.best_bound >= true * (1 - 1e-12)
    for hd in hs:  # each network at the answer's input is what the answer says
        want = hd.net.forward(s.inputs[hd.name][None, :])[0, 0]
        assert s.outputs[hd.name][0] == pytest.approx(want, rel=1e-12)


def test_a_model_beyond_any_tolerance_is_refused_in_one_line():
    """Rows of 3e14 round by ~0.27, more than MAX_TOLERANCE (0.1: a binary further from 0
    or 1 no longer says a unit's phase): refused, naming the network and the coefficient,
    the model untouched."""
    net = Network([np.array([[1e6], [-1e6]]), np.array([[1e3, 1e3]])], [np.zeros(2), np.zeros(1)],
                  np.array([-1e5]), np.array([1e5]))
    h, _ = _model([net])
    h.setOptionValue("mip_feasibility_tolerance", 1e-7)
    with pytest.raises(MagnitudeError,
                       match=r"network 'n0': a row reaches .*coefficient .*'n0\.") as e:
        solve(h, solver="highs", start=None)
    assert "\n" not in str(e.value)
    assert option_value(h, "mip_feasibility_tolerance") == 1e-7


@st.composite
def large_scale_net(draw):
    """A 1-input network of 1 or 2 hidden layers (widths 1-6) with weights and biases ~1e3
    to ~1e5 over a box within +-200: outputs to 1e12, within MAX_COEFFICIENT/MAX_RANGE."""
    depth = draw(st.integers(1, 2))
    sizes = [1] + [draw(st.integers(1, 6)) for _ in range(depth)] + [1]
    scale = draw(st.sampled_from([1e3, 1e4, 1e5]))
    lo = draw(st.floats(-100, 100))
    hi = lo + draw(st.floats(0, 200))
    seed = draw(st.integers(0, 2**32 - 1))
    return trained_like(sizes, seed, big=1.0, big_scale=scale, bias=scale, near_dead=0,
                        layer_scale=1.0, lo=lo, hi=hi)


@settings(max_examples=25 if os.environ.get("EMLPRESS_QUICK") else 150, deadline=None)
@given(large_scale_net(), st.sampled_from([MAX, MIN]))
def test_drawn_large_scale_networks_on_highs(net, sense):
    """On drawn large-scale networks: exactly computed points pass HiGHS' row check at the
    tolerance solve() gives it (the floor's claim, at up to 17 breakpoints), and
    HiGHS' answer is verified, OPTIMAL only at the exact extreme, its bound never on the
    wrong side of a sampled value; or the model is refused in one line."""
    b = bounds.crown(net)
    if any(np.abs(W).max() > MAX_COEFFICIENT for W in net.weights) or \
            any((u - l).max() > MAX_RANGE for l, u in zip(b.lower, b.upper)):
        event("beyond MAX_COEFFICIENT/MAX_RANGE")
        return  # beyond what HiGHS represents: add_network warns, NUMERICAL is documented
    X = breakpoints(net)[:, None]
    values = net.forward(X)[:, 0]
    h, (nn,) = _model([net], sense=sense)
    h.setOptionValue("mip_feasibility_tolerance", 1e-9)  # as exact encodings set it
    M = R.model_arrays(h)
    floor = R.rounding_floor(M)[0]
    for x in X[:: max(1, len(X) // 16)]:  # HiGHS' check: absolute, in the user's units
        cols, vals = nn.start_values(x)
        v = np.zeros(M.cost.size)
        v[cols] = vals
        act = M.A @ v
        assert np.max(np.maximum(M.row_lo - act, act - M.row_hi)) <= floor
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = solve(h, mip_gap=1e-9, mip_abs_gap=1e-9, solver="highs", start=None)
    except MagnitudeError as e:
        assert "\n" not in str(e) and "network 'n0'" in str(e)
        event("refused")
        return
    event(f"{s.status}, floor {'above' if floor > 1e-6 else 'below'} 1e-6")
    sign = 1.0 if sense == MAX else -1.0
    true = sign * float(np.max(sign * values))
    assert s.status in ("OPTIMAL", "FEASIBLE") and s.has_solution, s
    # the bound: HiGHS' (not certified: 1e-11 relative below the maximum seen at a tolerance
    # of 1e-9), never below a sampled value beyond the precision answers are verified at (the
    # defect: 17x, INFEASIBLE, SOLVEERROR)
    assert sign * (s.best_bound - true) >= -VERIFY_RTOL * max(1.0, abs(true)), (s, true)
    # a verified point: the network's value there, to VERIFY_RTOL (HiGHS' output column)
    assert sign * (true - s.objective) >= -VERIFY_RTOL * max(1.0, abs(true)), (s, true)
    if s.status == "OPTIMAL":
        assert s.objective == pytest.approx(true, rel=1e-6, abs=1e-6), (s, true)
