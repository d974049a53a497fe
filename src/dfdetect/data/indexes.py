"""Read a dataset in its official layout into one manifest (see dfdetect.data.manifest for the columns).

Formats (registry INDEXERS; `index_dataset(root, "auto")` recognises the layout):
  dfdc       part folders with metadata.json ({"x.mp4": {"label": "FAKE", "original": "y.mp4"}}); the videos
             beside it or in its sub-folders. A folder without metadata.json may use labels.csv instead.
  ffpp       FaceForensics++: original_sequences/{youtube,actors}/<c23|c40|raw>/videos and
             manipulated_sequences/<method>/<quality>/videos, official splits train/val/test.json when present.
  celebdf    Celeb-DF v2: Celeb-real, Celeb-synthesis, YouTube-real, List_of_testing_videos.txt.
  folders    image folders real/ + fake/ (or 0_real/ + 1_fake/), at any depth (ForenSynths-style categories).
  crops-csv  face crops described by a CSV with a label column (e.g. the DFDC "deepfake_faces" set).

Groups (the unit that never straddles two splits):
  DFDC: a real by its own name, a fake by its original (fakes without an original: their own name).
  FF++ / Celeb-DF: identities that appear together in any fake are joined (union-find), so a pair
  "000_003" and the reals 000 and 003 form one group; Celeb-DF can instead group by the target identity.
  Image folders: each image, unless `group_regex` pulls a source id out of the relative path.

Problems that leave the rest usable (a part without metadata.json, a label file naming absent videos, ...)
are collected in `Index.problems` as one line each; a layout that is not recognised raises DatasetError.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from ..errors import DatasetError
from ..registry import Registry
from .manifest import new_manifest, normalize_labels

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}

INDEXERS: Registry = Registry("dataset format")

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
FFPP_QUALITIES = ("c23", "c40", "raw")
CELEBDF_FOLDERS = {"Celeb-real": "real", "YouTube-real": "real", "Celeb-synthesis": "fake"}
REAL_FOLDERS = {"real", "0_real"}
FAKE_FOLDERS = {"fake", "1_fake"}
EXAMPLES = 3  # names quoted in a problem line


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
    fmt = detect_format(root) if format == "auto" else format
    indexer: Callable = INDEXERS.get(fmt)
    problems: list[str] = []
    accepted = inspect.signature(indexer).parameters
    rows = indexer(root, problems, **{k: v for k, v in options.items() if k in accepted and v is not None})
    if rows.empty:
        detail = f" ({'; '.join(problems[:3])})" if problems else ""
        raise DatasetError(f"no usable items found in {root} as {fmt}{detail}")
    rows["dataset"] = fmt if fmt != "crops-csv" else "crops"
    return Index(new_manifest(rows), fmt, root, problems)


def detect_format(root: Path) -> str:
    """The layout of a dataset folder, or DatasetError saying what was expected."""
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return "crops-csv"
        raise DatasetError(f"{root} is a file; pass a dataset folder or a crops CSV")
    names = {p.name for p in root.iterdir()}
    if names & {"original_sequences", "manipulated_sequences"}:
        return "ffpp"
    if names & (set(CELEBDF_FOLDERS) | {"List_of_testing_videos.txt"}):
        return "celebdf"
    if _find_dfdc_label_folders(root, max_depth=2):
        return "dfdc"
    if _label_folders(root, max_depth=3):
        return "folders"
    if _find_crops_csv(root, quiet=True) is not None:
        return "crops-csv"
    raise DatasetError(
        f"{root} matches no known layout: expected DFDC part folders with metadata.json, FaceForensics++ "
        "(original_sequences/, manipulated_sequences/), Celeb-DF v2 (Celeb-real/, Celeb-synthesis/), "
        "real/ + fake/ image folders or a crops CSV; or pass --format"
    )


# ------------------------------------------------------------------------------------------------------
# DFDC
# ------------------------------------------------------------------------------------------------------
@INDEXERS.register("dfdc")
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


# ------------------------------------------------------------------------------------------------------
# FaceForensics++
# ------------------------------------------------------------------------------------------------------
@INDEXERS.register("ffpp")
def index_ffpp(root: Path, problems: list[str], compression: str = "auto", splits_dir: str | Path | None = None
               ) -> pd.DataFrame:
    if not (root / "original_sequences").is_dir() and not (root / "manipulated_sequences").is_dir():
        raise DatasetError(
            f"{root} is not FaceForensics++: it has neither original_sequences/ nor manipulated_sequences/"
        )
    sources = _ffpp_sources(root)  # (kind, name, quality, folder)
    qualities = sorted({q for _, _, q, _ in sources})
    if not sources:
        raise DatasetError(
            f"{root}: no <c23|c40|raw>/videos folders under original_sequences/ or manipulated_sequences/"
        )
    chosen = _choose_quality(compression, qualities, root)
    with_quality = chosen is None  # "all": the quality becomes part of each video id
    rows = []
    for kind, name, quality, folder in sources:
        if chosen is not None and quality != chosen:
            continue
        videos = sorted(_files(folder, VIDEO_EXTENSIONS))
        if not videos:
            problems.append(f"{folder} holds no videos")
        for path in videos:
            rows.append(_ffpp_row(kind, name, quality, path, with_quality))
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    pairs = _read_ffpp_splits(root, splits_dir, problems)
    # Official pairs join too, so a pair stays together even where one of its fakes is missing.
    official_pairs = [set(pair) for pair_list in pairs.values() for pair in pair_list]
    names = _union_names([set(m) for m in df["identities"]] + official_pairs)
    df["group"] = [names[ids[0]] for ids in df["identities"]]
    if pairs:
        split_of = {ident: split for split, pair_list in pairs.items() for pair in pair_list for ident in pair}
        df["split"] = [split_of.get(ids[0], "") if ids[0].startswith("yt:") else "" for ids in df["identities"]]
        df.loc[df["split"] != "", "split_level"] = "official"
        listed = set(split_of)
        present = {i for ids in df["identities"] for i in ids}
        absent = sorted(listed - present)
        if absent:
            problems.append(
                f"the official splits name {len(absent)} ids with no video on disk "
                f"(e.g. {', '.join(a[3:] for a in absent[:EXAMPLES])}); they are ignored"
            )
    return df.drop(columns=["identities"])


def _ffpp_sources(root: Path) -> list[tuple[str, str, str, Path]]:
    out = []
    for kind, parent in (("real", root / "original_sequences"), ("fake", root / "manipulated_sequences")):
        if not parent.is_dir():
            continue
        for sub in sorted(p for p in parent.iterdir() if p.is_dir()):
            for quality in FFPP_QUALITIES:
                folder = sub / quality / "videos"
                if folder.is_dir():
                    out.append((kind, sub.name, quality, folder))
    return out


def _choose_quality(compression: str, present: list[str], root: Path) -> str | None:
    if compression == "all":
        return None
    if compression == "auto":
        # c23 is what most work (seed 003 included) uses; otherwise the best quality on disk.
        for quality in ("c23", "raw", "c40"):
            if quality in present:
                return quality
    if compression not in present:
        raise DatasetError(
            f"{root} has no {compression} videos (found: {', '.join(present) or 'none'}); pass --compression "
            "with one of those, or all"
        )
    return compression


def _ffpp_row(kind: str, name: str, quality: str, path: Path, with_quality: bool) -> dict:
    stem = path.stem
    prefix = f"{name}/{quality}" if with_quality else name
    real_prefix = lambda real_kind: f"{real_kind}/{quality}" if with_quality else real_kind  # noqa: E731
    row = {"path": str(path), "label": kind, "method": name, "video": f"{prefix}/{stem}", "compression": quality,
           "original": ""}
    if kind == "real":
        ident = f"yt:{stem}" if name == "youtube" else f"actor:{stem.split('__')[0]}"
        row["identities"] = [ident]
        return row
    if name == "DeepFakeDetection":
        # 01_02__exit_phone_room__YVGY8LOK: actor 01's scene with actor 02's face.
        parts = stem.split("__")
        actors = parts[0].split("_")
        row["identities"] = [f"actor:{a}" for a in actors]
        if len(parts) >= 2:
            row["original"] = f"{real_prefix('actors')}/{actors[0]}__{parts[1]}"
        return row
    # 000_003: target video 000 (whose frames are kept) with the face of 003.
    ids = stem.split("_")
    row["identities"] = [f"yt:{i}" for i in ids]
    row["original"] = f"{real_prefix('youtube')}/{ids[0]}"
    return row


def _read_ffpp_splits(root: Path, splits_dir, problems: list[str]) -> dict[str, list[list[str]]]:
    """{"train": [["yt:953", "yt:974"], ...], ...} from the official train/val/test.json, {} when absent."""
    candidates = [Path(splits_dir)] if splits_dir else [root / "splits", root]
    for folder in candidates:
        files = {s: folder / f"{s}.json" for s in ("train", "val", "test")}
        if not any(f.is_file() for f in files.values()):
            continue
        out = {}
        for split, path in files.items():
            if not path.is_file():
                problems.append(f"{path} is missing: no video is put in {split} by the official splits")
                continue
            try:
                pairs = json.loads(path.read_text())
                out[split] = [[f"yt:{i}" for i in pair] for pair in pairs]
            except (OSError, ValueError, TypeError) as exc:
                problems.append(f"{path} cannot be read ({exc}); the official {split} split is not used")
        return out
    if splits_dir:
        problems.append(f"{splits_dir} holds no train/val/test.json; no official split is used")
    return {}


# ------------------------------------------------------------------------------------------------------
# Celeb-DF v2
# ------------------------------------------------------------------------------------------------------
@INDEXERS.register("celebdf")
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


# ------------------------------------------------------------------------------------------------------
# Image folders
# ------------------------------------------------------------------------------------------------------
@INDEXERS.register("folders")
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


# ------------------------------------------------------------------------------------------------------
# Face crops described by a CSV
# ------------------------------------------------------------------------------------------------------
PATH_COLUMNS = ("path", "filepath", "file", "filename", "image", "image_path", "videoname", "name")
LABEL_COLUMNS = ("label", "labels", "class", "target", "is_fake")
IMAGE_FOLDERS = ("faces", "images", "crops", "")


@INDEXERS.register("crops-csv")
def index_crops_csv(root: Path, problems: list[str], csv: str | Path | None = None) -> pd.DataFrame:
    path = Path(csv) if csv else (root if root.is_file() else _find_crops_csv(root))
    if path is None or not path.is_file():
        raise DatasetError(f"{root}: no CSV with a label column found; pass --csv FILE")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    path_col = _pick_column(table, PATH_COLUMNS)
    label_col = _pick_column(table, LABEL_COLUMNS)
    if path_col is None or label_col is None:
        raise DatasetError(
            f"{path} needs a file column ({'/'.join(PATH_COLUMNS)}) and a label column ({'/'.join(LABEL_COLUMNS)}); "
            f"it has {', '.join(table.columns)}"
        )
    base = path.parent
    names = table[path_col].str.strip()
    files = _resolve_images(base, names)
    absent = files == ""
    if absent.any():
        problems.append(
            f"{path.name} names {int(absent.sum())} images that are not on disk "
            f"(e.g. {', '.join(names[absent].head(EXAMPLES))}); they are left out"
        )
    df = pd.DataFrame({"path": files, "label": normalize_labels(table[label_col]), "video": names})
    df["original"] = table["original"].str.strip() if "original" in table else ""
    df.loc[df["label"] == "real", "original"] = ""
    df["method"] = table["method"] if "method" in table else df["label"].map({"real": "original", "fake": "fake"})
    if "group" in table:
        df["group"] = table["group"]
    else:
        # DFDC convention: a real is its own source, a fake belongs with its original.
        use_original = (df["label"] == "fake") & (df["original"] != "")
        df["group"] = df["original"].where(use_original, df["video"])
    if "split" in table:
        df["split"] = table["split"].str.strip().str.lower().replace({"validation": "val", "valid": "val"})
        df["split_level"] = "official"
    extras = [c for c in table.columns if c not in {path_col, label_col, "original", "method", "group", "split"}]
    for col in extras:
        df[col] = table[col]
    return df[~absent].reset_index(drop=True)


def _find_crops_csv(root: Path, quiet: bool = False) -> Path | None:
    preferred = [root / "metadata.csv", root / "labels.csv", root / "manifest.csv"]
    candidates = [p for p in preferred if p.is_file()] or sorted(root.glob("*.csv"))
    for path in candidates:
        try:
            header = pd.read_csv(path, nrows=0).columns
        except (OSError, ValueError):
            continue
        if _pick_column(pd.DataFrame(columns=header), LABEL_COLUMNS) and _pick_column(
            pd.DataFrame(columns=header), PATH_COLUMNS
        ):
            return path
    return None


def _resolve_images(base: Path, names: pd.Series) -> pd.Series:
    """The image file of each row: the name as a path relative to the CSV, or the name's stem with an
    image extension in faces/, images/, crops/ or beside the CSV (DFDC crops are named after their video).
    Folders are listed once, so 26,000 rows resolve in a fraction of a second."""
    by_stem: dict[str, str] = {}
    by_rel: dict[str, str] = {}
    for sub in IMAGE_FOLDERS:
        folder = base / sub if sub else base
        if not folder.is_dir():
            continue
        with os.scandir(folder) as entries:
            for entry in entries:
                suffix = os.path.splitext(entry.name)[1].lower()
                if suffix in IMAGE_EXTENSIONS:
                    full = os.path.join(folder, entry.name)
                    by_rel.setdefault(f"{sub}/{entry.name}" if sub else entry.name, full)
                    by_stem.setdefault(os.path.splitext(entry.name)[0], full)
    direct = names.map(by_rel)
    # Bare names (DFDC crops carry their video's name, "abc.mp4" -> faces/abc.jpg) go by stem;
    # names with folders not listed above are checked on disk one by one.
    bare = direct.isna() & ~names.str.contains("/", regex=False)
    direct[bare] = names[bare].map(lambda n: by_stem.get(os.path.splitext(n)[0]))
    nested = direct.isna() & ~bare
    direct[nested] = names[nested].map(lambda n: str(base / n) if (base / n).is_file() else None)
    return direct.fillna("")


# ------------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------------
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
