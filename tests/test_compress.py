"""Compression: Lite conversion, Taylor pruning, ONNX export and int8, the ONNX Runtime backend."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dfdetect.errors import CheckpointError, ConfigError


@pytest.fixture(scope="module")
def crop_manifest(dfdc_faces, tmp_path_factory) -> Path:
    """A small manifest of real DFDC face crops, real and fake in every split."""
    with open(dfdc_faces / "metadata.csv") as f:
        rows = list(csv.DictReader(f))
    real = [r for r in rows if r["label"] == "REAL"][:48]
    fake = [r for r in rows if r["label"] == "FAKE"][:48]
    path = tmp_path_factory.mktemp("crops") / "crops.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "split"])
        for i, r in enumerate(real + fake):
            split = ("train", "val", "test")[i % 3]
            writer.writerow([str(dfdc_faces / "faces" / r["videoname"].replace(".mp4", ".jpg")), r["label"], split])
    return path


@pytest.fixture(scope="module")
def default_onnx(tmp_path_factory) -> Path:
    from dfdetect.compress.export import export_onnx
    from dfdetect.models import load_checkpoint

    model, card = load_checkpoint("default")
    path = tmp_path_factory.mktemp("onnx") / "default.onnx"
    export_onnx(model, card, path)
    return path


def _crops(manifest: Path, split: str, n: int):
    from dfdetect.compress.data import crop_images, crop_rows
    from dfdetect.models import load_card

    return crop_images(crop_rows(manifest, split, n), load_card("default"))


# ------------------------------------------------------------------------------------------ Lite


def test_lite_conversion_leaves_no_se_or_silu_and_keeps_the_weights():
    from dfdetect.compress.lite import lite_violations, to_lite
    from dfdetect.models import create_model, load_card

    b0 = create_model("efficientnet_b0").eval()
    card = load_card("default").model_copy(update={"arch": "efficientnet_b0", "mean": (0.485, 0.456, 0.406)})
    assert lite_violations(b0), "B0 has SE blocks and SiLU"
    lite, lite_card = to_lite(b0, card, "source")
    assert lite_violations(lite) == []
    assert not any(isinstance(m, torch.nn.SiLU) for m in lite.modules())
    assert lite_card.arch == "efficientnet_lite0" and lite_card.mean == card.mean  # trained normalisation kept
    key = "backbone.blocks.3.1.conv_pw.weight"
    assert torch.equal(lite.state_dict()[key], b0.state_dict()[key])
    assert lite.eval()(torch.zeros(2, 3, 224, 224)).shape == (2,)
    _, from_imagenet = to_lite(b0, card, "imagenet")
    assert from_imagenet.mean == (0.5, 0.5, 0.5)  # the Lite ImageNet weights' normalisation


def test_lite_refuses_models_without_a_lite_form():
    from dfdetect.compress.lite import to_lite
    from dfdetect.models import load_checkpoint

    model, card = load_checkpoint("default")
    with pytest.raises(ConfigError, match="Lite already"):
        to_lite(model, card)
    with pytest.raises(ConfigError, match="no Lite form"):
        to_lite(model, card.model_copy(update={"arch": "resnet50"}))


# ------------------------------------------------------------------------------------------ pruning


@pytest.mark.slow
def test_pruning_shrinks_the_model_and_the_checkpoint_loads(crop_manifest, tmp_path):
    from dfdetect.compress.data import crop_rows, labelled_batches
    from dfdetect.compress.prune import count_macs_params, prune
    from dfdetect.models import load_checkpoint, save_checkpoint

    model, card = load_checkpoint("default")
    macs, params = count_macs_params(model, 224)
    rows = crop_rows(crop_manifest, "train", 16)
    records = prune(model, 224, lambda: labelled_batches(rows, card, 8), ratio=0.3, steps=2)
    assert [r["step"] for r in records] == [1, 2]
    assert records[1]["macs"] < records[0]["macs"] < macs * 0.95
    assert records[1]["params"] < params * 0.8
    x = torch.randn(3, 3, 224, 224)
    out = model.eval()(x)
    assert torch.isfinite(out).all()
    save_checkpoint(model, card, tmp_path / "pruned")
    loaded, loaded_card = load_checkpoint(tmp_path / "pruned")
    assert loaded_card.shapes and loaded_card.params == records[1]["params"]
    assert torch.allclose(loaded(x), out, atol=1e-5)


def test_hidden_pruning_keeps_the_stream_between_blocks(crop_manifest):
    """channels=hidden thins the blocks' expanded channels only: stem, block outputs and head keep their widths."""
    from dfdetect.compress.data import crop_rows, labelled_batches
    from dfdetect.compress.prune import count_macs_params, prune, stream_layers
    from dfdetect.models import load_checkpoint

    model, card = load_checkpoint("default")
    widths = [conv.out_channels for conv in stream_layers(model)]
    expanded = [b.conv_pw.out_channels for stage in model.backbone.blocks for b in stage if hasattr(b, "conv_pwl")]
    macs, _ = count_macs_params(model, 224)
    rows = crop_rows(crop_manifest, "train", 8)
    prune(model, 224, lambda: labelled_batches(rows, card, 8), ratio=0.35, scope="local",
          channels="hidden")
    assert [conv.out_channels for conv in stream_layers(model)] == widths
    thinned = [b.conv_pw.out_channels for stage in model.backbone.blocks for b in stage if hasattr(b, "conv_pwl")]
    assert all(after < before for after, before in zip(thinned, expanded))
    assert count_macs_params(model, 224)[0] < 0.75 * macs
    assert torch.isfinite(model.eval()(torch.randn(2, 3, 224, 224))).all()


