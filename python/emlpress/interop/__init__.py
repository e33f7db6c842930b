"""emlpress' sound neuron bounds for the networks other libraries embed (gurobi-ml #237):
after ``gurobi_ml.add_predictor_constr`` (Gurobi) or an OMLT block (Pyomo, any solver),
:func:`tighten_gurobi_ml` / :func:`tighten_omlt` compute CROWN, LP or stability bounds for the
same network on the model's input box and write them onto the peer's own variables, so its
users get tighter big-Ms without changing solver. The peers are the ``[peers]`` extra; each is
imported only when its function is called.

``gurobi.py``: gurobi-ml's layers (``DenseLayer``/``ActivationLayer``) and Gurobi variables;
``omlt.py``: OMLT's ``NetworkDefinition`` and block variables; ``_common.py``: the chain of
dense layers, the bounds per input box and the :class:`Tightening` report.
"""

from emlpress.interop._common import Tightening, UnsupportedPeerModel
from emlpress.interop.gurobi import gurobi_ml_network, tighten_gurobi_ml
from emlpress.interop.omlt import omlt_network, tighten_omlt

__all__ = ["tighten_gurobi_ml", "tighten_omlt", "gurobi_ml_network", "omlt_network", "Tightening",
           "UnsupportedPeerModel"]
