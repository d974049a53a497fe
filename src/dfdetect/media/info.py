"""What a probe says about a file, and the frames that decoding yields."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class MediaInfo:
    path: Path
    kind: str                      # "video" | "image"
    width: int                     # display size, after rotation
    height: int
    frame_count: int               # 1 for an image
    fps: float | None
    duration_s: float | None
    rotation: int                  # degrees clockwise applied to stored frames to show them upright
    codec: str
    frame_count_estimated: bool = False   # True when the container had no frame count (duration x fps)
    bit_rate: int | None = None    # the video stream's bits per second (None: an image, or not known)

    @property
    def bits_per_pixel(self) -> float | None:
        """Compressed bits per pixel of each frame: how hard the video was compressed, for one codec."""
        if not self.bit_rate or not self.fps or self.width * self.height == 0:
            return None
        return self.bit_rate / (self.width * self.height * self.fps)


@dataclass
class Frame:
    index: int
    time_s: float
    image: np.ndarray              # RGB uint8, upright
    # The same frame shrunk to the preview side iter_frames was asked for (None: not asked, or not larger).
    preview: np.ndarray | None = None
