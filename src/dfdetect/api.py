"""The public face of the package: `Detector.load(name_or_path).scan(path) -> ScanResult`."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .errors import DfdetectError
from .quality import unsure_reasons
from .results import FaceScore, MediaSummary, ModelSummary, ScanResult, TrackResult
from .scoring import AGGREGATORS, DEFAULT_AGGREGATION, verdict

log = logging.getLogger(__name__)

UNTRAINED_WARNING = (
    "the model {name!r} is NOT trained to detect deepfakes (ImageNet weights only): its scores are "
    "meaningless; pass --model with a trained checkpoint"
)


@dataclass
class ScanOptions:
    sampling: str = "32"            # "32" frames | "every:5" | "fps:2" | "all"
    detector: str | None = None     # None: the one the model was trained with (its card)
    threshold: float | None = None  # None: the card's
    aggregation: str = DEFAULT_AGGREGATION
    batch_size: int = 32
    tta: bool = False               # also score the horizontally flipped face
    chunk_frames: int = 8           # frames decoded and detected at a time (bounds memory)
    detector_options: dict = field(default_factory=dict)
    min_track_fraction: float = 0.1  # tracks seen in fewer sampled frames are taken for false detections

    def __post_init__(self):
        from .errors import ConfigError

        if self.batch_size < 1 or self.chunk_frames < 1:
            raise ConfigError("batch size and chunk size must be at least 1")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be between 0 and 1, got {self.threshold}")


class Detector:
    """A loaded model with its face detector; scans files into ScanResults. Bad input never raises:
    it yields a result with verdict "error" (or "no_face") so that a batch goes on."""

    def __init__(self, model, card, device: str, options: ScanOptions):
        from .faces.detect import create_detector
        from .media import FrameSampling

        from .models.predict import Predictor, as_backend

        # `model`: a torch module, or any Backend (an ONNX Runtime session for an .onnx model).
        self.model, self.card, self.device, self.options = model, card, device, options
        self.predictor = Predictor.for_card(as_backend(model, device, channels_last=True), card,
                                            batch_size=options.batch_size, tta=options.tta)
        self.sampling = FrameSampling.parse(options.sampling)
        self.threshold = card.threshold if options.threshold is None else options.threshold
        # A video's people are scored by means over their faces: the card may hold a threshold fitted for that.
        video_threshold = card.threshold if card.video_threshold is None else card.video_threshold
        self.video_threshold = video_threshold if options.threshold is None else options.threshold
        self.aggregation = AGGREGATORS.get(options.aggregation)
        self.detector_name = options.detector or card.crop.detector
        detector_options = dict(options.detector_options)
        if card.crop.detect_side and self.detector_name == card.crop.detector:
            detector_options.setdefault("max_side", card.crop.detect_side)  # detect as the training crops were
        self.face_detector = create_detector(self.detector_name, device=device, **detector_options)
        self.crop = card.crop.settings(card.input_size)
        self.warnings = [] if card.trained_for_deepfakes else [UNTRAINED_WARNING.format(name=card.name)]
        self.warnings += card.warnings

    @classmethod
    def load(cls, model: str | Path = "default", device: str = "auto", **options) -> "Detector":
        """`model`: a bundled name, a checkpoint (stem or .safetensors) or an exported .onnx file."""
        from .devices import resolve_device
        from .models.predict import load_backend

        device = resolve_device(device)
        backend, card = load_backend(model, device=device, channels_last=True)
        return cls(backend, card, device, ScanOptions(**options))

    # -- scanning -----------------------------------------------------------------------------------
    def scan(self, path: str | Path, on_progress: Callable[[float], None] | None = None) -> ScanResult:
        """Scan one video or image. `on_progress`, if given, is called with the share of the video done
        (0 to 1, by time) after each chunk of frames, e.g. to drive a progress bar on long videos."""
        start = time.perf_counter()
        try:
            result = self._scan(Path(path), on_progress)
        except DfdetectError as exc:
            result = ScanResult(path=str(path), verdict="error", error=str(exc))
        except MemoryError:
            result = ScanResult(path=str(path), verdict="error", error="out of memory while reading this file")
        except Exception as exc:  # one bad item must not end a batch; the message still names the cause
            log.debug("scan of %s failed", path, exc_info=True)
            result = ScanResult(path=str(path), verdict="error",
                                error=f"internal error {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        result.timings["total_s"] = round(time.perf_counter() - start, 3)
        return result

    def scan_many(self, paths: Iterable[str | Path]) -> Iterator[ScanResult]:
        for path in paths:
            yield self.scan(path)

    def _scan(self, path: Path, on_progress: Callable[[float], None] | None = None) -> ScanResult:
        from .faces.track import build_tracks, filter_tracks
        from .media import probe

        info = probe(path)
        timings: dict[str, float] = {}

        def report_time(time_s: float) -> None:
            on_progress(min(1.0, time_s / info.duration_s))

        detections, face_probs, face_quality = self._detect_and_score_faces(
            path, timings, report_time if on_progress is not None and info.duration_s else None)
        tracks = filter_tracks(build_tracks(detections), n_frames=len(detections),
                               min_fraction=self.options.min_track_fraction)
        threshold = self.video_threshold if info.kind == "video" else self.threshold
        base = dict(
            path=str(path), threshold=threshold, aggregation=self.aggregation.name,
            detector=self.detector_name, frames_sampled=len(detections), timings=timings,
            media=MediaSummary(kind=info.kind, width=info.width, height=info.height, fps=info.fps or 0.0,
                               frame_count=info.frame_count, duration_s=info.duration_s or 0.0,
                               rotation=info.rotation),
            model=ModelSummary(name=self.card.name, arch=self.card.arch,
                               trained_for_deepfakes=self.card.trained_for_deepfakes,
                               temperature=self.card.temperature),
            warnings=list(self.warnings),
        )
        if not tracks:
            return ScanResult(verdict="no_face", **base)
        track_results, per_track_probs = [], []
        for track in tracks:
            faces = track.faces
            p = [face_probs[id(face.box)] for face in faces]
            per_track_probs.append(p)
            track_p = self.aggregation.track(p)
            track_results.append(TrackResult(
                track_id=track.id, probability=track_p, verdict=verdict(track_p, threshold),
                unsure_reasons=unsure_reasons([face_quality[id(face.box)] for face in faces]),
                faces=[FaceScore(frame_index=f.frame_index, time_s=round(f.time_s, 3),
                                 box=tuple(round(v, 1) for v in f.box.to_list()),
                                 detector_score=round(float(f.box.score), 4), probability=fp)
                       for f, fp in zip(faces, p)],
            ))
        video_p = self.aggregation.video(per_track_probs)
        reasons = _video_unsure_reasons(track_results)
        return ScanResult(verdict=verdict(video_p, threshold), probability=video_p, tracks=track_results,
                          unsure=bool(reasons), unsure_reasons=reasons, **base)

    def _detect_and_score_faces(self, path: Path, timings: dict,
                                on_time: Callable[[float], None] | None = None) -> tuple[list, dict, dict]:
        """Stream frames in chunks: detect, crop and score the faces, drop the frame and crops, so memory
        stays bounded whatever the video's length. Returns per-frame detections, and p(fake) and the input
        checks (quality.FaceQuality) by box."""
        from .faces.crop import crop_face
        from .media import iter_frames
        from .quality import measure_face

        detections, probs, quality, chunk = [], {}, {}, []
        decode_s = detect_s = classify_s = 0.0
        t0 = time.perf_counter()

        def flush():
            nonlocal detect_s, classify_s
            t = time.perf_counter()
            boxes_per_frame = self.face_detector.detect([f.image for f in chunk])
            boxes_per_frame = [[b for b in boxes if self.crop.keeps(b)] for boxes in boxes_per_frame]
            crops = [crop_face(frame.image, box, self.crop)
                     for frame, boxes in zip(chunk, boxes_per_frame) for box in boxes]
            t_mid = time.perf_counter()
            chunk_probs = iter(self.predict(crops).tolist())
            for frame, boxes in zip(chunk, boxes_per_frame):
                probs.update((id(box), next(chunk_probs)) for box in boxes)
                quality.update((id(box), measure_face(frame.image, box)) for box in boxes)
                detections.append((frame.index, frame.time_s, boxes))
            detect_s += t_mid - t
            classify_s += time.perf_counter() - t_mid
            if on_time is not None:
                on_time(chunk[-1].time_s)
            chunk.clear()

        for frame in iter_frames(path, self.sampling):
            decode_s += time.perf_counter() - t0
            chunk.append(frame)
            if len(chunk) >= self.options.chunk_frames:
                flush()
            t0 = time.perf_counter()
        if chunk:
            flush()
        timings["decode_s"] = round(decode_s, 3)
        timings["detect_s"] = round(detect_s, 3)
        timings["classify_s"] = round(classify_s, 3)
        return detections, probs, quality

    # -- classification -----------------------------------------------------------------------------------
    def predict(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated probability that each face crop (letterboxed to the input size) is fake."""
        return self.predictor.probabilities(crops)


def _video_unsure_reasons(tracks: Sequence[TrackResult]) -> list[str]:
    """A video is unsure when any person it scored is; with several people, each reason names its person."""
    if len(tracks) == 1:
        return list(tracks[0].unsure_reasons)
    return [f"person {t.track_id}: {reason}" for t in tracks for reason in t.unsure_reasons]
