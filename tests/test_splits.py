"""Splits: group-disjoint, stratified by method, deterministic; the seed 001 and official protocols."""

from __future__ import annotations

import pandas as pd
import pytest

from dfdetect.data.indexes import index_dataset
from dfdetect.data.manifest import new_manifest
from dfdetect.data.splits import (assign_splits, group_leaks, group_split, official_split, parse_fractions,
                                  seed001_split)
from dfdetect.errors import ConfigError

METHODS = ["Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter"]


@pytest.fixture(scope="module")
def faces_manifest(dfdc_faces) -> pd.DataFrame:
    return index_dataset(dfdc_faces).manifest


def ffpp_like(pairs: int = 100) -> pd.DataFrame:
    """FF++'s shape without files: pairs (a, b), two reals and a_b, b_a per method, grouped by pair."""
    rows = []
    for p in range(pairs):
        a, b = f"{2 * p:03d}", f"{2 * p + 1:03d}"
        group = f"{a}+{b}"
        rows += [{"path": f"youtube/{i}.mp4", "label": "real", "method": "youtube", "group": group, "video": i}
                 for i in (a, b)]
        rows += [{"path": f"{m}/{x}_{y}.mp4", "label": "fake", "method": m, "group": group, "video": f"{m}/{x}_{y}"}
                 for m in METHODS for x, y in ((a, b), (b, a))]
    return new_manifest(rows)


def test_dfdc_faces_group_split_is_disjoint_and_stratified(faces_manifest):
    split = group_split(faces_manifest, (0.7, 0.15, 0.15), seed=0)
    assert len(group_leaks(split)) == 0
    assert split.groupby("group")["split"].nunique().max() == 1
    shares = pd.crosstab(split["method"], split["split"], normalize="index")
    for name, target in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
        assert shares[name].between(target - 0.01, target + 0.01).all(), shares
    assert (split["split_level"] == "group").all()


def test_group_split_is_deterministic_per_seed(faces_manifest):
    sample = faces_manifest.sample(3000, random_state=1)
    first = group_split(sample, seed=7)["split"]
    again = group_split(sample, seed=7)["split"]
    other = group_split(sample, seed=8)["split"]
    assert first.equals(again)
    assert not first.equals(other)


def test_ffpp_pairs_stay_together_and_each_method_is_split_70_15_15():
    df = ffpp_like(100)
    split = group_split(df, seed=0)
    assert len(group_leaks(split)) == 0
    counts = pd.crosstab(split["method"], split["split"])
    # 100 pairs of identical make-up: 70 / 15 / 15 pairs exactly, for every method.
    assert (counts["train"] == 140).all() and (counts["val"] == 30).all() and (counts["test"] == 30).all()


def test_seed001_protocol_balances_and_marks_image_level(faces_manifest):
    unbalanced = pd.concat([faces_manifest[faces_manifest["label"] == "real"].head(4000),
                            faces_manifest[faces_manifest["label"] == "fake"].head(6000)])
    split = seed001_split(unbalanced)
    assert split["label"].value_counts().to_dict() == {"real": 4000, "fake": 4000}
    per_label = pd.crosstab(split["label"], split["split"])
    assert per_label.loc["real"].to_dict() == {"train": 2240, "val": 960, "test": 800}  # 56 / 24 / 20
    assert (split["split_level"] == "image").all()
    assert split["path"].tolist() == seed001_split(unbalanced)["path"].tolist()  # seed 42 every time
    assert split["path"].tolist() != seed001_split(unbalanced, seed=1)["path"].tolist()


def test_official_split_keeps_published_lists_and_fills_the_rest():
    df = ffpp_like(20)
    official_groups = sorted(df["group"].unique())[:10]
    marked = df["group"].isin(official_groups)
    df.loc[marked, "split"] = "test"
    df.loc[marked, "split_level"] = "official"
    # Only a test list is published (as Celeb-DF): the rest goes to train and val, by group.
    out = assign_splits(df)
    assert (out.loc[marked, "split"] == "test").all() and (out.loc[marked, "split_level"] == "official").all()
    assert set(out.loc[~marked, "split"]) == {"train", "val"}
    assert len(group_leaks(out)) == 0
    # All three published (as FF++): rows outside them are split over all three.
    df.loc[df["group"].isin(official_groups[:4]), "split"] = "train"
    df.loc[df["group"].isin(official_groups[4:6]), "split"] = "val"
    out = official_split(df, seed=0)
    assert set(out.loc[~marked, "split"]) == {"train", "val", "test"}


def test_fraction_and_protocol_errors_are_clear():
    assert parse_fractions("0.8,0.1,0.1") == (0.8, 0.1, 0.1)
    with pytest.raises(ConfigError, match="summing to 1"):
        parse_fractions("0.8,0.3,0.1")
    with pytest.raises(ConfigError, match="three numbers"):
        parse_fractions("a,b,c")
    with pytest.raises(ConfigError, match="unknown split protocol"):
        assign_splits(ffpp_like(2), "random")


def test_group_kfold_gives_every_group_one_turn_as_test(faces_manifest):
    from dfdetect.data.splits import group_kfold_split

    test_turns = pd.Series(0, index=pd.Index(faces_manifest["group"].unique()))
    for fold in range(5):
        out = group_kfold_split(faces_manifest, folds=5, fold=fold, seed=3)
        assert group_leaks(out).empty
        share = out["split"].value_counts(normalize=True)
        assert share["test"] == pytest.approx(0.2, abs=0.01) and share["val"] == pytest.approx(0.2, abs=0.01)
        for label in ("real", "fake"):  # each fold is balanced by label (stratified by method = label here)
            part = out[out["label"] == label]["split"].value_counts(normalize=True)
            assert part["test"] == pytest.approx(0.2, abs=0.01)
        test_turns[out.loc[out["split"] == "test", "group"].unique()] += 1
    assert (test_turns == 1).all()
    with pytest.raises(ConfigError, match="folds"):
        group_kfold_split(faces_manifest, folds=5, fold=5)
