"""Face crops (RGB uint8, already letterboxed to the input size) -> normalised NCHW float tensor."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def to_tensor(crops: Sequence[np.ndarray], mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (batch - mean_t) / std_t
