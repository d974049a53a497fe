"""Frame -> track -> video aggregation strategies, verdicts and calibration."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .probability import apply_temperature
from .registry import Registry


def calibrated_probability(logits: Sequence[float] | np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """sigmoid(logit / T): temperature scaling fitted on validation data and stored in the model card."""
    return apply_temperature(logits, temperature)


def mean_probability(probs: Sequence[float]) -> float:
    return float(np.mean(probs))


def confident_mean(probs: Sequence[float], high: float = 0.8, low: float = 0.2) -> float:
    """The DFDC winner's rule: when enough frames are confidently fake, average only those (one fake
    stretch is enough to call a video fake); when nearly all are confidently real, average those; else mean.
    The original's counts (more than 32/2.5 and more than 11 of 32 frames) are scaled to the number of
    frames; scaled, the first implies the second."""
    p = np.asarray(probs, dtype=np.float64)
    n = len(p)
    fakes = p[p > high]
    if len(fakes) > n / 2.5:
        return float(fakes.mean())
    reals = p[p < low]
    if len(reals) > 0.9 * n:
        return float(reals.mean())
    return float(p.mean())


@dataclass(frozen=True)
class Aggregation:
    """How face probabilities become one per track (person) and one per video.

    Calling the strategy on a flat list treats it as a single track, so evaluation code can use the
    same registry for frame->video aggregation when it has no track ids."""

    name: str
    track: Callable[[Sequence[float]], float]
    video: Callable[[Sequence[Sequence[float]]], float]
    description: str

    def __call__(self, probs: Sequence[float]) -> float:
        return self.video([list(probs)])


AGGREGATORS: Registry[Aggregation] = Registry("aggregation strategy")


def _all_faces(tracks: Sequence[Sequence[float]]) -> list[float]:
    return [p for track in tracks for p in track]


AGGREGATORS.register("mean", Aggregation(
    "mean", mean_probability, lambda tracks: mean_probability(_all_faces(tracks)),
    "mean of every face's probability in the video"))
AGGREGATORS.register("confident", Aggregation(
    "confident", confident_mean, lambda tracks: confident_mean(_all_faces(tracks)),
    "when enough faces are confidently fake (or real), the mean of those only; else the mean of all"))
AGGREGATORS.register("max_track", Aggregation(
    "max_track", mean_probability, lambda tracks: max(mean_probability(t) for t in tracks),
    "each person scored by the mean of their faces; the video is as fake as its most fake person"))

DEFAULT_AGGREGATION = "max_track"


def judged_tracks(unsure_reasons: Sequence[Sequence[str]]) -> list[bool]:
    """Which people count towards a video's verdict: those whose faces the model can judge. A person it cannot
    (faces too small, blurred or turned away: dfdetect.quality) is left out when anyone else is in the video,
    so that a face in the background, upscaled from a few pixels, does not make a video of a real person fake;
    when no one can be judged, everyone counts (and the video is unsure)."""
    judged = [not reasons for reasons in unsure_reasons]
    return judged if any(judged) else [True] * len(judged)


def verdict(probability: float | None, threshold: float) -> str:
    if probability is None or math.isnan(probability):
        return "no_face"
    return "fake" if probability >= threshold else "real"
