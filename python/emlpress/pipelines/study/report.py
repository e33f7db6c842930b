"""The study's summary (:func:`summarize`): the models' and layers' tables, the study's own
network beside its published compression (:func:`reference_table`), ``summary.md``, the plots,
and what ``emlpress study run`` prints."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from emlpress._atomic import save_figure_atomic, write_csv_atomic, write_text_atomic
from emlpress.pipelines.study.settings import (METHODS, OPTIMIZERS, PUBLISHED, REGULARIZATIONS,
                                               TINY_WEIGHTS, params_of)


def _rows(results: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    models, layers = [], []
    for key, r in results.items():
        base = {k: r.get(k) for k in ("model", "optimizer", "regularization", "seed",
                                      "test_mse", "test_rmse", "test_r2", "train_s", "epochs",
                                      "params")}
        base["model"] = key
        if not r.get("methods"):  # diverged: not bounded, but not left out either
            models.append(dict(base, method="(not bounded)", note=r.get("note")))
        for m, v in r.get("methods", {}).items():
            row = dict(base, method=m)
            for k in ("bounds_s", "compress_s", "verify_s", "neurons_removed", "params_after",
                      "layers_after", "rel_diff"):
                row[k] = v[k]
            for rule in ("removed_inactive", "removed_zero_weight", "folded_dependent",
                         "removed_merged"):
                row[rule] = int(sum(v[rule]))
            row["stable"] = int(sum(v["stably_active"]) + sum(v["stably_inactive"]))
            row["unresolved"] = int(sum(v["unresolved"]))
            row["task_s"] = r.get("_task", {}).get("seconds")
            models.append(row)
            for l in range(len(v["units_after"])):
                layers.append({"model": key, "optimizer": r.get("optimizer"),
                               "regularization": r.get("regularization"), "seed": r.get("seed"),
                               "method": m, "layer": l, "units": r["sizes"][l + 1],
                               "stably_active": v["stably_active"][l],
                               "stably_inactive": v["stably_inactive"][l],
                               "unresolved": v["unresolved"][l],
                               "removed_inactive": v["removed_inactive"][l],
                               "removed_zero_weight": v["removed_zero_weight"][l],
                               "folded_dependent": v["folded_dependent"][l],
                               "removed_merged": v["removed_merged"][l],
                               "units_after": v["units_after"][l]})
    return pd.DataFrame(models), pd.DataFrame(layers)


def reference_table(r: dict) -> tuple[pd.DataFrame, list[str]]:
    """Per layer and rule: the study's published compression of its network beside emlpress'
    with each method; and the lines that explain the differences (from measured figures)."""
    pub = PUBLISHED
    sizes = r["sizes"]
    hidden = len(sizes) - 2
    rows = []
    for l in range(hidden):
        row = {"layer": l + 1, "study: inactive": pub["removed_inactive"][l],
               "study: zero-weight": pub["removed_zero_weight"][l],
               "study: dependent": pub["folded_dependent"][l]}
        for m, v in r["methods"].items():
            row[f"{m}: inactive"] = v["removed_inactive"][l]
            row[f"{m}: zero-weight"] = v["removed_zero_weight"][l]
            row[f"{m}: dependent"] = v["folded_dependent"][l]
            row[f"{m}: kept"] = v["units_after"][l]
        rows.append(row)
    tab = pd.DataFrame(rows).set_index("layer")
    tot = {"layer": "neurons removed", "study: inactive": pub["neurons_removed"]}
    par = {"layer": "parameters left", "study: inactive": pub["params_after"]}
    for m, v in r["methods"].items():
        tot[f"{m}: inactive"] = v["neurons_removed"]
        par[f"{m}: inactive"] = v["params_after"]
    tab = pd.concat([tab, pd.DataFrame([tot, par]).set_index("layer")])
    a = r.get("analysis", {})
    kept_pub = [sizes[l + 1] - pub["removed_inactive"][l] - pub["removed_zero_weight"][l]
                - pub["folded_dependent"][l] for l in range(hidden)]
    p_pub = params_of([sizes[0], *kept_pub, sizes[-1]])
    # the layer-1 width that the published parameter count implies, the rest as published
    k_imp = [k for k in range(sizes[1] + 1)
             if params_of([sizes[0], k, *kept_pub[1:], sizes[-1]]) == pub["params_after"]]
    lines, decomposition = [], {}
    v = r["methods"].get("lp")
    if v is not None:
        d = {rule: [e - q for e, q in zip(v[rule], pub[rule])]
             for rule in ("removed_inactive", "removed_zero_weight", "folded_dependent")}
        total = v["neurons_removed"] - pub["neurons_removed"]
        decomposition["neurons"] = {"total": total, **{k: sum(x) for k, x in d.items()}}
        lines.append(
            f"Neurons: emlpress with LP bounds removes {v['neurons_removed']:,}, the study "
            f"{pub['neurons_removed']:,}: {total:+} = inactive {sum(d['removed_inactive']):+} "
            f"(per layer {d['removed_inactive']}) + zero-weight "
            f"{sum(d['removed_zero_weight']):+} ({d['removed_zero_weight']}) + dependent "
            f"{sum(d['folded_dependent']):+} ({d['folded_dependent']}).")
    if "layer0_tiny_tolerances" in a:
        s_sum = pub["removed_inactive"][0] + pub["removed_zero_weight"][0]
        tols = ", ".join(f"{n} at {t:g} ({act} of them active)" for t, n, act in zip(
            a["layer0_tiny_tolerances"], a["layer0_tiny_not_inactive"], a["layer0_tiny_active"]))
        lines.append(
            f"Layer 1, inactive and zero-weight: its bounds are exact (one affine layer over the "
            f"box, outward-rounded): {a['layer0_inactive']} units are provably inactive, "
            f"{a['layer0_exact_zero_rows_inactive']} of them with exactly zero weights, which "
            "emlpress counts as zero-weight. The study calls "
            f"{pub['removed_inactive'][0]} inactive and {pub['removed_zero_weight'][0]} "
            f"zero-weight: {s_sum} units, {s_sum - a['layer0_inactive']} more than are "
            "inactive. Units that are not inactive but have every weight at most t in "
            f"magnitude: {tols}; a zero-weight rule with a tolerance removes such units, which "
            f"is not exact (at t = {TINY_WEIGHTS[1]:g} they reach "
            f"{a['layer0_tiny_max_upper']:.2g} in the box, moving a layer-2 pre-activation by "
            f"up to {a['layer0_tiny_max_output_effect']:.2g}), so emlpress keeps them (the "
            "active ones it folds as dependent). The published figures do not say which "
            f"tolerance, nor which of the {a['layer0_inactive']} inactive units the study "
            "counted as zero-weight rather than inactive.")
        lines.append(
            f"Layer 1, linearly dependent: the {a['layer0_active']} stably active rows have "
            f"rank {a['layer0_rank_active_weights']} on the weights and "
            f"{a['layer0_rank_active_weights_bias']} with the bias: emlpress folds the bias "
            "differences into the next layer's biases exactly and keeps "
            f"{a['layer0_rank_active_weights']} rows, a test on [w, b] keeps "
            f"{a['layer0_rank_active_weights_bias']}: one fold less.")
    if "inactive_upper_within_1e-7" in a and v is not None:
        w7 = a["inactive_upper_within_1e-7"]
        lines.append(
            f"Inactive, layers 2-{hidden}: emlpress proves {v['removed_inactive'][1:]} "
            f"(certified LP bounds), the study {pub['removed_inactive'][1:]}. Units whose "
            f"certified upper bound lies in [-1e-7, 0], per layer (from 1): {w7}: an LP "
            "solver's feasibility tolerance (about 1e-7) decides those, so bounds taken at the "
            "solver's word can call fewer units inactive.")
    lines.append(
        f"Parameters: a network with the published neuron counts (kept {kept_pub}) has "
        f"{p_pub:,} parameters, not {pub['params_after']:,}; with layers 2-{hidden} as "
        "published, the published parameter count is that of layer 1 keeping "
        + (f"{k_imp[0]} units" if k_imp else "no whole number of units")
        + ": the two published figures are not of one network.")
    if v is not None and k_imp:
        # from the network the published parameter count describes to emlpress' (LP), one
        # layer at a time: the steps sum to the whole difference
        widths = [k_imp[0], *kept_pub[1:]]
        steps = []
        for l, k in enumerate(v["units_after"]):
            if k != widths[l]:
                before = params_of([sizes[0], *widths, sizes[-1]])
                old, widths[l] = widths[l], k
                steps.append((l + 1, old, k, params_of([sizes[0], *widths, sizes[-1]]) - before))
        decomposition["params"] = {"total": v["params_after"] - pub["params_after"],
                                   "steps": steps}
        lines.append(
            f"Against that network, emlpress (LP) keeps {v['units_after']}: "
            f"{v['params_after'] - pub['params_after']:+,} parameters = "
            + " + ".join(f"layer {l}: {o} -> {k} units ({dp:+,})" for l, o, k, dp in steps)
            + ".")
    if "exact" in r["methods"] and v is not None:
        e = r["methods"]["exact"]
        lines.append(
            f"Exact stable sets (bounds.stability, {sum(e['unresolved'])} units unresolved): "
            f"{e['neurons_removed']:,} units removed, {e['params_after']:,} parameters left: "
            f"{e['neurons_removed'] - v['neurons_removed']:+,} units and "
            f"{e['params_after'] - v['params_after']:+,} parameters against LP "
            f"(kept {e['units_after']} vs {v['units_after']}).")
    tab.attrs["decomposition"] = decomposition
    return tab, lines


def summarize(folder, results: dict) -> dict:
    """Rebuild the run folder's tables, plots and ``summary.md`` from the task results."""
    folder = Path(folder)
    ref = results.get("reference")
    grid = {k: v for k, v in results.items() if k != "reference"}
    models, layers = _rows(grid)
    out = {"models": models, "layers": layers, "notes": []}
    if "method" in models and (models["method"] == "(not bounded)").any():
        bad = models.loc[models["method"] == "(not bounded)", "model"].tolist()
        out["notes"].append(f"{len(bad)} models diverged in training (non-finite outputs) and "
                            f"were not bounded: {', '.join(bad)}")
        models = models[models["method"] != "(not bounded)"]
    write_csv_atomic(folder / "models.csv", models)
    write_csv_atomic(folder / "layers.csv", layers)
    md = ["# Lossless-compression study", ""]
    if not models.empty:
        removed = models.pivot_table(index=["optimizer", "regularization"], columns="method",
                                     values="neurons_removed", aggfunc="mean")
        params = models.pivot_table(index=["optimizer", "regularization"], columns="method",
                                    values="params_after", aggfunc="mean")
        fit = models.groupby(["optimizer", "regularization"])[["test_rmse", "test_r2"]].mean()
        table = removed.add_prefix("removed: ").join(params.add_prefix("params: "))
        table["test RMSE"], table["test R2"] = fit["test_rmse"], fit["test_r2"]
        out["table"] = table
        md += ["Neurons removed and parameters left per model (mean over seeds) and method; "
               "test RMSE in the function's units.", "", table.to_markdown(floatfmt=".3g"), ""]
        poor = fit[fit["test_r2"] < 0.9]
        if len(poor):
            sel = models.set_index(["optimizer", "regularization"]).index.isin(poor.index)
            best = next(m for m in reversed(METHODS) if m in set(models["method"]))
            ex = models[sel & (models["method"] == best)]
            units = layers[layers["method"] == best].groupby("model")["units"].sum()
            dead = float((ex["removed_inactive"] / ex["model"].map(units)).mean())
            out["notes"].append(
                f"{len(poor)} of {len(fit)} settings fit the function poorly (test R2 < 0.9: "
                f"{', '.join(f'{o} {r}' for o, r in poor.index)}): with "
                f"{ex['method'].iloc[0]} bounds {dead:.0%} of their hidden units are stably "
                "inactive on average, so they compress well because they learnt little.")
        md += [f"Note: {n}" for n in out["notes"]] + ([""] if out["notes"] else [])
        by_m = models.groupby("method")[["neurons_removed", "params_after", "stable",
                                         "bounds_s", "compress_s", "task_s"]].mean()
        out["by_method"] = by_m
        md += ["Mean over models, by method (seconds per model):", "",
               by_m.to_markdown(floatfmt=".3g"), ""]
    if ref is not None:
        tab, lines = reference_table(ref)
        out["reference"], out["reference_notes"] = tab, lines
        write_csv_atomic(folder / "reference.csv", tab, index=True)
        md += ["## The study's own network (seed_gp)", "", tab.to_markdown(floatfmt=".0f"), ""]
        md += [f"- {x}" for x in lines] + [""]
    out["plots"] = _plots(folder, models, layers)
    write_text_atomic(folder / "summary.md", "\n".join(md))
    return out


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt  # slow to import: only when a run draws its plots

    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)
    plt.close(fig)
    return path


