"""The bound methods by name: one registry that :func:`tighten`, ``compress.lossless(bounds=
NAME)``, the lossless study and the CLI read, so that each name has one meaning.

``METHODS`` lists every name the registry takes, each method's aliases after it: ``"exact"``
is :func:`~emlpress.bounds.milp`'s branch-and-bound (``tighten(method="exact")``, ``emlpress
bounds --method exact``). The lossless study labels its columns with its own words (its
``"exact"`` is :func:`~emlpress.bounds.stability`, see ``pipelines.lossless_study``) and
maps them to these names.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from emlpress import _options
from emlpress.bounds.bab import milp
from emlpress.bounds.domain import Domain, domain_and_box
from emlpress.bounds.linear import crown, interval
from emlpress.bounds.relaxation import lp
from emlpress.bounds.result import Bounds
from emlpress.bounds.stability import Stability, stability
from emlpress.network import Network

__all__ = ["Method", "REGISTRY", "METHODS", "get", "tighten"]

# the module, not the function `stability` that bounds/__init__ binds to the same name: its
# TIME_LIMIT is read at each call (a user, or a test, may change it)
_stability = importlib.import_module("emlpress.bounds.stability")


@dataclass(frozen=True)
class Method:
    """One bound method of the registry.

    ``function(net, lo, hi, ...)`` computes it (a :class:`Bounds`, or for ``stability`` a
    :class:`Stability` whose ``bounds`` are the method's); ``options`` are the keywords of
    :meth:`run` it takes beside the box (``threads``, ``progress``, ``deterministic``);
    ``limit`` says what its ``time_limit`` counts in seconds (``""``: it takes none) and
    :attr:`default_limit` is its default; ``polytope``: whether it takes a domain with
    linear constraints or an l1 ball (else it refuses one, ``NotImplementedError``);
    ``aliases`` are other names of the same method; ``summary`` says what it gives."""

    name: str
    function: Callable
    summary: str
    options: frozenset = frozenset()
    limit: str = ""
    polytope: bool = True
    aliases: tuple[str, ...] = ()
    #: the default time limit, read at each call (None: the method takes none)
    default: Callable[[], float | None] = field(default=lambda: None, repr=False)

    @property
    def default_limit(self) -> float | None:
        """Seconds (per :attr:`limit`) the method stops at unless told otherwise."""
        return self.default()

    def run(self, net: Network, lo=None, hi=None, *, domain: Domain | None = None,
            threads: int | None = None, progress: bool = False, time_limit: float | None = None,
            deterministic: bool = False, **extra):
        """The method's own result on the box ``lo``/``hi`` (or on ``domain``): options it
        does not take are not passed; ``time_limit`` None is :attr:`default_limit`
        (``math.inf``: none); ``extra`` keywords go to ``function`` as they are."""
        kw = {"lo": lo, "hi": hi, "domain": domain}
        given = {"threads": threads, "progress": progress, "deterministic": deterministic}
        kw.update({k: v for k, v in given.items() if k in self.options})
        if self.limit:
            kw["time_limit"] = self.default_limit if time_limit is None else time_limit
        return self.function(net, **kw, **extra)

    def bounds(self, net: Network, lo=None, hi=None, **options) -> Bounds:
        """:meth:`run`'s :class:`Bounds` (a :class:`Stability`'s ``bounds``)."""
        res = self.run(net, lo, hi, **options)
        return res.bounds if isinstance(res, Stability) else res


def _progressive(net: Network, lo=None, hi=None, *, domain: Domain | None = None,
                 threads: int | None = None, progress: bool = False, deterministic: bool = False,
                 use_milp: bool = False, milp_time_limit: float = 10.0,
                 milp_node_limit: int | None = None) -> Bounds:
    """Interval, then CROWN, then LP only for the neurons still unstable, then, with
    ``use_milp``, MILP only for those still unstable (see :func:`tighten`)."""
    where = {"lo": lo, "hi": hi, "domain": domain}
    bi = interval(net, **where)
    d = bi.domain  # None on a box (or on a domain that is one)
    bc = crown(net, **where)
    settled = tuple(np.where((c_l > i_l) | (c_u < i_u), "crown", "interval").astype(object)
                    for c_l, i_l, c_u, i_u in zip(bc.lower, bi.lower, bc.upper, bi.upper))
    bc = Bounds(bc.lower, bc.upper, bc.lo, bc.hi, "crown", settled,
                {"interval": bi.seconds["interval"], "crown": bc.seconds["crown"]}, domain=d)
    b = lp(net, init=bc, threads=threads, progress=progress, **where)
    if use_milp:
        box = {"lo": bi.lo, "hi": bi.hi} if d is None else {"domain": d}
        b = milp(net, init=b, time_limit=milp_time_limit, node_limit=milp_node_limit,
                 threads=threads, progress=progress, deterministic=deterministic, **box)
    return Bounds(b.lower, b.upper, b.lo, b.hi, "progressive", b.settled, b.seconds, domain=d)


_SEARCH = frozenset({"threads", "progress"})

#: every bound method by name, in the order tighten has always listed them
REGISTRY: dict[str, Method] = {m.name: m for m in (
    Method("interval", interval, "interval arithmetic: one forward pass, exact in the first layer"),
    Method("crown", crown, "CROWN's backward linear relaxation, never looser than interval"),
    Method("lp", lp, "the LP relaxation per neuron, certified from its duals", _SEARCH),
    Method("milp", milp, "exact bounds by emlpress' own branch-and-bound on certified LPs",
           _SEARCH | {"deterministic"}, limit="per neuron and side",
           aliases=("exact",),
           default=lambda: inspect.signature(milp).parameters["time_limit"].default),
    Method("stability", stability, "CROWN with every unit the exact stable-set search proves "
           "stable at 0 on its proven side", _SEARCH, limit="in all",
           default=lambda: _stability.TIME_LIMIT),
    Method("progressive", _progressive, "interval, CROWN, then LP for the neurons still "
           "unstable (with use_milp, then MILP)", _SEARCH | {"deterministic"}),
)}

#: the names ``tighten`` takes: each method's name, then its aliases
METHODS = tuple(n for m in REGISTRY.values() for n in (m.name, *m.aliases))

_BY_NAME = {n: m for m in REGISTRY.values() for n in (m.name, *m.aliases)}


def get(name: str) -> Method:
    """The method a name or alias of :data:`METHODS` stands for; ``ValueError`` naming the
    known names otherwise."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown bound method {name!r}: expected one of {METHODS}") from None


