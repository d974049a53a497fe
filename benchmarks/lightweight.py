"""Seed 003's table 6.2.6.1 for this project: B0, B0 -> Lite, Lite0, pruned, pruned + KD, int8, fp16.

Builds every model with `dfdetect compress` (steps whose output exists are skipped, so the script resumes),
then measures them all in one run with `dfdetect bench-model` and writes
benchmarks/results/lightweight_cpu.md (the table, the commands, the machine, `uptime`, the date).

    dfdetect index ../shared/data/dfdc-faces --out runs/dfdc_faces.csv --split group
    python benchmarks/lightweight.py runs/dfdc_faces.csv --work runs/light --limit 300 --runs 5 --warmup 2

--prune-steps 5 --finetune N: seed 003's iterative pruning with N batches of fine-tuning after each step;
--final: batches of fine-tuning (plain, or distilling from the unpruned model) after pruning.
--b0 CHECKPOINT --lite-finetune N: seed 003's pair. A trained B0 made Lite twice, from its own weights and from
the Lite ImageNet weights, each then fine-tuned for N batches. Without --b0 the B0 rows have random weights
(size and speed only). A B0 for it, where no B0 ImageNet weights can be had:

    dfdetect train configs/compare_budget.yaml model.arch=efficientnet_b0 model.pretrained=lite-imagenet \
        data.manifest=runs/dfdc_faces.csv train.epochs=1 train.max_steps_per_epoch=600 --out runs/pair/b0
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# Named outright: by name, the bundled model runs its ONNX twin on the CPU, and this row is eager PyTorch.
BUNDLED_CHECKPOINT = Path(__file__).resolve().parents[1] / "src" / "dfdetect" / "assets" / "models" / "default.safetensors"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest", help="DFDC face-crop manifest with a grouped train/val/test split")
    p.add_argument("--work", type=Path, default=Path("runs/light"))
    p.add_argument("--model", default=str(BUNDLED_CHECKPOINT),
                   help="the Lite0 checkpoint to compress and compare with (default: the bundled model's weights)")
    p.add_argument("--ratio", type=float, default=0.35, help="pruning ratio (seed 003: 35%%)")
    p.add_argument("--prune-steps", type=int, default=1, help="1: one-shot; seed 003 used 5")
    p.add_argument("--scope", default="global", choices=("global", "local"),
                   help="global: one ranking over all layers; local: every layer loses the same share")
    p.add_argument("--channels", default="all", choices=("all", "hidden"),
                   help="hidden: only the expanded channels inside the blocks (the stream between them kept)")
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate of every fine-tune")
    p.add_argument("--finetune", type=int, default=0, help="batches of fine-tuning after each pruning step")
    p.add_argument("--final", type=int, default=16, help="batches of fine-tuning after pruning")
    p.add_argument("--rounds", type=int, default=1,
                   help="the final fine-tune repeated this many times (its learning rate decays anew each time)")
    p.add_argument("--crops", type=int, default=64, help="training crops behind the Taylor importance")
    p.add_argument("--alpha", type=float, default=0.25, help="distillation weight of the teacher (seed 003: 0.25)")
    p.add_argument("--b0", help="a trained EfficientNet-B0 checkpoint for the B0 -> Lite pair")
    p.add_argument("--lite-finetune", type=int, default=0,
                   help="batches of fine-tuning after each Lite conversion (the same for both of the pair)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=10, help="timed runs per model")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    p.add_argument("--limit", type=int, help="measure on at most this many test crops (default: all)")
    p.add_argument("--out", type=Path, default=RESULTS / "lightweight_cpu.md")
    p.add_argument("--skip-build", action="store_true", help="only measure the models already built")
    a = p.parse_args()
    w, m = a.work, a.manifest
    commands = []

    def compress(name: str, model: str, *steps: str) -> Path:
        out = w / name
        last = out / f"{len(steps):02d}-{steps[-1].split(':')[0]}"
        result = last.with_suffix(".onnx") if steps[-1].startswith(("export", "quantize")) else last
        cmd = ["dfdetect", "compress", model, *steps, "--out", str(out), "--manifest", m, "--device", "cpu"]
        commands.append(cmd)
        if not a.skip_build and not (result.with_suffix(".onnx").exists() or
                                     result.with_name(result.name + ".safetensors").exists()):
            _run(cmd)
        return result

    b0_rows = _b0_rows(a, compress)
    prune = f"prune:ratio={a.ratio},scope={a.scope},steps={a.prune_steps},crops={a.crops}"
    prune += f",channels={a.channels}" if a.channels != "all" else ""
    lr = f",lr={a.lr:g}" if a.lr != 1e-4 else ""
    between = f",finetune={a.finetune}{lr}" if a.finetune else ""
    pruned = compress("pruned", a.model, prune + between, *[f"finetune:steps={a.final}{lr}"] * a.rounds)
    teach = f"{between},teacher={a.model},alpha={a.alpha}" if a.finetune else ""
    pruned_kd = compress("pruned_kd", a.model, prune + teach,
                         *[f"distill:teacher={a.model},alpha={a.alpha},steps={a.final}{lr}"] * a.rounds)
    int8 = compress("int8", a.model, "export", "quantize:mode=static")
    int8_minmax = compress("int8_minmax", str(w / "int8" / "01-export.onnx"), "quantize:mode=static,method=minmax")
    fp16 = compress("fp16", str(w / "int8" / "01-export.onnx"), "quantize:mode=fp16")
    kd_int8 = compress("pruned_kd_int8", str(pruned_kd) + ".safetensors", "export", "quantize:mode=static")

    unpruned = "Lite0 (bundled default)" if a.model == str(BUNDLED_CHECKPOINT) else f"Lite0 ({a.model})"
    what = f"{a.ratio:.0%}" + (" of the expanded channels" if a.channels == "hidden" else "")
    rows = [*b0_rows, (unpruned, a.model), (f"Lite0 pruned {what}", pruned),
            (f"Lite0 pruned {what} + KD", pruned_kd), ("Lite0 int8 (ONNX, percentile calibration)", int8),
            ("Lite0 int8 (ONNX, min-max calibration)", int8_minmax),
            ("Lite0 fp16 (ONNX)", fp16), ("Lite0 fp32 (ONNX)", w / "int8" / "01-export.onnx"),
            ("Lite0 pruned + KD, int8 (ONNX)", kd_int8)]
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    bench = ["dfdetect", "bench-model", *[f"{label}={model}" for label, model in rows], "--manifest", m,
             "--split", "test", "--threads", str(a.threads), "--runs", str(a.runs), "--warmup", str(a.warmup),
             "--out", str(a.out.with_suffix(".table.md"))]
    if a.limit:
        bench += ["--limit", str(a.limit)]
    machine = describe_machine()
    _run(bench)
    table = a.out.with_suffix(".table.md").read_text()
    a.out.write_text(_report(table + "\n\n" + _steps_table(rows), commands, bench, machine, uptime,
                               random_b0=a.b0 is None))
    print(f"written: {a.out}")
    return 0


def _b0_rows(a, compress) -> list[tuple[str, Path]]:
    """B0 and its Lite conversions: seed 003's pair when a trained B0 is given, else size and speed only."""
    if a.b0 is None:
        b0 = _random_b0(a.work / "b0_random")
        return [("EfficientNet-B0 (random init)", b0), ("B0 -> Lite0 (its weights)",
                                                         compress("b0_lite", str(b0), "lite:init=source"))]
    tune = [f"finetune:steps={a.lite_finetune}" + (f",lr={a.lr:g}" if a.lr != 1e-4 else "")] if a.lite_finetune else []
    after = f" + {a.lite_finetune} batches" if a.lite_finetune else ""
    return [("EfficientNet-B0 (trained)", Path(a.b0)),
            (f"B0 -> Lite0 (its weights){after}", compress("b0_lite_source", a.b0, "lite:init=source", *tune)),
            (f"B0 -> Lite0 (Lite ImageNet weights){after}",
             compress("b0_lite_imagenet", a.b0, "lite:init=imagenet", *tune))]


