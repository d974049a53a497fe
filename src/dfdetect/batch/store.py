"""A scan's results in one SQLite file that survives crashes and is shared by several processes.

A result is keyed by the file's content (SHA-256) and the scan configuration (the model's weights hash plus the
settings that change a verdict, `ScanConfig.key`). A process claims a file before scanning it (BEGIN IMMEDIATE,
so two claims never interleave) and holds it under a lease it keeps renewing while it works; the result is
committed in one transaction as the file finishes. A process that dies leaves its claim behind: another process
takes it over once the lease expires, or at once when the claim's owner is a process on this host that is no
longer running. WAL mode lets readers (`dfdetect results`) read while workers write.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ..digest import file_sha256
from ..errors import DfdetectError
from ..results import ScanResult

SCHEMA_VERSION = 1
DEFAULT_LEASE_S = 120.0
OPEN_TIMEOUT_S = 60.0  # how long opening waits for other processes that hold the database
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, content_sha256 TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS files_content ON files (content_sha256);
CREATE TABLE IF NOT EXISTS configs (
    config_key TEXT PRIMARY KEY, weights_sha256 TEXT NOT NULL, model_name TEXT NOT NULL, settings TEXT NOT NULL,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS scans (
    content_sha256 TEXT NOT NULL, config_key TEXT NOT NULL REFERENCES configs (config_key),
    state TEXT NOT NULL CHECK (state IN ('running', 'done')), owner TEXT NOT NULL, lease_until REAL NOT NULL,
    attempts INTEGER NOT NULL, path TEXT NOT NULL, verdict TEXT, probability REAL, unsure INTEGER,
    error TEXT, result_json TEXT, started_at REAL NOT NULL, finished_at REAL,
    PRIMARY KEY (content_sha256, config_key));
CREATE INDEX IF NOT EXISTS scans_state ON scans (config_key, state);
"""


class StoreError(DfdetectError):
    """A results database that cannot be opened or is not one."""


@dataclass(frozen=True)
class Item:
    """A file to scan: its absolute path and what its content is keyed by."""

    path: str
    content_sha256: str


