"""How the bundled default model is made from a trained run:

    python -m dfdetect.models.bundled RUN/model [--test RUN/eval-test/metrics.json] [--out PATH]

The run's weights are stored in half precision (half the size; scores move by well under 0.01) and its card
keeps the training record, the validation metrics, the temperature and threshold fitted on validation, and
the test metrics when given. The held-out figures and the limits travel with the model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import CheckpointError, DfdetectError
from .checkpoint import NAMED_MODELS, load_checkpoint, save_checkpoint

DEFAULT_NAME = "dfdetect-default-lite0"
LIMITS = [
    "Trained and validated only on DFDC face crops (face swaps made by the DFDC organisers, paid actors); "
    "accuracy on other manipulations (FaceForensics++ methods, Celeb-DF, GAN-made faces, lip-sync) is not "
    "measured here and is expected to be lower.",
    "Faces unlike DFDC's webcam-style footage can score as fake: the retouched studio portrait behind "
    "`dfdetect sample` (scikit-image's astronaut) scores 0.78 as a still and about 0.9 in the sample clip.",
    "Threshold and temperature were fitted on single crops; person and video scores use them as they are.",
    "Expects faces cropped as its card's `crop` says; very small, profile or occluded faces score less "
    "reliably.",
]


def bundle_run(checkpoint: str | Path, test_metrics: str | Path | None = None,
               out: str | Path = NAMED_MODELS["default"], name: str = DEFAULT_NAME) -> tuple[Path, Path]:
    model, card = load_checkpoint(checkpoint)
    if not card.trained_for_deepfakes:
        raise CheckpointError(f"{checkpoint} is not trained for deepfakes; only trained runs are bundled")
    metrics = {"validation": card.metrics}
    if test_metrics:
        metrics["test"] = test_summary(test_metrics)
    training = dict(card.training, bundled_from=str(checkpoint),
                    made_by=f"python -m dfdetect.models.bundled {checkpoint}")
    bundled = card.model_copy(update={"name": name, "metrics": metrics, "training": training,
                                      "limits": LIMITS + [x for x in card.limits if x not in LIMITS],
                                      "weights_sha256": ""})
    return save_checkpoint(model, bundled, out, half=True)


def test_summary(path: str | Path) -> dict:
    """The frame-level headline figures of a `dfdetect evaluate` metrics.json."""
    try:
        report = json.loads(Path(path).read_text())
        level = report["levels"]["frame"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DfdetectError(f"{path} is not the metrics.json of `dfdetect evaluate` ({type(exc).__name__}: {exc})") from None
    keys = ("n", "auc", "accuracy", "log_loss", "eer", "ece", "sensitivity", "specificity", "f1")
    summary = {key: level[key] for key in keys if key in level}
    summary.update(split=report.get("info", {}).get("split", "test"), level="frame",
                   tta=report.get("info", {}).get("tta", "none"))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdetect.models.bundled", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="the trained run's checkpoint, e.g. runs/default_lite0/model")
    parser.add_argument("--test", help="metrics.json of `dfdetect evaluate` on the held-out test split")
    parser.add_argument("--out", default=str(NAMED_MODELS["default"]), help="stem to write (default: the bundled model)")
    parser.add_argument("--name", default=DEFAULT_NAME)
    args = parser.parse_args(argv)
    try:
        paths = bundle_run(args.checkpoint, args.test, args.out, args.name)
    except DfdetectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