def _random_b0(stem: Path) -> Path:
    """EfficientNet-B0 with random weights under the bundled model's card: its size and speed are B0's;
    its scores mean nothing (no ImageNet B0 weights can be had offline here)."""
    from dfdetect.models import create_model, load_card, save_checkpoint
    from dfdetect.models.zoo import BACKBONES

    if not stem.with_suffix(".safetensors").exists():
        spec = BACKBONES.get("efficientnet_b0")
        card = load_card("default").model_copy(update={
            "name": "efficientnet_b0-random", "arch": "efficientnet_b0", "mean": spec.mean, "std": spec.std,
            "trained_for_deepfakes": False, "weights_sha256": "", "metrics": {}, "training": {},
            "temperature": 1.0, "threshold": 0.5, "video_threshold": None})
        save_checkpoint(create_model("efficientnet_b0"), card, stem)
    return stem


def _steps_table(rows) -> str:
    """What each compression step recorded in the cards: MACs removed, agreement with the model before it."""
    from dfdetect.models import load_card
    from dfdetect.models.predict import is_onnx, load_backend

    lines = ["| model | step | options | MACs removed | agreement crops | logit correlation | mean / max prob shift "
             "| verdicts changed |", "|---|---|---|---|---|---|---|---|"]
    for label, model in rows:
        card = load_backend(model)[1] if is_onnx(model) else load_card(model)
        for step in card.compression:
            corr = step.get("logit_correlation")
            shift = (f"{step['mean_abs_prob_diff']:.4f} / {step['max_abs_prob_diff']:.4f}"
                     if "max_abs_prob_diff" in step else "")
            cells = [label, step["step"], ", ".join(f"{k}={v}" for k, v in step.get("options", {}).items()),
                     str(step.get("macs_removed", "")), str(step.get("agreement_crops", "")),
                     "" if corr is None else f"{corr:.4f}", shift, str(step.get("verdicts_changed", ""))]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _run(cmd: list[str]) -> None:
    print("+", shlex.join(cmd), flush=True)
    subprocess.run([sys.executable, "-m", "dfdetect.cli", *cmd[1:]], check=True)


def _report(table: str, commands, bench, machine: str, uptime: str, random_b0: bool) -> str:
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    built = "\n".join(f"    {shlex.join(c)}" for c in commands)
    b0_origin = (" (EfficientNet-B0 with random weights under the bundled card is written by the script itself)"
                 if random_b0 else "")
    return f"""# Lightweight models on the CPU (seed 003's table 6.2.6.1)

Measured {date}: {machine}. `uptime` before measuring: `{uptime}`.
The machine is shared with other jobs: latencies are noisy (min-max given); all rows were measured one
after another in the same run.

{table}

Latency: one batch of 32 real DFDC face crops (224 px, already preprocessed) through the model, median of
{bench[bench.index('--runs') + 1]} runs after {bench[bench.index('--warmup') + 1]} warm-up runs, {bench[bench.index('--threads') + 1]} threads; PyTorch rows run eager fp32
(no channels_last), ONNX rows run on ONNX Runtime's CPU provider. Metrics: the DFDC test split of the
grouped manifest (source videos unseen in training), the card's temperature and threshold.

Built with{b0_origin}:

{built}

Measured with:

    python benchmarks/lightweight.py {' '.join(sys.argv[1:])}
    ({shlex.join(bench)})
"""


if __name__ == "__main__":
    sys.exit(main())
