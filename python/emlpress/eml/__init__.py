"""Empirical Model Learning's measure-learn-improve loop, for any pipeline and for users.

:func:`run_loop` iterates: solve the MILP (the user's ``problem``), measure the answer (the
``oracle``: a kernel re-run, a table, a simulator, a user's function), learn the measurement
(``refit``), cut the configuration off (no-good cut) and, after a measured-feasible answer,
ask for a strictly better objective (improvement cut), with split-conformal margins
recomputed on the growing held-out data; it stops when the MILP proves, within its margins,
that no better answer exists, or at a budget of oracle calls or seconds. Every answer is
labelled measured feasible, measured infeasible or unmeasured (with the reason).

- :mod:`emlpress.eml.loop`: :func:`run_loop`, :class:`Proposal`, :class:`Context`,
  :class:`Answer`, :class:`LoopResult`
- :mod:`emlpress.eml.oracle`: :class:`Measurement`, :func:`measure`, :class:`TableOracle`
- :mod:`emlpress.eml.local`: :class:`CoordinateDescent` (the loop's ``local`` search)
- :mod:`emlpress.eml.conformal`: :func:`conformal_margin`, :func:`margins`
"""

from emlpress.eml.conformal import conformal_margin, margins
from emlpress.eml.loop import (FEASIBLE, INFEASIBLE, UNMEASURED, Answer, Context, LoopResult,
                               Observation, Proposal, run_loop)
from emlpress.eml.local import CoordinateDescent
from emlpress.eml.oracle import Measurement, TableOracle, measure

__all__ = ["run_loop", "Proposal", "Context", "Observation", "Answer", "LoopResult",
           "Measurement", "TableOracle", "measure", "conformal_margin", "margins",
           "FEASIBLE", "INFEASIBLE", "UNMEASURED", "CoordinateDescent"]
