"""Self-blended images (Shiohara and Yamasaki, CVPR 2022): pseudo-fakes made from one real face.

Two copies of a real face are made slightly different (one gets a colour and a frequency change, the
source is shifted and rescaled by a few per cent) and the source is pasted onto the target through a soft
face-shaped mask. The result carries the traces a face swap leaves (a blending boundary, colour and
sharpness mismatch, a small misalignment) without any identity change, so a detector trained on
(real, self-blended) pairs learns those generic traces instead of one generator's fingerprints.

    blender = SelfBlend()
    fake, mask = blender(face_rgb, landmarks=None, rng=np.random.default_rng(0))
    (real, 0), (fake, 1) = make_pair(face_rgb, landmarks, rng)

`mask` is the per-pixel weight of the source in the fake: fake = source * mask + target * (1 - mask).
`SelfBlend.synthesize` returns everything (source, target, mask, ratio, what was changed) for inspection.

Landmarks are optional (x, y) points in image pixels: 5 points from MTCNN (left eye, right eye, nose,
left and right mouth corner) or a dense set (68 points or more) whose convex hull covers the face.
Without landmarks the face is assumed centred in the crop with `crop_margin` (see default_face_landmarks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

# The paper's blend ratios: a full paste half of the time, partial transparency otherwise.
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)

# Where MTCNN puts its 5 points inside its own face box (fractions of box width and height): medians of
# MTCNN run on 291 DFDC face crops, made left-right symmetric. The box spans mid-forehead to chin.
MTCNN_TEMPLATE = np.array(
    [[0.27, 0.35], [0.73, 0.35], [0.50, 0.535], [0.31, 0.755], [0.69, 0.755]], dtype=np.float32
)

# A landmark set with at least this many points is taken to outline the face (jaw line and brows), as
# 68-point and denser sets do; the 5 MTCNN points are grown into a face-shaped ellipse instead.
MIN_OUTLINE_POINTS = 17


def default_face_landmarks(size: int | tuple[int, int], margin: float = 0.3) -> np.ndarray:
    """Plausible MTCNN-style 5 points (left eye, right eye, nose, mouth corners) as a (5, 2) float32 array.

    Assumes the crop was made the way faces.crop_face makes it: a face box centred in the crop and
    widened by `margin` times its size on every side (0.3 is the project's default), frontal and upright.
    `size` is the crop side, or (height, width) for a non-square image. Crops cut tightly around the
    face (such as the public DFDC face crops, whose faces fill the frame) match margin=0 better.
    """
    height, width = (size, size) if np.isscalar(size) else size
    box_fraction = 1.0 / (1.0 + 2.0 * margin)
    relative = 0.5 + (MTCNN_TEMPLATE - 0.5) * box_fraction
    return (relative * np.array([width, height], dtype=np.float32)).astype(np.float32)


@dataclass
class BlendResult:
    """One self-blended image and the parts it was made from (all the same height and width)."""

    fake: np.ndarray  # uint8 HxWx3
    mask: np.ndarray  # float32 HxW in [0, 1]: weight of the source, ratio already applied
    source: np.ndarray  # uint8 HxWx3, the pasted copy (shifted/rescaled, maybe colour/frequency changed)
    target: np.ndarray  # uint8 HxWx3, the background copy
    ratio: float
    # What was done to which copy, e.g. ["target:rgb_shift", "target:sharpen", "source:scale(...)+shift(...)"]
    changes: list[str] = field(default_factory=list)


class SelfBlend:
    """Callable maker of self-blended images: (image, landmarks=None, rng=None) -> (fake, mask).

    Options switch parts off (useful for tests and ablations) or bound the random changes:
      color / frequency: whether one copy gets a colour change / a frequency change;
      max_shift: largest source translation as a fraction of the face size; max_scale: largest relative
      source rescaling (independently in x and y); ratios: blend ratios to draw from;
      deform: whether the mask outline is randomly warped and grown or shrunk;
      crop_margin: the margin assumed when no landmarks are given (see default_face_landmarks).
    Pass an np.random.Generator as rng for reproducible output; without one, fresh OS entropy is used,
    so copies of this object in DataLoader workers never repeat each other.
    """

    def __init__(self, *, color: bool = True, frequency: bool = True, max_shift: float = 0.03,
                 max_scale: float = 0.05, ratios: Sequence[float] = BLEND_RATIOS, deform: bool = True,
                 crop_margin: float = 0.3):
        if not ratios or any(not 0.0 < r <= 1.0 for r in ratios):
            raise ValueError(f"blend ratios must lie in (0, 1], got {tuple(ratios)}")
        if max_shift < 0 or not 0 <= max_scale < 0.5 or crop_margin < 0:
            raise ValueError("max_shift, max_scale (< 0.5) and crop_margin must not be negative")
        self.color = color
        self.frequency = frequency
        self.max_shift = float(max_shift)
        self.max_scale = float(max_scale)
        self.ratios = tuple(float(r) for r in ratios)
        self.deform = deform
        self.crop_margin = float(crop_margin)

    def __call__(self, image: np.ndarray, landmarks: np.ndarray | None = None,
                 rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        result = self.synthesize(image, landmarks, rng)
        return result.fake, result.mask

    def __repr__(self) -> str:
        return (f"SelfBlend(color={self.color}, frequency={self.frequency}, max_shift={self.max_shift}, "
                f"max_scale={self.max_scale}, ratios={self.ratios}, deform={self.deform}, "
                f"crop_margin={self.crop_margin})")

    def synthesize(self, image: np.ndarray, landmarks: np.ndarray | None = None,
                   rng: np.random.Generator | None = None) -> BlendResult:
        image = _check_image(image)
        rng = rng if rng is not None else np.random.default_rng()
        height, width = image.shape[:2]
        points = self._face_points(landmarks, (height, width), rng)

        hard = face_region(points, (height, width), rng)
        face_size = _face_size(hard)
        if self.deform:
            hard = deform_mask(hard, face_size, rng)
        soft = soften_mask(hard, face_size, rng)

        source, target, changes = self._two_copies(image, rng)
        source = self._misalign(source, hard, face_size, rng, changes)

        ratio = float(self.ratios[rng.integers(len(self.ratios))])
        mask = (soft * np.float32(ratio)).astype(np.float32)
        fake = blend(source, target, mask)
        return BlendResult(fake=fake, mask=mask, source=source, target=target, ratio=ratio, changes=changes)

    def _face_points(self, landmarks, shape, rng) -> np.ndarray:
        if landmarks is not None:
            points = np.asarray(landmarks, dtype=np.float32).reshape(-1, 2)
            if len(points) == 5 or len(points) >= MIN_OUTLINE_POINTS:
                return points
            raise ValueError(f"landmarks must be 5 MTCNN points or an outline of >= {MIN_OUTLINE_POINTS} points, "
                             f"got {len(points)}")
        # No landmarks: the face is assumed centred; jitter the assumed points a little so that the
        # fitted ellipse varies in place, size and aspect from one call to the next.
        points = default_face_landmarks(shape, self.crop_margin)
        height, width = shape
        scale = rng.uniform(0.92, 1.08, size=2).astype(np.float32)
        centre = np.array([width / 2, height / 2], dtype=np.float32)
        offset = rng.uniform(-0.02, 0.02, size=2).astype(np.float32) * [width, height]
        return (points - centre) * scale + centre + offset

    def _two_copies(self, image, rng) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(source, target, changes): one copy, drawn at random, gets the colour and frequency changes."""
        changed_copy = "source" if rng.random() < 0.5 else "target"
        changes: list[str] = []
        changed = image
        if self.color:
            changed = random_color_change(changed, rng, changes)
        if self.frequency:
            changed = random_frequency_change(changed, rng, changes)
        changes = [f"{changed_copy}:{name}" for name in changes]
        if changed_copy == "source":
            return changed.copy(), image.copy(), changes
        return image.copy(), changed.copy(), changes

    def _misalign(self, source, hard_mask, face_size, rng, changes) -> np.ndarray:
        if self.max_shift == 0 and self.max_scale == 0:
            return source
        moments = cv2.moments(hard_mask, binaryImage=True)
        area = moments["m00"]
        centre = ((moments["m10"] / area, moments["m01"] / area) if area > 0
                  else (source.shape[1] / 2, source.shape[0] / 2))
        scale = 1.0 + rng.uniform(-self.max_scale, self.max_scale, size=2)
        shift = rng.uniform(-self.max_shift, self.max_shift, size=2) * face_size
        changes.append(f"source:scale({scale[0]:.3f},{scale[1]:.3f})+shift({shift[0]:.1f},{shift[1]:.1f})")
        return shift_and_scale(source, centre, scale, shift)


def make_pair(image: np.ndarray, landmarks: np.ndarray | None = None, rng: np.random.Generator | None = None,
              blender: SelfBlend | None = None) -> tuple[tuple[np.ndarray, int], tuple[np.ndarray, int]]:
    """A training pair from one real face: ((real image, 0), (self-blended fake, 1))."""
    blender = blender if blender is not None else SelfBlend()
    fake, _mask = blender(image, landmarks, rng)
    return (image, 0), (fake, 1)


def blend(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """source * mask + target * (1 - mask), rounded to uint8; where mask is 0 the target is kept exactly."""
    fake = target.copy()
    x, y, w, h = cv2.boundingRect((mask > 0).astype(np.uint8))
    if w == 0 or h == 0:
        return fake
    # Only the mask's bounding box can change: mixing there alone is exact and several times cheaper.
    region = (slice(y, y + h), slice(x, x + w))
    weight = mask[region][..., None]
    base = target[region].astype(np.float32)
    mixed = base + (source[region].astype(np.float32) - base) * weight
    fake[region] = _to_uint8(mixed)
    return fake


# ---- mask ------------------------------------------------------------------------------------------------

def face_region(points: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A hard (0/1 float32) face mask: convex hull of an outline, or an ellipse grown from 5 MTCNN points."""
    height, width = shape
    mask = np.zeros((height, width), dtype=np.uint8)
    if len(points) >= MIN_OUTLINE_POINTS:
        hull = cv2.convexHull(np.round(points).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1)
    else:
        centre, axes, angle = ellipse_from_five_points(points, rng)
        # Sub-pixel precision (shift=4) keeps small faces from snapping to whole pixels.
        cv2.ellipse(mask, _fixed(centre), _fixed(axes), angle, 0, 360, 1, thickness=-1, lineType=cv2.LINE_8,
                    shift=4)
    if not mask.any():
        raise ValueError("the landmarks give an empty face region (are they in this image's pixel coordinates?)")
    return mask.astype(np.float32)


def ellipse_from_five_points(points: np.ndarray, rng: np.random.Generator):
    """An ellipse covering brows to chin from (left eye, right eye, nose, left mouth, right mouth).

    The face's up-down axis runs from the eye midpoint to the mouth midpoint. In eye-mouth distances, the
    chin lies about 0.6 below the mouth and the brows about 0.4 above the eyes (MTCNN on DFDC faces); the
    cheek edges lie about one eye distance either side of the axis. The reach is drawn at random: the top
    between the brows and mid-forehead, the bottom between below the lip and the chin, the sides inside
    the cheek edges.
    """
    left_eye, right_eye, _nose, left_mouth, right_mouth = points[:5].astype(np.float64)
    eyes, mouth = (left_eye + right_eye) / 2, (left_mouth + right_mouth) / 2
    eye_distance = max(np.linalg.norm(right_eye - left_eye), 1.0)
    down = mouth - eyes
    length = float(np.linalg.norm(down))
    down = down / length if length > 0 else np.array([0.0, 1.0])
    eye_mouth = max(length, 1.0)
    top = eyes - down * eye_mouth * rng.uniform(0.45, 0.9)
    bottom = mouth + down * eye_mouth * rng.uniform(0.4, 0.65)
    centre = (top + bottom) / 2
    half_height = np.linalg.norm(bottom - top) / 2
    half_width = eye_distance * rng.uniform(0.75, 1.0)
    # cv2.ellipse's angle turns the first (x) axis; the face's sideways axis is perpendicular to `down`.
    angle = float(np.degrees(np.arctan2(down[1], down[0])) - 90.0)
    return centre, (half_width, half_height), angle


def deform_mask(hard: np.ndarray, face_size: float, rng: np.random.Generator) -> np.ndarray:
    """Warp the outline with a smooth random displacement field, then grow or shrink it a little."""
    height, width = hard.shape
    grid = int(rng.integers(3, 6))
    amplitude = face_size * rng.uniform(0.01, 0.05)
    # Coarse random offsets, upsampled smoothly: a gentle, irregular wobble of the outline.
    coarse = rng.uniform(-amplitude, amplitude, size=(2, grid, grid)).astype(np.float32)
    dx = cv2.resize(coarse[0], (width, height), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(coarse[1], (width, height), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    warped = cv2.remap(hard, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # Blur then threshold: a smooth erosion (level > 0.5) or dilation (level < 0.5) of the warped outline.
    kernel = _odd(face_size * rng.uniform(0.05, 0.15))
    level = rng.uniform(0.25, 0.75)
    smoothed = cv2.GaussianBlur(warped, (kernel, kernel), 0)
    grown = (smoothed > level).astype(np.float32)
    # A sliver of a face could vanish under the warp and the erosion; keep the undeformed outline then.
    return grown if grown.any() else hard


def soften_mask(hard: np.ndarray, face_size: float, rng: np.random.Generator) -> np.ndarray:
    """Blur the mask edge with a random odd Gaussian kernel; values in [0, 1] and 1 deep inside."""
    kernel = _odd(face_size * rng.uniform(0.08, 0.3))
    soft = cv2.GaussianBlur(hard, (kernel, kernel), 0)
    return np.clip(soft, 0.0, 1.0).astype(np.float32)


def _face_size(mask: np.ndarray) -> float:
    """Geometric mean of the mask's bounding-box sides: the scale for shifts, warps and blur kernels."""
    _x, _y, width, height = cv2.boundingRect((mask > 0).astype(np.uint8))
    return float(np.sqrt(max(width, 1) * max(height, 1)))


def _odd(value: float) -> int:
    size = max(3, int(round(value)))
    return size if size % 2 else size + 1


def _fixed(values) -> tuple[int, int]:
    return tuple(int(round(v * 16)) for v in values)


# ---- source / target changes -----------------------------------------------------------------------------

def shift_and_scale(image: np.ndarray, centre: tuple[float, float], scale, shift) -> np.ndarray:
    """Rescale about `centre` by (sx, sy) and translate by (dx, dy) pixels; borders mirror the image."""
    sx, sy = float(scale[0]), float(scale[1])
    cx, cy = centre
    matrix = np.array([[sx, 0.0, cx - sx * cx + shift[0]], [0.0, sy, cy - sy * cy + shift[1]]], dtype=np.float64)
    return cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def random_color_change(image: np.ndarray, rng: np.random.Generator, changes: list[str]) -> np.ndarray:
    """Some of: per-channel RGB shift, hue/saturation change, brightness/contrast change (at least one)."""
    steps = [rgb_shift, hue_saturation, brightness_contrast]
    chosen = [step for step in steps if rng.random() < 0.5]
    if not chosen:
        chosen = [steps[int(rng.integers(len(steps)))]]
    out = image
    for step in chosen:
        out = step(out, rng)
        changes.append(step.__name__)
    return out


def random_frequency_change(image: np.ndarray, rng: np.random.Generator, changes: list[str]) -> np.ndarray:
    """Either blur away fine detail (downscale then upscale) or exaggerate it (sharpen)."""
    step = downscale_upscale if rng.random() < 0.5 else sharpen
    changes.append(step.__name__)
    return step(image, rng)


def rgb_shift(image: np.ndarray, rng: np.random.Generator, limit: float = 10.0) -> np.ndarray:
    offsets = rng.uniform(-limit, limit, size=3)
    # cv2.add with a scalar rounds and saturates in one pass.
    return cv2.add(image, (*map(float, offsets), 0.0))


def hue_saturation(image: np.ndarray, rng: np.random.Generator, hue_limit: float = 5.0,
                   saturation_limit: float = 0.2) -> np.ndarray:
    """Turn the hue by up to hue_limit degrees and scale saturation by up to +-saturation_limit."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
    # HSV_FULL stores hue as 0..255 for 0..360 degrees.
    hsv[..., 0] = np.mod(hsv[..., 0] + rng.uniform(-hue_limit, hue_limit) * 256.0 / 360.0, 256.0)
    hsv[..., 1] *= 1.0 + rng.uniform(-saturation_limit, saturation_limit)
    hsv = np.clip(np.rint(hsv), 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)


def brightness_contrast(image: np.ndarray, rng: np.random.Generator, limit: float = 0.1) -> np.ndarray:
    """Contrast about the image mean times (1 +- limit), brightness +- limit of full scale."""
    contrast = 1.0 + rng.uniform(-limit, limit)
    brightness = rng.uniform(-limit, limit) * 255.0
    mean = float(image.mean())
    # (pixel - mean) * contrast + mean + brightness, rounded and saturated by OpenCV.
    return cv2.addWeighted(image, contrast, image, 0.0, mean * (1.0 - contrast) + brightness)


def downscale_upscale(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape[:2]
    factor = rng.uniform(0.45, 0.85)
    small = (max(1, round(width * factor)), max(1, round(height * factor)))
    down = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
    up_method = (cv2.INTER_LINEAR, cv2.INTER_CUBIC)[int(rng.integers(2))]
    return cv2.resize(down, (width, height), interpolation=up_method)


def sharpen(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unsharp masking: add back a multiple of the detail a small blur removes."""
    pixels = image.astype(np.float32)
    blurred = cv2.GaussianBlur(pixels, (0, 0), rng.uniform(0.8, 1.6))
    return _to_uint8(pixels + (pixels - blurred) * rng.uniform(0.3, 1.0))


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Round and saturate float pixels to uint8 (in place on `pixels`)."""
    np.rint(pixels, out=pixels)
    np.clip(pixels, 0, 255, out=pixels)
    return pixels.astype(np.uint8)


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"self-blending needs an RGB uint8 HxWx3 image, got {got}")
    if min(image.shape[:2]) < 8:
        raise ValueError(f"image {image.shape[1]}x{image.shape[0]} is too small to self-blend (need >= 8 px)")
    return np.ascontiguousarray(image)
