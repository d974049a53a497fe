"""Training recipes: YAML files validated into a typed `Recipe`, with `key.path=value` overrides.

    recipe = load_recipe("configs/seed003_efficientnet_b0.yaml", ["train.epochs=2", "data.batch_size=8"])

A recipe file may start from another with `base: other.yaml` (a path relative to the file); its keys
are merged over the base's, section by section (lists are replaced, not merged). Every key is
checked: a misspelt one is an error, never silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from ..faces.crop import FaceCrop

DEFAULT_EPOCHS = 10
REPO_CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def _registered(registry, name: str) -> str:
    """The name, if the registry has it; pydantic reports a ValueError as a field error."""
    if name not in registry:
        raise ValueError(f"unknown {registry.kind} {name!r}; choose one of: {', '.join(registry.names())}")
    return name


def _registry_field(field: str, module: str, registry: str):
    """A validator: `field` must name an entry of `registry` in `module` (imported when a recipe is checked,
    so that reading a recipe does not load torch before it has to)."""
    def check(cls, name: str) -> str:
        from importlib import import_module

        return _registered(getattr(import_module(module, __package__), registry), name)

    return field_validator(field)(classmethod(check))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Section):
    arch: str
    # None: random init (say so explicitly); "imagenet": weights that ship offline; "lite-imagenet": a B0
    # on the offline ImageNet weights of its Lite twin (SE gates started open); "hub": download
    # through timm (needs internet); or a path to a weights file.
    pretrained: str | None = "imagenet"
    head: str = "linear"
    num_classes: Literal[1, 2] = 1
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0)
    head_options: dict[str, Any] = Field(default_factory=dict)
    input_size: int | None = Field(None, ge=32, description="default: the backbone's native size")
    # Start from a trained dfdetect checkpoint (fine-tuning, or seed 004's head swap).
    init_from: str | None = None
    init_parts: Literal["all", "backbone"] = "all"
    channels_last: bool = False

    _known_backbone = _registry_field("arch", "..models.zoo", "BACKBONES")
    _known_head = _registry_field("head", "..models.heads", "HEADS")


class DataSection(_Section):
    # CSV/Parquet manifest of face crops (path, label, group, split, method, video); relative paths
    # start from the manifest's folder.
    manifest: str | None = None
    train_split: str = "train"
    val_split: str | None = "val"
    augment: str = "none"
    batch_size: int = Field(32, ge=1)
    val_batch_size: int | None = Field(None, ge=1)
    num_workers: int = Field(2, ge=0)
    balance_classes: bool = False
    # With balance_classes: draw real and fake equally within each source (the manifest's `dataset`), and
    # give the sources shares in proportion to (rows ** source_share_power): 1 keeps their sizes, 0 makes
    # them equal. None: balance the classes over the whole pool.
    source_share_power: float | None = Field(None, ge=0.0, le=1.0)
    # With source_share_power: draw the rows of these groups this many times more often within their source
    # and label, e.g. {"age_band under 13": 3.0} (groups named as calibration.fpr_groups name them).
    group_weights: dict[str, float] = Field(default_factory=dict)
    # With source_share_power: the share of each source's draws that go to its real rows (the rest to its fakes).
    # Self-blended fakes are made from the real draws, so the labels come out real_share * (1 - sbi_fraction)
    # real, real_share * sbi_fraction self-blended and 1 - real_share the pool's fakes: 2/3 with SBI on half
    # of the reals gives thirds, where 0.5 gives the pool's fakes half of all draws. "balanced": the share that
    # leaves real and fake labels equal after self-blending, 0.5 / (1 - sbi_fraction): without it a source with
    # fakes is drawn a quarter real and three quarters fake when SBI takes half of the reals, while a source of
    # reals only stays half and half, so that a source's look would say how likely "fake" is.
    real_share: Annotated[float, Field(gt=0.0, lt=1.0)] | Literal["balanced"] = 0.5
    # Share of REAL training samples turned into self-blended fakes (label 1) on the fly.
    sbi_fraction: float = Field(0.0, ge=0.0, le=1.0)
    # Train on the real rows alone, so that every fake seen is self-blended (Shiohara and Yamasaki's recipe:
    # no manipulation method's own traces to learn); validation keeps the manifest's fakes.
    self_blended_only: bool = False
    max_train_samples: int | None = Field(None, ge=1)
    max_val_samples: int | None = Field(None, ge=1)
    # Terms the training data imposes on the model (e.g. DFDC: research, non-commercial); goes into the card.
    license: str = ""

    _known_augmentation = _registry_field("augment", "..data.augment", "AUGMENTATIONS")

    @model_validator(mode="after")
    def _fakes_to_learn_from(self):
        if self.self_blended_only and self.sbi_fraction == 0:
            raise ValueError("data.self_blended_only needs data.sbi_fraction > 0 (else training sees no fake)")
        if self.real_share != 0.5 and (self.source_share_power is None or not self.balance_classes):
            raise ValueError("data.real_share needs data.balance_classes and data.source_share_power (it splits "
                             "each source's draws)")
        if self.real_share == "balanced" and self.sbi_fraction >= 0.5:
            raise ValueError("data.real_share=balanced with data.sbi_fraction >= 0.5 leaves no draws for the pool's "
                             "fakes; lower sbi_fraction, or train on self-blended fakes alone (data.self_blended_only)")
        return self

    def real_share_of_draws(self) -> float:
        """real_share as a number: "balanced" resolved against sbi_fraction."""
        return 0.5 / (1.0 - self.sbi_fraction) if self.real_share == "balanced" else float(self.real_share)


class OptimizerSection(_Section):
    name: str = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)

    _known_name = _registry_field("name", ".optim", "OPTIMIZERS")


class SchedulerSection(_Section):
    name: str = "none"
    interval: Literal["epoch", "step"] = "epoch"
    warmup_epochs: float = Field(0.0, ge=0)
    warmup_start_factor: float = Field(0.1, gt=0, le=1)
    min_lr_factor: float = Field(0.0, ge=0, le=1)
    step_epochs: int = Field(10, ge=1)
    gamma: float = Field(0.1, gt=0, le=1)
    plateau_patience: int = Field(2, ge=0)
    poly_power: float = Field(0.9, gt=0)

    _known_name = _registry_field("name", ".optim", "SCHEDULERS")


class LossSection(_Section):
    name: str = "bce"
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)
    focal_gamma: float = Field(2.0, ge=0)

    _known_name = _registry_field("name", ".losses", "LOSSES")


class EarlyStoppingSection(_Section):
    patience: int | None = Field(None, ge=1, description="epochs without improvement; None: never stop early")
    monitor: Literal["val_loss", "val_auc"] = "val_loss"
    min_delta: float = Field(0.0, ge=0)
    restore_best: bool = True


class CorruptionSection(_Section):
    """Seed 004: a share of the training images becomes sqrt(a) x + sqrt(1 - a) z, a ~ U(alpha_min, alpha_max)."""

    fraction: float = Field(0.5, ge=0, le=1)
    alpha_min: float = Field(0.1, gt=0, le=1)
    alpha_max: float = Field(0.9, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self):
        if self.alpha_min > self.alpha_max:
            raise ValueError("alpha_min must not exceed alpha_max")
        return self


class StageSection(_Section):
    name: str
    epochs: int = Field(ge=1)
    freeze_backbone: bool = False
    corrupt: CorruptionSection | None = None
    optimizer: OptimizerSection | None = Field(None, description="default: the recipe's optimizer")
    scheduler: SchedulerSection | None = Field(None, description="default: the recipe's scheduler")
    early_stopping: EarlyStoppingSection | None = Field(None, description="default: train.early_stopping")


class TrainSection(_Section):
    # Epochs of a one-stage recipe (10 when unset); a recipe with stages sets epochs per stage instead.
    epochs: int | None = Field(None, ge=1)
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # auto: fp16 on CUDA, fp32 on CPU
    grad_accum_steps: int = Field(1, ge=1)
    grad_clip_norm: float | None = Field(None, gt=0)
    seed: int = 0
    max_steps_per_epoch: int | None = Field(None, ge=1, description="cap for quick runs and tests")
    # Wall-clock budget: no new epoch starts once this many minutes have passed since the run (or its
    # resumption) began; the run then calibrates and writes its model as if the stages had ended.
    time_limit_minutes: float | None = Field(None, gt=0)
    early_stopping: EarlyStoppingSection = Field(default_factory=EarlyStoppingSection)
    keep_epoch_checkpoints: bool = False
    tensorboard: bool = True  # used when the tensorboard package is installed
    sync_batchnorm: bool = False  # multi-GPU only


class DistillSection(_Section):
    """Seed 003: L = alpha * BCE(student, teacher) + (1 - alpha) * hard loss(student, label)."""

    teacher: str = Field(description="a dfdetect checkpoint (path without or with .safetensors)")
    alpha: float = Field(0.5, ge=0, le=1)
    temperature: float = Field(1.0, gt=0)


class CalibrationSection(_Section):
    fit_temperature: bool = True
    # A probability, or a rule applied to the (calibrated) validation scores.
    threshold: float | str = 0.5
    # A bound on false alarms: the threshold is raised (never lowered) until at most this share of the
    # validation reals is called fake in every group of at least `min_group_people` real people, the groups
    # being the values of `fpr_groups`: each source, and each age band, gender and ethnicity where the
    # manifest records them.
    max_real_fpr: float | None = Field(None, gt=0, lt=1)
    min_group_people: int = Field(40, ge=1)
    fpr_groups: list[Literal["source", "age_band", "gender", "ethnicity"]] = Field(
        default_factory=lambda: ["source", "age_band", "gender", "ethnicity"], min_length=1)

    @field_validator("threshold", mode="before")
    @classmethod
    def _probability_or_rule(cls, value):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                from ..evaluate.calibration import THRESHOLD_RULES

                return _registered(THRESHOLD_RULES, value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not 0.0 < value < 1.0:
            raise ValueError("threshold must be between 0 and 1")
        return value


class FacesSection(FaceCrop):
    """How the training crops were made; copied into the model card so scanning crops the same way."""


class Recipe(_Section):
    name: str
    description: str = ""
    paper: str | None = None
    model: ModelSection
    data: DataSection = Field(default_factory=DataSection)
    optimizer: OptimizerSection = Field(default_factory=OptimizerSection)
    scheduler: SchedulerSection = Field(default_factory=SchedulerSection)
    loss: LossSection = Field(default_factory=LossSection)
    train: TrainSection = Field(default_factory=TrainSection)
    stages: list[StageSection] = Field(default_factory=list)
    distill: DistillSection | None = None
    calibration: CalibrationSection = Field(default_factory=CalibrationSection)
    faces: FacesSection = Field(default_factory=FacesSection)

    @model_validator(mode="after")
    def _consistent(self):
        if self.loss.name == "ce" and self.model.num_classes != 2:
            raise ValueError("loss 'ce' needs model.num_classes: 2 (use 'bce' or 'focal' for one output)")
        if self.loss.name in ("bce", "focal") and self.model.num_classes != 1:
            raise ValueError(f"loss {self.loss.name!r} needs model.num_classes: 1 (use 'ce' for two outputs)")
        if self.stages and self.train.epochs is not None:
            raise ValueError("this recipe has stages: set epochs per stage (stages.N.epochs), not train.epochs")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError("stage names must be unique")
        return self

    def resolved_stages(self) -> list[StageSection]:
        """The stages to run; a recipe without stages is one stage of train.epochs."""
        if self.stages:
            return list(self.stages)
        return [StageSection(name="train", epochs=self.train.epochs or DEFAULT_EPOCHS)]

    @property
    def total_epochs(self) -> int:
        return sum(s.epochs for s in self.resolved_stages())

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ---------------------------------------------------------------------------------------------
# Loading


def resolve_recipe_path(name_or_path: str | Path) -> Path:
    """A recipe file as given, else `<name>.yaml` in ./configs or in the source checkout's configs."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    stem = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    for folder in (Path.cwd() / "configs", REPO_CONFIGS):
        candidate = folder / stem
        if candidate.is_file():
            return candidate
    raise ConfigError(f"recipe {name_or_path} not found; give a YAML file path or a name from configs/")


