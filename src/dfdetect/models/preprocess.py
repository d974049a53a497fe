"""Face crops (RGB uint8, already letterboxed to the input size) -> a normalised NCHW float32 batch."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def normalise(crops: Sequence[np.ndarray], mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(N, 3, H, W) float32: pixels scaled to 0-1, less the mean, over the std (per channel)."""
    batch = np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    mean_a = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
    std_a = np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((batch - mean_a) / std_a)


def to_tensor(crops: Sequence[np.ndarray], mean: Sequence[float], std: Sequence[float]):
    """`normalise` as a torch tensor (training and Grad-CAM)."""
    import torch

    return torch.from_numpy(normalise(crops, mean, std))
