"""Short fine-tunes of a compressed model, with or without a teacher (seed 003: alpha 0.25).

The training loop (`dfdetect.train`) runs them: the same data pipeline, step, distillation loss
(`train/distill.py`: alpha * BCE(student, teacher) + (1 - alpha) * BCE(student, label)), validation and
the final temperature and threshold fit. The model given is trained in place (a pruned model keeps its
widths); the returned card is the input card with the refitted calibration.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from torch import nn

from ..models.checkpoint import ModelCard


@dataclasses.dataclass
class FineTune:
    manifest: str
    steps: int = 300            # optimiser steps (batches)
    batch_size: int = 16
    lr: float = 1e-4
    teacher: str | None = None  # a checkpoint: distil from it; None: labels alone
    alpha: float = 0.25
    val_samples: int = 300      # validation crops for early model selection and calibration
    augment: str = "seed003"
    # A training recipe (configs/ name or YAML): the fine-tune then draws, augments and calibrates as that
    # recipe does (its data, loss and calibration sections: a model trained with self-blended images and codec
    # variety keeps them); its model, optimiser and length stay the fine-tune's own.
    recipe: str | None = None
    workers: int = 1
    device: str | None = None
    seed: int = 0


def fine_tune(model: nn.Module, card: ModelCard, options: FineTune, work_dir: Path) -> ModelCard:
    """Train `model` for `options.steps` batches; returns its card with temperature, thresholds and
    validation metrics refitted (the training run's files stay in work_dir)."""
    from ..train import train
    from ..train.recipe import recipe_from_dict

    # The data pipeline normalises as the model's spec says; a converted model keeps its card's normalisation.
    model.spec = dataclasses.replace(model.spec, mean=tuple(card.mean), std=tuple(card.std))
    recipe = recipe_from_dict(_recipe(card, options), "compression fine-tune")
    result = train(recipe, work_dir, model=model, device=options.device)
    model.cpu().eval()
    fitted = result.card
    return card.model_copy(update={
        "temperature": fitted.temperature, "threshold": fitted.threshold,
        "video_threshold": fitted.video_threshold,
        "metrics": {**card.metrics, "compressed_validation": fitted.metrics},
    })


def passes(o: FineTune) -> tuple[int, int]:
    """(epochs, batches per epoch) that make `o.steps` optimiser steps: a fine-tune longer than one pass over
    the training crops makes several passes (each then validated, the best kept) rather than stopping short."""
    from .data import crop_rows

    available = max(1, len(crop_rows(o.manifest, "train", None)) // o.batch_size)
    epochs = math.ceil(o.steps / available)
    return epochs, math.ceil(o.steps / epochs)


def _recipe(card: ModelCard, o: FineTune) -> dict:
    epochs, per_epoch = passes(o)
    recipe = {
        "name": f"{card.name}-finetune",
        "description": "short fine-tune after a compression step",
        "model": {"arch": card.arch, "pretrained": None, "head": card.head, "num_classes": card.num_classes,
                  "head_options": card.head_options, "input_size": card.input_size, "channels_last": True},
        "data": {"manifest": str(o.manifest), "augment": o.augment, "batch_size": o.batch_size,
                 "num_workers": o.workers, "balance_classes": True, "max_val_samples": o.val_samples,
                 "max_train_samples": per_epoch * o.batch_size, "license": card.license},
        "optimizer": {"name": "adamw", "lr": o.lr, "weight_decay": 0.01},
        "scheduler": {"name": "cosine", "interval": "step"},
        "loss": {"name": "bce"},
        "train": {"epochs": epochs, "max_steps_per_epoch": per_epoch, "seed": o.seed, "tensorboard": False,
                  "grad_clip_norm": 5.0},
        "calibration": {"fit_temperature": True, "threshold": "eer"},
        "faces": card.crop.model_dump(),
    }
    if o.teacher:
        recipe["distill"] = {"teacher": str(o.teacher), "alpha": o.alpha}
    if o.recipe:
        recipe = _as_in(o.recipe, recipe)
    return recipe


def _as_in(name_or_path: str, recipe: dict) -> dict:
    """`recipe` drawing, augmenting and calibrating as the named training recipe does; the fine-tune's
    manifest, batch size, crop counts, licence and face crops are kept."""
    from ..train.recipe import load_recipe

    source = load_recipe(name_or_path).model_dump()
    kept = {k: recipe["data"][k] for k in ("manifest", "batch_size", "num_workers", "max_val_samples",
                                            "max_train_samples", "license")}
    return {**recipe, "data": {**source["data"], **kept}, "loss": source["loss"],
            "calibration": source["calibration"]}
