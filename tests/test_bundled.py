"""The bundled model carries its figures per source (real faces and their worst group, the sample clip, DFDC,
FF++), written at bundling time from benchmarks/source_figures.py and read back from the card; its ONNX twin
scores as it does."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dfdetect.errors import DfdetectError
from dfdetect.models import create_model, load_card, save_checkpoint


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


def test_the_bundled_card_states_the_limits_listed_for_bundling():
    # One list of limits: the shipped card must say what bundle_run would write for the model bundled today.
    from dfdetect.models.bundled import LIMITS

    card = load_card("default")
    assert card.limits == LIMITS
    assert any("compressed" in limit for limit in card.limits)


def test_the_sample_clip_is_called_real_by_the_bundled_model(one_torch_thread):
    """The README's first command: the sample clip's face is a real person's."""
    from dfdetect import Detector
    from dfdetect.samples import sample_video_path

    result = Detector.load("default", device="cpu").scan(sample_video_path())
    assert result.verdict == "real", result.summary_line()


def test_the_bundled_model_has_an_onnx_twin_with_the_checkpoints_scores(dfdc_faces):
    """On the CPU (and wherever PyTorch is missing) the default model runs from its ONNX twin: same card,
    same weights stored in half precision, the same probabilities."""
    from PIL import Image

    from dfdetect.faces.crop import letterbox
    from dfdetect.models.checkpoint import resolve
    from dfdetect.models.predict import OnnxBackend, Predictor, TorchBackend, load_backend

    twin, twin_card = load_backend("default", "cpu")
    torch_backend, card = load_backend(resolve("default")[0], "cpu")  # the .safetensors named outright
    assert isinstance(twin, OnnxBackend) and isinstance(torch_backend, TorchBackend)
    assert twin.checkpoint == resolve("default")[0].with_suffix("")
    assert twin_card == card  # the checkpoint's card: results name the model as the PyTorch path does
    _, embedded = load_backend(resolve("default")[0].with_suffix(".onnx"), "cpu")
    assert embedded.exported_from_sha256 == card.weights_sha256
    assert (embedded.name, embedded.threshold, embedded.temperature, embedded.crop) == \
        (card.name, card.threshold, card.temperature, card.crop)
    crops = [letterbox(np.asarray(Image.open(p).convert("RGB")), card.input_size)
             for p in sorted(dfdc_faces.rglob("*.jpg"))[:40]]
    p_onnx = Predictor.for_card(twin, twin_card, tta=True).probabilities(crops)
    p_torch = Predictor.for_card(torch_backend, card, tta=True).probabilities(crops)
    assert np.abs(p_onnx - p_torch).max() < 1e-4


def test_a_twin_exported_from_other_weights_is_not_used(tmp_path):
    pytest.importorskip("onnx")
    from dfdetect.compress.export import write_card
    from dfdetect.models.checkpoint import resolve
    from dfdetect.models.predict import OnnxBackend, TorchBackend, load_backend

    weights, card_path = resolve("default")
    for source in (weights, card_path, weights.with_suffix(".onnx")):
        shutil.copyfile(source, tmp_path / ("model" + source.suffix))
    assert isinstance(load_backend(tmp_path / "model", "cpu")[0], OnnxBackend)
    _, twin_card = load_backend(tmp_path / "model.onnx", "cpu")
    write_card(tmp_path / "model.onnx", twin_card.model_copy(update={"exported_from_sha256": "0" * 64}))
    assert isinstance(load_backend(tmp_path / "model", "cpu")[0], TorchBackend)
    assert isinstance(load_backend(tmp_path / "model.onnx", "cpu")[0], OnnxBackend)  # named outright: still runs


def test_scans_with_the_twin_match_scans_with_the_checkpoint(dfdc_videos, one_torch_thread):
    from dfdetect import Detector
    from dfdetect.models.checkpoint import resolve
    from dfdetect.samples import sample_video_path

    on_onnx = Detector.load("default", device="cpu")
    on_torch = Detector.load(resolve("default")[0], device="cpu")
    assert type(on_onnx.model).__name__ == "OnnxBackend" and type(on_torch.model).__name__ == "TorchBackend"
    for path in (sample_video_path(), dfdc_videos[0]):
        a, b = on_onnx.scan(path), on_torch.scan(path)
        assert a.verdict == b.verdict and abs(a.probability - b.probability) < 0.02, (a.summary_line(), b.summary_line())
