"""Models: backbone factory, heads, the checkpoint format (safetensors + JSON card)."""

from .checkpoint import (
    NAMED_MODELS, ModelCard, available_models, load_card, load_checkpoint, resolve, save_checkpoint, user_models_dir,
)
from .classifier import DeepfakeClassifier, create_model, fake_logit
from .heads import HEADS
from .zoo import BACKBONES, BackboneSpec

__all__ = [
    "BACKBONES", "BackboneSpec", "DeepfakeClassifier", "HEADS", "ModelCard", "NAMED_MODELS",
    "available_models", "create_model", "load_card", "user_models_dir", "fake_logit", "load_checkpoint", "resolve", "save_checkpoint",
]
