"""Evaluation: the field's metrics (metrics), temperature scaling and thresholds (calibration), and reports
and run comparisons (report). None of these import torch."""

from .calibration import (
    THRESHOLD_RULES, apply_temperature, binary_nll, choose_threshold, fit_temperature, logit, sigmoid,
)
from .metrics import (
    MetricUndefinedError, accuracy, compute_metrics, confusion_counts, equal_error_rate,
    expected_calibration_error, log_loss, normalise_labels, per_group, reliability_bins, roc_auc, roc_curve,
    sensitivity, specificity, video_level,
)
from .report import compare_runs, comparison_markdown, write_comparison, write_report

__all__ = [
    "THRESHOLD_RULES", "MetricUndefinedError", "accuracy", "apply_temperature", "binary_nll", "choose_threshold",
    "compare_runs", "comparison_markdown", "compute_metrics", "confusion_counts", "equal_error_rate",
    "expected_calibration_error", "fit_temperature", "log_loss", "logit", "normalise_labels", "per_group",
    "reliability_bins", "roc_auc", "roc_curve", "sensitivity", "sigmoid", "specificity", "video_level",
    "write_comparison", "write_report",
]
