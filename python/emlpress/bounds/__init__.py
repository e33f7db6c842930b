"""Sound pre-activation bounds of every neuron over an input box, or over a box with
linear constraints and an l1 ball (:class:`Domain`: ``domain=``, or the keywords ``A_ub``,
``b_ub``, ``A_eq``, ``b_eq``, ``l1=(center, eps)`` of every method); bounds on a domain are
sound on it only, and :class:`Bounds` records it.

Tolerance policy (one for all methods): each method widens its bounds outward at the
moment it computes them, by the rounding error of float64 arithmetic (``gamma_n`` times
the magnitude of the terms, see ``cpp/include/emlpress/rounding.hpp``), except on the
side of 0 where every term of a unit has one sign (sign-exact: such a sum keeps its sign
under any rounding, so an exact zero stays <= 0); LP and exact
bounds are certified from LP duals, whatever the solver's tolerances. After that widening a neuron is stable exactly when its bound
is on the right side of 0: stably active iff ``lower >= 0``, stably inactive iff
``upper <= 0``. No further tolerance is applied anywhere, so no neuron is ever called
stable on the wrong side of 0.

Where each part lives: ``result`` (:class:`Bounds`), ``rounding`` (the slack of that
policy), ``linear`` (interval, CROWN, bounds on points or boxes), ``relaxation`` (LP bounds,
one LP per neuron), ``bab`` (exact bounds by branch-and-bound), ``witnesses`` (inputs that
show values, for bab and stability), ``stability`` (the exact stable sets), ``domain``
(boxes with constraints), ``methods`` (the registry of methods by name, and
:func:`tighten`), ``conditioning`` (how exact a big-M encoding is under a solver's
tolerance). This module only re-exports.
"""

from emlpress.bounds.bab import milp
from emlpress.bounds.domain import Domain, EmptyDomainError, resolve
from emlpress.bounds.linear import POINTS_MARGIN, crown, interval, on_boxes, on_points
from emlpress.bounds.methods import METHODS, tighten
from emlpress.bounds.relaxation import lp
from emlpress.bounds.result import CHECK_POINTS, Bounds, check_finite
from emlpress.bounds.rounding import forward_rounding, gamma_slack, round_up

# after every submodule has loaded: from here on the attribute `stability` is the function
# (the module stays importable as emlpress.bounds.stability)
from emlpress.bounds.stability import Stability, stability

__all__ = ["Bounds", "interval", "crown", "lp", "milp", "tighten", "on_points", "on_boxes",
           "stability", "Stability", "Domain", "EmptyDomainError", "resolve", "METHODS",
           "POINTS_MARGIN", "CHECK_POINTS", "check_finite", "forward_rounding", "gamma_slack",
           "round_up"]
