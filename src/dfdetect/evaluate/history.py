"""Per-epoch training histories (CSV with an `epoch` column): the one reader, for runs and for plots."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from ..errors import DfdetectError

HISTORY_NAMES = ("history.csv", "metrics.csv", "training_log.csv", "log.csv")
TEXT_COLUMNS = ("stage",)
INT_COLUMNS = ("epoch", "stage_epoch")


def parse_row(row: dict) -> dict:
    """A history row read back from CSV: numbers as numbers, blanks as None, names (stage) as text."""
    parsed = {}
    for key, text in row.items():
        if key in TEXT_COLUMNS:
            parsed[key] = text
        elif text in ("", None):
            parsed[key] = None
        else:
            try:
                value = float(text)
            except ValueError:
                parsed[key] = text
                continue
            parsed[key] = int(value) if key in INT_COLUMNS else value
    return parsed


def read_history(path: str | Path) -> list[dict]:
    """The rows of a per-epoch CSV; DfdetectError when it has no `epoch` column."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if "epoch" not in (reader.fieldnames or []):
            raise DfdetectError(f"{path} is no training history: it needs a header with an 'epoch' column")
        return [parse_row(row) for row in reader]


def history_columns(rows: list[dict]) -> dict[str, list[float]]:
    """Column -> values for plotting; blanks and text become NaN, columns without a number are left out."""
    if not rows:
        raise DfdetectError("the training history has no epochs to plot")
    columns: dict[str, list[float]] = {}
    for name in rows[0]:
        values = [float(v) if isinstance(v, (int, float)) else math.nan for v in (row[name] for row in rows)]
        if not all(math.isnan(v) for v in values):
            columns[name] = values
    return columns


def find_history(folder: str | Path) -> Path | None:
    """The first per-epoch CSV with an ``epoch`` column among the usual names in ``folder``."""
    for name in HISTORY_NAMES:
        candidate = Path(folder) / name
        if candidate.is_file():
            with open(candidate, newline="") as f:
                header = next(csv.reader(f), [])
            if "epoch" in header:
                return candidate
    return None
