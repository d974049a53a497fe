"""The extraction log (one JSON line per finished video) and the manifest built from it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ...errors import DatasetError
from .presets import ExtractPreset

FINAL_STATUSES = ("done", "no_face", "skipped")  # "error" (an unexpected failure) is retried on a rerun
LOG_NAME, MANIFEST_NAME = "extract_log.jsonl", "manifest.csv"
CONFIG_NAME, SUMMARY_NAME = "extract_config.json", "summary.json"


def recorded_crop(folder: Path):
    """How the extraction in `folder` cut its faces (its preset's FaceCrop), or None where none is recorded."""
    try:
        preset = json.loads((folder / CONFIG_NAME).read_text())["preset"]
        return ExtractPreset(**preset).face_crop()
    except (OSError, ValueError, KeyError, TypeError):  # no extraction here, or a config this version cannot read
        return None


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
    from ..manifest import new_manifest

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
    _refuse_shared_files(rows)
    return new_manifest(rows)


def _refuse_shared_files(rows: list[dict]) -> None:
    """Two videos whose crops landed in one file: one of them was overwritten, so its label is wrong."""
    owner: dict[str, str] = {}
    for row in rows:
        first = owner.setdefault(row["path"], row["video"])
        if first != row["video"]:
            raise DatasetError(f"the videos {first!r} and {row['video']!r} both wrote {row['path']}; "
                               "rerun the extraction with --restart")
