"""Task losses. Every loss takes the model's raw output and integer/float labels (1 = fake).

"bce": one logit per image (seeds 000, 001, 003, 004); "ce": two logits (seed 002's Linear(2));
"focal": BCE down-weighting easy examples. Label smoothing moves hard targets towards 0.5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.classifier import fake_logit
from ..registry import Registry

LOSSES: Registry = Registry("loss")


def smooth_targets(labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    return labels.float() * (1.0 - smoothing) + 0.5 * smoothing


@LOSSES.register("bce")
class BinaryCrossEntropy(nn.Module):
    def __init__(self, label_smoothing: float = 0.0, **_):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = smooth_targets(labels, self.label_smoothing)
        return F.binary_cross_entropy_with_logits(logits.float().reshape(-1), targets.reshape(-1))


@LOSSES.register("ce")
class CrossEntropy(nn.Module):
    def __init__(self, label_smoothing: float = 0.0, **_):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if logits.ndim != 2 or logits.shape[1] != 2:
            raise ValueError(f"'ce' expects (N, 2) logits, got {tuple(logits.shape)}")
        # Soft labels (a self-blend is still labelled 0/1) become a two-class target distribution.
        fake = smooth_targets(labels, self.label_smoothing).reshape(-1)
        target = torch.stack([1.0 - fake, fake], dim=1)
        return torch.sum(-target * F.log_softmax(logits.float(), dim=1), dim=1).mean()


@LOSSES.register("focal")
class FocalLoss(nn.Module):
    def __init__(self, label_smoothing: float = 0.0, focal_gamma: float = 2.0, **_):
        super().__init__()
        self.label_smoothing = label_smoothing
        self.gamma = focal_gamma

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        from torchvision.ops import sigmoid_focal_loss

        targets = smooth_targets(labels, self.label_smoothing).reshape(-1)
        # alpha=-1: no class weighting (the sampler balances the classes)
        return sigmoid_focal_loss(logits.float().reshape(-1), targets, alpha=-1, gamma=self.gamma, reduction="mean")


def build_loss(section) -> nn.Module:
    """From a recipe's LossSection."""
    return LOSSES.get(section.name)(label_smoothing=section.label_smoothing, focal_gamma=section.focal_gamma)


def log_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Plain binary log loss of the fake logit against hard labels: the validation loss of every recipe,
    whatever its head or training loss, so that runs compare."""
    return F.binary_cross_entropy_with_logits(fake_logit(logits).float(), labels.float().reshape(-1))
