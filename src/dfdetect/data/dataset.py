"""Face-crop datasets for training: manifest rows -> normalised tensors.

Per item: read the crop (RGB), maybe turn a REAL into a synthetic fake (self-blended image, label 1),
letterbox it to the model input with the same function scanning uses, augment, normalise with the
model's mean/std (the same `to_tensor` scanning uses).

    ds = FaceCropDataset.from_manifest(df[df.split == "train"], size=224, mean=..., std=...,
                                       augment=build_augmentation("seed002_default", 224))
    image, label, index = ds[0]
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler, get_worker_info

from ..errors import DatasetError

# A synthetic-fake maker: (RGB image, landmarks=None, rng=np.random.Generator) -> (fake RGB image, mask).
Synthesizer = Callable[..., tuple[np.ndarray, np.ndarray]]


def read_rgb(path: str | Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot read face crop {path}; re-extract it or drop it from the manifest")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class FaceCropDataset(Dataset):
    def __init__(self, paths: Sequence[str], labels: Sequence[int], size: int, mean, std,
                 augment: Callable[[np.ndarray], np.ndarray] | None = None,
                 synthesizer: Synthesizer | None = None, synth_fraction: float = 0.0, seed: int = 0,
                 methods: Sequence[str] | None = None):
        if len(paths) != len(labels):
            raise ValueError("paths and labels differ in length")
        if synth_fraction > 0 and synthesizer is None:
            raise ValueError("synth_fraction > 0 needs a synthesizer")
        self.paths = [str(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64)
        self.methods = list(methods) if methods is not None else None
        self.size = int(size)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.augment = augment
        self.synthesizer = synthesizer
        self.synth_fraction = float(synth_fraction)
        self.seed = int(seed)
        self.epoch = 0

    @classmethod
    def from_manifest(cls, frame: pd.DataFrame, size: int, mean, std, **options) -> "FaceCropDataset":
        if len(frame) == 0:
            raise DatasetError("no rows for this split in the manifest; check data.train_split / data.val_split")
        methods = frame["method"].astype(str).tolist() if "method" in frame.columns else None
        return cls(frame["path"].tolist(), labels_of(frame), size, mean, std, methods=methods, **options)

    def set_epoch(self, epoch: int) -> None:
        """Synthetic fakes and augmentations differ per epoch but repeat for the same (seed, epoch)."""
        self.epoch = int(epoch)
        self.reseed(self.seed * 1_000_003 + self.epoch)

    def reseed(self, seed: int) -> None:
        if hasattr(self.augment, "reseed"):
            self.augment.reseed(seed)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        from ..faces.crop import letterbox
        from ..models.preprocess import to_tensor

        image = read_rgb(self.paths[index])
        label = int(self.labels[index])
        if label == 0 and self.synth_fraction > 0:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            if rng.random() < self.synth_fraction:
                image, _mask = self.synthesizer(image, landmarks=None, rng=rng)
                label = 1
        image = letterbox(image, self.size)
        if self.augment is not None:
            image = self.augment(image)
        tensor = to_tensor([np.ascontiguousarray(image)], self.mean, self.std)[0]
        return tensor, torch.tensor(label, dtype=torch.float32), index


def labels_of(frame: pd.DataFrame) -> np.ndarray:
    """0 (real) / 1 (fake) from a manifest's label column ("real"/"fake", REAL/FAKE or 0/1)."""
    from .manifest import label_to_int, normalize_labels

    return label_to_int(normalize_labels(frame["label"])).to_numpy()


def split_rows(frame: pd.DataFrame, split: str, limit: int | None = None, seed: int = 0) -> pd.DataFrame:
    """The rows of one split; with `limit`, a random subset keeping the real/fake proportions."""
    if "split" not in frame.columns or not (frame["split"].astype(str) != "").any():
        raise DatasetError("the manifest has no split column values; assign train/val/test by group first")
    rows = frame[frame["split"].astype(str) == split]
    if limit is not None and len(rows) > limit:
        share = limit / len(rows)
        labels = labels_of(rows)
        rng = np.random.default_rng(seed)
        picked = []
        for value in (0, 1):
            members = np.flatnonzero(labels == value)
            if len(members):
                picked.extend(rng.choice(members, max(1, round(len(members) * share)), replace=False))
        rows = rows.iloc[sorted(picked)]
    return rows.reset_index(drop=True)


def default_synthesizer(crop_margin: float = 0.3) -> Synthesizer:
    """Self-blended images (Shiohara and Yamasaki, CVPR 2022) from dfdetect.data.sbi. `crop_margin` is the
    margin the crops were cut with: without landmarks it places the blending mask on the face."""
    try:
        from .sbi import SelfBlend
    except ImportError as exc:
        raise DatasetError(f"self-blended images are unavailable ({exc}); set data.sbi_fraction: 0") from None
    return SelfBlend(crop_margin=crop_margin)


def worker_init(worker_id: int) -> None:
    """DataLoader workers start as copies of the parent: give each its own augmentation stream and
    keep OpenCV single-threaded inside them (the workers are the parallelism)."""
    import cv2

    cv2.setNumThreads(1)
    info = get_worker_info()
    if info is not None and hasattr(info.dataset, "reseed"):
        info.dataset.reseed(info.seed)


class BalancedSampler(Sampler[int]):
    """Draws each class equally often (with replacement), sharded across distributed ranks.

    Every rank draws the same permutation from (seed, epoch) and keeps every world_size-th index, so
    the ranks see disjoint shares without talking to each other.
    """

    def __init__(self, labels: Sequence[int], num_samples: int | None = None, seed: int = 0,
                 rank: int = 0, world_size: int = 1, weights: Sequence[float] | None = None):
        labels = np.asarray(labels)
        counts = np.bincount(labels, minlength=2).astype(np.float64)
        # Given weights (e.g. data.pool.source_weights: balanced per source, or reals alone whose fakes are
        # self-blended) replace the per-class ones.
        if weights is None and (counts == 0).any():
            raise DatasetError("class-balanced sampling needs both real and fake training items")
        weights = 1.0 / counts[labels] if weights is None else np.asarray(weights, dtype=np.float64)
        self.weights = torch.as_tensor(weights, dtype=torch.double)
        total = num_samples or len(labels)
        self.per_rank = -(-total // world_size)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        drawn = torch.multinomial(self.weights, self.per_rank * self.world_size, replacement=True, generator=generator)
        return iter(drawn[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.per_rank
