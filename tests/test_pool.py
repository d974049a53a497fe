"""A training pool of several sources: the shared FF++ tree, DFDC crops and real faces joined into one manifest,
split by group with FF++ ids tied through their fakes, per-source sampling weights, leave-one-source-out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_DATA, _need

from dfdetect.errors import ConfigError


@pytest.fixture(scope="module")
def sources():
    from dfdetect.data.indexes import index_dataset

    ffpp = index_dataset(_need(SHARED_DATA / "ffpp-c23")).manifest
    dfdc = index_dataset(_need(SHARED_DATA / "dfdc-faces")).manifest
    reals = index_dataset(_need(SHARED_DATA / "real-faces")).manifest
    # A slice of DFDC that keeps its fakes with their originals: 300 groups.
    dfdc = dfdc[dfdc["group"].isin(sorted(set(dfdc["group"]))[:300])]
    return {"dfdc": dfdc, "ffpp": ffpp, "real-faces": reals.head(400)}


def test_shared_ffpp_tree_indexes_as_is(sources):
    ffpp = sources["ffpp"]
    assert len(ffpp) == 90
    assert ffpp["method"].value_counts().to_dict() == {"youtube": 32, "Deepfakes": 32, "Face2Face": 13, "FaceSwap": 13}
    # 033_097 puts 097's face into 033's video: the fake and both reals are one group.
    fake = ffpp[ffpp["video"] == "Deepfakes/033_097"].iloc[0]
    assert fake["original"] == "youtube/033"
    tied = ffpp[ffpp["video"].isin(["youtube/033", "youtube/097"])]
    assert set(tied["group"]) == {fake["group"]}


def test_group_split_of_the_pool_never_splits_a_group(sources):
    from dfdetect.data.pool import pool_manifests
    from dfdetect.data.splits import group_leaks

    pool = pool_manifests(sources, split="group", seed=3)
    assert len(pool) == sum(len(f) for f in sources.values())
    assert set(pool["dataset"]) == {"dfdc", "ffpp", "real-faces"}
    assert set(pool["split"]) == {"train", "val", "test"}
    assert group_leaks(pool).empty
    # Every source is split on its own, so each has rows in train and in a held-back split.
    for name, part in pool.groupby("dataset"):
        assert {"train"} < set(part["split"]), name
    # FF++: the fakes and reals of one group (033, 097 and 033_097) land together.
    ffpp = pool[pool["dataset"] == "ffpp"]
    together = ffpp[ffpp["video"].isin(["youtube/033", "youtube/097", "Deepfakes/033_097"])]
    assert len(together) == 3 and together["split"].nunique() == 1
    # Groups are named per source: a DFDC group can never merge with an FF++ one.
    assert pool["group"].str.split(":").str[0].eq(pool["dataset"]).all()


def test_keep_leaves_given_splits_and_hold_out_moves_a_whole_source_to_test(sources):
    from dfdetect.data.pool import pool_manifests
    from dfdetect.data.splits import assign_splits

    dfdc = assign_splits(sources["dfdc"], "group", seed=0)
    pool = pool_manifests({**sources, "dfdc": dfdc}, split="keep", hold_out=["ffpp"])
    kept = pool[pool["dataset"] == "dfdc"]
    assert kept["split"].tolist() == dfdc["split"].tolist()
    held = pool[pool["dataset"] == "ffpp"]
    assert (held["split"] == "test").all() and (held["split_level"] == "held_out_source").all()
    assert not pool[pool["dataset"] != "ffpp"]["split"].eq("").any()


def test_a_leaking_manifest_and_bad_names_are_refused(sources):
    from dfdetect.data.pool import pool_manifests
    from dfdetect.errors import ConfigError, DatasetError

    leaky = sources["ffpp"].copy()
    leaky["split"] = np.where(np.arange(len(leaky)) % 2, "train", "test")
    with pytest.raises(DatasetError, match="span more than one split"):
        pool_manifests({"ffpp": leaky}, split="keep")
    with pytest.raises(ConfigError, match="no such source"):
        pool_manifests(sources, hold_out=["celebdf"])
    with pytest.raises(ConfigError, match="source name"):
        pool_manifests({"a:b": sources["ffpp"]})


def test_source_weights_balance_labels_within_sources_and_temper_sizes():
    from dfdetect.data.pool import source_weights

    rows = pd.DataFrame({
        "dataset": ["big"] * 900 + ["small"] * 100 + ["reals"] * 400,
        "label": ["real"] * 300 + ["fake"] * 600 + ["real"] * 20 + ["fake"] * 80 + ["real"] * 400,
    })
    w = source_weights(rows, share_power=0.5)
    assert w.sum() == pytest.approx(1.0)
    share = pd.Series(w).groupby(rows["dataset"]).sum()
    assert share["big"] / share["small"] == pytest.approx(3.0)  # sqrt(900 / 100)
    assert share["reals"] / share["small"] == pytest.approx(2.0)
    for name in ("big", "small"):
        part = rows["dataset"] == name
        real = w[(part & (rows["label"] == "real")).to_numpy()].sum()
        assert real == pytest.approx(share[name] / 2)
    equal = pd.Series(source_weights(rows, share_power=0.0)).groupby(rows["dataset"]).sum()
    assert equal.to_numpy() == pytest.approx([1 / 3] * 3)
    # Two thirds of each source's draws to its reals; the sources' shares and a one-label source stay as they were.
    thirds = source_weights(rows, share_power=0.5, real_share=2 / 3)
    assert pd.Series(thirds).groupby(rows["dataset"]).sum().to_numpy() == pytest.approx(share.to_numpy())
    for name in ("big", "small"):
        part = (rows["dataset"] == name).to_numpy()
        real = thirds[part & (rows["label"] == "real").to_numpy()].sum()
        assert real == pytest.approx(share[name] * 2 / 3)


def test_group_weights_draw_a_group_more_often_without_moving_source_or_label_shares():
    from dfdetect.data.pool import source_weights

    rows = pd.DataFrame({
        "dataset": ["faces"] * 100 + ["clips"] * 100,
        "label": ["real"] * 100 + ["real"] * 50 + ["fake"] * 50,
        "age": [8] * 20 + [30] * 80 + [""] * 100, "gender": "", "race": "",
    })
    plain = source_weights(rows, 0.5)
    child = (rows["age"] == 8).to_numpy()
    weighted = source_weights(rows, 0.5, {"age_band under 13": 3.0})
    assert weighted.sum() == pytest.approx(1.0)
    assert weighted[child].sum() / plain[child].sum() == pytest.approx(3 * 100 / (3 * 20 + 80))
    assert weighted[child][0] / weighted[~child & (rows["dataset"] == "faces").to_numpy()][0] == pytest.approx(3.0)
    by_cell = lambda w: pd.Series(w).groupby([rows["dataset"], rows["label"]]).sum()  # noqa: E731
    assert by_cell(weighted).to_numpy() == pytest.approx(by_cell(plain).to_numpy())
    with pytest.raises(ConfigError, match="no training row"):
        source_weights(rows, 0.5, {"age_band 60+": 2.0})
    with pytest.raises(ConfigError, match="name it as"):
        source_weights(rows, 0.5, {"children": 2.0})


def test_pool_cli_writes_a_pool_and_refuses_to_overwrite_an_input(tmp_path, sources, capsys):
    from dfdetect.cli import main
    from dfdetect.data.manifest import read_manifest, write_manifest

    paths = []
    for name, frame in sources.items():
        path = write_manifest(frame, tmp_path / f"{name}.csv")
        paths.append(f"{name}={path}")
    out = tmp_path / "pool.csv"
    assert main(["pool", *paths, "--out", str(out), "--split", "group"]) == 0
    printed = capsys.readouterr().out
    assert "ffpp fake" in printed and "real-faces real" in printed
    assert set(read_manifest(out)["dataset"]) == {"dfdc", "ffpp", "real-faces"}
    assert main(["pool", *paths, "--out", str(tmp_path / "ffpp.csv")]) == 2
    assert "is one of the inputs" in capsys.readouterr().err


def test_pool_cli_names_an_empty_or_damaged_manifest_in_one_line(tmp_path, capsys):
    from dfdetect.cli import main

    empty, damaged = tmp_path / "empty.csv", tmp_path / "damaged.csv"
    empty.write_bytes(b"")
    damaged.write_bytes(b'path,label\n"unclosed,real\n')
    for bad in (empty, damaged):
        assert main(["pool", f"a={bad}", "--out", str(tmp_path / "pool.csv")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: manifest") and bad.name in err[0]
    assert not (tmp_path / "pool.csv").exists()
