"""NPI planning with a learned one-week SIR model chained over the horizon (the study's first
pipeline): :func:`plan` (the planning MILP) and :func:`run` (``emlpress epidemics run``: train
the models, evaluate them, plan every horizon, simulate every plan with the reference SIR,
compare with the brute force or the best known plan; run folder with ``run.summary.csv``,
JSON logs, models and plots). Variants: the trained network, its TMOT-pruned fine-tuning and
its int8 model (embedded exactly, predictions by the reference interpreter); the six PTQ
modes' table per network; a decision tree.

The MILP, per week ``w``: five NPI binaries, a one-hot choice among the 32 combinations they
make (linked row by row, so the week's ``beta`` is exactly ``sum_k beta_k c_wk``: no
relaxation of the product of effects), the model (a network by ``add_network``, an int8 one
by ``add_quantized_network``, or a tree by ``add_tree``) from the week's state and ``beta``
to the next state, whose output variables are the next week's inputs; the budget over the
horizon; the objective: the largest S after the last week. How each week's network is
bounded is ``BOUNDING``'s choice: on the previous week's output box (chained, optionally
losslessly compressed there), on what the schedules can feed it (reachable: the default of
the run), or on the training box (single-box, the naive way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emlpress._atomic import (save_figure_atomic, write_atomic, write_bytes_atomic,
                              write_csv_atomic, write_json_atomic, write_text_atomic)
from emlpress.bounds.relaxation import MagnitudeError

from emlpress.data import sir
from emlpress.network import Network

__all__ = ["Plan", "plan", "Config", "run", "load_config", "TOPOLOGIES", "NotApplicable"]


class NotApplicable(ValueError):
    """A bounding that cannot apply to this instance (single-box: a week's inputs leave the
    training box); the run records it as such, and only it."""


@dataclass
class Plan:
    """A solved planning MILP: ``schedule`` (combination index per week), ``npis`` (0/1 per
    week and NPI), the model's predicted trajectory, the true (simulated) one, and the
    solver's result."""

    status: str
    schedule: np.ndarray | None
    npis: np.ndarray | None
    predicted: np.ndarray | None  # (weeks + 1, 3)
    simulated: np.ndarray | None  # by the reference integrator
    cost: float | None
    solution: object
    handles: list = field(default_factory=list)
    message: str = ""
    #: per week: units removed by lossless compression (chained+lossless), or (reachable)
    #: units stable at every reachable input or box (no binary, inactive ones no variable)
    removed: list = field(default_factory=list)
    #: the start (networks): (schedule, the network's predicted S, whether the search was
    #: exhaustive, i.e. that S is the network's own optimum)
    search: tuple | None = None

    @property
    def predicted_s(self) -> float:
        return float(self.predicted[-1, 0]) if self.predicted is not None else float("nan")

    @property
    def simulated_s(self) -> float:
        return float(self.simulated[-1, 0]) if self.simulated is not None else float("nan")


def _add_model(h, model, inputs, name):
    from emlpress.milp import add_predictor

    return add_predictor(h, model, inputs, name=name)


#: how a network's weeks are bounded: "chained" (each week's box is the previous week's output
#: bounds: CROWN there), "chained+lossless" (and each week's network losslessly compressed on
#: its box, with LP bounds), "reachable" (each week's network bounded on what the schedules
#: within the budget can feed it: every input while they are at most ``REACH_MAX``, then
#: ``REACH_BOXES`` small boxes that cover them; see :class:`_Reach`), "single-box" (every
#: week bounded once on the training box [0,1]^3 x [0, 0.4], the week's inputs restricted
#: to it)
BOUNDING = ("chained", "chained+lossless", "reachable", "single-box")
TRAINING_BOX = (np.zeros(4), np.array([1.0, 1.0, 1.0, 0.4]))
#: the "reachable" bounding enumerates a week's inputs while they are at most this many
#: (the 10-week instance, budget 66.7: 5 weeks, 24^5 = 8.0 million inputs in the fifth)
REACH_MAX = 10_000_000
#: then it covers the week's states by boxes (k-d splits of the enumerated states, later of
#: the boxes' centres): REACH_BOXES for networks of up to 32 units, fewer for larger ones
#: (CROWN's cost grows with the units; at least 256)
REACH_BOXES = 4096


