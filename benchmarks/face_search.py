"""The scan's face search that follows (api.FULL_SEARCH_EVERY, FOLLOW_SHARE, FOLLOW_MAX_SMALLEST, FOLLOW_MARGIN)
against a full search on every frame: detection seconds and p(fake) on the six shared DFDC clips, side by side in one run.

    python benchmarks/face_search.py [--rounds 2] [--out benchmarks/results/face_search_cpu.md]

Every setting scans the six clips with one Detector (ONNX twin, ONNX MTCNN, 32 frames, no decoding thread so
that detection seconds are detection's own); settings take turns, and each round is reported.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, publish  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLIPS = REPO.parent / "shared" / "data" / "dfdc-videos" / "videos"
# name: (a full search once in this many frames, FOLLOW_MARGIN: None searches whole frames in between)
SETTINGS = {"full search on every frame": (1, None),
            "once in 8, whole frames in between": (8, None),
            "once in 8, near the last faces, margin 1.0": (8, 1.0),
            "once in 8, near the last faces, margin 0.5 (default)": (8, 0.5),
            "once in 8, near the last faces, margin 0.25": (8, 0.25),
            "once in 16, near the last faces, margin 0.5": (16, 0.5)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "face_search_cpu.md"))
    args = p.parse_args()

    import dfdetect.api as api
    from dfdetect import Detector

    clips = sorted(CLIPS.glob("*.mp4"))
    detector = Detector.load("default", device="cpu", overlap=False)
    defaults = api.FULL_SEARCH_EVERY, api.FOLLOW_MARGIN
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    lines = ["# The face search that follows, against a full search on every frame", "",
             f"Command: `python benchmarks/face_search.py --rounds {args.rounds}`  ",
             f"Machine: {describe_machine()}; `uptime`: {uptime}  ",
             f"Date: {datetime.now(timezone.utc).isoformat(timespec='minutes')}", "",
             "| round | setting | detection s (six clips) | largest p(fake) change against full search | people |",
             "|---|---|---|---|---|"]
    for round_ in range(1, args.rounds + 1):
        reference = None
        for name, (every, margin) in SETTINGS.items():
            api.FULL_SEARCH_EVERY, api.FOLLOW_MARGIN = every, margin
            results = list(detector.scan_many(clips))
            probs = [r.probability for r in results]
            reference = reference or probs
            change = max(abs(a - b) for a, b in zip(probs, reference))
            lines.append(f"| {round_} | {name} | {sum(r.timings['detect_s'] for r in results):.2f} | "
                         f"{change:.4f} | {[len(r.tracks) for r in results]} |")
    api.FULL_SEARCH_EVERY, api.FOLLOW_MARGIN = defaults
    publish(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
