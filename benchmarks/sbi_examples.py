"""Write a grid of self-blended examples for a person to inspect, and time the synthesis.

Each row: real crop | self-blended fake | blend mask | |fake - real| (amplified) | 2x zoom on the fake's
mask boundary. Rows come from the DFDC face crops, each twice: without landmarks (the centred-face
assumption) and with MTCNN's 5 points found on the crop; then skimage's astronaut with its 5 points.

    python benchmarks/sbi_examples.py --out /tmp/sbi_examples.png [--faces ../shared/data/dfdc-faces/faces]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from dfdetect.data.sbi import SelfBlend

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FACES = REPO.parent / "shared" / "data" / "dfdc-faces" / "faces"
TILE = 224

# skimage.data.astronaut(): a region around the face and MTCNN's 5 points inside that region.
ASTRONAUT_REGION = (165, 40, 275, 175)  # x1, y1, x2, y2
ASTRONAUT_LANDMARKS = np.array([[205.0, 101.7], [246.8, 103.7], [224.7, 129.0], [201.7, 139.2], [245.3, 141.9]])


def astronaut_face() -> tuple[np.ndarray, np.ndarray]:
    from skimage import data

    x1, y1, x2, y2 = ASTRONAUT_REGION
    return np.ascontiguousarray(data.astronaut()[y1:y2, x1:x2]), ASTRONAUT_LANDMARKS - [x1, y1]


def load_faces(folder: Path, count: int, seed: int) -> list[np.ndarray]:
    paths = sorted(folder.glob("*.jpg"))
    if not paths:
        return []
    picked = np.random.default_rng(seed).choice(len(paths), size=min(count, len(paths)), replace=False)
    return [cv2.cvtColor(cv2.imread(str(paths[i])), cv2.COLOR_BGR2RGB) for i in picked]


def mtcnn_landmarks(faces: list[np.ndarray]) -> list[np.ndarray | None]:
    """MTCNN's 5 points per crop (None where no face is found). The crops are padded first: faces that
    fill the whole frame are often missed otherwise."""
    from dfdetect.faces.detect import create_detector

    detector = create_detector("mtcnn")
    pad = TILE // 2
    padded = [cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_CONSTANT) for face in faces]
    points = []
    for boxes in detector.detect(padded):
        best = max(boxes, key=lambda box: box.score * box.area, default=None)
        points.append(None if best is None or best.landmarks is None else best.landmarks - pad)
    return points


def tile(image: np.ndarray) -> np.ndarray:
    enlarge = image.shape[0] < TILE
    return cv2.resize(image, (TILE, TILE), interpolation=cv2.INTER_CUBIC if enlarge else cv2.INTER_AREA)


def boundary_zoom(fake: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A 2x enlargement of the region around the mask's side edge, where seams show."""
    height, width = mask.shape
    row = int(np.argmax(mask.sum(axis=1)))
    edge = np.flatnonzero(mask[row] > 0.05)
    x = int(edge[0]) if len(edge) else width // 4
    half = min(height, width) // 4
    x1, y1 = max(0, x - half), max(0, row - half)
    patch = fake[y1 : y1 + 2 * half, x1 : x1 + 2 * half]
    return cv2.resize(patch, (TILE, TILE), interpolation=cv2.INTER_NEAREST)


def row_of(real, fake, mask, caption: str) -> np.ndarray:
    mask_rgb = np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2)
    diff = np.clip(np.abs(fake.astype(np.int16) - real.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
    tiles = [tile(real), tile(fake), tile(mask_rgb), tile(diff), boundary_zoom(fake, mask)]
    row = np.hstack(tiles)
    cv2.putText(row, caption, (4, TILE - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
    return row


def time_synthesis(blender: SelfBlend, faces: list[np.ndarray], repeats: int = 300) -> float:
    rng = np.random.default_rng(0)
    for face in faces[:5]:
        blender(face, rng=rng)  # warm-up
    start = time.perf_counter()
    for i in range(repeats):
        blender(faces[i % len(faces)], rng=rng)
    return (time.perf_counter() - start) / repeats * 1000.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/sbi_examples.png"))
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACES)
    parser.add_argument("--count", type=int, default=4, help="DFDC crops to show (two rows each)")
    parser.add_argument("--crop-margin", type=float, default=0.3,
                        help="margin assumed for crops without landmarks (0.3: the project's crops; "
                             "on the tight DFDC crops it gives inner-face blends)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    blender = SelfBlend(crop_margin=args.crop_margin)
    rng = np.random.default_rng(args.seed)
    rows = []
    faces = load_faces(args.faces, args.count, args.seed)
    for face, points in zip(faces, mtcnn_landmarks(faces) if faces else []):
        for landmarks in (None, points) if points is not None else (None,):
            result = blender.synthesize(face, landmarks, rng=rng)
            kind = "no landmarks" if landmarks is None else "MTCNN 5pt"
            caption = f"{kind} r={result.ratio} " + " ".join(c.split("(")[0] for c in result.changes)
            rows.append(row_of(face, result.fake, result.mask, caption[:80]))
    astronaut, points = astronaut_face()
    for _ in range(2):
        result = blender.synthesize(astronaut, points, rng=rng)
        rows.append(row_of(astronaut, result.fake, result.mask, f"astronaut 5pt r={result.ratio}"))
    grid = np.vstack(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out} ({len(rows)} rows: real | fake | mask | |fake-real|x4 | 2x zoom on the seam)")

    cv2.setNumThreads(1)  # the DataLoader's setting: one thread per worker
    timing_faces = faces or [cv2.resize(astronaut, (TILE, TILE))]
    print(f"synthesis at {timing_faces[0].shape[1]}x{timing_faces[0].shape[0]}: "
          f"{time_synthesis(blender, timing_faces):.2f} ms per image (1 OpenCV thread)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
