"""Which frames of a video to look at: N evenly spaced, every:K, fps:R, random:N or all."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterator

from ..errors import ConfigError, MediaError


# One description of the rules for every command's --frames help.
SAMPLING_HELP = "N evenly spaced frames, every:K (every K-th frame), fps:R (R per second), random:N or all"


@dataclass(frozen=True)
class FrameSampling:
    """Which frames of a video to use. Exactly one rule applies:
    `count` frames evenly spaced, every `every`-th frame, `fps` frames per second, the frames listed in
    `indices`, `random` frames drawn without replacement (seeded by `seed`, so a rerun draws the same), or all
    frames when all are None. `every`, `fps`, `indices` or `random` override the default `count`."""

    count: int | None = 32
    every: int | None = None
    fps: float | None = None
    indices: tuple[int, ...] | None = None
    random: int | None = None
    seed: tuple[int, ...] = (0,)

    def __post_init__(self):
        if sum(v is not None for v in (self.every, self.fps, self.indices, self.random)) > 1:
            raise ConfigError("frame sampling takes one rule: every=N, fps=R, random=N or indices, not several")
        if self.indices is not None:
            if any(i < 0 for i in self.indices):
                raise ConfigError("frame indices must not be negative")
            object.__setattr__(self, "indices", tuple(sorted(set(int(i) for i in self.indices))))
        if self.every is not None or self.fps is not None or self.indices is not None or self.random is not None:
            object.__setattr__(self, "count", None)  # the default count gives way to an explicit rule
        for name, value in (("count", self.count), ("every", self.every), ("fps", self.fps), ("random", self.random)):
            if value is not None and not value > 0:
                raise ConfigError(f"frame sampling {name} must be positive, got {value!r}")
        if self.count is not None and self.count != int(self.count):
            raise ConfigError(f"frame sampling count must be a whole number, got {self.count!r}")
        for name, value in (("every", self.every), ("random", self.random)):
            if value is not None and value != int(value):
                raise ConfigError(f"frame sampling {name} must be a whole number, got {value!r}")

    @classmethod
    def all(cls) -> "FrameSampling":
        return cls(count=None)

    @property
    def is_all(self) -> bool:
        return all(v is None for v in (self.count, self.every, self.fps, self.indices, self.random))

    @property
    def needs_frame_count(self) -> bool:
        """Rules that place their frames over the whole video (evenly spaced, random) need its length first."""
        return self.count is not None or self.random is not None

    def with_seed(self, *seed: int) -> "FrameSampling":
        """The same rule with another seed for its random draw (e.g. one per video)."""
        return replace(self, seed=tuple(int(s) for s in seed))

    @classmethod
    def parse(cls, text: "str | int | FrameSampling") -> "FrameSampling":
        """"32" (evenly spaced), "every:5", "fps:2", "random:10" or "all"."""
        if isinstance(text, FrameSampling):
            return text
        spec = str(text).strip().lower()
        try:
            if spec == "all":
                return cls.all()
            if spec.startswith("every:"):
                return cls(every=int(spec[6:]))
            if spec.startswith("fps:"):
                return cls(fps=float(spec[4:]))
            if spec.startswith("random:"):
                return cls(random=int(spec[7:]))
            if spec.startswith("count:"):
                spec = spec[6:]
            return cls(count=int(spec))
        except ValueError:
            raise ConfigError(
                f"frame sampling {text!r} not understood; use a number (e.g. 32), every:N, fps:R, random:N or all"
            ) from None

    @classmethod
    def option(cls, text: str) -> str:
        """An argparse type: the spec checked when the command line is read (before any model loads)."""
        import argparse

        try:
            cls.parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    def __str__(self) -> str:
        if self.indices is not None:
            return "indices:" + ",".join(map(str, self.indices))
        if self.every is not None:
            return f"every:{self.every}"
        if self.fps is not None:
            return f"fps:{self.fps:g}"
        if self.random is not None:
            return f"random:{self.random}"
        return "all" if self.count is None else str(self.count)


def sample_indices(frame_count: int, fps: float | None, sampling: FrameSampling) -> list[int]:
    """Frame indices (0-based, increasing) chosen by `sampling` from a video of `frame_count` frames."""
    if frame_count <= 0:
        return []
    if sampling.indices is not None:
        return [i for i in sampling.indices if i < frame_count]
    if sampling.needs_frame_count:
        return counted_indices(frame_count, sampling)
    indices = []
    for index in _open_ended_indices(sampling, fps):
        if index >= frame_count:
            break
        indices.append(index)
    return indices


def counted_indices(frame_count: int, sampling: FrameSampling) -> list[int]:
    """The indices of the rules that need the video's length: evenly spaced or a seeded random draw."""
    if sampling.random is not None:
        import numpy as np

        rng = np.random.default_rng(list(sampling.seed))
        return sorted(rng.choice(frame_count, size=min(int(sampling.random), frame_count), replace=False).tolist())
    return _evenly_spaced(frame_count, int(sampling.count))


def _evenly_spaced(frame_count: int, count: int) -> list[int]:
    if count >= frame_count:
        return list(range(frame_count))
    # The centre of each of `count` equal segments: never the very last frame, which is the one a
    # container's frame count most often gets wrong (and the one an encoder most often drops).
    return [int((j + 0.5) * frame_count / count) for j in range(count)]


def _open_ended_indices(sampling: FrameSampling, fps: float | None) -> Iterator[int]:
    """Indices for the rules that do not need the frame count (every, fps, all): an endless stream."""
    if sampling.every is not None:
        step: float = int(sampling.every)
    elif sampling.fps is not None:
        if not fps or fps <= 0:
            raise MediaError("the video's frame rate is unknown, so fps sampling cannot be used; use a count or every:N")
        step = max(1.0, fps / sampling.fps)
    else:
        step = 1
    j, last = 0, -1
    while True:
        index = int(math.floor(j * step + 0.5))
        if index > last:
            yield index
            last = index
        j += 1
