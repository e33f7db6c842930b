"""Local search around the loop's best measured answer: :class:`CoordinateDescent`, a
``local`` callable for :func:`emlpress.eml.run_loop` on integer configurations whose objective
is their sum (e.g. total bits) and whose constraint is monotone (more never hurts: more bits
never increase the error).

From the best measured-feasible configuration it proposes, one at a time (each measured by the
loop's oracle): per variable, a binary search of the smallest value that stays feasible, the
others fixed; when no variable can go lower alone, trades that lower the sum (``-2`` on one
variable, ``+1`` on another). A configuration at or below a measured-infeasible one (the same
fixed part, every variable at most its value) is presumed infeasible and not proposed: that is
where monotonicity saves calls; it only decides what is *tried*, never a verdict (every answer
the loop returns is measured), and a measured-infeasible configuration at or above a
measured-feasible one (monotonicity broken there, e.g. by noise) prunes nothing.
"""

from __future__ import annotations

import numpy as np

from emlpress.eml.loop import Context, Proposal

__all__ = ["CoordinateDescent"]


class CoordinateDescent:
    """``local(ctx) -> Proposal | None`` over the first ``n`` entries of a configuration tuple
    (integers in ``[lower, upper]``, per entry); the entries after ``n`` (e.g. the hardware) stay
    as the best answer's. ``pairs``: also try the sum-lowering trades ``-2``/``+1`` once no
    single variable can go lower, and ``triples`` then ``-1``/``-1``/``+1``. With no
    measured-feasible answer yet (``ctx.best`` None) it repairs first: every variable of the
    last measured answer raised by 1, 2, 4, ... until one is feasible. ``score(configs) -> array``: optional, larger first among the
    trades (e.g. the surrogate's predicted slack), so fewer of them are measured.

    Stateless between calls: everything it needs is in ``ctx`` (``ctx.best``, the measured
    ``ctx.observations`` and ``ctx.excluded``), so a resumed or re-weighted loop proposes alike."""

    def __init__(self, lower, upper, n: int, pairs: bool = True, score=None, triples: bool = True):
        self.n = int(n)
        self.lower = np.broadcast_to(np.asarray(lower, int), (self.n,)).copy()
        self.upper = np.broadcast_to(np.asarray(upper, int), (self.n,)).copy()
        if (self.lower > self.upper).any():
            raise ValueError(f"lower {self.lower.tolist()} above upper {self.upper.tolist()}")
        self.pairs = pairs
        self.triples = triples
        self.score = score

    def __call__(self, ctx: Context) -> Proposal | None:
        if ctx.best is None:
            return self._repair(ctx)
        n = self.n
        best = np.asarray(ctx.best[:n], int)
        tail = tuple(ctx.best[n:])
        seen = {tuple(c) for c in ctx.excluded}
        # measured-infeasible configurations with the same fixed part: what monotonicity prunes with
        same = [o for o in ctx.observations if tuple(o.config[n:]) == tail and o.measurement.measured]
        bad = np.array([o.config[:n] for o in same if not o.measurement.feasible], int).reshape(-1, n)
        good = np.array([o.config[:n] for o in same if o.measurement.feasible], int).reshape(-1, n)
        if len(bad) and len(good):  # an infeasible one above a feasible one: not monotone there, no pruning by it
            bad = bad[~(good[None, :, :] <= bad[:, None, :]).all(axis=2).any(axis=1)]

        def presumed_bad(v) -> bool:
            return bool(len(bad)) and bool((np.asarray(v) <= bad).all(axis=1).any())

        def proposal(v, move):
            config = (*map(int, v), *tail)
            return Proposal(config, float(np.sum(v)), "LOCAL", info={"move": move})

        # binary search per variable: the largest value below best[i] presumed (or measured) infeasible
        gaps = []
        for i in range(n):
            v = best.copy()
            floor = self.lower[i] - 1
            for x in range(best[i] - 1, self.lower[i] - 1, -1):
                v[i] = x
                if presumed_bad(v):
                    floor = x
                    break
            if best[i] - 1 > floor:
                gaps.append((best[i] - floor, i, floor))
        for _gap, i, floor in sorted(gaps, reverse=True):  # the widest interval first: most to gain
            v = best.copy()
            for x in ((floor + best[i]) // 2, best[i] - 1):  # the midpoint, or one below if it was tried
                v[i] = max(x, floor + 1)
                if (*map(int, v), *tail) not in seen:
                    return proposal(v, f"var_{i} {best[i]} -> {v[i]}")
        if not self.pairs:
            return None
        moves = []
        for i in range(n):
            for j in range(n):
                if i != j and best[i] - 2 >= self.lower[i] and best[j] + 1 <= self.upper[j]:
                    v = best.copy()
                    v[i] -= 2
                    v[j] += 1
                    if (*map(int, v), *tail) not in seen and not presumed_bad(v):
                        moves.append((v, f"var_{i} -2, var_{j} +1"))
        if not moves and self.triples:  # -1, -1, +1: what the trades miss (e.g. 5 6 8 5 -> 5 5 7 6)
            for i in range(n):
                for j in range(i + 1, n):
                    for k in range(n):
                        if k not in (i, j) and best[i] > self.lower[i] and best[j] > self.lower[j] \
                                and best[k] < self.upper[k]:
                            v = best.copy()
                            v[i] -= 1
                            v[j] -= 1
                            v[k] += 1
                            if (*map(int, v), *tail) not in seen and not presumed_bad(v):
                                moves.append((v, f"var_{i} -1, var_{j} -1, var_{k} +1"))
        if not moves:
            return None
        if self.score is not None:
            s = np.asarray(self.score([(*map(int, v), *tail) for v, _ in moves]), float)
            moves = [moves[k] for k in np.argsort(-s, kind="stable")]
        return proposal(*moves[0])

    def _repair(self, ctx: Context) -> Proposal | None:
        """No measured-feasible answer yet: raise every variable of the last measured answer by
        1, 2, 4, ... (at most ``upper``) until one is feasible, the descent's start. None when
        nothing was measured or every such step is measured or presumed infeasible."""
        last = [o for o in ctx.observations if o.measurement.measured]
        if not last:
            return None
        n = self.n
        base = np.asarray(last[-1].config[:n], int)
        tail = tuple(last[-1].config[n:])
        seen = {tuple(c) for c in ctx.excluded}
        bad = np.array([o.config[:n] for o in last if tuple(o.config[n:]) == tail
                        and not o.measurement.feasible], int).reshape(-1, n)
        step = 1
        while True:
            v = np.minimum(base + step, self.upper)
            config = (*map(int, v), *tail)
            if config not in seen and not (len(bad) and (v <= bad).all(axis=1).any()):
                return Proposal(config, float(v.sum()), "LOCAL", info={"move": f"repair: all +{step}"})
            if (v == self.upper).all():
                return None
            step *= 2
