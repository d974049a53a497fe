"""A validation manifest whose real-faces rows are MTCNN re-crops (no margin, as the scan cuts faces) instead of
the photos as they are, to see whether calibrating on the scan's crops moves the threshold.

    dfdetect extract runs/real_faces.csv runs/realfaces_scan_crops --preset train --margin 0 --margin-px 0 \\
        --no-balance --workers 2    # (measured on the val and test rows only; each photo is cropped alone)
    python benchmarks/scan_crop_val.py runs/pool_v2.csv runs/realfaces_scan_crops/manifest.csv \\
        --out runs/calibration_val_scancrops.csv
    dfdetect calibrate runs/v2_gpu/model runs/calibration_val_scancrops.csv --out runs/v2_gpu/calibrated_scan \\
        --max-real-fpr 0.06 --fpr-groups age_band,gender,ethnicity
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from dfdetect.data.manifest import read_manifest, write_manifest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pool", help="the pool manifest (dfdetect pool)")
    parser.add_argument("recrops", help="manifest of `dfdetect extract` over the real-faces rows")
    parser.add_argument("--source", default="real-faces")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    pool, recrops = read_manifest(args.pool), read_manifest(args.recrops)
    recrops = recrops[recrops["split"] == "val"].assign(dataset=args.source)
    recrops["group"] = args.source + ":" + recrops["group"].astype(str)  # the pool's group names
    val = pd.concat([pool[(pool["split"] == "val") & (pool["dataset"] != args.source)], recrops], ignore_index=True)
    write_manifest(val, Path(args.out))
    print(val.groupby(["dataset", "label"]).size().to_string())


if __name__ == "__main__":
    main()
