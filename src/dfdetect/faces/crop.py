"""The one face crop used for scanning, extraction and training: expand the box by a margin, clip it to the
frame, resize keeping the aspect ratio and pad with zeros to a square (seed 002, section 2.4)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .detect import DETECTORS, FaceBox


@dataclass(frozen=True)
class CropSettings:
    """size: side of the square crop. margin: fraction of the box width (height) added on the left and the right
    (top and bottom). margin_px: absolute pixels added on every side as well (seed 002 uses 30 with margin=0).
    min_face: callers drop faces whose shorter box side is below this many pixels (0 keeps all; seed 002: 70)."""

    size: int = 224
    margin: float = 0.3
    margin_px: int = 0
    min_face: int = 0

    def __post_init__(self):
        from ..errors import ConfigError

        if self.size < 1:
            raise ConfigError(f"crop size must be positive, got {self.size}")
        if self.margin < 0 or self.margin_px < 0 or self.min_face < 0:
            raise ConfigError(f"crop margin, margin_px and min_face must not be negative: {self}")

    def to_dict(self) -> dict:
        return asdict(self)

    def keeps(self, box: FaceBox) -> bool:
        """Whether a face is big enough for these settings."""
        return min(box.width, box.height) >= self.min_face


class FaceCrop(BaseModel):
    """How faces are found and cut out: the one description that a recipe's `faces` section, a model card's
    `crop` and an extraction preset share, so that scanning crops faces as training did.

    detector: a registered face detector. margin, margin_px, min_face: as in CropSettings.
    detect_side: frames are shrunk to this long side for detection (None: the detector's default)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    detector: str = "mtcnn"
    margin: float = Field(0.3, ge=0)
    margin_px: int = Field(0, ge=0)
    min_face: int = Field(0, ge=0)
    detect_side: int | None = Field(None, ge=64, description="detection resolution used at extraction")

    @field_validator("detector")
    @classmethod
    def _known_detector(cls, name: str) -> str:
        if name not in DETECTORS:
            raise ValueError(f"unknown face detector {name!r}; choose one of: {', '.join(DETECTORS.names())}")
        return name

    def settings(self, size: int) -> CropSettings:
        """The crop itself, letterboxed to size x size."""
        return CropSettings(size=size, margin=self.margin, margin_px=self.margin_px, min_face=self.min_face)


BOX_ONLY = CropSettings(margin=0.0)  # the detector's box itself, clipped to the frame


def crop_region(box: FaceBox, settings: CropSettings, width: int, height: int) -> tuple[int, int, int, int]:
    """The pixel rectangle (x1, y1, x2, y2), end-exclusive, that crop_face cuts from a width x height image."""
    pad_x = box.width * settings.margin + settings.margin_px
    pad_y = box.height * settings.margin + settings.margin_px
    # floor/ceil so that the region always covers the whole expanded box, never a pixel less.
    x1 = max(0, math.floor(box.x1 - pad_x))
    y1 = max(0, math.floor(box.y1 - pad_y))
    x2 = min(width, math.ceil(box.x2 + pad_x))
    y2 = min(height, math.ceil(box.y2 + pad_y))
    # A box entirely outside the frame (or degenerate) still yields one pixel, never an empty slice.
    x1, y1 = min(x1, width - 1), min(y1, height - 1)
    return x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)


def crop_face(image: np.ndarray, box: FaceBox, settings: CropSettings = CropSettings()) -> np.ndarray:
    """A settings.size x settings.size x 3 uint8 crop of the face in an RGB image."""
    x1, y1, x2, y2 = crop_region(box, settings, image.shape[1], image.shape[0])
    return letterbox(image[y1:y2, x1:x2], settings.size)


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so that the longer side is `size` (aspect ratio kept) and centre on a black size x size square."""
    from ..imaging import resize

    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise ValueError("cannot letterbox an empty image")
    scale = size / max(height, width)
    new_w = min(size, max(1, round(width * scale)))
    new_h = min(size, max(1, round(height * scale)))
    # Area averaging when shrinking (no aliasing); cubic interpolation keeps edges when enlarging.
    resized = resize(image, new_w, new_h, enlarge="cubic")
    canvas = np.zeros((size, size) + image.shape[2:], dtype=image.dtype)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas


class Recropper:
    """Face crops cut by another pipeline, cut again as a model card says: the face is found anew in each crop
    and the largest one cut with the card's margin. A model trained on one framing can fail on another's
    (`benchmarks/results/extraction_shift.md`), and the scan always cuts the card's way. A crop in which no
    face is found is kept as given and counted in `kept`. Safe to call from several threads."""

    def __init__(self, crop: FaceCrop, size: int, device: str = "cpu"):
        import threading

        from .detect import create_detector, detector_device

        self.detector = create_detector(crop.detector, detector_device(crop.detector, device))
        self.settings = CropSettings(size=size, margin=crop.margin, margin_px=crop.margin_px)
        self.kept = 0
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        with self._lock:  # one detector, shared by the decoding threads
            boxes = self.detector.detect_one(image)
            if not boxes:
                self.kept += 1
        if not boxes:
            return letterbox(image, self.settings.size)
        return crop_face(image, max(boxes, key=lambda box: box.area), self.settings)
