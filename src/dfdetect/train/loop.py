"""The training loop: stages of epochs over a face-crop manifest, with checkpoints, resume and calibration.

    result = train(load_recipe("configs/seed003_efficientnet_b0.yaml"), "runs/b0")

The pieces, as Lightning separates them: the data (train.data), the step (train.step), validation
(train.validation) and the callbacks that keep files: checkpoints (train.checkpoints), history
(train.history) and the final calibration and report (train.calibration); the loop here runs them.

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

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from ..devices import torch_device as _pick_device  # noqa: F401  (benchmarks)
from .calibration import calibrate, card_metrics, write_training_report
from .checkpoints import Checkpoints
from .data import build_data
from .history import HistoryLog, read_history, summary
from .losses import build_loss
from .model import build_model, build_teacher, set_backbone_frozen
from .optim import build_optimizer, build_scheduler, steps_per_scheduler_call
from .recipe import EarlyStoppingSection, Recipe, StageSection
from .runtime import autocast_dtype as _autocast_dtype
from .runtime import init_distributed, precision_name, seed_everything, set_rng_state
from .step import StepContext, TaskLoss, TrainingDivergedError, corrupt_with_noise, train_epoch
from .validation import mean_log_loss, predict_logits, validate

EpochCallback = Callable[["Trainer", dict], None]


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


class Trainer:
    def __init__(self, recipe: Recipe, run_dir: str | Path, *, resume: bool = False, device: str | None = None,
                 model: nn.Module | None = None, callbacks: Sequence[EpochCallback] = ()):
        self.recipe = recipe
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.callbacks = list(callbacks)
        self.dist, self.device = init_distributed(device)
        self.autocast_dtype = _autocast_dtype(recipe.train.precision, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest kernels
        self._given_model = model
        self.checkpoints = Checkpoints(self.run_dir, recipe, recipe.train.keep_epoch_checkpoints)
        self.history_log = HistoryLog(self.run_dir, recipe.train.tensorboard)
        self.history: list[dict] = []
        self.stopped_early: list[str] = []
        self.best_epochs: dict[str, int | None] = {}
        self.out_of_time = False

    # ----- setup

    def _log(self, message: str) -> None:
        if self.dist.is_main:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)

    def _setup(self, state: dict | None) -> None:
        r = self.recipe
        seed_everything(r.train.seed + self.dist.rank)
        model = self._given_model if self._given_model is not None else build_model(r)
        self.spec = model.spec
        self.input_size = r.model.input_size or self.spec.input_size
        if state is not None:
            model.load_state_dict(self.checkpoints.weights("last"), strict=True)
        model.to(self.device)
        if r.model.channels_last:
            model.to(memory_format=torch.channels_last)
        if self.dist.enabled and r.train.sync_batchnorm and self.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model
        self.loss = self._task_loss()
        self.data = build_data(r, self.input_size, self.spec, self.dist, self.device, self._log)
        self.train_set, self.val_set = self.data.train_set, self.data.val_set

    def _task_loss(self) -> TaskLoss:
        r = self.recipe
        criterion = build_loss(r.loss)
        if not r.distill:
            return TaskLoss(criterion)
        from .distill import DistillationLoss

        teacher = build_teacher(r, self.spec, self.device)
        return TaskLoss(criterion, teacher, DistillationLoss(criterion, r.distill.alpha, r.distill.temperature))

    # ----- the run

    def fit(self) -> TrainResult:
        state = self.checkpoints.load_state(self.resume)
        self._setup(state)
        if self.dist.is_main:
            self.checkpoints.write_config()
            self.history = [dict(row) for row in self.history_log.open(state["global_epoch"] if state else None)]
        stages = self.recipe.resolved_stages()
        start_stage = state["stage_index"] if state else 0
        global_epoch = state["global_epoch"] if state else 0
        if state is not None:
            set_rng_state(state["rng"])
            self._log(f"resuming {self.run_dir} after epoch {global_epoch}")
            if start_stage >= len(stages):
                self._log("every stage of this run had finished: only the final calibration and report are "
                          "redone (to train further, start a new run with model.init_from=RUN_DIR/model)")
        self.started = time.perf_counter()
        try:
            for index in range(start_stage, len(stages)):
                if self._out_of_time():
                    break
                stage_state = state if (state is not None and index == start_stage) else None
                global_epoch = self._run_stage(index, stages[index], global_epoch, stage_state)
        except KeyboardInterrupt:
            self._log(f"interrupted; continue with: dfdetect train ... --out {self.run_dir} --resume")
            raise
        finally:
            self.history_log.close()
        return self._finish()

    def _out_of_time(self) -> bool:
        limit = self.recipe.train.time_limit_minutes
        if limit is None:
            return False
        over = time.perf_counter() - self.started >= limit * 60
        if self.dist.enabled:  # rank 0's clock decides for all, so that no rank waits for the others forever
            import torch.distributed as tdist

            flag = torch.tensor([float(over)], device=self.device)
            tdist.broadcast(flag, src=0)
            over = bool(flag.item())
        if not over:
            return False
        if not self.out_of_time:
            self.out_of_time = True
            self._log(f"time limit of {limit:g} minutes reached: no further epochs")
        return True

    def _stage_early_stopping(self, stage: StageSection) -> EarlyStoppingSection:
        return stage.early_stopping or self.recipe.train.early_stopping

    def _run_stage(self, index: int, stage: StageSection, global_epoch: int, state: dict | None) -> int:
        r = self.recipe
        model = self.model
        set_backbone_frozen(model, stage.freeze_backbone)
        opt_section = stage.optimizer or r.optimizer
        sched_section = stage.scheduler or r.scheduler
        batches = len(self.data.train_loader)
        if r.train.max_steps_per_epoch:
            batches = min(batches, r.train.max_steps_per_epoch)
        steps_per_epoch = math.ceil(batches / r.train.grad_accum_steps)
        optimizer = build_optimizer(model.parameters(), opt_section)
        scheduler = build_scheduler(optimizer, sched_section, stage.epochs, steps_per_epoch)
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.autocast_dtype == torch.float16)
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
        if best["value"] is not None and self.checkpoints.has("best"):
            self.best_state = self.checkpoints.weights("best")
        self._log(f"stage {stage.name}: {stage.epochs} epochs, {len(self.train_set)} training crops, "
                  f"{'backbone frozen, ' if stage.freeze_backbone else ''}device {self.device}, "
                  f"precision {precision_name(self.autocast_dtype)}")
        step = self._step_context()

        stopped = False
        while stage_epoch < stage.epochs and not stopped and not self._out_of_time():
            epoch_start = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            self.data.set_epoch(r.train.seed, global_epoch)
            train_loss, seen = train_epoch(step, r, stage, self.data.train_loader, optimizer, scheduler, scaler,
                                           sched_section, batches, global_epoch)
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
            row = {
                "epoch": global_epoch, "stage": stage.name, "stage_epoch": stage_epoch,
                "lr": lr, "train_loss": train_loss,
                "val_loss": val["loss"] if val else None, "val_auc": val["auc"] if val else None,
                "val_accuracy": val["accuracy"] if val else None,
                "seconds": round(time.perf_counter() - epoch_start, 2),
                "images_per_s": round(seen * self.dist.world_size / max(train_seconds, 1e-9), 2),
            }
            resume_state = {"stage_index": index, "stage_epoch": stage_epoch, "global_epoch": global_epoch,
                            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                            "scaler": scaler.state_dict(), "best": dict(best)}
            self._end_epoch(row, improved, resume_state)
            for callback in self.callbacks:
                callback(self, row)

        self.best_epochs[stage.name] = best["epoch"] if best["value"] is not None else None
        if stopped:
            self.stopped_early.append(stage.name)
            self._log(f"stage {stage.name}: no improvement in {stopping.patience} epochs, stopped early")
        if stopping.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)
            self._log(f"stage {stage.name}: restored the best epoch ({best['epoch']})")
        if self.dist.is_main:
            self.checkpoints.save_stage_done(self.model, self._card(extra={"epoch": global_epoch}), index + 1,
                                             global_epoch)
        return global_epoch

    def _step_context(self) -> StepContext:
        wrapped = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            wrapped = DistributedDataParallel(self.model, device_ids=ids)
        return StepContext(self.model, wrapped, self.loss, self.device, self.autocast_dtype, self.dist.enabled,
                           self.dist.is_main)

    def _validate(self) -> dict | None:
        if self.data.val_loader is None:
            return None
        return validate(self.model, self.data.val_loader, self.device, self.autocast_dtype,
                        self.recipe.model.channels_last, self.dist)

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

    def _end_epoch(self, row: dict, improved: bool, resume_state: dict) -> None:
        self.history.append(row)
        if self.dist.is_main:
            epoch_metrics = {k: row[k] for k in ("val_loss", "val_auc", "val_accuracy", "train_loss")
                             if row[k] is not None}
            card = self._card(epoch_metrics, extra={"epoch": row["epoch"]})
            self.checkpoints.save_epoch(self.model, card, improved, row["epoch"], resume_state)
            self.history_log.append(row)
        self._log(summary(row))

    # ----- the model card

    def _card(self, metrics: dict | None = None, temperature: float = 1.0, threshold: float = 0.5, extra=None,
              video_threshold: float | None = None):
        from ..models import ModelCard

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
            crop=r.faces.model_dump(),
            threshold=threshold, video_threshold=video_threshold, temperature=temperature, training=training,
            metrics=metrics or {},
            license=r.data.license,
        )

    # ----- the end: calibration, final card, report

    def _finish(self) -> TrainResult:
        from ..models import load_card, save_checkpoint

        val = self._validate()
        cal = calibrate(val, self.data.val_rows, self.recipe.calibration, self._log) if val is not None else None
        metrics = cal.levels["frame"] if cal is not None else None
        if not self.dist.is_main:
            return TrainResult(self.run_dir, None, None, self.history, metrics, self.stopped_early)
        temperature, threshold = (cal.temperature, cal.threshold) if cal is not None else (1.0, 0.5)
        card = self._card(card_metrics(self.recipe.data.val_split, metrics), temperature, threshold, extra={
            "epochs_run": len(self.history), "stopped_early": self.stopped_early, "best_epochs": self.best_epochs,
            "stopped_by_time_limit": self.out_of_time, "threshold_rule": self.recipe.calibration.threshold,
        }, video_threshold=cal.video_threshold if cal is not None else None)
        weights_path, _ = save_checkpoint(self.model, card, self.run_dir / "model")
        card = load_card(self.run_dir / "model")
        if cal is not None:
            write_training_report(self.run_dir, self.recipe, cal, weights_path, len(self.history),
                                  self.history_log.path)
        self._log(f"model written to {weights_path}" + (
            f" (validation AUC {metrics['auc']}, accuracy {metrics['accuracy']:.4f}, T {temperature:.3f}, "
            f"threshold {threshold:.4f})" if metrics else ""))
        return TrainResult(self.run_dir, weights_path, card, self.history, metrics, self.stopped_early)


__all__ = [
    "Trainer", "TrainResult", "TrainingDivergedError", "build_model", "corrupt_with_noise", "mean_log_loss",
    "predict_logits", "read_history", "train",
]
