"""The training loop: stages of epochs over a face-crop manifest, checkpoints, resume, calibration.

    result = train(load_recipe("configs/seed003_efficientnet_b0.yaml"), "runs/b0")

A run folder holds:
    config.yaml                 the resolved recipe
    history.csv                 one row per epoch (losses, validation AUC/accuracy, learning rate, speed)
    checkpoints/last.*          weights + card after the latest epoch; checkpoints/best.* the best so far
    checkpoints/state.pt        optimiser, scheduler, scaler, epoch and RNG state for --resume
    checkpoints/config.yaml     the resolved recipe again, beside the checkpoints
    model.safetensors/.json     the final model (best state restored, temperature and threshold fitted)
    metrics.json, report.md     validation metrics of the final model
    tensorboard/                when the tensorboard package is installed

Multi-GPU: launch with `torchrun --nproc_per_node=N -m dfdetect.cli train CONFIG`; with WORLD_SIZE > 1
every process trains on its shard (DistributedSampler, or the balanced sampler sharded by rank) inside
torch's DistributedDataParallel; data.batch_size is per process. Rank 0 writes all files.
"""

from __future__ import annotations

import csv
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from ..errors import ConfigError, DatasetError, DfdetectError, WeightsUnavailableError
from .losses import build_loss, fake_logit
from .optim import build_optimizer, build_scheduler, steps_per_scheduler_call
from .recipe import EarlyStoppingSection, Recipe, StageSection, recipe_from_dict

HISTORY_FILE = "history.csv"
HISTORY_COLUMNS = [
    "epoch", "stage", "stage_epoch", "lr", "train_loss", "val_loss", "val_auc", "val_accuracy",
    "seconds", "images_per_s",
]
STATE_FORMAT = 1
REPORT_EVERY = 10  # steps between progress-bar updates (and checks that the loss is finite)

EpochCallback = Callable[["Trainer", dict], None]


class TrainingDivergedError(DfdetectError):
    """The loss or the validation outputs stopped being finite numbers."""


@dataclass
class TrainResult:
    run_dir: Path
    model_path: Path | None
    card: object | None
    history: list[dict]
    metrics: dict | None
    stopped_early: list[str] = field(default_factory=list)


def train(recipe: Recipe, run_dir: str | Path, *, resume: bool = False, device: str | None = None,
          model: nn.Module | None = None, callbacks: Sequence[EpochCallback] = ()) -> TrainResult:
    """Run a recipe into `run_dir` (see the module docstring). `model` replaces the recipe's model
    construction (tests, notebooks); `callbacks` run after every epoch with the history row."""
    return Trainer(recipe, run_dir, resume=resume, device=device, model=model, callbacks=callbacks).fit()


# ---------------------------------------------------------------------------------------------
# Devices, precision, distributed


