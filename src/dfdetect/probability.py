"""Log-odds and probabilities: the numbers a scan reports and training fits, on numpy alone.

Scanning imports this without evaluation code; calibration fitting (evaluate.calibration) builds on it.
"""

from __future__ import annotations

import numpy as np


def sigmoid(z) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))  # never overflows, unlike 1 / (1 + exp(-z))


def logit(p, eps: float = 1e-7) -> np.ndarray:
    """Inverse of sigmoid, with p clipped away from 0 and 1 so saturated probabilities stay finite."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)


def apply_temperature(logits, temperature: float) -> np.ndarray:
    """Calibrated P(fake) = sigmoid(logit / T), T fitted on validation data and stored in the model card."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return sigmoid(np.asarray(logits, dtype=np.float64) / temperature)


def binary_nll(logits, y, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (log loss) of labels y under P(fake) = sigmoid(logits / temperature)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    y = np.asarray(y, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))
