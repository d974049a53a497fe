"""Training augmentation chains (albumentations), one registry entry per recipe.

Every chain takes and returns an RGB uint8 HxWx3 image of the size it was built for. Chains run on the
letterboxed crop (aspect-preserving resize + zero pad to the model input), as seed 002 describes: "all
images resized ... and padded with 0 value before an augmentation was applied".

    chain = build_augmentation("seed002_default", size=224)
    out = chain(image)          # RGB uint8, same shape
    chain.reseed(1234)          # DataLoader workers call this so they do not repeat each other
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from ..registry import Registry

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402  (after the offline default above)
import cv2  # noqa: E402

AUGMENTATIONS: Registry[Callable[[int], list]] = Registry("augmentation chain")

BLACK = cv2.BORDER_CONSTANT


class AugmentChain:
    """A named albumentations pipeline as a plain image -> image callable."""

    def __init__(self, name: str, size: int, transforms: list):
        self.name = name
        self.size = size
        self._compose = A.Compose(transforms) if transforms else None

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self._compose is None:
            return image
        return self._compose(image=image)["image"]

    def reseed(self, seed: int) -> None:
        """Give this copy of the chain its own random stream (per DataLoader worker and epoch)."""
        if self._compose is not None:
            self._compose.set_random_seed(int(seed) % 2**32)

    def __repr__(self) -> str:
        return f"AugmentChain({self.name!r}, size={self.size})"


def build_augmentation(name: str, size: int) -> AugmentChain:
    """The chain registered as `name`, built for `size` x `size` inputs (ConfigError for unknown names)."""
    return AugmentChain(name, size, AUGMENTATIONS.get(name)(size))


def augmentation_names() -> list[str]:
    return AUGMENTATIONS.names()


class RandomBlackout(A.ImageOnlyTransform):
    """Blacks out one part of the face: a half (left, right, top or bottom) or a horizontal band.

    Seed 000 ("blackout random part of the image") follows the DFDC winner, which blacked out facial
    parts found by landmarks; crops here carry no landmarks, so the parts are the halves and a band
    at a random height (eyes, nose or mouth line on a centred face).
    """

    PARTS = ("left", "right", "top", "bottom", "band")

    def __init__(self, p: float = 0.5):
        super().__init__(p=p)

    def get_params_dependent_on_data(self, params, data):
        height, width = params["shape"][:2]
        part = self.py_random.choice(self.PARTS)
        if part == "left":
            box = (0, height, 0, width // 2)
        elif part == "right":
            box = (0, height, width // 2, width)
        elif part == "top":
            box = (0, height // 2, 0, width)
        elif part == "bottom":
            box = (height // 2, height, 0, width)
        else:
            band = max(1, height // 6)
            top = self.py_random.randint(height // 4, max(height // 4, 3 * height // 4 - band))
            box = (top, top + band, 0, width)
        return {"box": box}

    def apply(self, img, box=(0, 0, 0, 0), **params):
        y1, y2, x1, x2 = box
        out = img.copy()
        out[y1:y2, x1:x2] = 0
        return out

    def get_transform_init_args_names(self):
        return ("p",)


def _hole(size: int, pixels: int) -> int:
    # Paper sizes are in pixels at the paper's input size; tiny test inputs cannot take a 64 px hole.
    return max(1, min(pixels, size // 2))


def _shift_scale_rotate(p: float = 0.5) -> A.BasicTransform:
    # ShiftScaleRotate of the DFDC-winner chain (shift 0.1, scale 0.2, rotate 10) with black borders.
    return A.Affine(
        translate_percent=(-0.1, 0.1), scale=(0.8, 1.2), rotate=(-10, 10), border_mode=BLACK, fill=0, p=p
    )


def _seed002_default(size: int) -> list:
    """Seed 002 table 2.2, in its order. The table's probabilities for rows 3-5 did not survive in the
    paper's text; the chain is the DFDC winner's, so its values fill the gap: blur/sharpen 0.05,
    horizontal flip 0.5, brightness-contrast / hue-saturation 0.7."""
    return [
        A.ImageCompression(quality_range=(60, 100), p=0.5),
        A.GaussNoise(std_range=(0.02, 0.1), p=0.1),
        A.OneOf([A.GaussianBlur(blur_limit=(3, 3)), A.Sharpen()], p=0.05),
        A.HorizontalFlip(p=0.5),
        A.OneOf([A.RandomBrightnessContrast(), A.HueSaturationValue()], p=0.7),
        A.ToGray(p=0.2),
        _shift_scale_rotate(p=0.5),
    ]


def _coarse_dropout(size: int, p: float = 0.5) -> A.BasicTransform:
    """Seed 002: two (possibly overlapping) 64x64 black patches."""
    hole = _hole(size, 64)
    return A.CoarseDropout(
        num_holes_range=(2, 2), hole_height_range=(hole, hole), hole_width_range=(hole, hole), fill=0, p=p
    )


def _grid_mask(size: int, p: float = 0.5) -> A.BasicTransform:
    """Seed 002's GridMask: a 5x5 pattern whose cell size follows the input size (GridDropout here)."""
    return A.GridDropout(ratio=0.5, holes_number_xy=(5, 5), random_offset=True, fill=0, p=p)


