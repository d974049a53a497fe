"""MTCNN on the CPU, side by side: speed and agreement with facenet-pytorch at full settings, per setting.

    PYTHONPATH=src .venv/bin/python benchmarks/face_detection_cpu.py [--frames 32] [--crops 300] [--threads N]
        [--no-scan] [--out benchmarks/results/face_detection_cpu.md]

Inputs, all from ../shared/data: the six DFDC clips (`--frames` evenly sampled frames each, decoded with
dfdetect.media.iter_frames at full resolution); "mosaics", the same frames nine or sixteen to a frame (3 x 3 or
4 x 4 tiles, each shrunk to a third or a quarter: faces of 20-100 px, where the smallest face looked for shows
its limit); and `--crops` face crops (half DFDC's 224 px crops, half UTKFace's 200 px ones). Last, the bundled
model scans the clips with a few of the settings (its verdicts and probabilities should not depend on them).

Reference: facenet-pytorch's MTCNN at full settings (no shrinking, smallest face 20 px), as MtcnnDetector's
torch engine with max_side=None. Every setting keeps faces scored >= 0.9 (the detector's default). A
reference face counts as found when a box of the setting overlaps it with IoU >= 0.5 (one box per face);
"recall >= 60 px" counts only reference faces whose shorter side is at least 60 px of the original frame,
"recall < 60 px" the others; "extra" are boxes that match no reference face. Settings run clip by clip in turn (the first one rotating),
so that a machine shared with other work slows them alike; ms are wall time per frame, CPU ms the process's
CPU time per frame (all threads).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from machine import describe_machine  # benchmarks/machine.py, beside this script

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CLIPS = SHARED / "dfdc-videos" / "videos"
BIG_FACE = 60  # px, shorter side in the original frame: smaller faces are not worth classifying

# (label, detector options); the reference is facenet-pytorch at full settings.
REFERENCE = ("reference: torch, full resolution, min face 20", dict(engine="torch", max_side=None, smallest_face=None))
SETTINGS = [
    ("torch 960 (default before)", dict(engine="torch", max_side=960, smallest_face=None)),
    ("onnx 960", dict(engine="onnx", max_side=960, smallest_face=None)),
    ("onnx 640", dict(engine="onnx", max_side=640, smallest_face=None)),
    ("onnx 480", dict(engine="onnx", max_side=480, smallest_face=None)),
    ("onnx 640, factor 0.6 (fewer levels)", dict(engine="onnx", max_side=640, smallest_face=None, factor=0.6)),
    ("onnx 960, min_face 60", dict(engine="onnx", max_side=960, smallest_face=None, min_face=60)),
    ("onnx 960, smallest_face 60", dict(engine="onnx", max_side=960, smallest_face=60)),
    ("onnx 960, smallest_face 80", dict(engine="onnx", max_side=960, smallest_face=80)),
    ("onnx full resolution, smallest_face 80", dict(engine="onnx", max_side=None, smallest_face=80)),
]
# The bundled model's scan (32 frames a clip) with these detector settings: fake probability per clip.
SCAN_SETTINGS = ["onnx 960", "onnx 480", "onnx 960, smallest_face 60", "onnx 960, smallest_face 80"]


@dataclass
class Tally:
    """Time and agreement of one setting on one kind of input."""

    frames: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    ref_big: int = 0
    found_big: int = 0
    ref_small: int = 0
    found_small: int = 0
    boxes: int = 0
    extra: int = 0
    ious: list = field(default_factory=list)
    landmark_px: list = field(default_factory=list)
    missed: list = field(default_factory=list)  # (source, image index, side px, reference score) of big faces

    def add(self, reference, found, source: str = "") -> None:
        from dfdetect.faces.detect import iou_matrix

        for k, (ref_boxes, boxes) in enumerate(zip(reference, found)):
            matched = _match(iou_matrix(ref_boxes, boxes))
            self.boxes += len(boxes)
            self.extra += len(boxes) - len(matched)
            for r in ref_boxes:
                self.ref_big += min(r.width, r.height) >= BIG_FACE
                self.ref_small += min(r.width, r.height) < BIG_FACE
            hit = {i for i, _, _ in matched}
            self.missed += [(source, k, min(r.width, r.height), r.score) for i, r in enumerate(ref_boxes)
                            if i not in hit and min(r.width, r.height) >= BIG_FACE]
            for i, j, iou in matched:
                self.found_big += min(ref_boxes[i].width, ref_boxes[i].height) >= BIG_FACE
                self.found_small += min(ref_boxes[i].width, ref_boxes[i].height) < BIG_FACE
                self.ious.append(iou)
                a, b = ref_boxes[i].landmarks, boxes[j].landmarks
                if a is not None and b is not None:
                    self.landmark_px.append(float(np.linalg.norm(a - b, axis=1).mean()))

    def row(self) -> list[str]:
        def share(k, n):
            return f"{k / n:.3f} ({k}/{n})" if n else "-"

        return [f"{1e3 * self.wall_s / max(1, self.frames):.1f}", f"{1e3 * self.cpu_s / max(1, self.frames):.1f}",
                share(self.found_big, self.ref_big), share(self.found_small, self.ref_small), str(self.extra),
                f"{np.mean(self.ious):.3f}" if self.ious else "-",
                f"{np.mean(self.landmark_px):.2f}" if self.landmark_px else "-"]


def _match(iou: np.ndarray, threshold: float = 0.5) -> list[tuple[int, int, float]]:
    """Greedy one-to-one pairs (reference index, box index, IoU), best overlap first, IoU >= threshold."""
    pairs = sorted(((iou[i, j], i, j) for i in range(iou.shape[0]) for j in range(iou.shape[1])
                    if iou[i, j] >= threshold), reverse=True)
    used_i, used_j, out = set(), set(), []
    for value, i, j in pairs:
        if i not in used_i and j not in used_j:
            used_i.add(i), used_j.add(j)
            out.append((i, j, float(value)))
    return out


def _timed(detector, images: list[np.ndarray]) -> tuple[list, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    found = detector.detect(images)
    return found, time.perf_counter() - wall, time.process_time() - cpu


def _mosaics(frames: list[np.ndarray], grid: int = 3) -> list[np.ndarray]:
    """Frames grid x grid to a frame of the same size, each shrunk to 1 / grid."""
    import cv2

    height, width = frames[0].shape[:2]
    th, tw = height // grid, width // grid
    out = []
    for start in range(0, len(frames) - grid * grid + 1, grid * grid):
        canvas = np.zeros((grid * th, grid * tw, 3), np.uint8)
        for k, frame in enumerate(frames[start : start + grid * grid]):
            r, c = divmod(k, grid)
            canvas[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = cv2.resize(frame, (tw, th), interpolation=cv2.INTER_AREA)
        out.append(canvas)
    return out


def _crops(count: int) -> list[np.ndarray]:
    from dfdetect.media import read_image

    half = count // 2
    paths = []
    for folder, n in ((SHARED / "dfdc-faces" / "faces", half), (SHARED / "real-faces" / "faces", count - half)):
        names = sorted(folder.iterdir())
        paths += names[:: max(1, len(names) // n)][:n]
    return [read_image(p) for p in paths]


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "uptime not available"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=32, help="frames sampled per clip (default: 32)")
    parser.add_argument("--crops", type=int, default=300, help="face crops (default: 300)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for torch and ONNX Runtime alike (default: each library's own)")
    parser.add_argument("--no-scan", action="store_true", help="skip the bundled model's scans")
    parser.add_argument("--out", type=Path, default=None, help="write the results here (Markdown)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from dfdetect.faces import create_detector
    from dfdetect.media import iter_frames

    started, load_before, machine = time.perf_counter(), _uptime(), describe_machine()
    reference = create_detector("mtcnn", device="cpu", **REFERENCE[1])
    onnx_threads = {"threads": args.threads} if args.threads else {}
    detectors = [(label, create_detector("mtcnn", device="cpu", **options,
                                         **(onnx_threads if options["engine"] == "onnx" else {})))
                 for label, options in SETTINGS]
    tallies = {kind: {label: Tally() for label, _ in [REFERENCE, *SETTINGS]} for kind in ("clips", "mosaics", "mosaics4", "crops")}
    sizes = []

    def run_all(kind: str, images: list[np.ndarray], turn: int, source: str) -> None:
        expected, wall, cpu = _timed(reference, images)
        tally = tallies[kind][REFERENCE[0]]
        tally.frames, tally.wall_s, tally.cpu_s = tally.frames + len(images), tally.wall_s + wall, tally.cpu_s + cpu
        tally.add(expected, expected)
        sizes.extend(min(b.width, b.height) for boxes in expected for b in boxes)
        order = detectors[turn % len(detectors):] + detectors[: turn % len(detectors)]
        for label, detector in order:
            found, wall, cpu = _timed(detector, images)
            tally = tallies[kind][label]
            tally.frames, tally.wall_s, tally.cpu_s = tally.frames + len(images), tally.wall_s + wall, tally.cpu_s + cpu
            tally.add(expected, found, source)

    warm = np.zeros((360, 640, 3), np.uint8)
    for _, detector in [("reference", reference), *detectors]:
        detector.detect([warm])  # sessions and first allocations out of the timing
    clips = sorted(CLIPS.glob("*.mp4"))
    for turn, clip in enumerate(clips):
        frames = [f.image for f in iter_frames(clip, str(args.frames))]
        print(f"{clip.name}: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}", flush=True)
        run_all("clips", frames, turn, clip.stem)
        run_all("mosaics", _mosaics(frames), turn, clip.stem)
        run_all("mosaics4", _mosaics(frames, 4), turn, clip.stem)
        del frames
    crops = _crops(args.crops)
    print(f"{len(crops)} face crops", flush=True)
    for turn, start in enumerate(range(0, len(crops), 50)):
        run_all("crops", crops[start : start + 50], turn, f"crops {start}+")

    scans = {}
    if not args.no_scan:
        from dfdetect import Detector

        options = dict(SETTINGS)
        for label in SCAN_SETTINGS:
            scanner = Detector.load("default", device="cpu", detector_options={**options[label], **onnx_threads})
            scans[label] = [scanner.scan(clip) for clip in clips]
            print(f"scanned with {label}", flush=True)

    sizes = np.asarray(sizes)
    header = ["setting", "ms/frame", "CPU ms/frame", f"recall >= {BIG_FACE} px", f"recall < {BIG_FACE} px", "extra",
              "mean IoU", "landmarks px"]
    lines = [
        "# Face detection on the CPU: MTCNN engines and settings",
        "",
        f"Command: `PYTHONPATH=src .venv/bin/python benchmarks/face_detection_cpu.py --frames {args.frames} "
        f"--crops {args.crops}" + (f" --threads {args.threads}" if args.threads else "") + "`  ",
        f"Machine: {machine}; {torch.get_num_threads()} torch threads, "
        + (f"{args.threads} ONNX Runtime threads" if args.threads else "ONNX Runtime's default threads") + "; "
        f"shared with other work: `uptime` before: {load_before}; after: {_uptime()}  ",
        f"Date: {date.today()}; run time {time.perf_counter() - started:.0f} s  ",
        f"Reference faces (score >= 0.9), shorter side in px: {len(sizes)}, min {sizes.min():.0f}, "
        f"median {np.median(sizes):.0f}, max {sizes.max():.0f}" if len(sizes) else "No reference faces",
        "",
        "Recall: reference faces found (IoU >= 0.5); extra: boxes matching no reference face; mean IoU and "
        "landmarks (mean distance of the five points) over the faces found.",
    ]
    titles = {"clips": f"## DFDC clips ({len(clips)} x {args.frames} frames, full resolution)",
              "mosaics": "## Mosaics 3 x 3 (the clips' frames nine to a frame: faces a third of their size)",
              "mosaics4": "## Mosaics 4 x 4 (sixteen to a frame: faces a quarter of their size)",
              "crops": f"## Face crops ({len(crops)}: 200-224 px, ms per crop)"}
    for kind, title in titles.items():
        lines += ["", title, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for label, tally in tallies[kind].items():
            lines.append("| " + " | ".join([label, *tally.row()]) + " |")
    if scans:
        lines += ["", "## The bundled model's scan with these detector settings (32 frames a clip)", "",
                  "Verdict, fake probability and people (tracks) per clip; detection seconds per clip in brackets.", "",
                  "| clip | " + " | ".join(scans) + " |", "|---|" + "---|" * len(scans)]
        for k, clip in enumerate(clips):
            cells = [f"{r[k].verdict} {r[k].probability:.3f}, {len(r[k].tracks)} ({r[k].timings.get('detect_s', 0):.2f} s)"
                     if r[k].probability is not None else r[k].verdict for r in scans.values()]
            lines.append(f"| {clip.stem} | " + " | ".join(cells) + " |")
    lines += ["", f"Reference faces >= {BIG_FACE} px missed (input: where, image in its batch, side px, reference score):", ""]
    for kind in titles:
        for label, tally in tallies[kind].items():
            if tally.missed:
                misses = "; ".join(f"{w} #{k} {side:.0f} px {score:.3f}" for w, k, side, score in tally.missed[:6])
                more = f"; and {len(tally.missed) - 6} more" if len(tally.missed) > 6 else ""
                lines.append(f"- {kind}, {label}: {misses}{more}")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    main()
