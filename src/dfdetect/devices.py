"""One rule for turning a device request ("auto", "cpu", "cuda", "cuda:1") into a device."""

from __future__ import annotations

from .errors import ConfigError


def resolve_device(device: str | None) -> str:
    """"auto" (or nothing) -> "cuda" when a GPU is usable, else "cpu"; an explicit CUDA device must exist."""
    import torch

    device = (device or "auto").lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for but no CUDA GPU is usable here; use --device cpu or auto")
    return device


def torch_device(device: str | None):
    """resolve_device as a torch.device."""
    import torch

    return torch.device(resolve_device(device))
