"""Time `Detector.scan` per video on the shared DFDC clips (decode, face detection, classification).

    .venv/bin/python benchmarks/scan_speed.py [--device cpu] [--frames 32] [--out benchmarks/results/scan_cpu.md]
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from machine import describe_machine, publish  # benchmarks/machine.py, beside this script

REPO = Path(__file__).resolve().parents[1]
CLIPS = REPO.parent / "shared" / "data" / "dfdc-videos" / "videos"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", default="32")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    import torch

    from dfdetect import Detector

    t0 = time.perf_counter()
    detector = Detector.load("default", device=args.device, sampling=args.frames)
    load_s = time.perf_counter() - t0
    rows = []
    for clip in sorted(CLIPS.glob("*.mp4")):
        r = detector.scan(clip)
        rows.append((clip.name, f"{r.media.width}x{r.media.height}", len(r.tracks), r.timings))
    lines = [
        f"# Scan speed, device {args.device}, {args.frames} frames per clip",
        "",
        f"Command: `.venv/bin/python benchmarks/scan_speed.py --device {args.device} --frames {args.frames}`  ",
        f"Machine: {describe_machine()}, {torch.get_num_threads()} torch threads; date {date.today()}  ",
        f"Model load (weights + MTCNN): {load_s:.2f} s",
        "",
        "| clip | size | people | decode s | detect s | classify s | total s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, size, people, t in rows:
        lines.append(f"| {name} | {size} | {people} | {t['decode_s']:.2f} | {t['detect_s']:.2f} | "
                     f"{t['classify_s']:.2f} | {t['total_s']:.2f} |")
    mean_total = sum(t["total_s"] for *_, t in rows) / max(1, len(rows))
    lines += ["", f"Mean per clip: {mean_total:.2f} s"]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
