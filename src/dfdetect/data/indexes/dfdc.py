"""DFDC: part folders with metadata.json (or labels.csv)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...errors import DatasetError
from ..manifest import normalize_labels
from .core import register_format
from .files import (
    EXAMPLES, VIDEO_EXTENSIONS, _files, _folders_with_videos, _has_files, _pick_column, _video_files_under,
    _walk_dirs,
)


@register_format("dfdc", order=30, layout="DFDC part folders with metadata.json",
                 recognises=lambda root: root.is_dir() and bool(_find_dfdc_label_folders(root, max_depth=2)))
def index_dfdc(root: Path, problems: list[str]) -> pd.DataFrame:
    label_folders = _find_dfdc_label_folders(root, max_depth=3)
    covered = set(label_folders)
    for folder in _folders_with_videos(root, max_depth=3):
        if not any(folder == c or c in folder.parents for c in covered):
            count = sum(1 for _ in _files(folder, VIDEO_EXTENSIONS))
            problems.append(
                f"{folder}: {count} videos but no metadata.json (or labels.csv) here or above; they are left out; "
                "restore the part's metadata.json"
            )
    if not label_folders:
        raise DatasetError(
            f"{root}: no metadata.json found (DFDC parts keep one beside their videos); restore it or pass --format"
        )
    rows: list[dict] = []
    seen: dict[str, Path] = {}
    for folder in label_folders:
        labels = _read_dfdc_labels(folder, problems)
        if labels is None:
            continue
        on_disk = _video_files_under(folder, stop_at=covered - {folder})
        missing = sorted(set(labels) - set(on_disk))
        if missing:
            problems.append(
                f"{_label_file(folder).name} in {folder} names {len(missing)} videos that are not on disk "
                f"(e.g. {', '.join(missing[:EXAMPLES])}); they are left out"
            )
        unlisted = sorted(set(on_disk) - set(labels))
        if unlisted:
            problems.append(
                f"{len(unlisted)} videos in {folder} are not in {_label_file(folder).name} "
                f"(e.g. {', '.join(unlisted[:EXAMPLES])}); they are left out"
            )
        for name, entry in labels.items():
            if name not in on_disk:
                continue
            if name in seen:
                problems.append(f"{name} appears in {seen[name]} and {folder}; the first is kept")
                continue
            seen[name] = folder
            rows.append({"path": str(on_disk[name]), "video": name, **entry})
    df = pd.DataFrame(rows, columns=["path", "video", "label", "original"])
    if df.empty:
        return df
    df["label"] = normalize_labels(df["label"])
    df["original"] = df["original"].fillna("").astype(str)
    df.loc[df["label"] == "real", "original"] = ""
    df["method"] = df["label"].map({"real": "original", "fake": "dfdc"})
    orphans = (df["label"] == "fake") & (df["original"] == "")
    if orphans.any():
        problems.append(
            f"{int(orphans.sum())} fake videos have no original in their label file; each is its own group, "
            "so a split may share their actors with other groups"
        )
    df["group"] = df["video"].where(df["label"] == "real", df["original"].where(~orphans, df["video"]))
    return df


def _find_dfdc_label_folders(root: Path, max_depth: int) -> list[Path]:
    found = []
    for folder, depth in _walk_dirs(root, max_depth):
        if (folder / "metadata.json").is_file():
            found.append(folder)
        elif (folder / "labels.csv").is_file() and _has_files(folder, VIDEO_EXTENSIONS, max_depth=1):
            found.append(folder)
    return sorted(found)


def _label_file(folder: Path) -> Path:
    meta = folder / "metadata.json"
    return meta if meta.is_file() else folder / "labels.csv"


def _read_dfdc_labels(folder: Path, problems: list[str]) -> dict[str, dict] | None:
    """{video name: {"label", "original"}} from metadata.json, or from labels.csv (filename|path, label)."""
    path = _label_file(folder)
    try:
        if path.name == "metadata.json":
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError("expected an object mapping video names to entries")
            out = {}
            for name, entry in data.items():
                entry = entry if isinstance(entry, dict) else {}
                out[Path(name).name] = {"label": str(entry.get("label", "")), "original": entry.get("original") or ""}
            return out
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        name_col = _pick_column(table, ("filename", "path", "file", "video", "videoname", "name"))
        label_col = _pick_column(table, ("label", "labels", "class", "target"))
        if name_col is None or label_col is None:
            raise ValueError("needs a filename (or path) column and a label column")
        original = table["original"] if "original" in table else pd.Series("", index=table.index)
        return {
            Path(n).name: {"label": lab, "original": orig}
            for n, lab, orig in zip(table[name_col], table[label_col], original)
        }
    except (OSError, ValueError) as exc:
        problems.append(f"{path} cannot be read ({exc}); the videos of {folder} are left out; fix or restore it")
        return None
