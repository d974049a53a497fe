"""Classifier heads over pooled backbone features."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import Registry

HEADS: Registry = Registry("classifier head")


@HEADS.register("linear")
class LinearHead(nn.Module):
    """Dropout + Linear: seed 001's dense sigmoid (1 output) and seed 002's Linear(2)."""

    def __init__(self, in_features: int, num_classes: int = 1, dropout: float = 0.0, **_):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(features))


@HEADS.register("diffusion")
class DiffusionHead(nn.Module):
    """Seed 004's CARD-inspired head: an encoder/decoder pair applied over `num_steps` reverse steps
    that denoise the feature vector (each step predicts a residual correction), then a classifier.

    The corruption sqrt(a)x + sqrt(1-a)z is applied to the training images by the recipe's stage,
    so at inference the head simply runs its reverse steps on clean features.
    """

    def __init__(self, in_features: int, num_classes: int = 1, dropout: float = 0.0,
                 hidden_dim: int = 256, num_steps: int = 4, **_):
        super().__init__()
        self.num_steps = num_steps
        self.encoder = nn.Sequential(nn.Linear(in_features, hidden_dim), nn.LayerNorm(hidden_dim), nn.SiLU())
        self.decoder = nn.Linear(hidden_dim, in_features)
        # A learned embedding of the step tells the shared encoder how much noise is left.
        self.step_embedding = nn.Embedding(num_steps, hidden_dim)
        self.classifier = LinearHead(in_features, num_classes, dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features
        for step in reversed(range(self.num_steps)):
            index = torch.full((x.shape[0],), step, device=x.device, dtype=torch.long)
            hidden = self.encoder(x) + self.step_embedding(index)
            x = x - self.decoder(hidden) / self.num_steps
        return self.classifier(x)