def _plots(folder: Path, models: pd.DataFrame, layers: pd.DataFrame) -> list[Path]:
    if models.empty:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    methods = [m for m in METHODS if m in set(models["method"])]
    colors = dict(zip(METHODS, ["#bbbbbb", "#7fa7d9", "#2c6fbb", "#d95f02"]))
    opts = [o for o in OPTIMIZERS if o in set(models["optimizer"])]
    regs = [r for r in REGULARIZATIONS if r in set(models["regularization"])]
    mean = models.groupby(["optimizer", "regularization", "method"])["neurons_removed"].mean()
    fig, axes = plt.subplots(len(opts), 1, figsize=(max(6, 0.75 * len(regs) + 2),
                                                   2.6 * len(opts)), squeeze=False, sharey=True)
    width = 0.8 / len(methods)
    first = layers[(layers["model"] == layers["model"].iloc[0])
                   & (layers["method"] == layers["method"].iloc[0])]
    total = int(first["units"].sum())
    for ax, o in zip(axes[:, 0], opts):
        x = np.arange(len(regs))
        for i, m in enumerate(methods):
            y = [mean.get((o, r, m), np.nan) for r in regs]
            ax.bar(x + (i - (len(methods) - 1) / 2) * width, y, width, label=m, color=colors[m])
        ax.set_xticks(x, regs, rotation=30, ha="right", fontsize=8)
        ax.set_title(o, fontsize=10, loc="left")
        ax.set_ylabel(f"neurons removed\n(of {total})", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(ncol=len(methods), fontsize=8, loc="upper left")
    seeds = int(models.groupby(["optimizer", "regularization", "method"]).size().max())
    fig.suptitle("Neurons removed by lossless compression, by bound method"
                 + (f" (mean over {seeds} seeds)" if seeds > 1 else ""))
    paths.append(_save(fig, folder / "removed_by_method.png"))

    rules = ["removed_inactive", "removed_zero_weight", "folded_dependent", "removed_merged"]
    rule_colors = ["#1b9e77", "#e6ab02", "#7570b3", "#e7298a"]
    lay = layers.groupby(["method", "layer"])[rules + ["units"]].mean()
    n_layers = int(layers["layer"].max()) + 1
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3.4), sharey=True,
                             squeeze=False)
    for ax, m in zip(axes[0], methods):
        bottom = np.zeros(n_layers)
        for rule, c in zip(rules, rule_colors):
            y = np.array([lay.loc[(m, l), rule] if (m, l) in lay.index else 0
                          for l in range(n_layers)])
            ax.bar(np.arange(n_layers) + 1, y, bottom=bottom, color=c,
                   label=rule.replace("removed_", "").replace("_", " "))
            bottom += y
        units = [lay.loc[(m, l), "units"] for l in range(n_layers) if (m, l) in lay.index]
        ax.plot(np.arange(len(units)) + 1, units, "k_", markersize=18, label="units")
        ax.set_title(m, fontsize=10)
        ax.set_xlabel("hidden layer")
        ax.set_xticks(np.arange(n_layers) + 1)
    axes[0, 0].set_ylabel("units removed (mean over models)")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle("Removal by layer and rule")
    paths.append(_save(fig, folder / "removed_by_layer.png"))

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    markers = dict(zip(METHODS, ["o", "s", "^", "D"]))
    ocolors = dict(zip(OPTIMIZERS, ["#1b9e77", "#d95f02", "#7570b3", "#e7298a"]))
    for m in methods:
        for o in opts:
            d = models[(models["method"] == m) & (models["optimizer"] == o)]
            ax.scatter(d["params_after"], d["test_rmse"], marker=markers[m], color=ocolors[o],
                       alpha=0.75, s=22)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", color=ocolors[o], label=o) for o in opts]
    handles += [Line2D([], [], ls="", marker=markers[m], color="0.4", label=m) for m in methods]
    ax.legend(handles=handles, fontsize=7, ncol=2, title="colour: optimizer, marker: method",
              title_fontsize=7)
    ax.set_xlabel("parameters left after lossless compression")
    ax.set_ylabel("test RMSE")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.set_title("Test loss against parameters left")
    paths.append(_save(fig, folder / "loss_vs_params.png"))
    return paths



