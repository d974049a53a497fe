"""dfdetect: face-manipulation deepfake detection with EfficientNet-family CNNs."""

import os

# Offline first: nothing reaches the network unless the user asks for hub weights.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy so that `import dfdetect` stays cheap (no torch import) for the CLI's --help.
    if name in ("Detector", "ScanResult"):
        from . import api, results

        return {"Detector": api.Detector, "ScanResult": results.ScanResult}[name]
    raise AttributeError(name)


__all__ = ["Detector", "ScanResult", "__version__"]
