"""What every model embedded in a HiGHS model has: :class:`PredictorHandle`.

A handle knows its input and output columns and the model's own evaluation (``predict``:
a network's forward pass, a tree's ``predict``, the int8 interpreter). It is registered on
the ``highspy.Highs`` model it was added to; :func:`emlpress.milp.solve` reads that list
(:func:`registered_handles`) and checks every answer against each model's own evaluation.
"""

from __future__ import annotations

import highspy
import numpy as np

from emlpress._highs import col_name, column_indices

__all__ = ["PredictorHandle", "registered_handles", "VERIFY_RTOL"]

VERIFY_RTOL = 1e-6
_REGISTRY_ATTR = "_emlpress_networks"


class PredictorHandle:
    """One model inside a HiGHS model: the base of :class:`~emlpress.milp.NetworkHandle`,
    :class:`~emlpress.milp.TreeHandle` and :class:`~emlpress.milp.QuantizedHandle`, and of
    a user's own kinds (:func:`~emlpress.milp.register_predictor`).

    A subclass sets ``name`` (unique within the model), ``input_cols`` and ``output_cols``
    (column indices, shapes ``(n_in,)`` and ``(n_out,)``), ``encode_s`` (seconds) and ``_h``
    (the ``highspy.Highs`` model), and defines :meth:`predict`. Where the model's answer must
    be compared otherwise than to ``VERIFY_RTOL`` relative to ``max(1, |output|)``, it also
    overrides ``_check``/``_mismatch``; where the encoding can be rebuilt column by column at
    an input (so that :mod:`emlpress.milp.repair` can repair an answer), ``_exact_columns``."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The model's own evaluation at one input point ``x`` (shape ``(n_in,)``): its
        outputs, shape ``(n_out,)``, in the units of the output columns."""
        raise NotImplementedError(f"{type(self).__name__} must define predict(x): the model's "
                                  "own evaluation that solve() verifies the MILP against")

    def _vars(self, cols):
        return [highspy.highs.highs_var(int(c), self._h) for c in cols]

    @property
    def inputs(self) -> list:
        return self._vars(self.input_cols)

    @property
    def outputs(self) -> list:
        """Output variables, usable in highspy expressions (``h.setObjective(nn.outputs[0])``)."""
        return self._vars(self.output_cols)

    def values_at(self, col_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, outputs) of this model in the model's column values ``col_values``."""
        x = np.asarray(col_values)
        return x[self.input_cols], x[self.output_cols]

    def _exact_columns(self, x) -> tuple[np.ndarray, np.ndarray] | None:
        """(columns, values) of this model's encoding evaluated exactly at input ``x``, or
        None where the encoding cannot be rebuilt column by column."""
        return None

    def values(self, solution) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, outputs) of this network in ``solution``."""
        return self.values_at(solution.col_values)

    def _mismatch(self, diff: float, scale: float) -> str | None:
        """The warning for a verification difference ``diff`` (of ``_check``), or None."""
        if diff > VERIFY_RTOL * scale:
            return (f"network {self.name!r}: the MILP's outputs differ from the network's forward "
                    f"pass by {diff:.3g} (relative {diff / scale:.3g}); the encoding is only as "
                    "exact as the solver's feasibility tolerance")
        return None

    def _check(self, x, y) -> tuple[float, float]:
        """(max |predict(x) - y|, max(1, max |predict(x)|)) from one evaluation."""
        p = np.asarray(self.predict(np.asarray(x, float)), float).reshape(-1)
        return float(np.max(np.abs(p - np.asarray(y, float)))), max(1.0, float(np.max(np.abs(p))))

    def verify(self, solution) -> float:
        """Largest absolute difference between the MILP's outputs and the model's own
        evaluation at the MILP's inputs (``nan`` when the solution has no values)."""
        if solution.col_values is None:
            return float("nan")
        return self._check(*self.values(solution))[0]

    def get_error(self, solution=None) -> np.ndarray:
        """Per output (shape ``(n_out,)``), |the MILP's value - the model's own evaluation|
        at the MILP's inputs, in output units: of ``solution`` (a
        :class:`~emlpress.milp.Solution`) or, by default, of the last answer of
        :func:`~emlpress.milp.solve` on this model (the verified answer, whoever found it),
        else HiGHS' current solution (as gurobi-ml's ``get_error``; after ``solve``, a
        ``h.run()`` of your own is not read). Raises ValueError when there is no solution."""
        if solution is None:
            solution = self._h.__dict__.get("_emlpress_last_solution")
        if solution is None:
            if self._h.getInfo().primal_solution_status != 2:  # kSolutionStatusFeasible
                raise ValueError(f"model {self.name!r}: HiGHS has no feasible solution to compare")
            col_values = np.asarray(self._h.getSolution().col_value)
        elif solution.col_values is None:
            raise ValueError(f"model {self.name!r}: the solution ({solution.status}) has no values")
        else:
            col_values = solution.col_values
        x, y = self.values_at(col_values)
        return np.abs(np.asarray(self.predict(x), float).reshape(-1) - np.asarray(y, float))

    def stats(self) -> dict:
        """Size of the encoding: the inputs, the outputs, the counts of columns and rows the
        handle keeps and the time to encode (ms)."""
        s = {"model": self.name, "inputs": len(self.input_cols), "outputs": len(self.output_cols)}
        for key, attr in _COUNTS:
            if hasattr(self, attr):
                s[key] = getattr(self, attr)
        s["encode_ms"] = self.encode_s * 1e3
        return s

    def print_stats(self, file=None) -> None:
        """One-line summary of the encoding, like gurobi-ml's ``print_stats``."""
        s = self.stats()
        counts = "".join(f", {s[key]} {key}" for key, _ in _COUNTS if key in s)
        print(f"{type(self).__name__} {self.name!r}: {len(self.input_cols)} inputs, "
              f"{len(self.output_cols)} outputs{counts}; encoded in {self.encode_s * 1e3:.2f} ms",
              file=file)

    def register(self) -> None:
        """Put this handle on its model's list, so that :func:`~emlpress.milp.solve` verifies
        every answer against it (the ``add_*`` functions and ``add_predictor`` do this)."""
        registry = self._h.__dict__.setdefault(_REGISTRY_ATTR, [])
        if any(hd is self for hd in registry):
            return
        if any(hd.name == self.name for hd in registry):
            raise ValueError(f"a network named {self.name!r} is already in this model: pass another name=")
        registry.append(self)


