"""ONNX Runtime sessions as dfdetect opens them, for the classifier and the face detector alike."""

from __future__ import annotations

from pathlib import Path


def open_session(path: str | Path, device: str = "cpu", threads: int | None = None):
    """An InferenceSession on the CPU, or on CUDA for a "cuda[:N]" device where the installed onnxruntime has
    it. threads: intra-op threads (None: ONNX Runtime's default, one per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # callers turn failures into one line of their own
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    # Threads that spin while they wait cost the most where the CPU is shared (a laptop, the scan's decoding
    # thread): on the busy 2-core machine, P-Net ran markedly slower with spinning threads (a one-off timing).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers: list = ["CPUExecutionProvider"]
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        index = int(device.split(":")[1]) if ":" in device else 0
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": index}))
    return ort.InferenceSession(str(path), options, providers=providers)