def print_start(cfg, folder: Path, searched: bool) -> None:
    """The line ``emlpress study run`` starts with: the grid, the methods, the reference
    network (``searched``: it was looked for, not declined) and the run folder."""
    n = len(cfg.optimizers) * len(cfg.regularizations) * cfg.seeds
    print(f"lossless study, preset {cfg.preset}: {n} models {[2, *cfg.hidden, 1]} x methods "
          f"{', '.join(cfg.methods)}" + ("" if cfg.reference else
                                        "; no reference network" + (
                                            "" if not searched else
                                            " (the study's seed_gp not found: --reference PATH)"))
          + f"; run folder {folder}")


def print_summary(res, folder: Path) -> None:
    """What ``emlpress study run`` prints at the end of a run (``res``: its
    :class:`~emlpress.pipelines.runner.BatteryResult`): the tables of :func:`summarize`, the
    tasks run, skipped and failed (failures on stderr) and the run folder."""
    out = res.summary or {}
    with pd.option_context("display.width", 250, "display.max_columns", 40,
                           "display.float_format", "{:.4g}".format):
        if "table" in out:
            print(out["table"].to_string())
            for note in out.get("notes", []):
                print(f"note: {note}")
            print("\nmean over models, by method (seconds per model):")
            print(out["by_method"].to_string())
        if "reference" in out:
            print("\nthe study's own network (seed_gp): study (published) beside emlpress")
            print(out["reference"].to_string())
            for line in out["reference_notes"]:
                print(f"- {line}")
    print(f"\ntasks: {len(res.ran)} run now, {len(res.skipped)} already finished, "
          f"{len(res.failed)} failed ({res.seconds:.0f} s)")
    for key, err in res.failed.items():
        last = err.strip().splitlines()[-1] if err.strip() else err
        print(f"  failed: {key}: {last} (details: {folder}/tasks/{key}.error)", file=sys.stderr)
    print(f"run folder: {folder} (summary.md, models.csv, layers.csv, reference.csv, "
          "removed_by_method.png, removed_by_layer.png, loss_vs_params.png, tasks/, models/)")
