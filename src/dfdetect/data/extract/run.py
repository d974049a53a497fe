"""A whole dataset: which videos, in what order, on how many processes; resumable."""

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

from ...errors import ConfigError, DatasetError, DfdetectError
from ...faces.detect import detector_device
from .presets import ExtractPreset
from .records import (
    CONFIG_NAME, FINAL_STATUSES, LOG_NAME, MANIFEST_NAME, SUMMARY_NAME, _append_log, build_manifest, read_log,
)
from .worker import extract_video, init_pool_worker, init_worker


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
    from ..indexes import index_dataset
    from ..manifest import read_manifest
    from ..splits import assign_splits

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
    device = detector_device(preset.detector, device)
    try:
        for record in _run_tasks(todo, records, out, preset, workers, device, progress):
            _append_log(log_path, record)
            records[record["video"]] = record
            summary.processed_now += 1
            summary.faces_now += record.get("faces", 0)
    finally:
        summary.seconds = time.perf_counter() - started
        manifest = build_manifest(videos, records, preset)
        from ..manifest import write_manifest

        write_manifest(manifest, out / MANIFEST_NAME)
        _count(summary, videos, records, manifest)
        (out / SUMMARY_NAME).write_text(json.dumps(summary.to_dict(), indent=2))
    return summary


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


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
    executor = ProcessPoolExecutor(workers, mp_context=context, initializer=init_pool_worker,
                                   initargs=(os.getpid(), *init_args))
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
