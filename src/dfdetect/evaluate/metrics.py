"""Binary deepfake-detection metrics on numpy arrays: labels y (1 = fake, 0 = real) and probabilities p of "fake".

Convention used throughout: an item is called fake when ``p >= threshold``. The ROC curve, the EER threshold and
every thresholded metric use that same rule, so a threshold read off one can be fed to the others.
A metric that the data cannot define (AUC with one class, precision with no fake predictions) is ``None`` in
:func:`compute_metrics`' result, and the reason is recorded under ``"undefined"``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import DatasetError, DfdetectError
from ..labels import FAKE, label_name

DEFAULT_BINS = 15
LOG_LOSS_EPS = 1e-15  # the DFDC competition's clipping: one confident mistake costs about 34.5, not infinity

class MetricUndefinedError(DfdetectError):
    """A metric that the given labels cannot define, e.g. AUC when every item has the same label."""


# ---------------------------------------------------------------- inputs


def normalise_labels(labels: Iterable[Any]) -> np.ndarray:
    """0/1, booleans or names (REAL/FAKE, any case) -> int array of 0 (real) and 1 (fake)."""
    out = []
    for value in labels:
        if isinstance(value, (bool, np.bool_)):
            out.append(int(value))
            continue
        if isinstance(value, (int, np.integer, float, np.floating)) and value in (0, 1):
            out.append(int(value))
            continue
        name = label_name(value)
        if name is None:
            raise DatasetError(f"label {value!r} is neither real nor fake; use 0/1 or REAL/FAKE")
        out.append(FAKE if name == "fake" else 1 - FAKE)
    return np.asarray(out, dtype=np.int64)


def _check(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1 or len(y) != len(p):
        raise ValueError(f"labels and probabilities must be 1-D and equally long (got {y.shape} and {p.shape})")
    if len(y) == 0:
        raise ValueError("no items to score")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake); convert names with normalise_labels()")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("probabilities must be finite and within [0, 1]")
    return y.astype(np.int64), p


def _need_both_classes(y: np.ndarray, metric: str) -> None:
    n_fake = int(y.sum())
    if n_fake == 0 or n_fake == len(y):
        only = "FAKE" if n_fake else "REAL"
        raise MetricUndefinedError(f"{metric} needs both real and fake items, but every label is {only}")


def predict_labels(p, threshold: float = 0.5) -> np.ndarray:
    return (np.asarray(p, dtype=np.float64) >= threshold).astype(np.int64)


# ---------------------------------------------------------------- threshold-free metrics


def roc_auc(y, p) -> float:
    """Probability that a random fake scores above a random real (ties count one half)."""
    from sklearn.metrics import roc_auc_score

    y, p = _check(y, p)
    _need_both_classes(y, "ROC-AUC")
    return float(roc_auc_score(y, p))


def auc_standard_error(auc: float, n_fake: int, n_real: int) -> float:
    """Standard error of a ROC-AUC from its value and the class counts (Hanley and McNeil, 1982): enough to
    tell whether two models' AUCs on one test set differ by more than chance."""
    if n_fake < 1 or n_real < 1:
        raise DfdetectError("the AUC's standard error needs both classes")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (n_fake - 1) * (q1 - auc * auc) + (n_real - 1) * (q2 - auc * auc)) / (n_fake * n_real)
    return math.sqrt(max(variance, 0.0))


