"""Face extraction at dataset scale: manifest of videos in, JPEG face crops and a manifest of crops out.

Presets follow the seed papers:
  train    seed 002 section 2.4.1: up to 10 evenly spaced frames, MTCNN, faces of at least 70 px, 30 px margin;
           a fake reuses the face boxes found in its real original (both crops cover the same region), and
           fake videos are down-sampled to the number of reals (per split) for class balance.
  test     seed 002 section 2.4.2: MTCNN on every frame, IoU tracking (0.75 between consecutive frames),
           people tracked over at least 50 frames, about 50 faces per video in proportion to track length.
  seed000  one frame in 30, MTCNN, the largest face of each frame.
  seed003  Haar cascade, largest face, every 30th frame of reals and 10 random frames of each fake.

Output folder:
  crops/<group>/<video>_<frame>_<track>.jpg   letterboxed crops (crop_face, the scan path's crop), JPEG q95
  extract_log.jsonl   one line per finished video: done / no_face / skipped (+ reason), its crop rows and boxes
  manifest.csv        every crop (paths relative to the folder), rebuilt from the log at the end of each run
  extract_config.json the preset and settings; a rerun with other settings is refused
  summary.json        the last run's counts and timings
A video's log line is appended (and flushed to disk) only after all its crops are written, so a rerun skips
exactly the finished videos and redoes one that was cut off (its crops are overwritten: names are stable).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from ..errors import ConfigError, DatasetError, DfdetectError
from ..registry import Registry

PRESETS: Registry = Registry("extraction preset")
FINAL_STATUSES = ("done", "no_face", "skipped")  # "error" (an unexpected failure) is retried on a rerun
JPEG_QUALITY = 95
LOG_NAME, MANIFEST_NAME = "extract_log.jsonl", "manifest.csv"
CONFIG_NAME, SUMMARY_NAME = "extract_config.json", "summary.json"


@dataclass(frozen=True)
class ExtractPreset:
    """How faces are taken from each video. Sampling specs are FrameSampling texts ("10", "every:30", "all")
    or "random:N" (N frames drawn at random, seeded by the video id, so reruns draw the same)."""

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

    def with_overrides(self, **changes) -> "ExtractPreset":
        """A copy with the given fields changed; None values leave a field as it is."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown preset settings {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def crop_settings(self):
        from ..faces.crop import CropSettings

        return CropSettings(size=self.size, margin=self.margin, margin_px=self.margin_px, min_face=self.min_face)


PRESETS.register("train", ExtractPreset(
    name="train", real_sampling="10", fake_sampling="10", min_face=70, margin=0.0, margin_px=30,
    reuse_original_boxes=True, balance=True))
PRESETS.register("test", ExtractPreset(
    name="test", real_sampling="all", fake_sampling="all", margin=0.0, margin_px=30, track=True,
    track_iou=0.75, min_track=50, faces_per_video=50))
PRESETS.register("seed000", ExtractPreset(
    name="seed000", real_sampling="every:30", fake_sampling="every:30", faces_per_frame=1))
PRESETS.register("seed003", ExtractPreset(
    name="seed003", detector="haar", real_sampling="every:30", fake_sampling="random:10", faces_per_frame=1))


def get_preset(name: str, **overrides) -> ExtractPreset:
    return PRESETS.get(name).with_overrides(**overrides)


# ------------------------------------------------------------------------------------------------------
# One video (runs in a worker process)
# ------------------------------------------------------------------------------------------------------
_WORKER: dict = {}


def init_worker(preset: dict, device: str, single_thread: bool) -> None:
    """Per-process setup: one thread each for torch and OpenCV (processes give the parallelism)."""
    if single_thread:
        import cv2

        cv2.setNumThreads(1)
        if preset.get("detector") == "mtcnn":
            import torch

            torch.set_num_threads(1)
    _WORKER.update(preset=ExtractPreset(**preset), device=device)


