"""How models hold up when faces reach them small and compressed: the pool's held-out test crops scored as they are
and after fixed degradations (data/degrade.py's down-scale, JPEG / H.264 and up-scale, the training's own
resolution and codec variety at set values), several models side by side in one run.

    python benchmarks/degradation.py runs/pool_v2.csv --models default,runs/hid/pool_kd/calibrated \
        [--dfdc 800] [--out benchmarks/results/degradation.md]

Per model and condition: ROC-AUC on the DFDC and FF++ test crops (groups never trained on), and the share of
real crops called fake at the card's threshold, per source (DFDC reals, FF++ reals, held-back real-faces photos).
Crops are scored one by one as cropped (no flip TTA), with the card's temperature. A JSON of every figure is
written beside the report; models it already holds (for the same crops) are not measured again.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from machine import describe_machine  # benchmarks/machine.py, beside this script

from dfdetect.errors import DfdetectError

REPO = Path(__file__).resolve().parents[1]
# name: (scale of the side, codec, quality: JPEG quality or H.264 CRF)
CONDITIONS = {"as cropped": (1.0, None, None),
              "JPEG q50": (1.0, "jpeg", 50),
              "0.5x, JPEG q50": (0.5, "jpeg", 50),
              "H.264 CRF 35": (1.0, "h264", 35),
              "0.25x, H.264 CRF 30": (0.25, "h264", 30)}
AUC_SOURCES = ("dfdc", "ffpp")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pool", type=Path, help="the pool manifest (dfdetect pool) with a test split")
    p.add_argument("--models", default="default", help="comma-separated checkpoints")
    p.add_argument("--dfdc", type=int, default=800, help="DFDC test crops, half real and half fake")
    p.add_argument("--fresh", action="store_true", help="measure again models the output JSON already holds")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "degradation.md")
    args = p.parse_args()

    rows = test_rows(args.pool, args.dfdc)
    started = describe_machine()
    # Models an earlier run with the same crops measured into the same file are kept (figures, not timings).
    saved = args.out.with_suffix(".json")
    known = json.loads(saved.read_text()) if saved.exists() and not args.fresh else {}
    known = known if known.get("crops") == crop_counts(rows) else {}
    models = args.models.split(",")
    crops = None  # per condition, made once and only when a model is to be measured
    figures = {}
    try:
        for model in models:
            if model not in known.get("models", {}):
                if crops is None:
                    originals = read_crops(rows)
                    crops = {name: [degrade(image, *setting) for image in originals]
                             for name, setting in CONDITIONS.items()}
                known.setdefault("models", {})[model] = {name: figures_of(score(model, images), rows)
                                                         for name, images in crops.items()}
            figures[model] = known["models"][model]
    except (DfdetectError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # The JSON keeps every model measured on these crops, not only this run's: a later run can list them again.
    kept = {**known.get("models", {}), **figures}
    saved.write_text(json.dumps({"crops": crop_counts(rows), "models": kept}, indent=2))
    args.out.write_text(report(figures, rows, args, started))
    print(f"wrote {args.out} and {saved}", file=sys.stderr)
    return 0


def crop_counts(rows: pd.DataFrame) -> dict:
    return {f"{source} {label}": int(n) for (source, label), n in rows.groupby(["dataset", "label"]).size().items()}


def test_rows(pool: Path, dfdc: int) -> pd.DataFrame:
    from dfdetect.data.manifest import read_manifest

    test = read_manifest(pool)
    test = test[test["split"] == "test"]
    is_dfdc = test["dataset"] == "dfdc"
    sampled = [part.sample(min(len(part), dfdc // 2), random_state=0) for _, part in test[is_dfdc].groupby("label")]
    return pd.concat([*sampled, test[~is_dfdc]]).reset_index(drop=True)


def read_crops(rows: pd.DataFrame) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.open(path).convert("RGB")) for path in rows["path"]]


def degrade(image: np.ndarray, scale: float, codec: str | None, quality: int | None) -> np.ndarray:
    import cv2

    from dfdetect.data.degrade import ResolutionAndCodec

    if codec is None and scale == 1.0:
        return image
    return ResolutionAndCodec(p=1.0).apply(image, scale=scale, video=codec == "h264", quality=quality or 90,
                                           crf=quality or 23, upscale=cv2.INTER_LINEAR)


def score(model: str, images: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """p(fake) of each crop and the card's threshold."""
    from dfdetect.faces.crop import letterbox
    from dfdetect.models.predict import Predictor, load_backend

    backend, card = load_backend(model, device="cpu", threads=2)
    crops = [letterbox(image, card.input_size) for image in images]  # as the scan and training feed a model
    return Predictor.for_card(backend, card).probabilities(crops), card.threshold


def figures_of(scored: tuple[np.ndarray, float], rows: pd.DataFrame) -> dict:
    from sklearn.metrics import roc_auc_score

    probs, threshold = scored
    fake = (rows["label"] == "fake").to_numpy()
    out = {}
    for source in AUC_SOURCES:
        mine = (rows["dataset"] == source).to_numpy()
        out[f"{source} AUC"] = float(roc_auc_score(fake[mine], probs[mine]))
    for source in rows.loc[~fake, "dataset"].unique():
        reals = (rows["dataset"] == source).to_numpy() & ~fake
        out[f"{source} reals called fake"] = float((probs[reals] >= threshold).mean())
    return out


def report(figures: dict, rows: pd.DataFrame, args, started: str) -> str:
    counts = rows.groupby(["dataset", "label"]).size()
    lines = ["# Faces small and compressed: figures per source under fixed degradations", "",
             f"Measured {date.today().isoformat()} on {started}.", "",
             f"Command: `python benchmarks/degradation.py {args.pool} --models {args.models} --dfdc {args.dfdc}`", "",
             "Test crops of the pool (groups never trained on): "
             + ", ".join(f"{source} {label} {n}" for (source, label), n in counts.items())
             + ". Each condition shrinks the crop to the given share of its side, compresses it there (JPEG "
             "quality or H.264 CRF, libx264) and brings it back up (linear), as `data/degrade.py` does in "
             "training. AUC: ROC-AUC; reals: share called fake at the card's threshold.", ""]
    for model, per_condition in figures.items():
        columns = list(next(iter(per_condition.values())))
        lines += [f"## `{model}`", "", "| condition | " + " | ".join(columns) + " |",
                  "|---|" + "---|" * len(columns)]
        for condition, values in per_condition.items():
            cells = [f"{v:.3f}" if k.endswith("AUC") else f"{100 * v:.1f}%" for k, v in values.items()]
            lines.append(f"| {condition} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
