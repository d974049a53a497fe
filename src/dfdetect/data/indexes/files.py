"""Filesystem helpers shared by the indexers: bounded walks, media files, union of ids."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ...media.sniff import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS  # noqa: F401  (the formats take them from here)


EXAMPLES = 3  # names quoted in a problem line


def _union_names(member_sets: list[set[str]]) -> dict[str, str]:
    """Union-find over ids that appear together; each id -> its component's name ("000+003", or the
    smallest id and a count for large components)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for members in member_sets:
        members = sorted(members)
        for other in members[1:]:
            a, b = find(members[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
        if members:
            find(members[0])
    components: dict[str, list[str]] = {}
    for x in list(parent):
        components.setdefault(find(x), []).append(x)
    names = {}
    for root, members in components.items():
        members = sorted(members)
        label = "+".join(members) if len(members) <= 4 else f"{members[0]}+{len(members) - 1}more"
        for m in members:
            names[m] = label
    return names


def _pick_column(table: pd.DataFrame, choices: tuple[str, ...]) -> str | None:
    lower = {c.lower().strip(): c for c in table.columns}
    for choice in choices:
        if choice in lower:
            return lower[choice]
    return None


def _walk_dirs(root: Path, max_depth: int):
    """(folder, depth) for root and its sub-folders down to max_depth, hidden ones skipped, sorted."""
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        yield folder, depth
        if depth >= max_depth:
            continue
        try:
            subs = sorted((e.path for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")),
                          reverse=True)
        except OSError:
            continue
        stack.extend((Path(s), depth + 1) for s in subs)


def _files(folder: Path, extensions: set[str]):
    try:
        with os.scandir(folder) as entries:
            for e in entries:
                if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in extensions and e.is_file():
                    yield Path(e.path)
    except OSError:
        return


def _files_recursive(folder: Path, extensions: set[str]):
    for current, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions:
                yield Path(current) / name


def _has_files(folder: Path, extensions: set[str], max_depth: int) -> bool:
    return any(next(_files(f, extensions), None) for f, _ in _walk_dirs(folder, max_depth))


def _folders_with_videos(root: Path, max_depth: int) -> list[Path]:
    return [f for f, _ in _walk_dirs(root, max_depth) if next(_files(f, VIDEO_EXTENSIONS), None)]


def _video_files_under(folder: Path, stop_at: set[Path]) -> dict[str, Path]:
    """Video name -> path, in `folder` and its sub-folders, not entering folders with their own label file."""
    out: dict[str, Path] = {}
    for current, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and Path(current) / d not in stop_at)
        for name in sorted(names):
            if os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS and not name.startswith("."):
                out.setdefault(name, Path(current) / name)
    return out
