"""Scan files into a results database (`dfdetect scan --db`), in this process or in several worker processes.

Every worker walks the same list, claims each file that has no result yet, scans it with `Detector.scan` and
commits its result; a file another live worker holds is left to it, and looked at again once the pass is over
(its result will be there, or its lease has run out and it is scanned here). A rerun skips every file whose
content already has a result under the same weights and settings.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .store import DEFAULT_LEASE_S, Item, LeaseKeeper, ResultStore, ScanConfig

POLL_S = 0.5  # how often a worker looks again at files that other workers are scanning


@dataclass
class BatchJob:
    """Everything a worker needs to take part in a scan: plain data, so it can be sent to another process."""

    db: str
    model: str = "default"
    device: str = "auto"
    scan_options: dict = field(default_factory=dict)  # api.ScanOptions fields (sampling, detector, threshold, ...)
    lease_s: float = DEFAULT_LEASE_S
    retry_errors: bool = False
    quiet: bool = False

    def load_detector(self, threads: int | None = None):
        from ..api import Detector

        return Detector.load(self.model, device=self.device, threads=threads, **self.scan_options)


@dataclass
class WorkerStats:
    scanned: int = 0
    skipped: int = 0
    lost: int = 0  # finished, but another worker had stored the file's result first


def scan_config(detector, model: str) -> ScanConfig:
    """The weights hash and every setting that changes a verdict: a result is reused only when all are equal."""
    card = detector.card
    weights = card.weights_sha256 or _file_sha256(_weights_path(model))
    settings = {
        "sampling": detector.options.sampling, "detector": detector.detector_name,
        "detector_options": detector.options.detector_options, "crop": card.crop.model_dump(),
        "input_size": card.input_size, "temperature": card.temperature, "threshold": detector.threshold,
        "video_threshold": detector.video_threshold, "aggregation": detector.aggregation.name,
        "tta": detector.options.tta, "min_track_fraction": detector.options.min_track_fraction,
    }
    return ScanConfig(weights_sha256=weights, model_name=card.name, settings=settings)


def _weights_path(model: str) -> Path:
    from ..models.checkpoint import resolve

    return resolve(model)[0]


def _file_sha256(path: Path) -> str:
    from ..digest import file_sha256

    return file_sha256(path)


def run_worker(job: BatchJob, items: Sequence[Item], detector=None, start_at: int = 0,
               progress: bool = False) -> WorkerStats:
    """Scan every item that has no result yet, sharing the work with any other worker on the database.
    `start_at` rotates the list so that workers started together begin in different places; `progress`
    shows a bar of the files this worker has seen settled."""
    from tqdm import tqdm

    detector = detector or job.load_detector()
    config = scan_config(detector, job.model)
    stats = WorkerStats()
    items = list(items[start_at:]) + list(items[:start_at])
    bar = tqdm(total=len(items), desc="scanning", unit="file", disable=not progress, file=sys.stderr)

    def on_result(result) -> None:
        if not job.quiet:
            bar.write(result.summary_line(), file=sys.stdout)
            sys.stdout.flush()

    with ResultStore(job.db, lease_s=job.lease_s) as store, bar:
        key = store.register(config)
        with LeaseKeeper(job.db, store.owner, job.lease_s):
            try:
                _scan_until_done(store, key, items, detector, job.retry_errors, stats, on_result,
                                 tick=lambda: bar.update(1))
            except BaseException:
                store.release()  # an interrupted run: others (or the next run) take its files at once
                raise
    return stats


def _scan_until_done(store, key, items, detector, retry_errors, stats, on_result, tick) -> None:
    # Errors stored before this run are scanned again with retry_errors; one stored during it is not.
    retry_before = time.time() if retry_errors else None
    waiting, first_pass = items, True
    while waiting:
        done = store.done_contents(key, errors=not (retry_errors and first_pass))
        busy = []
        for item in waiting:
            if item.content_sha256 in done:
                stats.skipped += first_pass
                tick()
                continue
            state = store.claim(item, key, retry_errors_before=retry_before)
            if state == "busy":
                busy.append(item)
                continue
            tick()
            if state == "done":
                stats.skipped += first_pass
            else:
                result = detector.scan(item.path)
                if store.complete(item, key, result):
                    stats.scanned += 1
                    on_result(result)
                else:
                    stats.lost += 1
                done.add(item.content_sha256)  # a copy of this file later in the list is done too
        waiting, first_pass = busy, False
        if waiting:
            time.sleep(POLL_S)


def run_batch(job: BatchJob, paths: Sequence[Path], workers: int = 1) -> tuple[str, list[Item], WorkerStats]:
    """Catalogue the files, then scan them here (workers=1) or in `workers` processes; returns the
    configuration key, the items and the summed statistics."""
    detector = job.load_detector()
    config = scan_config(detector, job.model)
    with ResultStore(job.db, lease_s=job.lease_s) as store:
        items = store.catalogue(paths)
        key = store.register(config)
    for warning in detector.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if workers == 1:
        return key, items, run_worker(job, items, detector=detector, progress=not job.quiet and sys.stderr.isatty())
    del detector  # each worker process loads its own
    context = multiprocessing.get_context("spawn")  # torch and fork do not mix
    with context.Pool(workers) as pool:
        calls = [pool.apply_async(_worker_process, (job, items, i * len(items) // workers, workers))
                 for i in range(workers)]
        parts = [call.get() for call in calls]
    total = WorkerStats(*(sum(getattr(p, f) for p in parts) for f in ("scanned", "skipped", "lost")))
    return key, items, total


def _worker_process(job: BatchJob, items: list[Item], start_at: int, workers: int) -> WorkerStats:
    # Share the cores: N processes with all cores' worth of threads each only fight over them.
    detector = job.load_detector(threads=max(1, (os.cpu_count() or 1) // workers))
    return run_worker(job, items, detector=detector, start_at=start_at)
