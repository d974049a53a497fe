"""How the bundled default model is made from a trained run:

    python -m dfdetect.models.bundled RUN/model [--test RUN/eval-test/metrics.json]
        [--sources benchmarks/results/source_figures.json] [--out PATH]

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
               out: str | Path = NAMED_MODELS["default"], name: str = DEFAULT_NAME,
               source_figures: str | Path | None = None) -> tuple[Path, Path]:
    model, card = load_checkpoint(checkpoint)
    if not card.trained_for_deepfakes:
        raise CheckpointError(f"{checkpoint} is not trained for deepfakes; only trained runs are bundled")
    metrics = {"validation": card.metrics}
    if test_metrics:
        metrics["test"] = test_summary(test_metrics)
    if source_figures:
        metrics["per_source"] = per_source_summary(source_figures, str(checkpoint))
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


def per_source_summary(path: str | Path, model: str) -> dict:
    """The headline figures per source that benchmarks/source_figures.py measured for `model`."""
    try:
        figures = json.loads(Path(path).read_text())[model]
        real = figures["real_faces"]
        summary = {
            "real_faces": {"n": real["n"], "called_fake": real["fpr"], "worst_group": real["worst"],
                           "groups": real["groups"]},
            "sample_clip": figures["sample_clip"],
            "dfdc_clips": {"right": sum(c["verdict"] == c["label"] for c in figures["dfdc_clips"]),
                           "of": len(figures["dfdc_clips"])},
            "dfdc_crops_test": figures["dfdc_crops"],
            "ffpp_video_auc": {scope: {method: cell["auc"] for method, cell in per.items()}
                               for scope, per in figures["ffpp_clips"]["auc"].items()},
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DfdetectError(f"{path} holds no figures for {model} from benchmarks/source_figures.py "
                            f"({type(exc).__name__}: {exc})") from None
    summary["measured_by"] = f"benchmarks/source_figures.py ({Path(path).name})"
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdetect.models.bundled", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="the trained run's checkpoint, e.g. runs/default_lite0/model")
    parser.add_argument("--test", help="metrics.json of `dfdetect evaluate` on the held-out test split")
    parser.add_argument("--out", default=str(NAMED_MODELS["default"]), help="stem to write (default: the bundled model)")
    parser.add_argument("--name", default=DEFAULT_NAME)
    parser.add_argument("--sources", help="the JSON of benchmarks/source_figures.py with this checkpoint's figures")
    args = parser.parse_args(argv)
    try:
        paths = bundle_run(args.checkpoint, args.test, args.out, args.name, args.sources)
    except DfdetectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
