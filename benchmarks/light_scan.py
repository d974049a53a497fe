"""`dfdetect scan` of the six shared DFDC clips at 32 frames: the light install (ONNX Runtime, no PyTorch) against
the PyTorch + MTCNN scan of an earlier commit, side by side in one run, with their verdicts and probabilities.

    python3 benchmarks/light_scan.py --baseline-ref 43b0bb1 --light-venv /tmp/dfdetect-light [--repeats 3]

The baseline runs the earlier commit's source (a git worktree of --baseline-ref) with the full install's
Python (--full-python, default .venv/bin/python); the light venv is made with `pip install .` when it does
not exist. Each clip is scanned by its own `dfdetect scan` process (what a person checking one clip runs:
start-up, model load and the scan), baseline and light taking turns; then all six in one command each.
Times are wall-clock medians over the repeats. Writes benchmarks/results/light_scan.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, publish  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLIPS = REPO.parent / "shared" / "data" / "dfdc-videos" / "videos"


def baseline_command(ref_tree: Path, python: str) -> tuple[list[str], dict]:
    env = dict(os.environ, PYTHONPATH=str(ref_tree / "src"), NO_ALBUMENTATIONS_UPDATE="1", HF_HUB_OFFLINE="1")
    return [python, "-c", "import sys; from dfdetect.cli import main; sys.exit(main())"], env


def light_command(venv: Path) -> tuple[list[str], dict]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return [str(venv / "bin" / "dfdetect")], env


def scan(command: tuple[list[str], dict], clips: list[Path], work: Path, tag: str) -> tuple[float, dict]:
    """Wall seconds and {clip name: (verdict, probability, timings)}."""
    out = work / f"{tag}.json"
    out.unlink(missing_ok=True)
    argv, env = command
    t = time.perf_counter()
    done = subprocess.run([*argv, "scan", *map(str, clips), "--quiet", "--json", str(out)], env=env,
                          capture_output=True, text=True, cwd=work)
    wall = time.perf_counter() - t
    if done.returncode not in (0, 1):
        raise SystemExit(f"{tag} failed: {done.stderr.strip()[-500:]}")
    results = json.loads(out.read_text())["results"]
    return wall, {Path(r["path"]).name: (r["verdict"], r["probability"], r["timings"]) for r in results}


def ensure_light_venv(venv: Path) -> None:
    if (venv / "bin" / "dfdetect").is_file():
        return
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(REPO)], check=True)


def ensure_baseline_tree(ref: str, tree: Path) -> None:
    if not (tree / "src" / "dfdetect").is_dir():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), ref], check=True,
                       capture_output=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline-ref", default="43b0bb1")
    p.add_argument("--baseline-tree", default=None, help="where the baseline worktree is (made if missing)")
    p.add_argument("--full-python", default=str(REPO / ".venv" / "bin" / "python"))
    p.add_argument("--light-venv", default=str(Path(tempfile.gettempdir()) / "dfdetect-light"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "light_scan.md"))
    args = p.parse_args()
    clips = sorted(CLIPS.glob("*.mp4"))
    tree = Path(args.baseline_tree or Path(tempfile.gettempdir()) / f"dfdetect-{args.baseline_ref}")
    ensure_baseline_tree(args.baseline_ref, tree)
    ensure_light_venv(Path(args.light_venv))
    commands = {"baseline": baseline_command(tree, args.full_python), "light": light_command(Path(args.light_venv))}
    machine = describe_machine()
    per_clip = {name: {clip.name: [] for clip in clips} for name in commands}
    batch = {name: [] for name in commands}
    verdicts: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for _ in range(args.repeats):
            for clip in clips:
                for name, command in commands.items():
                    wall, found = scan(command, [clip], work, name)
                    per_clip[name][clip.name].append(wall)
                    verdicts.setdefault(name, {}).update(found)
            for name, command in commands.items():
                batch[name].append(scan(command, clips, work, name)[0])
            print({n: statistics.median(v) for n, v in batch.items()}, flush=True)
    lines = [
        "# Scan speed: light install (ONNX Runtime) against the PyTorch + MTCNN scan", "",
        f"Command: `python3 benchmarks/light_scan.py --baseline-ref {args.baseline_ref} --repeats {args.repeats}`  ",
        f"Machine: {machine}  ",
        f"Date: {datetime.now(timezone.utc).isoformat(timespec='minutes')}  ",
        f"Baseline: commit {args.baseline_ref} (PyTorch checkpoint, facenet-pytorch MTCNN) with {args.full_python}; "
        f"light: `pip install .` of this checkout in {args.light_venv}. 32 frames per clip, default settings.", "",
        "One `dfdetect scan CLIP` process per clip (start-up and model load included), median wall seconds:", "",
        "| clip | baseline s | light s | speed-up | baseline verdict | light verdict | p(fake) change |",
        "|---|---|---|---|---|---|---|",
    ]
    speedups, changes = [], []
    for clip in clips:
        b, l = (statistics.median(per_clip[n][clip.name]) for n in ("baseline", "light"))
        (bv, bp, _), (lv, lp, _) = verdicts["baseline"][clip.name], verdicts["light"][clip.name]
        speedups.append(b / l)
        changes.append(abs(lp - bp))
        lines.append(f"| {clip.name} | {b:.2f} | {l:.2f} | {b / l:.1f}x | {bv} {bp:.3f} | {lv} {lp:.3f} | "
                     f"{lp - bp:+.3f} |")
    b_all, l_all = statistics.median(batch["baseline"]), statistics.median(batch["light"])
    lines += [
        "", f"Per clip: median speed-up {statistics.median(speedups):.1f}x (lowest {min(speedups):.1f}x); "
        f"verdicts the same on {sum(verdicts['baseline'][c.name][0] == verdicts['light'][c.name][0] for c in clips)} "
        f"of {len(clips)}; largest p(fake) change {max(changes):.3f}.",
        f"All six in one command: baseline {b_all:.1f} s, light {l_all:.1f} s ({b_all / l_all:.1f}x; "
        f"{b_all / len(clips):.2f} and {l_all / len(clips):.2f} s per clip).", "",
        "Stages inside the light scan (seconds, from its JSON timings, last run):", "",
        "| clip | decode | detect | classify | total |", "|---|---|---|---|---|",
    ]
    for clip in clips:
        t = verdicts["light"][clip.name][2]
        lines.append(f"| {clip.name} | {t.get('decode_s', 0):.2f} | {t.get('detect_s', 0):.2f} | "
                     f"{t.get('classify_s', 0):.2f} | {t.get('total_s', 0):.2f} |")
    publish(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
