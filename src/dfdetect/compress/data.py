"""Real face crops for the compression steps: Taylor gradients, int8 calibration, agreement checks."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError


def crop_rows(manifest: str | Path | None, split: str, limit: int | None, seed: int = 0):
    """Up to `limit` rows (None: all) of one split (real and fake in their proportions) of a face-crop manifest."""
    from ..data.dataset import split_rows
    from ..data.manifest import read_manifest

    if manifest is None:
        raise ConfigError("this step needs real face crops: pass --manifest (a face-crop manifest with a split)")
    return split_rows(read_manifest(manifest), split, limit, seed)


def labelled_batches(rows, card, batch_size: int = 32):
    """(normalised images, 0/1 labels) batches as the card preprocesses them, in the rows' order."""
    from torch.utils.data import DataLoader

    from ..data.dataset import FaceCropDataset

    dataset = FaceCropDataset.from_manifest(rows, size=card.input_size, mean=card.mean, std=card.std)
    for images, labels, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0):
        yield images, labels


def crop_images(rows, card) -> list:
    """The rows' crops as RGB uint8 arrays letterboxed to the card's input size (what a Predictor takes)."""
    from ..data.dataset import read_rgb
    from ..faces.crop import letterbox

    return [letterbox(read_rgb(path), card.input_size) for path in rows["path"]]
