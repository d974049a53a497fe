"""Exported models: an .onnx file whose metadata holds the model card, run by ONNX Runtime.

The card travels inside the file (metadata key `dfdetect_card`), so an .onnx model is one file that
scans and evaluates exactly like its checkpoint. Reading it checks what can go wrong with a file that
was copied, cut short or swapped: it must parse, carry a valid card, and take (N, 3, S, S) images with
S the card's input size and give one output per image.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import CheckpointError
from .checkpoint import ModelCard

CARD_KEY = "dfdetect_card"


def load_onnx(path: str | Path, device: str = "cpu", threads: int | None = None):
    """(OnnxBackend, ModelCard); CheckpointError with one line for a file that does not fit."""
    from .predict import OnnxBackend

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX model not found: {path}")
    session = _session(path, device, threads)
    card = _card(session, path)
    _check_signature(session, card, path)
    twin_of = path.with_suffix("") if path.with_suffix(".safetensors").is_file() else None
    return OnnxBackend(session, device if _uses_cuda(session) else "cpu", checkpoint=twin_of), card


def onnx_twin(model: str | Path, device: str = "cpu", threads: int | None = None):
    """(OnnxBackend, card) of `<stem>.onnx` beside a checkpoint named by bundled name or stem, when that file
    carries the same weights (its card records the checkpoint's weight hash); None otherwise. The card is the
    checkpoint's, so that results name the model (and its weights' hash) as the PyTorch path does."""
    from .checkpoint import load_card, resolve

    if str(model).lower().endswith(".safetensors"):
        return None  # a weights file named outright asks for PyTorch
    try:
        weights, _ = resolve(model)
        twin = weights.with_suffix(".onnx")
        if not twin.is_file():
            return None
        checkpoint_card = load_card(model)
        backend, card = load_onnx(twin, device, threads)
    except CheckpointError:
        return None
    recorded = checkpoint_card.weights_sha256
    return (backend, checkpoint_card) if recorded and card.exported_from_sha256 == recorded else None


def _session(path: Path, device: str, threads: int | None):
    from ..onnx_session import open_session

    try:
        return open_session(path, device, threads)
    except Exception as exc:  # ONNX Runtime raises several types for unreadable models
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot load {path.name} as an ONNX model (corrupt, truncated or not ONNX: "
                              f"{reason})") from None


def _uses_cuda(session) -> bool:
    return session.get_providers()[0] == "CUDAExecutionProvider"


def _card(session, path: Path) -> ModelCard:
    from pydantic import ValidationError

    text = session.get_modelmeta().custom_metadata_map.get(CARD_KEY)
    if text is None:
        raise CheckpointError(f"{path.name} carries no dfdetect model card in its metadata; export models "
                              "with `dfdetect compress MODEL export`")
    try:
        return ModelCard.model_validate(json.loads(text))
    except (ValidationError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path.name}: invalid model card in its metadata "
                              f"({str(exc).splitlines()[0]})") from None


def _check_signature(session, card: ModelCard, path: Path) -> None:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    want = [3, card.input_size, card.input_size]
    if len(inputs) != 1 or len(inputs[0].shape) != 4 or list(inputs[0].shape[1:]) != want:
        got = ", ".join(f"{i.name}{list(i.shape)}" for i in inputs)
        raise CheckpointError(f"{path.name} does not match its card: it takes {got}, the card says "
                              f"[N, 3, {card.input_size}, {card.input_size}] images")
    if len(outputs) != 1 or len(outputs[0].shape) != 1:
        got = ", ".join(f"{o.name}{list(o.shape)}" for o in outputs)
        raise CheckpointError(f"{path.name} does not match its card: it gives {got}, expected one fake "
                              "logit per image")


def card_metadata(card: ModelCard) -> dict[str, str]:
    """What an exported file's metadata holds: the whole card as JSON."""
    return {CARD_KEY: card.model_dump_json()}
