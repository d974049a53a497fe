"""The media files named on a command line, folders searched recursively."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .sniff import MEDIA_EXTENSIONS


def collect_inputs(paths: Iterable[str | Path], problems: list[str] | None = None) -> list[Path]:
    """Files as given (even missing ones, so that each gets its own error); folders expanded recursively,
    in sorted order, to files with a known image or video extension. Hidden files and folders (such as
    macOS "._" resource forks) are left out. A file reached twice is listed once. Folders that cannot be
    listed are skipped, each with one line in `problems` (when given), so that one bad folder never ends a batch."""
    out: list[Path] = []
    seen: set[Path] = set()
    problems = [] if problems is None else problems
    for given in paths:
        path = Path(given)
        found = _media_files_under(path, problems) if _is_dir(path) else [path]
        for file in found:
            if file not in seen:
                seen.add(file)
                out.append(file)
    return out


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long, a loop of links: the scan reports it as that item's error
        return False


def _media_files_under(folder: Path, problems: list[str]) -> list[Path]:
    def skipped(exc: OSError) -> None:
        problems.append(f"skipped folder {exc.filename}: {exc.strerror or exc}")

    files = []
    for root, dirs, names in os.walk(folder, onerror=skipped):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in MEDIA_EXTENSIONS:
                files.append(Path(root) / name)
    return sorted(files, key=lambda p: p.relative_to(folder).parts)
