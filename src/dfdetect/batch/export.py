"""A results database's contents as a summary, filtered lists and JSON / CSV / Parquet files."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import DfdetectError
from ..results import CSV_COLUMNS, ScanResult, write_csv, write_json
from .store import ResultStore, StoredScan

VERDICTS = ("fake", "real", "no_face", "error")
# One row per file (--rows files): what a spreadsheet or a dataframe of a large scan wants.
FILE_COLUMNS = ["path", "verdict", "probability", "unsure", "unsure_reasons", "error", "people", "faces",
                "frames_sampled", "seconds", "model", "weights_sha256", "config_key", "content_sha256", "attempts",
                "finished_at"]


def choose_config(store: ResultStore, key: str | None) -> dict:
    """The configuration asked for (a key or its start), else the one with the latest result."""
    configs = store.configs()
    if not configs:
        raise DfdetectError(f"{store.path} holds no results yet")
    if key is None:
        return configs[0]
    matches = [c for c in configs if c["config_key"].startswith(key)]
    if len(matches) != 1:
        known = ", ".join(c["config_key"] for c in configs)
        raise DfdetectError(f"configuration {key!r} {'is ambiguous' if matches else 'not found'} in {store.path} "
                            f"(it holds {known})")
    return matches[0]


def select(stored: Iterable[StoredScan], verdicts: Sequence[str] = (), unsure: bool = False) -> list[StoredScan]:
    """Results with one of the verdicts (all when none is given), only the unsure ones with unsure=True."""
    return [s for s in stored if (not verdicts or s.result.verdict in verdicts) and (not unsure or s.result.unsure)]


def describe(config: dict, counts: dict[str, int]) -> list[str]:
    """Lines a person reads: the configuration, then the files by verdict, running and pending."""
    settings = config["settings"]
    finished = datetime.fromtimestamp(config["last_finished"], timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    total = sum(counts.values())
    order = [*VERDICTS, "running", "pending"]
    return [
        f"configuration {config['config_key']}: model {config['model_name']} (weights {config['weights_sha256'][:12]}), "
        f"frames {settings['sampling']}, detector {settings['detector']}, aggregation {settings['aggregation']}, "
        f"tta {settings['tta']}",
        f"{total} files: " + ", ".join(f"{counts.get(name, 0)} {name}" for name in order)
        + f"; last result {finished}",
    ]


def file_row(stored: StoredScan, config: dict) -> dict:
    r: ScanResult = stored.result
    return {"path": stored.path, "verdict": r.verdict, "probability": r.probability, "unsure": r.unsure,
            "unsure_reasons": "; ".join(r.unsure_reasons), "error": r.error, "people": len(r.tracks),
            "faces": sum(len(t.faces) for t in r.tracks), "frames_sampled": r.frames_sampled,
            "seconds": r.timings.get("total_s"), "model": config["model_name"],
            "weights_sha256": config["weights_sha256"], "config_key": stored.config_key,
            "content_sha256": stored.content_sha256, "attempts": stored.attempts,
            "finished_at": datetime.fromtimestamp(stored.finished_at, timezone.utc).isoformat(timespec="seconds")}


def export(stored: Sequence[StoredScan], config: dict, target: str | Path, fmt: str, rows: str = "files") -> Path:
    """Write the results: JSON as `dfdetect scan --json` writes it; CSV and Parquet one row per file
    (rows="files") or one per face as `dfdetect scan --csv` (rows="faces")."""
    import pandas as pd

    target = Path(target)
    if fmt == "json":
        return write_json([s.result for s in stored], target)
    if fmt == "csv" and rows == "faces":
        return write_csv([s.result for s in stored], target)
    if rows == "faces":
        frame = pd.DataFrame([row for s in stored for row in s.result.csv_rows()], columns=CSV_COLUMNS)
    else:
        frame = pd.DataFrame([file_row(s, config) for s in stored], columns=FILE_COLUMNS)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    if fmt == "csv":
        frame.to_csv(tmp, index=False)
    else:
        try:
            frame.to_parquet(tmp, index=False)
        except ImportError as exc:
            raise DfdetectError(f"Parquet needs pyarrow (pip install pyarrow): {exc}") from None
    tmp.replace(target)
    return target