def _n_boxes(net) -> int:
    return max(256, min(REACH_BOXES, REACH_BOXES * 32 // max(1, net.n_neurons)))


def _kd_groups(C: np.ndarray, k: int) -> list:
    """Index groups of the rows of ``C``: every group split in two at the median of its widest
    coordinate, level by level, until there are at least ``k`` groups (or the groups are
    single rows)."""
    groups = [np.arange(C.shape[0])]
    while len(groups) < k and max(g.size for g in groups) > 1:
        nxt = []
        for g in groups:
            if g.size < 2:
                nxt.append(g)
                continue
            sub = C[g]
            d = int(np.argmax(sub.max(0) - sub.min(0)))
            half = g.size // 2
            part = np.argpartition(sub[:, d], half)
            nxt += [g[part[:half]], g[part[half:]]]
        groups = nxt
    return groups


class _Reach:
    """What the schedules within the budget can feed each week's network: every input, by
    forward passes of the network over every such prefix (a combination with the beta of a
    cheaper one gives the same states and is skipped), while they are at most ``REACH_MAX``;
    afterwards boxes that cover the states (``REACH_BOXES`` of them), each with the least
    spend of its states, propagated by CROWN one beta at a time. ``bounds()`` gives the
    week's bounds there (:func:`bounds.on_points`, :func:`bounds.on_boxes`)."""

    def __init__(self, instance: sir.Instance, net):
        self.keep, self.beta, self.cost = sir.distinct_combinations(instance)
        self.budget = instance.budget
        self.net = net
        self.states, self.spent = instance.state[None, :], np.zeros(1)
        self._children()

    def _children(self) -> None:
        self.X = None
        if self.states is not None:
            p, c = sir.affordable(self.spent, self.cost, self.budget)
            if p.size <= REACH_MAX:
                self.X = np.column_stack([self.states[p], self.beta[c]])
                self._p, self._c = p, c
                return
            self._boxes(self.states, self.states, self.spent)
            self.states = None
        p, c = sir.affordable(self.spent, self.cost, self.budget)
        self.LO = np.column_stack([self.slo[p], self.beta[c]])
        self.HI = np.column_stack([self.shi[p], self.beta[c]])
        self._p, self._c = p, c

    def _boxes(self, lo, hi, spent) -> None:
        """Cover the boxes [lo, hi] (rows) by REACH_BOXES hulls of groups of them."""
        groups = _kd_groups((lo + hi) / 2, _n_boxes(self.net))
        self.slo = np.array([lo[g].min(0) for g in groups])
        self.shi = np.array([hi[g].max(0) for g in groups])
        self.spent = np.array([spent[g].min() for g in groups])

    def bounds(self):
        from emlpress import bounds as _bounds

        if self.X is not None:
            return _bounds.on_points(self.net, self.X)
        return _bounds.on_boxes(self.net, self.LO, self.HI)

    def advance(self, b) -> None:
        """To the next week, from this week's bounds ``b`` (those of :meth:`bounds`)."""
        spent = self.spent[self._p] + self.cost[self._c]
        if self.X is not None:
            self.states, self.spent = self.net.forward(self.X), spent
        else:
            self._boxes(b.part_output[0], b.part_output[1], spent)
        self._children()


#: the beam of :func:`surrogate_search` (and the most prefixes a week may have for it to be an
#: enumeration) for networks of up to 32 units; fewer for larger ones (at least 20,000)
SEARCH_WIDTH = 200_000


def surrogate_search(instance: sir.Instance, net, width: int | None = None):
    """The best schedule for the network (largest predicted S after the last week): every
    schedule within the budget where no week has more than ``width`` prefixes (the network's
    own optimum, by enumeration); else a beam search that keeps, at each spend, the prefixes
    with the largest predicted S (``width`` in all; default SEARCH_WIDTH, scaled down for
    networks of more than 32 units), then a local search through the network
    (:func:`sir.local_search`). Returns (schedule, predicted S, exhaustive)."""
    if width is None:
        width = max(20_000, min(SEARCH_WIDTH, SEARCH_WIDTH * 32 // max(1, net.n_neurons)))
    keep, beta, cost = sir.distinct_combinations(instance)
    states, spent = instance.state[None, :], np.zeros(1)
    prefix = np.zeros((1, 0), np.int64)
    exhaustive = True
    for w in range(instance.weeks):
        p, c = sir.affordable(spent, cost, instance.budget)
        states = net.forward(np.column_stack([states[p], beta[c]]))
        spent, prefix = spent[p] + cost[c], np.column_stack([prefix[p], c])
        if states.shape[0] > width and w < instance.weeks - 1:  # the last week: every leaf
            exhaustive = False
            levels, inv = np.unique(np.round(spent, 9), return_inverse=True)
            per = max(1, width // levels.size)
            order = np.lexsort((-states[:, 0], inv))  # by spend, then by S, largest first
            rank = np.arange(order.size) - np.searchsorted(inv[order], inv[order])
            top = order[rank < per]
            states, spent, prefix = states[top], spent[top], prefix[top]
    k = int(np.argmax(states[:, 0]))
    sched, s = keep[prefix[k]], float(states[k, 0])
    if not exhaustive:
        sched, s, _ = sir.local_search(instance, sched, step=net.forward)
    return sched, s, exhaustive


def _add_week(h, model, inputs, name, bounding, cache):
    """One week's model; networks bounded as ``bounding`` says."""
    from emlpress import bounds as _bounds
    from emlpress.compress import lossless
    from emlpress.milp import add_network

    if not isinstance(model, Network) or bounding == "chained":
        return _add_model(h, model, inputs, name)
    if bounding == "single-box":
        lo, hi = TRAINING_BOX
        cols = np.array([v.index for v in inputs], np.int32)
        _, _, _, clo, chi, _ = h.getCols(4, cols)
        nlo, nhi = np.maximum(clo, lo), np.minimum(chi, hi)
        if np.any(nlo > nhi):
            k = int(np.argmax(nlo > nhi))
            raise NotApplicable(f"{name}: input {k} ranges over [{clo[k]}, {chi[k]}], outside the "
                             f"training box [{lo[k]}, {hi[k]}]: single-box bounding cannot apply")
        h.changeColsBounds(4, cols, nlo, nhi)
        if "single" not in cache:
            cache["single"] = _bounds.crown(model, lo, hi)
        return add_network(h, model, inputs, bounds=cache["single"], name=name)
    cols = np.array([v.index for v in inputs], np.int32)
    if bounding == "reachable":  # the columns in the hull of what is reachable, bounds there
        from emlpress.milp import tighten_tolerances

        # bounds at points: a one-hot or budget row off by HiGHS' default tolerances (1e-6,
        # 1e-7) would move beta or the spend past the margins the points are widened by
        tighten_tolerances(h, 1e-9)
        reach = cache.setdefault("reach", _Reach(cache["instance"], model))
        b = reach.bounds()
        if cache.setdefault("week", 0) < cache["instance"].weeks - 1:  # not after the last
            reach.advance(b)
        cache["week"] += 1
        _, _, _, clo, chi, _ = h.getCols(4, cols)
        h.changeColsBounds(4, cols, np.maximum(clo, b.lo), np.minimum(chi, b.hi))
        cache.setdefault("removed", []).append(b.n_stable)
        return add_network(h, model, inputs, bounds=b, name=name)
    _, _, _, clo, chi, _ = h.getCols(4, cols)
    small, rep = lossless(model, np.asarray(clo, float), np.asarray(chi, float), bounds="lp")
    cache.setdefault("removed", []).append(model.n_neurons - small.n_neurons)
    return add_network(h, small, inputs, bounds=rep.bounds, name=name)


def plan(instance: sir.Instance, model, time_limit: float | None = 60.0, mip_gap: float = 1e-4,
         constraints=None, simulate: bool = True, bounding: str = "chained",
         start: bool = True) -> Plan:
    """Solve the planning MILP of ``instance`` with ``model`` (inputs S, I, R, beta; outputs
    the state a week later). ``constraints(h, weeks)``, if given, adds a user's rows
    (``weeks[w]`` holds the week's ``npis`` variables and ``state`` variables); an
    infeasible problem returns status ``INFEASIBLE`` and a message, never a plan.
    ``bounding``: one of ``BOUNDING`` (networks only). With ``start`` (networks only), HiGHS
    starts from the schedule of :func:`surrogate_search` (the network's own optimum where
    that search is exhaustive), its variables set by forward passes."""
    import highspy

    if bounding not in BOUNDING:
        raise ValueError(f"unknown bounding {bounding!r}: one of {BOUNDING}")
    cache: dict = {"instance": instance}

    from emlpress import _highs
    from emlpress.milp import solve

    choices, beta, cost = sir.combinations(instance.npis, instance.beta0)
    n_c, n_npi = choices.shape
    h = _highs.highs()
    s0 = instance.state
    state = h.addVariables(3, lb=s0.tolist(), ub=s0.tolist())
    weeks, handles = [], []
    npi_cost = [c for _, c in instance.npis.values()]
    spend = []
    for w in range(instance.weeks):
        a = h.addVariables(n_npi, lb=0.0, ub=1.0, type=highspy.HighsVarType.kInteger)
        c = h.addVariables(n_c, lb=0.0, ub=1.0, type=highspy.HighsVarType.kInteger)
        b = h.addVariable(lb=float(beta.min()), ub=float(beta.max()))
        h.addConstr(sum(c[k] for k in range(n_c)) == 1)
        for j in range(n_npi):
            h.addConstr(a[j] - sum(c[k] for k in range(n_c) if choices[k, j]) == 0)
        h.addConstr(b - sum(float(beta[k]) * c[k] for k in range(n_c)) == 0)
        inputs = [state[0], state[1], state[2], b]
        hd = _add_week(h, model, inputs, f"week{w}", bounding, cache)
        handles.append(hd)
        weeks.append({"npis": a, "combination": c, "beta": b, "state_in": inputs[:3]})
        spend.append(sum(float(npi_cost[j]) * a[j] for j in range(n_npi)))
        out = hd.outputs
        state = [out[0], out[1], out[2]]
        weeks[-1]["state"] = state
    h.addConstr(sum(spend) <= float(instance.budget))
    if constraints is not None:
        constraints(h, weeks)
    h.setObjective(state[0], sense=highspy.ObjSense.kMaximize)
    found = None
    if start and isinstance(model, Network):
        found = surrogate_search(instance, model)
        _set_start(h, weeks, handles, found[0], choices, beta, s0)
    sol = solve(h, time_limit=time_limit, mip_gap=mip_gap)
    if not sol.has_solution:
        msg = {"INFEASIBLE": "no schedule satisfies the budget and the constraints given"}.get(
            sol.status, f"no plan found ({sol.status})")
        return Plan(sol.status, None, None, None, None, None, sol, handles, msg,
                    removed=cache.get("removed", []), search=found)
    x = np.asarray(sol.col_values)
    sched = np.array([int(np.argmax([x[v.index] for v in wk["combination"]])) for wk in weeks])
    npis = choices[sched]
    pred = [s0] + [np.array([x[v.index] for v in wk["state"]]) for wk in weeks]
    sim = sir.simulate(instance, sched, reference=True) if simulate else None
    return Plan(sol.status, sched, npis, np.array(pred), sim, float(cost[sched].sum()), sol, handles,
                removed=cache.get("removed", []), search=found)


def _set_start(h, weeks, handles, schedule, choices, beta, s0) -> None:
    """A MIP start: the schedule's NPI and combination variables, and each week's network
    variables by a forward pass from the state the previous week's network gives."""
    start = {}
    x = np.asarray(s0, float)
    for wk, hd, k in zip(weeks, handles, schedule):
        start.update({v.index: float(val) for v, val in zip(wk["npis"], choices[k])})
        start.update({v.index: float(j == k) for j, v in enumerate(wk["combination"])})
        start.update(zip(*(a.tolist() for a in hd.start_values(np.append(x, beta[k])))))
        x = np.array([start[int(c)] for c in hd.output_cols])  # the next week's input
    h.setSolution(len(start), np.fromiter(start, np.int32), np.fromiter(start.values(), float))


# ---------------------------------------------------------------------------------------------
# the pipeline: train, evaluate, plan, simulate, compare with the brute force

#: hidden layer widths per topology name ("linear": no hidden layer)
TOPOLOGIES = {"linear": [], "8": [8], "8-8-8-8": [8, 8, 8, 8], "16-16": [16, 16],
              "16x16": [16] * 16, "64x8": [64] * 8}
VARIANTS = ("baseline", "pruned", "int8")
#: the brute force runs where it simulates at most this many weeks (6 weeks of the course
#: instance: 1.5e8, about 2 minutes on 2 cores)
BRUTE_FORCE_MAX = 200_000_000


@dataclass
class Config:
    topologies: list = field(default_factory=lambda: ["linear", "8", "8-8-8-8", "16-16"])
    tree: bool = True
    tree_depth: int | None = 10
    epochs: int = 100
    batch_size: int = 32
    patience: int = 10
    validation: float = 0.2
    learning_rate: float = 1e-3
    seed: int = 0
    n_train: int = 10_000
    n_test: int = 2_000
    horizons: list = field(default_factory=lambda: [3])
    variants: list = field(default_factory=lambda: ["baseline", "pruned", "int8"])
    initial_sparsity: float = 0.2     # the study's pruning schedule
    final_sparsity: float = 0.9
    prune_epochs: int = 30
    ptq_table: bool = True            # the six post-training quantizations per network
    #: per float network; the plots show the first bounding's plan
    bounding: list = field(default_factory=lambda: ["reachable", "chained+lossless", "chained",
                                                    "single-box"])
    budget_per_week: float = 20.0 / 3.0  # the course instance: 20 over 3 weeks
    time_limit: float = 60.0
    out: object = "runs"
    progress: bool = True


def _parameters(model) -> dict:
    """The arrays a model is, in the types it computes with: a network's float32 weights
    (Keras trains in float32), an int8 model's int8 weights, int32 biases and scales, a tree's
    nodes."""
    from emlpress.io.tflite import QuantizedNetwork

    if isinstance(model, Network):
        return {f"{k}{l}": a.astype(np.float32) for l, (W, b) in enumerate(zip(model.weights, model.biases))
                for k, a in (("W", W), ("b", b))}
    if isinstance(model, QuantizedNetwork):
        out = {f"{k}{l}": a for l, L in enumerate(model.layers)
               for k, a in (("W", L.W.astype(np.int8)), ("b", L.b.astype(np.int32)))}
        out["scale"] = np.concatenate([L.scale for L in model.layers]).astype(np.float32)
        out["meta"] = np.array([model.s_in, model.z_in] + [v for L in model.layers
                                                            for v in (L.s_out, L.z_out)], np.float32)
        return out
    t = model.tree_
    return {"feature": t.feature, "threshold": t.threshold, "children_left": t.children_left,
            "children_right": t.children_right, "value": t.value}


def _size(model) -> tuple[int, int]:
    """(bytes of the model's parameters as one deflated .npz: the same format for every model,
    bytes of the parameters themselves). On models this small the container's headers (some
    200 bytes an array) can outweigh the parameters."""
    import io

    arrays = _parameters(model)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getbuffer().nbytes, int(sum(a.nbytes for a in arrays.values()))


#: the longest horizon :func:`run` plans: a year of weekly decisions (the MILP holds one
#: model copy and 37 binaries per week; the README's runs go to 10 weeks)
MAX_WEEKS = 52


def check(cfg: Config) -> None:
    """Refuse settings that would fail or give NaN after training (a time limit <= 0, no
    epochs, a horizon beyond ``MAX_WEEKS``), naming the setting; nothing is written."""
    from emlpress import _options

    _options.seconds("time_limit", cfg.time_limit)
    for name in ("epochs", "prune_epochs", "batch_size", "patience", "n_train", "n_test"):
        _options.positive_int(name, getattr(cfg, name))
    for hz in cfg.horizons:
        if isinstance(hz, bool) or not isinstance(hz, (int, np.integer)) or not 1 <= hz <= MAX_WEEKS:
            raise ValueError(f"horizons: {hz!r} weeks; give 1 to {MAX_WEEKS} (the MILP holds a "
                             "model copy per week)")
    if not 0.0 < cfg.validation < 1.0:
        raise ValueError(f"validation = {cfg.validation!r} must lie in (0, 1)")
    from emlpress.train import check_sparsities

    check_sparsities(cfg.initial_sparsity, cfg.final_sparsity)
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {out}: is a file; give the directory the run folders go to")


INCOMPLETE = "INCOMPLETE"
#: the run's settings, written when the folder is made (what ``--resume`` reads and checks)
CONFIG_FILE = "config.json"
#: train_s of every model saved in models/, written before the model file itself
TRAIN_TIMES = Path("training.json")
last_folder: Path | None = None  # the folder of the latest run (the CLI names it on Ctrl-C)
#: settings a resume may change: where new folders go, the progress bars
_FREE = ("out", "progress")


def _config_payload(cfg: Config) -> dict:
    return {"pipeline": "epidemics",
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(cfg).items()}}


def load_config(folder) -> Config:
    """The settings an epidemics run folder was started with (``config.json``), to resume
    it; a folder without them (or with another pipeline's) is refused, naming it."""
    import json

    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such run folder")
    if not path.exists():
        raise ValueError(f"{folder}: not an epidemics run folder (no {CONFIG_FILE})")
    try:
        payload = json.loads(path.read_text())
        if payload.get("pipeline") != "epidemics":
            raise ValueError(f"written by the {payload.get('pipeline')!r} pipeline")
        known = set(Config.__dataclass_fields__)
        return Config(**{k: v for k, v in payload["config"].items() if k in known})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not the settings of an epidemics run ({e})") from None


def differences(cfg: Config, saved: Config) -> dict:
    """The settings in which ``cfg`` differs from ``saved`` (but ``out`` and ``progress``):
    {name: (cfg's value, saved's value)}, compared as their JSON (a tuple equals a list)."""
    import json

    def norm(v):
        return json.loads(json.dumps(v, default=str))

    return {k: (getattr(cfg, k), getattr(saved, k)) for k in Config.__dataclass_fields__
            if k not in _FREE and norm(getattr(cfg, k)) != norm(getattr(saved, k))}


def _model_names(cfg: Config) -> list[str]:
    """The models a run trains, in the order of its summary."""
    names = []
    for t in cfg.topologies:
        names += [n for n, on in ((t, "baseline" in cfg.variants),
                                  (f"{t}+pruned", "pruned" in cfg.variants and TOPOLOGIES[t]),
                                  (f"{t}+int8", "int8" in cfg.variants)) if on]
    return names + (["tree"] if cfg.tree else [])


def _jobs(cfg: Config, hz: int) -> list[tuple[str, str]]:
    """(model, bounding) of every plan row of a horizon, in the summary's order ("-": a model
    that is not a float network)."""
    return [(name, b) for name in _model_names(cfg)
            for b in (cfg.bounding if name != "tree" and "+int8" not in name else ["-"])]


def _log_path(folder: Path, name: str, bounding: str, hz: int) -> Path:
    return folder / "logs" / f"{name}_{bounding.replace('+', '_')}_{hz}w.json"


def _records(folder: Path, cfg: Config) -> dict:
    """The plan rows written so far: their log JSONs (the record of a row; run.summary.csv is
    rebuilt from them), by (model, bounding, weeks)."""
    import json

    out = {}
    for hz in cfg.horizons:
        for name, b in _jobs(cfg, hz):
            path = _log_path(folder, name, b, hz)
            if path.exists():
                try:
                    out[(name, b, hz)] = json.loads(path.read_text())
                except (OSError, ValueError) as e:
                    raise ValueError(f"{path}: not readable ({e}); delete it to plan that row "
                                     "again") from None
    return out


def _summary_rows(cfg: Config, records: dict) -> list[dict]:
    return [records[(n, b, hz)]["row"] for hz in cfg.horizons for n, b in _jobs(cfg, hz)
            if (n, b, hz) in records]


def _first_plans(cfg: Config, records: dict) -> dict:
    """The plotted plan per (model, weeks): the first bounding's with a schedule."""
    plans = {}
    for hz in cfg.horizons:
        for name, b in _jobs(cfg, hz):
            r = records.get((name, b, hz))
            if r and r["row"]["schedule"] and (name, hz) not in plans:
                plans[(name, hz)] = Plan(r["row"]["status"], None, None, np.array(r["predicted"]),
                                         np.array(r["simulated"]), None, None)
    return plans


def _finish(folder: Path, cfg: Config, records: dict):
    """run.summary.csv (from the records, with the best known plans where no brute force
    ran) and the plots."""
    import pandas as pd

    summary = pd.DataFrame(_summary_rows(cfg, records))
    for hz in cfg.horizons:
        if "optimum_S" in summary and summary.loc[summary["weeks"] == hz, "optimum_S"].notna().any():
            continue
        # no brute force: the best known plan, by a local search with the true simulator from
        # every plan's schedule, simulated again by the reference integrator
        inst = sir.Instance(weeks=hz, budget=cfg.budget_per_week * hz)
        at = summary["weeks"] == hz
        starts = {s for s in summary.loc[at, "schedule"] if isinstance(s, str) and s}
        found = [sir.local_search(inst, [int(v) for v in s.split()]) for s in sorted(starts)]
        if found:
            sched = max(found, key=lambda f: f[1])[0]
            best = float(sir.simulate(inst, sched, reference=True)[-1, 0])
            top = summary.loc[at, "simulated_S"].idxmax() if summary.loc[at, "simulated_S"].notna().any() else None
            if top is not None and summary.loc[top, "simulated_S"] > best:  # a plan itself
                best = float(summary.loc[top, "simulated_S"])
                sched = [int(v) for v in summary.loc[top, "schedule"].split()]
            summary.loc[at, "best_known_S"] = best
            summary.loc[at, "best_known_schedule"] = " ".join(map(str, sched))
            summary.loc[at, "best_known_by"] = ("local search (one- and two-week changes, true "
                                                "simulator) from every plan; reference SIR")
            summary.loc[at, "gap_to_best_known"] = (best - summary.loc[at, "simulated_S"]) / best
    write_csv_atomic(folder / "run.summary.csv", summary)
    _plots(folder, summary, _first_plans(cfg, records))
    return summary


def _validate(cfg: Config) -> None:
    for t in cfg.topologies:
        if t not in TOPOLOGIES:
            raise ValueError(f"unknown topology {t!r}: one of {sorted(TOPOLOGIES)}")
    for hz in cfg.horizons:
        sir.Instance(weeks=hz, budget=cfg.budget_per_week * hz)  # checks the values
    for given, known, what in ((cfg.variants, VARIANTS, "variant"), (cfg.bounding, BOUNDING, "bounding")):
        bad = [v for v in given if v not in known]
        if bad:
            raise ValueError(f"unknown {what} {bad[0]!r}: one of {known}")
    check(cfg)
    if cfg.tree:  # before any training: the default run's tree needs scikit-learn
        import sklearn.tree  # noqa: F401


def run(cfg: Config | None = None, resume=None):
    """Train every model, evaluate it, plan every horizon with it, simulate each plan and
    compare with the brute force; returns (run folder, summary DataFrame).

    The run folder (``OUT/epidemics<time>``) holds ``config.json`` (the settings) from the
    start and, while the run is under way, ``INCOMPLETE`` (what is written, and the resume
    command). ``resume=FOLDER`` continues a stopped run: ``cfg`` may be None (the folder's
    settings) or must equal them but for ``out`` and ``progress`` (else ValueError naming
    the differences). A resume keeps every model in ``models/`` (not trained again: networks
    by :meth:`Network.load`, int8 models from their .tflite bytes; the seeded tree is refitted
    and checked equal to ``models/tree.npz``), every ``ptq_<topology>.csv`` and every plan row
    written: a row's record is its ``logs/<model>_<bounding>_<weeks>w.json``, and
    ``run.summary.csv`` is rebuilt from the records, so a kill between the two writes loses
    nothing. A resume of a finished run only rebuilds the summary and the plots."""
    import datetime as dt
    import sys

    global last_folder
    if resume is not None:
        folder = Path(resume)
        saved = load_config(folder)
        if cfg is not None:
            diff = differences(cfg, saved)
            if diff:
                raise ValueError(f"resume {folder}: the run was started with other settings: "
                                 + "; ".join(f"{k} {a!r} (the run has {b!r})"
                                             for k, (a, b) in diff.items()))
            saved.progress = cfg.progress
        cfg = saved
    elif cfg is None:
        raise ValueError("cfg: give the settings of a new run (or resume=FOLDER)")
    _validate(cfg)
    if resume is not None:
        last_folder = folder
        records = _records(folder, cfg)
        total = sum(len(_jobs(cfg, hz)) for hz in cfg.horizons)
        if len(records) == total and not (folder / INCOMPLETE).exists():
            print(f"resuming {folder}: the run is finished ({total} plan rows written); nothing "
                  "to compute, run.summary.csv and the plots rebuilt from logs/", file=sys.stderr)
            return folder, _finish(folder, cfg, records)
        models = [n for n in _model_names(cfg) if _model_path(folder, n).exists()]
        print(f"resuming {folder}: kept {len(models)} models ({', '.join(models) or 'none'}) and "
              f"{len(records)} of {total} plan rows already written; computing the rest",
              file=sys.stderr)
    else:
        stamp = f"epidemics{dt.datetime.now():%Y%m%d%H%M%S}"
        folder, k = Path(cfg.out) / stamp, 0
        while folder.exists():  # two runs in one second
            k += 1
            folder = Path(cfg.out) / f"{stamp}_{k}"
        (folder / "models").mkdir(parents=True)
        (folder / "logs").mkdir()
        write_json_atomic(folder / CONFIG_FILE, _config_payload(cfg))
        last_folder = folder
        records = {}
    return _run(cfg, folder, records)


def _model_path(folder: Path, name: str) -> Path:
    return folder / "models" / (f"{name}.tflite" if name.endswith("+int8") else f"{name}.npz")


def _mark(folder: Path, cfg: Config, n_rows: int) -> None:
    """INCOMPLETE: what is written so far, and the command that resumes."""
    total = sum(len(_jobs(cfg, hz)) for hz in cfg.horizons)
    names = [n for n in _model_names(cfg) if _model_path(folder, n).exists()]
    text = (f"this run stopped before its end: {len(names)} of {len(_model_names(cfg))} models "
            f"saved in models/ ({', '.join(names) or 'none'}), {n_rows} of {total} plan rows "
            "written (logs/*.json; run.summary.csv is rebuilt from them); a resume keeps them\n"
            f"resume with: emlpress epidemics run --resume {folder}\n")
    write_text_atomic(folder / INCOMPLETE, text)


def _train_times(folder: Path) -> dict:
    import json

    path = folder / TRAIN_TIMES
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except ValueError as e:
        raise ValueError(f"{path}: not readable ({e}); delete it and models/ to train again") from None


def _save_model(folder: Path, cfg: Config, name: str, train_s: float, write) -> Path:
    """Record ``train_s``, then write the model (``write(path)``, atomic): a model file on
    disk always has its time."""
    times = _train_times(folder)
    times[name] = train_s
    write_json_atomic(folder / TRAIN_TIMES, times)
    path = _model_path(folder, name)
    write(path)
    _mark(folder, cfg, 0)  # every model is saved before the first plan row
    return path


def _run(cfg: Config, folder: Path, records: dict):
    import time

    import pandas as pd

    from emlpress.train import fit_regressor

    _mark(folder, cfg, len(records))
    Xtr, Ytr, Xte, Yte = sir.dataset(cfg.n_train, cfg.n_test, seed=cfg.seed)
    lo, hi = TRAINING_BOX
    models = {}
    times = _train_times(folder)
    common = dict(batch_size=cfg.batch_size, seed=cfg.seed, learning_rate=cfg.learning_rate,
                  lo=lo, hi=hi, validation=cfg.validation)
    topologies = cfg.topologies
    if cfg.progress:
        from tqdm import tqdm

        topologies = tqdm(cfg.topologies, desc="training", unit="topology")
    try:  # a bar closed on Ctrl-C too: the CLI's message on a line of its own
        for name in topologies:
            base_path = _model_path(folder, name)
            prune_path = _model_path(folder, f"{name}+pruned")
            int8_path = _model_path(folder, f"{name}+int8")
            ckpt = folder / "models" / f"{name}_fit.npz"  # the Keras fit pruning continues from
            want_pruned = "pruned" in cfg.variants and bool(TOPOLOGIES[name]) and not prune_path.exists()
            want_net = (("baseline" in cfg.variants and not base_path.exists())
                        or ("int8" in cfg.variants and not int8_path.exists())
                        or (cfg.ptq_table and not (folder / f"ptq_{name}.csv").exists()))
            fit, net, base_s = None, None, times.get(name)
            if (want_pruned or want_net) and ckpt.exists():  # the trained fit, not trained again
                from emlpress.pipelines.tpc import _load_fits

                fit, = _load_fits(ckpt)
            elif want_net and not want_pruned and base_path.exists():
                net = Network.load(base_path)
            elif want_pruned or want_net:
                t0 = time.perf_counter()
                fit = fit_regressor(Xtr, Ytr, TOPOLOGIES[name], epochs=cfg.epochs, patience=cfg.patience,
                                    **common)
                base_s = time.perf_counter() - t0
                if want_pruned:  # before the baseline's file: a kept baseline has its checkpoint
                    from emlpress.pipelines.tpc import _save_fits

                    _save_fits(ckpt, (fit,))
            if fit is not None:
                net = fit.net
                base_s = fit.train_s if base_s is None else base_s
            if "baseline" in cfg.variants:
                if not base_path.exists():
                    _save_model(folder, cfg, name, base_s, lambda p: write_atomic(p, net.save))
                models[name] = (Network.load(base_path), times.get(name, base_s), base_path)
            elif base_s is not None and name not in times:  # the pruned and int8 times start here
                times[name] = base_s
                write_json_atomic(folder / TRAIN_TIMES, {**_train_times(folder), name: base_s})
            times = _train_times(folder)
            if "pruned" in cfg.variants and TOPOLOGIES[name]:
                key = f"{name}+pruned"
                if not prune_path.exists():
                    t0 = time.perf_counter()
                    pruned = fit_regressor(Xtr, Ytr, TOPOLOGIES[name], epochs=cfg.prune_epochs, init=fit,
                                           pruning=(cfg.initial_sparsity, cfg.final_sparsity), **common)
                    _save_model(folder, cfg, key, times[name] + time.perf_counter() - t0,
                                lambda p: write_atomic(p, pruned.net.save))
                    times = _train_times(folder)
                models[key] = (Network.load(prune_path), times[key], prune_path)
            if "int8" in cfg.variants or cfg.ptq_table:
                from emlpress.compress.lossy import quantization_table, quantize
                from emlpress.io.tflite import QuantizedNetwork

                if "int8" in cfg.variants:
                    key = f"{name}+int8"
                    if not int8_path.exists():
                        t0 = time.perf_counter()
                        content = quantize(net, "int8-fallback", representative=Xtr)
                        _save_model(folder, cfg, key, times[name] + time.perf_counter() - t0,
                                    lambda p: write_bytes_atomic(p, content))
                        times = _train_times(folder)
                    q = QuantizedNetwork.from_tflite(int8_path.read_bytes())
                    q.lo, q.hi = lo, hi
                    models[key] = (q, times[key], int8_path)
                if cfg.ptq_table and not (folder / f"ptq_{name}.csv").exists():
                    write_csv_atomic(folder / f"ptq_{name}.csv",
                                     quantization_table(net, Xte, Yte, representative=Xtr))
    finally:
        if cfg.progress:
            topologies.close()
    if cfg.tree:
        from sklearn.tree import DecisionTreeRegressor

        t0 = time.perf_counter()
        tree = DecisionTreeRegressor(max_depth=cfg.tree_depth, random_state=cfg.seed).fit(Xtr, Ytr)
        arrays = _parameters(tree)
        path = _model_path(folder, "tree")
        if path.exists():  # seeded: the refit is the saved tree, or the folder was changed
            with np.load(path, allow_pickle=False) as z:
                if set(z.files) != set(arrays) or any(not np.array_equal(z[k], a) for k, a in arrays.items()):
                    raise ValueError(f"{path}: differs from the tree these settings fit; the "
                                     "folder was changed since the run started")
            models["tree"] = (tree, times["tree"], path)
        else:
            _save_model(folder, cfg, "tree", time.perf_counter() - t0,
                        lambda p: write_atomic(p, lambda tmp: _savez(tmp, arrays)))
            models["tree"] = (tree, _train_times(folder)["tree"], path)
    for ckpt in (folder / "models").glob("*_fit.npz"):  # every pruned model is saved
        ckpt.unlink()
    # each model's held-out metrics, once (the int8 ones by the reference interpreter)
    from emlpress.compress.lossy import regression_metrics

    metrics = {name: regression_metrics(model.interpreter_float(Xte) if hasattr(model, "interpreter_float")
                                        else model.forward(Xte) if isinstance(model, Network)
                                        else model.predict(Xte), Yte, "SIR")
               for name, (model, _, _) in models.items()}
    sizes = {name: _size(model) for name, (model, _, _) in models.items()}
    for hz in cfg.horizons:
        inst = sir.Instance(weeks=hz, budget=cfg.budget_per_week * hz)
        jobs = [j for j in _jobs(cfg, hz) if (*j, hz) not in records]
        if not jobs:
            continue
        n = sir.count_schedules(inst, simulated=True)
        truth = sir.brute_force(inst) if n is not None and n <= BRUTE_FORCE_MAX else None
        bar = None
        if cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(_jobs(cfg, hz)), initial=len(_jobs(cfg, hz)) - len(jobs),
                       desc=f"plans, {hz} weeks", unit="MILP")
        try:
            for name, bounding in jobs:
                if bar is not None:
                    bar.set_postfix(model=name, bounding=bounding)
                    bar.update(1)
                record = _plan_row(cfg, inst, hz, name, bounding, models[name], metrics[name],
                                   sizes[name], truth)
                # the log is the row's record; the summary after it is rebuilt from the records
                write_json_atomic(_log_path(folder, name, bounding, hz), record, default=_json)
                records[(name, bounding, hz)] = _roundtrip(record)
                write_csv_atomic(folder / "run.summary.csv", pd.DataFrame(_summary_rows(cfg, records)))
                _mark(folder, cfg, len(records))
        finally:
            if bar is not None:
                bar.close()
    summary = _finish(folder, cfg, records)
    (folder / INCOMPLETE).unlink(missing_ok=True)
    return folder, summary


def _plan_row(cfg: Config, inst, hz: int, name: str, bounding: str, entry, metrics: dict,
              size: tuple, truth) -> dict:
    """One plan row's record: the model ``entry`` (model, train_s, path) planned on ``inst``
    with ``bounding``, simulated, and compared with the brute force ``truth`` (or None)."""
    model, train_s, path = entry
    try:
        p = plan(inst, model, time_limit=cfg.time_limit,
                 bounding="chained" if bounding == "-" else bounding)
    except NotApplicable as e:  # single-box on a network whose outputs leave the box
        p = Plan("NOT_APPLICABLE", None, None, None, None, None, None, message=str(e))
    except MagnitudeError as e:  # HiGHS refused the rows: bounds beyond 1e15 (chained
        # CROWN over many weeks of a deep network)
        p = Plan("ENCODING_REFUSED", None, None, None, None, None, None, message=str(e))
    row = {"model": name, "variant": name.split("+")[1] if "+" in name else "baseline",
           "bounding": bounding, "units_removed": " ".join(map(str, p.removed)),
           "message": p.message, "weeks": hz, "budget": inst.budget, "train_s": train_s,
           "size_bytes": size[0], "param_bytes": size[1], "file": path.name, **metrics,
           "status": p.status,
           "solve_s": p.solution.solve_s if p.solution else float("nan"),
           "gap": p.solution.gap if p.solution else float("nan"),
           "binaries": sum(getattr(hd, "n_binaries", 0) for hd in p.handles),
           "schedule": " ".join(map(str, p.schedule)) if p.schedule is not None else "",
           "cost": p.cost, "predicted_S": p.predicted_s, "simulated_S": p.simulated_s,
           "simulated_by": "reference SIR (DOP853, 1e-12)"}
    if p.search is not None:  # the MIP start, and the network's own optimum if known
        row.update(start_S=p.search[1], network_optimum_S=p.search[1] if p.search[2]
                   else float("nan"))
    if truth is not None:
        row.update(optimum_S=truth.best_s, optimum_by="brute force (every schedule)",
                   gap_to_optimum=(truth.best_s - p.simulated_s) / truth.best_s
                   if p.schedule is not None else float("nan"))
    return {"row": row, "predicted": None if p.predicted is None else p.predicted.tolist(),
            "simulated": None if p.simulated is None else p.simulated.tolist()}


def _json(v):
    """numpy scalars as the Python numbers they are (a resume reads the rows back)."""
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def _roundtrip(payload):
    """``payload`` as its JSON log reads back: a fresh row and a resumed one are the same."""
    import json

    return json.loads(json.dumps(payload, default=_json))


def _savez(path, arrays) -> None:
    with open(path, "wb") as f:  # a file object: np.savez would add .npz to the name
        np.savez(f, **arrays)


def _plots(folder, summary, plans) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for hz in sorted(summary["weeks"].unique()):
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharex=True)
        for (name, w), p in plans.items():
            if w != hz or p.predicted is None:
                continue
            for k, ax in enumerate(axes):
                line, = ax.plot(p.predicted[:, k], "--", label=f"{name} predicted")
                ax.plot(p.simulated[:, k], "-", color=line.get_color(), label=f"{name} simulated")
        for k, ax in enumerate(axes):
            ax.set_title("SIR"[k])
            ax.set_xlabel("week")
        axes[0].legend(fontsize=6)
        fig.suptitle(f"{hz} weeks: the chosen plans, predicted (dashed) and simulated (solid)", fontsize=9)
        fig.tight_layout()
        save_figure_atomic(fig, folder / f"trajectories_{hz}w.png", dpi=100)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for (hz, b), g in summary.groupby(["weeks", "bounding"]):
        ax.plot(g["model"], g["solve_s"], "o-", label=f"{hz} weeks, {b}")
    ax.set_yscale("log")
    ax.set_ylabel("solve seconds")
    ax.tick_params(axis="x", labelsize=6, rotation=30)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure_atomic(fig, folder / "solver_time.png", dpi=100)
    plt.close(fig)
