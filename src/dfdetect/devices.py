"""One rule for turning a device request ("auto", "cpu", "cuda", "cuda:1") into a device."""

from __future__ import annotations

import re

from .errors import ConfigError

DEVICE_FORMS = "auto, cpu, cuda or cuda:N"
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


def check_device_name(device: str | None) -> str:
    """The request in lower case, or a ConfigError for a name torch would not know ("gpu", "cuda1")."""
    device = (device or "auto").strip().lower()
    if not _DEVICE.fullmatch(device):
        hint = " (did you mean cuda?)" if device.startswith(("gpu", "nvidia", "cuda")) else ""
        raise ConfigError(f"unknown device {device!r}; use {DEVICE_FORMS}{hint}")
    return device


def resolve_device(device: str | None) -> str:
    """"auto" (or nothing) -> "cuda" when a GPU is usable, else "cpu"; an explicit CUDA device must exist.
    Without PyTorch (the light install runs on ONNX Runtime's CPU backend) "auto" is the CPU."""
    device = check_device_name(device)
    if not torch_available():
        if device in ("auto", "cpu"):
            return "cpu"
        raise ConfigError(f"device {device!r} needs PyTorch, which this install leaves out: "
                          "pip install 'dfdetect[train]' (or use --device cpu)")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for but no CUDA GPU is usable here; use --device cpu or auto")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s) "
                          "(cuda:0 is the first)")
    return device


def device_option(text: str) -> str:
    """An argparse type: a wrong device name fails with the usage line, before anything loads."""
    import argparse

    try:
        return check_device_name(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def torch_available() -> bool:
    """Whether PyTorch is installed (the light install runs on ONNX Runtime without it); imports nothing."""
    import importlib.util

    try:
        return importlib.util.find_spec("torch") is not None
    except ImportError:  # an import hook that refuses torch
        return False


def limit_torch_threads(threads: int) -> None:
    """Bound torch's CPU threads in this process, where torch is installed."""
    if torch_available():
        import torch

        torch.set_num_threads(max(1, threads))


def torch_device(device: str | None):
    """resolve_device as a torch.device."""
    import torch

    return torch.device(resolve_device(device))
