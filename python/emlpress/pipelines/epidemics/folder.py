"""The run folder of an epidemics run: where its models and plan rows go, what is written
so far (``INCOMPLETE``), and the records a resume reads back."""

from __future__ import annotations

import json
from pathlib import Path

from emlpress._atomic import write_json_atomic, write_text_atomic
from emlpress.pipelines.epidemics.config import Config, _jobs, _model_names

INCOMPLETE = "INCOMPLETE"
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

