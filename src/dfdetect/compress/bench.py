"""Models side by side: parameters, file size, MACs, CPU latency per batch of faces, test metrics.

Latency is the median of timed runs of one batch of real, preprocessed face crops through the model's
backend (PyTorch eager or ONNX Runtime) after warm-up runs, with the thread count fixed and stated.
Preprocessing and decoding are left out: they are the same for every model.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass
class ModelFigures:
    model: str
    arch: str
    runtime: str
    dtype: str
    params: int
    size_mb: float
    macs: int | None
    latency_s: float
    latency_spread_s: tuple[float, float]
    threads: int
    auc: float | None = None
    accuracy: float | None = None
    log_loss: float | None = None
    crops: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def measure(model: str, *, threads: int, batch: int = 32, runs: int = 10, warmup: int = 3,
            rows=None, eval_batch: int = 64, workers: int = 2) -> ModelFigures:
    """Figures of one model; `rows` (manifest rows of crops with labels) adds AUC, accuracy and log loss."""
    import torch

    from ..models.predict import OnnxBackend, load_backend
    from .data import crop_images

    torch.set_num_threads(threads)
    backend, card = load_backend(model, "cpu", threads=threads)
    on_onnx = isinstance(backend, OnnxBackend)  # an .onnx file, or a checkpoint's ONNX twin
    crops = crop_images(rows.head(batch), card) if rows is not None else _astronaut_batch(card, batch)
    times = _latencies(backend, card, crops, runs, warmup)
    figures = ModelFigures(
        model=str(model), arch=card.arch, runtime="onnxruntime" if on_onnx else "pytorch",
        dtype=card.weights_dtype if on_onnx else "float32", params=card.params,
        size_mb=round(_file_size(model, backend) / 1e6, 2), macs=_macs(backend, card),
        latency_s=round(statistics.median(times), 4),
        latency_spread_s=(round(min(times), 4), round(max(times), 4)), threads=threads,
    )
    if rows is not None:
        figures = _with_metrics(figures, backend, card, rows, eval_batch, workers)
    return figures


def _latencies(backend, card, crops, runs: int, warmup: int) -> list[float]:
    from ..models.preprocess import to_tensor

    batch = to_tensor(crops, card.mean, card.std)
    for _ in range(warmup):
        backend.fake_logits(batch)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        backend.fake_logits(batch)
        times.append(time.perf_counter() - start)
    return times


def _with_metrics(figures: ModelFigures, backend, card, rows, batch: int, workers: int) -> ModelFigures:
    from ..commands.evaluate import predict_logits
    from ..data.dataset import labels_of
    from ..evaluate.metrics import compute_metrics
    from ..probability import apply_temperature

    logits = predict_logits(backend, card, rows["path"].tolist(), batch_size=batch, workers=workers,
                            progress=False)
    m = compute_metrics(labels_of(rows), apply_temperature(logits, card.temperature), card.threshold)
    figures.auc, figures.accuracy, figures.log_loss = m["auc"], m["accuracy"], m["log_loss"]
    figures.crops = len(rows)
    return figures


def _file_size(model: str, backend) -> int:
    """Of the file that runs: an .onnx, a checkpoint's weights, or the ONNX twin that stands in for them."""
    from ..models import resolve
    from ..models.predict import is_onnx

    if is_onnx(model):
        return Path(model).stat().st_size
    twin = getattr(backend, "checkpoint", None)
    return (twin.with_suffix(".onnx") if twin is not None else resolve(model)[0]).stat().st_size


def _macs(backend, card) -> int | None:
    """Counted on a PyTorch model (an ONNX twin's checkpoint); an exported one reports what its card recorded
    before export."""
    model = getattr(backend, "model", None)
    if model is None and getattr(backend, "checkpoint", None) is not None:
        from ..models import load_checkpoint

        model = load_checkpoint(backend.checkpoint)[0]
    if model is not None:
        from .prune import count_macs_params

        return count_macs_params(model, card.input_size)[0]
    recorded = [step["macs"] for step in card.compression if "macs" in step]
    return recorded[-1] if recorded else None


def _astronaut_batch(card, batch: int) -> list[np.ndarray]:
    """A real face (scikit-image's astronaut) when no manifest is given; latency does not depend on content."""
    from skimage.data import astronaut

    from ..faces.crop import letterbox

    face = letterbox(astronaut()[0:220, 150:330], card.input_size)
    return [face] * batch


def markdown_table(rows: list[ModelFigures], labels: list[str] | None = None) -> str:
    def number(value, digits=4):
        return "n/a" if value is None else f"{value:.{digits}f}"

    head = ("| model | runtime | weights | params (M) | file (MB) | MMACs | latency / batch (s) "
            "| min-max (s) | AUC | accuracy | log loss |\n|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for i, f in enumerate(rows):
        label = labels[i] if labels else f.model
        lines.append(
            f"| {label} | {f.runtime} | {f.dtype} | {f.params / 1e6:.2f} | {f.size_mb:.2f} | "
            f"{'n/a' if f.macs is None else round(f.macs / 1e6)} | {f.latency_s:.3f} | "
            f"{f.latency_spread_s[0]:.3f}-{f.latency_spread_s[1]:.3f} | {number(f.auc)} | {number(f.accuracy)} | "
            f"{number(f.log_loss)} |")
    return "\n".join(lines)
