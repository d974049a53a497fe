"""Like-for-like backbone comparison: every model trained with one recipe on the same rows for the same
number of images, then evaluated on the same held-out test split; one table as `dfdetect compare` prints it.

    .venv/bin/python benchmarks/compare_backbones.py MANIFEST
        [--models efficientnet_lite0:imagenet,efficientnet_b0:none,efficientnet_b4:none,resnet50:none]
        [--recipe configs/compare_budget.yaml] [--train-samples 3000] [--val-samples 600] [--epochs 2]
        [--device auto] [--runs-dir runs/compare] [--out benchmarks/results/compare_<device>.md]

MANIFEST must carry a group split (`dfdetect index ... --split group`). Each model is `ARCH:WEIGHTS` with
WEIGHTS one of imagenet (offline, Lite0/1/2 only), hub (needs internet), none (random start) or a path.
A model whose test metrics already exist is not retrained, so an interrupted comparison goes on where it
stopped. Every command is printed and recorded, so a row can be re-made by hand.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from machine import describe_machine  # benchmarks/machine.py, beside this script

REPO = Path(__file__).resolve().parents[1]
DFDETECT = [sys.executable, "-m", "dfdetect.cli"]


def parse_models(text: str) -> list[tuple[str, str]]:
    models = []
    for item in text.split(","):
        arch, _, weights = item.partition(":")
        models.append((arch.strip(), (weights or "imagenet").strip()))
    return models


def run_name(arch: str, weights: str) -> str:
    source = Path(weights).stem if weights not in ("imagenet", "hub", "none") else weights
    return f"{arch}-{source}"


def train_command(args, arch: str, weights: str, run_dir: Path) -> list[str]:
    pretrained = "null" if weights == "none" else weights
    return [*DFDETECT, "train", str(args.recipe), f"data.manifest={args.manifest}",
            f"model.arch={arch}", f"model.pretrained={pretrained}", f"train.epochs={args.epochs}",
            f"data.max_train_samples={args.train_samples}", f"data.max_val_samples={args.val_samples}",
            f"name={run_dir.name}", "--out", str(run_dir), "--device", args.device]


def evaluate_command(args, run_dir: Path) -> list[str]:
    return [*DFDETECT, "evaluate", str(run_dir / "model"), str(args.manifest), "--split", "test",
            "--device", args.device, "--workers", "1", "--out", str(run_dir / "eval-test")]


def shown(command: list[str]) -> str:
    return shlex.join(["dfdetect", *command[len(DFDETECT):]])


def run_command(command: list[str]) -> None:
    print("$", shown(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, cwd=REPO)


def run_model(args, arch: str, weights: str) -> tuple[Path, float | None]:
    """Train and evaluate one model unless its test metrics exist; returns (run folder, seconds or None)."""
    run_dir = args.runs_dir / run_name(arch, weights)
    timing = run_dir / "wall_seconds.txt"
    if (run_dir / "eval-test" / "metrics.json").exists():
        print(f"{run_dir.name}: already evaluated, kept", file=sys.stderr)
        return run_dir, float(timing.read_text()) if timing.exists() else None
    start = time.perf_counter()
    if not (run_dir / "model.json").exists():  # not trained to the end yet
        resume = ["--resume"] if (run_dir / "checkpoints").exists() else []
        run_command(train_command(args, arch, weights, run_dir) + resume)
    run_command(evaluate_command(args, run_dir))
    seconds = time.perf_counter() - start
    timing.write_text(f"{seconds:.1f}\n")  # kept for the report when the comparison is re-run
    return run_dir, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--models", type=parse_models, default=parse_models(
        "efficientnet_lite0:imagenet,efficientnet_lite0:none,efficientnet_b0:none,efficientnet_b4:none,resnet50:none"))
    parser.add_argument("--recipe", type=Path, default=REPO / "configs" / "compare_budget.yaml")
    parser.add_argument("--train-samples", type=int, default=3000)
    parser.add_argument("--val-samples", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--runs-dir", type=Path, default=REPO / "runs" / "compare")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.manifest = args.manifest.resolve()
    from dfdetect.devices import resolve_device

    args.device = resolve_device(args.device)  # one concrete device for every command and the file name

    machine = describe_machine()
    results = []
    for arch, weights in args.models:
        try:
            results.append(run_model(args, arch, weights))
        except subprocess.CalledProcessError as exc:
            print(f"{run_name(arch, weights)}: failed (exit {exc.returncode}); the others go on", file=sys.stderr)
    if not results:
        return 1

    from dfdetect.evaluate.report import compare_runs, comparison_markdown

    table = compare_runs([run_dir for run_dir, _ in results], level="frame")
    out = args.out or REPO / "benchmarks" / "results" / f"compare_{args.device.split(':')[0]}.md"
    out.write_text(report(args, machine, table, results))
    print(comparison_markdown(table), end="")
    print(f"wrote {out}", file=sys.stderr)
    return 0 if len(results) == len(args.models) else 1


def report(args, machine: str, table, results) -> str:
    from dfdetect.evaluate.report import comparison_markdown

    command = shlex.join(["python", "benchmarks/compare_backbones.py", str(args.manifest.name),
                          "--models", ",".join(f"{a}:{w}" for a, w in args.models),
                          "--train-samples", str(args.train_samples), "--val-samples", str(args.val_samples),
                          "--epochs", str(args.epochs), "--device", args.device])
    lines = "\n".join(f"- {run_dir.name}: {auc_with_error(run_dir)}; "
                      f"{'time not recorded' if seconds is None else f'{seconds / 60:.1f} min'}"
                      for run_dir, seconds in results)
    return (f"# Backbone comparison, same data and budget ({args.device})\n\n"
            f"Measured {date.today().isoformat()} on {machine}.\n\n"
            f"Command: `{command}`\n\n"
            f"Recipe `{args.recipe.relative_to(REPO) if args.recipe.is_relative_to(REPO) else args.recipe}`: "
            f"{args.train_samples} training crops (class proportions kept) for {args.epochs} epochs, "
            f"{args.val_samples} validation crops for the temperature and threshold, the whole test split "
            "for the table; every split grouped by source video. Accuracy at the EER threshold fitted on "
            "validation; log loss after temperature scaling.\n\n"
            f"{comparison_markdown(table)}\n"
            "Per model: test ROC-AUC with its standard error (Hanley and McNeil), and the wall time of "
            f"training plus test evaluation:\n{lines}\n")


def auc_with_error(run_dir: Path) -> str:
    from dfdetect.evaluate.metrics import auc_standard_error

    level = json.loads((run_dir / "eval-test" / "metrics.json").read_text())["levels"]["frame"]
    if level.get("auc") is None:
        return "no AUC"
    return f"AUC {level['auc']:.3f} ± {auc_standard_error(level['auc'], level['n_fake'], level['n_real']):.3f}"


if __name__ == "__main__":
    sys.exit(main())
