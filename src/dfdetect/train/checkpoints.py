"""Checkpoints of a run: checkpoints/last.*, best.*, epoch_NNN.* (weights + card) and state.pt
(optimiser, scheduler, scaler, epoch and RNG state) for resuming."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import CheckpointError, ConfigError
from .recipe import Recipe, recipe_from_dict
from .runtime import rng_state

STATE_FORMAT = 1


class Checkpoints:
    def __init__(self, run_dir: Path, recipe: Recipe, keep_epochs: bool = False):
        self.run_dir = run_dir
        self.dir = run_dir / "checkpoints"
        self.recipe = recipe
        self.keep_epochs = keep_epochs

    @property
    def state_path(self) -> Path:
        return self.dir / "state.pt"

    def load_state(self, resume: bool) -> dict | None:
        """The saved state to resume from (None for a fresh run); ConfigError when the folder does not fit."""
        if resume:
            if not self.state_path.is_file():
                raise ConfigError(f"nothing to resume in {self.run_dir} (no checkpoints/state.pt); drop --resume")
            self._check_same_model()
            return self._read_state()
        if self.state_path.exists() or (self.run_dir / "model.safetensors").exists():
            raise ConfigError(
                f"{self.run_dir} already holds a run; pass --resume to continue it or choose another --out"
            )
        return None

    def _read_state(self) -> dict:
        """Tensors and plain values only: a state.pt holding other objects is refused, never unpickled."""
        import pickle

        try:
            return torch.load(self.state_path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"cannot resume from {self.state_path}: it is damaged or holds objects other than "
                                  f"tensors and plain values ({type(exc).__name__}; refused without running any "
                                  "code in it)") from None

    def _check_same_model(self) -> None:
        saved = self.run_dir / "config.yaml"
        if not saved.is_file():
            return
        import yaml

        before = recipe_from_dict(yaml.safe_load(saved.read_text()), str(saved))
        if before.model != self.recipe.model:
            raise ConfigError(f"{self.run_dir} was trained with another model section; resume with its config.yaml")

    def write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for folder in (self.run_dir, self.dir):
            (folder / "config.yaml").write_text(self.recipe.to_yaml())

    def weights(self, name: str) -> dict:
        """A saved state dict, e.g. weights("last") or weights("best")."""
        from safetensors.torch import load_file

        return load_file(str((self.dir / name).with_suffix(".safetensors")))

    def has(self, name: str) -> bool:
        return (self.dir / f"{name}.safetensors").is_file()

    def save_epoch(self, model, card, improved: bool, global_epoch: int, state: dict) -> None:
        """Weights after an epoch (last, best when improved, epoch_NNN when kept) and the resume state."""
        from ..models import save_checkpoint

        save_checkpoint(model, card, self.dir / "last")
        if improved:
            save_checkpoint(model, card, self.dir / "best")
        if self.keep_epochs:
            save_checkpoint(model, card, self.dir / f"epoch_{global_epoch:03d}")
        self._save_state(state)

    def save_stage_done(self, model, card, next_stage: int, global_epoch: int) -> None:
        """After a stage (and its best-state restore): the next resume starts the next stage fresh."""
        from ..models import save_checkpoint

        save_checkpoint(model, card, self.dir / "last")
        self._save_state({"stage_index": next_stage, "stage_epoch": 0, "global_epoch": global_epoch})

    def _save_state(self, state: dict) -> None:
        state = {"format": STATE_FORMAT, **state, "rng": rng_state()}
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.state_path)