def _detector():
    """The preset's detector, built once per process (and kept while the detector settings stay the same)."""
    from ..faces.detect import create_detector

    preset: ExtractPreset = _WORKER["preset"]
    options: dict = {}  # the detector picks its own batch size for the device
    if preset.detect_side is not None:
        options["max_side"] = preset.detect_side
    if preset.min_face:
        options["min_face"] = preset.min_face  # lets MTCNN skip the pyramid levels for smaller faces
    key = (preset.detector, _WORKER["device"], tuple(sorted(options.items())))
    if _WORKER.get("detector_key") != key:
        _WORKER["detector"] = create_detector(preset.detector, device=_WORKER["device"], **options)
        _WORKER["detector_key"] = key
    return _WORKER["detector"]


def extract_video(task: dict) -> dict:
    """Extract one video's faces; returns its log record. Never raises for a bad video."""
    from ..errors import MediaError

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
    preset: ExtractPreset = _WORKER["preset"]
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
    from ..faces.detect import FaceBox

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
    from ..faces.track import build_tracks, sample_track_faces

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


# ------------------------------------------------------------------------------------------------------
# Frames
# ------------------------------------------------------------------------------------------------------
def _sampling_for(task: dict, preset: ExtractPreset) -> str:
    return preset.fake_sampling if task["label"] == "fake" else preset.real_sampling


def _frames_of(task: dict, preset: ExtractPreset) -> Iterator:
    spec = _sampling_for(task, preset)
    if spec.startswith("random:"):
        from ..media import probe

        count = probe(task["source"]).frame_count
        if preset.max_frames:
            count = min(count, preset.max_frames)
        rng = np.random.default_rng([preset.seed, zlib.crc32(task["video"].encode())])
        wanted = sorted(rng.choice(count, size=min(int(spec[7:]), count), replace=False).tolist())
        yield from _frames_at(task, wanted)
        return
    from ..media import FrameSampling, iter_frames

    for frame in iter_frames(task["source"], FrameSampling.parse(spec)):
        if preset.max_frames and frame.index >= preset.max_frames:
            break
        yield frame


def _frames_at(task: dict, indices: list[int]) -> Iterator:
    """The frames with the given indices; only those are converted (decoding runs up to the last one)."""
    from ..media import FrameSampling, iter_frames

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


# ------------------------------------------------------------------------------------------------------
# Crops on disk
# ------------------------------------------------------------------------------------------------------
def safe_name(text: str) -> str:
    """A file-name-safe form of a video id or group: "Deepfakes/000_003" -> "Deepfakes-000_003"."""
    text = re.sub(r"\.(mp4|avi|mov|mkv|webm|jpe?g|png|webp|bmp)$", "", str(text), flags=re.IGNORECASE)
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-.") or "item"


def _crop_path(task: dict, frame_index: int, track: int) -> str:
    return f"crops/{safe_name(task['group'] or task['video'])}/{safe_name(task['video'])}_{frame_index:05d}_{track}.jpg"


def _crop(image, box, settings):
    from ..faces.crop import crop_face

    return crop_face(image, box, settings)


