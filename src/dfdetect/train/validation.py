"""Validation during training: the model's fake logits on the validation loader (through the shared
inference backend), gathered over ranks, and the figures the history records."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..probability import binary_nll, sigmoid
from .step import TrainingDivergedError


def predict_logits(model: nn.Module, loader, device: torch.device, autocast_dtype=None,
                   channels_last: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fake logits, labels, dataset indices) over a loader of (images, labels, indices)."""
    from ..models.predict import TorchBackend

    backend = TorchBackend(model, device, channels_last=channels_last, autocast_dtype=autocast_dtype)
    logits, labels, indices = [], [], []
    for images, targets, index in loader:
        logits.append(backend.fake_logits(images))
        labels.append(targets.float().numpy())
        indices.append(np.asarray(index))
    if not logits:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    return np.concatenate(logits), np.concatenate(labels), np.concatenate(indices).astype(np.int64)


def mean_log_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    return binary_nll(logits, labels)


def validate(model: nn.Module, loader, device: torch.device, autocast_dtype, channels_last: bool, dist) -> dict:
    """Clean crops and the plain log loss (no smoothing, no distillation), as the papers validate;
    AUC and accuracy at 0.5 for the history, and the logits for calibration."""
    from ..evaluate.metrics import MetricUndefinedError, roc_auc

    logits, labels, indices = gather(dist, *predict_logits(model, loader, device, autocast_dtype, channels_last))
    if not np.isfinite(logits).all():
        raise TrainingDivergedError(
            "the model's validation outputs are not finite numbers; lower optimizer.lr, set "
            "train.grad_clip_norm, or use train.precision=fp32"
        )
    probs = sigmoid(logits)
    try:
        auc = roc_auc(labels.astype(np.int64), probs)
    except MetricUndefinedError:
        auc = None
    return {"loss": mean_log_loss(logits, labels), "auc": auc,
            "accuracy": float(((probs >= 0.5) == (labels > 0.5)).mean()),
            "logits": logits, "labels": labels, "indices": indices}


def gather(dist, logits, labels, indices):
    """All ranks' validation shares, each item once (DistributedSampler pads with repeats)."""
    if not dist.enabled:
        return logits, labels, indices
    import torch.distributed as tdist

    parts = [None] * dist.world_size
    tdist.all_gather_object(parts, (logits, labels, indices))
    logits = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    indices = np.concatenate([p[2] for p in parts])
    _, first = np.unique(indices, return_index=True)
    return logits[first], labels[first], indices[first]
