"""Decoding before and after planned decoding, and a 3-file scan with and without the decoding thread, in one run.

    .venv/bin/python benchmarks/decode_cpu.py [--rounds 3] [--long-minutes 10] [--scan-frames 32] \
        [--scan-rounds 5] [--out benchmarks/results/decode_cpu.md]

1. Decode: the sampled frames of each shared DFDC clip (six 10 s clips, 1080p/720p H.264 with B-frames), at
   32 frames and at fps:1, as RGB arrays at full size: "sequential" is the decode before this change (every
   frame decoded in order, media.video._iter_sequential_frames), "planned" is iter_frames now (B-frames
   nothing refers to and frames past the last one a sampled frame needs are left undecoded, seeking past
   whole GOPs). Also on a generated long clip (480x270 H.264, B-frames, an IDR frame every 250 frames),
   where sparse sampling seeks. Both paths run alternately, `--rounds` times; the table gives the fastest
   round of each (the machine is shared) and the packets the planned path sent to the decoder.
2. Scan: `Detector.scan_many` on three shared clips (default model, MTCNN, CPU): before (sequential decode, no
   thread), planned decode without the decoding thread, and planned decode with it (ScanOptions.overlap).
   The three run alternately, `--scan-rounds` times; fastest and median wall time of the whole batch.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import date
from pathlib import Path

from machine import describe_machine, publish  # benchmarks/machine.py, beside this script

REPO = Path(__file__).resolve().parents[1]
CLIPS = REPO.parent / "shared" / "data" / "dfdc-videos" / "videos"


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "uptime unavailable"


def make_long_clip(path: Path, minutes: float, fps: int = 30) -> Path:
    """A panning photo as 480x270 H.264 (veryfast, 3 B-frames, an IDR frame at least every 250 frames)."""
    import av
    import numpy as np
    from skimage import data, transform

    image = (transform.resize(data.astronaut(), (270, 480), anti_aliasing=True) * 255).astype(np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "veryfast",
                                                               "x264-params": "keyint=250:min-keyint=25:bframes=3"})
        stream.width, stream.height, stream.pix_fmt = 480, 270, "yuv420p"
        for i in range(int(minutes * 60 * fps)):
            frame = av.VideoFrame.from_ndarray(np.roll(image, 2 * i, axis=1), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def decode_once(path: Path, rule: str, planned_path: bool) -> tuple[float, list, dict]:
    """Seconds spent producing the sampled frames (fingerprinting them is not counted), their (number, time,
    CRC of the pixels), and for the planned path its packet and seek counts (from a second, untimed run)."""
    from dfdetect.media import FrameSampling, video

    sampling = FrameSampling.parse(rule)
    decode = video._iter_video_frames if planned_path else video._iter_sequential_frames
    frames = decode(path, sampling, (None, None))
    seen, elapsed = [], 0.0
    while True:
        start = time.perf_counter()
        frame = next(frames, None)
        elapsed += time.perf_counter() - start
        if frame is None:
            break
        seen.append((frame.index, frame.time_s, zlib.crc32(frame.image.data)))
    stats: dict = {}
    if planned_path:
        for _ in video._iter_planned_frames(path, sampling, (16, None), stats=stats):
            pass
    return elapsed, seen, stats


def decode_table(clips: list[Path], rules: list[str], rounds: int) -> tuple[list[str], dict]:
    from dfdetect.media import probe

    lines = ["| clip | size | frames | rule | sampled | sequential s | planned s | speed-up | packets decoded "
             "(planned) | seeks | same frames |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    totals: dict = {}
    for clip in clips:
        info = probe(clip)
        for rule in rules:
            best = {False: float("inf"), True: float("inf")}
            frames, stats = {}, {}
            for _ in range(rounds):
                for planned_path in (False, True):
                    elapsed, seen, got = decode_once(clip, rule, planned_path)
                    best[planned_path] = min(best[planned_path], elapsed)
                    frames[planned_path], stats = seen, got or stats
            same = frames[False] == frames[True]
            totals.setdefault(rule, [0.0, 0.0])
            if clip.parent == CLIPS:
                totals[rule][0] += best[False]
                totals[rule][1] += best[True]
            lines.append(f"| {clip.name} | {info.width}x{info.height} | {info.frame_count} | {rule} | "
                         f"{len(frames[True])} | {best[False]:.3f} | {best[True]:.3f} | "
                         f"{best[False] / best[True]:.2f}x | {stats.get('decoded', '-')} of {info.frame_count} | "
                         f"{stats.get('seeks', '-')} | {'yes' if same else 'NO'} |")
            print(lines[-1], flush=True)
    return lines, totals


def scan_table(clips: list[Path], frames: str, rounds: int) -> list[str]:
    from dfdetect import Detector
    from dfdetect.media import video

    detector = Detector.load("default", device="cpu", sampling=frames)
    planned = video._iter_video_frames

    def sequential(path, sampling, max_side):
        return video._iter_sequential_frames(path, sampling, (max_side, None))

    configs = {"before: sequential decode, no thread": (sequential, False),
               "planned decode, no thread": (planned, False),
               "planned decode + decoding thread": (planned, True)}
    walls: dict = {name: [] for name in configs}
    cpus: dict = {name: [] for name in configs}
    outcomes: dict = {}
    stages: dict = {name: [] for name in configs}
    list(detector.scan_many(clips[:1]))  # warm-up: the first forward passes allocate
    for _ in range(rounds):
        for name, (decode, overlap) in configs.items():
            video._iter_video_frames = decode
            detector.options.overlap = overlap
            start, cpu = time.perf_counter(), time.process_time()
            results = list(detector.scan_many(clips))
            walls[name].append(time.perf_counter() - start)
            cpus[name].append(time.process_time() - cpu)
            outcomes[name] = [(r.verdict, r.probability) for r in results]
            stages[name].append({k: sum(r.timings.get(k, 0.0) for r in results)
                                 for k in ("decode_s", "detect_s", "classify_s")})
            print(name, f"{walls[name][-1]:.2f} s, CPU {cpus[name][-1]:.2f} s, {uptime()}", flush=True)
    video._iter_video_frames = planned
    reference = outcomes["before: sequential decode, no thread"]
    lines = ["| configuration | fastest s | median s | all rounds s | CPU s (fastest round) | decode wait s | "
             "detect s | classify s | verdicts and probabilities as before |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in configs:
        fastest = walls[name].index(min(walls[name]))
        s = stages[name][fastest]
        lines.append(f"| {name} | {min(walls[name]):.2f} | {statistics.median(walls[name]):.2f} | "
                     f"{' / '.join(f'{w:.1f}' for w in walls[name])} | {cpus[name][fastest]:.2f} | "
                     f"{s['decode_s']:.2f} | {s['detect_s']:.2f} | {s['classify_s']:.2f} | "
                     f"{'yes' if outcomes[name] == reference else 'NO'} |")
    lines += ["", "CPU and stage columns: the fastest round, stages summed over the three clips; \"decode wait\" is "
              "the time the scan waited for frames (with the thread, decoding that overlapped detection is not in "
              "it); CPU s is the process's CPU time."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the decode comparison")
    parser.add_argument("--scan-rounds", type=int, default=5, help="rounds of the scan comparison")
    parser.add_argument("--long-minutes", type=float, default=10.0, help="length of the generated clip (0: none)")
    parser.add_argument("--scan-frames", default="32")
    parser.add_argument("--no-scan", action="store_true", help="decode tables only")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    import torch

    clips = sorted(CLIPS.glob("*.mp4"))
    started, load_before = time.perf_counter(), uptime()
    machine = describe_machine()
    command = " ".join([".venv/bin/python benchmarks/decode_cpu.py", *sys.argv[1:]])
    lines = ["# Planned decoding and the decoding thread, CPU", "",
             f"Command: `{command}`  ",
             f"Machine: {machine}, {torch.get_num_threads()} torch threads; shared with other people's jobs  ",
             f"Date: {date.today()}  ",
             f"`uptime` before: {load_before}  "]
    body = ["", "## Decoding the sampled frames (fastest of "
            f"{args.rounds} alternating rounds; RGB at full size included in both)", ""]
    table, totals = decode_table(clips, ["32", "fps:1"], args.rounds)
    body += table
    body += [""] + [f"Six shared clips, {rule}: sequential {seq:.2f} s, planned {new:.2f} s "
                    f"({seq / new:.2f}x)  " for rule, (seq, new) in totals.items()]
    if args.long_minutes > 0:
        with tempfile.TemporaryDirectory() as folder:
            t = time.perf_counter()
            long_clip = make_long_clip(Path(folder) / f"long-{args.long_minutes:g}min.mp4", args.long_minutes)
            print(f"long clip made in {time.perf_counter() - t:.1f} s", flush=True)
            long_table, _ = decode_table([long_clip], ["32", "fps:1"], max(1, args.rounds - 1))
        body += ["", f"A generated {args.long_minutes:g}-minute clip (480x270 H.264, 30 fps, 3 B-frames, an IDR frame "
                 "at least every 250 frames):", ""] + long_table[:2] + long_table[2:]
    if not args.no_scan:
        body += ["", f"## `Detector.scan_many` on three shared clips, {args.scan_frames} frames each "
                 f"(fastest and median of {args.scan_rounds} alternating rounds)", ""]
        body += scan_table(clips[:3], args.scan_frames, args.scan_rounds)
    lines += [f"`uptime` after: {uptime()} ({time.perf_counter() - started:.0f} s in all)"] + body
    publish(lines, args.out)


if __name__ == "__main__":
    main()