def test_hidden_pruning_needs_an_efficientnet():
    from dfdetect.compress.prune import prune

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3))
    model.head = model[0]
    with pytest.raises(ConfigError, match="EfficientNet-family"):
        prune(model, 32, lambda: [], ratio=0.3, channels="hidden")
    with pytest.raises(ConfigError, match="channels must be"):
        prune(model, 32, lambda: [], ratio=0.3, channels="inner")


def test_a_fine_tune_longer_than_the_training_split_makes_several_passes(crop_manifest):
    from dfdetect.compress.distill import FineTune, passes

    # 32 training crops in batches of 8: 4 batches a pass
    assert passes(FineTune(manifest=str(crop_manifest), steps=3, batch_size=8)) == (1, 3)
    assert passes(FineTune(manifest=str(crop_manifest), steps=4, batch_size=8)) == (1, 4)
    assert passes(FineTune(manifest=str(crop_manifest), steps=10, batch_size=8)) == (3, 4)


def test_a_fine_tune_can_train_as_the_models_recipe_does(crop_manifest, tmp_path):
    from dfdetect.compress.distill import FineTune, _recipe
    from dfdetect.compress.steps import Context, run_pipeline
    from dfdetect.models import load_card

    card = load_card("default")
    plain = _recipe(card, FineTune(manifest=str(crop_manifest), steps=4, batch_size=8))
    as_v2 = _recipe(card, FineTune(manifest=str(crop_manifest), steps=4, batch_size=8, recipe="default_v2"))
    assert plain["data"]["augment"] == "seed003" and "sbi_fraction" not in plain["data"]
    # default_v2's drawing, augmentations, self-blended images and per-group calibration...
    assert as_v2["data"]["augment"] == "multisource" and as_v2["data"]["sbi_fraction"] == 0.5
    assert as_v2["data"]["source_share_power"] == 0.5 and as_v2["calibration"]["max_real_fpr"] == 0.06
    # ...with the fine-tune's own data, size and length
    assert as_v2["data"]["manifest"] == str(crop_manifest) and as_v2["data"]["batch_size"] == 8
    assert as_v2["data"]["max_train_samples"] == plain["data"]["max_train_samples"]
    assert as_v2["model"] == plain["model"] and as_v2["train"] == plain["train"]
    # A recipe that does not exist is refused before any step runs.
    with pytest.raises(ConfigError, match="no_such_recipe"):
        run_pipeline("default", ["export", "distill:recipe=no_such_recipe"],
                     Context(out=tmp_path, manifest=str(crop_manifest)))
    assert not list(tmp_path.iterdir())


def test_a_card_with_impossible_shapes_is_refused(tmp_path):
    from dfdetect.models import create_model, load_card, load_checkpoint, save_checkpoint

    save_checkpoint(create_model("efficientnet_lite0"), load_card("default"), tmp_path / "m")
    card_path = tmp_path / "m.json"
    card = json.loads(card_path.read_text())
    card.update(weights_sha256="", params=0, shapes={"backbone.no_such_layer": [8, 8, 1]})
    card_path.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="no_such_layer"):
        load_checkpoint(tmp_path / "m")


