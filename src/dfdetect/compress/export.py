"""PyTorch -> ONNX (opset >= 17) with the model card in the file's metadata, checked on real crops."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..models.checkpoint import ModelCard

MIN_OPSET = 17


class _FakeLogit(nn.Module):
    """The graph that is exported: images -> one fake logit per image, whatever the head's output size."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from ..models.classifier import fake_logit

        return fake_logit(self.model(images))


class _PaddedConv(nn.Module):
    """A TensorFlow-style 'same' convolution with its padding fixed for one input size."""

    def __init__(self, conv: nn.Conv2d, pads: tuple[int, int, int, int]):
        super().__init__()
        self.conv, self.pads = conv, pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.Conv2d.forward(self.conv, nn.functional.pad(x, self.pads))


def _fixed_same_padding(model: nn.Module, input_size: int) -> nn.Module:
    """A copy whose 'same'-padded convolutions (timm's Conv2dSame, the tf_ models) pad by constants:
    their padding depends only on the input size, which a card fixes, and the exported graph then holds
    one Pad per layer instead of shape arithmetic that ONNX Runtime cannot fold or fuse."""
    import copy

    from timm.layers import Conv2dSame
    from timm.layers.padding import get_same_padding

    model = copy.deepcopy(model)
    sizes: dict[str, tuple[int, int]] = {}
    def record(name):
        def hook(module, args):
            sizes[name] = tuple(args[0].shape[-2:])
        return hook

    hooks = [m.register_forward_pre_hook(record(name)) for name, m in model.named_modules() if isinstance(m, Conv2dSame)]
    with torch.no_grad():
        model(torch.zeros(1, 3, input_size, input_size))
    for hook in hooks:
        hook.remove()
    for name, (height, width) in sizes.items():
        parent_name, _, child = name.rpartition(".")
        conv = model.get_submodule(name)
        pad_h = get_same_padding(height, conv.kernel_size[0], conv.stride[0], conv.dilation[0])
        pad_w = get_same_padding(width, conv.kernel_size[1], conv.stride[1], conv.dilation[1])
        pads = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
        setattr(model.get_submodule(parent_name), child, _PaddedConv(conv, pads))
    return model


def export_onnx(model: nn.Module, card: ModelCard, path: Path, opset: int = MIN_OPSET,
                fold: bool = True) -> ModelCard:
    """Write `path` (batch size free) and return the card it carries. `fold` lets the exporter fold batch
    norms into the convolutions; without it ONNX Runtime folds them when it loads the file, so weights stored
    in half precision stay exactly the checkpoint's."""
    if opset < MIN_OPSET:
        raise ConfigError(f"export: opset must be {MIN_OPSET} or later, got {opset}")
    model = model.float().cpu().eval()
    example = torch.zeros(1, 3, card.input_size, card.input_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(_FakeLogit(_fixed_same_padding(model, card.input_size)), (example,), str(path),
                      input_names=["image"],
                      output_names=["fake_logit"], dynamic_axes={"image": {0: "batch"}, "fake_logit": {0: "batch"}},
                      opset_version=opset, dynamo=False, do_constant_folding=fold)
    card = card.model_copy(update={"weights_sha256": "", "weights_dtype": "float32",
                                   "exported_from_sha256": card.weights_sha256,
                                   "params": sum(p.numel() for p in model.parameters())})
    write_card(path, card)
    return card


def write_card(path: Path, card: ModelCard) -> None:
    """Put the card into an .onnx file's metadata (replacing any there)."""
    import onnx

    from ..models.onnx_model import card_metadata

    proto = onnx.load(str(path))
    entries = card_metadata(card)
    kept = [p for p in proto.metadata_props if p.key not in entries]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))


def agreement(reference, candidate, card: ModelCard, crops: Sequence[np.ndarray]) -> dict:
    """How far `candidate`'s outputs stray from `reference`'s (two Backends) on the same real crops."""
    from ..models.predict import Predictor
    from ..probability import apply_temperature

    a = Predictor.for_card(reference, card).logits(crops)
    b = Predictor.for_card(candidate, card).logits(crops)
    pa, pb = apply_temperature(a, card.temperature), apply_temperature(b, card.temperature)
    verdicts = (pa >= card.threshold) != (pb >= card.threshold)
    # Ranking is what ROC-AUC sees: int8 moves single probabilities but should keep the order of the crops.
    correlation = float(np.corrcoef(a, b)[0, 1]) if len(crops) > 1 and np.std(a) > 0 and np.std(b) > 0 else 1.0
    return {"crops": len(crops), "logit_correlation": correlation, "max_abs_logit_diff": float(np.max(np.abs(a - b))),
            "max_abs_prob_diff": float(np.max(np.abs(pa - pb))),
            "mean_abs_prob_diff": float(np.mean(np.abs(pa - pb))),
            "verdicts_changed": int(verdicts.sum())}