def load_recipe(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    path = resolve_recipe_path(name_or_path)
    data = _read_with_bases(path, seen=())
    apply_overrides(data, overrides)
    return recipe_from_dict(data, source=str(path))


def recipe_from_dict(data: dict, source: str = "recipe") -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_one_line(exc)}") from None


def _read_with_bases(path: Path, seen: tuple[Path, ...]) -> dict:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"recipe {path} includes itself through 'base'")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"recipe {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {path} must be a mapping of sections (model, data, train, ...)")
    base = data.pop("base", None)
    if base is None:
        return data
    base_path = (path.parent / base) if not Path(base).is_absolute() else Path(base)
    if not base_path.is_file():
        raise ConfigError(f"recipe {path}: base {base} not found next to it")
    return deep_merge(_read_with_bases(base_path, seen + (path,)), data)


def deep_merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def apply_overrides(data: dict, overrides) -> dict:
    """Apply `a.b.c=value` strings in place; values are parsed as YAML (`null`, `true`, `[1, 2]`, `1e-4`)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like section.key=value (e.g. train.epochs=2)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        _set_path(data, key.strip().split("."), value, item)
    return data


def _set_path(node: Any, parts: list[str], value: Any, item: str) -> None:
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            try:
                index = int(part)
                node[index]
            except (ValueError, IndexError):
                raise ConfigError(f"override {item!r}: {part!r} is not an index of a list of {len(node)}") from None
            if last:
                node[index] = value
            else:
                node = node[index]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {'.'.join(parts[:depth])} is not a section")
        if last:
            node[part] = value
        else:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]


def _one_line(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "recipe"
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return "; ".join(problems)
