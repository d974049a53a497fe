"""The data of a run: manifest rows -> training and validation datasets, the sampler and the loaders.

`build_train_sampler` is the one place that decides how training items are drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils.data import DataLoader, DistributedSampler

from ..errors import ConfigError, DatasetError
from .recipe import Recipe
from .runtime import DistContext


@dataclass
class TrainData:
    manifest: object          # the whole manifest (a DataFrame)
    train_set: object         # FaceCropDataset
    train_sampler: object | None
    train_loader: DataLoader
    shuffle_generator: torch.Generator
    val_rows: object | None   # the validation rows (DataFrame), in val_set's order
    val_set: object | None
    val_loader: DataLoader | None

    def set_epoch(self, seed: int, epoch: int) -> None:
        """Reseed the order from (seed, epoch): a resumed run sees the same order as an uninterrupted one."""
        self.shuffle_generator.manual_seed(seed * 1_000_003 + epoch)
        self.train_set.set_epoch(epoch)
        if hasattr(self.train_sampler, "set_epoch"):
            self.train_sampler.set_epoch(epoch)


def build_data(recipe: Recipe, input_size: int, spec, dist: DistContext, device: torch.device,
               log: Callable[[str], None]) -> TrainData:
    from ..data.augment import build_augmentation
    from ..data.dataset import FaceCropDataset, default_synthesizer, worker_init
    from ..data.manifest import read_manifest

    r, d = recipe, recipe.data
    if d.manifest is None:
        raise ConfigError("data.manifest is not set; pass data.manifest=PATH (a CSV/Parquet of face crops)")
    frame = read_manifest(d.manifest)
    train_rows = training_rows(frame, recipe)
    synthesizer = default_synthesizer(r.faces.margin) if d.sbi_fraction > 0 else None
    common = dict(size=input_size, mean=spec.mean, std=spec.std)
    train_set = FaceCropDataset.from_manifest(
        train_rows, augment=build_augmentation(d.augment, input_size), synthesizer=synthesizer,
        synth_fraction=d.sbi_fraction, seed=r.train.seed, **common,
    )
    val_rows = _val_rows(frame, recipe)
    val_set = FaceCropDataset.from_manifest(val_rows, **common) if val_rows is not None else None
    if val_set is None:
        reason = f"no '{d.val_split}' rows" if d.val_split else "no validation split asked for (data.val_split)"
        log(f"{reason}: no validation, early stopping or calibration in this run")

    sampler = build_train_sampler(train_set, train_rows, recipe, dist)
    loader_options = dict(num_workers=d.num_workers, pin_memory=device.type == "cuda", worker_init_fn=worker_init)
    shuffle_generator = torch.Generator().manual_seed(r.train.seed)
    train_loader = DataLoader(
        train_set, batch_size=d.batch_size, shuffle=sampler is None, sampler=sampler,
        drop_last=len(train_set) > d.batch_size * dist.world_size, generator=shuffle_generator, **loader_options,
    )
    val_loader = None
    if val_set is not None:
        val_sampler = DistributedSampler(val_set, shuffle=False) if dist.enabled else None
        val_loader = DataLoader(val_set, batch_size=d.val_batch_size or d.batch_size, shuffle=False,
                                sampler=val_sampler, **loader_options)
    return TrainData(frame, train_set, sampler, train_loader, shuffle_generator, val_rows, val_set, val_loader)


def training_rows(frame, recipe: Recipe):
    """The training split's rows; with data.self_blended_only, its real rows alone."""
    from ..data.dataset import labels_of, split_rows

    d = recipe.data
    rows = split_rows(frame, d.train_split, None, recipe.train.seed)
    if d.self_blended_only:
        rows = rows[labels_of(rows) == 0].reset_index(drop=True)
        if rows.empty:
            raise DatasetError(f"data.self_blended_only: the '{d.train_split}' split has no real rows")
    return split_rows(rows, d.train_split, d.max_train_samples, recipe.train.seed)


def _val_rows(frame, recipe: Recipe):
    """The validation split's rows, or None when there is none (not asked for, or empty)."""
    from ..data.dataset import split_rows

    d = recipe.data
    if not d.val_split:
        return None
    try:
        rows = split_rows(frame, d.val_split, d.max_val_samples, recipe.train.seed)
    except DatasetError:
        return None
    return rows if len(rows) else None


def build_train_sampler(train_set, train_rows, recipe: Recipe, dist: DistContext):
    """Class-balanced draws, a distributed shard, or None (the loader shuffles)."""
    from ..data.dataset import BalancedSampler

    d = recipe.data
    if d.balance_classes:
        weights = None
        if d.source_share_power is not None:
            from ..data.pool import source_weights

            weights = source_weights(train_rows, d.source_share_power, d.group_weights, d.real_share_of_draws())
        return BalancedSampler(train_set.labels, seed=recipe.train.seed, weights=weights,
                               rank=dist.rank, world_size=dist.world_size)
    if dist.enabled:
        return DistributedSampler(train_set, shuffle=True, seed=recipe.train.seed)
    return None
