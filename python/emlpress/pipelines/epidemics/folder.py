"""The run folder of an epidemics run: where its models and plan rows go, what is written
so far (``INCOMPLETE``), and the records a resume reads back."""

from __future__ import annotations

import json
from pathlib import Path

from emlpress._atomic import write_json_atomic
from emlpress.pipelines.epidemics.config import Config, _jobs, _model_names
from emlpress.pipelines.runner import mark_incomplete

#: train_s of every model saved in models/, written before the model file itself
TRAIN_TIMES = Path("training.json")


def _log_path(folder: Path, name: str, bounding: str, hz: int) -> Path:
    return folder / "logs" / f"{name}_{bounding.replace('+', '_')}_{hz}w.json"


def _records(folder: Path, cfg: Config) -> dict:
    """The plan rows written so far: their log JSONs (the record of a row; run.summary.csv is
    rebuilt from them), by (model, bounding, weeks)."""
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



def _model_path(folder: Path, name: str) -> Path:
    return folder / "models" / (f"{name}.tflite" if name.endswith("+int8") else f"{name}.npz")


def _incomplete(folder: Path, cfg: Config) -> str:
    """INCOMPLETE's text: what is written so far (models, plan rows), and the command that
    resumes."""
    rows = [_log_path(folder, n, b, hz) for hz in cfg.horizons for n, b in _jobs(cfg, hz)]
    names = [n for n in _model_names(cfg) if _model_path(folder, n).exists()]
    return (f"this run stopped before its end: {len(names)} of {len(_model_names(cfg))} models "
            f"saved in models/ ({', '.join(names) or 'none'}), {sum(p.exists() for p in rows)} "
            f"of {len(rows)} plan rows written (logs/*.json; run.summary.csv is rebuilt from "
            "them); a resume keeps them\n"
            f"resume with: emlpress epidemics run --resume {folder}\n")


def _mark(folder: Path, cfg: Config) -> None:
    """INCOMPLETE, as the folder stands (after each model and each plan row)."""
    mark_incomplete(folder, _incomplete(folder, cfg))


def _train_times(folder: Path) -> dict:
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
    _mark(folder, cfg)
    return path

