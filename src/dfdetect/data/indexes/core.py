"""The dataset-format registry and the entry point: recognise a layout, run its indexer.

A format is one `register_format` call in its own module of this package (modules here are imported by
the package, so a new file is all it takes): its indexer, how to recognise its layout, and a line of help.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from ...errors import DatasetError
from ...registry import Registry
from ..manifest import new_manifest


@dataclass(frozen=True)
class DatasetFormat:
    name: str
    index: Callable[..., pd.DataFrame]      # (root, problems, **options) -> rows
    recognises: Callable[[Path], bool]      # whether a path has this layout
    layout: str                             # what the layout looks like, for help and errors
    order: int = 50                         # recognition order: the more specific layouts first
    dataset: str | None = None              # the manifest's `dataset` value (default: the name)


INDEXERS: Registry[DatasetFormat] = Registry("dataset format")


def register_format(name: str, *, recognises: Callable[[Path], bool], layout: str, order: int = 50,
                    dataset: str | None = None):
    """Decorator for an indexer function: `@register_format("dfdc", recognises=..., layout=...)`."""
    def decorator(index: Callable[..., pd.DataFrame]):
        INDEXERS.register(name, DatasetFormat(name, index, recognises, layout, order, dataset))
        return index

    return decorator


def format_names() -> list[str]:
    return [f.name for f in _by_order()]


def _by_order() -> list[DatasetFormat]:
    return sorted((INDEXERS.get(name) for name in INDEXERS), key=lambda f: (f.order, f.name))


def dir_names(root: Path) -> set[str]:
    """The entries of a folder (empty for a file)."""
    return {p.name for p in root.iterdir()} if root.is_dir() else set()


@dataclass
class Index:
    manifest: pd.DataFrame
    format: str
    root: Path
    problems: list[str] = field(default_factory=list)


def index_dataset(root: str | Path, format: str = "auto", **options) -> Index:
    """Index a dataset folder (or a crops CSV file). Options go to the format's indexer; options it does not
    take, and options set to None, are ignored, so one set of options serves every format."""
    root = Path(os.path.abspath(root))  # manifest paths must not depend on the working directory
    if not root.exists():
        raise DatasetError(f"dataset {root} does not exist; pass the folder in its official layout")
    fmt = INDEXERS.get(detect_format(root) if format == "auto" else format)
    problems: list[str] = []
    accepted = inspect.signature(fmt.index).parameters
    rows = fmt.index(root, problems, **{k: v for k, v in options.items() if k in accepted and v is not None})
    folders = [root if root.is_dir() else root.parent] + ([Path(options["csv"]).parent] if options.get("csv") else [])
    rows = _drop_paths_outside(rows, folders, problems)
    if rows.empty:
        detail = f" ({'; '.join(problems[:3])})" if problems else ""
        raise DatasetError(f"no usable items found in {root} as {fmt.name}{detail}")
    rows["dataset"] = fmt.dataset or fmt.name
    return Index(new_manifest(rows), fmt.name, root, problems)


def _drop_paths_outside(rows: pd.DataFrame, folders: list[Path], problems: list[str]) -> pd.DataFrame:
    """A label file may name any path ("../../etc/passwd", "/home/x/y.jpg"); a dataset is what lies in its
    folder. Links inside the folder may point anywhere (the path is judged as written, not resolved)."""
    if rows.empty or "path" not in rows:
        return rows
    roots = [os.path.normpath(os.path.abspath(f)) for f in folders]

    def inside(path: str) -> bool:
        full = os.path.normpath(os.path.join(roots[0], path))
        return any(full == r or full.startswith(r.rstrip(os.sep) + os.sep) for r in roots)

    keep = rows["path"].astype(str).map(inside)
    if not keep.all():
        examples = ", ".join(rows.loc[~keep, "path"].astype(str).head(3))
        problems.append(f"{int((~keep).sum())} of {len(rows)} rows name files outside the dataset folder "
                        f"{roots[0]} (e.g. {examples}); they are left out")
    return rows[keep].reset_index(drop=True)


def detect_format(root: Path) -> str:
    """The layout of a dataset folder, or DatasetError saying what was expected."""
    formats = _by_order()
    for fmt in formats:
        if fmt.recognises(root):
            return fmt.name
    if root.is_file():
        raise DatasetError(f"{root} is a file; pass a dataset folder or a crops CSV")
    expected = ", ".join(f.layout for f in formats[:-1]) + " or " + formats[-1].layout
    raise DatasetError(f"{root} matches no known layout: expected {expected}; or pass --format")
