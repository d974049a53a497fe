"""Leave one source out: what each change to the recipe does for a source that training never saw.

For each variant: a pool with the held-out source wholly in test (`dfdetect pool --hold-out`), a small-budget
run of configs/loso_small.yaml with the variant's overrides, then `dfdetect evaluate` on the held-out source
only, at frame and video level. Finished runs are kept and reused when the script is run again.

    python benchmarks/loso.py --hold-out ffpp --start default \
        --sources dfdc=runs/dfdc_faces.csv,ffpp=runs/ffpp_crops/manifest.csv,real-faces=runs/real_faces.csv
    python benchmarks/loso.py --hold-out dfdc --start imagenet --sources ...
    python benchmarks/loso.py ... --seeds 3 --seeded codec+sources+sbi50,sbi-only   # three runs of those two
    python benchmarks/loso.py ... --variants average:sbi-only+sbi50 --seeds 3 --out ...  # parts trained as needed

--start: `default` (the bundled v1 model: DFDC-trained, so only fair when DFDC is not the held-out source),
`imagenet`, or a checkpoint path. Writes benchmarks/results/loso_<held-out>.md with the commands.
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

import pandas as pd

from machine import describe_machine  # benchmarks/machine.py, beside this script

REPO = Path(__file__).resolve().parents[1]
DFDETECT = [sys.executable, "-m", "dfdetect.cli"]

# name -> (what it changes, recipe overrides); each row adds one change to the one before it.
VARIANTS = {
    "start": ("the starting checkpoint as it is, not trained on the pool (not with --start imagenet)", None),
    "v1-recipe": ("the v1 recipe: strong chain (JPEG 30-100, downscale 0.3-0.9), SBI 0.25, classes balanced "
                  "over the whole pool",
                  ["data.augment=strong", "data.sbi_fraction=0.25", "data.source_share_power=null"]),
    "codec": ("+ resolution and codec variety (0.25-1x, JPEG or H.264)",
              ["data.augment=multisource", "data.sbi_fraction=0.25", "data.source_share_power=null"]),
    "codec+sources": ("+ real/fake balanced within each source, sources by sqrt(size), SBI 0.3 (the v2 recipe)",
                      ["data.augment=multisource", "data.sbi_fraction=0.3", "data.source_share_power=0.5"]),
    "codec+sources+sbi50": ("+ SBI on half of the reals",
                            ["data.augment=multisource", "data.sbi_fraction=0.5", "data.source_share_power=0.5"]),
    "codec+sources+sbi75": ("+ SBI on three quarters of the reals",
                            ["data.augment=multisource", "data.sbi_fraction=0.75", "data.source_share_power=0.5"]),
    "sbi-only": ("as codec+sources+sbi50, but the only fakes are self-blended: the pool's fakes are left out",
                 ["data.augment=multisource", "data.sbi_fraction=0.5", "data.source_share_power=0.5",
                  "data.self_blended_only=true"]),
    "sbi-third": ("as codec+sources+sbi50, but two thirds of each source's draws go to its reals: real, "
                  "self-blended and the pool's fakes a third each (the pool's fakes were half)",
                  ["data.augment=multisource", "data.sbi_fraction=0.5", "data.source_share_power=0.5",
                   "data.real_share=0.667"]),
    "sbi50+c40": ("as codec+sources+sbi50, with a third of the codec draws hard (0.6-1x, JPEG 15-40 or H.264 "
                  "CRF 36-46: the multisource_c40 chain)",
                  ["data.augment=multisource_c40", "data.sbi_fraction=0.5", "data.source_share_power=0.5"]),
    "sbi-only+c40": ("as sbi-only, with the multisource_c40 chain",
                     ["data.augment=multisource_c40", "data.sbi_fraction=0.5", "data.source_share_power=0.5",
                      "data.self_blended_only=true"]),
    "balanced": ("as codec+sources, but each source's draws leave real and fake labels equal after self-blending "
                 "(real 50%, self-blended 21%, the pool's fakes 29%; sbi50 drew them 25/25/50)",
                 ["data.augment=multisource", "data.sbi_fraction=0.3", "data.source_share_power=0.5",
                  "data.real_share=balanced"]),
}

# name -> (what it is, the variants whose models of the same seed are averaged by `dfdetect average`).
AVERAGES = {
    "average:sbi-only+sbi50": ("the weight average of the sbi-only and codec+sources+sbi50 models of the same seed "
                               "(a model soup: both start from one checkpoint)", ("sbi-only", "codec+sources+sbi50")),
    "average:sbi-only+sbi50c40": ("the weight average of the sbi-only and sbi50+c40 models of the same seed",
                                  ("sbi-only", "sbi50+c40")),
    "average:c40": ("the weight average of the sbi-only+c40 and sbi50+c40 models of the same seed",
                    ("sbi-only+c40", "sbi50+c40")),
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hold-out", required=True, help="the source to leave out (a name in --sources)")
    parser.add_argument("--sources", required=True, help="NAME=MANIFEST,... as for `dfdetect pool`")
    parser.add_argument("--start", default="imagenet", help="default | imagenet | a checkpoint")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"some of: {', '.join([*VARIANTS, *AVERAGES])} (averages train their parts as needed)")
    parser.add_argument("--seeds", type=int, default=1, help="runs per variant, with train.seed 0, 1, ...: two runs "
                        "of one recipe differ, and means tell recipes apart more surely")
    parser.add_argument("--seeded", default=None, help="the variants that get --seeds runs (default: all); the "
                        "others run once, with seed 0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-held-out", type=int, default=None,
                        help="evaluate on this many rows of the held-out source, drawn at random (seed 0)")
    parser.add_argument("--runs-dir", type=Path, default=REPO / "runs" / "loso")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    machine = describe_machine()
    work = args.runs_dir / f"without-{args.hold_out}"
    work.mkdir(parents=True, exist_ok=True)
    pool, held = work / "pool.csv", work / "held_out.csv"
    commands = [[*DFDETECT, "pool", *args.sources.split(","), "--out", str(pool), "--hold-out", args.hold_out]]
    run(commands[-1])
    from dfdetect.data.manifest import read_manifest, write_manifest

    rows = read_manifest(pool)
    held_rows = rows[rows["dataset"] == args.hold_out]
    if args.max_held_out and len(held_rows) > args.max_held_out:  # 26,000 DFDC crops take long on a CPU
        held_rows = held_rows.sample(args.max_held_out, random_state=0)
    write_manifest(held_rows, held)
    results = []
    seeded = set(args.seeded.split(",")) if args.seeded else {*VARIANTS, *AVERAGES}
    for name in args.variants.split(","):
        runs = args.seeds if name in seeded and (name in AVERAGES or VARIANTS[name][1] is not None) else 1
        for seed in range(runs):
            results.append((name, seed, *train_and_evaluate(name, seed, args, pool, held, work, commands)))
    out = args.out or REPO / "benchmarks" / "results" / f"loso_{args.hold_out}.md"
    out.write_text(report(args, machine, results, commands))
    print(out.read_text())
    return 0


def train_and_evaluate(name: str, seed: int, args, pool: Path, held: Path, work: Path, commands: list
                       ) -> tuple[dict, float]:
    run_name = name if seed == 0 else f"{name}-seed{seed}"
    run_dir = work / run_name
    if name in AVERAGES:
        return average_and_evaluate(name, seed, args, pool, held, work, commands)
    overrides = VARIANTS[name][1]
    if overrides is not None and seed:
        overrides = [*overrides, f"train.seed={seed}"]
    start = [] if args.start == "imagenet" else [f"model.init_from={args.start}"]
    train = [*DFDETECT, "train", "configs/loso_small.yaml", f"data.manifest={pool}", f"name=loso_{run_name}",
             *(overrides or []), *start, "--out", str(run_dir), "--device", args.device]
    model = args.start if overrides is None else str(run_dir / "model")
    evaluate = [*DFDETECT, "evaluate", model, str(held), "--split", "test", "--level", "both",
                "--device", args.device, "--out", str(run_dir / "eval-held-out")]
    commands += [evaluate] if overrides is None else [train, evaluate]
    timing = run_dir / "minutes.txt"  # kept, so that a rerun reports the time the run took
    if not (run_dir / "eval-held-out" / "metrics.json").exists():
        began = time.perf_counter()
        if overrides is not None and not (run_dir / "model.json").exists():
            run(train + (["--resume"] if (run_dir / "checkpoints").exists() else []))
        run(evaluate)
        timing.write_text(f"{(time.perf_counter() - began) / 60:.1f}\n")
    return figures(run_dir / "eval-held-out"), float(timing.read_text()) if timing.exists() else float("nan")


def average_and_evaluate(name: str, seed: int, args, pool: Path, held: Path, work: Path, commands: list
                         ) -> tuple[dict, float]:
    """Train the parts (or reuse their runs), average their models, evaluate the average on the held-out source."""
    run_dir = work / (name if seed == 0 else f"{name}-seed{seed}")
    parts = AVERAGES[name][1]
    minutes = sum(train_and_evaluate(part, seed, args, pool, held, work, commands)[1] for part in parts)
    part_models = [str(work / (part if seed == 0 else f"{part}-seed{seed}") / "model") for part in parts]
    average = [*DFDETECT, "average", *part_models, "--out", str(run_dir / "model")]
    evaluate = [*DFDETECT, "evaluate", str(run_dir / "model"), str(held), "--split", "test", "--level", "both",
                "--device", args.device, "--out", str(run_dir / "eval-held-out")]
    commands += [average, evaluate]
    if not (run_dir / "eval-held-out" / "metrics.json").exists():
        if not (run_dir / "model.json").exists():
            run(average)
        run(evaluate)
    return figures(run_dir / "eval-held-out"), minutes


def run(command: list[str]) -> None:
    print("$", shown(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, cwd=REPO)


def shown(command: list[str]) -> str:
    return shlex.join(["dfdetect", *command[len(DFDETECT):]] if command[:len(DFDETECT)] == DFDETECT else command)


def figures(eval_dir: Path) -> dict:
    """Frame and video ROC-AUC and log loss on the held-out source, and video AUC per method against its reals
    (crops stand for videos where each video gave one crop, as DFDC's face crops do)."""
    from dfdetect.evaluate.metrics import roc_auc

    levels = json.loads((eval_dir / "metrics.json").read_text())["levels"]
    out = {level: {k: levels[level].get(k) for k in ("n", "auc", "log_loss", "accuracy")} for level in levels}
    level = "video" if (eval_dir / "predictions_video.csv").exists() else "frame"
    videos = pd.read_csv(eval_dir / f"predictions_{level}.csv", dtype={"method": str})
    reals = videos[videos["label"] == 0]
    out["video_auc_per_method"] = {
        method: float(roc_auc(pd.concat([reals, fakes])["label"].to_numpy(), pd.concat([reals, fakes])["prob"].to_numpy()))
        for method, fakes in videos[videos["label"] == 1].groupby("method") if len(reals)
    }
    return out


def _means_over_seeds(results) -> list[str]:
    """Per variant run with several seeds: the mean and range of its headline figure (video ROC-AUC where the
    held-out source has videos, else frame ROC-AUC)."""
    by_variant: dict[str, list[float]] = {}
    for name, _seed, f, _minutes in results:
        video_auc = (f.get("video") or {}).get("auc")
        headline = video_auc if video_auc is not None else f["frame"]["auc"]
        if headline is not None:  # None where the held-out rows have one label
            by_variant.setdefault(name, []).append(headline)
    several = {name: values for name, values in by_variant.items() if len(values) > 1}
    if not several:
        return []
    return ["", "Over seeds (video ROC-AUC, or frame ROC-AUC where there are no videos): " + "; ".join(
        f"{name} mean {sum(v) / len(v):.3f} ({min(v):.3f}-{max(v):.3f}, {len(v)} runs)" for name, v in several.items())
        + "."]


def report(args, machine: str, results, commands) -> str:
    def num(x):
        return "n/a" if x is None else f"{x:.3f}"

    lines = ["| variant | what changes | seed | frame ROC-AUC | frame log loss | video ROC-AUC | video AUC per method "
             "| minutes |", "|---|---|---|---|---|---|---|---|"]
    for name, seed, f, minutes in results:
        methods = ", ".join(f"{m} {a:.3f}" for m, a in f.get("video_auc_per_method", {}).items()) or "n/a"
        video = f.get("video", {})
        what = (VARIANTS.get(name) or AVERAGES[name])[0]
        lines.append(f"| {name} | {what} | {seed} | {num(f['frame']['auc'])} ({f['frame']['n']} crops) | "
                     f"{num(f['frame']['log_loss'])} | {num(video.get('auc'))} ({video.get('n', 0)} videos) | "
                     f"{methods} | {minutes:.0f} |")
    lines += _means_over_seeds(results)
    shown_commands = "\n".join(dict.fromkeys(shown(c) for c in commands))  # an average repeats its parts' commands
    return (f"# Leave one source out: {args.hold_out} never seen in training\n\n"
            f"Measured {date.today().isoformat()} on {machine}.\n\n"
            f"Start: `{args.start}`. Recipe `configs/loso_small.yaml` (2 epochs of 100 steps of 32 crops) with each "
            f"variant's overrides; the pool holds every source but {args.hold_out} in train/val, and all of "
            f"{args.hold_out} in test. Figures on {args.hold_out} only"
            + (f" ({args.max_held_out} of its rows, drawn at random)" if args.max_held_out else "")
            + "; video level is the mean over a video's crops.\n\n" + "\n".join(lines) + "\n\nCommands:\n```\n" + shown_commands + "\n```\n")


if __name__ == "__main__":
    sys.exit(main())
