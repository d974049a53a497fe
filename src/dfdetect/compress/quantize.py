"""Smaller and faster ONNX models: int8 through ONNX Runtime's quantiser, and fp16.

static int8: weights per channel and activations quantised with ranges measured on real face crops
(QDQ format; ONNX Runtime fuses it into integer convolutions on the CPU). dynamic int8: weights only,
activations quantised on the fly; the fallback when no crops are at hand. fp16: weights and compute in
half precision with float32 inputs and outputs (mostly a size win on CPUs, a speed win on GPUs).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from ..models.checkpoint import ModelCard
from .export import write_card

MODES = ("static", "dynamic", "fp16")


def quantize(source: Path, out: Path, card: ModelCard, mode: str = "static",
             calibration: Sequence[np.ndarray] | None = None, method: str = "minmax") -> ModelCard:
    """Write the quantised `out` from the float32 `source` .onnx; returns the card it carries."""
    if mode not in MODES:
        raise ConfigError(f"quantize: mode must be one of {', '.join(MODES)}, got {mode!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if mode == "fp16":
        _to_fp16(source, out)
        dtype = "float16"
    elif mode == "static":
        if not calibration:
            raise ConfigError("quantize: static int8 needs calibration crops (--manifest), or use mode=dynamic")
        _static_int8(source, out, card, calibration, method)
        dtype = "int8"
    else:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8)
        dtype = "int8"
    card = card.model_copy(update={"weights_dtype": dtype})
    write_card(out, card)
    return card


def _static_int8(source: Path, out: Path, card: ModelCard, crops: Sequence[np.ndarray], method: str) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    if method not in methods:
        raise ConfigError(f"quantize: method must be one of {', '.join(methods)}, got {method!r}")
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference and graph folding first, as ONNX Runtime recommends before quantising.
        quant_pre_process(str(source), str(prepared))
        quantize_static(str(prepared), str(out), _CropReader(crops, card), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=methods[method],
                        # histogram methods keep every activation until collected: collect every 4 batches
                        extra_options={"CalibMaxIntermediateOutputs": 4})


def _to_fp16(source: Path, out: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.save(model, str(out))


class _CropReader:
    """ONNX Runtime's calibration data reader over face crops, preprocessed as the card says."""

    def __init__(self, crops: Sequence[np.ndarray], card: ModelCard, batch_size: int = 16):
        from ..models.preprocess import to_tensor

        self.batches = iter([
            {"image": to_tensor(crops[i:i + batch_size], card.mean, card.std).numpy()}
            for i in range(0, len(crops), batch_size)
        ])

    def get_next(self):
        return next(self.batches, None)
