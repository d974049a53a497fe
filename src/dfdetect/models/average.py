"""Average the weights of models fine-tuned from one start: a "model soup" (Wortsman et al., ICML 2022).

Fine-tuning runs that leave one checkpoint with different recipes or seeds end in the same basin, and their
weight average often keeps the strengths of each and generalises better than any of them, at no cost when
scanning. Models trained apart (from different starts) have no such average: it gives noise.

    model, card = average_checkpoints(["runs/a/model", "runs/b/model"], weights=[0.5, 0.5])

The average's temperature and threshold are those of no model in it: the card resets them (T 1, threshold 0.5)
and drops the figures; run `dfdetect calibrate` on it before use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import CheckpointError
from .checkpoint import ModelCard, load_checkpoint, resolve

# What must agree between cards for their weights to be averaged into one model that scans like each.
SAME_MODEL_FIELDS = ("arch", "head", "head_options", "num_classes", "input_size", "mean", "std", "crop", "shapes")

NOT_CALIBRATED = "averaged weights: temperature and threshold not fitted; run `dfdetect calibrate` before use"


def average_checkpoints(paths: Sequence[str | Path], weights: Sequence[float] | None = None, name: str = ""):
    """(model, card): the weighted mean of the checkpoints' floating-point tensors (weights normalised to sum 1)."""
    if len(paths) < 2:
        raise CheckpointError("averaging needs at least two checkpoints")
    shares = _shares(weights, len(paths))
    loaded = [load_checkpoint(path) for path in paths]
    first_model, first_card = loaded[0]
    for path, (_, card) in zip(paths[1:], loaded[1:]):
        _check_same_model(first_card, card, paths[0], path)
    states = [model.state_dict() for model, _ in loaded]
    averaged = {}
    for key, tensor in states[0].items():
        if tensor.is_floating_point():
            averaged[key] = sum(share * state[key].float() for share, state in zip(shares, states))
        else:  # counters (BatchNorm's num_batches_tracked): the largest, as if trained the longest
            averaged[key] = max((state[key] for state in states), key=lambda t: int(t.max()))
    first_model.float().load_state_dict(averaged, strict=True)
    return first_model, _averaged_card(first_card, loaded, paths, shares, name)


def _shares(weights: Sequence[float] | None, count: int) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise CheckpointError(f"give one weight of 0 or more per checkpoint ({count}), not all 0; got {list(weights)}")
    total = float(sum(weights))
    return [float(w) / total for w in weights]


def _check_same_model(first: ModelCard, other: ModelCard, first_path, other_path) -> None:
    for field in SAME_MODEL_FIELDS:
        if getattr(first, field) != getattr(other, field):
            raise CheckpointError(f"cannot average {other_path} with {first_path}: their {field} differs "
                                  f"({getattr(other, field)!r} against {getattr(first, field)!r})")


def _averaged_card(first: ModelCard, loaded, paths, shares, name: str) -> ModelCard:
    # Each part's own training record travels on: the average is only reproducible from its parts' recipes.
    parts = [{"model": str(path), "name": card.name, "weights_sha256": card.weights_sha256
              or _hash(path), "weight": round(share, 6), "training": card.training}
             for path, (_, card), share in zip(paths, loaded, shares)]
    return first.model_copy(update={
        "name": name or f"{first.name}-averaged",
        "threshold": 0.5, "video_threshold": None, "temperature": 1.0,
        "metrics": {}, "training": {"averaged_from": parts},
        "warnings": [NOT_CALIBRATED], "weights_sha256": "", "weights_dtype": "float32",
        "exported_from_sha256": "", "created": "",
    })


def _hash(path) -> str:
    from ..digest import file_sha256

    return file_sha256(resolve(path)[0])
