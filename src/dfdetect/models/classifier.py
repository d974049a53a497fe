"""DeepfakeClassifier: backbone (timm, pooled features) + head; outputs logits, `fake_logit` gives one per image."""

from __future__ import annotations

import torch
from torch import nn

from .heads import HEADS
from .zoo import BACKBONES, BackboneSpec, create_backbone


class DeepfakeClassifier(nn.Module):
    def __init__(self, spec: BackboneSpec, backbone: nn.Module, head: nn.Module, head_name: str, num_classes: int):
        super().__init__()
        self.spec = spec
        self.backbone = backbone
        self.head = head
        self.head_name = head_name
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.backbone(x))
        return logits.squeeze(1) if self.num_classes == 1 else logits

    def fake_logit(self, x: torch.Tensor) -> torch.Tensor:
        """Log-odds that each image is fake, whatever the head's output size (1: BCE, 2: softmax)."""
        return fake_logit(self(x))

    def param_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def fake_logit(logits: torch.Tensor) -> torch.Tensor:
    """Log-odds of "fake" from (N,) or (N, 1) sigmoid logits or (N, 2) softmax logits."""
    if logits.ndim == 2 and logits.shape[1] == 2:
        return logits[:, 1] - logits[:, 0]  # softmax(l)[1] == sigmoid(l1 - l0)
    return logits.reshape(-1)


def create_model(arch: str, *, pretrained: str | None = None, head: str = "linear", num_classes: int = 1,
                 drop_rate: float = 0.0, head_options: dict | None = None) -> DeepfakeClassifier:
    """Build backbone + head. `pretrained`: as `create_backbone` takes it (None, "imagenet", "lite-imagenet",
    "hub" or a weights path)."""
    if num_classes not in (1, 2):
        raise ValueError("num_classes must be 1 (sigmoid) or 2 (softmax)")
    spec = BACKBONES.get(arch)
    backbone = create_backbone(spec, pretrained, drop_rate=0.0)
    # Models with a pre-logits layer (MobileNetV3) pool to head_hidden_size, not num_features.
    features = getattr(backbone, "head_hidden_size", None) or backbone.num_features
    head_module = HEADS.get(head)(features, num_classes, dropout=drop_rate, **(head_options or {}))
    return DeepfakeClassifier(spec, backbone, head_module, head, num_classes)
