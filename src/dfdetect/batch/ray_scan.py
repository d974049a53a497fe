"""`dfdetect scan --db FILE --ray`: the same scan spread over a Ray cluster, into the same results database.

The driver (this process) catalogues the files, claims each one in the database as `dfdetect scan --db` does,
and sends it through two kinds of Ray actors: face finders (one CPU each) decode the file and detect, crop and
check its faces (`Detector.find_faces`); face scorers (on a GPU each where the cluster has GPUs) classify the
crops and give the verdicts (`Detector.score_faces`, the one inference path). Crops go from finder to scorer
through Ray's object store, never through the driver; each result comes back to the driver, which commits it.
Media paths and a checkpoint path must be readable at the same path on every node (a shared file system);
the database stays on the driver's disk.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import replace
from typing import Sequence

from ..errors import DfdetectError
from ..results import ScanResult
from .runner import POLL_S, BatchJob, WorkerStats, scan_config
from .store import Item, LeaseKeeper, ResultStore


def _ray():
    try:
        import ray
    except ImportError:
        raise DfdetectError("--ray needs Ray: pip install 'dfdetect[cluster]'") from None
    return ray


class FaceFinder:
    """Decodes files and finds their faces on one CPU; the crops stay in Ray's object store."""

    def __init__(self, job: BatchJob):
        self.detector = replace(job, device="cpu").load_detector(threads=1)

    def find(self, path: str):
        return self.detector.find_faces(path)


class FaceScorer:
    """Classifies the faces a finder kept and gives the verdicts, on a GPU when it was given one."""

    def __init__(self, job: BatchJob, use_gpu: bool):
        self.detector = replace(job, device="cuda" if use_gpu else "cpu").load_detector(threads=None if use_gpu else 1)

    def score(self, found) -> str:
        return self.detector.score_faces(found).model_dump_json()


def run_batch_on_ray(job: BatchJob, paths: Sequence, address: str | None = None, finders: int | None = None,
                     scorers: int | None = None) -> tuple[str, list[Item], WorkerStats]:
    """Scan `paths` on a Ray cluster (`address`; None starts a local one) into job.db. By default one finder
    per CPU the cluster has left after the scorers, and one scorer per GPU (one on a CPU where there is none)."""
    ray = _ray()
    config = scan_config(job.load_detector(), job.model)
    with ResultStore(job.db, lease_s=job.lease_s) as store:
        items = store.catalogue(paths)
        key = store.register(config)
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        try:
            with LeaseKeeper(job.db, store.owner, job.lease_s):
                pool = _ActorPools(ray, job, finders, scorers)
                stats = _drive(ray, store, key, items, pool, job)
        except BaseException:
            store.release()
            raise
        finally:
            if started_here:
                ray.shutdown()
    return key, items, stats


class _ActorPools:
    """The finder and scorer actors, each task sent to the actor of its kind with the fewest in flight."""

    def __init__(self, ray, job: BatchJob, finders: int | None, scorers: int | None):
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
        use_gpu = gpus > 0 and job.device != "cpu"
        n_scorers = scorers or (gpus if use_gpu else 1)
        # A GPU scorer takes a CPU to feed it; a CPU scorer is light (the classifier is a small share of a scan)
        # and takes none, so that every CPU finds faces.
        scorer_cpus = 1 if use_gpu else 0
        n_finders = finders or max(1, cpus - n_scorers * scorer_cpus)
        options = dict(max_restarts=1, max_task_retries=1)
        finder_cls = ray.remote(num_cpus=1, **options)(FaceFinder)
        scorer_cls = ray.remote(num_cpus=scorer_cpus, num_gpus=1 if use_gpu else 0, **options)(FaceScorer)
        self.finders = [finder_cls.remote(job) for _ in range(n_finders)]
        self.scorers = [scorer_cls.remote(job, use_gpu) for _ in range(n_scorers)]
        self.finder_load = [0] * n_finders
        self.scorer_load = [0] * n_scorers
        print(f"ray: {n_finders} face finders (CPU), {n_scorers} face scorers ({'GPU' if use_gpu else 'CPU'}) "
              f"on {cpus} CPUs, {gpus} GPUs", file=sys.stderr)

    @property
    def capacity(self) -> int:
        return 2 * len(self.finders)  # one file waiting per finder keeps it busy between files

    def submit(self, path: str):
        f = self.finder_load.index(min(self.finder_load))
        s = self.scorer_load.index(min(self.scorer_load))
        self.finder_load[f] += 1
        self.scorer_load[s] += 1
        ref = self.scorers[s].score.remote(self.finders[f].find.remote(path))
        return ref, (f, s)

    def finished(self, slots: tuple[int, int]) -> None:
        self.finder_load[slots[0]] -= 1
        self.scorer_load[slots[1]] -= 1


def _drive(ray, store: ResultStore, key: str, items: list[Item], pool: _ActorPools, job: BatchJob) -> WorkerStats:
    """Claim, submit and commit until every item has a result (others' claims are waited for, as in runner)."""
    stats, pending = WorkerStats(), {}
    retry_before = time.time() if job.retry_errors else None
    waiting, first_pass = list(items), True
    while waiting or pending:
        done = store.done_contents(key, errors=not (job.retry_errors and first_pass))
        busy, queue = [], iter(waiting)
        for item in queue:
            if item.content_sha256 in done or any(p.content_sha256 == item.content_sha256 for p, _ in pending.values()):
                stats.skipped += first_pass
                continue
            state = store.claim(item, key, retry_errors_before=retry_before)
            if state == "busy":
                busy.append(item)
            elif state == "done":
                stats.skipped += first_pass
            else:
                ref, slots = pool.submit(item.path)
                pending[ref] = (item, slots)
                while len(pending) >= pool.capacity:
                    _collect(ray, store, key, pending, pool, stats, job)
        while pending:
            _collect(ray, store, key, pending, pool, stats, job)
        waiting, first_pass = busy, False
        if waiting:
            time.sleep(POLL_S)
    return stats


def _collect(ray, store, key, pending: dict, pool: _ActorPools, stats: WorkerStats, job: BatchJob) -> None:
    ready, _ = ray.wait(list(pending), num_returns=1)
    for ref in ready:
        item, slots = pending.pop(ref)
        pool.finished(slots)
        try:
            result = ScanResult.model_validate_json(ray.get(ref))
        except ray.exceptions.RayError as exc:  # an actor or node lost: the file's error says so; --retry-errors redoes it
            result = ScanResult(path=item.path, verdict="error",
                                error=f"cluster error {type(exc).__name__}: {str(exc).splitlines()[0]}")
        if store.complete(item, key, result):
            stats.scanned += 1
            if not job.quiet:
                print(result.summary_line(), flush=True)
        else:
            stats.lost += 1