@dataclass(frozen=True)
class ScanConfig:
    """What a result depends on besides the file: the weights and the settings that change verdicts."""

    weights_sha256: str
    model_name: str
    settings: dict

    @property
    def key(self) -> str:
        text = json.dumps({"weights_sha256": self.weights_sha256, **self.settings}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StoredScan:
    """One finished result as stored, for a file path that has it."""

    path: str
    content_sha256: str
    config_key: str
    attempts: int
    owner: str
    finished_at: float
    result: ScanResult


def new_owner() -> str:
    """host:pid:random, so that a claim's owner can be told dead when it is a process on this host."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_is_gone(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's live process
        return False
    return False


def content_key(path: Path) -> tuple[int, int, str]:
    """(size, mtime_ns, key) of a file; a file that cannot be read is keyed by its path, to get its error once."""
    try:
        stat = path.stat()
        return stat.st_size, stat.st_mtime_ns, file_sha256(path)
    except OSError:
        return -1, -1, "unreadable:" + hashlib.sha256(str(path).encode()).hexdigest()


class ResultStore:
    """One process's connection to a results database. Use one per thread (SQLite connections are not shared)."""

    def __init__(self, path: str | Path, owner: str | None = None, lease_s: float = DEFAULT_LEASE_S):
        self.path = Path(path)
        self.owner = owner or new_owner()
        self.lease_s = lease_s
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder, not a results database file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + OPEN_TIMEOUT_S
        while True:
            try:
                self._connect()
                return
            except sqlite3.OperationalError as exc:
                # Switching a new file to WAL answers "locked" at once, without waiting, while another process
                # sets the same file up: wait and try again.
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise StoreError(f"{self.path} is not a dfdetect results database ({exc})") from None
                time.sleep(0.05)
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self.path} is not a dfdetect results database ({exc})") from None

    def _connect(self) -> None:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE), nothing is begun behind our back.
        self.db = sqlite3.connect(str(self.path), timeout=OPEN_TIMEOUT_S, isolation_level=None)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # in WAL: durable when a process dies, not on power loss
            self.db.executescript(_SCHEMA)  # each statement is idempotent: several processes may open at once
            with self._transaction():
                self._check_version()
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _transaction(self):
        return _Transaction(self.db)

    def _check_version(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) != SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema version {row[0]}; this dfdetect reads {SCHEMA_VERSION}")

    # -- files and configurations ------------------------------------------------------------------
    def catalogue(self, paths: Iterable[Path]) -> list[Item]:
        """The items for these files, hashing only the ones that are new or changed (size or mtime)."""
        items, pending = [], []
        for path in paths:
            path = Path(os.path.abspath(path))
            row = self.db.execute("SELECT size, mtime_ns, content_sha256 FROM files WHERE path = ?",
                                  (str(path),)).fetchone()
            try:
                stat = path.stat()
                unchanged = row is not None and (row[0], row[1]) == (stat.st_size, stat.st_mtime_ns)
            except OSError:
                unchanged = False
            if unchanged:
                items.append(Item(str(path), row[2]))
                continue
            size, mtime_ns, key = content_key(path)
            pending.append((str(path), size, mtime_ns, key))
            items.append(Item(str(path), key))
            if len(pending) >= 256:  # one transaction per few hundred new files, not per file
                self._add_files(pending)
        self._add_files(pending)
        return items

    def _add_files(self, rows: list[tuple]) -> None:
        if rows:
            with self._transaction():
                self.db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", rows)
            rows.clear()

    def done_contents(self, config_key: str, errors: bool = True) -> set[str]:
        """Contents with a stored result under a configuration (one read, to skip them without claiming);
        errors=False leaves out the ones whose result is an error."""
        query = "SELECT content_sha256 FROM scans WHERE config_key = ? AND state = 'done'"
        query += "" if errors else " AND verdict != 'error'"
        return {row[0] for row in self.db.execute(query, (config_key,))}

    def register(self, config: ScanConfig) -> str:
        with self._transaction():
            self.db.execute("INSERT OR IGNORE INTO configs VALUES (?, ?, ?, ?, ?)",
                            (config.key, config.weights_sha256, config.model_name,
                             json.dumps(config.settings, sort_keys=True), time.time()))
        return config.key

    def configs(self) -> list[dict]:
        """Every configuration in the database, newest first, with its counts by state and verdict."""
        out = []
        for key, weights, name, settings, created in self.db.execute(
                "SELECT config_key, weights_sha256, model_name, settings, created_at FROM configs"):
            counts = dict(self.db.execute(
                "SELECT CASE WHEN state = 'done' THEN verdict ELSE 'running' END, COUNT(*) FROM scans "
                "WHERE config_key = ? GROUP BY 1", (key,)).fetchall())
            last = self.db.execute("SELECT MAX(finished_at) FROM scans WHERE config_key = ?", (key,)).fetchone()[0]
            out.append({"config_key": key, "weights_sha256": weights, "model_name": name,
                        "settings": json.loads(settings), "created_at": created, "last_finished": last or created,
                        "counts": counts})
        return sorted(out, key=lambda c: c["last_finished"], reverse=True)

    # -- claims ------------------------------------------------------------------------------------
    def claim(self, item: Item, config_key: str, retry_errors_before: float | None = None) -> str:
        """'claimed' (scan it now), 'done' (a result is stored) or 'busy' (a live process is scanning it).
        `retry_errors_before`: a stored error that finished before this time is claimed again."""
        now = time.time()
        with self._transaction():
            row = self.db.execute("SELECT state, owner, lease_until, verdict, finished_at FROM scans "
                                  "WHERE content_sha256 = ? AND config_key = ?",
                                  (item.content_sha256, config_key)).fetchone()
            if row is None:
                self.db.execute("INSERT INTO scans (content_sha256, config_key, state, owner, lease_until, attempts, "
                                "path, started_at) VALUES (?, ?, 'running', ?, ?, 1, ?, ?)",
                                (item.content_sha256, config_key, self.owner, now + self.lease_s, item.path, now))
                return "claimed"
            state, owner, lease_until, verdict, finished_at = row
            retry = retry_errors_before is not None and verdict == "error" and finished_at < retry_errors_before
            if state == "done" and not retry:
                return "done"
            if state == "running" and owner != self.owner and lease_until > now and not _owner_is_gone(owner):
                return "busy"
            self.db.execute("UPDATE scans SET state = 'running', owner = ?, lease_until = ?, attempts = attempts + 1, "
                            "path = ?, started_at = ? WHERE content_sha256 = ? AND config_key = ?",
                            (self.owner, now + self.lease_s, item.path, now, item.content_sha256, config_key))
            return "claimed"

    def complete(self, item: Item, config_key: str, result: ScanResult) -> bool:
        """Store a finished result in one transaction. False when another process finished the file first
        (this one's lease had expired), in which case the stored result stands."""
        with self._transaction():
            cursor = self.db.execute(
                "UPDATE scans SET state = 'done', owner = ?, verdict = ?, probability = ?, unsure = ?, error = ?, "
                "result_json = ?, finished_at = ? WHERE content_sha256 = ? AND config_key = ? "
                "AND state = 'running'",
                (self.owner, result.verdict, result.probability, int(result.unsure), result.error,
                 result.model_dump_json(), time.time(), item.content_sha256, config_key))
            return cursor.rowcount == 1

    def renew(self) -> int:
        """Extend the lease of every file this process is scanning; the number of claims renewed."""
        with self._transaction():
            return self.db.execute("UPDATE scans SET lease_until = ? WHERE owner = ? AND state = 'running'",
                                   (time.time() + self.lease_s, self.owner)).rowcount

    def release(self) -> None:
        """Give up this process's unfinished claims at once (an interrupted run), so others need not wait."""
        with self._transaction():
            self.db.execute("UPDATE scans SET lease_until = 0 WHERE owner = ? AND state = 'running'", (self.owner,))

    # -- reading -----------------------------------------------------------------------------------
    def stored(self, config_key: str, paths: Iterable[str] | None = None) -> Iterator[StoredScan]:
        """Finished results of a configuration, one per catalogued file path (in path order), each result
        carrying that file's own path (a copy of a file shares the original's scan)."""
        query = ("SELECT f.path, s.content_sha256, s.attempts, s.owner, s.finished_at, s.result_json FROM files f "
                 "JOIN scans s ON s.content_sha256 = f.content_sha256 AND s.config_key = ? AND s.state = 'done'")
        wanted = None if paths is None else {os.path.abspath(p) for p in paths}
        for path, content, attempts, owner, finished, text in self.db.execute(query + " ORDER BY f.path", (config_key,)):
            if wanted is not None and path not in wanted:
                continue
            result = ScanResult.model_validate_json(text)
            result.path = path
            yield StoredScan(path, content, config_key, attempts, owner, finished, result)

    def counts(self, config_key: str) -> dict[str, int]:
        """Catalogued files by the state of their result under a configuration: a verdict, running or pending."""
        rows = self.db.execute(
            "SELECT CASE WHEN s.state IS NULL THEN 'pending' WHEN s.state = 'running' THEN 'running' ELSE s.verdict END, "
            "COUNT(*) FROM files f LEFT JOIN scans s ON s.content_sha256 = f.content_sha256 AND s.config_key = ? "
            "GROUP BY 1", (config_key,)).fetchall()
        return dict(rows)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on an exception): the write lock is taken at the start, so a claim's
    read and write are one step for every process on the database."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, *exc) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


class LeaseKeeper:
    """Renews this owner's leases from a thread (with its own connection) while long files are scanned."""

    def __init__(self, path: str | Path, owner: str, lease_s: float):
        self.path, self.owner, self.lease_s = path, owner, lease_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dfdetect-lease", daemon=True)

    def __enter__(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        store = ResultStore(self.path, owner=self.owner, lease_s=self.lease_s)
        try:
            while not self._stop.wait(self.lease_s / 3):
                store.renew()
        finally:
            store.close()
