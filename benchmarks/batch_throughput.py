"""Files per minute of a batch scan: plain `dfdetect scan`, `scan --db` with 1, 2 and 4 worker processes and
`scan --db --ray` on a local Ray instance, all on the same folder in one run; and the database's own cost per file.

    .venv/bin/python benchmarks/batch_throughput.py [--files 80] [--videos 2] [--frames 4] \
        [--rounds 2] [--out benchmarks/results/batch_throughput.md]

Each configuration is a fresh command on a fresh database, timed from start to exit (model loading and, for
Ray, starting the local cluster included): `wall files/min`. `steady files/min` leaves the start-up out: the
files after the first divided by the time between the first and the last result the database recorded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from machine import describe_machine  # benchmarks/machine.py, beside this script

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def make_folder(target: Path, n_files: int, n_videos: int) -> Path:
    """Face crops of distinct DFDC videos, plus a few of the shared clips (mixed images and videos)."""
    target.mkdir(parents=True)
    crops = sorted((DATA / "dfdc-faces" / "faces").glob("*.jpg"))[2000:2000 + n_files - n_videos]
    clips = sorted((DATA / "dfdc-videos" / "videos").glob("*.mp4"))[:n_videos]
    for source in crops + clips:
        shutil.copy(source, target / source.name)
    return target


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def steady_rate(db: Path) -> float:
    """Results per minute between the first and the last result stored (start-up left out)."""
    with sqlite3.connect(db) as con:
        times = sorted(t for (t,) in con.execute("SELECT finished_at FROM scans WHERE state = 'done'"))
    return 60 * (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")


def store_cost(folder: Path, work: Path, repeats: int = 3) -> tuple[float, float, float]:
    """Milliseconds per file the database adds: hashing and cataloguing a new file, claim + commit of a real
    result, and finding a file done on a rerun (a stat and a lookup)."""
    from dfdetect.batch.store import ResultStore, ScanConfig
    from dfdetect.results import read_json

    reference = work / "plain.json"
    results = {Path(r.path).name: r for r in read_json(reference)}
    config = ScanConfig("0" * 64, "bench", {"sampling": "4"})
    hash_ms, claim_ms, skip_ms = [], [], []
    for i in range(repeats):
        with ResultStore(work / f"cost{i}.sqlite") as store:
            start = time.perf_counter()
            items = store.catalogue(sorted(folder.iterdir()))
            hash_ms.append(1000 * (time.perf_counter() - start) / len(items))
            key = store.register(config)
            start = time.perf_counter()
            for item in items:
                store.claim(item, key)
                store.complete(item, key, results[Path(item.path).name])
            claim_ms.append(1000 * (time.perf_counter() - start) / len(items))
            start = time.perf_counter()
            done = store.done_contents(key)
            assert all(item.content_sha256 in done for item in store.catalogue(sorted(folder.iterdir())))
            skip_ms.append(1000 * (time.perf_counter() - start) / len(items))
    return min(hash_ms), min(claim_ms), min(skip_ms)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=80)
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--frames", default="4")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dfdetect-batch-bench-"))
    folder = make_folder(work / "in", args.files, args.videos)
    scan = [sys.executable, "-m", "dfdetect.cli", "scan", str(folder), "--frames", args.frames, "--quiet",
            "--device", "cpu"]
    machine = describe_machine()
    runs = [("plain scan (no database)", ["--json", str(work / "plain.json")]),
            ("--db, 1 worker", ["--workers", "1"]), ("--db, 2 workers", ["--workers", "2"]),
            ("--db, 4 workers", ["--workers", "4"])]
    if not args.skip_ray:
        runs.append(("--db --ray (local Ray)", ["--ray"]))
    # Rounds go through every configuration in turn, so that a change in the machine's load touches them all.
    measured = {label: [] for label, _ in runs}
    for round_ in range(args.rounds):
        for i, (label, extra) in enumerate(runs):
            db = work / f"{round_}-{i}.sqlite"
            load = os.getloadavg()[0]
            seconds = timed(scan + ([] if i == 0 else ["--db", str(db)]) + extra)
            measured[label].append((seconds, steady_rate(db) if i else float("nan"), load))
            print(f"round {round_ + 1} {label}: {seconds:.1f} s (load {load:.1f})", file=sys.stderr)
    rerun = timed(scan + ["--db", str(work / "0-1.sqlite")])  # everything done: start-up plus skip checks
    hash_ms, claim_ms, skip_ms = store_cost(folder, work)

    lines = [
        f"# Batch scan throughput: {args.files} files ({args.files - args.videos} DFDC face crops, {args.videos} "
        f"10 s DFDC clips), {args.frames} frames per video",
        "",
        f"Command: `.venv/bin/python benchmarks/batch_throughput.py --files {args.files} --videos {args.videos} "
        f"--frames {args.frames} --rounds {args.rounds}`  ",
        f"Machine: {machine}; date {date.today()}  ",
        f"Load (`uptime`) at the end: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}",
        "",
        f"Median of {args.rounds} rounds; every round ran each configuration once, in this order. Per round: wall "
        "seconds / steady files per minute (load average when it started).",
        "",
        "| run | wall files/min | steady files/min | rounds |",
        "|---|---|---|---|",
    ]
    for label, values in measured.items():
        wall = statistics.median(v[0] for v in values)
        steady = statistics.median(v[1] for v in values)
        steady_text = "" if steady != steady else f"{steady:.0f}"
        each = "; ".join(f"{w:.1f} s / {'-' if r != r else f'{r:.0f}'} ({load:.1f})" for w, r, load in values)
        lines.append(f"| {label} | {60 * args.files / wall:.0f} | {steady_text} | {each} |")
    lines += [
        "",
        f"Rerun of the 1-worker database with every file done (start-up, hashing, skip checks): {rerun:.1f} s.  ",
        f"The database's own cost per file: {hash_ms:.2f} ms to hash and catalogue it (SHA-256 of its bytes), "
        f"{claim_ms:.2f} ms to claim it and commit its result (one transaction each, WAL), {skip_ms:.3f} ms to "
        f"find it done on a rerun (a stat and a lookup).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
