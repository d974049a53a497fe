"""The end of a run: temperature and threshold fitted on the validation split, its metrics per frame
(and per video when a video has several crops), and the training report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .recipe import Recipe


@dataclass
class Calibration:
    temperature: float
    threshold: float
    levels: dict  # "frame" (and "video") -> compute_metrics(...)


def calibrate(val: dict, val_rows, recipe: Recipe, log: Callable[[str], None]) -> Calibration:
    from ..evaluate.calibration import apply_temperature, choose_threshold, fit_temperature
    from ..evaluate.metrics import MetricUndefinedError, compute_metrics

    c = recipe.calibration
    logits, labels = val["logits"], val["labels"].astype(np.int64)
    temperature = fit_temperature(logits, labels) if c.fit_temperature else 1.0
    probs = apply_temperature(logits, temperature)
    try:
        threshold = choose_threshold(labels, probs, c.threshold)
    except MetricUndefinedError as exc:
        log(f"threshold rule {c.threshold!r} needs both classes ({exc}); using 0.5")
        threshold = 0.5
    rows = val_rows.iloc[val["indices"]]
    methods = rows["method"].astype(str).tolist() if "method" in rows.columns else None
    levels = {"frame": compute_metrics(labels, probs, threshold, groups=methods)}
    video = _video_level(rows, labels, probs, threshold)
    if video is not None:
        levels["video"] = video
    return Calibration(float(temperature), float(threshold), levels)


def _video_level(rows, labels, probs, threshold):
    """Mean over each video's crops, when the validation split has several crops per video."""
    if "video" not in rows.columns or not (rows["video"].astype(str) != "").all():
        return None
    if rows["video"].nunique() == len(rows):
        return None
    from ..evaluate.metrics import compute_metrics, video_level

    frame = rows[["video"]].copy()
    frame["label"], frame["prob"] = labels, probs
    per_video = video_level(frame, lambda values: float(np.mean(values)))
    return compute_metrics(per_video["label"].to_numpy(), per_video["prob"].to_numpy(), threshold)


def card_metrics(recipe: Recipe, metrics: dict | None) -> dict:
    """The validation figures a final model card carries."""
    if metrics is None:
        return {}
    out = {"split": recipe.data.val_split, "level": "frame"}
    out.update({k: metrics.get(k) for k in ("n", "auc", "accuracy", "log_loss", "eer", "ece",
                                            "sensitivity", "specificity", "f1")})
    return out


def write_training_report(run_dir: Path, recipe: Recipe, cal: Calibration, weights_path: Path, epochs_run: int,
                          history_csv: Path) -> None:
    from ..evaluate.report import write_report

    r = recipe
    info = {
        "recipe": r.name, "checkpoint": str(weights_path), "split": r.data.val_split,
        "manifest": r.data.manifest, "temperature": round(cal.temperature, 6), "threshold": round(cal.threshold, 6),
        "threshold_rule": r.calibration.threshold, "epochs_run": epochs_run,
    }
    notes = ["Temperature and threshold were fitted on this same validation split: evaluate on a held-out "
             "test split (`dfdetect evaluate`) for unbiased figures."]
    write_report(run_dir, cal.levels, info=info, history=history_csv, notes=notes,
                 title=f"Training report: {r.name} (validation)")
