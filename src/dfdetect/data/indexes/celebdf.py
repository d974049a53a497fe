"""Celeb-DF v2: Celeb-real, YouTube-real, Celeb-synthesis and the official test list."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...errors import DatasetError
from .core import dir_names, register_format
from .files import EXAMPLES, VIDEO_EXTENSIONS, _files_recursive, _union_names

CELEBDF_FOLDERS = {"Celeb-real": "real", "YouTube-real": "real", "Celeb-synthesis": "fake"}


@register_format("celebdf", order=20, layout="Celeb-DF v2 (Celeb-real/, Celeb-synthesis/)",
                 recognises=lambda root: bool(dir_names(root) & (set(CELEBDF_FOLDERS) | {"List_of_testing_videos.txt"})))
def index_celebdf(root: Path, problems: list[str], grouping: str = "identity") -> pd.DataFrame:
    if grouping not in ("identity", "target"):
        raise DatasetError(f"Celeb-DF grouping {grouping!r}: use identity or target")
    present = [name for name in CELEBDF_FOLDERS if (root / name).is_dir()]
    if not present:
        raise DatasetError(f"{root} is not Celeb-DF v2: none of {', '.join(CELEBDF_FOLDERS)} is there")
    for name in CELEBDF_FOLDERS:
        if name not in present:
            problems.append(f"{root / name} is missing; its videos are not indexed")
    rows = []
    for name in present:
        for path in sorted(_files_recursive(root / name, VIDEO_EXTENSIONS)):
            rows.append(_celebdf_row(name, path))
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    if grouping == "identity":
        names = _union_names([set(ids) for ids in df["identities"]])
        df["group"] = [names[ids[0]] for ids in df["identities"]]
    else:
        df["group"] = [ids[0] for ids in df["identities"]]
    test_list = root / "List_of_testing_videos.txt"
    if test_list.is_file():
        _apply_celebdf_test_list(df, test_list, problems)
    else:
        problems.append(f"{test_list} is missing: the official test videos are not marked")
    return df.drop(columns=["identities"])


def _celebdf_row(folder: str, path: Path) -> dict:
    stem = path.stem
    row = {"path": str(path), "label": CELEBDF_FOLDERS[folder], "method": folder, "video": f"{folder}/{stem}",
           "original": ""}
    if folder == "YouTube-real":
        row["identities"] = [f"youtube:{stem}"]  # one unnamed person per video
    elif folder == "Celeb-real":
        row["identities"] = [stem.split("_")[0]]  # id0_0000 -> id0
    else:
        parts = stem.split("_")  # id0_id16_0000: target id0's video with id16's face
        row["identities"] = parts[:2] if len(parts) >= 3 else [parts[0]]
        if len(parts) >= 3:
            row["original"] = f"Celeb-real/{parts[0]}_{parts[2]}"
    return row


def _apply_celebdf_test_list(df: pd.DataFrame, path: Path, problems: list[str]) -> None:
    entries = {}
    for line in path.read_text().splitlines():
        bits = line.split(maxsplit=1)
        if len(bits) == 2:
            # The list writes 1 for real and 0 for fake (the reverse of the usual convention).
            entries[str(Path(bits[1].strip()).with_suffix(""))] = "real" if bits[0] == "1" else "fake"
    is_test = df["video"].isin(entries)
    df["split"] = ""
    df.loc[is_test, "split"] = "test"
    df.loc[is_test, "split_level"] = "official"
    absent = sorted(set(entries) - set(df["video"]))
    if absent:
        problems.append(
            f"{path.name} names {len(absent)} videos that are not on disk (e.g. {', '.join(absent[:EXAMPLES])}); "
            "they are left out"
        )
    disagree = df[is_test & (df["video"].map(entries) != df["label"])]
    if not disagree.empty:
        problems.append(
            f"{path.name} labels {len(disagree)} videos differently from their folder "
            f"(e.g. {', '.join(disagree['video'].head(EXAMPLES))}); the folder's label is kept"
        )
