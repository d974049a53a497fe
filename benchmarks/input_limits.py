"""The training faces' size and sharpness, from which dfdetect.quality's "unsure" limits are set.

    python benchmarks/input_limits.py [--sample 300] [--ffpp-crops runs/ffpp_crops/manifest.csv]

Face size: DFDC's original face width (dfdc-faces/metadata.csv) and, when given, the MTCNN box width of
extracted FF++ crops. Sharpness: dfdetect.quality.sharpness over the whole crop (the box is the image) for a
random sample of DFDC crops and UTKFace photos. Writes benchmarks/results/input_limits.md.
"""

from __future__ import annotations

import argparse
import random
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from machine import describe_machine  # benchmarks/machine.py, beside this script

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
PERCENTILES = (1, 2, 5, 10, 50)


def sharpness_of(paths: list[str]) -> np.ndarray:
    import cv2

    from dfdetect.faces.detect import FaceBox
    from dfdetect.quality import sharpness

    values = []
    for path in paths:
        image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        values.append(sharpness(image, FaceBox(0, 0, image.shape[1], image.shape[0])))
    return np.array(values)


def row(name: str, values) -> str:
    cells = " | ".join(f"{v:.1f}" for v in np.percentile(values, PERCENTILES))
    return f"| {name} | {len(values)} | {cells} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--ffpp-crops", type=Path, default=None, help="manifest.csv of `dfdetect extract` on FF++")
    args = parser.parse_args()
    from dfdetect.quality import InputLimits

    rng = random.Random(0)
    sizes = [row("DFDC face width (metadata)", pd.read_csv(SHARED / "dfdc-faces" / "metadata.csv")["original_width"])]
    if args.ffpp_crops:
        crops = pd.read_csv(args.ffpp_crops)
        sizes.append(row("FF++ c23 MTCNN box width", crops["x2"] - crops["x1"]))
    sharp = []
    for name, folder in (("DFDC crops", SHARED / "dfdc-faces" / "faces"), ("UTKFace photos", SHARED / "real-faces" / "faces")):
        paths = sorted(str(p) for p in folder.glob("*.jpg"))
        sharp.append(row(name, sharpness_of(rng.sample(paths, min(args.sample, len(paths))))))
    head = "| what | n | " + " | ".join(f"p{p}" for p in PERCENTILES) + " |\n|---|---|" + "---|" * len(PERCENTILES)
    limits = InputLimits()
    text = (f"# Training faces: size and sharpness\n\nMeasured {date.today().isoformat()} on {describe_machine()}.\n\n"
            f"Command: `python benchmarks/input_limits.py --sample {args.sample}"
            + (f" --ffpp-crops {args.ffpp_crops}" if args.ffpp_crops else "") + "`\n\n"
            f"## Face size (pixels)\n\n{head}\n" + "\n".join(sizes) + "\n\n"
            f"## Sharpness (Laplacian variance at 128 px)\n\n{head}\n" + "\n".join(sharp) + "\n\n"
            f"Limits in dfdetect.quality: faces under {limits.min_face_px:g} px are small, sharpness under "
            f"{limits.min_sharpness:g} is blurred.\n")
    out = REPO / "benchmarks" / "results" / "input_limits.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