def test_prune_options_are_checked():
    from dfdetect.compress.steps import parse_step

    assert parse_step("prune:ratio=0.35,steps=5,scope=local") == ("prune", {"ratio": 0.35, "steps": 5,
                                                                            "scope": "local"})
    with pytest.raises(ConfigError, match="unknown option"):
        parse_step("prune:fraction=0.3")
    with pytest.raises(ConfigError, match="not a float"):
        parse_step("prune:ratio=lots")
    with pytest.raises(ConfigError, match="unknown compression step"):
        parse_step("shrink")


# ------------------------------------------------------------------------------------------ ONNX


def test_onnx_agrees_with_pytorch_on_real_crops(default_onnx, crop_manifest):
    from dfdetect.compress.export import agreement
    from dfdetect.models import load_checkpoint
    from dfdetect.models.predict import OnnxBackend, TorchBackend, load_backend

    model, card = load_checkpoint("default")
    backend, onnx_card = load_backend(default_onnx)
    assert isinstance(backend, OnnxBackend)
    assert onnx_card.temperature == card.temperature and onnx_card.crop == card.crop
    result = agreement(TorchBackend(model), backend, card, _crops(crop_manifest, "test", 24))
    assert result["max_abs_prob_diff"] < 1e-4 and result["verdicts_changed"] == 0


@pytest.mark.slow
def test_int8_and_fp16_agree_with_float_within_tolerance(default_onnx, crop_manifest, tmp_path):
    from dfdetect.compress.export import agreement
    from dfdetect.compress.quantize import quantize
    from dfdetect.models.predict import load_backend

    reference, card = load_backend(default_onnx)
    test_crops = _crops(crop_manifest, "test", 32)
    _, done = quantize(default_onnx, tmp_path / "int8.onnx", card, "static", _crops(crop_manifest, "val", 32))
    assert done["mode"] == "static" and done["format"] == "qoperator" and "fallback" not in done
    with pytest.raises(ConfigError, match="format"):
        quantize(default_onnx, tmp_path / "other.onnx", card, "static", [], format="qlinear")
    int8, int8_card = load_backend(tmp_path / "int8.onnx")
    assert int8_card.weights_dtype == "int8"
    assert (tmp_path / "int8.onnx").stat().st_size < default_onnx.stat().st_size / 3
    result = agreement(reference, int8, card, test_crops)
    # Stated tolerance for int8: the crops keep their order and single probabilities move by a few hundredths
    # on average (with 128 calibration crops: correlation 0.997, mean shift 0.018, benchmarks/results/
    # lightweight_cpu.md); 32 calibration crops here, so the bounds are looser.
    assert result["logit_correlation"] > 0.9 and result["mean_abs_prob_diff"] < 0.12, result
    quantize(default_onnx, tmp_path / "fp16.onnx", card, "fp16")
    result = agreement(reference, load_backend(tmp_path / "fp16.onnx")[0], card, test_crops)
    assert result["max_abs_prob_diff"] < 0.02, result


@pytest.mark.slow
def test_scanning_with_the_onnx_model_gives_the_same_verdicts(default_onnx, dfdc_videos):
    from dfdetect import Detector

    clip = dfdc_videos[0]
    torch_result = Detector.load("default", device="cpu", sampling="8").scan(clip)
    onnx_result = Detector.load(default_onnx, device="cpu", sampling="8").scan(clip)
    assert torch_result.verdict == onnx_result.verdict
    assert [t.verdict for t in torch_result.tracks] == [t.verdict for t in onnx_result.tracks]
    assert abs(torch_result.probability - onnx_result.probability) < 1e-4


def test_evaluate_runs_an_onnx_model_like_its_checkpoint(default_onnx, crop_manifest):
    from dfdetect.commands.evaluate import predict_logits
    from dfdetect.compress.data import crop_rows
    from dfdetect.models import load_checkpoint
    from dfdetect.models.predict import load_backend

    paths = crop_rows(crop_manifest, "test", 12)["path"].tolist()
    model, card = load_checkpoint("default")
    backend, _ = load_backend(default_onnx)
    a = predict_logits(model, card, paths, batch_size=5, workers=1, progress=False)
    b = predict_logits(backend, card, paths, batch_size=5, workers=1, progress=False)
    np.testing.assert_allclose(a, b, atol=1e-3)


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "no_card", "wrong_size", "missing"])
def test_a_bad_onnx_file_is_refused_with_one_line(default_onnx, tmp_path, damage, capsys):
    from dfdetect.cli import main
    from dfdetect.compress.export import write_card
    from dfdetect.models import load_card
    from dfdetect.models.predict import load_backend

    bad = tmp_path / "bad.onnx"
    data = default_onnx.read_bytes()
    if damage == "corrupt":
        bad.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    elif damage == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "no_card":
        import onnx

        proto = onnx.load(str(default_onnx))
        del proto.metadata_props[:]
        onnx.save(proto, str(bad))
    elif damage == "wrong_size":
        bad.write_bytes(data)
        write_card(bad, load_card("default").model_copy(update={"input_size": 240}))
    with pytest.raises(CheckpointError) as info:
        load_backend(bad)
    assert "\n" not in str(info.value) and "bad.onnx" in str(info.value)
    assert main(["evaluate", str(bad), str(tmp_path / "none.csv")]) == 2 or damage == "missing"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


