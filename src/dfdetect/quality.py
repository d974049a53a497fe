"""Is a face inside what the model knows? Checks that make a scan say "unsure" beside its verdict.

A classifier scores any crop it is given, but its score means less on faces unlike its training faces. Three
checks, per face, from the frame and the detector's box:
  small        the face's shorter side is far below the training faces' (upscaling invents the texture the
               model reads: DFDC crops came from faces of 63 px at the 1st percentile, 155 px median)
  blurred      the face region, shrunk to 128 px, has a Laplacian variance below what about 98% of the DFDC
               training crops have (motion blur, defocus, heavy smoothing hide blending traces and fake them alike)
  not frontal  the nose sits far off the line between the eyes (a turned head; needs the detector's
               landmarks, so Haar boxes skip this check)
A person (track) is unsure when most of its faces fail one check; a video when any person it scored is. One
check is of the whole video:
  compressed   an H.264 stream of few bits per pixel, on average and on its keyframes (a still scene has few
               on average only): the 90 shared FF++ c23 clips have 0.025-0.106 and 0.22-1.08, 26 of them
               re-encoded at CRF 38 (towards FF++ c40) 0.004-0.017 and 0.07-0.19, where the model misses more
               fakes (benchmarks/results/recompressed_clips.md); other codecs spend bits otherwise, unchecked
The verdict is still given: the flag says how far to trust it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

SHARPNESS_SIDE = 128  # faces are compared at one size, so that sharpness does not depend on resolution


@dataclass(frozen=True)
class InputLimits:
    # About half the 5th percentile of the training faces' width (DFDC 89 px, FF++ 63 px; input_limits.md).
    min_face_px: float = 40.0
    # Laplacian variance at 128 px: DFDC training crops 4.2 at the 1st percentile and 5.8 at the 2nd, UTKFace
    # photos 11.1 and 14.1 (benchmarks/results/input_limits.md).
    min_sharpness: float = 5.0
    # |nose - eye midpoint| along the eye line, over the eye distance: ~0-0.15 frontal, above 0.5 in profile.
    max_yaw: float = 0.4
    # Share of a person's faces that must fail a check for the person to be unsure.
    min_share: float = 0.5
    # H.264 bits per pixel of each frame on average, and of a keyframe: below every shared FF++ c23 clip (0.025
    # and 0.22 at least) and DFDC clip (0.040, 0.17), above every clip re-encoded at CRF 38 (0.017, 0.19 at most)
    # and most at CRF 32 (medians 0.014, 0.24). A still photo as a clip at CRF 23: 0.014 but 1.01.
    min_bits_per_pixel: float = 0.02
    min_keyframe_bits_per_pixel: float = 0.2


COMPRESSION_CHECKED_CODECS = ("h264",)  # the codec the limit was measured on


@dataclass(frozen=True)
class FaceQuality:
    side_px: float
    sharpness: float
    yaw: float | None  # None without landmarks

    def issues(self, limits: InputLimits) -> set[str]:
        out = set()
        if self.side_px < limits.min_face_px:
            out.add("small")
        if self.sharpness < limits.min_sharpness:
            out.add("blurred")
        if self.yaw is not None and self.yaw > limits.max_yaw:
            out.add("not_frontal")
        return out


def measure_face(image: np.ndarray, box) -> FaceQuality:
    """Size, sharpness and head turn of one detected face in an RGB frame."""
    return FaceQuality(side_px=float(min(box.width, box.height)), sharpness=sharpness(image, box),
                       yaw=yaw(box.landmarks))


def sharpness(image: np.ndarray, box) -> float:
    """Variance of the Laplacian of the face region in grey, resized to 128 x 128 (higher is sharper)."""
    from .faces.crop import BOX_ONLY, crop_region
    from .imaging import laplacian, resize, to_grey

    x1, y1, x2, y2 = crop_region(box, BOX_ONLY, image.shape[1], image.shape[0])
    if x2 - x1 < 2 or y2 - y1 < 2:
        return 0.0
    grey = resize(to_grey(image[y1:y2, x1:x2]), SHARPNESS_SIDE, SHARPNESS_SIDE, enlarge="linear")
    return float(laplacian(grey).var())


def yaw(landmarks) -> float | None:
    """How far the nose is from the eyes' midpoint along the eye line, in eye distances (0: frontal)."""
    if landmarks is None:
        return None
    points = np.asarray(landmarks, dtype=float)
    if points.shape != (5, 2):
        return None
    left_eye, right_eye, nose = points[0], points[1], points[2]
    eye_line = right_eye - left_eye
    distance = float(np.hypot(*eye_line))
    if distance < 1e-6:
        return None
    offset = float(np.dot(nose - (left_eye + right_eye) / 2, eye_line / distance))
    return abs(offset) / distance


def unsure_reasons(faces: Sequence[FaceQuality], limits: InputLimits = InputLimits()) -> list[str]:
    """The checks that most of a person's faces fail, each as a short sentence with the measured value."""
    if not faces:
        return []
    failed = [face.issues(limits) for face in faces]
    share = {issue: sum(issue in f for f in failed) / len(faces) for issue in ("small", "blurred", "not_frontal")}
    reasons = []
    if share["small"] >= limits.min_share:
        median = float(np.median([f.side_px for f in faces]))
        reasons.append(f"face small ({median:.0f} px; the model learnt from faces of about 60-300 px)")
    if share["blurred"] >= limits.min_share:
        median = float(np.median([f.sharpness for f in faces]))
        reasons.append(f"face blurred (sharpness {median:.1f}, below {limits.min_sharpness:g})")
    if share["not_frontal"] >= limits.min_share:
        turned = sum("not_frontal" in f for f in failed)
        reasons.append(f"face turned away in {turned} of {len(faces)} frames (the model learnt from frontal faces)")
    return reasons


def compression_reason(info, limits: InputLimits = InputLimits()) -> str | None:
    """A sentence when a video (a media.MediaInfo) was compressed harder than the model reads reliably."""
    from .errors import MediaError
    from .media.video import keyframe_bits_per_pixel

    bits = info.bits_per_pixel if info.kind == "video" and info.codec in COMPRESSION_CHECKED_CODECS else None
    if bits is None or bits >= limits.min_bits_per_pixel:
        return None
    try:
        keyframe = keyframe_bits_per_pixel(info.path)  # read only when the average is low: it opens the file again
    except MediaError:  # gone or unreadable since the scan read it: the verdict stands, unchecked
        return None
    if keyframe is None or keyframe >= limits.min_keyframe_bits_per_pixel:
        return None
    return (f"video heavily compressed ({bits:.3f} bits per pixel, {keyframe:.2f} in a keyframe; the model misses "
            "more fakes in such footage)")
