"""Extraction presets (the seed papers' pipelines), registered by name."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ...errors import ConfigError
from ...registry import Registry

PRESETS: Registry = Registry("extraction preset")


@dataclass(frozen=True)
class ExtractPreset:
    """How faces are taken from each video. Sampling specs are FrameSampling texts ("10", "every:30",
    "random:10", "all"); a random draw is seeded by the video id, so reruns draw the same frames."""

    name: str
    detector: str = "mtcnn"
    real_sampling: str = "10"
    fake_sampling: str = "10"
    min_face: int = 0               # shorter box side, in original-frame pixels
    margin: float = 0.3             # fraction of the box added on each side
    margin_px: int = 0              # absolute pixels added on each side
    size: int = 224                 # crops are letterboxed to size x size
    faces_per_frame: int | None = None   # None: every face; 1: the largest
    reuse_original_boxes: bool = False
    balance: bool = False
    track: bool = False
    track_iou: float = 0.75
    track_max_gap: int = 0          # frames a face may be missed without ending its track (0: consecutive)
    min_track: int = 50             # frames a person must be tracked over to be sampled
    faces_per_video: int = 50
    max_frames: int | None = None   # only the first max_frames frames of each video (short test runs)
    detect_side: int | None = None  # detector's max_side (None: the detector's default)
    batch_size: int = 16            # frames decoded before each detector call
    seed: int = 0
    description: str = ""           # one line of help

    def with_overrides(self, **changes) -> "ExtractPreset":
        """A copy with the given fields changed; None values leave a field as it is."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown preset settings {sorted(unknown)}")
        changed = dataclasses.replace(self, **changes)
        changed.face_crop()  # fails early on an unknown detector or a negative margin
        return changed

    def to_dict(self) -> dict:
        """The settings that make an extraction folder what it is (the help text is no setting)."""
        out = dataclasses.asdict(self)
        del out["description"]
        return out

    def face_crop(self):
        """The preset's crop in the form that recipes and model cards use (checks the detector's name)."""
        from pydantic import ValidationError

        from ...faces.crop import FaceCrop

        try:
            return FaceCrop(detector=self.detector, margin=self.margin, margin_px=self.margin_px,
                            min_face=self.min_face, detect_side=self.detect_side)
        except ValidationError as exc:
            raise ConfigError(f"preset {self.name}: {exc.errors()[0]['msg']}") from None

    def crop_settings(self):
        return self.face_crop().settings(self.size)


PRESETS.register("train", ExtractPreset(
    name="train", real_sampling="10", fake_sampling="10", min_face=70, margin=0.0, margin_px=30,
    reuse_original_boxes=True, balance=True,
    description="training crops: 10 evenly spaced frames, MTCNN, faces of 70 px or more with a 30 px margin; "
                "a fake is cropped at its original's boxes; fakes down-sampled to the number of reals"))
PRESETS.register("test", ExtractPreset(
    name="test", real_sampling="all", fake_sampling="all", margin=0.0, margin_px=30, track=True,
    track_iou=0.75, min_track=50, faces_per_video=50,
    description="test crops: every frame, each person tracked (IoU 0.75) over 50 frames or more, about 50 "
                "faces per video"))
PRESETS.register("seed000", ExtractPreset(
    name="seed000", real_sampling="every:30", fake_sampling="every:30", faces_per_frame=1,
    description="one frame in 30, MTCNN, the largest face"))
PRESETS.register("seed003", ExtractPreset(
    name="seed003", detector="haar", real_sampling="every:30", fake_sampling="random:10", faces_per_frame=1,
    description="Haar, largest face, every 30th frame of reals, 10 random frames per fake"))


def get_preset(name: str, **overrides) -> ExtractPreset:
    return PRESETS.get(name).with_overrides(**overrides)
