"""Structured, dependency-aware channel pruning with Torch-Pruning and first-order Taylor importance.

Removing a channel removes it everywhere it flows (the batch norm after it, the depthwise convolution,
the next layer's input, residual partners), so the result is a smaller dense model, not a masked one.
Importance is |weight x gradient| summed over the coupled group, the gradients coming from the task loss
on real face crops. `scope="global"` ranks all groups together (layers lose different shares);
"local" removes the same share from every layer. With `steps` > 1 the target is reached in equal
increments, and `between_steps` (a fine-tune, e.g. distillation) runs after each one (seed 003: 5 steps).
`ratio` is the share of channels removed per layer (local) or overall (global); MACs fall faster.
`channels="hidden"` prunes only the expanded channels inside EfficientNet's blocks (expansion, depthwise,
projection input) and keeps the stem, every block's output (the residual stream) and the head convolution at
full width: most of the MACs lie inside the blocks, while every block reads and writes the stream.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from ..errors import ConfigError

SCOPES = ("global", "local")
CHANNELS = ("all", "hidden")


def count_macs_params(model: nn.Module, input_size: int) -> tuple[int, int]:
    """(multiply-accumulates, parameters) of one image through the model."""
    import torch_pruning as tp

    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        macs, params = tp.utils.count_ops_and_params(model, torch.zeros(1, 3, input_size, input_size, device=device))
    finally:
        model.train(was_training)
    return int(macs), int(params)


def prune(model: nn.Module, input_size: int, batches: Callable[[], Iterable], *, ratio: float,
          scope: str = "global", channels: str = "all", steps: int = 1, round_to: int | None = 8,
          max_layer_ratio: float = 0.8, between_steps: Callable[[nn.Module, int], None] | None = None) -> list[dict]:
    """Prune `model` in place; returns one record per step (MACs and parameters after it).

    batches() yields (images, labels) of real face crops for the Taylor gradients.
    round_to keeps channel counts multiples of 8, which CPU kernels (and int8) run faster.
    """
    import torch_pruning as tp

    if not 0.0 < ratio < 1.0:
        raise ConfigError(f"prune: ratio must be between 0 and 1, got {ratio}")
    if scope not in SCOPES:
        raise ConfigError(f"prune: scope must be 'global' or 'local', got {scope!r}")
    if channels not in CHANNELS:
        raise ConfigError(f"prune: channels must be 'all' or 'hidden', got {channels!r}")
    if steps < 1:
        raise ConfigError("prune: steps must be at least 1")
    kept = [model.head, *(stream_layers(model) if channels == "hidden" else [])]
    device = next(model.parameters()).device
    pruner = tp.pruner.MetaPruner(
        model, torch.zeros(1, 3, input_size, input_size, device=device),
        importance=tp.importance.GroupTaylorImportance(), global_pruning=scope == "global",
        pruning_ratio=ratio, max_pruning_ratio=max_layer_ratio, iterative_steps=steps,
        ignored_layers=kept, round_to=round_to,
    )
    records = []
    for step in range(steps):
        _accumulate_task_gradients(model, batches())
        pruner.step()
        model.zero_grad(set_to_none=True)
        macs, params = count_macs_params(model, input_size)
        records.append({"step": step + 1, "macs": macs, "params": params})
        if between_steps is not None:
            between_steps(model, step + 1)
    return records


def stream_layers(model: nn.Module) -> list[nn.Module]:
    """The convolutions whose outputs form EfficientNet's stream between blocks: the stem, each block's last
    convolution (its output joins the residual sum) and the head convolution."""
    backbone = getattr(model, "backbone", model)
    if not all(hasattr(backbone, name) for name in ("conv_stem", "blocks", "conv_head")):
        raise ConfigError("prune: channels=hidden needs an EfficientNet-family backbone (timm's conv_stem, "
                          f"blocks, conv_head); {type(backbone).__name__} has other parts")
    last = [getattr(block, "conv_pwl", None) or block.conv_pw for stage in backbone.blocks for block in stage]
    return [backbone.conv_stem, *last, backbone.conv_head]


def _accumulate_task_gradients(model: nn.Module, batches: Iterable) -> None:
    """Gradients of the task loss (BCE on the fake logit) summed over the batches, batch norm frozen."""
    from ..models.classifier import fake_logit

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    seen = 0
    try:
        for images, labels in batches:
            logits = fake_logit(model(images.to(device)))
            loss = nn.functional.binary_cross_entropy_with_logits(logits, labels.to(device).float())
            loss.backward()
            seen += len(labels)
    finally:
        model.train(was_training)
    if seen == 0:
        raise ConfigError("prune: no face crops to rank channels with")
