"""The end of a training run on a pool of sources: validation figures per source, and a video threshold fitted
on several-crop videos only when there are enough of them; the scan applies it to videos, not to images."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch


def validation(n_videos: int, crops: int, rng) -> tuple[dict, pd.DataFrame]:
    """n_videos real and n_videos fake videos of `crops` crops (source "clips"), plus 200 single photos of
    real faces (source "photos"); fake logits higher on average."""
    rows, logits, labels = [], [], []
    for label in (0, 1):
        for v in range(n_videos):
            for c in range(crops):
                rows.append({"video": f"{label}-{v}", "dataset": "clips", "track": 0, "method": "m"})
                logits.append(rng.normal(1.0 if label else -1.0, 1.5))
                labels.append(label)
    for i in range(200):
        rows.append({"video": f"photo{i}.jpg", "dataset": "photos", "track": -1, "method": "original"})
        logits.append(rng.normal(-2.0, 1.0))
        labels.append(0)
    val = {"logits": np.array(logits), "labels": np.array(labels, float), "indices": np.arange(len(rows))}
    return val, pd.DataFrame(rows)


def recipe(**calibration):
    from dfdetect.train.recipe import recipe_from_dict

    return recipe_from_dict({"name": "r", "model": {"arch": "efficientnet_lite0"},
                             "calibration": {"threshold": "eer", **calibration}})


def test_per_source_figures_and_a_video_threshold_from_enough_videos():
    from dfdetect.train.calibration import MIN_VIDEOS_PER_CLASS, calibrate, card_metrics

    val, rows = validation(MIN_VIDEOS_PER_CLASS, 8, np.random.default_rng(0))
    cal = calibrate(val, rows, recipe().calibration, log=lambda line: None)
    per_source = cal.levels["frame"]["per_source"]
    assert set(per_source) == {"clips", "photos"}
    assert per_source["photos"]["auc"] is None and per_source["clips"]["auc"] > 0.7
    assert 0.0 <= per_source["photos"]["reals_called_fake"] < per_source["clips"]["reals_called_fake"]
    # Means over 8 crops spread less than single crops: the video threshold is fitted apart.
    assert cal.video_threshold is not None and cal.video_threshold != cal.threshold
    assert cal.levels["video"]["n"] == 2 * MIN_VIDEOS_PER_CLASS + 200
    assert card_metrics("val", cal.levels["frame"])["per_source"] == per_source


def test_too_few_videos_keep_the_frame_threshold():
    from dfdetect.train.calibration import MIN_VIDEOS_PER_CLASS, calibrate

    lines = []
    val, rows = validation(MIN_VIDEOS_PER_CLASS - 1, 8, np.random.default_rng(1))
    cal = calibrate(val, rows, recipe().calibration, log=lines.append)
    assert cal.video_threshold is None and "keep the frame threshold" in lines[0]


def test_false_alarm_bound_raises_the_threshold_for_the_worst_group_of_people():
    from dfdetect.evaluate.fairness import describe_people
    from dfdetect.probability import apply_temperature
    from dfdetect.train.calibration import calibrate

    rng = np.random.default_rng(2)
    val, rows = validation(20, 4, rng)
    rows["group"] = rows["video"]
    # The 200 photos: 60 children whose real faces score high, 140 adults; ages as UTKFace records them.
    rows["age"] = np.where(rows["dataset"] == "photos", 30.0, np.nan)
    photos = np.flatnonzero(rows["dataset"].to_numpy() == "photos")
    rows.loc[photos[:60], "age"] = 8.0
    val["logits"][photos[:60]] = rng.normal(0.5, 1.0, 60)
    probs = lambda cal: apply_temperature(val["logits"], cal.temperature)  # noqa: E731
    children = (rows["age"] == 8.0).to_numpy()

    plain = calibrate(val, rows, recipe().calibration, log=lambda line: None)
    assert (probs(plain)[children] >= plain.threshold).mean() > 0.3
    lines = []
    bounded = calibrate(val, rows, recipe(max_real_fpr=0.05, min_group_people=40).calibration, log=lines.append)
    assert bounded.threshold > plain.threshold and "age_band under 13" in lines[0]
    bands = describe_people(rows)["age_band"].to_numpy()
    reals = val["labels"] == 0
    for band in ("under 13", "13-59"):
        assert (probs(bounded)[reals & (bands == band)] >= bounded.threshold).mean() <= 0.05
    # A group of fewer people than min_group_people does not bind.
    few = calibrate(val, rows, recipe(max_real_fpr=0.05, min_group_people=61).calibration, log=lambda line: None)
    assert few.threshold < bounded.threshold


def test_scan_applies_the_video_threshold_to_videos_only(tmp_path, astronaut, one_torch_thread):
    import cv2

    from dfdetect import Detector
    from dfdetect.models import load_card, resolve
    from dfdetect.samples import sample_video_path

    weights, _ = resolve("default")
    shutil.copy(weights, tmp_path / "m.safetensors")
    card = load_card("default").model_copy(update={"video_threshold": 0.001})
    (tmp_path / "m.json").write_text(card.model_dump_json(indent=2))
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))

    detector = Detector.load(tmp_path / "m", device="cpu", sampling="4")
    video = detector.scan(sample_video_path())
    assert video.threshold == pytest.approx(0.001) and video.verdict == "fake"
    assert all(t.verdict == "fake" for t in video.tracks)
    assert detector.scan(image).threshold == pytest.approx(card.threshold)
    assert Detector.load(tmp_path / "m", device="cpu", threshold=0.9).video_threshold == 0.9


@pytest.mark.slow
def test_calibrate_command_refits_thresholds_into_a_new_checkpoint(dfdc_faces, tmp_path, one_torch_thread):
    from dfdetect.cli import main
    from dfdetect.data.indexes import index_dataset
    from dfdetect.data.manifest import write_manifest
    from dfdetect.models import load_card, load_checkpoint

    frame = index_dataset(dfdc_faces).manifest
    rows = pd.concat([frame[frame.label == label].sample(40, random_state=0) for label in ("real", "fake")])
    manifest = write_manifest(rows.assign(split="val", dataset="dfdc"), tmp_path / "val.csv")

    assert main(["calibrate", "default", str(manifest), "--out", str(tmp_path / "eer")]) == 0
    assert main(["calibrate", str(tmp_path / "eer"), str(manifest), "--out", str(tmp_path / "bounded"),
                 "--max-real-fpr", "0.02", "--min-group-people", "10"]) == 0
    eer, bounded = load_card(tmp_path / "eer"), load_card(tmp_path / "bounded")
    assert bounded.threshold > eer.threshold and bounded.training["calibrated_on"]["n"] == 80
    assert bounded.metrics["split"] == "val" and bounded.metrics["auc"] == eer.metrics["auc"]
    model, _ = load_checkpoint(tmp_path / "bounded")
    original, _ = load_checkpoint("default")
    assert all(torch.equal(a, b.float()) for a, b in zip(model.state_dict().values(), original.state_dict().values()))
    # A split of one class is refused before any scoring, and nothing is written.
    reals = write_manifest(rows[rows.label == "real"].assign(split="val"), tmp_path / "reals.csv")
    assert main(["calibrate", "default", str(reals), "--out", str(tmp_path / "one_class")]) == 2
    assert not (tmp_path / "one_class.safetensors").exists()
    # The checkpoint being calibrated is never the output.
    assert main(["calibrate", str(tmp_path / "eer"), str(manifest), "--out", str(tmp_path / "eer.safetensors")]) == 2
    # An average of models is marked not calibrated until calibrate has fitted it.
    from dfdetect.models.average import NOT_CALIBRATED

    assert main(["average", "default", "default", "--out", str(tmp_path / "soup")]) == 0
    assert main(["calibrate", str(tmp_path / "soup"), str(manifest), "--out", str(tmp_path / "soup_fitted")]) == 0
    assert NOT_CALIBRATED in load_card(tmp_path / "soup").warnings
    assert NOT_CALIBRATED not in load_card(tmp_path / "soup_fitted").warnings
