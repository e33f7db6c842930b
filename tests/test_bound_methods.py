"""One soundness check for every registered bound method (``emlpress.bounds.methods``), as
scikit-learn's estimator checks: on networks that look trained (tests/strategies.py: exact
zeros, dead units, large and tiny scales, degenerate boxes) every sampled float64 forward
pass lies inside the bounds, on a box and on a polytope (a box with linear rows and an l1
ball; every method takes one). A method added to the registry is checked here without a
new test."""

import numpy as np
import pytest
from hypothesis import example, given, settings

from emlpress import Network
from emlpress.bounds import Domain, methods
from strategies import assert_inside, network_and_box, sample_box
from test_domain import network_and_domain

NAMES = list(methods.REGISTRY)

#: per method: the examples it runs (at most the profile's: quick 50, ci 500) and the
#: networks it draws. The one-pass methods take the strategy's largest networks; the
#: per-neuron LPs and the exact searches, small ones (their own tests go further)
ONE_PASS = dict(max_depth=6, max_width=64)
PER_NEURON = dict(max_depth=4, max_width=10, max_in=4)
SEARCH = dict(max_depth=3, max_width=6, max_in=3)
BOX = {"interval": (500, ONE_PASS), "crown": (500, ONE_PASS), "lp": (200, PER_NEURON),
       "progressive": (200, PER_NEURON), "milp": (30, SEARCH), "stability": (30, SEARCH)}
#: per method on a polytope: examples and the networks' largest depth and width
POLYTOPE = {"interval": (20, 3, 12), "crown": (50, 3, 12), "lp": (30, 3, 12),
            "progressive": (10, 3, 12), "milp": (5, 2, 6), "stability": (5, 2, 6)}
#: the exact searches stop here (seconds; per neuron and side for milp, in all for
#: stability): a limit leaves bounds looser, never unsound
LIMIT = 2.0


def _examples(n: int) -> settings:
    return settings(max_examples=min(n, settings().max_examples))


def _points(d: Domain, n=200, seed=0):
    """Points of the domain: the domain's own point and samples (rejection, hit-and-run)."""
    X = np.vstack([d.point[None, :], d.sample(n, seed)])
    assert d.contains(X, 1e-9).all()
    # the tightened box is rigorous: hit-and-run walks the original box, not it
    Y = X[d.certainly_contains(X)]
    assert np.all(Y >= d.box_lo) and np.all(Y <= d.box_hi)
    return X


def _assert_sound(b, net, d: Domain, X):
    """The bounds hold exactly at the points certainly in the domain (in exact arithmetic);
    at points within rounding of it (equality rows, one-point domains known from an LP),
    within the network's Lipschitz constant times their distance from the constraints
    (the value at the nearest point of the domain), rounding of that evaluation included."""
    exact = d.certainly_contains(X)
    assert_inside(b, net, X[exact])
    if exact.all():
        return
    Y = X[~exact]
    g = 1e-14  # the evaluation's rounding, relative, far above its worst case here
    viol = np.zeros(len(Y))
    for A, rhs, eq in ((d.A_ub, d.b_ub, False), (d.A_eq, d.b_eq, True)):
        if A is not None:
            r = Y @ A.T - rhs
            r = (np.abs(r) if eq else np.maximum(r, 0)) + g * (np.abs(Y) @ np.abs(A).T + np.abs(rhs))
            viol = np.maximum(viol, (r / np.linalg.norm(A, axis=1)).max(1))
    if d.center is not None:
        s1 = np.abs(Y - d.center).sum(1)
        viol = np.maximum(viol, np.maximum(s1 - d.eps, 0) + g * s1)
    viol = viol + 1e-300
    lip = 1.0
    for l, z in enumerate(net.preactivations(Y)):
        lip *= np.linalg.norm(net.weights[l], 2)
        tol = 4 * lip * viol[:, None] * np.sqrt(net.n_in)
        assert np.all(z >= b.lower[l] - tol) and np.all(z <= b.upper[l] + tol), l


def test_every_registered_method_is_checked_here():
    """The tables above name every method of the registry, so none is left unchecked."""
    assert set(BOX) == set(NAMES)
    assert set(POLYTOPE) == set(NAMES)
    assert all(methods.get(n).polytope for n in NAMES)


@pytest.mark.parametrize("method", NAMES)
def test_every_method_is_sound_on_a_box(method):
    m = methods.get(method)
    n, sizes = BOX[method]

    @_examples(n)
    @given(network_and_box(**sizes))
    def check(case):
        net, lo, hi, seed = case
        b = m.bounds(net, lo, hi, threads=1, time_limit=LIMIT)
        assert [a.size for a in b.lower] == net.sizes[1:]
        assert_inside(b, net, sample_box(lo, hi, 1000, seed))

    check()


# a trained-looking network and a polytope of each kind of row: a budget, an equality, an l1 ball
_RNG = np.random.default_rng(5)
_SIZES = [4, 12, 12, 2]
_NET = Network([_RNG.normal(size=(o, i)) / np.sqrt(i) for i, o in zip(_SIZES[:-1], _SIZES[1:])],
               [_RNG.normal(size=o) * 0.1 for o in _SIZES[1:]])
_POLYTOPE = dict(A_ub=[[1.0, 1.0, 0.0, 0.0]], b_ub=[0.2], A_eq=[[0.0, 0.0, 1.0, -1.0]], b_eq=[0.1],
                 l1=(np.zeros(4), 1.5))


@pytest.mark.parametrize("method", NAMES)
def test_every_method_is_sound_on_a_polytope(method):
    """Sound at the polytope's points (its own and hit-and-run samples), recorded with their
    domain (through the registry: ``tighten`` reads the same)."""
    m = methods.get(method)
    n, depth, width = POLYTOPE[method]

    @_examples(n)
    @given(network_and_domain(max_depth=depth, max_width=width))
    @example((_NET, -np.ones(4), np.ones(4), _POLYTOPE))
    def check(case):
        net, lo, hi, kw = case
        d = Domain(lo, hi, **kw)
        b = m.bounds(net, domain=d, threads=1, time_limit=LIMIT)
        assert b.domain is d
        _assert_sound(b, net, d, _points(d))

    check()
