"""The end of a training run on a pool of sources: validation figures per source, and a video threshold fitted
on several-crop videos only when there are enough of them; the scan applies it to videos, not to images."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest


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


def recipe():
    from dfdetect.train.recipe import recipe_from_dict

    return recipe_from_dict({"name": "r", "model": {"arch": "efficientnet_lite0"},
                             "calibration": {"threshold": "eer"}})


def test_per_source_figures_and_a_video_threshold_from_enough_videos():
    from dfdetect.train.calibration import MIN_VIDEOS_PER_CLASS, calibrate, card_metrics

    val, rows = validation(MIN_VIDEOS_PER_CLASS, 8, np.random.default_rng(0))
    cal = calibrate(val, rows, recipe(), log=lambda line: None)
    per_source = cal.levels["frame"]["per_source"]
    assert set(per_source) == {"clips", "photos"}
    assert per_source["photos"]["auc"] is None and per_source["clips"]["auc"] > 0.7
    assert 0.0 <= per_source["photos"]["reals_called_fake"] < per_source["clips"]["reals_called_fake"]
    # Means over 8 crops spread less than single crops: the video threshold is fitted apart.
    assert cal.video_threshold is not None and cal.video_threshold != cal.threshold
    assert cal.levels["video"]["n"] == 2 * MIN_VIDEOS_PER_CLASS + 200
    assert card_metrics(recipe(), cal.levels["frame"])["per_source"] == per_source


def test_too_few_videos_keep_the_frame_threshold():
    from dfdetect.train.calibration import MIN_VIDEOS_PER_CLASS, calibrate

    lines = []
    val, rows = validation(MIN_VIDEOS_PER_CLASS - 1, 8, np.random.default_rng(1))
    cal = calibrate(val, rows, recipe(), log=lines.append)
    assert cal.video_threshold is None and "keep the frame threshold" in lines[0]


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