def tighten(net: Network, lo=None, hi=None, method: str = "progressive", *,
            use_milp: bool = False, milp_time_limit: float = 10.0,
            milp_node_limit: int | None = None, threads: int | None = None,
            progress: bool = False, time_limit: float | None = None,
            deterministic: bool = False,
            domain: Domain | None = None, A_ub=None, b_ub=None, A_eq=None, b_eq=None,
            l1=None) -> Bounds:
    """One entry point for every method of the registry (:data:`REGISTRY`, by a name of
    :data:`METHODS`): ``interval``, ``crown``, ``lp``, ``milp`` (alias
    ``exact``: :func:`milp`'s branch-and-bound), ``stability`` (:func:`stability`'s
    bounds: CROWN with every unit it proves stable at 0 on its proven side; ``time_limit``
    seconds in all, default ``None``: ``stability.TIME_LIMIT``, ``math.inf``: none) or
    ``progressive`` (interval, then CROWN, then LP only for the neurons still unstable,
    then, with ``use_milp``, MILP only for those still unstable). The result's
    ``settled_by`` names the stage that produced each neuron's bound and ``seconds`` the
    time per stage.

    ``milp``/``exact`` (and ``progressive`` with ``use_milp``) stop each neuron's search at
    ``milp_time_limit`` seconds (for ``milp``, ``time_limit`` when given) or
    ``milp_node_limit`` nodes per neuron and side, with sound, looser bounds. Their result
    is the same on every run with the same ``threads`` unless the time limit stopped a
    search (the search table's ``unresolved``): a time limit depends on the machine and its
    load, a node limit does not (``milp_time_limit=math.inf, milp_node_limit=N`` repeats
    exactly). ``deterministic=True`` runs the searches on one thread, so the result does not
    depend on ``threads`` either (see :func:`milp`).

    ``domain`` (or the keywords ``A_ub``, ``b_ub``, ``A_eq``, ``b_eq``, ``l1``, see
    :func:`interval`): the bounds hold on that :class:`Domain` (every method takes one)."""
    threads = _options.threads(threads)
    milp_time_limit = _options.seconds("milp_time_limit", milp_time_limit)
    m = get(method)
    d, lo, hi = domain_and_box(net, lo, hi, domain, A_ub, b_ub, A_eq, b_eq, l1)
    if not m.polytope and d is not None:  # (a method registered without domain support)
        raise NotImplementedError(f"tighten(method={method!r}): this method takes no domain "
                                  "with linear constraints or an l1 ball")
    if milp_node_limit is not None:
        milp_node_limit = _options.positive_int("milp_node_limit", milp_node_limit, " or None")
    extra = {}
    if m.name == "progressive":
        extra = {"use_milp": use_milp, "milp_time_limit": milp_time_limit,
                 "milp_node_limit": milp_node_limit}
    elif m.name == "milp":
        extra = {"node_limit": milp_node_limit}
        # time_limit, when given, is the search's limit (it was silently dropped before)
        time_limit = milp_time_limit if time_limit is None else time_limit
    return m.bounds(net, lo if d is None else None, hi if d is None else None, domain=d,
                    threads=threads, progress=progress, deterministic=deterministic,
                    time_limit=time_limit, **extra)
