"""False positives per group of validation real people at a model card's temperature and threshold, from the
per-crop predictions of `dfdetect evaluate` (the figures behind a threshold bounded per group).

    dfdetect evaluate runs/v2_gpu/model runs/pool_v2.csv --split val --level frame --out runs/v2_gpu/eval-val
    python benchmarks/val_groups.py runs/v2_gpu/eval-val/predictions_frame.csv runs/v2_gpu/calibrated
"""

from __future__ import annotations

import argparse

import pandas as pd

from dfdetect.evaluate.fairness import describe_people, false_positive_table, fairness_markdown
from dfdetect.models import load_card
from dfdetect.probability import apply_temperature


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("predictions", help="predictions_frame.csv of `dfdetect evaluate` (has a logit column)")
    parser.add_argument("model", help="the checkpoint whose card gives temperature and threshold")
    parser.add_argument("--source", default="real-faces", help="the manifest's dataset to read (default: real-faces)")
    args = parser.parse_args()
    card = load_card(args.model)
    rows = pd.read_csv(args.predictions, low_memory=False)
    reals = rows[(rows["dataset"] == args.source) & (rows["label"].astype(str).str.lower().isin(["0", "real"]))]
    called_fake = apply_temperature(reals["logit"].to_numpy(), card.temperature) >= card.threshold
    print(f"{args.source} reals at T {card.temperature:.3f}, threshold {card.threshold:.4f}\n")
    print(fairness_markdown(false_positive_table(describe_people(reals), called_fake)))


if __name__ == "__main__":
    main()
