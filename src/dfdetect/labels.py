"""The label map: every spelling of real and fake that datasets use, and the numbers (fake = 1)."""

from __future__ import annotations

LABELS = ("real", "fake")
FAKE = 1

LABEL_ALIASES = {
    "real": "real", "0": "real", "0_real": "real", "original": "real", "pristine": "real", "false": "real",
    "fake": "fake", "1": "fake", "1_fake": "fake", "deepfake": "fake", "manipulated": "fake", "true": "fake",
}


def label_name(value) -> str | None:
    """"real", "fake", or None for an unknown spelling; numbers read from text ("1.0") count too."""
    text = str(value).strip().lower()
    if text.endswith(".0"):
        text = text[:-2]
    return LABEL_ALIASES.get(text)