@AUGMENTATIONS.register("none")
def _none(size: int) -> list:
    return []


@AUGMENTATIONS.register("seed000")
def _seed000(size: int) -> list:
    """Seed 000: rotation, flips, blackout of a random part, Gaussian noise, compression, grayscale,
    isotropic resize (probabilities of the DFDC winner's chain, which the paper follows)."""
    return [
        A.ImageCompression(quality_range=(60, 100), p=0.5),
        A.GaussNoise(std_range=(0.02, 0.1), p=0.1),
        A.GaussianBlur(blur_limit=(3, 3), p=0.05),
        A.HorizontalFlip(p=0.5),
        # The isotropic resize with a random interpolation, applied as a down-then-up scaling of the
        # already letterboxed crop (the crop itself is resized once, by the shared letterbox).
        A.Downscale(
            scale_range=(0.5, 0.9),
            interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_CUBIC},
            p=0.3,
        ),
        A.OneOf([A.RandomBrightnessContrast(), A.FancyPCA(), A.HueSaturationValue()], p=0.7),
        A.ToGray(p=0.2),
        _shift_scale_rotate(p=0.5),
        RandomBlackout(p=0.3),
    ]


@AUGMENTATIONS.register("seed002_default")
def _seed002(size: int) -> list:
    return _seed002_default(size)


@AUGMENTATIONS.register("seed002_coarse_dropout")
def _seed002_coarse(size: int) -> list:
    return _seed002_default(size) + [_coarse_dropout(size, p=0.5)]


@AUGMENTATIONS.register("seed002_gridmask")
def _seed002_grid(size: int) -> list:
    return _seed002_default(size) + [_grid_mask(size, p=0.5)]


@AUGMENTATIONS.register("seed003")
def _seed003(size: int) -> list:
    """Seed 003: horizontal flip, rotation up to 10 degrees, colour jitter (brightness, contrast,
    saturation, hue); applied every time, as torchvision's transforms of the paper are."""
    return [
        A.HorizontalFlip(p=0.5),
        A.Rotate(limit=(-10, 10), border_mode=BLACK, fill=0, p=1.0),
        A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05, p=1.0),
    ]


@AUGMENTATIONS.register("strong")
def _strong(size: int) -> list:
    """The default model's chain: seed 002's chain made harder for unseen compression, resolution
    and colour: CoarseDropout, JPEG quality 30-100, downscale-upscale, blur, noise, colour."""
    return [
        A.ImageCompression(quality_range=(30, 100), p=0.6),
        A.Downscale(
            scale_range=(0.3, 0.9),
            interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR},
            p=0.3,
        ),
        A.OneOf(
            [A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=(3, 5)), A.Sharpen()], p=0.25
        ),
        A.OneOf([A.GaussNoise(std_range=(0.02, 0.12)), A.ISONoise()], p=0.25),
        A.HorizontalFlip(p=0.5),
        A.OneOf(
            [A.RandomBrightnessContrast(), A.HueSaturationValue(), A.ColorJitter(hue=(-0.05, 0.05))],
            p=0.7,
        ),
        A.ToGray(p=0.1),
        _shift_scale_rotate(p=0.5),
        _coarse_dropout(size, p=0.5),
    ]


@AUGMENTATIONS.register("multisource")
def _multisource(size: int) -> list:
    """The default v2 model's chain, for pools of several sources: the strong chain with its fixed JPEG and
    downscale replaced by resolution and codec variety (0.25-1x, then JPEG 30-95 or H.264 CRF 20-40, then back
    up), applied to most crops so that image quality says nothing about the label."""
    from .degrade import ResolutionAndCodec

    strong = [t for t in _strong(size) if not isinstance(t, (A.ImageCompression, A.Downscale))]
    return [ResolutionAndCodec(p=0.7)] + strong


@AUGMENTATIONS.register("multisource_heavy_codec")
def _multisource_heavy_codec(size: int) -> list:
    """The multisource chain with harder compression, for footage like FF++ c40: JPEG 20-95 or H.264 CRF 20-45,
    on 90% of the crops."""
    from .degrade import ResolutionAndCodec

    codec = ResolutionAndCodec(jpeg_quality=(20, 95), h264_crf=(20, 45), p=0.9)
    return [codec] + [t for t in _multisource(size) if not isinstance(t, ResolutionAndCodec)]


@AUGMENTATIONS.register("multisource_c40")
def _multisource_c40(size: int) -> list:
    """The multisource chain with a third of its codec draws like FF++ c40 footage: little down-scaling (0.6-1x)
    but hard compression (JPEG 15-40 or H.264 CRF 36-46). Still 30% of crops untouched, as in multisource; hard
    compression never meets the smallest scales, where it would leave no face to judge."""
    from .degrade import ResolutionAndCodec

    hard = ResolutionAndCodec(scale_range=(0.6, 1.0), jpeg_quality=(15, 40), h264_crf=(36, 46), p=0.5)
    codec = A.OneOf([ResolutionAndCodec(p=1.0), hard], p=0.7)  # OneOf weighs its members by their p: 2 to 1
    return [codec] + [t for t in _multisource(size) if not isinstance(t, ResolutionAndCodec)]
