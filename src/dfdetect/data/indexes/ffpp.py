"""FaceForensics++: original and manipulated sequences, official splits."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...errors import DatasetError
from .core import dir_names, register_format
from .files import EXAMPLES, VIDEO_EXTENSIONS, _files, _union_names

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
FFPP_QUALITIES = ("c23", "c40", "raw")


@register_format("ffpp", order=10, layout="FaceForensics++ (original_sequences/, manipulated_sequences/)",
                 recognises=lambda root: bool(dir_names(root) & {"original_sequences", "manipulated_sequences"}))
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
