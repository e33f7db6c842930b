"""What the TPC MILP embeds for one variant: :class:`Surrogate` (networks, bounds, margins,
fallbacks), its compression and quantization, and the residuals of its split-conformal
margins (:mod:`emlpress.eml.conformal`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from emlpress.compress import lossless
from emlpress.data import tpc
from emlpress.eml import margins
from emlpress.network import Network
from emlpress.pipelines.tpc.config import RESOURCES, Config


@dataclass
class Surrogate:
    """What the MILP embeds for one variant: the error network, the resource network (None
    when no resource output is used), their bounds (from lossless compression), the margins and
    the fallback maxima per hardware."""

    error_net: Network
    resource_net: Network | None
    error_bounds: object = None
    resource_bounds: object = None
    margin_error: float = 0.0
    margins: dict = field(default_factory=dict)   # resource name -> margin (used outputs)
    fallback: dict = field(default_factory=dict)  # resource name -> {hw: max measured}
    error_q: object = None      # QuantizedNetwork: embedded exactly instead of error_net
    resource_q: object = None
    tflite: dict = field(default_factory=dict)    # "error"/"resources" -> int8 .tflite bytes
    deployed: dict = field(default_factory=dict)  # the int8 models as the interpreter runs them

    def error_prediction(self, X) -> np.ndarray:
        """-log10(error) as the MILP's model predicts it (the interpreter for exact ones)."""
        return (self.error_q.forward(X) if self.error_q is not None else self.error_net.forward(X))[:, 0]

    def resource_prediction(self, X) -> np.ndarray:
        return self.resource_q.forward(X) if self.resource_q is not None else self.resource_net.forward(X)


class _Model:
    """One variant's surrogates: their training results (to refit from) and how they are used."""

    def __init__(self, err_fit, res_fit, lossless_: bool, embed: str = "float"):
        self.err_fit, self.res_fit, self.lossless = err_fit, res_fit, lossless_
        self.embed = embed  # float | dequantized | exact
        self.compress_ms = float("nan")
        self.reports = {}


def _surrogate(m: _Model, data, split, cfg: Config, res_use: dict, fallback: dict,
               lo, hi) -> Surrogate:
    """Compress (lossless variants) and calibrate the margins of a variant's networks."""
    _, cal, _ = split
    err_net = m.err_fit.net
    res_net = m.res_fit.net if res_use else None
    sur = Surrogate(err_net, res_net, fallback={k: v for k, v in fallback.items()})
    if m.lossless:
        t0 = time.perf_counter()
        sur.error_net, rep = lossless(err_net, lo, hi, bounds=cfg.compression_bounds)
        sur.error_bounds = rep.bounds
        m.reports["error"] = rep
        if res_net is not None:
            sur.resource_net, rep = lossless(res_net, lo, hi, bounds=cfg.compression_bounds)
            sur.resource_bounds = rep.bounds
            m.reports["resources"] = rep
        m.compress_ms = (time.perf_counter() - t0) * 1e3
    if m.embed != "float":
        _quantize(sur, m, data, split, lo, hi)
    sur.margins = margins(_residuals(sur, data, cal, res_use), cfg.coverage)
    sur.margin_error = sur.margins.pop("error")
    return sur


def _residuals(sur: Surrogate, data, cal, res_use: dict, extra=()) -> dict:
    """Held-out residuals per constraint, the surrogate's optimism (predicted ``-log10(error)``
    minus measured; measured time/memory minus predicted), on the calibration rows and on
    ``extra`` (x, {error, time, memory_mean, memory_peak}) measured answers held out from
    the refits."""
    X = data.X(cal)
    target = {"error": cal["neg_log_error"].to_numpy()} | {k: cal[k].to_numpy() for k in RESOURCES}
    if len(extra):
        X = np.vstack([X, [x for x, _ in extra]])
        target["error"] = np.concatenate([target["error"], tpc.neg_log_error([v["error"] for _, v in extra])])
        for k in RESOURCES:
            target[k] = np.concatenate([target[k], [v[k] for _, v in extra]])
    out = {"error": sur.error_prediction(X) - target["error"]}
    if sur.resource_net is not None:
        P = sur.resource_prediction(X)
        for k, name in enumerate(RESOURCES):
            if name in res_use:
                out[name] = target[name] - P[:, k]
    return out


def _quantize(sur: Surrogate, m: _Model, data, split, lo, hi) -> None:
    """The variant's int8 models (full integer, float I/O, calibrated on the training rows):
    embedded by their dequantized weights or exactly; margins then follow the embedded model."""
    # TensorFlow and LiteRT: optional, heavy, only for the int8 variants
    from emlpress.compress.lossy import quantize
    from emlpress.io.tflite import QuantizedNetwork, from_tflite

    train = split[0]
    Xtr = data.X(train)
    t0 = time.perf_counter()
    for key, net in (("error", sur.error_net), ("resources", sur.resource_net)):
        if net is None:
            continue
        content = quantize(net, "int8-fallback", representative=Xtr)
        sur.tflite[key] = content
        q = QuantizedNetwork.from_tflite(content)
        sur.deployed[key] = q
        if m.embed == "exact":
            setattr(sur, "error_q" if key == "error" else "resource_q", q)
        deq = from_tflite(content).with_domain(lo, hi)
        if key == "error":
            sur.error_net = deq
        else:
            sur.resource_net = deq
    m.compress_ms = (time.perf_counter() - t0) * 1e3


def _tflite_bytes(sur: Surrogate, nets) -> int:
    """The variant's models as .tflite files (same format for every variant): its int8 files,
    or the float32 conversion of its float networks."""
    if sur.tflite:
        return int(sum(len(c) for c in sur.tflite.values()))
    try:  # TensorFlow: optional, heavy
        from emlpress.compress.lossy import quantize
    except ImportError:  # pragma: no cover - the pipeline trains with TensorFlow anyway
        return -1
    return int(sum(len(quantize(n, "float32")) for n in nets))
