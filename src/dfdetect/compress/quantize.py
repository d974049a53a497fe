"""Smaller and faster ONNX models: int8 through ONNX Runtime's quantiser, and fp16.

static int8: weights per channel and activations quantised with ranges measured on real face crops
(QDQ format; ONNX Runtime fuses it into integer convolutions on the CPU). dynamic int8: weights only,
activations quantised on the fly; the fallback when no crops are at hand. fp16: weights and compute in
half precision with float32 inputs and outputs (mostly a size win on CPUs, a speed win on GPUs).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from ..models.checkpoint import ModelCard
from .export import write_card

MODES = ("static", "dynamic", "fp16")


def quantize(source: Path, out: Path, card: ModelCard, mode: str = "static",
             calibration: Sequence[np.ndarray] | None = None, method: str = "minmax") -> tuple[ModelCard, dict]:
    """Write the quantised `out` from the float32 `source` .onnx; returns the card it carries and what
    was done ({"mode": ...}, with "fallback" when static quantisation failed and dynamic was used)."""
    if mode not in MODES:
        raise ConfigError(f"quantize: mode must be one of {', '.join(MODES)}, got {mode!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {"mode": mode}
    if mode == "fp16":
        _to_fp16(source, out)
    elif mode == "static":
        if not calibration:
            raise ConfigError("quantize: static int8 needs calibration crops (--manifest), or use mode=dynamic")
        try:
            _static_int8(source, out, card, calibration, method)
            done["calibration"] = {"method": method, "crops": len(calibration)}
        except ConfigError:
            raise
        except Exception as exc:  # the quantiser fails in many ways on unusual graphs: weights-only int8 still works
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            print(f"warning: static int8 failed ({reason}); falling back to dynamic int8", file=sys.stderr)
            _dynamic_int8(source, out)
            done.update(mode="dynamic", fallback=f"static failed: {reason}")
    else:
        _dynamic_int8(source, out)
    card = card.model_copy(update={"weights_dtype": "float16" if mode == "fp16" else "int8"})
    write_card(out, card)
    return card, done


def _dynamic_int8(source: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8)


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
