"""Checkpoint = `<name>.safetensors` (weights) + `<name>.json` (the model card). Loading is strict and never unpickles."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import CheckpointError
from ..faces.crop import FaceCrop

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "models"
NAMED_MODELS = {"default": ASSETS / "default"}


def user_models_dir() -> Path:
    """Where a person keeps their own checkpoints to call by name: $DFDETECT_MODELS, else ~/.cache/dfdetect/models."""
    import os

    return Path(os.environ.get("DFDETECT_MODELS") or Path.home() / ".cache" / "dfdetect" / "models").expanduser()


def available_models() -> dict[str, Path]:
    """Every model usable by name (name -> checkpoint stem): the bundled ones, then each card with its weights
    in user_models_dir(); a bundled name is never shadowed."""
    found = dict(NAMED_MODELS)
    folder = user_models_dir()
    if folder.is_dir():
        for card in sorted(folder.glob("*.json")):
            stem = card.with_suffix("")
            if card.with_suffix(".safetensors").is_file():
                found.setdefault(stem.name, stem)
    return found


# How faces were cropped for a model; scanning must crop the same way.
CropCard = FaceCrop


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    format_version: int = 1
    name: str
    arch: str
    head: str = "linear"
    head_options: dict[str, Any] = Field(default_factory=dict)
    num_classes: Literal[1, 2] = 1
    input_size: int = Field(gt=0)
    mean: tuple[float, float, float]
    std: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]]
    crop: CropCard = Field(default_factory=CropCard)
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    # For person and video scores (a mean over faces) when fitted apart from the face threshold; None: the same.
    video_threshold: float | None = Field(None, ge=0.0, le=1.0)
    temperature: float = Field(1.0, gt=0.0)
    trained_for_deepfakes: bool = True
    params: int = 0
    weights_sha256: str = ""
    weights_dtype: str = "float32"
    # An exported .onnx file: the weights hash of the checkpoint it was exported from (an ONNX twin beside
    # that checkpoint is used in its place only when this matches).
    exported_from_sha256: str = ""
    training: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    license: str = ""
    limits: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    # Layers whose widths differ from the architecture's standard ones (pruning): models/shapes.py.
    shapes: dict[str, list[int]] = Field(default_factory=dict)
    # Every compression step applied since the trained model, in order, with its options and results.
    compression: list[dict[str, Any]] = Field(default_factory=list)
    created: str = ""
    dfdetect_version: str = ""


def resolve(path_or_name: str | Path) -> tuple[Path, Path]:
    """(weights, card) paths for a bundled name ("default"), a .safetensors/.json path, or a stem."""
    if not str(path_or_name).strip():
        raise CheckpointError(f"no model given; name a model ({', '.join(available_models())}) or a checkpoint path")
    base = available_models().get(str(path_or_name), Path(path_or_name))
    if base.suffix in (".safetensors", ".json"):
        base = base.with_suffix("")
    # Append rather than replace: "runs/b4-0.5" must not become "runs/b4-0.safetensors".
    return base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")


def save_checkpoint(model, card: ModelCard, path: str | Path, half: bool = False) -> tuple[Path, Path]:
    """Write weights and card; the card records the weights' hash so a mismatched pair is refused."""
    from safetensors.torch import save_file

    from .. import __version__

    weights_path, card_path = resolve(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(weights_path))
    card = card.model_copy(update={
        "shapes": _changed_shapes(model, card),
        "params": sum(p.numel() for p in model.parameters()),
        "weights_sha256": _sha256(weights_path),
        "weights_dtype": "float16" if half else "float32",
        "created": card.created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dfdetect_version": __version__,
    })
    card_path.write_text(card.model_dump_json(indent=2) + "\n")
    # safetensors writes owner-only files; give the weights the card's (umask-derived) permissions so an
    # installed model is readable by everyone who can read its card.
    weights_path.chmod(card_path.stat().st_mode & 0o777)
    return weights_path, card_path


def load_card(path_or_name: str | Path) -> ModelCard:
    _, card_path = resolve(path_or_name)
    if not card_path.is_file():
        if not any(sep in str(path_or_name) for sep in "/\\.") and not Path(path_or_name).exists():
            raise CheckpointError(f"no model named {str(path_or_name)!r}; models: {', '.join(available_models())} "
                                  "(`dfdetect models` lists them; or give a checkpoint path)")
        raise CheckpointError(f"model card not found: {card_path} (a checkpoint is a .safetensors file plus its .json card)")
    try:
        return ModelCard.model_validate(json.loads(card_path.read_text()))
    except (ValidationError, json.JSONDecodeError) as exc:
        first = str(exc).splitlines()[0:3]
        raise CheckpointError(f"invalid model card {card_path}: {' '.join(first)}") from None


def load_checkpoint(path_or_name: str | Path, device: str = "cpu"):
    """(model in eval mode, card). Refuses weights whose hash, keys or shapes disagree with the card."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights_path, card_path = resolve(path_or_name)
    card = load_card(path_or_name)
    if not weights_path.is_file():
        raise CheckpointError(f"weights not found: {weights_path}")
    if card.weights_sha256 and _sha256(weights_path) != card.weights_sha256:
        raise CheckpointError(f"{weights_path.name} does not match its card {card_path.name} (weights hash differs)")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read {weights_path}: {exc}") from None
    model = _standard_model(card)
    if card.shapes:
        from .shapes import apply_shapes

        apply_shapes(model, card.shapes)
    _load_strict(model, state, weights_path, card_path)
    _check_card_facts(card, model, state, weights_path, card_path)
    return model.to(device).eval(), card


def _standard_model(card: ModelCard):
    """The card's architecture and head at their standard widths, randomly initialised."""
    from .classifier import create_model

    return create_model(card.arch, pretrained=None, head=card.head, num_classes=card.num_classes,
                        head_options=card.head_options)


def _changed_shapes(model, card: ModelCard) -> dict[str, list[int]]:
    from .shapes import changed_shapes

    return changed_shapes(model, _standard_model(card))


def _load_strict(model, state: dict, weights_path: Path, card_path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = [k for k in set(expected) & set(state) if expected[k].shape != state[k].shape]
    if missing or unexpected or wrong_shape:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:3])}{'...' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape))
            if keys
        )
        raise CheckpointError(f"{weights_path.name} does not match the architecture in {card_path.name} ({detail})")
    state = {k: v.to(expected[k].dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=True)


def _check_card_facts(card: ModelCard, model, state: dict, weights_path: Path, card_path: Path) -> None:
    """What the card states about the weights must be true of them."""
    params = sum(p.numel() for p in model.parameters())
    if card.params and card.params != params:
        raise CheckpointError(f"{card_path.name} says {card.params} parameters, {weights_path.name} has {params}")
    dtypes = {str(v.dtype).removeprefix("torch.") for v in state.values() if v.is_floating_point()}
    if dtypes and dtypes != {card.weights_dtype}:
        raise CheckpointError(f"{card_path.name} says {card.weights_dtype} weights, {weights_path.name} holds "
                              f"{', '.join(sorted(dtypes))}")


def _sha256(path: Path) -> str:
    from ..digest import file_sha256

    return file_sha256(path)