#: (stats key, handle attribute) of the encoding's sizes, where a handle keeps them
_COUNTS = (("variables", "n_vars"), ("binaries", "n_binaries"), ("integers", "n_integers"),
           ("constraints", "n_constraints"), ("nonzeros", "n_nonzeros"))


def registered_handles(h) -> list:
    """The :class:`PredictorHandle` of every model added to ``h``, in the order they were
    added (what :func:`~emlpress.milp.solve` verifies)."""
    return h.__dict__.get(_REGISTRY_ATTR, [])


def col_bounds(h, cols) -> tuple[np.ndarray, np.ndarray]:
    """The bounds of columns ``cols`` (shape ``(n,)``), in that order, repeats allowed:
    HiGHS' ``getCols`` takes an increasing set only (given another it returns an error and
    zeros, which once made every input's box ``[0, 0]``)."""
    u, inv = np.unique(np.asarray(cols, np.int32), return_inverse=True)
    status, _, _, lo, hi, _ = h.getCols(int(u.size), u.astype(np.int32))
    if status != highspy.HighsStatus.kOk:
        raise ValueError(f"columns {u.tolist()[:8]}: HiGHS could not read their bounds ({status})")
    return np.asarray(lo, float)[inv], np.asarray(hi, float)[inv]


def _new_inputs(h, inputs, n_in: int, name: str):
    """(the model's network registry, input columns, their bounds) for a new network named
    ``name`` taking ``n_in`` inputs; the name must be new and the bounds finite."""
    registry = h.__dict__.setdefault(_REGISTRY_ATTR, [])
    if any(hd.name == name for hd in registry):
        raise ValueError(f"a network named {name!r} is already in this model: pass another name=")
    cols = column_indices(h, inputs)
    if cols.size != n_in:
        raise ValueError(f"network {name!r} takes {n_in} inputs, got {cols.size}")
    lo, hi = col_bounds(h, cols)
    for q in range(cols.size):
        if not (np.isfinite(lo[q]) and np.isfinite(hi[q])):
            raise ValueError(
                f"network {name!r}, input {q} ({col_name(h, cols[q])}): bounds [{lo[q]}, {hi[q]}] "
                "must be finite for the big-M encoding"
            )
    return registry, cols, lo, hi
