"""Scan jobs and their results in a database: SQLite (WAL) by default, PostgreSQL for shared deployments.

A job is claimed by one worker at a time with one atomic UPDATE; each claim bumps `attempt`, and a
result is only written by the claim that is still current, so a job that was given up on and run again
never ends up with two results. A server that starts puts its own node's running jobs back in the queue
(they died with it), and any server does the same for jobs whose worker has been silent past the lease.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS scans (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    filename TEXT NOT NULL,
    upload TEXT,
    options TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    stage TEXT,
    node TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    heartbeat DOUBLE PRECISION,
    created DOUBLE PRECISION NOT NULL,
    started DOUBLE PRECISION,
    finished DOUBLE PRECISION,
    result TEXT,
    explanation TEXT,
    error TEXT,
    files_removed INTEGER NOT NULL DEFAULT 0
)"""
INDEX = "CREATE INDEX IF NOT EXISTS scans_status_created ON scans (status, created)"
STATUSES = ("queued", "running", "done", "failed")


@dataclass
class Job:
    id: str
    kind: str                 # "video" | "image"
    filename: str             # the name the client gave (shown, never used as a path)
    upload: str | None        # generated file name under uploads/, None once deleted
    options: dict[str, Any]
    status: str
    progress: float
    stage: str | None
    node: str | None
    attempt: int
    created: float
    started: float | None
    finished: float | None
    result: dict | None
    explanation: dict | None
    error: str | None
    files_removed: bool


_COLUMNS = ("id, kind, filename, upload, options, status, progress, stage, node, attempt, created, started, "
            "finished, result, explanation, error, files_removed")


def _job(row) -> Job:
    (id_, kind, filename, upload, options, status, progress, stage, node, attempt, created, started, finished,
     result, explanation, error, files_removed) = row
    return Job(id_, kind, filename, upload, json.loads(options), status, float(progress), stage, node, int(attempt),
               created, started, finished, json.loads(result) if result else None,
               json.loads(explanation) if explanation else None, error, bool(files_removed))


