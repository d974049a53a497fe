"""The public face of the package: `Detector.load(name_or_path).scan(path) -> ScanResult`."""

from __future__ import annotations

import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .errors import DfdetectError
from .quality import compression_reason, unsure_reasons
from .results import FaceScore, MediaSummary, ModelSummary, ScanResult, ScanSettings, TrackResult
from .scoring import AGGREGATORS, DEFAULT_AGGREGATION, judged_tracks, verdict

log = logging.getLogger(__name__)

UNTRAINED_WARNING = (
    "the model {name!r} is NOT trained to detect deepfakes (ImageNet weights only): its scores are "
    "meaningless; pass --model with a trained checkpoint"
)
# Another detector frames faces otherwise than the training crops, and the model's scores shift with framing
# (benchmarks/results/extraction_shift.md).
OTHER_DETECTOR_WARNING = (
    "faces are found with {chosen}, but the model {name!r} was trained on faces found with {trained}; they are "
    "framed otherwise and its scores shift (more real faces called fake, for one): use --detector {trained} "
    "where you can"
)


# A video's sampled frames are searched for faces of every size once in FULL_SEARCH_EVERY frames, and in between
# for faces down to FOLLOW_SHARE of the smallest face that search found, or FOLLOW_MAX_SMALLEST px where that is
# smaller: MTCNN then skips the pyramid levels of faces far smaller than anyone in view, most of its work on large
# frames, and larger faces come out exactly as from a full search. A full search that finds no face leaves the
# next frame searched in full too, so small faces are still found (and flagged). On the six shared clips this
# cut detection from 10.7-11.3 s (a full search on every frame) to 7.3 s (benchmarks/results/face_search_cpu.md).
# Detectors that can (searches_regions: MTCNN on ONNX Runtime) also look in between only near the faces of the
# frame before: each box widened by FOLLOW_MARGIN of its side on every side, for faces down to FOLLOW_SHARE of the
# smallest (no new face can turn up there, so FOLLOW_MAX_SMALLEST does not apply). Faces found there are those a
# search of the whole frame finds (faces/mtcnn.py); a frame where fewer faces than before turn up is searched
# again in full, so a face that moved further is not lost. With the bundled model v2.2 on the six clips, searching
# near the last faces with a margin of 0.5 took detection from 7.3 s (whole frames in between) to 3.6 s, 1.0 to
# 4.1 s, both moving p(fake) no more than whole frames in between do (0.0036 from a full search on every frame);
# 0.25 moved it by 0.014. A full search once in 16 frames saved 8-11% more, but a person who comes into view is
# found later.
# Feeding the last boxes straight to R-Net and O-Net (no P-Net) was tried: faster again, but its boxes drifted
# from MTCNN's own and p(fake) moved far more than with any setting above, so it was not kept.
FULL_SEARCH_EVERY = 8
FOLLOW_SHARE = 0.7
FOLLOW_MAX_SMALLEST = 80
FOLLOW_MARGIN: float | None = 0.5  # None: search whole frames in between

DECODE_AHEAD = 8  # frames the decoding thread may hold ready (memory: 8 decoded frames per input)

SHORT_READ_WARNING = ("only {read} of {asked} sampled frames could be read (the video is cut short or damaged); "
                      "the verdict rests on those")


