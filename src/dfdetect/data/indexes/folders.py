"""Image folders real/ + fake/ (or 0_real/ + 1_fake/), at any depth."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ...errors import DatasetError
from .core import register_format
from .files import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, _files_recursive, _walk_dirs

REAL_FOLDERS = {"real", "0_real"}
FAKE_FOLDERS = {"fake", "1_fake"}


@register_format("folders", order=40, layout="real/ + fake/ image folders",
                 recognises=lambda root: root.is_dir() and bool(_label_folders(root, max_depth=3)))
def index_folders(root: Path, problems: list[str], group_regex: str | None = None) -> pd.DataFrame:
    label_dirs = _label_folders(root, max_depth=3)
    if not label_dirs:
        raise DatasetError(f"{root} has no real/ and fake/ (or 0_real/ and 1_fake/) folders")
    pattern = re.compile(group_regex) if group_regex else None
    rows = []
    for folder, label in label_dirs:
        category = "/".join(folder.relative_to(root).parts[:-1])
        for path in sorted(_files_recursive(folder, IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)):
            inner = path.relative_to(folder)
            subfolder = inner.parts[0] if len(inner.parts) > 1 else "fake"
            method = "original" if label == "real" else (category or subfolder)
            rel = path.relative_to(root).as_posix()
            rows.append({"path": str(path), "label": label, "method": method, "video": rel,
                         "group": _group_from(rel, pattern, problems)})
    labels = {label for _, label in label_dirs}
    if labels != {"real", "fake"}:
        problems.append(f"{root} has only {labels.pop()} folders; the manifest holds one class")
    return pd.DataFrame(rows)


def _group_from(rel: str, pattern: re.Pattern | None, problems: list[str]) -> str:
    if pattern is None:
        return rel
    match = pattern.search(rel)
    if not match:
        if not any(p.startswith("group regex") for p in problems):
            problems.append(f"group regex {pattern.pattern!r} does not match {rel}; such files are their own group")
        return rel
    return match.group(1) if match.groups() else match.group(0)


def _label_folders(root: Path, max_depth: int) -> list[tuple[Path, str]]:
    out = []
    for folder, depth in _walk_dirs(root, max_depth):
        name = folder.name.lower()
        if depth > 0 and (name in REAL_FOLDERS or name in FAKE_FOLDERS):
            out.append((folder, "real" if name in REAL_FOLDERS else "fake"))
    # A label folder inside another (fake/real/...) belongs to the outer one.
    return [(f, lab) for f, lab in out if not any(o in f.parents for o, _ in out)]
