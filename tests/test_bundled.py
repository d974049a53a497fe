"""The bundled model carries its figures per source (real faces and their worst group, the sample clip, DFDC,
FF++), written at bundling time from benchmarks/source_figures.py and read back from the card."""

from __future__ import annotations

import json

import pytest

from dfdetect.errors import DfdetectError
from dfdetect.models import create_model, load_card, load_checkpoint, save_checkpoint


def figures_for(model: str) -> dict:
    """The shape benchmarks/source_figures.py writes, for one model."""
    real = {"n": 750, "fpr": 0.02, "no_face": 1, "unsure": 3, "groups": {"age_band:60+": {"n": 90, "fpr": 0.03}},
            "worst": {"age_band": {"group": "60+", "fpr": 0.03, "n": 90}}, "table": []}
    clips = [{"clip": "a", "label": "real", "verdict": "real", "probability": 0.2},
             {"clip": "b", "label": "fake", "verdict": "real", "probability": 0.4}]
    ffpp = {"auc": {"test": {"all": {"auc": 0.9, "n_real": 4, "n_fake": 10}}}, "clips": []}
    return {model: {"threshold": 0.5, "real_faces": real, "sample_clip": {"verdict": "real", "probability": 0.3},
                    "dfdc_clips": clips, "ffpp_clips": ffpp, "dfdc_crops": {"n": 3900, "auc": 0.93}}}


def test_bundling_writes_the_figures_per_source_into_the_card(tmp_path):
    from dfdetect.models.bundled import bundle_run

    card = load_card("default").model_copy(update={"name": "run", "weights_sha256": "", "metrics": {"auc": 0.9},
                                                   "trained_for_deepfakes": True, "training": {}})
    run = tmp_path / "run" / "model"
    save_checkpoint(create_model("efficientnet_lite0").eval(), card, run)
    figures = tmp_path / "source_figures.json"
    figures.write_text(json.dumps(figures_for(str(run))))
    bundle_run(run, out=tmp_path / "bundled", source_figures=figures)
    per_source = load_card(tmp_path / "bundled").metrics["per_source"]
    assert per_source["real_faces"]["called_fake"] == 0.02
    assert per_source["real_faces"]["worst_group"]["age_band"]["group"] == "60+"
    assert per_source["dfdc_clips"] == {"right": 1, "of": 2}
    assert per_source["ffpp_video_auc"] == {"test": {"all": 0.9}}
    assert per_source["sample_clip"]["verdict"] == "real"
    with pytest.raises(DfdetectError, match="no figures for"):
        bundle_run(run, out=tmp_path / "other", source_figures=figures.with_name("absent.json"))


def test_the_bundled_default_card_reads_back_its_figures_per_source():
    card = load_card("default")
    per_source = card.metrics["per_source"]
    assert per_source["real_faces"]["n"] >= 500
    assert 0.0 <= per_source["real_faces"]["called_fake"] <= 1.0
    assert set(per_source["real_faces"]["worst_group"]) == {"age_band", "gender", "ethnicity"}
    assert per_source["dfdc_crops_test"]["auc"] > 0.85
    assert per_source["dfdc_clips"]["of"] == 6
    assert set(per_source["ffpp_video_auc"]["test"]) == {"all", "Deepfakes", "Face2Face", "FaceSwap"}


def test_the_sample_clip_is_called_real_by_the_bundled_model(one_torch_thread):
    """The README's first command: the sample clip's face is a real person's."""
    from dfdetect import Detector
    from dfdetect.samples import sample_video_path

    result = Detector.load("default", device="cpu").scan(sample_video_path())
    assert result.verdict == "real", result.summary_line()
