"""Which frames of a video to look at: N evenly spaced, every:K, fps:R or all."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

from ..errors import ConfigError, MediaError


@dataclass(frozen=True)
class FrameSampling:
    """Which frames of a video to use. Exactly one rule applies:
    `count` frames evenly spaced, every `every`-th frame, `fps` frames per second, the frames listed in
    `indices`, or all frames when all are None. `every`, `fps` or `indices` override the default `count`."""

    count: int | None = 32
    every: int | None = None
    fps: float | None = None
    indices: tuple[int, ...] | None = None

    def __post_init__(self):
        if sum(v is not None for v in (self.every, self.fps, self.indices)) > 1:
            raise ConfigError("frame sampling takes one rule: every=N, fps=R or indices, not several")
        if self.indices is not None:
            if any(i < 0 for i in self.indices):
                raise ConfigError("frame indices must not be negative")
            object.__setattr__(self, "indices", tuple(sorted(set(int(i) for i in self.indices))))
        if self.every is not None or self.fps is not None or self.indices is not None:
            object.__setattr__(self, "count", None)  # the default count gives way to an explicit rule
        for name, value in (("count", self.count), ("every", self.every), ("fps", self.fps)):
            if value is not None and not value > 0:
                raise ConfigError(f"frame sampling {name} must be positive, got {value!r}")
        if self.count is not None and self.count != int(self.count):
            raise ConfigError(f"frame sampling count must be a whole number, got {self.count!r}")
        if self.every is not None and self.every != int(self.every):
            raise ConfigError(f"frame sampling every must be a whole number, got {self.every!r}")

    @classmethod
    def all(cls) -> "FrameSampling":
        return cls(count=None)

    @property
    def is_all(self) -> bool:
        return self.count is None and self.every is None and self.fps is None and self.indices is None

    @classmethod
    def parse(cls, text: "str | int | FrameSampling") -> "FrameSampling":
        """"32" (evenly spaced), "every:5", "fps:2" or "all"."""
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
            if spec.startswith("count:"):
                spec = spec[6:]
            return cls(count=int(spec))
        except ValueError:
            raise ConfigError(
                f"frame sampling {text!r} not understood; use a number (e.g. 32), every:N, fps:R or all"
            ) from None

    def __str__(self) -> str:
        if self.indices is not None:
            return "indices:" + ",".join(map(str, self.indices))
        if self.every is not None:
            return f"every:{self.every}"
        if self.fps is not None:
            return f"fps:{self.fps:g}"
        return "all" if self.count is None else str(self.count)


def sample_indices(frame_count: int, fps: float | None, sampling: FrameSampling) -> list[int]:
    """Frame indices (0-based, increasing) chosen by `sampling` from a video of `frame_count` frames."""
    if frame_count <= 0:
        return []
    if sampling.indices is not None:
        return [i for i in sampling.indices if i < frame_count]
    if sampling.count is not None:
        return _evenly_spaced(frame_count, int(sampling.count))
    indices = []
    for index in _open_ended_indices(sampling, fps):
        if index >= frame_count:
            break
        indices.append(index)
    return indices


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
