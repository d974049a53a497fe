"""One video's extraction (runs in a worker process): frames, detection, tracking, crops."""

from __future__ import annotations

import time
import zlib
from typing import Iterator

from .crops import _crop, _crop_path, _encode_jpeg, _row, _write_bytes, _write_crop
from .presets import ExtractPreset

class WorkerState:
    """What one process keeps between videos: the preset, its device, and the detector built once.
    `threads`: the detector's thread limit (1 where processes give the parallelism; None: its default)."""

    def __init__(self, preset: ExtractPreset, device: str, threads: int | None = None):
        self.preset, self.device, self.threads = preset, device, threads
        self._detector, self._detector_key = None, None

    def detector(self):
        """The preset's detector, rebuilt only when the detector settings change."""
        from ...faces.detect import create_detector

        preset = self.preset
        options: dict = {}  # the detector picks its own batch size for the device
        if preset.detect_side is not None:
            options["max_side"] = preset.detect_side
        if preset.min_face:
            options["min_face"] = preset.min_face  # lets MTCNN skip the pyramid levels for smaller faces
        key = (preset.detector, self.device, self.threads, tuple(sorted(options.items())))
        if self._detector_key != key:
            self._detector = create_detector(preset.detector, device=self.device, **options)
            if self.threads:
                self._detector.limit_threads(self.threads)  # torch's (per process) or the detector's own
            self._detector_key = key
        return self._detector


# One per process: set by init_worker (a process pool's initializer), read by extract_video.
_state: WorkerState | None = None


def init_worker(preset: dict, device: str, single_thread: bool) -> None:
    """Per-process setup: one thread each for OpenCV and the detector (processes give the parallelism)."""
    global _state
    if single_thread:
        import cv2

        cv2.setNumThreads(1)
    previous = _state
    _state = WorkerState(ExtractPreset(**preset), device, threads=1 if single_thread else None)
    if previous is not None:  # same process, another run: keep the detector when its settings match
        _state._detector, _state._detector_key = previous._detector, previous._detector_key


def init_pool_worker(parent_pid: int, *init_args) -> None:
    """A pool worker's setup: it dies with the parent, then init_worker."""
    die_with_parent(parent_pid)
    init_worker(*init_args)


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to kill this process when its parent dies, even by SIGKILL, which runs no clean-up in the
    parent: an orphaned worker would go on writing crops and holding memory and the parent's stdout."""
    import ctypes
    import os
    import signal
    import sys

    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the request above was made
        os._exit(1)


def _detector():
    return _state.detector()