@dataclass
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_request: str | None) -> tuple[DistContext, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(), _pick_device(device_request)
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (device_request in (None, "auto") or device_request.startswith("cuda"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext(dist.get_rank(), local_rank, dist.get_world_size()), device


def _pick_device(request: str | None) -> torch.device:
    if request in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(request)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {request} asked for, but CUDA is not available here; use --device cpu")
    return device


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """None: full fp32. auto: bf16 on GPUs that have it, else fp16; fp32 on CPU.

    fp16 asked for on a CPU runs in fp32: CPUs gain nothing from it, so the papers' half-precision
    recipes stay runnable there unchanged."""
    if precision == "fp32" or (precision == "fp16" and device.type != "cuda"):
        return None
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float16 if precision == "fp16" else torch.bfloat16


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, str(dtype))


# ---------------------------------------------------------------------------------------------
# RNG state as plain tensors (state.pt is read back with weights_only=True)


def _rng_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# Model construction


def build_model(recipe: Recipe) -> nn.Module:
    """The recipe's model: fresh from `create_model`, or started from a trained checkpoint (`init_from`)."""
    from ..models import create_model, load_checkpoint

    m = recipe.model
    pretrained = None if m.init_from else m.pretrained
    try:
        model = create_model(m.arch, pretrained=pretrained, head=m.head, num_classes=m.num_classes,
                             drop_rate=m.drop_rate, head_options=m.head_options)
    except OSError as exc:
        if pretrained != "hub":
            raise
        # Hub download failures (offline, no cache) surface as OSError subclasses.
        raise WeightsUnavailableError(
            f"cannot fetch ImageNet weights for {m.arch} from the hub ({type(exc).__name__}); connect once to "
            "cache them, set model.pretrained=PATH to a weights file, or model.pretrained=null to train from scratch"
        ) from None
    if m.init_from is None:
        return model
    source, card = load_checkpoint(m.init_from)
    if card.arch != m.arch:
        raise ConfigError(f"model.init_from {m.init_from} is a {card.arch}, the recipe builds a {m.arch}")
    if m.init_parts == "backbone":
        model.backbone.load_state_dict(source.backbone.state_dict(), strict=True)
    else:
        if (card.head, card.num_classes) != (m.head, m.num_classes):
            raise ConfigError(
                f"model.init_from {m.init_from} has head {card.head}/{card.num_classes} outputs; the recipe wants "
                f"{m.head}/{m.num_classes} (set model.init_parts: backbone to take only the backbone)"
            )
        model.load_state_dict(source.state_dict(), strict=True)
    return model


def _build_teacher(recipe: Recipe, spec, device: torch.device):
    from ..models import load_checkpoint
    from .distill import TeacherAdapter

    teacher, card = load_checkpoint(recipe.distill.teacher)
    return TeacherAdapter(teacher, card.input_size, card.mean, card.std, spec.mean, spec.std).to(device)


def set_backbone_frozen(model: nn.Module, frozen: bool) -> None:
    for p in model.backbone.parameters():
        p.requires_grad_(not frozen)


def corrupt_with_noise(x: torch.Tensor, fraction: float, alpha_min: float, alpha_max: float,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Seed 004: floor(N * fraction) images of the batch become sqrt(a) x + sqrt(1 - a) z,
    a ~ U(alpha_min, alpha_max) per image, z ~ N(0, 1) (on the normalised input)."""
    n = int(math.floor(x.shape[0] * fraction))
    if n == 0:
        return x
    device = x.device
    pick = torch.randperm(x.shape[0], generator=generator)[:n].to(device)
    # Drawn on the CPU from the epoch's generator so that a resumed run corrupts the same images.
    alpha = (alpha_min + (alpha_max - alpha_min) * torch.rand(n, generator=generator)).to(device, x.dtype)
    alpha = alpha.view(-1, 1, 1, 1)
    noise = torch.randn(x[pick].shape, generator=generator).to(device, x.dtype)
    out = x.clone()
    out[pick] = alpha.sqrt() * x[pick] + (1 - alpha).sqrt() * noise
    return out


# ---------------------------------------------------------------------------------------------
# Prediction helpers (also used by tests and benchmarks)


@torch.no_grad()
def predict_logits(model: nn.Module, loader, device: torch.device, autocast_dtype=None,
                   channels_last: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fake logits, labels, dataset indices) over a loader, model in eval mode."""
    model.eval()
    logits, labels, indices = [], [], []
    for images, targets, index in loader:
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.to(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            out = model(images)
        logits.append(fake_logit(out).float().cpu())
        labels.append(targets.float())
        indices.append(torch.as_tensor(index))
    if not logits:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    return torch.cat(logits).numpy(), torch.cat(labels).numpy(), torch.cat(indices).numpy().astype(np.int64)


def mean_log_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


# ---------------------------------------------------------------------------------------------
# The trainer


class Trainer:
    def __init__(self, recipe: Recipe, run_dir: str | Path, *, resume: bool = False, device: str | None = None,
                 model: nn.Module | None = None, callbacks: Sequence[EpochCallback] = ()):
        self.recipe = recipe
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.resume = resume
        self.callbacks = list(callbacks)
        self.dist, self.device = _init_distributed(device)
        self.autocast_dtype = _autocast_dtype(recipe.train.precision, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest kernels
        self._given_model = model
        self.history: list[dict] = []
        self.stopped_early: list[str] = []
        self.best_epochs: dict[str, int | None] = {}
        self._tb = None

    # ----- setup

    def _log(self, message: str) -> None:
        if self.dist.is_main:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)

    def _check_run_dir(self) -> dict | None:
        state_path = self.ckpt_dir / "state.pt"
        if self.resume:
            if not state_path.is_file():
                raise ConfigError(f"nothing to resume in {self.run_dir} (no checkpoints/state.pt); drop --resume")
            saved = self.run_dir / "config.yaml"
            if saved.is_file():
                import yaml

                before = recipe_from_dict(yaml.safe_load(saved.read_text()), str(saved))
                if before.model != self.recipe.model:
                    raise ConfigError(
                        f"{self.run_dir} was trained with another model section; resume with its config.yaml"
                    )
            return torch.load(state_path, map_location="cpu", weights_only=True)
        if state_path.exists() or (self.run_dir / "model.safetensors").exists():
            raise ConfigError(
                f"{self.run_dir} already holds a run; pass --resume to continue it or choose another --out"
            )
        return None

    def _setup(self, state: dict | None) -> None:
        r = self.recipe
        seed_everything(r.train.seed + self.dist.rank)
        model = self._given_model if self._given_model is not None else build_model(r)
        self.spec = model.spec
        self.input_size = r.model.input_size or self.spec.input_size
        if state is not None:
            self._load_weights(model, self.ckpt_dir / "last")
        model.to(self.device)
        if r.model.channels_last:
            model.to(memory_format=torch.channels_last)
        if self.dist.enabled and r.train.sync_batchnorm and self.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model
        self.criterion = build_loss(r.loss)
        self.teacher = _build_teacher(r, self.spec, self.device) if r.distill else None
        if self.teacher is not None:
            from .distill import DistillationLoss

            self.distill_loss = DistillationLoss(self.criterion, r.distill.alpha, r.distill.temperature)
        self._build_data()

    def _load_weights(self, model: nn.Module, stem: Path) -> None:
        model.load_state_dict(self._state_from_file(stem), strict=True)

    def _build_data(self) -> None:
        from ..data.augment import build_augmentation
        from ..data.dataset import BalancedSampler, FaceCropDataset, default_synthesizer, split_rows, worker_init
        from ..data.manifest import read_manifest

        r, d = self.recipe, self.recipe.data
        if d.manifest is None:
            raise ConfigError("data.manifest is not set; pass data.manifest=PATH (a CSV/Parquet of face crops)")
        frame = read_manifest(d.manifest)
        self.manifest = frame
        train_rows = split_rows(frame, d.train_split, d.max_train_samples, r.train.seed)
        synthesizer = default_synthesizer(r.faces.margin) if d.sbi_fraction > 0 else None
        common = dict(size=self.input_size, mean=self.spec.mean, std=self.spec.std)
        self.train_set = FaceCropDataset.from_manifest(
            train_rows, augment=build_augmentation(d.augment, self.input_size), synthesizer=synthesizer,
            synth_fraction=d.sbi_fraction, seed=r.train.seed, **common,
        )
        self.val_rows = None
        self.val_set = None
        if d.val_split:
            try:
                self.val_rows = split_rows(frame, d.val_split, d.max_val_samples, r.train.seed)
            except DatasetError:
                self.val_rows = None
            if self.val_rows is not None and len(self.val_rows):
                self.val_set = FaceCropDataset.from_manifest(self.val_rows, **common)
        if self.val_set is None:
            reason = f"no '{d.val_split}' rows" if d.val_split else "no validation split asked for (data.val_split)"
            self._log(f"{reason}: no validation, early stopping or calibration in this run")

        if d.balance_classes:
            weights = None
            if d.source_share_power is not None:
                from ..data.pool import source_weights

                weights = source_weights(train_rows, d.source_share_power)
            self.train_sampler = BalancedSampler(self.train_set.labels, seed=r.train.seed, weights=weights,
                                                 rank=self.dist.rank, world_size=self.dist.world_size)
        elif self.dist.enabled:
            self.train_sampler = DistributedSampler(self.train_set, shuffle=True, seed=r.train.seed)
        else:
            self.train_sampler = None
        loader_options = dict(num_workers=d.num_workers, pin_memory=self.device.type == "cuda",
                              worker_init_fn=worker_init)
        # Reseeded every epoch from (seed, epoch): a resumed run sees the same order as an uninterrupted one.
        self.shuffle_generator = torch.Generator().manual_seed(r.train.seed)
        self.train_loader = DataLoader(
            self.train_set, batch_size=d.batch_size, shuffle=self.train_sampler is None, sampler=self.train_sampler,
            drop_last=len(self.train_set) > d.batch_size * self.dist.world_size, generator=self.shuffle_generator,
            **loader_options,
        )
        self.val_loader = None
        if self.val_set is not None:
            val_sampler = DistributedSampler(self.val_set, shuffle=False) if self.dist.enabled else None
            self.val_loader = DataLoader(self.val_set, batch_size=d.val_batch_size or d.batch_size, shuffle=False,
                                         sampler=val_sampler, **loader_options)

    # ----- the run

    def fit(self) -> TrainResult:
        state = self._check_run_dir()
        self._setup(state)
        if self.dist.is_main:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            for folder in (self.run_dir, self.ckpt_dir):
                (folder / "config.yaml").write_text(self.recipe.to_yaml())
        self._open_history(state)
        stages = self.recipe.resolved_stages()
        start_stage = state["stage_index"] if state else 0
        global_epoch = state["global_epoch"] if state else 0
        if state is not None:
            _set_rng_state(state["rng"])
            self._log(f"resuming {self.run_dir} after epoch {global_epoch}")
            if start_stage >= len(stages):
                self._log("every stage of this run had finished: only the final calibration and report are "
                          "redone (to train further, start a new run with model.init_from=RUN_DIR/model)")
        try:
            for index in range(start_stage, len(stages)):
                stage_state = state if (state is not None and index == start_stage) else None
                global_epoch = self._run_stage(index, stages[index], global_epoch, stage_state)
        except KeyboardInterrupt:
            self._log(f"interrupted; continue with: dfdetect train ... --out {self.run_dir} --resume")
            raise
        finally:
            if self._tb is not None:
                self._tb.close()
        return self._finish()

    def _stage_early_stopping(self, stage: StageSection) -> EarlyStoppingSection:
        return stage.early_stopping or self.recipe.train.early_stopping

    def _run_stage(self, index: int, stage: StageSection, global_epoch: int, state: dict | None) -> int:
        r = self.recipe
        model = self.model
        set_backbone_frozen(model, stage.freeze_backbone)
        wrapped = model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            wrapped = DistributedDataParallel(model, device_ids=ids)
        opt_section = stage.optimizer or r.optimizer
        sched_section = stage.scheduler or r.scheduler
        batches = len(self.train_loader)
        if r.train.max_steps_per_epoch:
            batches = min(batches, r.train.max_steps_per_epoch)
        steps_per_epoch = math.ceil(batches / r.train.grad_accum_steps)
        optimizer = build_optimizer(model.parameters(), opt_section)
        scheduler = build_scheduler(optimizer, sched_section, stage.epochs, steps_per_epoch)
        use_scaler = self.autocast_dtype == torch.float16
        scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        stopping = self._stage_early_stopping(stage)
        best = {"value": None, "epoch": -1, "since": 0}
        stage_epoch = 0
        if state is not None and "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            best = dict(state["best"])
            stage_epoch = state["stage_epoch"]
        self.best_state = None
        if best["value"] is not None and (self.ckpt_dir / "best.safetensors").is_file():
            self.best_state = self._state_from_file(self.ckpt_dir / "best")
        self._log(f"stage {stage.name}: {stage.epochs} epochs, {len(self.train_set)} training crops, "
                  f"{'backbone frozen, ' if stage.freeze_backbone else ''}device {self.device}, "
                  f"precision {precision_name(self.autocast_dtype)}")

        stopped = False
        while stage_epoch < stage.epochs and not stopped:
            epoch_start = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            self._set_epoch(global_epoch)
            train_loss, seen = self._train_epoch(wrapped, stage, optimizer, scheduler, scaler, sched_section, batches,
                                                 global_epoch)
            train_seconds = time.perf_counter() - epoch_start
            val = self._validate()
            stage_epoch += 1
            global_epoch += 1
            if steps_per_scheduler_call(sched_section) == "epoch":
                scheduler.step()
            elif steps_per_scheduler_call(sched_section) == "metric" and val is not None:
                scheduler.step(val["loss"])
            improved = self._track_best(best, val, stopping, global_epoch)
            stopped = stopping.patience is not None and best["since"] >= stopping.patience
            seconds = time.perf_counter() - epoch_start
            row = {
                "epoch": global_epoch, "stage": stage.name, "stage_epoch": stage_epoch,
                "lr": lr, "train_loss": train_loss,
                "val_loss": val["loss"] if val else None, "val_auc": val["auc"] if val else None,
                "val_accuracy": val["accuracy"] if val else None,
                "seconds": round(seconds, 2),
                "images_per_s": round(seen * self.dist.world_size / max(train_seconds, 1e-9), 2),
            }
            self._save_epoch(row, val, improved, index, stage_epoch, global_epoch, optimizer, scheduler, scaler, best)
            self._log(_summary(row))
            for callback in self.callbacks:
                callback(self, row)

        self.best_epochs[stage.name] = best["epoch"] if best["value"] is not None else None
        if stopped:
            self.stopped_early.append(stage.name)
            self._log(f"stage {stage.name}: no improvement in {stopping.patience} epochs, stopped early")
        if stopping.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)
            self._log(f"stage {stage.name}: restored the best epoch ({best['epoch']})")
        self._save_stage_done(index + 1, global_epoch)
        return global_epoch

    def _set_epoch(self, epoch: int) -> None:
        self.shuffle_generator.manual_seed(self.recipe.train.seed * 1_000_003 + epoch)
        self.train_set.set_epoch(epoch)
        if hasattr(self.train_sampler, "set_epoch"):
            self.train_sampler.set_epoch(epoch)

    def _train_epoch(self, wrapped, stage, optimizer, scheduler, scaler, sched_section, batches, epoch):
        from tqdm import tqdm

        r = self.recipe
        model = self.model
        wrapped.train()
        if stage.freeze_backbone:
            model.backbone.eval()  # frozen batch-norm statistics too
        accum = r.train.grad_accum_steps
        per_step = steps_per_scheduler_call(sched_section) == "step"
        noise_gen = torch.Generator().manual_seed(r.train.seed * 7919 + epoch)
        # The running loss stays on the device and is read every REPORT_EVERY steps: reading it each
        # step would wait for the GPU every step.
        total, count = torch.zeros((), dtype=torch.float64, device=self.device), 0
        optimizer.zero_grad(set_to_none=True)
        progress = tqdm(total=batches, desc=f"epoch {epoch + 1}", unit="batch", leave=False,
                        disable=not self.dist.is_main, file=sys.stderr)
        for step, (images, labels, _) in enumerate(self.train_loader):
            if step >= batches:
                break
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            if stage.corrupt is not None:
                c = stage.corrupt
                images = corrupt_with_noise(images, c.fraction, c.alpha_min, c.alpha_max, noise_gen)
            if r.model.channels_last:
                images = images.to(memory_format=torch.channels_last)
            last_micro = (step + 1) % accum == 0 or step + 1 == batches
            sync = (not self.dist.enabled) or last_micro
            context = wrapped.no_sync() if (self.dist.enabled and not sync) else _nullcontext()
            with context:
                with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                                    enabled=self.autocast_dtype is not None):
                    logits = wrapped(images)
                    if self.teacher is not None:
                        loss = self.distill_loss(logits, labels, self.teacher(images))
                    else:
                        loss = self.criterion(logits, labels)
                scaler.scale(loss / accum).backward()
            if last_micro:
                if r.train.grad_clip_norm:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), r.train.grad_clip_norm)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                if per_step:
                    scheduler.step()
            total += loss.detach().double() * images.shape[0]
            count += images.shape[0]
            progress.update(1)
            if (step + 1) % REPORT_EVERY == 0 or step + 1 == batches:
                mean = total.item() / count
                if not math.isfinite(mean):
                    raise TrainingDivergedError(
                        f"training loss became {mean} in epoch {epoch + 1} by batch {step + 1}; "
                        "lower optimizer.lr, set train.grad_clip_norm, or use train.precision=fp32"
                    )
                progress.set_postfix(loss=f"{mean:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
        progress.close()
        if self.dist.enabled:
            import torch.distributed as dist

            sums = torch.stack([total, torch.tensor(float(count), dtype=torch.float64, device=self.device)])
            dist.all_reduce(sums)
            return (sums[0].item() / max(sums[1].item(), 1.0)), count
        return (total.item() / count if count else float("nan")), count

    def _validate(self) -> dict | None:
        """Validation on clean crops with the plain log loss (no smoothing, no distillation), as the
        papers validate; AUC and accuracy at 0.5 for the history."""
        if self.val_loader is None:
            return None
        logits, labels, indices = predict_logits(self.model, self.val_loader, self.device, self.autocast_dtype,
                                                 self.recipe.model.channels_last)
        logits, labels, indices = self._gather(logits, labels, indices)
        if not np.isfinite(logits).all():
            raise TrainingDivergedError(
                "the model's validation outputs are not finite numbers; lower optimizer.lr, set "
                "train.grad_clip_norm, or use train.precision=fp32"
            )
        from ..evaluate.calibration import sigmoid
        from ..evaluate.metrics import MetricUndefinedError, roc_auc

        probs = sigmoid(logits)
        try:
            auc = roc_auc(labels.astype(np.int64), probs)
        except MetricUndefinedError:
            auc = None
        return {"loss": mean_log_loss(logits, labels), "auc": auc,
                "accuracy": float(((probs >= 0.5) == (labels > 0.5)).mean()),
                "logits": logits, "labels": labels, "indices": indices}

    def _gather(self, logits, labels, indices):
        """All ranks' validation shares, each item once (DistributedSampler pads with repeats)."""
        if not self.dist.enabled:
            return logits, labels, indices
        import torch.distributed as dist

        parts = [None] * self.dist.world_size
        dist.all_gather_object(parts, (logits, labels, indices))
        logits = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        indices = np.concatenate([p[2] for p in parts])
        _, first = np.unique(indices, return_index=True)
        return logits[first], labels[first], indices[first]

    def _track_best(self, best: dict, val: dict | None, stopping: EarlyStoppingSection, epoch: int) -> bool:
        if val is None:
            return False
        value = val["loss"] if stopping.monitor == "val_loss" else val["auc"]
        if value is None:
            return False
        sign = 1.0 if stopping.monitor == "val_loss" else -1.0
        if best["value"] is None or sign * (best["value"] - value) > stopping.min_delta:
            best.update(value=float(value), epoch=epoch, since=0)
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            return True
        best["since"] += 1
        return False

    # ----- files

    def _card(self, metrics: dict | None = None, temperature: float = 1.0, threshold: float = 0.5, extra=None):
        from ..models import ModelCard
        from ..models.checkpoint import CropCard

        r = self.recipe
        training = {
            "recipe_name": r.name, "paper": r.paper, "manifest": r.data.manifest,
            "train_items": len(self.train_set), "val_items": len(self.val_set) if self.val_set is not None else 0,
            "device": str(self.device), "precision": precision_name(self.autocast_dtype),
            "recipe": r.to_dict(),
        }
        training.update(extra or {})
        return ModelCard(
            name=r.name, arch=r.model.arch, head=r.model.head, head_options=r.model.head_options,
            num_classes=r.model.num_classes, input_size=self.input_size, mean=self.spec.mean, std=self.spec.std,
            crop=CropCard(detector=r.faces.detector, margin=r.faces.margin, margin_px=r.faces.margin_px,
                          min_face=r.faces.min_face, detect_side=r.faces.detect_side),
            threshold=threshold, temperature=temperature, training=training, metrics=metrics or {},
            license=r.data.license,
        )

    def _state_from_file(self, stem: Path) -> dict:
        from safetensors.torch import load_file

        return load_file(str(stem.with_suffix(".safetensors")))

    def _save_epoch(self, row, val, improved, stage_index, stage_epoch, global_epoch, optimizer, scheduler,
                    scaler, best) -> None:
        self.history.append(row)
        if not self.dist.is_main:
            return
        from ..models import save_checkpoint

        epoch_metrics = {k: row[k] for k in ("val_loss", "val_auc", "val_accuracy", "train_loss") if row[k] is not None}
        card = self._card(epoch_metrics, extra={"epoch": global_epoch})
        save_checkpoint(self.model, card, self.ckpt_dir / "last")
        if improved:
            save_checkpoint(self.model, card, self.ckpt_dir / "best")
        if self.recipe.train.keep_epoch_checkpoints:
            save_checkpoint(self.model, card, self.ckpt_dir / f"epoch_{global_epoch:03d}")
        state = {
            "format": STATE_FORMAT, "stage_index": stage_index, "stage_epoch": stage_epoch,
            "global_epoch": global_epoch, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(), "best": dict(best), "rng": _rng_state(),
        }
        _atomic_torch_save(state, self.ckpt_dir / "state.pt")
        self._append_history(row)

    def _save_stage_done(self, next_stage: int, global_epoch: int) -> None:
        """After a stage (and its best-state restore): the next resume starts the next stage fresh."""
        if not self.dist.is_main:
            return
        from ..models import save_checkpoint

        save_checkpoint(self.model, self._card(extra={"epoch": global_epoch}), self.ckpt_dir / "last")
        state = {"format": STATE_FORMAT, "stage_index": next_stage, "stage_epoch": 0,
                 "global_epoch": global_epoch, "rng": _rng_state()}
        _atomic_torch_save(state, self.ckpt_dir / "state.pt")

    def _open_history(self, state: dict | None) -> None:
        path = self.run_dir / HISTORY_FILE
        if not self.dist.is_main:
            return
        kept: list[dict] = []
        if state is not None and path.is_file():
            with open(path, newline="") as f:
                kept = [_parse_row(row) for row in csv.DictReader(f) if int(row["epoch"]) <= state["global_epoch"]]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS)
            writer.writeheader()
            writer.writerows(kept)
        self.history = [dict(row) for row in kept]
        if self.recipe.train.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:
                self._tb = None

    def _append_history(self, row: dict) -> None:
        with open(self.run_dir / HISTORY_FILE, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=HISTORY_COLUMNS).writerow(
                {k: ("" if row[k] is None else row[k]) for k in HISTORY_COLUMNS}
            )
        if self._tb is not None:
            for key in ("lr", "train_loss", "val_loss", "val_auc", "val_accuracy", "images_per_s"):
                if row[key] is not None:
                    self._tb.add_scalar(key, row[key], row["epoch"])
            self._tb.flush()

    # ----- the end: calibration, final card, report

    def _finish(self) -> TrainResult:
        from ..models import save_checkpoint

        val = self._validate()
        metrics, temperature, threshold, levels = None, 1.0, 0.5, None
        if val is not None:
            temperature, threshold, levels = self._calibrate(val)
            metrics = levels["frame"]
        if not self.dist.is_main:
            return TrainResult(self.run_dir, None, None, self.history, metrics, self.stopped_early)
        card_metrics = {}
        if metrics is not None:
            card_metrics = {"split": self.recipe.data.val_split, "level": "frame"}
            card_metrics.update({k: metrics.get(k) for k in ("n", "auc", "accuracy", "log_loss", "eer", "ece",
                                                             "sensitivity", "specificity", "f1")})
        card = self._card(card_metrics, temperature, threshold, extra={
            "epochs_run": len(self.history), "stopped_early": self.stopped_early, "best_epochs": self.best_epochs,
            "threshold_rule": self.recipe.calibration.threshold,
        })
        weights_path, card_path = save_checkpoint(self.model, card, self.run_dir / "model")
        from ..models import load_card

        card = load_card(self.run_dir / "model")
        if levels is not None:
            self._write_report(levels, temperature, threshold, weights_path)
        self._log(f"model written to {weights_path}" + (
            f" (validation AUC {metrics['auc']}, accuracy {metrics['accuracy']:.4f}, T {temperature:.3f}, "
            f"threshold {threshold:.4f})" if metrics else ""))
        return TrainResult(self.run_dir, weights_path, card, self.history, metrics, self.stopped_early)

    def _calibrate(self, val: dict):
        from ..evaluate.calibration import apply_temperature, choose_threshold, fit_temperature
        from ..evaluate.metrics import MetricUndefinedError, compute_metrics

        c = self.recipe.calibration
        logits, labels = val["logits"], val["labels"].astype(np.int64)
        temperature = fit_temperature(logits, labels) if c.fit_temperature else 1.0
        probs = apply_temperature(logits, temperature)
        try:
            threshold = choose_threshold(labels, probs, c.threshold)
        except MetricUndefinedError as exc:
            self._log(f"threshold rule {c.threshold!r} needs both classes ({exc}); using 0.5")
            threshold = 0.5
        rows = self.val_rows.iloc[val["indices"]]
        methods = rows["method"].astype(str).tolist() if "method" in rows.columns else None
        levels = {"frame": compute_metrics(labels, probs, threshold, groups=methods)}
        video = self._video_level(rows, labels, probs, threshold)
        if video is not None:
            levels["video"] = video
        return float(temperature), float(threshold), levels

    def _video_level(self, rows, labels, probs, threshold):
        """Mean over each video's crops, when the validation split has several crops per video."""
        if "video" not in rows.columns or not (rows["video"].astype(str) != "").all():
            return None
        if rows["video"].nunique() == len(rows):
            return None
        from ..evaluate.metrics import compute_metrics, video_level

        frame = rows[["video"]].copy()
        frame["label"], frame["prob"] = labels, probs
        per_video = video_level(frame, lambda values: float(np.mean(values)))
        return compute_metrics(per_video["label"].to_numpy(), per_video["prob"].to_numpy(), threshold)

    def _write_report(self, levels: dict, temperature: float, threshold: float, weights_path: Path) -> None:
        from ..evaluate.report import write_report

        r = self.recipe
        info = {
            "recipe": r.name, "checkpoint": str(weights_path), "split": r.data.val_split,
            "manifest": r.data.manifest, "temperature": round(temperature, 6), "threshold": round(threshold, 6),
            "threshold_rule": r.calibration.threshold, "epochs_run": len(self.history),
        }
        notes = ["Temperature and threshold were fitted on this same validation split: evaluate on a held-out "
                 "test split (`dfdetect evaluate`) for unbiased figures."]
        write_report(self.run_dir, levels, info=info, history=self.run_dir / HISTORY_FILE, notes=notes,
                     title=f"Training report: {r.name} (validation)")


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _summary(row: dict) -> str:
    parts = [f"epoch {row['epoch']} ({row['stage']})", f"train loss {row['train_loss']:.4f}"]
    if row["val_loss"] is not None:
        parts.append(f"val loss {row['val_loss']:.4f}")
    if row["val_auc"] is not None:
        parts.append(f"val AUC {row['val_auc']:.4f}")
    if row["val_accuracy"] is not None:
        parts.append(f"val acc {row['val_accuracy']:.4f}")
    parts.append(f"{row['images_per_s']:.1f} img/s")
    return ", ".join(parts)


def _parse_row(row: dict) -> dict:
    """A history row read back from CSV: numbers as numbers, blanks as None."""
    parsed = {}
    for key, text in row.items():
        if key == "stage":
            parsed[key] = text
        elif text in ("", None):
            parsed[key] = None
        else:
            value = float(text)
            parsed[key] = int(value) if key in ("epoch", "stage_epoch") else value
    return parsed


def read_history(run_dir: str | Path) -> list[dict]:
    """The per-epoch rows of a run (history.csv) with numeric values."""
    with open(Path(run_dir) / HISTORY_FILE, newline="") as f:
        return [_parse_row(row) for row in csv.DictReader(f)]


__all__ = ["Trainer", "TrainResult", "build_model", "corrupt_with_noise", "predict_logits", "read_history", "train"]
