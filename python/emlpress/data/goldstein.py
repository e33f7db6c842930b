"""The Goldstein-Price test function, the regression target of the lossless-compression study."""

from __future__ import annotations

import numpy as np

#: The study's input box: x in [-1.5, -0.5], y in [-0.5, 0.5].
LO = np.array([-1.5, -0.5])
HI = np.array([-0.5, 0.5])


def goldstein_price(X: np.ndarray) -> np.ndarray:
    """f(x, y) for points ``X`` of shape ``(n, 2)``; returns shape ``(n,)``."""
    x, y = X[:, 0], X[:, 1]
    a = 1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x**2 - 14 * y + 6 * x * y + 3 * y**2)
    b = 30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x**2 + 48 * y - 36 * x * y + 27 * y**2)
    return a * b


def sample(n: int, seed: int = 0, lo=LO, hi=HI) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uniform points of the box and their function values (seeded)."""
    X = np.random.default_rng(seed).uniform(lo, hi, size=(n, 2))
    return X, goldstein_price(X)
