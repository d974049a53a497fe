"""Every recipe in configs/ validates, says what its paper says, builds its model and takes a training step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dfdetect.errors import ConfigError, DatasetError, WeightsUnavailableError
from dfdetect.train.recipe import apply_overrides, load_recipe, recipe_from_dict

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(p for p in CONFIGS.glob("*.yaml") if not p.name.startswith("_"))
BASES = sorted(CONFIGS.glob("_*.yaml"))
SEED002_BACKBONES = {"efficientnet_b0_ns", "efficientnet_b4_ns", "xception", "inception_v4", "inception_resnet_v2",
                     "resnet50", "densenet161", "mobilenetv3_large"}
SEED002_AUGMENTATIONS = ("none", "seed002_default", "seed002_coarse_dropout", "seed002_gridmask")
# The smallest input each family takes (the Inception stems need more than 64 px).
STEP_SIZE = {"inception_v4": 80, "inception_resnet_v2": 80}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def recipe(name: str, *overrides: str):
    return load_recipe(CONFIGS / f"{name}.yaml", list(overrides))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_validates_and_survives_a_yaml_round_trip(path):
    from dfdetect.models import BACKBONES

    loaded = load_recipe(path)
    assert loaded.name and loaded.model.arch in BACKBONES.names()
    assert recipe_from_dict(yaml.safe_load(loaded.to_yaml())) == loaded


def test_every_base_file_is_used_by_a_recipe():
    used = {yaml.safe_load(p.read_text()).get("base") for p in RECIPES}
    assert {b.name for b in BASES} <= used


def test_seed000_runs_every_efficientnet_at_its_native_size():
    from dfdetect.models import BACKBONES

    r = recipe("seed000_efficientnet_b4")
    assert (r.train.epochs, r.data.augment, r.loss.name, r.model.num_classes) == (20, "seed000", "bce", 1)
    sizes = [BACKBONES.get(recipe("seed000_efficientnet_b4", f"model.arch=efficientnet_b{i}").model.arch).input_size
             for i in range(8)]
    assert sizes == [224, 240, 260, 300, 380, 456, 528, 600]


def test_seed001_is_b4_sgd_bce_batch16_at_224():
    r = recipe("seed001_efficientnet_b4")
    assert r.model.arch == "efficientnet_b4" and r.model.input_size == 224 and r.model.num_classes == 1
    assert (r.optimizer.name, r.optimizer.lr, r.optimizer.momentum) == ("sgd", 0.01, 0.9)
    assert (r.loss.name, r.data.batch_size, r.data.augment) == ("bce", 16, "none")


def test_seed002_covers_eight_backbones_and_four_augmentations():
    files = [p for p in RECIPES if p.name.startswith("seed002_")]
    recipes = [load_recipe(p) for p in files]
    assert {r.model.arch for r in recipes} == SEED002_BACKBONES
    for r in recipes:
        assert (r.model.num_classes, r.loss.name, r.model.drop_rate > 0) == (2, "ce", True)
        assert (r.optimizer.name, r.optimizer.lr, r.scheduler.name) == ("adam", 1e-4, "none")
        assert r.train.epochs <= 10 and r.train.precision == "fp16"
        assert r.faces.margin_px == 30 and r.faces.min_face == 70
    combos = {(r.model.arch, load_recipe(p, [f"data.augment={aug}"]).data.augment)
              for p, r in zip(files, recipes) for aug in SEED002_AUGMENTATIONS}
    assert len(combos) == 32


def test_seed003_recipes_follow_section_5_4():
    archs = set()
    for p in RECIPES:
        if p.stem.startswith("seed003_efficientnet"):
            r = load_recipe(p)
            archs.add(r.model.arch)
            assert (r.optimizer.name, r.optimizer.lr, r.optimizer.weight_decay) == ("sgd", 5e-4, 1e-5)
            assert (r.scheduler.name, r.scheduler.warmup_epochs, r.scheduler.warmup_start_factor) == (
                "warmup_cosine", 10, 0.1)
            stopping = r.train.early_stopping
            assert (r.train.epochs, stopping.patience, stopping.restore_best) == (30, 5, True)
            assert (r.data.batch_size, r.data.augment) == (32, "seed003")
    assert archs == {"efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
                     "efficientnet_lite0", "efficientnet_lite2"}
    ft = recipe("seed003_finetune")
    assert (ft.optimizer.name, ft.optimizer.lr, ft.scheduler.name, ft.train.early_stopping.patience) == (
        "adam", 2e-4, "none", 3)
    kd = recipe("seed003_distill_lite0")
    assert kd.distill is not None and kd.model.arch == "efficientnet_lite0"


def test_seed004_diffusion_recipe_freezes_then_unfreezes_with_half_the_batch_corrupted():
    r = recipe("seed004_diffusion_head")
    assert r.model.head == "diffusion" and r.model.init_parts == "backbone"
    head, full = r.resolved_stages()
    assert head.freeze_backbone and not full.freeze_backbone
    for stage in (head, full):
        assert (stage.corrupt.fraction, stage.corrupt.alpha_min, stage.corrupt.alpha_max) == (0.5, 0.1, 0.9)
    assert recipe("seed004_efficientnetv2_b0").train.early_stopping.patience is not None


def test_default_recipe_is_lite0_imagenet_with_strong_augmentation_sbi_and_calibration():
    r = recipe("default_lite0")
    assert (r.model.arch, r.model.pretrained, r.data.augment) == ("efficientnet_lite0", "imagenet", "strong")
    assert r.loss.label_smoothing > 0 and r.data.sbi_fraction > 0
    assert (r.optimizer.name, r.scheduler.name, r.calibration.fit_temperature) == ("adamw", "warmup_cosine", True)


def test_overrides_reach_nested_fields_and_lists():
    r = recipe("seed004_diffusion_head", "stages.1.epochs=3", "data.batch_size=8", "optimizer.lr=1e-4",
               "model.head_options.num_steps=2")
    assert (r.stages[1].epochs, r.data.batch_size, r.optimizer.lr, r.model.head_options["num_steps"]) == (3, 8, 1e-4, 2)
    data = {"train": {"epochs": 1}}
    assert apply_overrides(data, ["train.epochs=null", "distill.alpha=0.25"]) == {
        "train": {"epochs": None}, "distill": {"alpha": 0.25}}


def test_a_balanced_real_share_leaves_real_and_fake_equal_after_self_blending():
    data = recipe("default_v2", "data.sbi_fraction=0.3", "data.real_share=balanced").data
    assert data.real_share_of_draws() * (1 - data.sbi_fraction) == pytest.approx(0.5)
    assert recipe("default_v2").data.real_share_of_draws() == 0.5
    with pytest.raises(ConfigError, match="leaves no draws for the pool's fakes"):
        recipe("default_v2", "data.real_share=balanced")  # SBI on half of the reals: nothing left for the fakes


@pytest.mark.parametrize("override,message", [
    ("train.epoch=2", "train.epoch: unknown key"),
    ("data.augment=sharpen_everything", "unknown augmentation chain"),
    ("model.arch=efficientnet_b9", "unknown backbone"),
    ("loss.name=ce", "needs model.num_classes: 2"),
    ("data.batch_size=zero", "data.batch_size"),
    ("data.self_blended_only=true", "needs data.sbi_fraction > 0"),
    ("data.real_share=0.67", "real_share needs data.balance_classes and data.source_share_power"),
    ("data.real_share=1.0", "data.real_share"),
    ("no_equals_sign", "section.key=value"),
])
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        recipe("seed003_efficientnet_b0", "data.sbi_fraction=0", override)
    assert "\n" not in str(info.value)


def test_self_blended_only_trains_on_the_real_rows_alone():
    import pandas as pd

    from dfdetect.train.data import training_rows

    frame = pd.DataFrame({"path": [f"{i}.jpg" for i in range(12)], "label": ["real", "fake", "fake"] * 4,
                          "split": ["train"] * 9 + ["val"] * 3})
    assert len(training_rows(frame, recipe("loso_small"))) == 9
    rows = training_rows(frame, recipe("loso_small", "data.self_blended_only=true"))
    assert len(rows) == 3 and set(rows["label"]) == {"real"}
    with pytest.raises(DatasetError, match="no real rows"):
        training_rows(frame.assign(label="fake"), recipe("loso_small", "data.self_blended_only=true"))


def test_staged_recipe_refuses_a_global_epoch_count():
    with pytest.raises(ConfigError, match="stages.N.epochs"):
        recipe("seed004_diffusion_head", "train.epochs=2")


def test_unavailable_pretrained_weights_are_an_error_not_random_init():
    from dfdetect.train.loop import build_model

    with pytest.raises(WeightsUnavailableError):
        build_model(recipe("seed002_resnet50", "model.pretrained=imagenet"))


def _distinct_models():
    """(recipe file, overrides) for every distinct backbone/head the recipes build, B0..B7 included."""
    seen, cases = set(), []
    candidates = [(p.stem, ()) for p in RECIPES]
    candidates += [("seed000_efficientnet_b4", (f"model.arch=efficientnet_b{i}",)) for i in range(8)]
    for name, extra in candidates:
        r = recipe(name, *extra)
        from dfdetect.models import BACKBONES

        key = (BACKBONES.get(r.model.arch).timm_arch, r.model.head, r.model.num_classes)
        if key not in seen:
            seen.add(key)
            cases.append(pytest.param(name, extra, id="-".join(map(str, key))))
    return cases


@pytest.mark.parametrize("name,extra", _distinct_models())
def test_one_training_step_per_distinct_backbone(name, extra, astronaut):
    from dfdetect.faces.crop import letterbox
    from dfdetect.models.preprocess import to_tensor
    from dfdetect.train.loop import build_model
    from dfdetect.train.losses import build_loss
    from dfdetect.train.optim import build_optimizer

    r = recipe(name, *extra, "model.pretrained=null", "model.init_from=null", "distill=null")
    torch.manual_seed(0)
    model = build_model(r).train()
    size = STEP_SIZE.get(r.model.arch, 64)
    crops = [letterbox(astronaut, size), letterbox(np.ascontiguousarray(astronaut[:, ::-1]), size)]
    images = to_tensor(crops, model.spec.mean, model.spec.std)
    labels = torch.tensor([0.0, 1.0])
    optimizer = build_optimizer(model.parameters(), r.optimizer)
    head_before = [p.detach().clone() for p in model.head.parameters()]
    loss = build_loss(r.loss)(model(images), labels)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(head_before, model.head.parameters()))
    assert model.fake_logit(images).shape == (2,)
