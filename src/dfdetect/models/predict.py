"""The one inference path: face crops -> fake logits -> calibrated probabilities.

A `Backend` runs the network: a normalised (N, 3, H, W) float batch in, one fake logit per image out.
`TorchBackend` runs a torch module; `OnnxBackend` an ONNX Runtime session of an exported model
(`models/onnx_model.py` reads and checks the file). `load_backend` picks one from the model file.
A `Predictor` adds what every caller shares: the card's preprocessing, batching, flip TTA and temperature.
Scanning, `dfdetect evaluate` and training's validation all go through here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from ..probability import apply_temperature

if TYPE_CHECKING:
    import torch

    from .checkpoint import ModelCard

# torch is imported on first use, so that commands can offer these choices without loading it.
TTA_MODES = ("none", "flip")


class Backend(ABC):
    """Runs a classifier. `device` names where it runs ("cpu", "cuda:0", ...)."""

    device: str

    @abstractmethod
    def fake_logits(self, batch: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N, 3, H, W) float32 normalised images -> (N,) float32 log-odds of "fake"."""


class TorchBackend(Backend):
    """A torch module in eval mode for each batch (the caller's train/eval mode is restored after)."""

    def __init__(self, model: torch.nn.Module, device: str | torch.device | None = None, *,
                 channels_last: bool = False, autocast_dtype: torch.dtype | None = None):
        import torch

        self.model = model
        self.torch_device = torch.device(device) if device is not None else next(model.parameters()).device
        self.device = str(self.torch_device)
        self.channels_last = channels_last
        self.autocast_dtype = autocast_dtype

    def fake_logits(self, batch: np.ndarray | torch.Tensor) -> np.ndarray:
        import torch

        from .classifier import fake_logit

        if isinstance(batch, np.ndarray):
            batch = torch.from_numpy(batch)
        x = batch.to(self.torch_device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), _eval_mode(self.model), torch.autocast(
                self.torch_device.type, dtype=self.autocast_dtype or torch.float32,
                enabled=self.autocast_dtype is not None):
            out = fake_logit(self.model(x))
        return out.float().cpu().numpy()


class OnnxBackend(Backend):
    """An ONNX Runtime session of a model exported by `dfdetect compress ... export` (output: fake logits)."""

    def __init__(self, session, device: str = "cpu", checkpoint: Path | None = None):
        self.session = session
        self.device = device
        self.input_name = session.get_inputs()[0].name
        self.checkpoint = checkpoint  # the PyTorch checkpoint this file is the twin of (Grad-CAM needs it)
        self._torch_module = None

    def torch_module(self):
        """The twin's checkpoint as a torch module (loaded once), for what needs gradients (Grad-CAM)."""
        from ..devices import torch_available
        from ..errors import DfdetectError

        if self.checkpoint is None:
            raise DfdetectError("this ONNX model is no checkpoint's twin: Grad-CAM needs a PyTorch model")
        if not torch_available():
            raise DfdetectError("Grad-CAM heat maps need PyTorch, which this install leaves out: "
                                "pip install 'dfdetect[train]'")
        if self._torch_module is None:
            from .checkpoint import load_checkpoint

            self._torch_module, _ = load_checkpoint(self.checkpoint)
        return self._torch_module

    def fake_logits(self, batch) -> np.ndarray:
        x = batch.numpy() if hasattr(batch, "numpy") else np.asarray(batch)
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return np.asarray(out, dtype=np.float32).reshape(-1)


def is_onnx(model) -> bool:
    return str(model).lower().endswith(".onnx")


def load_backend(model: str | Path = "default", device: str = "cpu", *, channels_last: bool = False,
                 threads: int | None = None) -> tuple[Backend, "ModelCard"]:
    """(backend, model card) for an .onnx file (ONNX Runtime) or a checkpoint (name, stem or .safetensors).

    A checkpoint with an ONNX twin beside it (`<stem>.onnx` carrying the same card, as the bundled models
    have) runs on ONNX Runtime on the CPU, where it is several times faster, and wherever PyTorch is not
    installed; on a GPU it runs in PyTorch. Name the .safetensors file to insist on PyTorch.
    `threads` bounds ONNX Runtime's intra-op threads (None: its default)."""
    from ..devices import torch_available
    from .onnx_model import load_onnx, onnx_twin

    if is_onnx(model):
        return load_onnx(model, device, threads=threads)
    has_torch = torch_available()
    if device == "cpu" or not has_torch:
        twin = onnx_twin(model, "cpu", threads)
        if twin is not None:
            return twin
    if not has_torch:
        from ..errors import CheckpointError

        raise CheckpointError(f"{model} is a PyTorch checkpoint and this install runs ONNX models only: "
                              "pip install 'dfdetect[train]', or export it with `dfdetect compress MODEL export`")
    from .checkpoint import load_checkpoint

    net, card = load_checkpoint(model, device=device)
    return TorchBackend(net, device, channels_last=channels_last), card


def as_backend(model, device: str | None = None, **options) -> Backend:
    """A Backend as given, or a torch module wrapped in a TorchBackend."""
    return model if isinstance(model, Backend) else TorchBackend(model, device, **options)


@contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class Predictor:
    """Face crops (RGB uint8, letterboxed to `input_size`) -> logits or calibrated P(fake)."""

    def __init__(self, backend: Backend, *, input_size: int, mean: Sequence[float], std: Sequence[float],
                 temperature: float = 1.0, batch_size: int = 32, tta: str | bool = "none"):
        tta = {True: "flip", False: "none", None: "none"}.get(tta, tta)
        if tta not in TTA_MODES:
            raise ValueError(f"unknown test-time augmentation {tta!r}; use 'flip' or none")
        self.backend, self.input_size, self.mean, self.std = backend, input_size, mean, std
        self.temperature, self.batch_size, self.flip = temperature, batch_size, tta == "flip"

    @classmethod
    def for_card(cls, backend: Backend, card, **options) -> "Predictor":
        """Preprocessing and temperature as the model card says."""
        options.setdefault("temperature", card.temperature)
        return cls(backend, input_size=card.input_size, mean=card.mean, std=card.std, **options)

    def batch_logits(self, batch: np.ndarray) -> np.ndarray:
        """Logits of one normalised (N, 3, H, W) batch; with flip TTA the mean of each image's and its mirror's."""
        z = self.backend.fake_logits(batch)
        if self.flip:
            z = (z + self.backend.fake_logits(np.ascontiguousarray(batch[..., ::-1]))) / 2
        return z

    def logits(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Raw fake logits (float32), batch by batch."""
        from .preprocess import normalise

        if len(crops) == 0:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate([
            self.batch_logits(normalise(crops[start:start + self.batch_size], self.mean, self.std))
            for start in range(0, len(crops), self.batch_size)
        ])

    def calibrate(self, logits) -> np.ndarray:
        return apply_temperature(logits, self.temperature)

    def probabilities(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated probability that each crop is fake."""
        return self.calibrate(self.logits(crops))