def _encode_jpeg(crop: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(crop[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def _write_bytes(out: str, rel: str, data: bytes) -> None:
    path = os.path.join(out, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _write_crop(task, frame_index, number, image, box, settings, boxes_from) -> dict:
    rel = _crop_path(task, frame_index, number)
    _write_bytes(task["out"], rel, _encode_jpeg(_crop(image, box, settings)))
    return _row(task, rel, frame_index, number, box, boxes_from)


def _row(task: dict, rel: str, frame_index: int, track: int, box, boxes_from: str) -> dict:
    x1, y1, x2, y2 = (round(float(v), 2) for v in box.to_list())
    return {"path": rel, "frame": int(frame_index), "track": int(track), "x1": x1, "y1": y1, "x2": x2, "y2": y2,
            "score": round(float(box.score), 4), "boxes_from": boxes_from}


# ------------------------------------------------------------------------------------------------------
# A whole dataset
# ------------------------------------------------------------------------------------------------------
@dataclass
class ExtractionSummary:
    videos: int = 0            # videos selected for extraction (after balancing and --limit)
    done: int = 0              # with faces
    no_face: int = 0
    skipped: int = 0           # unreadable and other bad input
    errors: int = 0            # unexpected failures (retried on the next run)
    faces: int = 0             # crops in the manifest
    processed_now: int = 0     # videos worked on in this run (the rest were already finished)
    faces_now: int = 0
    seconds: float = 0.0
    balance_note: str = ""
    skip_reasons: dict = field(default_factory=dict)

    @property
    def videos_per_minute(self) -> float:
        return 60.0 * self.processed_now / self.seconds if self.seconds else 0.0

    @property
    def faces_per_second(self) -> float:
        return self.faces_now / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "videos_per_minute": round(self.videos_per_minute, 2),
                "faces_per_second": round(self.faces_per_second, 2)}

    def lines(self) -> list[str]:
        out = [
            f"videos: {self.videos} ({self.done} with faces, {self.no_face} without a face, {self.skipped} skipped"
            + (f", {self.errors} failed" if self.errors else "") + ")",
            f"faces: {self.faces} crops in the manifest",
            f"this run: {self.processed_now} videos, {self.faces_now} faces in {self.seconds:.1f} s "
            f"({self.videos_per_minute:.1f} videos/min, {self.faces_per_second:.1f} faces/s)",
        ]
        if self.balance_note:
            out.append(self.balance_note)
        for reason, n in sorted(self.skip_reasons.items(), key=lambda kv: -kv[1])[:5]:
            out.append(f"  {n} x {reason}")
        return out


def load_videos(dataset: str | Path, problems: list[str] | None = None) -> pd.DataFrame:
    """The manifest to extract from: a manifest file as is, or a dataset folder indexed (with splits)."""
    from .indexes import index_dataset
    from .manifest import read_manifest
    from .splits import assign_splits

    dataset = Path(dataset)
    if dataset.is_file() and dataset.suffix.lower() in (".csv", ".parquet"):
        try:
            return read_manifest(dataset)
        except DatasetError:
            pass  # not a manifest: perhaps a crops CSV, which the indexer reads
    index = index_dataset(dataset)
    if problems is not None:
        problems.extend(index.problems)
    return assign_splits(index.manifest, "auto")


def balance_fakes(videos: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, str]:
    """Down-sample fake videos to the number of reals within each split, drawing round-robin over originals so
    that every original keeps some of its fakes. Returns the rows kept and a one-line note."""
    keep = []
    notes = []
    for split, part in videos.groupby("split", sort=False):
        reals, fakes = part[part["label"] == "real"], part[part["label"] == "fake"]
        if len(fakes) <= len(reals) or len(reals) == 0:
            keep.append(part)
            continue
        rng = np.random.default_rng([seed, zlib.crc32(str(split).encode())])
        shuffled = fakes.iloc[rng.permutation(len(fakes))]
        rank = shuffled.groupby(shuffled["original"].where(shuffled["original"] != "", shuffled["video"])).cumcount()
        chosen = shuffled.assign(_rank=rank.to_numpy()).sort_values("_rank", kind="stable").head(len(reals))
        keep.append(pd.concat([reals, chosen.drop(columns="_rank")]))
        notes.append(f"{split or 'unsplit'}: {len(reals)} of {len(fakes)} fakes")
    out = pd.concat(keep) if keep else videos
    note = ("balance: fake videos down-sampled to the number of reals (" + ", ".join(notes) + ")") if notes else ""
    return out.loc[videos.index.intersection(out.index)], note


def order_videos(videos: pd.DataFrame) -> pd.DataFrame:
    """Group by group (a real before its fakes), so a --limit keeps whole groups and originals come first."""
    key = videos.assign(_fake=(videos["label"] == "fake").astype(int))
    return key.sort_values(["group", "_fake", "video"], kind="stable").drop(columns="_fake")


def run_extraction(
    dataset: str | Path | pd.DataFrame,
    out: str | Path,
    preset: ExtractPreset,
    *,
    workers: int | None = None,
    device: str = "auto",
    limit: int | None = None,
    retry_skipped: bool = False,
    restart: bool = False,
    progress: bool = True,
    log=print,
) -> ExtractionSummary:
    """Extract faces from every video of a dataset (folder, manifest file or manifest frame) into `out`."""
    out = Path(out)
    problems: list[str] = []
    videos = dataset.copy() if isinstance(dataset, pd.DataFrame) else load_videos(dataset, problems)
    for problem in problems:
        log(f"warning: {problem}")
    videos = videos[videos["frame"] < 0] if "frame" in videos else videos
    if videos.empty:
        raise DatasetError(f"{dataset}: no videos to extract (a manifest of crops is already extracted)")
    summary = ExtractionSummary()
    if preset.balance:
        videos, summary.balance_note = balance_fakes(videos, preset.seed)
    videos = order_videos(videos)
    if limit is not None:
        videos = videos.head(limit)
    summary.videos = len(videos)

    _prepare_out(out, preset, restart)
    log_path = out / LOG_NAME
    records = read_log(log_path)
    finished = FINAL_STATUSES if not retry_skipped else ("done", "no_face")
    todo = [row for row in videos.to_dict("records") if records.get(row["video"], {}).get("status") not in finished]

    started = time.perf_counter()
    workers = default_workers() if workers is None else max(0, int(workers))
    device = _resolve_device(device, preset)
    try:
        for record in _run_tasks(todo, records, out, preset, workers, device, progress):
            _append_log(log_path, record)
            records[record["video"]] = record
            summary.processed_now += 1
            summary.faces_now += record.get("faces", 0)
    finally:
        summary.seconds = time.perf_counter() - started
        manifest = build_manifest(videos, records, preset)
        from .manifest import write_manifest

        write_manifest(manifest, out / MANIFEST_NAME)
        _count(summary, videos, records, manifest)
        (out / SUMMARY_NAME).write_text(json.dumps(summary.to_dict(), indent=2))
    return summary


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _resolve_device(device: str, preset: ExtractPreset) -> str:
    if preset.detector != "mtcnn":
        return "cpu"
    from ..faces.detect import resolve_device

    return resolve_device(device)


def _prepare_out(out: Path, preset: ExtractPreset, restart: bool) -> None:
    import shutil

    config_path = out / CONFIG_NAME
    if restart:
        for name in (LOG_NAME, MANIFEST_NAME, CONFIG_NAME, SUMMARY_NAME):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "crops", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    wanted = {"preset": preset.to_dict()}
    if config_path.is_file():
        try:
            previous = json.loads(config_path.read_text())
        except ValueError:
            previous = None
        if previous != wanted:
            before = (previous or {}).get("preset", {})
            changed = sorted(k for k, v in preset.to_dict().items() if before.get(k) != v)
            raise ConfigError(
                f"{out} holds an extraction made with other settings ({', '.join(changed) or 'unreadable config'}); "
                "use another output folder, the same settings, or --restart to start it over"
            )
        return
    config_path.write_text(json.dumps(wanted, indent=2))


def _run_tasks(todo: list[dict], records: dict, out: Path, preset: ExtractPreset, workers: int, device: str,
               progress: bool) -> Iterator[dict]:
    """Yield log records as videos finish. Fakes that reuse their original's boxes wait for it."""
    from tqdm import tqdm

    known = {row["video"] for row in todo} | set(records)
    waiting: dict[str, list[dict]] = defaultdict(list)
    ready: list[dict] = []
    for row in todo:
        task = _task(row, out)
        original = row.get("original", "")
        if preset.reuse_original_boxes and row["label"] == "fake" and original in known:
            if original in records and records[original].get("status") in FINAL_STATUSES:
                ready.append(_with_original(task, records[original]))
            else:
                waiting[original].append(task)
        else:
            ready.append(task)
    bar = tqdm(total=len(todo), unit="video", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    faces = 0
    try:
        for record in _execute(ready, waiting, preset, workers, device):
            faces += record.get("faces", 0)
            bar.update(1)
            bar.set_postfix(faces=faces, refresh=False)
            yield record
    finally:
        bar.close()


def _task(row: dict, out: Path) -> dict:
    return {
        "video": str(row["video"]), "source": str(row["path"]), "label": row["label"], "group": str(row["group"]),
        "original": str(row.get("original", "")), "out": str(out),
    }


def _with_original(task: dict, original_record: dict) -> dict:
    status = original_record.get("status")
    if status == "no_face":
        return {**task, "original_status": "no_face"}
    if status == "done" and original_record.get("boxes") is not None:
        return {**task, "original_boxes": original_record["boxes"]}
    return task  # the original was unreadable: the fake is detected on its own


def _execute(ready: list[dict], waiting: dict[str, list[dict]], preset: ExtractPreset, workers: int,
             device: str) -> Iterator[dict]:
    init_args = (preset.to_dict(), device, workers > 1)
    if workers <= 1:
        init_worker(*init_args)
        queue = list(ready)
        while queue:
            record = extract_video(queue.pop(0))
            queue.extend(_with_original(t, record) for t in waiting.pop(record["video"], []))
            yield record
        yield from _orphans(waiting)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # spawn: a forked child would inherit torch's thread pools and can hang in them.
    context = multiprocessing.get_context("spawn")
    queue = list(ready)
    in_flight: set = set()
    executor = ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker, initargs=init_args)
    finished_cleanly = False
    try:
        while queue or in_flight:
            while queue and len(in_flight) < 2 * workers:  # bounded, so an interrupt loses little work
                in_flight.add(executor.submit(extract_video, queue.pop(0)))
            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    record = future.result()
                except BrokenProcessPool:
                    raise DfdetectError(
                        "a worker process died (out of memory?); rerun the same command to resume, "
                        "perhaps with fewer --workers"
                    ) from None
                queue.extend(_with_original(t, record) for t in waiting.pop(record["video"], []))
                yield record
        yield from _orphans(waiting)
        finished_cleanly = True
    finally:
        # After an interrupt, do not wait for the videos in flight: a rerun redoes them.
        executor.shutdown(wait=finished_cleanly, cancel_futures=True)


def _orphans(waiting: dict[str, list[dict]]) -> Iterator[dict]:
    """Fakes whose original never finished (it failed unexpectedly): logged as errors, retried next run."""
    for original, tasks in waiting.items():
        for task in tasks:
            yield {"video": task["video"], "status": "error", "faces": 0, "frames": 0,
                   "reason": f"its original {original} did not finish"}


# ------------------------------------------------------------------------------------------------------
# Log and manifest
# ------------------------------------------------------------------------------------------------------
def read_log(path: Path) -> dict[str, dict]:
    """video -> its latest record. A line cut off by an interrupted write is dropped (and trimmed from the
    file, so the next append starts on a fresh line)."""
    if not path.is_file():
        return {}
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        with open(path, "r+b") as f:
            f.truncate(len(data))
    records = {}
    for line in data.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "video" in record:
            records[record["video"]] = record
    return records


def _append_log(path: Path, record: dict) -> None:
    line = json.dumps(record, separators=(",", ":")) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def build_manifest(videos: pd.DataFrame, records: dict[str, dict], preset: ExtractPreset) -> pd.DataFrame:
    """One row per crop of the finished videos, carrying the video's label, method, group, split, ..."""
    from .manifest import new_manifest

    carried = [c for c in videos.columns if c not in ("path", "frame", "track")]
    rows = []
    for video in videos.to_dict("records"):
        record = records.get(video["video"])
        if not record or record.get("status") != "done":
            continue
        base = {c: video[c] for c in carried}
        base["source"] = video["path"]
        for crop in record.get("rows", []):
            rows.append({**base, **crop, "preset": preset.name})
    if not rows:
        return new_manifest(pd.DataFrame(columns=["path", "label"]))
    return new_manifest(rows)


def _count(summary: ExtractionSummary, videos: pd.DataFrame, records: dict, manifest: pd.DataFrame) -> None:
    statuses = Counter()
    reasons = Counter()
    for video in videos["video"]:
        record = records.get(video)
        if not record:
            continue
        statuses[record["status"]] += 1
        if record["status"] in ("skipped", "error"):
            reasons[_reason_kind(record.get("reason", ""))] += 1
    summary.done, summary.no_face = statuses["done"], statuses["no_face"]
    summary.skipped, summary.errors = statuses["skipped"], statuses["error"]
    summary.faces = len(manifest)
    summary.skip_reasons = dict(reasons)


def _reason_kind(reason: str) -> str:
    """A reason without its file name, so that like reasons are counted together."""
    return re.sub(r"\S*/\S*", "FILE", reason)[:120]
