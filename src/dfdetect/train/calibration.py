"""The end of a run: temperature and threshold fitted on the validation split, its metrics per frame
(and per video when a video has several crops), and the training report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .recipe import CalibrationSection, Recipe


# A video threshold is fitted only on at least this many several-crop videos of each class; with fewer, person
# and video verdicts keep the frame threshold (a dozen videos would set it by chance).
MIN_VIDEOS_PER_CLASS = 20


@dataclass
class Calibration:
    temperature: float
    threshold: float
    levels: dict  # "frame" (and "video") -> compute_metrics(...); frame figures per source under "per_source"
    video_threshold: float | None = None  # for person and video scores, when it could be fitted


def calibrate(val: dict, val_rows, c: CalibrationSection, log: Callable[[str], None]) -> Calibration:
    """Temperature and threshold from the validation logits (`validate`'s dict) and their manifest rows."""
    from ..evaluate.calibration import apply_temperature, choose_threshold, fit_temperature
    from ..evaluate.metrics import MetricUndefinedError, compute_metrics

    logits, labels = val["logits"], val["labels"].astype(np.int64)
    temperature = fit_temperature(logits, labels) if c.fit_temperature else 1.0
    probs = apply_temperature(logits, temperature)
    try:
        threshold = choose_threshold(labels, probs, c.threshold)
    except MetricUndefinedError as exc:
        log(f"threshold rule {c.threshold!r} needs both classes ({exc}); using 0.5")
        threshold = 0.5
    rows = val_rows.iloc[val["indices"]]
    if c.max_real_fpr is not None:
        threshold = bound_false_alarms(rows, labels, probs, threshold, c, log)
    methods = rows["method"].astype(str).tolist() if "method" in rows.columns else None
    levels = {"frame": compute_metrics(labels, probs, threshold, groups=methods)}
    per_source = _per_source(rows, labels, probs, threshold)
    if per_source:
        levels["frame"]["per_source"] = per_source
    videos = _video_table(rows, labels, probs)
    video_threshold = None
    if videos is not None:
        video_threshold = _video_threshold(videos, c.threshold, log)
        levels["video"] = compute_metrics(videos["label"].to_numpy(), videos["prob"].to_numpy(),
                                          threshold if video_threshold is None else video_threshold)
    return Calibration(float(temperature), float(threshold), levels, video_threshold)


def bound_false_alarms(rows, labels, probs, threshold: float, c: CalibrationSection,
                       log: Callable[[str], None]) -> float:
    """The threshold, raised where needed so that no group of real people (CalibrationSection's
    max_real_fpr, min_group_people, fpr_groups) has more than `max_real_fpr` of its reals called fake."""
    raised, binding = threshold, None
    for name, reals in real_groups(rows, labels, c.fpr_groups, c.min_group_people).items():
        scores = np.sort(probs[reals])[::-1]
        allowed = int(np.floor(c.max_real_fpr * len(scores)))  # false alarms the group may have
        if allowed < len(scores) and scores[allowed] >= raised:
            raised, binding = float(np.nextafter(scores[allowed], 1.0)), name
    if binding is not None:
        log(f"threshold raised from {threshold:.4f} to {raised:.4f} so that at most {c.max_real_fpr:.0%} of the "
            f"validation reals of every group are called fake (binding group: {binding})")
    return raised


def real_groups(rows, labels, kinds, min_people: int) -> dict[str, np.ndarray]:
    """Masks of the real rows per group of each kind ("source": the manifest's `dataset`; "age_band", "gender",
    "ethnicity" from its age / gender / race columns) that holds at least `min_people` distinct people (the
    manifest's `group`: a person or a source video)."""
    from ..evaluate.fairness import describe_people

    real = labels == 0
    people = rows["group"].astype(str).to_numpy() if "group" in rows.columns else np.arange(len(rows)).astype(str)
    columns = {}
    if "source" in kinds and "dataset" in rows.columns:
        columns["source"] = rows["dataset"].astype(str).to_numpy()
    if {"age", "gender", "race"} & set(rows.columns):
        described = describe_people(rows)
        columns.update({kind: described[kind].astype(str).to_numpy() for kind in kinds if kind != "source"})
    groups = {}
    for kind, values in columns.items():
        for value in sorted(set(values[real]) - {"unknown", "nan"}):
            groups[f"{kind} {value}"] = real & (values == value)
    return {name: mask for name, mask in groups.items() if len(set(people[mask])) >= min_people}


def _per_source(rows, labels, probs, threshold) -> dict | None:
    """Frame figures per source (the manifest's `dataset`) when the split holds several: n, accuracy, AUC
    where a source has both classes, and the share of its reals called fake."""
    if "dataset" not in rows.columns or rows["dataset"].nunique() < 2:
        return None
    from ..evaluate.metrics import per_group

    sources = rows["dataset"].astype(str).to_numpy()
    out = per_group(labels, probs, sources, threshold)
    for name, figures in out.items():
        reals = (sources == name) & (labels == 0)
        figures["reals_called_fake"] = float((probs[reals] >= threshold).mean()) if reals.any() else None
    return out


def _video_table(rows, labels, probs):
    """One row per video, scored with the scan's default aggregation, when some video has several crops."""
    if "video" not in rows.columns or not (rows["video"].astype(str) != "").all():
        return None
    key = rows["video"].astype(str)
    if "dataset" in rows.columns:
        key = rows["dataset"].astype(str) + "/" + key  # video names are unique within a source only
    if key.nunique() == len(rows):
        return None
    from ..evaluate.metrics import video_level
    from ..scoring import DEFAULT_AGGREGATION

    frame = rows[["track"]].copy() if "track" in rows.columns else rows[[]].copy()
    frame["video"], frame["label"], frame["prob"] = key.to_numpy(), labels, probs
    return video_level(frame, DEFAULT_AGGREGATION)


def _video_threshold(videos, rule, log: Callable[[str], None]) -> float | None:
    """The threshold rule applied to the videos with several crops, when there are enough of each class."""
    from ..evaluate.calibration import choose_threshold

    several = videos[videos["n_frames"] >= 2]
    counts = several["label"].value_counts()
    if min(counts.get(0, 0), counts.get(1, 0)) < MIN_VIDEOS_PER_CLASS:
        log(f"video threshold: only {counts.get(0, 0)} real and {counts.get(1, 0)} fake validation videos with "
            f"several crops (fewer than {MIN_VIDEOS_PER_CLASS} of a class); person and video verdicts keep the "
            "frame threshold")
        return None
    return float(choose_threshold(several["label"].to_numpy(), several["prob"].to_numpy(), rule))


def card_metrics(split: str | None, metrics: dict | None) -> dict:
    """The validation figures a final model card carries."""
    if metrics is None:
        return {}
    out = {"split": split, "level": "frame"}
    out.update({k: metrics.get(k) for k in ("n", "auc", "accuracy", "log_loss", "eer", "ece",
                                            "sensitivity", "specificity", "f1")})
    if metrics.get("per_source"):
        out["per_source"] = metrics["per_source"]
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
