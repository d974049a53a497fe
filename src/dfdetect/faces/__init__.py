"""Face detection, tracking and the one face crop shared by scanning, extraction and training."""

from .crop import CropSettings, FaceCrop, crop_face, crop_region, letterbox
from .detect import DETECTORS, FaceBox, FaceDetector, create_detector, detector_device, resolve_device
from .track import (
    DEFAULT_IOU_THRESHOLD,
    DEFAULT_MAX_GAP,
    DEFAULT_MAX_SHIFT,
    Track,
    TrackedFace,
    build_tracks,
    filter_tracks,
    sample_track_faces,
    stitch_tracks,
)

__all__ = [
    "DETECTORS",
    "FaceCrop",
    "DEFAULT_IOU_THRESHOLD",
    "DEFAULT_MAX_GAP",
    "DEFAULT_MAX_SHIFT",
    "CropSettings",
    "FaceBox",
    "FaceDetector",
    "Track",
    "TrackedFace",
    "build_tracks",
    "create_detector",
    "detector_device",
    "crop_face",
    "crop_region",
    "filter_tracks",
    "letterbox",
    "resolve_device",
    "sample_track_faces",
    "stitch_tracks",
]
