"""A :class:`~emlpress.bench.compare.Comparison` shown: time, peer and figures tables (text or
markdown for benches/README.md), one line per machine, and a PNG."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from emlpress._atomic import save_figure_atomic
from emlpress.bench.compare import NOISY, Comparison

_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))


def _unit(values) -> tuple:
    v = min((x for x in values if x > 0), default=1.0)
    return next(((s, u) for s, u in _UNITS if v >= s), _UNITS[-1])


def _num(x: float) -> str:
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    digits = max(0, 2 - int(math.floor(math.log10(abs(x)))))
    return f"{x:,.{min(digits, 3)}f}"


def _ratio(v, noisy: bool = False) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, tuple):
        x, sign, *rest = v
        return f"{sign}{_num(x)}x" + (" noisy" if noisy or any(rest) else "")
    return f"{_num(v)}x" + (" noisy" if noisy else "")


def _info_text(info: dict) -> str:
    skip = {"impl", "role", "against"}
    parts = []
    for k, v in info.items():
        if k in skip:
            continue
        if isinstance(v, float):
            parts.append(f"{k} {v:.4g}")
        elif isinstance(v, (int, str, bool)) or v is None:
            parts.append(f"{k} {v}")
        elif isinstance(v, list) and len(v) <= 8 and all(not isinstance(x, dict) for x in v):
            parts.append(f"{k} {json.dumps(v)}")
    return "; ".join(parts)


def tables(c: Comparison, info: bool = False) -> list:
    """(title, header, rows) of the time table, the peer table and (info) the figures table."""
    n = len(c.labels)
    out = []
    head = ["group", "benchmark"] + [f"{lab}: median (min-max)" for lab in c.labels] \
        + [f"{lab} / {c.labels[0]}" for lab in c.labels[1:]]
    rows = []
    for group, name, impl in c.rows:
        scale, unit = _unit([c.times[name, k][0] for k in range(n) if (name, k) in c.times])
        cells = []
        for k in range(n):
            t = c.times.get((name, k))
            cells.append("absent" if t is None else
                         f"{_num(t[0] / scale)} {unit} ({_num(t[1] / scale)}-{_num(t[2] / scale)})"
                         + (" noisy" if (name, k) in c.noisy else ""))
        cells += [_ratio(c.ratios.get((name, k), "n/c"), (name, 0) in c.noisy or (name, k) in c.noisy)
                  for k in range(1, n)]
        rows.append([group, impl or name.split("::", 1)[1]] + cells)
    out.append((f"times (median, min-max over the rounds; ratio of medians; noisy: max over {NOISY:g}x min, "
                "the median may be inflated; >=, <=: that result stopped at its time limit)", head, rows))
    if c.peers:
        prow = [[g, e, p] + [_ratio(cells[k]) for k in range(n)] for g, e, p, cells in c.peers]
        out.append(("peer time / emlpress time, measured side by side in each run "
                    f"(>=: the peer stopped at its time limit; <=: emlpress did; noisy: either time's max "
                    f"over {NOISY:g}x its min, the ratio may be far off)",
                    ["group", "emlpress", "peer"] + c.labels, prow))
    if info:
        irows = [[g, impl or name.split("::", 1)[1]] + [_info_text(c.info.get((name, k), {})) for k in range(n)]
                 for g, name, impl in c.rows]
        if any(any(x for x in r[2:]) for r in irows):
            out.append(("figures recorded by the benchmarks", ["group", "benchmark"] + c.labels,
                        [r for r in irows if any(r[2:])]))
    return out


def markdown(c: Comparison, info: bool = False) -> str:
    parts = []
    for title, head, rows in tables(c, info):
        esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
        lines = [f"{title}:", "", "| " + " | ".join(map(esc, head)) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
        parts.append("\n".join(lines))
    parts += [f"- {note}" for note in c.notes]
    return "\n\n".join(parts)


def text(c: Comparison, info: bool = False) -> str:
    parts = []
    for title, head, rows in tables(c, info):
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        def fmt(r, widths=widths):
            return "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()
        parts.append("\n".join([title + ":", fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]))
    parts += [f"note: {note}" for note in c.notes]
    return "\n\n".join(parts)


def machines(results: list, labels: list) -> str:
    """One line per result: tag, CPU, cores, memory, OS, versions, build flags."""
    lines = []
    for lab, r in zip(labels, results):
        m = r["machine"]
        v = m.get("versions", {})
        blas = ", ".join(f"{b.get('internal_api') or b.get('name')} {b.get('version')}" for b in m.get("blas", [])
                         if b.get("user_api") == "blas")
        lines.append(f"{lab}: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB, {m.get('os')}, "
                     f"{m.get('python')}, numpy {m.get('numpy')} ({blas or 'BLAS unknown'}), highspy {v.get('highspy')}, "
                     f"emlpress {v.get('emlpress')} [{m.get('build', {}).get('flags')}], suite {r['suite_version']}"
                     f"{', quick' if r.get('quick') else ''}, {r.get('created', '')[:16]}, {r.get('wall_s')} s")
    return "\n".join(lines)


def plot(c: Comparison, path) -> Path:
    """A PNG of the time table (median bars, min-max whiskers, log scale; one bar per result,
    hatched where not comparable) and of the peer ratios."""
    import matplotlib  # heavy, and only --plot needs it; the Agg backend before pyplot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    n = len(c.labels)
    rows = c.rows
    npeer = len(c.peers)
    fig_h = 1.2 + 0.28 * (len(rows) * max(1, n) * 0.5 + 2) + (0.28 * npeer * max(1, n) * 0.5 + 1.5 if npeer else 0)
    fig, axes = plt.subplots(2 if npeer else 1, 1, figsize=(11, min(max(fig_h, 4), 200)), squeeze=False,
                             gridspec_kw={"height_ratios": [max(len(rows), 1), max(npeer, 1)] if npeer else [1]})
    ax = axes[0][0]
    height = 0.8 / max(n, 1)
    y = np.arange(len(rows))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, lab in enumerate(c.labels):
        med, lo, hi, ys, hatch = [], [], [], [], []
        for i, (_, name, _) in enumerate(rows):
            t = c.times.get((name, k))
            if t is None:
                continue
            med.append(t[0])
            lo.append(t[0] - t[1])
            hi.append(t[2] - t[0])
            ys.append(i + (k - (n - 1) / 2) * height)
            hatch.append(isinstance(c.ratios.get((name, k)), str))
        bars = ax.barh(ys, med, height=height, xerr=[lo, hi], color=colors[k % len(colors)], label=lab,
                       error_kw={"elinewidth": 0.8, "capsize": 1.5})
        for b, h in zip(bars, hatch):
            if h:
                b.set_hatch("//")
                b.set_alpha(0.5)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{g}: {impl or name.split('::', 1)[1]}"[:70] for g, name, impl in rows], fontsize=6)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("seconds (median; whiskers min-max; hatched: not comparable with the first)")
    ax.legend(fontsize=7, loc="lower right")
    if npeer:
        ax2 = axes[1][0]
        for k, lab in enumerate(c.labels):
            ys, vals = [], []
            for i, (_, _, _, cells) in enumerate(c.peers):
                v = cells.get(k)
                if isinstance(v, tuple):
                    ys.append(i + (k - (n - 1) / 2) * height)
                    vals.append(v[0])
            ax2.barh(ys, vals, height=height, color=colors[k % len(colors)], label=lab)
        ax2.set_yticks(np.arange(npeer))
        ax2.set_yticklabels([f"{g}: {p} / {e}"[:70] for g, e, p, _ in c.peers], fontsize=6)
        ax2.invert_yaxis()
        ax2.set_xscale("log")
        ax2.axvline(1.0, color="k", lw=0.6)
        ax2.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax2.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax2.set_xlabel("peer time / emlpress time (same run)")
    fig.tight_layout()
    path = Path(path)
    save_figure_atomic(fig, path, dpi=110)
    plt.close(fig)
    return path
