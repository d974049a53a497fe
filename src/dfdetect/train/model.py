"""The model a recipe trains: built fresh, or started from a trained checkpoint; the distillation teacher."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError, WeightsUnavailableError
from .recipe import Recipe


def build_model(recipe: Recipe) -> nn.Module:
    """The recipe's model: fresh from `create_model`, or started from a trained checkpoint (`init_from`)."""
    from ..models import create_model, load_checkpoint

    m = recipe.model
    pretrained = None if m.init_from else m.pretrained
    try:
        model = create_model(m.arch, pretrained=pretrained, head=m.head, num_classes=m.num_classes,
                             drop_rate=m.drop_rate, head_options=m.head_options)
    except OSError as exc:
        if pretrained != "hub":
            raise
        # Hub download failures (offline, no cache) surface as OSError subclasses.
        raise WeightsUnavailableError(
            f"cannot fetch ImageNet weights for {m.arch} from the hub ({type(exc).__name__}); connect once to "
            "cache them, set model.pretrained=PATH to a weights file, or model.pretrained=null to train from scratch"
        ) from None
    if m.init_from is None:
        return model
    source, card = load_checkpoint(m.init_from)
    if card.arch != m.arch:
        raise ConfigError(f"model.init_from {m.init_from} is a {card.arch}, the recipe builds a {m.arch}")
    if m.init_parts == "backbone":
        model.backbone.load_state_dict(source.backbone.state_dict(), strict=True)
    else:
        if (card.head, card.num_classes) != (m.head, m.num_classes):
            raise ConfigError(
                f"model.init_from {m.init_from} has head {card.head}/{card.num_classes} outputs; the recipe wants "
                f"{m.head}/{m.num_classes} (set model.init_parts: backbone to take only the backbone)"
            )
        model.load_state_dict(source.state_dict(), strict=True)
    return model


def build_teacher(recipe: Recipe, spec, device: torch.device):
    from ..models import load_checkpoint
    from .distill import TeacherAdapter

    teacher, card = load_checkpoint(recipe.distill.teacher)
    return TeacherAdapter(teacher, card.input_size, card.mean, card.std, spec.mean, spec.std).to(device)


def set_backbone_frozen(model: nn.Module, frozen: bool) -> None:
    for p in model.backbone.parameters():
        p.requires_grad_(not frozen)
