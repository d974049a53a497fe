"""The scan jobs' database (a SQLite file in WAL mode, and a real PostgreSQL server): claims are exclusive, a superseded claim cannot write a
result, jobs of a stopped server return to the queue, old files are removed. No server or model needed."""

from __future__ import annotations

import os
import threading
import time

import pytest

from dfdetect.errors import ConfigError
from dfdetect.serve.store import JobStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'scans.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = JobStore(url)
    store._execute("DELETE FROM scans")  # the PostgreSQL server lives for the session
    yield store
    store.close()


def _add(store, n, kind="video"):
    ids = [f"{i:032x}" for i in range(n)]
    for job_id in ids:
        store.create(job_id, kind, f"clip{job_id[-2:]}.mp4", f"{job_id}.upload", {"frames": "4"})
        time.sleep(0.002)  # distinct creation times: the queue is first in, first out
    return ids


def test_jobs_are_claimed_in_order_and_each_once_across_threads(store):
    ids = _add(store, 40)
    claimed, lock = [], threading.Lock()

    def worker(node):
        while (job := store.claim(node)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"n{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == ids and len(set(claimed)) == 40
    assert store.count("running") == 40 and store.count("queued") == 0


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_claims_are_exclusive_between_processes_sharing_the_database(backend, request, tmp_path):
    """Two server processes on one database never take the same job."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'shared.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    main = JobStore(url)
    main._execute("DELETE FROM scans")
    ids = _add(main, 30)
    code = ("import sys; from dfdetect.serve.store import JobStore; s = JobStore(sys.argv[1]); out = []\n"
            "while (j := s.claim(sys.argv[2])) is not None: out.append(j.id)\n"
            "print(' '.join(out))")
    procs = [subprocess.Popen([sys.executable, "-c", code, url, f"p{i}"], stdout=subprocess.PIPE, text=True,
                              env=os.environ.copy()) for i in range(2)]
    taken = [p.communicate(timeout=120)[0].split() for p in procs]
    assert sorted(taken[0] + taken[1]) == ids
    main.close()


def test_a_superseded_claim_cannot_write_a_result(store):
    (job_id,) = _add(store, 1)
    first = store.claim("a")
    assert store.requeue_stale(lease_s=-1) == 1  # its worker went silent: the job is queued again
    second = store.claim("b")
    assert second.attempt == first.attempt + 1
    assert not store.finish(first, "done", {"verdict": "fake"})
    assert not store.beat(first, 0.5)
    assert store.finish(second, "done", {"verdict": "real"})
    job = store.get(job_id)
    assert job.status == "done" and job.result == {"verdict": "real"} and job.upload is None


def test_a_restarted_node_takes_back_only_its_own_jobs(store):
    a, b, c = _add(store, 3)
    store.claim("here"), store.claim("there")
    image = store.create("f" * 32, "image", "photo.jpg", "x.upload", {}, claimed_by="here")
    assert image.status == "running" and image.attempt == 1
    assert store.claim("there") is not None and store.claim("there") is None  # c; the image was never free
    assert store.requeue_node("there") == 2
    store.claim("there"), store.claim("there")
    assert store.requeue_node("here") == 2  # a and the image
    assert store.get(a).status == "queued" and store.get(b).status == "running" and store.get(c).status == "running"
    assert store.get(image.id).status == "queued"
    assert store.claim("here", job_id=b) is None  # a running job is not claimed again by id


def test_old_outputs_are_removed_and_results_kept(tmp_path):
    from dfdetect.serve.jobs import ScanService
    from dfdetect.serve.settings import ServeSettings

    settings = ServeSettings(data_dir=tmp_path, keep_hours=1)
    store = JobStore(settings.database_url)
    service = ScanService(settings, store, pool=None)
    (old, new) = _add(store, 2)
    for job_id in (old, new):
        store.finish(store.claim("n", job_id), "done", {"verdict": "real"})
        (service.outputs_dir / job_id).mkdir()
        (service.outputs_dir / job_id / "annotated.mp4").write_bytes(b"x")
    store._execute("UPDATE scans SET finished = ? WHERE id = ?", (time.time() - 7200, old))
    orphan = service.uploads_dir / "deadbeef.upload"
    orphan.write_bytes(b"x")
    os.utime(orphan, (time.time() - 7200,) * 2)
    assert service.remove_old_files() == 1
    assert not (service.outputs_dir / old).exists() and (service.outputs_dir / new).exists()
    assert store.get(old).files_removed and store.get(old).result == {"verdict": "real"}
    assert not orphan.exists()
    store.close()


def test_a_database_url_that_is_not_understood_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not understood"):
        JobStore("mysql://localhost/db")
