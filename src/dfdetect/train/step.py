"""One training epoch: forward, loss, backward and optimiser steps, with gradient accumulation, mixed
precision, noise corruption (seed 004) and a check that the loss stays finite."""

from __future__ import annotations

import contextlib
import math
import sys
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import DfdetectError
from .optim import steps_per_scheduler_call

REPORT_EVERY = 10  # steps between progress-bar updates (and checks that the loss is finite)


class TrainingDivergedError(DfdetectError):
    """The loss or the validation outputs stopped being finite numbers."""


def corrupt_with_noise(x: torch.Tensor, fraction: float, alpha_min: float, alpha_max: float,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Seed 004: floor(N * fraction) images of the batch become sqrt(a) x + sqrt(1 - a) z,
    a ~ U(alpha_min, alpha_max) per image, z ~ N(0, 1) (on the normalised input)."""
    n = int(math.floor(x.shape[0] * fraction))
    if n == 0:
        return x
    device = x.device
    pick = torch.randperm(x.shape[0], generator=generator)[:n].to(device)
    # Drawn on the CPU from the epoch's generator so that a resumed run corrupts the same images.
    alpha = (alpha_min + (alpha_max - alpha_min) * torch.rand(n, generator=generator)).to(device, x.dtype)
    alpha = alpha.view(-1, 1, 1, 1)
    noise = torch.randn(x[pick].shape, generator=generator).to(device, x.dtype)
    out = x.clone()
    out[pick] = alpha.sqrt() * x[pick] + (1 - alpha).sqrt() * noise
    return out


@dataclass
class StepContext:
    """What the training step needs from the run."""

    model: nn.Module                  # the bare model (frozen parts, batch-norm mode)
    wrapped: nn.Module                # the one called: the model or its DistributedDataParallel wrapper
    loss: "TaskLoss"                  # (logits, labels, images) -> loss
    device: torch.device
    autocast_dtype: torch.dtype | None
    distributed: bool
    show_progress: bool


def train_epoch(ctx: StepContext, recipe, stage, loader, optimizer, scheduler, scaler, sched_section,
                batches: int, epoch: int) -> tuple[float, int]:
    """(mean training loss over all ranks, items this rank saw)."""
    from tqdm import tqdm

    r = recipe
    ctx.wrapped.train()
    if stage.freeze_backbone:
        ctx.model.backbone.eval()  # frozen batch-norm statistics too
    accum = r.train.grad_accum_steps
    per_step = steps_per_scheduler_call(sched_section) == "step"
    noise_gen = torch.Generator().manual_seed(r.train.seed * 7919 + epoch)
    # The running loss stays on the device and is read every REPORT_EVERY steps: reading it each
    # step would wait for the GPU every step.
    total, count = torch.zeros((), dtype=torch.float64, device=ctx.device), 0
    optimizer.zero_grad(set_to_none=True)
    progress = tqdm(total=batches, desc=f"epoch {epoch + 1}", unit="batch", leave=False,
                    disable=not ctx.show_progress, file=sys.stderr)
    for step, (images, labels, _) in enumerate(loader):
        if step >= batches:
            break
        images = images.to(ctx.device, non_blocking=True)
        labels = labels.to(ctx.device, non_blocking=True)
        if stage.corrupt is not None:
            c = stage.corrupt
            images = corrupt_with_noise(images, c.fraction, c.alpha_min, c.alpha_max, noise_gen)
        if r.model.channels_last:
            images = images.to(memory_format=torch.channels_last)
        last_micro = (step + 1) % accum == 0 or step + 1 == batches
        skip_sync = ctx.distributed and not last_micro
        with ctx.wrapped.no_sync() if skip_sync else contextlib.nullcontext():
            with torch.autocast(ctx.device.type, dtype=ctx.autocast_dtype or torch.float32,
                                enabled=ctx.autocast_dtype is not None):
                loss = ctx.loss(ctx.wrapped(images), labels, images)
            scaler.scale(loss / accum).backward()
        if last_micro:
            if r.train.grad_clip_norm:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(ctx.model.parameters(), r.train.grad_clip_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            if per_step:
                scheduler.step()
        total += loss.detach().double() * images.shape[0]
        count += images.shape[0]
        progress.update(1)
        if (step + 1) % REPORT_EVERY == 0 or step + 1 == batches:
            mean = total.item() / count
            _check_finite(mean, epoch, step)
            progress.set_postfix(loss=f"{mean:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
    progress.close()
    return _mean_over_ranks(total, count, ctx)


def _check_finite(mean: float, epoch: int, step: int) -> None:
    if not math.isfinite(mean):
        raise TrainingDivergedError(
            f"training loss became {mean} in epoch {epoch + 1} by batch {step + 1}; "
            "lower optimizer.lr, set train.grad_clip_norm, or use train.precision=fp32"
        )


def _mean_over_ranks(total: torch.Tensor, count: int, ctx: StepContext) -> tuple[float, int]:
    if ctx.distributed:
        import torch.distributed as dist

        sums = torch.stack([total, torch.tensor(float(count), dtype=torch.float64, device=ctx.device)])
        dist.all_reduce(sums)
        return (sums[0].item() / max(sums[1].item(), 1.0)), count
    return (total.item() / count if count else float("nan")), count


class TaskLoss:
    """The recipe's loss, or the distillation loss against a teacher: (logits, labels, images) -> loss."""

    def __init__(self, criterion: nn.Module, teacher: nn.Module | None = None, distill_loss: nn.Module | None = None):
        self.criterion, self.teacher, self.distill_loss = criterion, teacher, distill_loss

    def __call__(self, logits, labels, images):
        if self.teacher is not None:
            return self.distill_loss(logits, labels, self.teacher(images))
        return self.criterion(logits, labels)
