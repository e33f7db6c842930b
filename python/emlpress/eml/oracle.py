"""What an oracle returns (:class:`Measurement`) and how the loop calls it (:func:`measure`):
an oracle that raises, returns NaN or returns something else gives an *unmeasured* answer
with the reason, never a verdict."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

__all__ = ["Measurement", "measure", "TableOracle"]


@dataclass
class Measurement:
    """One oracle call's result.

    ``feasible``: the measured verdict (None: unmeasured, ``reason`` says why);
    ``objective``: the measured objective (None when the problem's objective is exact, e.g. the
    total bits of a configuration); ``values``: the measured quantities ({name: float}, in the
    oracle's units); ``source``: what measured it."""

    feasible: bool | None
    objective: float | None = None
    values: dict = field(default_factory=dict)
    source: str = ""
    reason: str = ""

    @property
    def measured(self) -> bool:
        return self.feasible is not None


def _finite(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def _as_measurement(r) -> Measurement:
    """An oracle's return value as a Measurement: a Measurement, a bool (the verdict), or a
    mapping with ``feasible`` and optionally ``objective``, ``source`` and measured values."""
    if isinstance(r, Measurement):
        return r
    if isinstance(r, bool):
        return Measurement(feasible=r)
    if hasattr(r, "items"):
        d = dict(r)
        if "feasible" not in d:
            raise TypeError(f"the oracle returned a mapping without 'feasible' (keys {sorted(d)})")
        f = d.pop("feasible")
        return Measurement(feasible=None if f is None else bool(f), objective=d.pop("objective", None),
                           source=str(d.pop("source", "")), reason=str(d.pop("reason", "")), values=d)
    raise TypeError(f"the oracle returned {type(r).__name__} ({r!r:.80}); expected a Measurement, "
                    "a bool or a mapping with 'feasible'")


def measure(oracle, config) -> Measurement:
    """Call ``oracle(config)``; an exception, a NaN/inf objective or value, or a return value of
    another type gives an unmeasured Measurement whose ``reason`` names what went wrong."""
    try:
        r = oracle(config)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # noqa: BLE001  (any failure of the oracle is the answer's label)
        return Measurement(None, source="oracle", reason=f"the oracle raised {type(e).__name__}: {e}")
    try:
        m = _as_measurement(r)
    except TypeError as e:
        return Measurement(None, source="oracle", reason=str(e))
    if m.feasible is None:
        return Measurement(None, m.objective, dict(m.values), m.source,
                           m.reason or "the oracle gave no verdict")
    bad = [k for k, v in m.values.items() if v is not None and not _finite(v)]
    if m.objective is not None and not _finite(m.objective):
        bad.insert(0, "objective")
    if bad:
        shown = ", ".join(f"{k}={m.objective if k == 'objective' else m.values[k]!r}" for k in bad)
        return Measurement(None, m.objective, dict(m.values), m.source,
                           f"the oracle returned a non-finite measurement ({shown})")
    return m


class TableOracle:
    """An oracle from a table of measurements: ``{config: Measurement or mapping}``; a
    configuration not in the table is unmeasured ("not in the table"), never given a
    neighbour's verdict."""

    def __init__(self, table: dict, source: str = "table"):
        self.table = {tuple(k): v for k, v in table.items()}
        self.source = source

    def __call__(self, config) -> Measurement:
        key = tuple(config)
        if key not in self.table:
            return Measurement(None, source=self.source, reason=f"{key} is not in the table")
        m = _as_measurement(self.table[key])
        return Measurement(m.feasible, m.objective, dict(m.values), m.source or self.source, m.reason)
