"""Indexers read small datasets laid out like DFDC, FaceForensics++, Celeb-DF and image folders, built from
the real DFDC clips and crops in ../shared/data (linked into each layout)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from dfdetect.cli import main
from dfdetect.data.indexes import detect_format, index_dataset
from dfdetect.data.manifest import COLUMNS, read_manifest, write_manifest
from dfdetect.errors import DatasetError

REALS = ["baxpshhrhc", "bfkzrgovsv", "cedpyannqf"]
FAKES = ["cbqfgqronr", "ccpzqqemva", "euqujvlnnb"]


def link(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(src)
    return dst


@pytest.fixture
def clips(dfdc_videos) -> dict[str, Path]:
    return {p.stem: p for p in dfdc_videos}


# ------------------------------------------------------------------------------------------------ DFDC
def make_dfdc(root: Path, clips: dict[str, Path]) -> Path:
    part = root / "dfdc_train_part_0"
    meta = {f"{r}.mp4": {"label": "REAL", "split": "train"} for r in REALS[:2]}
    meta[f"{FAKES[0]}.mp4"] = {"label": "FAKE", "split": "train", "original": f"{REALS[0]}.mp4"}
    meta[f"{FAKES[1]}.mp4"] = {"label": "FAKE", "split": "train", "original": f"{REALS[0]}.mp4"}
    meta["gone.mp4"] = {"label": "FAKE", "original": f"{REALS[1]}.mp4"}  # named but absent
    for name in list(meta)[:4]:
        link(clips[Path(name).stem], part / name)
    (part / "metadata.json").write_text(json.dumps(meta))
    # A second part that lost its metadata.json.
    link(clips[REALS[2]], root / "dfdc_train_part_1" / f"{REALS[2]}.mp4")
    return root


def test_dfdc_parts_with_metadata(tmp_path, clips):
    index = index_dataset(make_dfdc(tmp_path, clips))
    assert index.format == "dfdc"
    df = index.manifest.set_index("video")
    assert sorted(df.index) == sorted([f"{REALS[0]}.mp4", f"{REALS[1]}.mp4", f"{FAKES[0]}.mp4", f"{FAKES[1]}.mp4"])
    assert df.loc[f"{FAKES[0]}.mp4", "label"] == "fake" and df.loc[f"{REALS[0]}.mp4", "label"] == "real"
    # A fake is grouped with its original, a real with itself.
    assert df.loc[f"{FAKES[0]}.mp4", "group"] == df.loc[f"{REALS[0]}.mp4", "group"] == f"{REALS[0]}.mp4"
    assert df.loc[f"{FAKES[1]}.mp4", "original"] == f"{REALS[0]}.mp4"
    assert set(df["method"]) == {"original", "dfdc"}
    assert all(Path(p).is_file() for p in df["path"])
    problems = " | ".join(index.problems)
    assert "gone.mp4" in problems and "not on disk" in problems
    assert "dfdc_train_part_1" in problems and "no metadata.json" in problems


def test_shared_dfdc_videos_folder_indexes_as_is(shared_data):
    index = index_dataset(shared_data / "dfdc-videos")
    assert index.format == "dfdc" and len(index.manifest) == 6
    assert sorted(index.manifest["label"].value_counts().tolist()) == [3, 3]


def test_dfdc_without_any_metadata_says_what_is_missing(tmp_path, clips):
    link(clips[REALS[0]], tmp_path / "part" / f"{REALS[0]}.mp4")
    with pytest.raises(DatasetError, match="metadata.json"):
        index_dataset(tmp_path, "dfdc")
    with pytest.raises(DatasetError, match="no known layout"):
        index_dataset(tmp_path)


def test_broken_metadata_json_is_reported_and_other_parts_go_on(tmp_path, clips):
    make_dfdc(tmp_path, clips)
    bad = tmp_path / "dfdc_train_part_1"
    (bad / "metadata.json").write_text("{not json")
    index = index_dataset(tmp_path)
    assert len(index.manifest) == 4
    assert any("cannot be read" in p and "part_1" in p for p in index.problems)


# ------------------------------------------------------------------------------------------------ FF++
def make_ffpp(root: Path, clips: dict[str, Path], with_splits: bool = True) -> Path:
    ids = {"000": REALS[0], "003": REALS[1], "010": REALS[2], "011": REALS[0]}
    for quality in ("c23", "c40"):
        for ident, clip in ids.items():
            link(clips[clip], root / "original_sequences/youtube" / quality / "videos" / f"{ident}.mp4")
        for i, method in enumerate(["Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter"]):
            folder = root / "manipulated_sequences" / method / quality / "videos"
            for a, b in (("000", "003"), ("003", "000"), ("010", "011"), ("011", "010")):
                link(clips[FAKES[i % 3]], folder / f"{a}_{b}.mp4")
    # Masks sit beside the videos in the official layout; they are not videos to index.
    link(clips[FAKES[0]], root / "manipulated_sequences/Deepfakes/masks/videos/000_003.mp4")
    if with_splits:
        splits = root / "splits"
        splits.mkdir()
        (splits / "train.json").write_text(json.dumps([["000", "003"]]))
        (splits / "val.json").write_text(json.dumps([["010", "011"]]))
        (splits / "test.json").write_text(json.dumps([["020", "021"]]))
    return root


def test_ffpp_layout_methods_groups_and_official_splits(tmp_path, clips):
    index = index_dataset(make_ffpp(tmp_path, clips))
    assert index.format == "ffpp"
    df = index.manifest.set_index("video")
    assert len(df) == 4 + 5 * 4  # one quality (c23 by default)
    assert set(df["compression"]) == {"c23"}
    assert (df.loc[df["label"] == "fake", "method"].value_counts() == 4).all()
    assert df.loc["youtube/000", "method"] == "youtube" and df.loc["youtube/000", "label"] == "real"
    # 000_003 is 000's video with 003's face: its original is 000, and the pair is one group.
    assert df.loc["Deepfakes/000_003", "original"] == "youtube/000"
    pair = {df.loc[v, "group"] for v in ["youtube/000", "youtube/003", "Deepfakes/000_003", "FaceShifter/003_000"]}
    assert len(pair) == 1
    assert df.loc["youtube/000", "group"] != df.loc["youtube/010", "group"]
    # Official splits: pairs stay together, and test.json's ids that are not on disk are reported.
    assert set(df.loc[df["group"] == df.loc["youtube/000", "group"], "split"]) == {"train"}
    assert set(df.loc[df["group"] == df.loc["youtube/010", "group"], "split"]) == {"val"}
    assert (df["split_level"] == "official").all()
    assert any("020" in p and "no video on disk" in p for p in index.problems)


def test_ffpp_quality_choice(tmp_path, clips):
    make_ffpp(tmp_path, clips, with_splits=False)
    both = index_dataset(tmp_path, "ffpp", compression="all").manifest
    assert len(both) == 2 * 24 and {"youtube/c23/000", "youtube/c40/000"} <= set(both["video"])
    assert set(both.loc[both["video"] == "Deepfakes/c40/000_003", "original"]) == {"youtube/c40/000"}
    assert set(index_dataset(tmp_path, "ffpp", compression="c40").manifest["compression"]) == {"c40"}
    with pytest.raises(DatasetError, match="no raw videos"):
        index_dataset(tmp_path, "ffpp", compression="raw")


# ------------------------------------------------------------------------------------------------ Celeb-DF
def make_celebdf(root: Path, clips: dict[str, Path]) -> Path:
    link(clips[REALS[0]], root / "Celeb-real/id0_0000.mp4")
    link(clips[REALS[1]], root / "Celeb-real/id1_0000.mp4")
    link(clips[REALS[2]], root / "Celeb-real/id2_0001.mp4")
    link(clips[FAKES[0]], root / "Celeb-synthesis/id0_id1_0000.mp4")
    link(clips[FAKES[1]], root / "Celeb-synthesis/id2_id2_0001.mp4")
    link(clips[REALS[2]], root / "YouTube-real/00000.mp4")
    (root / "List_of_testing_videos.txt").write_text(
        "1 YouTube-real/00000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n1 Celeb-real/id9_0000.mp4\n"
    )
    return root


def test_celebdf_identity_groups_and_test_list(tmp_path, clips):
    index = index_dataset(make_celebdf(tmp_path, clips))
    assert index.format == "celebdf"
    df = index.manifest.set_index("video")
    assert df.loc["Celeb-synthesis/id0_id1_0000", "label"] == "fake"
    assert df.loc["YouTube-real/00000", "label"] == "real"
    assert df.loc["Celeb-synthesis/id0_id1_0000", "original"] == "Celeb-real/id0_0000"
    # id0 and id1 appear together in a fake: one group; id2 is apart.
    assert df.loc["Celeb-real/id0_0000", "group"] == df.loc["Celeb-real/id1_0000", "group"]
    assert df.loc["Celeb-real/id2_0001", "group"] != df.loc["Celeb-real/id0_0000", "group"]
    assert set(df.loc[df["split"] == "test"].index) == {"YouTube-real/00000", "Celeb-synthesis/id0_id1_0000"}
    assert any("id9_0000" in p for p in index.problems)
    by_target = index_dataset(tmp_path, "celebdf", grouping="target").manifest.set_index("video")
    assert by_target.loc["Celeb-real/id0_0000", "group"] != by_target.loc["Celeb-real/id1_0000", "group"]


# ------------------------------------------------------------------------------------------------ image folders
def test_real_fake_image_folders(tmp_path, dfdc_faces):
    meta = pd.read_csv(dfdc_faces / "metadata.csv").head(40)
    for name, label in zip(meta["videoname"], meta["label"]):
        stem = Path(name).stem
        plain = tmp_path / "plain" / label.lower()
        plain.mkdir(parents=True, exist_ok=True)
        shutil.copy(dfdc_faces / "faces" / f"{stem}.jpg", plain / f"{stem}.jpg")
        sub = tmp_path / "forensynths" / "progan" / "person" / ("0_real" if label == "REAL" else "1_fake")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{stem}_frame0.jpg").symlink_to(dfdc_faces / "faces" / f"{stem}.jpg")

    plain = index_dataset(tmp_path / "plain")
    assert plain.format == "folders" and len(plain.manifest) == 40
    assert plain.manifest["label"].value_counts().to_dict() == meta["label"].str.lower().value_counts().to_dict()
    nested = index_dataset(tmp_path / "forensynths", group_regex=r"([a-z]+)_frame\d+").manifest
    fakes = nested[nested["label"] == "fake"]
    assert set(fakes["method"]) == {"progan/person"}
    assert set(nested["group"]) == {Path(n).stem for n in meta["videoname"]}


# ------------------------------------------------------------------------------------------------ crops CSV
def test_dfdc_faces_csv_all_rows(dfdc_faces):
    index = index_dataset(dfdc_faces)
    df = index.manifest
    assert index.format == "crops-csv" and len(df) == 26_000 and not index.problems
    assert df["label"].value_counts().to_dict() == {"real": 13_000, "fake": 13_000}
    fake = df[(df["label"] == "fake") & (df["original"] != "")].iloc[0]
    assert fake["group"] == fake["original"]
    real = df[df["label"] == "real"].iloc[0]
    assert real["group"] == real["video"] and Path(real["path"]).is_file()
    assert "original_width" in df.columns  # extra columns travel along


def test_crops_csv_naming_absent_images(tmp_path, dfdc_faces):
    rows = pd.read_csv(dfdc_faces / "metadata.csv").head(5)
    (tmp_path / "faces").mkdir()
    for name in rows["videoname"][:3]:
        (tmp_path / "faces" / f"{Path(name).stem}.jpg").symlink_to(dfdc_faces / "faces" / f"{Path(name).stem}.jpg")
    rows.to_csv(tmp_path / "metadata.csv", index=False)
    index = index_dataset(tmp_path)
    assert len(index.manifest) == 3
    assert any("2 images that are not on disk" in p for p in index.problems)


# ------------------------------------------------------------------------------------------------ manifest + CLI
def test_wrong_layout_is_named(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="no known layout"):
        detect_format(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        index_dataset(tmp_path / "missing")


def test_manifest_round_trip_keeps_ids_as_text(tmp_path, clips):
    make_ffpp(tmp_path / "ffpp", clips)
    out = tmp_path / "out" / "m.csv"
    assert main(["index", str(tmp_path / "ffpp"), "--out", str(out)]) == 0
    df = read_manifest(out)
    assert list(df.columns[: len(COLUMNS)]) == COLUMNS
    assert "youtube/000" in set(df["video"]) and df["frame"].dtype.kind == "i"
    # Relative paths are stored relative to the manifest and come back absolute.
    local = df.head(2).assign(path=[str(tmp_path / "out" / "a.jpg"), "/elsewhere/b.jpg"])
    write_manifest(local, out, relative_to=out.parent)
    assert pd.read_csv(out)["path"].tolist() == ["a.jpg", "/elsewhere/b.jpg"]
    assert read_manifest(out)["path"].tolist() == [str(tmp_path / "out" / "a.jpg"), "/elsewhere/b.jpg"]


def test_index_cli_reports_problems_and_writes_splits(tmp_path, clips, capsys):
    make_dfdc(tmp_path / "dfdc", clips)
    out = tmp_path / "m.csv"
    assert main(["index", str(tmp_path / "dfdc"), "--out", str(out), "--seed", "3"]) == 0
    captured = capsys.readouterr()
    assert "warning:" in captured.err and "gone.mp4" in captured.err
    df = read_manifest(out)
    assert set(df["split"]) <= {"train", "val", "test"} and (df["split_level"] == "group").all()
    assert df.groupby("group")["split"].nunique().max() == 1


def test_a_relative_dataset_path_gives_a_manifest_readable_from_anywhere(dfdc_faces, tmp_path, monkeypatch):
    import os

    monkeypatch.chdir(dfdc_faces.parent)
    index = index_dataset(dfdc_faces.name, "crops-csv")
    out = write_manifest(index.manifest.head(3), tmp_path / "sub" / "m.csv")
    monkeypatch.chdir(tmp_path)
    assert all(os.path.isfile(p) for p in read_manifest(out)["path"])
