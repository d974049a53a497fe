"""Models: backbone factory, heads, the checkpoint format (safetensors + JSON card).

The names that need PyTorch (classifier, heads, backbones) load on first use, so that the light install,
which runs models through ONNX Runtime, can import the checkpoint format and the card."""

from .checkpoint import (
    NAMED_MODELS, ModelCard, available_models, load_card, load_checkpoint, resolve, save_checkpoint, user_models_dir,
)

_NEED_TORCH = {"DeepfakeClassifier": "classifier", "create_model": "classifier", "fake_logit": "classifier",
               "HEADS": "heads", "BACKBONES": "zoo", "BackboneSpec": "zoo"}

__all__ = [
    "BACKBONES", "BackboneSpec", "DeepfakeClassifier", "HEADS", "ModelCard", "NAMED_MODELS",
    "available_models", "create_model", "load_card", "user_models_dir", "fake_logit", "load_checkpoint", "resolve", "save_checkpoint",
]


def __getattr__(name: str):
    if name in _NEED_TORCH:
        import importlib

        return getattr(importlib.import_module(f".{_NEED_TORCH[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
