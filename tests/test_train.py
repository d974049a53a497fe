"""Training: augmentation chains, the face-crop dataset, schedules, losses, and short real runs on DFDC face crops
(loss falls, metrics and calibration land in the card, an interrupted run resumes where it stopped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from dfdetect.errors import ConfigError
from dfdetect.train.recipe import load_recipe

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def faces_manifest(dfdc_faces, tmp_path_factory) -> Path:
    """240 DFDC face crops (half real), split by group: REAL by its video, FAKE by its source real."""
    from dfdetect.data.indexes import index_dataset
    from dfdetect.data.manifest import write_manifest
    from dfdetect.data.splits import group_split

    frame = index_dataset(dfdc_faces).manifest
    subset = pd.concat([frame[frame.label == label].sample(120, random_state=0) for label in ("real", "fake")])
    split = group_split(subset, (0.75, 0.25, 0.0), seed=0)
    train_groups = set(split[split.split == "train"].group)
    assert not train_groups & set(split[split.split == "val"].group)
    return write_manifest(split, tmp_path_factory.mktemp("manifest") / "faces.csv")


def tiny(name: str, manifest: Path, *overrides: str):
    return load_recipe(CONFIGS / f"{name}.yaml", [f"data.manifest={manifest}", "data.num_workers=0", *overrides])


# ---------------------------------------------------------------- augmentations


@pytest.mark.parametrize("size", [96, 224])
def test_every_augmentation_chain_returns_valid_images_and_repeats_under_a_seed(astronaut, size):
    from dfdetect.data.augment import augmentation_names, build_augmentation
    from dfdetect.faces.crop import letterbox

    image = letterbox(astronaut[40:300, 100:400], size)  # not square: the chain sees zero padding
    assert {"none", "seed000", "seed002_default", "seed002_coarse_dropout", "seed002_gridmask", "seed003",
            "strong"} <= set(augmentation_names())
    for name in augmentation_names():
        chain = build_augmentation(name, size)
        chain.reseed(3)
        outputs = [chain(image) for _ in range(8)]
        for out in outputs:
            assert out.shape == image.shape and out.dtype == np.uint8
        changed = sum(not np.array_equal(out, image) for out in outputs)
        assert changed == 0 if name == "none" else changed > 0, name
        chain.reseed(3)
        assert all(np.array_equal(a, chain(image)) for a in outputs), f"{name} does not repeat under its seed"


def test_coarse_dropout_blacks_out_two_64px_patches():
    import albumentations as A

    from dfdetect.data.augment import _coarse_dropout

    image = np.full((224, 224, 3), 200, np.uint8)
    chain = A.Compose([_coarse_dropout(224, p=1.0)], seed=0)
    black = (chain(image=image)["image"] == 0).all(axis=2).sum()
    assert 64 * 64 <= black <= 2 * 64 * 64


# ---------------------------------------------------------------- dataset


def test_dataset_letterboxes_normalises_and_labels(tmp_path, astronaut):
    import cv2

    from dfdetect.data.dataset import FaceCropDataset

    wide = astronaut[100:228, :]  # 128 x 512: letterboxed to 64 x 16 content rows
    path = tmp_path / "wide.png"
    cv2.imwrite(str(path), cv2.cvtColor(wide, cv2.COLOR_RGB2BGR))
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    ds = FaceCropDataset([path, path], [0, 1], size=64, mean=mean, std=std)
    image, label, index = ds[1]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert float(label) == 1.0 and index == 1
    assert torch.allclose(image[:, 0, :], torch.full((3, 64), -2.0))  # zero padding, normalised
    assert image[:, 32, :].std() > 0.1


def test_synthetic_fakes_replace_a_share_of_reals_only(tmp_path, astronaut):
    import cv2

    from dfdetect.data.dataset import FaceCropDataset

    path = tmp_path / "face.png"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut[:256, 128:384], cv2.COLOR_RGB2BGR))
    calls = []

    def darken(image, landmarks=None, rng=None):
        calls.append(landmarks)
        return (image // 2).astype(np.uint8), np.ones(image.shape[:2], np.float32)

    labels = [0] * 40 + [1] * 10
    ds = FaceCropDataset([path] * 50, labels, 32, (0, 0, 0), (1, 1, 1), synthesizer=darken, synth_fraction=0.5)
    first = [float(ds[i][1]) for i in range(50)]
    assert first[40:] == [1.0] * 10
    assert 8 <= sum(first[:40]) <= 32 and len(calls) == sum(first[:40])
    assert [float(ds[i][1]) for i in range(50)] == first  # the same epoch repeats
    ds.set_epoch(1)
    assert [float(ds[i][1]) for i in range(50)] != first


def test_self_blended_images_flow_through_the_dataset(dfdc_faces):
    from dfdetect.data.dataset import FaceCropDataset, default_synthesizer

    paths = sorted((dfdc_faces / "faces").glob("*.jpg"))[:4]
    ds = FaceCropDataset(paths, [0] * 4, 96, (0.5,) * 3, (0.5,) * 3,
                         synthesizer=default_synthesizer(crop_margin=0.0), synth_fraction=1.0)
    for i in range(4):
        image, label, _ = ds[i]
        assert float(label) == 1.0 and image.shape == (3, 96, 96) and torch.isfinite(image).all()


def test_balanced_sampler_draws_classes_equally_and_shards_ranks():
    from dfdetect.data.dataset import BalancedSampler

    labels = np.array([0] * 90 + [1] * 10)
    drawn = list(BalancedSampler(labels, num_samples=4000, seed=1))
    assert 0.45 < labels[drawn].mean() < 0.55
    ranks = [list(BalancedSampler(labels, num_samples=400, seed=1, rank=r, world_size=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 200 and ranks[0] != ranks[1]


# ---------------------------------------------------------------- schedules and losses


def test_seed003_warmup_then_cosine_learning_rates():
    from dfdetect.train.optim import build_optimizer, build_scheduler

    r = load_recipe(CONFIGS / "seed003_efficientnet_b0.yaml")
    optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(1))], r.optimizer)
    scheduler = build_scheduler(optimizer, r.scheduler, r.train.epochs, steps_per_epoch=5)
    lrs = []
    for _ in range(r.train.epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(5e-5)  # a tenth of the learning rate
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))  # linear rise ...
    assert lrs[10] == pytest.approx(5e-4)  # ... to the full rate after ten epochs
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] < 0.01 * 5e-4  # cosine down


@pytest.mark.parametrize("name,expected", [
    ("step", lambda t: 0.5 ** (t // 3)),                 # torch's StepLR, by its definition
    ("poly", lambda t: max(0.0, 1 - t / 10) ** 0.9),      # torch's PolynomialLR
    ("none", lambda t: 1.0),
])
def test_torch_schedules_follow_their_definitions(name, expected):
    from dfdetect.train.optim import build_optimizer, build_scheduler
    from dfdetect.train.recipe import OptimizerSection, SchedulerSection

    optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(1))], OptimizerSection(lr=1.0))
    section = SchedulerSection(name=name, step_epochs=3, gamma=0.5, poly_power=0.9)
    scheduler = build_scheduler(optimizer, section, epochs=10, steps_per_epoch=4)
    for t in range(12):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected(t), abs=1e-9), t
        optimizer.step()
        scheduler.step()


def test_losses_agree_on_the_fake_logit():
    from dfdetect.train.losses import BinaryCrossEntropy, CrossEntropy, FocalLoss

    logit = torch.tensor([2.0, -1.0, 0.5])
    labels = torch.tensor([1.0, 0.0, 0.0])
    two_class = torch.stack([torch.zeros(3), logit], dim=1)
    assert torch.allclose(BinaryCrossEntropy()(logit, labels), CrossEntropy()(two_class, labels))
    assert FocalLoss(focal_gamma=0.0)(logit, labels) == pytest.approx(BinaryCrossEntropy()(logit, labels).item())
    # The focal loss (torchvision's) by its definition: (1 - p_true)^gamma x cross-entropy.
    p = torch.sigmoid(logit)
    p_true = p * labels + (1 - p) * (1 - labels)
    by_hand = ((1 - p_true) ** 2 * torch.nn.functional.binary_cross_entropy_with_logits(logit, labels, reduction="none"))
    assert FocalLoss(focal_gamma=2.0)(logit, labels) == pytest.approx(by_hand.mean().item(), rel=1e-6)
    smoothed = BinaryCrossEntropy(label_smoothing=0.2)(torch.tensor([0.0]), torch.tensor([1.0]))
    assert smoothed == pytest.approx(np.log(2.0))  # at p = 0.5 the smoothed target changes nothing


def test_distillation_loss_mixes_soft_and_hard_by_alpha():
    from dfdetect.train.distill import DistillationLoss
    from dfdetect.train.losses import BinaryCrossEntropy

    student = torch.tensor([1.0, -2.0, 0.3])
    teacher = torch.tensor([3.0, -1.0, -0.5])
    labels = torch.tensor([1.0, 0.0, 1.0])
    hard = BinaryCrossEntropy()(student, labels)
    soft = torch.nn.functional.binary_cross_entropy_with_logits(student, torch.sigmoid(teacher))
    for alpha in (0.0, 0.25, 1.0):
        loss = DistillationLoss(BinaryCrossEntropy(), alpha)(student, labels, teacher)
        assert loss == pytest.approx((alpha * soft + (1 - alpha) * hard).item())


def test_teacher_sees_the_batch_in_its_own_normalisation(astronaut):
    from dfdetect.faces.crop import letterbox
    from dfdetect.models.preprocess import to_tensor
    from dfdetect.train.distill import TeacherAdapter

    class Probe(torch.nn.Module):
        def forward(self, x):
            self.seen = x
            return x.mean(dim=(1, 2, 3))

    crop = letterbox(astronaut, 64)
    student = to_tensor([crop], (0.5,) * 3, (0.5,) * 3)
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    probe = Probe()
    TeacherAdapter(probe, 64, *imagenet, (0.5,) * 3, (0.5,) * 3)(student)
    assert torch.allclose(probe.seen, to_tensor([crop], *imagenet), atol=1e-5)


def test_noise_corruption_changes_exactly_the_chosen_share():
    from dfdetect.train.loop import corrupt_with_noise

    x = torch.ones(8, 3, 4, 4)
    out = corrupt_with_noise(x, 0.5, 0.1, 0.9, torch.Generator().manual_seed(0))
    changed = (out != x).flatten(1).any(dim=1)
    assert int(changed.sum()) == 4
    # sqrt(a) * 1 + sqrt(1 - a) * z has mean sqrt(a) in [0.32, 0.95] per image (up to the noise)
    assert out[changed].mean() < 1.0


# ---------------------------------------------------------------- runs on real crops


def _train_loss(model, manifest: Path, size: int) -> float:
    from torch.utils.data import DataLoader

    from dfdetect.data.dataset import FaceCropDataset, split_rows
    from dfdetect.data.manifest import read_manifest
    from dfdetect.train.loop import mean_log_loss, predict_logits

    rows = split_rows(read_manifest(manifest), "train")
    ds = FaceCropDataset.from_manifest(rows, size=size, mean=model.spec.mean, std=model.spec.std)
    logits, labels, _ = predict_logits(model, DataLoader(ds, batch_size=32), torch.device("cpu"))
    return mean_log_loss(logits, labels)


def test_training_lowers_the_loss_and_writes_a_calibrated_card(faces_manifest, tmp_path):
    from dfdetect.models import load_checkpoint
    from dfdetect.train.loop import build_model, read_history, train

    r = tiny("default_lite0", faces_manifest, "model.input_size=96", "train.epochs=3", "data.batch_size=16",
             "data.augment=none", "data.sbi_fraction=0", "optimizer.lr=1e-3", "train.early_stopping.restore_best=false",
             "model.channels_last=false")
    torch.manual_seed(0)
    model = build_model(r)
    before = _train_loss(model, faces_manifest, 96)
    result = train(r, tmp_path / "run", model=model)
    after = _train_loss(model, faces_manifest, 96)
    assert after < before

    history = read_history(tmp_path / "run")
    assert [int(row["epoch"]) for row in history] == [1, 2, 3]
    assert all(float(row["val_loss"]) > 0 for row in history)
    metrics = result.metrics
    assert metrics["n"] == 60 and metrics["auc"] is not None and 0 <= metrics["accuracy"] <= 1
    card = result.card
    assert card.temperature != 1.0 and 0 < card.threshold < 1
    assert card.metrics["auc"] == metrics["auc"] and card.input_size == 96
    assert card.training["recipe"]["name"] == "default_lite0" and "DFDC" in card.license
    run = tmp_path / "run"
    for name in ("config.yaml", "checkpoints/config.yaml", "metrics.json", "report.md", "checkpoints/state.pt"):
        assert (run / name).is_file(), name
    assert yaml.safe_load((run / "checkpoints" / "config.yaml").read_text()) == r.to_dict()
    loaded, _ = load_checkpoint(run / "model")
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model.eval()(x), atol=1e-5)


class Interrupt:
    def __init__(self, after_epoch: int | None):
        self.after_epoch = after_epoch
        self.epochs: list[int] = []

    def __call__(self, trainer, row):
        self.epochs.append(row["epoch"])
        if row["epoch"] == self.after_epoch:
            raise KeyboardInterrupt


def test_an_interrupted_run_resumes_from_its_saved_epoch_and_ends_where_an_unbroken_one_does(faces_manifest, tmp_path):
    from dfdetect.train.loop import read_history, train

    overrides = ("model.pretrained=null", "model.input_size=64", "train.epochs=3", "data.batch_size=8",
                 "data.max_train_samples=24", "data.max_val_samples=16", "data.augment=seed003", "model.drop_rate=0.2")
    r = tiny("seed003_efficientnet_lite0", faces_manifest, *overrides)

    unbroken = train(r, tmp_path / "unbroken")
    first = Interrupt(after_epoch=1)
    with pytest.raises(KeyboardInterrupt):
        train(r, tmp_path / "broken", callbacks=[first])
    assert [int(row["epoch"]) for row in read_history(tmp_path / "broken")] == [1]
    with pytest.raises(ConfigError, match="--resume"):
        train(r, tmp_path / "broken")

    second = Interrupt(after_epoch=None)
    resumed = train(r, tmp_path / "broken", resume=True, callbacks=[second])
    assert second.epochs == [2, 3]
    assert [int(row["epoch"]) for row in read_history(tmp_path / "broken")] == [1, 2, 3]
    for a, b in zip(unbroken.history, read_history(tmp_path / "broken")):
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), rel=1e-4)
    from safetensors.torch import load_file

    w1, w2 = load_file(str(tmp_path / "unbroken" / "model.safetensors")), load_file(str(resumed.model_path))
    assert all(torch.allclose(w1[k].float(), w2[k].float(), atol=1e-5) for k in w1)


def _saved_untrained(arch: str, path):
    """A randomly initialised model saved as a checkpoint (64 px card), to start a later stage from."""
    from dfdetect.models import create_model, save_checkpoint
    from dfdetect.models.checkpoint import ModelCard

    model = create_model(arch)
    spec = model.spec
    save_checkpoint(model, ModelCard(name=arch, arch=spec.name, input_size=64, mean=spec.mean, std=spec.std), path)
    return model


def test_diffusion_stages_freeze_then_train_the_backbone(faces_manifest, tmp_path):
    from dfdetect.train.loop import train

    torch.manual_seed(0)
    finetuned = _saved_untrained("efficientnetv2_b0", tmp_path / "finetuned")
    r = tiny("seed004_diffusion_head", faces_manifest, f"model.init_from={tmp_path / 'finetuned'}",
             "model.input_size=64", "stages.0.epochs=1", "stages.1.epochs=1", "data.batch_size=8",
             "train.max_steps_per_epoch=2", "data.max_val_samples=16", "stages.0.optimizer.lr=1e-2")
    start = {k: v.clone() for k, v in finetuned.backbone.state_dict().items()}
    snapshots = []

    def snapshot(trainer, row):
        snapshots.append(({k: v.clone() for k, v in trainer.model.backbone.state_dict().items()},
                          {k: v.clone() for k, v in trainer.model.head.state_dict().items()}))

    result = train(r, tmp_path / "run", callbacks=[snapshot])
    after_head, after_all = snapshots
    assert all(torch.equal(start[k], after_head[0][k]) for k in start)  # the fine-tuned backbone, untouched
    assert any(not torch.equal(start[k], after_all[0][k]) for k in start if start[k].is_floating_point())
    assert result.card.head == "diffusion" and [row["stage"] for row in result.history] == ["head", "all"]


def test_distillation_run_from_a_teacher_checkpoint(faces_manifest, tmp_path):
    from dfdetect.train.loop import train

    _saved_untrained("mobilenetv3_large", tmp_path / "teacher")
    r = tiny("seed003_distill_lite0", faces_manifest, f"distill.teacher={tmp_path / 'teacher'}",
             "model.pretrained=null", "model.input_size=48", "train.epochs=1", "data.batch_size=8",
             "train.max_steps_per_epoch=2", "data.max_val_samples=16")
    result = train(r, tmp_path / "run")
    assert np.isfinite(float(result.history[0]["train_loss"]))


def test_train_command_prints_the_resolved_recipe(capsys):
    import argparse

    from dfdetect.commands import train as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["seed002_xception", "data.augment=seed002_gridmask", "--print-config"])
    assert command.run(args) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["data"]["augment"] == "seed002_gridmask" and printed["model"]["arch"] == "xception"


def test_time_limit_ends_the_run_after_the_current_epoch_and_still_calibrates(faces_manifest, tmp_path):
    from dfdetect.train.loop import train

    r = tiny("loso_small", faces_manifest, "model.arch=mobilenetv3_large", "model.pretrained=null",
             "model.input_size=48", "train.epochs=5", "data.batch_size=8", "train.max_steps_per_epoch=2",
             "data.max_val_samples=16", "train.time_limit_minutes=0.0001")
    result = train(r, tmp_path / "run")
    assert len(result.history) == 1
    assert result.card.training["stopped_by_time_limit"] is True
    assert result.model_path.exists() and result.metrics is not None


def test_resuming_from_a_state_that_is_a_pickle_is_refused_without_running_it(tmp_path):
    import pickle

    from dfdetect.errors import CheckpointError
    from dfdetect.train.checkpoints import Checkpoints

    (tmp_path / "checkpoints").mkdir()
    marker = tmp_path / "ran"
    # Unpickling this would create the marker file.
    (tmp_path / "checkpoints" / "state.pt").write_bytes(pickle.dumps(_Creates(marker), protocol=2))
    recipe = load_recipe(CONFIGS / "seed003_efficientnet_b0.yaml")

    with pytest.raises(CheckpointError, match="cannot resume from .*state.pt.*refused without running"):
        Checkpoints(tmp_path, recipe).load_state(resume=True)
    assert not marker.exists()


class _Creates:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))
