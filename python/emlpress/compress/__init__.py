"""Network compression: exact (``lossless``, bounds-based) and lossy (``lossy``, TMOT)."""

from emlpress.compress.lossless import LosslessError, LosslessReport, lossless

__all__ = ["lossless", "LosslessReport", "LosslessError"]
