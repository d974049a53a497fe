"""Running scan jobs: a pool of loaded detectors, worker threads that take queued videos, and the upkeep
(heartbeats, lost jobs put back in the queue, old files removed).

A job is scanned through `dfdetect.api` like `dfdetect scan` does, then explained (`dfdetect.explain`) and
annotated (`dfdetect.render`); its files go to `outputs/<id>/`, which a rerun of the job starts afresh.
The upload is deleted once the result is stored.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .settings import ServeSettings
from .store import Job, JobStore

log = logging.getLogger(__name__)
ORPHAN_UPLOAD_AGE_S = 3600.0   # an upload no job names (a crash while receiving it) is removed after this


class Stopping(BaseException):
    """Raised from a scan's progress callback when the server stops: not an Exception, so that the scan's
    own error handling lets it through and the job goes back to the queue instead of failing."""


class DetectorPool:
    """One loaded Detector per worker: a scan borrows one for itself, so no model is shared between threads."""

    def __init__(self, settings: ServeSettings):
        from ..api import Detector

        self._free: queue.Queue = queue.Queue()
        self.detectors = [Detector.load(settings.model, device=settings.device, sampling=settings.frames)
                          for _ in range(settings.workers)]
        for detector in self.detectors:
            self._free.put(detector)

    @property
    def card(self):
        return self.detectors[0].card

    @contextmanager
    def borrow(self) -> Iterator:
        detector = self._free.get()
        try:
            yield detector
        finally:
            self._free.put(detector)


class ScanService:
    def __init__(self, settings: ServeSettings, store: JobStore, pool: DetectorPool):
        self.settings, self.store, self.pool = settings, store, pool
        self.uploads_dir = settings.data_dir / "uploads"
        self.outputs_dir = settings.data_dir / "outputs"
        for folder in (self.uploads_dir, self.outputs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._held: dict[str, Job] = {}
        self._held_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # -- life cycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        requeued = self.store.requeue_node(self.settings.node)
        if requeued:
            log.warning("%d job(s) that were running when this server stopped are queued again", requeued)
        targets = [self._work] * self.settings.workers + [self._upkeep]
        self._threads = [threading.Thread(target=t, name=f"dfdetect-{i}", daemon=True) for i, t in enumerate(targets)]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Running scans stop at their next chunk of frames and go back to the queue."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    # -- jobs ---------------------------------------------------------------------------------------------
    def scan_now(self, job_id: str, upload) -> Job:
        """Scan an upload in the calling thread (an image, answered in its request) and return its job done.
        The job is made once a detector is free, already claimed, so no worker takes it meanwhile; if the
        server dies during the scan, the restarted server finishes it from the queue."""
        with self.pool.borrow() as detector:
            job = self.store.create(job_id, upload.kind, upload.filename, upload.path.name, upload.options,
                                    claimed_by=self.settings.node)
            self._run(job, detector)
        return self.store.get(job_id)

    def _work(self) -> None:
        while not self._stop.is_set():
            with self.pool.borrow() as detector:
                job = self.store.claim(self.settings.node)
                if job is not None:
                    self._run(job, detector)
                    continue
            self._wake.wait(1.0)
            self._wake.clear()

    def _run(self, job: Job, detector) -> None:
        with self._held_lock:
            self._held[job.id] = job
        try:
            self._scan_job(job, detector)
        except Stopping:
            self.store.release(job)
        except Exception as exc:  # a failure of the server's own must not kill the worker
            log.exception("job %s failed", job.id)
            self.store.finish(job, "failed", None, error=f"internal error {type(exc).__name__}: {exc}")
        finally:
            with self._held_lock:
                self._held.pop(job.id, None)

    def _scan_job(self, job: Job, detector) -> None:
        from ..media import FrameSampling

        upload = self.uploads_dir / job.upload if job.upload else None
        if upload is None or not upload.exists():
            self.store.finish(job, "failed", None, error="the uploaded file is gone (removed before it was scanned)")
            return
        out_dir = self.outputs_dir / job.id
        shutil.rmtree(out_dir, ignore_errors=True)   # what an interrupted run of this job left
        out_dir.mkdir(parents=True)
        detector.sampling = FrameSampling.parse(job.options.get("frames", self.settings.frames))
        result = detector.scan(upload, on_progress=self._progress(job, 0.0, 0.8, "scanning"))
        explanation = {"faces": [], "files": {}, "problems": []}
        if result.tracks:
            self._explain(job, detector, result, out_dir, explanation)
        if job.options.get("annotate", True) and result.verdict in ("fake", "real", "no_face"):
            self._annotate(job, result, out_dir, explanation)
        result.path = job.filename  # the client's name, not where this server kept the file
        status = "failed" if result.verdict == "error" else "done"
        if self.store.finish(job, status, result.model_dump(mode="json"), explanation, result.error):
            upload.unlink(missing_ok=True)

    def _explain(self, job: Job, detector, result, out_dir: Path, explanation: dict) -> None:
        from ..explain import explain_faces, save_explanation

        self._beat(job, 0.8, "explaining")
        try:
            faces = explain_faces(detector, result, self.settings.faces_per_person)
            saved = save_explanation(result, faces, out_dir)
        except Exception as exc:  # the verdict stands without its pictures
            log.warning("explaining job %s failed: %s", job.id, exc)
            explanation["problems"].append(f"heat maps: {exc}")
            return
        explanation["faces"] = [
            {"track_id": f.track_id, "frame_index": f.frame_index, "time_s": f.time_s, "verdict": f.verdict,
             "probability": round(f.probability, 6), "scan_probability": f.scan_probability,
             "crop": crop.name, "heatmap": heat.name}
            for f, crop, heat in saved.faces]
        if saved.timeline:
            explanation["files"]["timeline"] = saved.timeline.name

    def _annotate(self, job: Job, result, out_dir: Path, explanation: dict) -> None:
        from ..render import render_result

        self._beat(job, 0.9, "annotating")
        name = "annotated.mp4" if result.media and result.media.kind == "video" else "annotated.png"
        try:
            render_result(result, out_dir / name)
            explanation["files"]["annotated"] = name
        except Exception as exc:
            log.warning("annotating job %s failed: %s", job.id, exc)
            explanation["problems"].append(f"annotated copy: {exc}")

    def _progress(self, job: Job, start: float, end: float, stage: str):
        last = [0.0]

        def report(done: float) -> None:
            if self._stop.is_set():
                raise Stopping()
            now = time.monotonic()
            if now - last[0] >= 0.5:  # a database write per chunk of frames at most twice a second
                last[0] = now
                self._beat(job, start + (end - start) * done, stage)
        return report

    def _beat(self, job: Job, progress: float, stage: str) -> None:
        if self._stop.is_set():
            raise Stopping()
        self.store.beat(job, progress, stage)

    # -- upkeep -------------------------------------------------------------------------------------------
    def _upkeep(self) -> None:
        next_cleanup = 0.0
        while not self._stop.wait(min(5.0, self.settings.lease_s / 4)):
            with self._held_lock:
                held = list(self._held.values())
            for job in held:
                self.store.beat(job)
            if self.store.requeue_stale(self.settings.lease_s):
                self.wake()
            if time.monotonic() >= next_cleanup:
                self.remove_old_files()
                next_cleanup = time.monotonic() + self.settings.cleanup_every_s

    def remove_old_files(self) -> int:
        """Outputs of jobs finished more than keep_hours ago, and uploads no job names; returns jobs cleaned."""
        cutoff = time.time() - self.settings.keep_hours * 3600
        expired = self.store.finished_before(cutoff)
        for job_id in expired:
            shutil.rmtree(self.outputs_dir / job_id, ignore_errors=True)
            self.store.mark_files_removed(job_id)
        in_use = self.store.uploads_in_use()
        for upload in self.uploads_dir.glob("*.upload"):
            if upload.name not in in_use and time.time() - upload.stat().st_mtime > ORPHAN_UPLOAD_AGE_S:
                upload.unlink(missing_ok=True)
        return len(expired)
