"""EfficientNet -> EfficientNet-Lite (seed 003): squeeze-and-excitation removed, SiLU replaced by ReLU6.

timm's Lite layout is the same stack of blocks without SE and with ReLU6, so every weight but the SE
layers carries over by name. `init="source"` keeps the trained model's weights (its normalisation too);
`init="imagenet"` starts the Lite backbone from the ImageNet weights that ship offline, with a new head.
Either way the activations change, so a fine-tune (`distill` / `finetune`) should follow.
"""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from ..models.checkpoint import ModelCard
from ..models.shapes import apply_shapes, module_shapes

INITS = ("source", "imagenet")


def to_lite(model: nn.Module, card: ModelCard, init: str = "source") -> tuple[nn.Module, ModelCard]:
    """(Lite model, its card). The card keeps crop, threshold and temperature; a fine-tune refits them."""
    from ..models import create_model
    from ..models.zoo import BACKBONES, LITE_TWIN

    if init not in INITS:
        raise ConfigError(f"lite: init must be one of {', '.join(INITS)}, got {init!r}")
    lite_arch = LITE_TWIN.get(card.arch)
    if lite_arch is None:
        have = "it is Lite already" if card.arch.startswith("efficientnet_lite") else "no Lite form exists"
        raise ConfigError(f"lite: cannot convert {card.arch} ({have}); convertible: {', '.join(LITE_TWIN)}")
    head = dict(head=card.head, num_classes=card.num_classes, head_options=card.head_options)
    if init == "imagenet":
        lite = create_model(lite_arch, pretrained="imagenet", **head)
        spec = BACKBONES.get(lite_arch)
        card = card.model_copy(update={"mean": spec.mean, "std": spec.std})
    else:
        lite = create_model(lite_arch, pretrained=None, **head)
        _copy_without_se(model, lite)
    return lite, card.model_copy(update={"arch": lite_arch, "name": f"{card.name}-lite"})


def _copy_without_se(source: nn.Module, lite: nn.Module) -> None:
    """Every tensor of `source` but its SE layers, by name (a pruned source keeps its pruned widths)."""
    state = {k: v for k, v in source.state_dict().items() if ".se." not in k}
    lite_shapes = module_shapes(lite)
    apply_shapes(lite, {name: shape for name, shape in module_shapes(source).items()
                        if name in lite_shapes and lite_shapes[name] != shape})
    missing, unexpected = lite.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ConfigError(f"lite: the layouts differ beyond SE (missing {missing[:3]}, unexpected {unexpected[:3]})")


def lite_violations(model: nn.Module) -> list[str]:
    """Names of the modules a Lite model must not have: SE blocks and SiLU activations."""
    found = []
    for name, module in model.named_modules():
        kind = type(module).__name__
        if kind in ("SqueezeExcite", "SEModule", "SiLU", "Swish", "SwishMe") or (
                name.endswith(".se") and not isinstance(module, nn.Identity)):
            found.append(f"{name} ({kind})")
    return found