@dataclass
class ScanOptions:
    sampling: str = "32"            # "32" frames | "every:5" | "fps:2" | "all"
    detector: str | None = None     # None: the one the model was trained with (its card)
    threshold: float | None = None  # None: the card's
    aggregation: str = DEFAULT_AGGREGATION
    batch_size: int = 32
    tta: bool = False               # also score the horizontally flipped face
    chunk_frames: int = 2           # frames whose faces are found before they are classified (as the next
                                    # chunk's are found): small chunks start classifying sooner and leave less
                                    # for the end (benchmarks/results/light_scan.md)
    overlap: bool = True            # decode in a background thread, frames ahead and into the next input,
                                    # and classify a chunk's faces while the next chunk's are searched for
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
        # Frames come shrunk for detection (Frame.preview) from the decoding thread, which then does that work.
        self.preview_side = getattr(self.face_detector, "max_side", None)
        self.crop = card.crop.settings(card.input_size)
        self.warnings = [] if card.trained_for_deepfakes else [UNTRAINED_WARNING.format(name=card.name)]
        self.warnings += card.warnings
        if self.detector_name != card.crop.detector:
            self.warnings.append(OTHER_DETECTOR_WARNING.format(chosen=self.detector_name, name=card.name,
                                                               trained=card.crop.detector))

    @classmethod
    def load(cls, model: str | Path = "default", device: str = "auto", threads: int | None = None,
             **options) -> "Detector":
        """`model`: a bundled name, a checkpoint (stem or .safetensors) or an exported .onnx file. Options are
        ScanOptions' fields; `frames` is the command line's name for `sampling`. `threads` bounds the CPU
        threads of the model and the face detector (one worker among several); None: one per core."""
        from .devices import resolve_device
        from .errors import ConfigError
        from .models.predict import load_backend

        if "frames" in options:
            if "sampling" in options:
                raise ConfigError("give frames or sampling, not both (they are one option)")
            options["sampling"] = options.pop("frames")
        unknown = sorted(set(options) - set(ScanOptions.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)}; Detector.load takes "
                              f"{', '.join(['frames', *ScanOptions.__dataclass_fields__])}")
        device = resolve_device(device)
        if threads is not None:
            from .devices import limit_torch_threads

            limit_torch_threads(threads)
        backend, card = load_backend(model, device=device, channels_last=True, threads=threads)
        detector = cls(backend, card, device, ScanOptions(**options))
        if threads is not None:
            detector.face_detector.limit_threads(threads)
        return detector

    def __repr__(self) -> str:
        return (f"Detector(model={self.card.name!r}, arch={self.card.arch!r}, device={self.device!r}, "
                f"frames={str(self.sampling)!r}, detector={self.detector_name!r}, "
                f"aggregation={self.aggregation.name!r}, threshold={self.threshold:.3f}, tta={self.options.tta})")

    # -- scanning -----------------------------------------------------------------------------------
    def scan(self, path, on_progress: Callable[[float], None] | None = None) -> ScanResult:
        """Scan one video or image: a path, or an image in memory (an RGB uint8 numpy array of shape
        (H, W, 3), or a PIL image). `on_progress`, if given, is called with the share of the video done
        (0 to 1, by time) after each chunk of frames, e.g. to drive a progress bar on long videos."""
        with closing(self.pending_scans([path])) as scans:
            return next(scans).run(on_progress)

    def scan_many(self, paths: Iterable) -> Iterator[ScanResult]:
        """Scan several inputs; results in input order, a bad input giving its "error" result. With the
        `overlap` option (the default), the next input is decoded while the current one is classified."""
        with closing(self.pending_scans(paths)) as scans:
            for pending in scans:
                yield pending.run()

    def pending_scans(self, items: Iterable) -> Iterator["PendingScan"]:
        """The scans of `items` (as `scan` takes them; the list is read at once) in order, each done by its
        `run(on_progress)`: what `scan_many` and `dfdetect scan` run. With the `overlap` option, one
        background thread decodes the sampled frames: DECODE_AHEAD frames ahead of detection, and once an
        input's frames are all read, the next input's while this one is detected and classified (never more
        than one input with frames ahead). Close the iterator (or run it to its end) to stop the thread."""
        from .media.prefetch import FramePrefetcher

        items = list(items)
        paths = [Path(item) if isinstance(item, (str, Path)) else None for item in items]
        prefetch = None
        if self.options.overlap and any(path is not None for path in paths):
            depth = max(DECODE_AHEAD, self.options.chunk_frames)
            prefetch = FramePrefetcher(paths, self._frames_of, depth=depth)
        try:
            for i, item in enumerate(items):
                frames = None
                if prefetch is not None:
                    prefetch.start(i)
                    if paths[i] is not None:
                        frames = functools.partial(prefetch.frames, i)
                yield PendingScan(self, item, frames)
                if prefetch is not None:
                    prefetch.done(i)
        finally:
            if prefetch is not None:
                prefetch.close()

    def find_faces(self, path: str | Path) -> "FoundFaces | ScanResult":
        """The first half of a scan, for running the two halves on different machines: decode, detect and
        crop every sampled face, keeping the crops (memory grows with the faces found). A bad input gives
        its "error" ScanResult. `score_faces` finishes the scan."""
        from .media import probe

        def find() -> FoundFaces:
            info = probe(Path(path))
            timings: dict[str, float] = {}
            detections, crops, quality = [], [], []
            for chunk_detections, chunk_crops, chunk_quality in self._face_chunks(Path(path), timings):
                detections += chunk_detections
                crops += chunk_crops
                quality += chunk_quality
            return FoundFaces(str(path), info, detections, crops, quality, timings)

        return _guarded(path, find)

    def score_faces(self, found: "FoundFaces | ScanResult") -> ScanResult:
        """The second half of a scan: classify the faces `find_faces` kept and give the verdicts."""
        if isinstance(found, ScanResult):
            return found
        find_s = found.timings.pop("find_s", 0.0)

        def score() -> ScanResult:
            t = time.perf_counter()
            probs = self.predict(found.crops).tolist()
            found.timings["classify_s"] = round(time.perf_counter() - t, 3)
            return self._assemble(Path(found.path), found.info, found.detections, probs, found.quality, found.timings)

        result = _guarded(found.path, score)
        result.timings["total_s"] = round(find_s + result.timings["total_s"], 3)
        return result

    def _scan(self, path, on_progress: Callable[[float], None] | None = None,
              frames: Callable[[], Iterator] | None = None) -> ScanResult:
        from .media import probe

        info = path.info() if isinstance(path, _InMemoryImage) else probe(path)
        timings: dict[str, float] = {}

        def report_time(time_s: float) -> None:
            on_progress(min(1.0, time_s / info.duration_s))

        on_time = report_time if on_progress is not None and info.duration_s else None
        detections, probs, quality = [], [], []
        classify_s = 0.0

        def classify(crops: list) -> list[float]:
            nonlocal classify_s
            t = time.perf_counter()
            scores = self.predict(crops).tolist()
            classify_s += time.perf_counter() - t
            return scores

        # Each chunk's crops are scored and dropped soon after, so memory stays bounded whatever the video's
        # length. With `overlap`, a chunk is scored in a thread while the next chunk's faces are found: face
        # search uses the cores poorly (small networks, small images), so the two share them well.
        with ThreadPoolExecutor(max_workers=1) if self.options.overlap else nullcontext() as scorer:
            pending = None  # the last chunk's scores, still being computed
            for chunk_detections, crops, chunk_quality in self._face_chunks(path, timings, on_time, frames):
                if scorer is None:
                    probs += classify(crops)
                else:
                    probs += pending.result() if pending is not None else []
                    pending = scorer.submit(classify, crops)
                detections += chunk_detections
                quality += chunk_quality
            probs += pending.result() if pending is not None else []
        timings["classify_s"] = round(classify_s, 3)
        return self._assemble(path, info, detections, probs, quality, timings)

    def _assemble(self, path: Path, info, detections: list, probs: list[float], quality: list,
                  timings: dict) -> ScanResult:
        """Faces (in detection order, with their p(fake) and input checks) -> tracks -> person and video verdicts."""
        from .faces.track import build_tracks, filter_tracks

        boxes = [box for _, _, frame_boxes in detections for box in frame_boxes]
        face_probs = {id(box): p for box, p in zip(boxes, probs)}
        face_quality = {id(box): q for box, q in zip(boxes, quality)}
        tracks = filter_tracks(build_tracks(detections), n_frames=len(detections),
                               min_fraction=self.options.min_track_fraction)
        threshold = self.video_threshold if info.kind == "video" else self.threshold
        asked = self._frames_asked(info)
        short = [SHORT_READ_WARNING.format(read=len(detections), asked=asked)] if len(detections) < asked else []
        base = dict(
            path=str(path), threshold=threshold, aggregation=self.aggregation.name,
            detector=self.detector_name, frames_sampled=len(detections), frames_asked=asked, timings=timings,
            settings=ScanSettings(frames=str(self.sampling), tta=self.options.tta, detector=self.detector_name,
                                  aggregation=self.aggregation.name, threshold=threshold, device=self.device),
            media=MediaSummary(kind=info.kind, width=info.width, height=info.height,
                               fps=info.fps if info.kind == "video" else None, frame_count=info.frame_count,
                               duration_s=info.duration_s if info.kind == "video" else None,
                               rotation=info.rotation, sha256=_sha256_of(path)),
            model=ModelSummary(name=self.card.name, arch=self.card.arch,
                               trained_for_deepfakes=self.card.trained_for_deepfakes,
                               temperature=self.card.temperature, weights_sha256=self.card.weights_sha256),
            warnings=list(self.warnings) + short,
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
                                 box=[round(v, 1) for v in f.box.to_list()],
                                 detector_score=round(float(f.box.score), 4), probability=fp)
                       for f, fp in zip(faces, p)],
            ))
        counted = judged_tracks([t.unsure_reasons for t in track_results])
        for track_result, is_counted in zip(track_results, counted):
            track_result.counted = is_counted
        video_p = self.aggregation.video([p for p, is_counted in zip(per_track_probs, counted) if is_counted])
        # Compression bears on every person alike: it marks the video, never who counts in its verdict.
        reasons = _video_unsure_reasons(track_results) + [r for r in [compression_reason(info)] if r]
        return ScanResult(verdict=verdict(video_p, threshold), probability=video_p, tracks=track_results,
                          unsure=bool(reasons), unsure_reasons=reasons, **base)

    def _frames_asked(self, info) -> int:
        """How many frames the sampling rule asks of this video, by its header; a video that yields fewer
        is cut short or damaged. Open-ended rules on an estimated length are not held to it."""
        from .media import sample_indices

        if info.kind != "video" or (info.frame_count_estimated and not self.sampling.needs_frame_count):
            return 0
        # Headers often count one frame too many; evenly spaced samples never land on the last one, and
        # for the open-ended rules that frame is not held against the video.
        frame_count = info.frame_count - (0 if self.sampling.needs_frame_count else 1)
        try:
            return len(sample_indices(frame_count, info.fps, self.sampling))
        except DfdetectError:
            return 0

    def _face_chunks(self, path: Path, timings: dict, on_time: Callable[[float], None] | None = None,
                     frames: Callable[[], Iterator] | None = None) -> Iterator[tuple[list, list, list]]:
        """Stream frames in chunks and detect and crop their faces. Yields per chunk the detections
        (frame index, time, boxes), the face crops and their input checks (quality.FaceQuality), both in
        detection order; fills timings with decode and detection seconds (decode: the time spent waiting
        for frames, which is all of the decoding unless `frames` gives them from a decoding thread)."""
        from .faces.crop import crop_face
        from .quality import measure_face

        chunk: list = []
        follow = _Follow()
        decode_s = detect_s = 0.0

        def detect_chunk() -> tuple[list, list, list]:
            nonlocal detect_s
            t = time.perf_counter()
            boxes_per_frame = self._detect_faces(chunk, follow)
            boxes_per_frame = [[b for b in boxes if self.crop.keeps(b)] for boxes in boxes_per_frame]
            pairs = [(frame, box) for frame, boxes in zip(chunk, boxes_per_frame) for box in boxes]
            crops = [crop_face(frame.image, box, self.crop) for frame, box in pairs]
            quality = [measure_face(frame.image, box) for frame, box in pairs]
            detections = [(frame.index, frame.time_s, boxes) for frame, boxes in zip(chunk, boxes_per_frame)]
            detect_s += time.perf_counter() - t
            if on_time is not None:
                on_time(chunk[-1].time_s)
            chunk.clear()
            return detections, crops, quality

        t0 = time.perf_counter()
        if isinstance(path, _InMemoryImage):
            source = path.frames()
        else:
            source = frames() if frames is not None else self._frames_of(path)
        for frame in source:
            decode_s += time.perf_counter() - t0
            chunk.append(frame)
            if len(chunk) >= self.options.chunk_frames:
                yield detect_chunk()
            t0 = time.perf_counter()
        if chunk:
            yield detect_chunk()
        timings["decode_s"] = round(decode_s, 3)
        timings["detect_s"] = round(detect_s, 3)

    def _frames_of(self, path: Path) -> Iterator:
        from .media import iter_frames

        return iter_frames(path, self.sampling, preview_side=self.preview_side)

    def _detect_faces(self, chunk: list, follow: "_Follow") -> list[list]:
        """Boxes per frame of the next frames of one video (see FULL_SEARCH_EVERY)."""
        detector = self.face_detector
        images, previews = [f.image for f in chunk], [f.preview for f in chunk]
        found: list[list] = []
        while len(found) < len(chunk):
            i = len(found)
            if follow.due():
                found += detector.detect(images[i:i + 1], previews[i:i + 1])
                follow.searched_in_full(found[-1])
            elif detector.searches_regions and FOLLOW_MARGIN is not None:  # one frame at a time, near the last
                near = detector.detect(images[i:i + 1], previews[i:i + 1], smallest_face=follow.smallest_near,
                                       regions=[follow.regions()])[0]
                if len(near) < len(follow.boxes):
                    near = detector.detect(images[i:i + 1], previews[i:i + 1])[0]
                    follow.searched_in_full(near)
                else:
                    follow.followed(near, 1)
                found.append(near)
            else:
                n = min(len(chunk) - i, FULL_SEARCH_EVERY - follow.since)
                found += detector.detect(images[i:i + n], previews[i:i + n], smallest_face=follow.smallest)
                follow.followed(found[-1], n)
        return found

    # -- classification -----------------------------------------------------------------------------------
    def predict(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated probability that each face crop (letterboxed to the input size) is fake."""
        return self.predictor.probabilities(crops)


@dataclass
class _Follow:
    """Where a video's face search stands: the smallest face worth looking for (None: search in full next), the
    frames searched since the last full search and the faces of the last frame searched."""

    smallest: float | None = None
    since: int = 0
    boxes: list = field(default_factory=list)
    smallest_near: float | None = None  # for searches near the last faces

    def due(self) -> bool:
        return self.smallest is None or self.since >= FULL_SEARCH_EVERY

    def searched_in_full(self, boxes: list) -> None:
        sides = [min(box.width, box.height) for box in boxes]
        self.smallest_near = FOLLOW_SHARE * min(sides) if sides else None
        self.smallest = min(FOLLOW_MAX_SMALLEST, self.smallest_near) if sides else None
        self.since, self.boxes = 1, list(boxes)

    def followed(self, boxes: list, frames: int) -> None:
        self.since += frames
        self.boxes = list(boxes)

    def regions(self) -> list[tuple[float, float, float, float]]:
        """Where the faces of the last frame may be now: each box widened by FOLLOW_MARGIN of its side."""
        out = []
        for box in self.boxes:
            pad = FOLLOW_MARGIN * max(box.width, box.height)
            out.append((box.x1 - pad, box.y1 - pad, box.x2 + pad, box.y2 + pad))
        return out


def _sha256_of(path) -> str:
    """Of the file's bytes; of the pixels for an image given in memory."""
    import hashlib

    if isinstance(path, _InMemoryImage):
        return hashlib.sha256(path.image.tobytes()).hexdigest()
    from .digest import file_sha256

    return file_sha256(path)


@dataclass
class _InMemoryImage:
    """An image handed to scan() as an array or a PIL image; its result's path reads "<array HxW>"."""

    image: np.ndarray

    @classmethod
    def of(cls, obj) -> "_InMemoryImage":
        from .errors import MediaError

        if hasattr(obj, "convert") and hasattr(obj, "size"):  # a PIL image, in any mode
            obj = np.asarray(obj.convert("RGB"))
        if not isinstance(obj, np.ndarray):
            raise MediaError(f"cannot scan a {type(obj).__name__}: give a path, an RGB numpy array or a PIL image")
        if obj.ndim == 2:
            obj = np.repeat(obj[:, :, None], 3, axis=2)
        if obj.ndim != 3 or obj.shape[2] not in (3, 4) or min(obj.shape[:2]) < 1:
            raise MediaError(f"an image array must be (height, width, 3) RGB; got shape {obj.shape}")
        if obj.dtype != np.uint8:
            raise MediaError(f"an image array must be uint8 (0-255); got {obj.dtype}")
        return cls(np.ascontiguousarray(obj[:, :, :3]))

    def __str__(self) -> str:
        return f"<array {self.image.shape[0]}x{self.image.shape[1]}>"

    def info(self):
        from .media import MediaInfo

        h, w = self.image.shape[:2]
        return MediaInfo(path=Path(str(self)), kind="image", width=w, height=h, frame_count=1, fps=None,
                         duration_s=None, rotation=0, codec="array")

    def frames(self):
        from .media import Frame

        return iter([Frame(index=0, time_s=0.0, image=self.image)])


class PendingScan:
    """One input of `Detector.pending_scans`: `run(on_progress)` scans it as `Detector.scan` does, with its
    frames from the decoding thread when there is one."""

    def __init__(self, detector: Detector, item, frames: Callable[[], Iterator] | None = None):
        self.detector, self.item, self._frames = detector, item, frames

    def run(self, on_progress: Callable[[float], None] | None = None) -> ScanResult:
        item = self.item
        if isinstance(item, (str, Path)):
            return _guarded(str(item), lambda: self.detector._scan(Path(item), on_progress, self._frames))
        return _guarded(f"<{type(item).__name__}>", lambda: self.detector._scan(_InMemoryImage.of(item), on_progress))


@dataclass
class FoundFaces:
    """What `Detector.find_faces` hands to `Detector.score_faces`: the sampled frames' detections, and the
    face crops and their input checks in detection order. Plain data, so it travels between processes."""

    path: str
    info: object  # media.MediaInfo
    detections: list  # (frame index, time in seconds, [FaceBox]) per sampled frame
    crops: list  # uint8 HxWx3 per face
    quality: list  # quality.FaceQuality per face
    timings: dict


def _guarded(path: str | Path, work: Callable[[], "ScanResult | FoundFaces"]) -> "ScanResult | FoundFaces":
    """Run one item's work; bad input never raises but becomes that item's "error" result, so a batch goes on."""
    start = time.perf_counter()
    try:
        result = work()
    except DfdetectError as exc:
        result = ScanResult(path=str(path), verdict="error", error=str(exc))
    except MemoryError:
        result = ScanResult(path=str(path), verdict="error", error="out of memory while reading this file")
    except Exception as exc:  # one bad item must not end a batch; the message still names the cause
        log.debug("scan of %s failed", path, exc_info=True)
        result = ScanResult(path=str(path), verdict="error",
                            error=f"internal error {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    key = "total_s" if isinstance(result, ScanResult) else "find_s"
    result.timings[key] = round(time.perf_counter() - start, 3)
    return result


def _video_unsure_reasons(tracks: Sequence[TrackResult]) -> list[str]:
    """A video is unsure when any person it scored is; with several people, one line per unsure person names
    them, their reasons and whether they were left out of the video's verdict."""
    if len(tracks) == 1:
        return list(tracks[0].unsure_reasons)
    return [f"person {t.track_id}{'' if t.counted else ' (not counted in the verdict)'}: "
            + " and ".join(t.unsure_reasons) for t in tracks if t.unsure_reasons]
