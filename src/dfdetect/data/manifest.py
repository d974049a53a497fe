"""The manifest: one table that indexing writes and extraction, training and evaluation read.

One row is one item: a video (after `dfdetect index`) or a face crop (after `dfdetect extract`).

Columns (all always present; empty string / -1 where unknown):
  path        the file. Relative paths are relative to the manifest's own folder, so an extraction
              folder can be moved as a whole; `read_manifest` returns them absolute.
  label       "real" or "fake" (`label_to_int` gives 0 / 1, fake = 1).
  method      manipulation method or category: "original" for reals of DFDC and image folders,
              "youtube"/"actors" for FF++ reals, "Deepfakes", "Face2Face", ... for FF++ fakes,
              "Celeb-real", "YouTube-real", "Celeb-synthesis" for Celeb-DF, "dfdc" for DFDC fakes.
  group       the leak unit: rows sharing a group must land in the same split (source video or identity).
  original    for a fake, the `video` id of the real it was made from (empty when unknown).
  video       the id of the source video inside its dataset ("abc.mp4", "Deepfakes/000_003", ...).
  frame       frame index of a crop (-1 for whole videos and still images).
  track       person / face number of a crop within its video (-1 when not applicable).
  split       "train", "val", "test" or "" (unassigned).
  split_level "group" (whole groups per split), "image" (rows split independently: leaks identity),
              "official" (the dataset's published lists) or "".
  dataset     "dfdc", "ffpp", "celebdf", "folders" or "crops"; in a pool of sources (`dfdetect pool`), the
              name given to the row's source.
Extra columns (box coordinates, compression, source video, ...) travel along unchanged.

CSV is the default format; a `.parquet` name uses Parquet when pyarrow is installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import DatasetError
from ..labels import LABEL_ALIASES, LABELS, label_name  # noqa: F401  (re-exported)

COLUMNS = ["path", "label", "method", "group", "original", "video", "frame", "track", "split", "split_level", "dataset"]
INT_COLUMNS = ("frame", "track")
FLOAT_COLUMNS = ("x1", "y1", "x2", "y2", "score")
SPLITS = ("train", "val", "test")



def normalize_labels(values: pd.Series) -> pd.Series:
    """REAL/FAKE, real/fake, 0/1, 0_real/1_fake -> "real"/"fake"; DatasetError naming the unknown values."""
    mapped = values.map(label_name)
    bad = sorted(set(values[mapped.isna()].astype(str)))
    if bad:
        raise DatasetError(f"unknown labels {bad[:5]}: use REAL/FAKE, real/fake or 0/1 (1 = fake)")
    return mapped


def label_to_int(labels: pd.Series) -> pd.Series:
    """"real"/"fake" -> 0/1."""
    return (labels == "fake").astype("int64")


def new_manifest(rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """A manifest frame with every standard column present, in the standard order, extras after."""
    df = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows.copy()
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = -1 if col in INT_COLUMNS else ""
    for col in INT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").fillna(-1).astype("int64")
    for col in COLUMNS:
        if col not in INT_COLUMNS:
            df[col] = df[col].fillna("").astype(str)
    extras = [c for c in df.columns if c not in COLUMNS]
    return df[COLUMNS + extras].reset_index(drop=True)


def validate(df: pd.DataFrame) -> None:
    """DatasetError when a standard column is missing or holds a value outside its vocabulary."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DatasetError(f"manifest lacks columns {missing}; rebuild it with `dfdetect index`")
    bad_labels = set(df["label"]) - set(LABELS)
    if bad_labels:
        raise DatasetError(f"manifest has labels {sorted(bad_labels)[:5]}; expected 'real' or 'fake'")
    bad_splits = set(df["split"]) - set(SPLITS) - {""}
    if bad_splits:
        raise DatasetError(f"manifest has splits {sorted(bad_splits)[:5]}; expected train, val, test or empty")


def write_manifest(df: pd.DataFrame, path: str | Path, relative_to: str | Path | None = None) -> Path:
    """Write atomically (temporary file + rename). Paths under `relative_to` are stored relative to it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = new_manifest(df)
    validate(out)
    if relative_to is not None:
        out["path"] = _relativize(out["path"], Path(relative_to))
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix.lower() == ".parquet":
        _need_pyarrow(path)
        out.to_parquet(tmp, index=False)
    else:
        out.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest; relative `path` values are resolved against the manifest's folder."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest {path} does not exist; create it with `dfdetect index DATASET --out {path}`")
    if path.suffix.lower() == ".parquet":
        _need_pyarrow(path)
    try:
        if path.suffix.lower() == ".parquet":
            df = pd.read_parquet(path)
        else:
            # Everything as text first: FF++ ids such as "000" must not turn into the number 0.
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError) as exc:  # pandas' parser errors are ValueErrors: empty or damaged files
        raise DatasetError(f"manifest {path} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                           "rebuild it with `dfdetect index`") from None
    for col in FLOAT_COLUMNS:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    missing = [c for c in ("path", "label") if c not in df.columns]
    if missing:
        raise DatasetError(f"manifest {path.name} lacks column(s) {', '.join(missing)}; it has {', '.join(df.columns)}")
    df["label"] = normalize_labels(df["label"])  # hand-made manifests may say REAL/FAKE or 0/1
    df = new_manifest(df)
    validate(df)
    base = path.resolve().parent
    df["path"] = [p if not p or os.path.isabs(p) else os.path.normpath(os.path.join(base, p)) for p in df["path"]]
    return df


OPTIONAL_COLUMNS = ("video", "method", "group", "split", "track")


def read_labelled_manifest(path: str | Path) -> pd.DataFrame:
    """A manifest ready for scoring: absolute 'path' strings and 0/1 'label' integers.

    Optional columns that are empty on every row (as indexing writes for unknown values) are dropped
    so that they count as absent; a still image without a video is a video of its own.
    """
    df = read_manifest(path)
    if df.empty:
        raise DatasetError(f"manifest {path} has no rows")
    df["track"] = df["track"].astype(str).where(df["track"] >= 0, "")
    empty = [c for c in OPTIONAL_COLUMNS if (df[c].astype(str).str.strip() == "").all()]
    df = df.drop(columns=empty).reset_index(drop=True)
    df["label"] = label_to_int(df["label"]).to_numpy()
    if "video" in df.columns:
        df["video"] = df["video"].where(df["video"].str.strip() != "", df["path"])
    return df


def _relativize(paths: pd.Series, root: Path) -> pd.Series:
    root_text = str(root.resolve()) + os.sep
    return pd.Series(
        [p[len(root_text):] if p.startswith(root_text) else p for p in paths.astype(str)], index=paths.index
    )


def _need_pyarrow(path: Path) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise DatasetError(f"{path.name}: Parquet needs pyarrow (pip install pyarrow), or use a .csv name") from None
