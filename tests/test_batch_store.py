"""The results database's claims, leases and exports, on a real SQLite file (no model involved)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest

from dfdetect.batch.store import ResultStore, ScanConfig, StoreError
from dfdetect.results import ScanResult

CONFIG = ScanConfig(weights_sha256="ab" * 32, model_name="m", settings={"sampling": "4", "detector": "mtcnn",
                                                                     "aggregation": "max_track", "tta": False})


@pytest.fixture
def files(tmp_path):
    for name, content in (("a.jpg", b"one"), ("b.jpg", b"two"), ("copy_of_a.jpg", b"one")):
        (tmp_path / name).write_bytes(content)
    return [tmp_path / n for n in ("a.jpg", "b.jpg", "copy_of_a.jpg")]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_claimed_file_is_busy_for_others_until_its_owner_finishes(tmp_path, files):
    db = tmp_path / "r.sqlite"
    a, b = ResultStore(db), ResultStore(db)
    key = a.register(CONFIG)
    items = a.catalogue(files)
    assert items[0].content_sha256 == items[2].content_sha256 != items[1].content_sha256  # keyed by content
    assert a.claim(items[0], key) == "claimed"
    assert b.claim(items[0], key) == "busy"
    assert b.claim(items[2], key) == "busy"  # the same content under another name is the same work
    assert a.complete(items[0], key, ScanResult(path=items[0].path, verdict="real", probability=0.1))
    assert b.claim(items[2], key) == "done"
    stored = {s.path: s for s in a.stored(key)}
    assert set(stored) == {str(files[0]), str(files[2])}  # b.jpg has no result yet
    assert stored[str(files[2])].result.path == str(files[2]) and stored[str(files[2])].attempts == 1
    assert a.counts(key) == {"real": 2, "pending": 1}


def test_an_expired_lease_or_a_dead_owner_gives_the_file_to_another_process(tmp_path, files):
    db = tmp_path / "r.sqlite"
    short = ResultStore(db, owner="otherhost:1:x", lease_s=0.2)  # another host: only its lease can free the file
    key = short.register(CONFIG)
    items = short.catalogue(files)
    assert short.claim(items[0], key) == "claimed"
    other = ResultStore(db)
    assert other.claim(items[0], key) == "busy"
    time.sleep(0.3)
    assert other.claim(items[0], key) == "claimed"
    # The first owner comes back too late: the result stored first stands, the late one is dropped.
    assert other.complete(items[0], key, ScanResult(path=items[0].path, verdict="fake", probability=0.9))
    assert not short.complete(items[0], key, ScanResult(path=items[0].path, verdict="real", probability=0.1))
    assert next(other.stored(key)).result.verdict == "fake"

    import socket

    dead = ResultStore(db, owner=f"{socket.gethostname()}:{_dead_pid()}:y", lease_s=3600)
    assert dead.claim(items[1], key) == "claimed"
    assert other.claim(items[1], key) == "claimed"  # its owner is no longer running: no need to wait an hour
    row = sqlite3.connect(db).execute("SELECT attempts, owner FROM scans WHERE content_sha256 = ?",
                                      (items[1].content_sha256,)).fetchone()
    assert row == (2, other.owner)


def test_released_claims_and_stored_errors(tmp_path, files):
    db = tmp_path / "r.sqlite"
    a, b = ResultStore(db, owner="otherhost:1:x"), ResultStore(db)
    key = a.register(CONFIG)
    items = a.catalogue(files)
    assert a.claim(items[1], key) == "claimed"
    a.release()  # an interrupted run gives its files back at once
    assert b.claim(items[1], key) == "claimed"
    b.complete(items[1], key, ScanResult(path=items[1].path, verdict="error", error="bad"))
    assert b.claim(items[1], key) == "done"
    assert b.claim(items[1], key, retry_errors_before=time.time() + 1) == "claimed"
    assert b.done_contents(key, errors=False) == set()


def test_a_changed_file_is_hashed_again_and_an_unreadable_one_gets_a_key(tmp_path, files):
    db = tmp_path / "r.sqlite"
    store = ResultStore(db)
    before = store.catalogue(files)[1].content_sha256
    files[1].write_bytes(b"something else")
    assert store.catalogue(files)[1].content_sha256 != before
    missing = store.catalogue([tmp_path / "gone.mp4"])[0]
    assert missing.content_sha256.startswith("unreadable:")


def test_a_file_that_is_not_a_database_is_one_clear_error(tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("these are notes, not a database\n" * 100)
    with pytest.raises(StoreError, match="not a dfdetect results database"):
        ResultStore(bad)
    assert bad.read_text().startswith("these are notes")  # never overwritten
