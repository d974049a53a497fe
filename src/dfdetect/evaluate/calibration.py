"""Temperature scaling (one scalar T: P(fake) = sigmoid(logit / T)) and decision-threshold rules.

Fit both on a validation split, never on the split that is being reported: a threshold or temperature chosen on
the test set makes the test figures optimistic.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..errors import ConfigError
from ..probability import apply_temperature, binary_nll, logit, sigmoid  # noqa: F401  (re-exported)
from ..registry import Registry
from .metrics import _check, _need_both_classes, equal_error_rate, roc_curve

TEMPERATURE_BOUNDS = (0.05, 20.0)


def fit_temperature(logits, y, bounds: tuple[float, float] = TEMPERATURE_BOUNDS, tol: float = 1e-6) -> float:
    """The temperature that minimises validation NLL, by a bounded scalar search (scipy) on log T within ``bounds``.

    NLL is convex in 1/T, hence unimodal in log T, so the search cannot stop in a false minimum. Perfectly
    separated data push T to the lower bound (sharper is always better there); that bound keeps it finite.
    """
    y = np.asarray(y)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 1 or len(logits) != len(y) or len(y) == 0:
        raise ValueError(f"need equally long non-empty 1-D logits and labels (got {logits.shape} and {y.shape})")
    if not np.isfinite(logits).all():
        raise ValueError("logits must be finite")
    lo, hi = math.log(bounds[0]), math.log(bounds[1])

    def nll(log_t: float) -> float:
        return binary_nll(logits, y, math.exp(log_t))

    from scipy.optimize import minimize_scalar

    found = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": tol})
    # The bounded search never evaluates the ends themselves, where separated data put the optimum.
    best = min((nll(lo), lo), (nll(hi), hi), (float(found.fun), float(found.x)))[1]
    return float(math.exp(best))


# ---------------------------------------------------------------- thresholds

THRESHOLD_RULES: Registry[Callable[[np.ndarray, np.ndarray], float]] = Registry("threshold rule")


@THRESHOLD_RULES.register("eer")
def eer_threshold(y, p) -> float:
    """Where false-positive and false-negative rates are equal (seed 002's choice)."""
    return equal_error_rate(y, p)[1]


@THRESHOLD_RULES.register("youden")
def youden_threshold(y, p) -> float:
    """Maximises Youden's J = sensitivity + specificity - 1; the highest such threshold on ties."""
    y, p = _check(y, p)
    _need_both_classes(y, "Youden's J")
    fpr, tpr, thresholds = roc_curve(y, p)
    j = (tpr - fpr)[1:]  # the first point (+inf, nothing called fake) is no usable threshold
    return float(thresholds[1:][int(np.argmax(j))])


def choose_threshold(y, p, rule: str | float = "eer") -> float:
    """A threshold by rule name ("eer", "youden") or a fixed number (a float, or a string such as "0.5")."""
    if isinstance(rule, (int, float)):
        fixed = float(rule)
    else:
        try:
            fixed = float(rule)
        except ValueError:
            return THRESHOLD_RULES.get(rule)(y, p)
    if not 0.0 <= fixed <= 1.0:
        raise ConfigError(f"threshold {fixed} is outside [0, 1]; give a probability or one of "
                          f"{', '.join(THRESHOLD_RULES.names())}")
    return fixed