class JobStore:
    """One connection shared by the server's threads behind a lock: every call is a short statement."""

    def __init__(self, url: str):
        self.url = url
        self._lock = threading.Lock()
        if url.startswith("sqlite:///"):
            self._conn, self._postgres = _open_sqlite(url[len("sqlite:///"):]), False
        elif url.startswith(("postgresql://", "postgres://")):
            self._conn, self._postgres = _open_postgres(url), True
        else:
            raise ConfigError(f"database URL not understood: {url!r}; use sqlite:///PATH or postgresql://...")
        self._execute(SCHEMA)
        self._execute(INDEX)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- statements ---------------------------------------------------------------------------------------
    def _execute(self, sql: str, params: tuple = (), fetch: str | None = None):
        if self._postgres:
            sql = sql.replace("?", "%s")
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute(sql, params)
                out = cur.fetchone() if fetch == "one" else cur.fetchall() if fetch == "all" else cur.rowcount
                self._conn.commit()
                return out
            except BaseException:
                self._conn.rollback()
                raise
            finally:
                cur.close()

    # -- jobs -----------------------------------------------------------------------------------------
    def create(self, job_id: str, kind: str, filename: str, upload: str, options: dict,
               claimed_by: str | None = None) -> Job:
        """A queued job, or with `claimed_by` one already running on that node (no worker can take it)."""
        now = time.time()
        status, attempt = ("running", 1) if claimed_by else ("queued", 0)
        self._execute("INSERT INTO scans (id, kind, filename, upload, options, status, node, attempt, heartbeat, "
                      "created, started) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (job_id, kind, filename, upload, json.dumps(options), status, claimed_by, attempt,
                       now if claimed_by else None, now, now if claimed_by else None))
        return self.get(job_id)

    def get(self, job_id: str) -> Job | None:
        row = self._execute(f"SELECT {_COLUMNS} FROM scans WHERE id = ?", (job_id,), fetch="one")
        return _job(row) if row else None

    def count(self, status: str) -> int:
        return int(self._execute("SELECT COUNT(*) FROM scans WHERE status = ?", (status,), fetch="one")[0])

    def claim(self, node: str, job_id: str | None = None) -> Job | None:
        """Mark the oldest queued job (or the given one, if queued) running on `node`; None if there is none."""
        lock = " FOR UPDATE SKIP LOCKED" if self._postgres else ""
        pick = ("SELECT id FROM scans WHERE id = ? AND status = 'queued'" if job_id else
                "SELECT id FROM scans WHERE status = 'queued' ORDER BY created, id LIMIT 1") + lock
        now = time.time()
        row = self._execute(
            f"UPDATE scans SET status = 'running', node = ?, attempt = attempt + 1, heartbeat = ?, started = ?, "
            f"progress = 0, stage = 'starting' WHERE id = ({pick}) AND status = 'queued' RETURNING id",
            (node, now, now) + ((job_id,) if job_id else ()), fetch="one")
        return self.get(row[0]) if row else None

    def beat(self, job: Job, progress: float | None = None, stage: str | None = None) -> bool:
        """Heartbeat (and progress) of a running claim; False when the claim is no longer current."""
        sets, params = ["heartbeat = ?"], [time.time()]
        if progress is not None:
            sets.append("progress = ?")
            params.append(round(float(progress), 4))
        if stage is not None:
            sets.append("stage = ?")
            params.append(stage)
        return self._execute(f"UPDATE scans SET {', '.join(sets)} WHERE id = ? AND attempt = ? AND status = 'running'",
                             (*params, job.id, job.attempt)) == 1

    def finish(self, job: Job, status: str, result: dict | None, explanation: dict | None = None,
               error: str | None = None) -> bool:
        """Store the outcome of a claim; False (and nothing written) when the claim is no longer current."""
        assert status in ("done", "failed")
        return self._execute(
            "UPDATE scans SET status = ?, progress = 1, stage = NULL, finished = ?, result = ?, explanation = ?, "
            "error = ?, upload = NULL WHERE id = ? AND attempt = ? AND status = 'running'",
            (status, time.time(), json.dumps(result) if result is not None else None,
             json.dumps(explanation) if explanation is not None else None, error, job.id, job.attempt)) == 1

    def release(self, job: Job) -> None:
        """Put a claimed job back in the queue (the server stops before it is done)."""
        self._execute("UPDATE scans SET status = 'queued', node = NULL, progress = 0, stage = NULL "
                      "WHERE id = ? AND attempt = ? AND status = 'running'", (job.id, job.attempt))

    def requeue_node(self, node: str) -> int:
        """Jobs this node was running when it stopped: it is starting again, so they died with it."""
        return self._execute("UPDATE scans SET status = 'queued', node = NULL, progress = 0, stage = NULL "
                             "WHERE status = 'running' AND node = ?", (node,))

    def requeue_stale(self, lease_s: float) -> int:
        return self._execute("UPDATE scans SET status = 'queued', node = NULL, progress = 0, stage = NULL "
                             "WHERE status = 'running' AND heartbeat < ?", (time.time() - lease_s,))

    # -- files ------------------------------------------------------------------------------------------
    def finished_before(self, when: float) -> list[str]:
        rows = self._execute("SELECT id FROM scans WHERE finished < ? AND files_removed = 0", (when,), fetch="all")
        return [r[0] for r in rows]

    def mark_files_removed(self, job_id: str) -> None:
        self._execute("UPDATE scans SET files_removed = 1 WHERE id = ?", (job_id,))

    def uploads_in_use(self) -> set[str]:
        rows = self._execute("SELECT upload FROM scans WHERE upload IS NOT NULL", fetch="all")
        return {r[0] for r in rows}


def _open_sqlite(path: str):
    import sqlite3
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")   # readers never wait for the writer; a crash loses no commit
    conn.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process (WAL), fast
    return conn


def _open_postgres(url: str):
    try:
        import psycopg
    except ImportError:
        raise ConfigError("a PostgreSQL database needs psycopg: pip install 'dfdetect[postgres]'") from None
    try:
        return psycopg.connect(url)
    except psycopg.Error as exc:
        raise ConfigError(f"cannot connect to the database: {str(exc).splitlines()[0]}") from None
