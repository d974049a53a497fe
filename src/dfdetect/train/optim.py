"""Optimisers and learning-rate schedules built from a recipe's sections.

Schedules are multiplicative factors on the base learning rate, stepped once per epoch (the papers'
way) or once per optimiser step (`interval: step`, smoother for short runs). "warmup_cosine" is seed
003's: start at `warmup_start_factor` x lr, rise linearly over `warmup_epochs`, then cosine annealing
towards `min_lr_factor` x lr over the remaining epochs.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import ConstantLR, LambdaLR, PolynomialLR, ReduceLROnPlateau, StepLR

from ..registry import Registry

OPTIMIZERS: Registry = Registry("optimizer")
SCHEDULERS: Registry = Registry("learning-rate schedule")


@OPTIMIZERS.register("sgd")
def _sgd(params, s):
    return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay, nesterov=s.nesterov)


@OPTIMIZERS.register("adam")
def _adam(params, s):
    return torch.optim.Adam(params, lr=s.lr, betas=s.betas, weight_decay=s.weight_decay)


@OPTIMIZERS.register("adamw")
def _adamw(params, s):
    return torch.optim.AdamW(params, lr=s.lr, betas=s.betas, weight_decay=s.weight_decay)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(params, s):
    return torch.optim.RMSprop(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)


def build_optimizer(parameters, section) -> torch.optim.Optimizer:
    params = [p for p in parameters if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters (is everything frozen?)")
    return OPTIMIZERS.get(section.name)(params, section)


class WarmupCosine:
    """lr factor at time t (epochs or steps): linear warm-up, then half a cosine down to `floor`.

    An object rather than a closure so that LambdaLR can save and restore it with the run state. Written out
    rather than torch's LinearLR + CosineAnnealingLR in a SequentialLR: the floor is a factor of each
    parameter group's own rate (CosineAnnealingLR's eta_min is one absolute rate for all), and the closed
    form restores exactly on resume. The other schedules are torch's own.
    """

    def __init__(self, warmup: float, total: float, start: float = 0.1, floor: float = 0.0):
        self.warmup = float(warmup)
        self.total = float(max(total, 1))
        self.start = float(start)
        self.floor = float(floor)

    def __call__(self, t: int) -> float:
        if self.warmup > 0 and t < self.warmup:
            return self.start + (1.0 - self.start) * t / self.warmup
        span = max(self.total - self.warmup, 1.0)
        progress = min(max((t - self.warmup) / span, 0.0), 1.0)
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@SCHEDULERS.register("none")
def _none(optimizer, s, epochs, steps_per_epoch):
    return ConstantLR(optimizer, factor=1.0, total_iters=0)


@SCHEDULERS.register("cosine")
def _cosine(optimizer, s, epochs, steps_per_epoch):
    total = _units(epochs, s, steps_per_epoch)
    return LambdaLR(optimizer, WarmupCosine(0, total, floor=s.min_lr_factor))


@SCHEDULERS.register("warmup_cosine")
def _warmup_cosine(optimizer, s, epochs, steps_per_epoch):
    total = _units(epochs, s, steps_per_epoch)
    warmup = _units(s.warmup_epochs, s, steps_per_epoch)
    return LambdaLR(optimizer, WarmupCosine(warmup, total, s.warmup_start_factor, s.min_lr_factor))


@SCHEDULERS.register("step")
def _step(optimizer, s, epochs, steps_per_epoch):
    return StepLR(optimizer, step_size=max(1, int(_units(s.step_epochs, s, steps_per_epoch))), gamma=s.gamma)


@SCHEDULERS.register("poly")
def _poly(optimizer, s, epochs, steps_per_epoch):
    return PolynomialLR(optimizer, total_iters=max(1, round(_units(epochs, s, steps_per_epoch))), power=s.poly_power)


@SCHEDULERS.register("plateau")
def _plateau(optimizer, s, epochs, steps_per_epoch):
    # Stepped with the validation loss at the end of each epoch, whatever `interval` says.
    return ReduceLROnPlateau(optimizer, mode="min", factor=s.gamma, patience=s.plateau_patience)


def _units(epochs: float, s, steps_per_epoch: int) -> float:
    return epochs * steps_per_epoch if s.interval == "step" else epochs


def build_scheduler(optimizer, section, epochs: int, steps_per_epoch: int):
    """`steps_per_epoch` counts optimiser steps (after gradient accumulation)."""
    return SCHEDULERS.get(section.name)(optimizer, section, epochs, max(1, steps_per_epoch))


def steps_per_scheduler_call(section) -> str:
    """"step", "epoch" or "metric" (ReduceLROnPlateau wants the validation loss)."""
    return "metric" if section.name == "plateau" else section.interval
