"""Smaller and faster ONNX models: int8 through ONNX Runtime's quantiser, and fp16.

static int8: weights per channel and activations quantised with ranges measured on real face crops, in
ONNX Runtime's QOperator format (integer operators: QLinearConv) or QDQ (Quantize/Dequantize pairs around
float operators, which ONNX Runtime fuses where it can). On the 2-core CPU QOperator ran the bundled model's
32-face batch in 0.085 s against 0.128 s for QDQ, with the same scores (benchmarks/results/int8_formats_cpu.md). dynamic int8: weights only,
activations quantised on the fly; the fallback when no crops are at hand. fp16: weights and compute in
half precision with float32 inputs and outputs (mostly a size win on CPUs, a speed win on GPUs).
fp16-weights: weights stored in half precision and cast back to float32 when ONNX Runtime loads the file
(it folds the casts once): half the file and the float model's speed. From a checkpoint whose weights are
stored in half precision (the bundled models) exported with `export:fold=false`, the scores are the
checkpoint's exactly; batch norms folded at export would be rounded (p(fake) off by up to 0.005).
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

MODES = ("static", "dynamic", "fp16", "fp16-weights")
FORMATS = ("qoperator", "qdq")


def quantize(source: Path, out: Path, card: ModelCard, mode: str = "static",
             calibration: Sequence[np.ndarray] | None = None, method: str = "minmax",
             format: str = "qoperator") -> tuple[ModelCard, dict]:
    """Write the quantised `out` from the float32 `source` .onnx; returns the card it carries and what
    was done ({"mode": ...}, with "fallback" when static quantisation failed and dynamic was used)."""
    if mode not in MODES:
        raise ConfigError(f"quantize: mode must be one of {', '.join(MODES)}, got {mode!r}")
    if format not in FORMATS:
        raise ConfigError(f"quantize: format must be one of {', '.join(FORMATS)}, got {format!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {"mode": mode}
    if mode == "fp16":
        _to_fp16(source, out)
    elif mode == "fp16-weights":
        _fp16_weights(source, out)
    elif mode == "static":
        if not calibration:
            raise ConfigError("quantize: static int8 needs calibration crops (--manifest), or use mode=dynamic")
        try:
            _static_int8(source, out, card, calibration, method, format)
            done["calibration"] = {"method": method, "crops": len(calibration)}
            done["format"] = format
        except ConfigError:
            raise
        except Exception as exc:  # the quantiser fails in many ways on unusual graphs: weights-only int8 still works
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            print(f"warning: static int8 failed ({reason}); falling back to dynamic int8", file=sys.stderr)
            _dynamic_int8(source, out)
            done.update(mode="dynamic", fallback=f"static failed: {reason}")
    else:
        _dynamic_int8(source, out)
    card = card.model_copy(update={"weights_dtype": "float16" if mode.startswith("fp16") else "int8"})
    write_card(out, card)
    return card, done


def _dynamic_int8(source: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8)


def _static_int8(source: Path, out: Path, card: ModelCard, crops: Sequence[np.ndarray], method: str,
                 format: str = "qoperator") -> None:
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
        quant_format = QuantFormat.QOperator if format == "qoperator" else QuantFormat.QDQ
        quantize_static(str(prepared), str(out), _CropReader(crops, card), quant_format=quant_format,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=methods[method],
                        # histogram methods keep every activation until collected: collect every 4 batches
                        extra_options={"CalibMaxIntermediateOutputs": 4})


def _to_fp16(source: Path, out: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.save(model, str(out))


def _fp16_weights(source: Path, out: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    casts, kept = [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            kept.append(init)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "_fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                      name=init.name + "_to_fp32"))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))


class _CropReader:
    """ONNX Runtime's calibration data reader over face crops, preprocessed as the card says."""

    def __init__(self, crops: Sequence[np.ndarray], card: ModelCard, batch_size: int = 16):
        from ..models.preprocess import normalise

        self.batches = iter([
            {"image": normalise(crops[i:i + batch_size], card.mean, card.std)}
            for i in range(0, len(crops), batch_size)
        ])

    def get_next(self):
        return next(self.batches, None)
