"""`dfdetect scan` of the six shared DFDC clips at 32 frames: the light install (ONNX Runtime, no PyTorch) against
the PyTorch + MTCNN scan of an earlier commit, side by side in one run, with their verdicts and probabilities.

    python3 benchmarks/light_scan.py --baseline-ref 43b0bb1 --light-venv /tmp/dfdetect-light [--repeats 3]
        [--blas-threads 2]

The baseline runs the earlier commit's source (a git worktree of --baseline-ref) with the full install's
Python (--full-python, default .venv/bin/python), on this checkout's bundled PyTorch checkpoint, so that both
scans use the same weights; the light venv is made with `pip install .` when it does not exist. Each clip is
scanned by its own `dfdetect scan` process (what a person checking one clip runs: start-up, model load and the
scan), baseline and light taking turns; then all six in one command each.
Times are wall-clock medians over the repeats. With --blas-threads N, the light install also runs with
OPENBLAS_NUM_THREADS=N (the scan sets one thread unless told otherwise), in turn with the others.
Writes benchmarks/results/light_scan.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


# Card fields added after the baseline commit, which its card schema refuses.
NEWER_CARD_FIELDS = ("exported_from_sha256",)


# A command: (the program's argv, options for its scan, its environment).
def baseline_command(ref_tree: Path, python: str, model: Path) -> tuple[list[str], list[str], dict]:
    env = dict(os.environ, PYTHONPATH=str(ref_tree / "src"), NO_ALBUMENTATIONS_UPDATE="1", HF_HUB_OFFLINE="1")
    return [python, "-c", "import sys; from dfdetect.cli import main; sys.exit(main())"], ["--model", str(model)], env


def bundled_checkpoint_for_baseline(work: Path) -> Path:
    """This checkout's bundled PyTorch checkpoint, copied with the card fields the baseline does not know dropped."""
    bundled = REPO / "src" / "dfdetect" / "assets" / "models" / "default"
    shutil.copy(bundled.with_suffix(".safetensors"), work / "default.safetensors")
    card = json.loads(bundled.with_suffix(".json").read_text())
    (work / "default.json").write_text(json.dumps({k: v for k, v in card.items() if k not in NEWER_CARD_FIELDS}))
    return work / "default.safetensors"


def light_command(venv: Path, blas_threads: int | None = None) -> tuple[list[str], list[str], dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OPENBLAS_NUM_THREADS")}
    if blas_threads:
        env["OPENBLAS_NUM_THREADS"] = str(blas_threads)
    return [str(venv / "bin" / "dfdetect")], [], env


def scan(command: tuple[list[str], list[str], dict], clips: list[Path], work: Path, tag: str) -> tuple[float, dict]:
    """Wall seconds and {clip name: (verdict, probability, timings)}."""
    out = work / f"{tag}.json"
    out.unlink(missing_ok=True)
    argv, options, env = command
    t = time.perf_counter()
    done = subprocess.run([*argv, "scan", *map(str, clips), *options, "--quiet", "--json", str(out)], env=env,
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
    p.add_argument("--blas-threads", type=int, default=None,
                   help="also run the light scan with this many OpenBLAS threads")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "light_scan.md"))
    args = p.parse_args()
    clips = sorted(CLIPS.glob("*.mp4"))
    tree = Path(args.baseline_tree or Path(tempfile.gettempdir()) / f"dfdetect-{args.baseline_ref}")
    ensure_baseline_tree(args.baseline_ref, tree)
    ensure_light_venv(Path(args.light_venv))
    checkpoint = bundled_checkpoint_for_baseline(Path(tempfile.mkdtemp(prefix="dfdetect-baseline-model-")))
    commands = {"baseline": baseline_command(tree, args.full_python, checkpoint),
                "light": light_command(Path(args.light_venv))}
    blas = f"light, {args.blas_threads} OpenBLAS threads"
    if args.blas_threads:
        commands[blas] = light_command(Path(args.light_venv), args.blas_threads)
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
        f"Command: `python3 benchmarks/light_scan.py --baseline-ref {args.baseline_ref} --repeats {args.repeats}"
        + (f" --blas-threads {args.blas_threads}" if args.blas_threads else "") + "`  ",
        f"Machine: {machine}  ",
        f"Date: {datetime.now(timezone.utc).isoformat(timespec='minutes')}  ",
        f"Baseline: commit {args.baseline_ref} (PyTorch, facenet-pytorch MTCNN) with {args.full_python}, scanning "
        "with this checkout's bundled PyTorch checkpoint (the light scan uses its ONNX twin); "
        f"light: `pip install .` of this checkout in {args.light_venv}. 32 frames per clip, default settings.", "",
        "One `dfdetect scan CLIP` process per clip (start-up and model load included), median wall seconds:", "",
        "| clip | baseline s | light s | speed-up | baseline verdict | light verdict | p(fake) change |"
        + (f" {blas} s |" if args.blas_threads else ""),
        "|---|---|---|---|---|---|---|" + ("---|" if args.blas_threads else ""),
    ]
    speedups, changes = [], []
    for clip in clips:
        b, l = (statistics.median(per_clip[n][clip.name]) for n in ("baseline", "light"))
        (bv, bp, _), (lv, lp, _) = verdicts["baseline"][clip.name], verdicts["light"][clip.name]
        speedups.append(b / l)
        changes.append(abs(lp - bp))
        lines.append(f"| {clip.name} | {b:.2f} | {l:.2f} | {b / l:.1f}x | {bv} {bp:.3f} | {lv} {lp:.3f} | "
                     f"{lp - bp:+.3f} |" + (f" {statistics.median(per_clip[blas][clip.name]):.2f} |"
                                           if args.blas_threads else ""))
    b_all, l_all = statistics.median(batch["baseline"]), statistics.median(batch["light"])
    lines += [
        "", f"Per clip: median speed-up {statistics.median(speedups):.1f}x (lowest {min(speedups):.1f}x); "
        f"verdicts the same on {sum(verdicts['baseline'][c.name][0] == verdicts['light'][c.name][0] for c in clips)} "
        f"of {len(clips)}; largest p(fake) change {max(changes):.3f}.",
        f"All six in one command: baseline {b_all:.1f} s, light {l_all:.1f} s ({b_all / l_all:.1f}x; "
        f"{b_all / len(clips):.2f} and {l_all / len(clips):.2f} s per clip)"
        + (f"; {blas}: {statistics.median(batch[blas]):.1f} s." if args.blas_threads else "."), "",
        "Stages inside the light scan (seconds, from its JSON timings, last run; a chunk's faces are classified "
        "while the next chunk's are searched for, so the stages add up to more than the total):", "",
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