def extract_video(task: dict) -> dict:
    """Extract one video's faces; returns its log record. Never raises for a bad video."""
    from ...errors import MediaError

    started = time.perf_counter()
    record = {"video": task["video"], "status": "done", "reason": "", "faces": 0, "frames": 0}
    try:
        if task.get("original_status") == "no_face":
            record.update(status="no_face", reason="its original has no usable face (boxes are taken from it)")
        else:
            record.update(_extract(task))
    except MediaError as exc:
        record.update(status="skipped", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - one broken video must not stop a dataset-wide run
        record.update(status="error", reason=f"unexpected {type(exc).__name__}: {exc}")
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record


def _extract(task: dict) -> dict:
    preset = _state.preset
    if task.get("original_boxes") is not None:
        return _extract_with_boxes(task, preset)
    if preset.track:
        return _extract_tracked(task, preset)
    return _extract_per_frame(task, preset)


def _extract_per_frame(task: dict, preset: ExtractPreset) -> dict:
    """Detect on the sampled frames and keep every face (or the largest) above the size limit."""
    settings = preset.crop_settings()
    rows, boxes_by_frame, frames = [], {}, 0
    for batch in _batched(_frames_of(task, preset), preset.batch_size):
        detections = _detector().detect([f.image for f in batch])
        for frame, boxes in zip(batch, detections):
            frames += 1
            kept = _keep_faces(boxes, preset, settings)
            boxes_by_frame[str(frame.index)] = [_box_list(b) for b in kept]
            for number, box in enumerate(kept):
                rows.append(_write_crop(task, frame.index, number, frame.image, box, settings, "detected"))
    return _result(rows, frames, boxes_by_frame, preset, "no face found" + _size_note(preset))


def _extract_with_boxes(task: dict, preset: ExtractPreset) -> dict:
    """Crop a fake at the boxes found in its original's frames (seed 002: both crops cover the same region)."""
    from ...faces.detect import FaceBox

    settings = preset.crop_settings()
    original = {int(k): v for k, v in task["original_boxes"].items()}
    rows, frames = [], 0
    for frame in _frames_at(task, sorted(original)):
        frames += 1
        for number, values in enumerate(original.get(frame.index, [])):
            box = FaceBox(*values[:4], score=values[4])
            rows.append(_write_crop(task, frame.index, number, frame.image, box, settings, "original"))
    return _result(rows, frames, None, preset, "none of its original's face frames could be read")


def _extract_tracked(task: dict, preset: ExtractPreset) -> dict:
    """Seed 002's test protocol: detect on every frame, track by IoU, sample ~50 faces over long tracks.

    Every detected face is cropped and JPEG-encoded while its frame is in memory (a few KB each), so the
    video is decoded once and only the chosen crops are written."""
    from ...faces.track import build_tracks, sample_track_faces

    settings = preset.crop_settings()
    detections, encoded, frames = [], {}, 0
    for batch in _batched(_frames_of(task, preset), preset.batch_size):
        for frame, boxes in zip(batch, _detector().detect([f.image for f in batch])):
            frames += 1
            kept = [b for b in boxes if settings.keeps(b)]
            detections.append((frame.index, frame.time_s, kept))
            for box in kept:
                encoded[id(box)] = _encode_jpeg(_crop(frame.image, box, settings))
    tracks = build_tracks(detections, iou_threshold=preset.track_iou, max_gap=preset.track_max_gap,
                          max_shift=0.0)  # every-frame tracking: IoU alone, as seed 002
    long_tracks = [t for t in tracks if t.span >= preset.min_track]
    if not long_tracks:
        reason = f"no face tracked over {preset.min_track} frames" + (f" (of {frames} read)" if frames else "")
        return {"status": "no_face", "reason": reason, "frames": frames, "faces": 0, "rows": []}
    rows = []
    for track, face in sample_track_faces(long_tracks, total=preset.faces_per_video, min_length=preset.min_track):
        path = _crop_path(task, face.frame_index, track.id)
        _write_bytes(task["out"], path, encoded[id(face.box)])
        rows.append(_row(task, path, face.frame_index, track.id, face.box, "detected"))
    return _result(rows, frames, None, preset, "")


def _result(rows, frames, boxes, preset, no_face_reason) -> dict:
    out = {"rows": rows, "faces": len(rows), "frames": frames}
    if boxes is not None and preset.reuse_original_boxes:
        out["boxes"] = boxes
    if not rows:
        out.update(status="no_face", reason=no_face_reason if frames else "no frame could be read")
    return out


def _size_note(preset: ExtractPreset) -> str:
    return f" of at least {preset.min_face} px" if preset.min_face else ""


def _keep_faces(boxes, preset: ExtractPreset, settings) -> list:
    kept = [b for b in boxes if settings.keeps(b)]
    if preset.faces_per_frame is not None:
        kept = sorted(kept, key=lambda b: b.area, reverse=True)[: preset.faces_per_frame]
    return kept


def _box_list(box) -> list[float]:
    return [round(float(v), 2) for v in box.to_list()] + [round(float(box.score), 4)]


def _sampling_for(task: dict, preset: ExtractPreset) -> str:
    return preset.fake_sampling if task["label"] == "fake" else preset.real_sampling


def _frames_of(task: dict, preset: ExtractPreset) -> Iterator:
    from ...media import FrameSampling, iter_frames

    sampling = FrameSampling.parse(_sampling_for(task, preset))
    if sampling.random is not None:
        # Seeded by the video's name, so a rerun (or a resumed extraction) draws the same frames.
        sampling = sampling.with_seed(preset.seed, zlib.crc32(task["video"].encode()))
        if preset.max_frames:  # drawn from the first max_frames frames only
            from ...media import probe
            from ...media.sampling import counted_indices

            count = min(probe(task["source"]).frame_count, preset.max_frames)
            yield from _frames_at(task, counted_indices(count, sampling))
            return
    for frame in iter_frames(task["source"], sampling):
        if preset.max_frames and frame.index >= preset.max_frames:
            break
        yield frame


def _frames_at(task: dict, indices: list[int]) -> Iterator:
    """The frames with the given indices; only those are converted (decoding runs up to the last one)."""
    from ...media import FrameSampling, iter_frames

    if indices:
        yield from iter_frames(task["source"], FrameSampling(indices=tuple(indices)))


def _batched(items: Iterator, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
