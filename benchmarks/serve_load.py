"""Image scans through `dfdetect serve` under concurrent load, checked against `dfdetect scan` on the same files.

Sends N photos over C concurrent connections to a server on loopback (started here, as a user starts it),
for each worker count given, and checks that every upload got exactly one result (none lost, none
duplicated, in the responses and in the database) equal to the CLI's for the same file.

    .venv/bin/python benchmarks/serve_load.py [--images 100] [--connections 10] [--workers 1,2]
        [--out benchmarks/results/serve_load.md]
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import requests

from machine import describe_machine, publish  # benchmarks/machine.py, beside this script

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def pick_images(n: int) -> list[Path]:
    """Half UTKFace photos (real), half DFDC face crops (real and fake), in a fixed order."""
    real = sorted((DATA / "real-faces" / "faces").glob("*.jpg"))[: n - n // 2]
    dfdc = sorted((DATA / "dfdc-faces" / "faces").glob("*.jpg"))[: n // 2]
    return real + dfdc


def cli_results(images: list[Path], out: Path) -> tuple[dict, float]:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dfdetect.cli", "scan", *map(str, images), "--device", "cpu", "--quiet",
                    "--json", str(out)], check=False, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    return {Path(r["path"]).name: r for r in json.loads(out.read_text())["results"]}, seconds


def start_server(data_dir: Path, workers: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "dfdetect.cli", "serve", "--port", str(port), "--data", str(data_dir),
                             "--device", "cpu", "--workers", str(workers), "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if requests.get(url + "/v1/health", timeout=2).ok:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the server did not start")


def load(url: str, images: list[Path], connections: int) -> tuple[list[dict], float]:
    def send(path: Path) -> dict:
        t0 = time.perf_counter()
        with open(path, "rb") as f:
            r = requests.post(url + "/v1/scans", files={"file": (path.name, f)}, timeout=600)
        return {"path": path, "status": r.status_code, "latency": time.perf_counter() - t0,
                "body": r.json() if r.headers.get("content-type", "").startswith("application/json") else None}

    t0 = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        answers = list(pool.map(send, images))
    return answers, time.perf_counter() - t0


def compare(answers: list[dict], cli: dict, db_path: Path) -> dict:
    ok = [a for a in answers if a["status"] == 200 and a["body"]["status"] == "done" and a["body"]["result"]]
    ids = [a["body"]["id"] for a in ok]
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT id, filename, status FROM scans").fetchall()
    mismatches, max_diff = [], 0.0
    for a in ok:
        mine, theirs = a["body"]["result"], cli[a["path"].name]
        same_boxes = [f["box"] for t in mine["tracks"] for f in t["faces"]] == \
            [f["box"] for t in theirs["tracks"] for f in t["faces"]]
        if mine["probability"] is not None and theirs["probability"] is not None:
            max_diff = max(max_diff, abs(mine["probability"] - theirs["probability"]))
        if mine["verdict"] != theirs["verdict"] or not same_boxes or (
                mine["probability"] is not None and abs(mine["probability"] - theirs["probability"]) > 1e-6):
            mismatches.append(a["path"].name)
    return {"answered": len(ok), "errors": len(answers) - len(ok), "unique_ids": len(set(ids)),
            "db_rows": len(rows), "db_done": sum(r[2] == "done" for r in rows),
            "db_files": len({r[1] for r in rows}), "mismatches": mismatches, "max_p_diff": max_diff,
            "verdicts": {v: sum(a["body"]["result"]["verdict"] == v for a in ok) for v in ("fake", "real", "no_face")}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    machine = describe_machine()
    images = pick_images(args.images)
    work = Path(tempfile.mkdtemp(prefix="dfdetect-serve-load-"))
    cli, cli_s = cli_results(images, work / "cli.json")
    rows = []
    for workers in [int(w) for w in args.workers.split(",")]:
        proc, url = start_server(work / f"w{workers}", workers)
        try:
            answers, seconds = load(url, images, args.connections)
        finally:
            proc.terminate()
            proc.wait(60)
        latencies = sorted(a["latency"] for a in answers)
        check = compare(answers, cli, work / f"w{workers}" / "scans.db")
        rows.append((workers, seconds, len(images) / seconds, statistics.median(latencies),
                     latencies[int(0.95 * (len(latencies) - 1))], check))
    lines = [
        f"# dfdetect serve: {len(images)} image scans over {args.connections} concurrent connections (loopback)", "",
        f"Command: `.venv/bin/python benchmarks/serve_load.py --images {args.images} --connections {args.connections} "
        f"--workers {args.workers}`  ",
        f"Machine: {machine}; date {date.today()}  ",
        f"Load before the run (`uptime`): {uptime}  ",
        f"Images: {len(images) - len(images) // 2} UTKFace photos (200x200) and {len(images) // 2} DFDC face crops (224x224) "
        "from ../shared/data.  ",
        "Each server request does what the page shows: the scan, Grad-CAM heat maps of the faces and an annotated "
        "copy, with the result stored in SQLite. The CLI only scans.",
        f"`dfdetect scan` of the same files in one process (model load included): {cli_s:.1f} s, "
        f"{len(images) / cli_s:.2f} images/s.", "",
        "| server workers | wall s | requests/s | p50 latency s | p95 latency s | answered | errors | unique ids | "
        "database rows (done) | results equal to the CLI's | max abs p(fake) difference |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for workers, seconds, rate, p50, p95, c in rows:
        lines.append(f"| {workers} | {seconds:.1f} | {rate:.2f} | {p50:.2f} | {p95:.2f} | {c['answered']} | {c['errors']} | "
                     f"{c['unique_ids']} | {c['db_rows']} ({c['db_done']}) | {c['answered'] - len(c['mismatches'])} of "
                     f"{c['answered']} | {c['max_p_diff']:.1e} |")
    lines += ["", "Verdicts: " + "; ".join(f"{w} worker(s): {c['verdicts']}" for w, *_, c in rows)]
    mismatched = sorted({m for *_, c in rows for m in c["mismatches"]})
    if mismatched:
        lines.append("Results that differ from the CLI's: " + ", ".join(mismatched))
    publish(lines, args.out)


if __name__ == "__main__":
    main()
