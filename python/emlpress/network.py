"""The `Network` type: a dense ReLU network with an optional input domain."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence

import numpy as np

from emlpress import kernels

__all__ = ["Network", "box_points"]

#: Up to this input dimension, box_points includes every corner of the box.
MAX_CORNER_DIMS = 12


def box_points(lo, hi, n_points: int, seed: int = 0, max_corner_dims: int = MAX_CORNER_DIMS) -> np.ndarray:
    """``n_points`` seeded uniform points of the box ``[lo, hi]`` followed by all its corners
    when the box has at most ``max_corner_dims`` dimensions."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    rng = np.random.default_rng(seed)
    X = lo + (hi - lo) * rng.random((n_points, lo.size))
    if lo.size <= max_corner_dims:
        bits = (np.arange(2**lo.size)[:, None] >> np.arange(lo.size)) & 1
        X = np.vstack([X, np.where(bits == 1, hi, lo)])
    return X


_ALIGN = 64  # bytes: one cache line, one AVX-512 vector


def _frozen_f64(a: np.ndarray) -> np.ndarray:
    """A read-only, C-ordered float64 copy of ``a`` starting on a cache-line boundary.

    numpy only guarantees 16-byte alignment; the C++ kernels stream weights with 64-byte
    vector loads, and a misaligned start makes every load straddle two cache lines (the
    interval kernel ran ~20% slower on misaligned weights, see benches/README.md).
    """
    a = np.asarray(a)
    n = a.size
    buf = np.empty(n + _ALIGN // 8, dtype=np.float64)
    start = (-buf.ctypes.data % _ALIGN) // 8
    out = buf[start : start + n].reshape(a.shape)
    out[...] = a
    out.setflags(write=False)
    return out


def check_box(n_in: int, lo, hi, what: str = "input") -> tuple[np.ndarray, np.ndarray]:
    """Validate an input box: 1-D, length ``n_in``, finite, ``lo <= hi``; returns float64 arrays.

    float64 arrays are returned as they are (no copy); float32 and lists are converted.
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    for name, v in (("lo", lo), ("hi", hi)):
        if v.ndim == 0:
            raise ValueError(f"{what} box: {name} must be a vector of length {n_in}, got a scalar")
        if v.shape != (n_in,):
            raise ValueError(f"{what} box: {name} has shape {v.shape}, expected ({n_in},)")
        bad = np.flatnonzero(~np.isfinite(v))
        if bad.size:
            raise ValueError(f"{what} box: {name}[{bad[0]}] = {v[bad[0]]} is not finite")
    bad = np.flatnonzero(lo > hi)
    if bad.size:
        i = bad[0]
        raise ValueError(f"{what} box: lo[{i}] = {lo[i]} > hi[{i}] = {hi[i]}")
    return lo, hi


class Network:
    """A dense ReLU network: ReLU after every layer but the last, which is linear.

    Parameters
    ----------
    weights : sequence of arrays, ``weights[l]`` of shape ``(n_out, n_in)`` (PyTorch order).
    biases : sequence of 1-D arrays, ``biases[l]`` of shape ``(n_out,)``.
    lo, hi : optional input domain (the box on which bounds and compression apply).

    Instances are immutable: arrays are copied to read-only float64 on construction.
    """

    __slots__ = ("_weights", "_biases", "_lo", "_hi", "_core")

    def __init__(self, weights: Sequence, biases: Sequence, lo=None, hi=None):
        weights, biases = list(weights), list(biases)
        if len(weights) == 0:
            raise ValueError("a Network needs at least one layer, got no weight matrices")
        if len(weights) != len(biases):
            raise ValueError(f"got {len(weights)} weight matrices but {len(biases)} bias vectors")
        Ws, bs = [], []
        for l, (W, b) in enumerate(zip(weights, biases)):
            W, b = np.asarray(W), np.asarray(b)
            if W.ndim != 2:
                raise ValueError(f"layer {l}: weights must be 2-D (n_out, n_in), got shape {W.shape}")
            if b.ndim != 1:
                raise ValueError(f"layer {l}: biases must be 1-D, got shape {b.shape}")
            if b.shape[0] != W.shape[0]:
                raise ValueError(
                    f"layer {l}: biases of shape {b.shape} do not match weights of shape "
                    f"{W.shape} (expected ({W.shape[0]},))"
                )
            if l > 0 and W.shape[1] != Ws[-1].shape[0]:
                raise ValueError(
                    f"layer {l}: weights of shape {W.shape} take {W.shape[1]} inputs but layer "
                    f"{l - 1} has {Ws[-1].shape[0]} outputs (shape {Ws[-1].shape})"
                )
            if W.shape[0] == 0 or W.shape[1] == 0:
                raise ValueError(f"layer {l}: empty weight matrix of shape {W.shape}")
            for name, a in (("weights", W), ("biases", b)):
                if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
                    raise ValueError(f"layer {l}: {name} must be real numbers, got dtype {a.dtype}")
                bad = np.argwhere(~np.isfinite(a))
                if bad.size:
                    idx = tuple(int(i) for i in bad[0])
                    raise ValueError(f"layer {l}: {name}{list(idx)} = {a[idx]} is not finite")
            Ws.append(_frozen_f64(W))
            bs.append(_frozen_f64(b))
        self._weights = tuple(Ws)
        self._biases = tuple(bs)
        if (lo is None) != (hi is None):
            raise ValueError("give both lo and hi for the input domain, or neither")
        if lo is not None:
            lo, hi = check_box(Ws[0].shape[1], lo, hi, what="domain")
            self._lo, self._hi = _frozen_f64(lo), _frozen_f64(hi)
        else:
            self._lo = self._hi = None
        self._core = kernels.Net(list(self._weights), list(self._biases))

    # ---- structure -------------------------------------------------------------------
    @property
    def weights(self) -> tuple[np.ndarray, ...]:
        """Weight matrices, ``weights[l]`` of shape ``(n_out, n_in)``, read-only float64."""
        return self._weights

    @property
    def biases(self) -> tuple[np.ndarray, ...]:
        return self._biases

    @property
    def lo(self) -> np.ndarray | None:
        return self._lo

    @property
    def hi(self) -> np.ndarray | None:
        return self._hi

    @property
    def sizes(self) -> list[int]:
        """Layer widths ``[n_in, n_1, ..., n_out]``."""
        return [self._weights[0].shape[1]] + [W.shape[0] for W in self._weights]

    @property
    def n_layers(self) -> int:
        """Number of affine layers (hidden layers + output layer)."""
        return len(self._weights)

    @property
    def n_in(self) -> int:
        return self._weights[0].shape[1]

    @property
    def n_out(self) -> int:
        return self._weights[-1].shape[0]

    @property
    def n_params(self) -> int:
        return int(sum(W.size + b.size for W, b in zip(self._weights, self._biases)))

    @property
    def n_neurons(self) -> int:
        """Number of hidden (ReLU) units."""
        return int(sum(self.sizes[1:-1]))

    def with_domain(self, lo, hi) -> Network:
        """The same network with another input domain."""
        return Network(self._weights, self._biases, lo, hi)

    def domain(self, lo=None, hi=None) -> tuple[np.ndarray, np.ndarray]:
        """Resolve an input box: explicit ``lo``/``hi`` or else the network's domain."""
        if lo is None and hi is None:
            if self._lo is None:
                raise ValueError(
                    "no input box: pass lo and hi, or build the Network with a domain"
                )
            return self._lo, self._hi
        if lo is None or hi is None:
            raise ValueError("give both lo and hi, or neither to use the network's domain")
        return check_box(self.n_in, lo, hi)

    # ---- evaluation ------------------------------------------------------------------
    def _batch(self, X) -> tuple[np.ndarray, bool]:
        X = np.asarray(X)
        single = X.ndim == 1
        if single:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.n_in:
            raise ValueError(f"inputs must have shape (n, {self.n_in}), got {np.shape(X)}")
        if X.dtype not in (np.float64, np.float32):
            X = X.astype(np.float64)
        return X, single

    def forward(self, X) -> np.ndarray:
        """Network outputs for inputs ``X`` of shape ``(n, n_in)`` (or one point ``(n_in,)``)."""
        X, single = self._batch(X)
        Y = kernels.forward(self._core, X)
        return Y[0] if single else Y

    __call__ = forward

    def preactivations(self, X) -> list[np.ndarray]:
        """Pre-activation values of every layer: element ``l`` has shape ``(n, sizes[l+1])``."""
        X, single = self._batch(X)
        Z = kernels.preactivations(self._core, X)
        return [z[0] for z in Z] if single else Z

    # ---- persistence -----------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write ``W0.., b0..`` (and ``lo``/``hi`` when the domain is set) to an ``.npz`` file."""
        arrays = {f"W{l}": W for l, W in enumerate(self._weights)}
        arrays.update({f"b{l}": b for l, b in enumerate(self._biases)})
        if self._lo is not None:
            arrays["lo"], arrays["hi"] = self._lo, self._hi
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Network:
        """Read a network written by :meth:`save` (keys ``W0..``, ``b0..``, optional ``lo``/``hi``)."""
        try:
            z = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise
        except (ValueError, OSError, EOFError, zipfile.BadZipFile):
            raise ValueError(f"{path}: not a network file (an .npz archive written by "
                             "Network.save)") from None
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError(f"{path}: holds a single array, not a network (an .npz archive "
                             "with keys W0, b0, W1, ...)")
        with z:
            keys = set(z.files)
            n = 0
            while f"W{n}" in keys:
                n += 1
            if n == 0:
                raise ValueError(f"{path}: no weight matrices (expected keys W0, b0, W1, ...)")
            missing = [f"b{l}" for l in range(n) if f"b{l}" not in keys]
            if missing:
                raise ValueError(f"{path}: missing bias arrays {missing}")
            try:
                return cls(
                    [z[f"W{l}"] for l in range(n)],
                    [z[f"b{l}"] for l in range(n)],
                    z["lo"] if "lo" in keys else None,
                    z["hi"] if "hi" in keys else None,
                )
            except ValueError as e:
                raise ValueError(f"{path}: {e}") from None

    # ---- display ---------------------------------------------------------------------
    def __repr__(self) -> str:
        dom = "" if self._lo is None else f", domain=[{self._lo.tolist()}, {self._hi.tolist()}]"
        return f"Network(sizes={self.sizes}, n_params={self.n_params}{dom})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Network) or self.sizes != other.sizes:
            return False
        same = all(np.array_equal(a, b) for a, b in zip(self._weights, other._weights))
        same = same and all(np.array_equal(a, b) for a, b in zip(self._biases, other._biases))
        dom = (self._lo is None and other._lo is None) or (
            self._lo is not None
            and other._lo is not None
            and np.array_equal(self._lo, other._lo)
            and np.array_equal(self._hi, other._hi)
        )
        return bool(same and dom)

    __hash__ = None  # type: ignore[assignment]