# ------------------------------------------------------------------------------------------ commands


@pytest.mark.slow
def test_compress_command_exports_and_quantises_with_a_card_per_step(crop_manifest, tmp_path, capsys):
    from dfdetect.cli import main
    from dfdetect.models.predict import load_backend

    out = tmp_path / "out"
    args = ["compress", "default", "export:check=16", "quantize:mode=dynamic,check=16", "--out", str(out),
            "--manifest", str(crop_manifest), "--device", "cpu"]
    assert main(args) == 0
    _, card = load_backend(out / "02-quantize.onnx")
    assert [s["step"] for s in card.compression] == ["export", "quantize"]
    assert card.compression[0]["max_abs_prob_diff"] < 1e-3 and card.weights_dtype == "int8"
    assert card.compression[0]["macs"] > 0
    capsys.readouterr()
    assert main(args) == 2  # a result never replaces a file
    assert "already exists" in capsys.readouterr().err
    from dfdetect.models import resolve

    assert main(["bench-model", f"int8={out / '02-quantize.onnx'}", "default", f"eager={resolve('default')[0]}",
                 "--runs", "1", "--warmup", "0", "--batch", "2", "--threads", "1", "--out", str(tmp_path / "t.md")]) == 0
    table = (tmp_path / "t.md").read_text()
    assert "| int8 | onnxruntime | int8 |" in table and "| eager | pytorch | float32 |" in table
    assert "| default | onnxruntime | float16 | 3.37 | 6.98 | 373 |" in table  # the ONNX twin, its size, MACs counted


def test_static_int8_falls_back_to_dynamic_and_says_so(default_onnx, tmp_path, monkeypatch, capsys):
    from dfdetect.compress import quantize as quantize_module
    from dfdetect.models.predict import load_backend

    def broken(*args, **kwargs):
        raise RuntimeError("calibration blew up")

    monkeypatch.setattr(quantize_module, "_static_int8", broken)
    _, card = load_backend(default_onnx)
    crops = [np.zeros((224, 224, 3), np.uint8)]
    int8_card, done = quantize_module.quantize(default_onnx, tmp_path / "q.onnx", card, "static", crops)
    assert done["mode"] == "dynamic" and "calibration blew up" in done["fallback"]
    assert "falling back to dynamic" in capsys.readouterr().err
    assert load_backend(tmp_path / "q.onnx")[1].weights_dtype == "int8"


def test_fp16_weights_halve_the_file_and_keep_the_checkpoints_scores(crop_manifest, tmp_path):
    """Weights stored in half precision, run in float32: exported without batch-norm folding, a checkpoint
    whose weights are already half precision (the bundled one) gives exactly its scores from half the file."""
    from dfdetect.compress.export import agreement, export_onnx
    from dfdetect.compress.quantize import quantize
    from dfdetect.models import load_checkpoint
    from dfdetect.models.predict import TorchBackend, load_backend

    model, card = load_checkpoint("default")
    unfolded = tmp_path / "unfolded.onnx"
    exported = export_onnx(model, card, unfolded, fold=False)
    stored, _ = quantize(unfolded, tmp_path / "half.onnx", exported, "fp16-weights")
    assert stored.weights_dtype == "float16" and stored.exported_from_sha256 == card.weights_sha256
    assert (tmp_path / "half.onnx").stat().st_size < unfolded.stat().st_size * 0.55
    result = agreement(TorchBackend(model, "cpu"), load_backend(tmp_path / "half.onnx")[0], card,
                       _crops(crop_manifest, "test", 16))
    assert result["max_abs_prob_diff"] < 1e-5, result
