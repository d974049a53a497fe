"""The media files named on a command line, folders searched recursively."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .sniff import MEDIA_EXTENSIONS


def collect_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given (even missing ones, so that each gets its own error); folders expanded recursively,
    in sorted order, to files with a known image or video extension. Hidden files and folders (such as
    macOS "._" resource forks) are left out. A file reached twice is listed once."""
    out: list[Path] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        found = _media_files_under(path) if path.is_dir() else [path]
        for file in found:
            if file not in seen:
                seen.add(file)
                out.append(file)
    return out


def _media_files_under(folder: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in MEDIA_EXTENSIONS:
                files.append(Path(root) / name)
    return sorted(files, key=lambda p: p.relative_to(folder).parts)