def roc_curve(y, p, drop_intermediate: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), thresholds decreasing; point i is the rates of calling ``p >= thresholds[i]`` fake.

    The first point is (0, 0) at threshold +inf (nothing called fake). With ``drop_intermediate``, points on a
    straight segment between their neighbours are dropped: the curve and its area are unchanged.
    """
    from sklearn.metrics import roc_curve as sk_roc_curve

    y, p = _check(y, p)
    _need_both_classes(y, "ROC curve")
    fpr, tpr, thresholds = sk_roc_curve(y, p, drop_intermediate=drop_intermediate)
    thresholds[0] = np.inf  # "nothing called fake" (older scikit-learn wrote max + 1)
    return fpr, tpr, thresholds


def log_loss(y, p, eps: float = LOG_LOSS_EPS) -> float:
    """Mean binary cross-entropy (natural log) with probabilities clipped to [eps, 1 - eps]."""
    from sklearn.metrics import log_loss as sk_log_loss

    y, p = _check(y, p)
    return float(sk_log_loss(y, np.clip(p, eps, 1.0 - eps), labels=[0, 1]))


def equal_error_rate(y, p) -> tuple[float, float]:
    """(EER, threshold) where the false-positive rate equals the false-negative rate.

    Both rates are interpolated linearly along the ROC segment where they cross, and so is the threshold
    (between the two scores that bound the segment). When the crossing lies on the first segment, whose upper
    end is "nothing called fake", the threshold is the highest score.
    """
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
    gap = fpr - (1.0 - tpr)  # rises from -1 at the (0, 0) point to +1 at (1, 1)
    i = int(np.argmax(gap >= 0))
    if gap[i] == 0:
        return float(fpr[i]), float(thresholds[i])
    w = gap[i - 1] / (gap[i - 1] - gap[i])
    eer = fpr[i - 1] + w * (fpr[i] - fpr[i - 1])
    upper = thresholds[i - 1]
    threshold = thresholds[i] if not np.isfinite(upper) else upper + w * (thresholds[i] - upper)
    return float(eer), float(threshold)


# ---------------------------------------------------------------- thresholded metrics


def confusion_counts(y, p, threshold: float = 0.5) -> dict[str, int]:
    """tn, fp, fn, tp with "positive" = fake."""
    from sklearn.metrics import confusion_matrix

    y, p = _check(y, p)
    tn, fp, fn, tp = confusion_matrix(y, predict_labels(p, threshold), labels=[0, 1]).ravel()
    return {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}


def accuracy(y, p, threshold: float = 0.5) -> float:
    y, p = _check(y, p)
    return float((predict_labels(p, threshold) == y).mean())


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def rates(counts: Mapping[str, int]) -> dict[str, float | None]:
    """Sensitivity (TPR, recall of fakes), specificity (TNR), precision, F1; None where the denominator is 0."""
    tp, fp, fn, tn = counts["tp"], counts["fp"], counts["fn"], counts["tn"]
    sensitivity = _ratio(tp, tp + fn)
    precision = _ratio(tp, tp + fp)
    if sensitivity is None or precision is None:
        f1 = None
    else:
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return {
        "sensitivity": sensitivity,
        "specificity": _ratio(tn, tn + fp),
        "precision": precision,
        "recall": sensitivity,
        "f1": f1,
    }


def sensitivity(y, p, threshold: float = 0.5) -> float | None:
    return rates(confusion_counts(y, p, threshold))["sensitivity"]


def specificity(y, p, threshold: float = 0.5) -> float | None:
    return rates(confusion_counts(y, p, threshold))["specificity"]


# ---------------------------------------------------------------- calibration


def reliability_bins(y, p, n_bins: int = DEFAULT_BINS) -> dict[str, list]:
    """Equal-width bins of P(fake) over [0, 1]: per bin the count, mean predicted P(fake) and fraction of fakes.

    Empty bins have count 0 and None for the two means.
    """
    y, p = _check(y, p)
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    index = np.clip(np.floor(p * n_bins).astype(np.int64), 0, n_bins - 1)  # p == 1 falls in the last bin
    counts = np.bincount(index, minlength=n_bins)
    sum_p = np.bincount(index, weights=p, minlength=n_bins)
    sum_y = np.bincount(index, weights=y, minlength=n_bins)
    mean_p = [float(s / c) if c else None for s, c in zip(sum_p, counts)]
    frac_fake = [float(s / c) if c else None for s, c in zip(sum_y, counts)]
    return {
        "edges": np.linspace(0.0, 1.0, n_bins + 1).tolist(),
        "count": counts.astype(int).tolist(),
        "mean_prob": mean_p,
        "fraction_fake": frac_fake,
    }


def expected_calibration_error(y, p, n_bins: int = DEFAULT_BINS) -> float:
    """Sum over bins of (bin share of items) x |mean P(fake) - fraction of fakes|."""
    bins = reliability_bins(y, p, n_bins)
    total = sum(bins["count"])
    return float(sum(
        c / total * abs(m - f)
        for c, m, f in zip(bins["count"], bins["mean_prob"], bins["fraction_fake"])
        if c
    ))


# ---------------------------------------------------------------- groups and videos


def per_group(y, p, groups: Sequence[Any], threshold: float = 0.5) -> dict[str, dict[str, Any]]:
    """Per group (e.g. manipulation method): item counts, accuracy, and AUC where the group holds both classes."""
    y, p = _check(y, p)
    groups = np.asarray([str(g) for g in groups], dtype=object)
    if len(groups) != len(y):
        raise ValueError(f"got {len(groups)} group names for {len(y)} items")
    result = {}
    for name in sorted(set(groups)):
        mask = groups == name
        gy, gp = y[mask], p[mask]
        n_fake = int(gy.sum())
        both = 0 < n_fake < len(gy)
        result[name] = {
            "n": int(mask.sum()),
            "n_fake": n_fake,
            "n_real": int(len(gy) - n_fake),
            "accuracy": accuracy(gy, gp, threshold),
            "auc": roc_auc(gy, gp) if both else None,
        }
    return result


def resolve_aggregator(strategy: str | Callable[[Sequence[float]], float]) -> Callable[[Sequence[float]], float]:
    """A callable as is, or a strategy name from dfdetect.scoring.AGGREGATORS (the ones scanning uses)."""
    if callable(strategy):
        return strategy
    from ..scoring import AGGREGATORS

    return AGGREGATORS.get(strategy)


def video_level(frame_df, strategy: str | Callable[[Sequence[float]], float] = "mean", *,
                video_col: str = "video", prob_col: str = "prob", label_col: str = "label",
                track_col: str = "track"):
    """Frame rows -> one row per video: label, aggregated probability, frame count, and every other column
    whose value is the same on all of the video's frames (method, group, split...).

    A strategy with a ``video(tracks)`` method (scoring's Aggregation) gets the faces grouped per person when
    the table has a ``track`` column, as scanning does; any other callable gets the flat list of probabilities.
    """
    import pandas as pd

    for col in (video_col, prob_col, label_col):
        if col not in frame_df.columns:
            raise DatasetError(f"video-level scoring needs a {col!r} column; the table has {list(frame_df.columns)}")
    aggregate = resolve_aggregator(strategy)
    rows = []
    for video, frames in frame_df.groupby(video_col, sort=True):
        labels = frames[label_col].unique()
        if len(labels) != 1:
            raise DatasetError(f"video {video!r} has frames labelled both real and fake; fix the manifest")
        row = {video_col: video, label_col: labels[0], "n_frames": len(frames),
               prob_col: _aggregate_video(aggregate, frames, prob_col, track_col)}
        for col in frames.columns:
            if col not in row and col != "path" and frames[col].nunique(dropna=False) == 1:
                row[col] = frames[col].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


def _aggregate_video(aggregate, frames, prob_col: str, track_col: str) -> float:
    if track_col in frames.columns and hasattr(aggregate, "video"):
        tracks = [group[prob_col].astype(float).tolist() for _, group in frames.groupby(track_col, sort=True)]
        return float(aggregate.video(tracks))
    return float(aggregate(frames[prob_col].astype(float).tolist()))


# ---------------------------------------------------------------- everything at once


def _json_number(value: float | None, digits: int = 6) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return round(float(value), digits)


def compute_metrics(y, p, threshold: float = 0.5, groups: Sequence[Any] | None = None,
                    n_bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """All metrics as a JSON-serialisable dict; metrics the data cannot define are None with a reason in
    ``result["undefined"]``."""
    y, p = _check(y, p)
    undefined: dict[str, str] = {}
    counts = confusion_counts(y, p, threshold)
    result: dict[str, Any] = {
        "n": len(y),
        "n_fake": int(y.sum()),
        "n_real": int(len(y) - y.sum()),
        "threshold": float(threshold),
        "accuracy": accuracy(y, p, threshold),
        "log_loss": log_loss(y, p),
        "ece": expected_calibration_error(y, p, n_bins),
    }
    try:
        result["auc"] = roc_auc(y, p)
        result["eer"], result["eer_threshold"] = equal_error_rate(y, p)
        fpr, tpr, thr = roc_curve(y, p)
        result["roc"] = {
            "fpr": [_json_number(v) for v in fpr],
            "tpr": [_json_number(v) for v in tpr],
            "thresholds": [_json_number(v) for v in thr],  # the first, +inf, becomes None
        }
    except MetricUndefinedError as exc:
        for key in ("auc", "eer", "eer_threshold", "roc"):
            result[key] = None
            undefined[key] = str(exc)
    for name, value in rates(counts).items():
        result[name] = value
        if value is None:
            undefined[name] = _why_rate_undefined(name, counts)
    result["confusion"] = counts
    result["reliability"] = reliability_bins(y, p, n_bins)
    if groups is not None:
        result["per_group"] = per_group(y, p, groups, threshold)
    result["undefined"] = undefined
    return _rounded(result)


def _why_rate_undefined(name: str, counts: Mapping[str, int]) -> str:
    if name in ("sensitivity", "recall"):
        return "no fake items"
    if name == "specificity":
        return "no real items"
    if counts["tp"] + counts["fp"] == 0:
        return f"nothing was called fake at the threshold; {name} needs at least one fake prediction"
    return "no fake items"


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, float):
        return _json_number(value, 8)
    return value
