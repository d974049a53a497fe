"""`dfdetect compress MODEL STEP... --out DIR`: make a model smaller and faster for CPUs.

Examples:
  dfdetect compress runs/b0/model lite finetune:steps=300 --manifest faces.csv --out runs/b0-lite
  dfdetect compress default prune:ratio=0.35,steps=5,finetune=60,teacher=default --manifest faces.csv --out runs/pruned
  dfdetect compress default export quantize:mode=static --manifest faces.csv --out runs/int8
Each step's result is a normal model in DIR (NN-step.safetensors + .json, or NN-step.onnx).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..compress.steps import STEPS, step_options

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "steps (name:option=value,...):\n" + "\n".join(
        f"  {name:9s} {_doc(STEPS.get(name))}\n            "
        + ", ".join(f"{k}={v}" for k, v in step_options(name).items()) for name in STEPS)
    parser.add_argument("model", help="checkpoint (name, stem or .safetensors) or an exported .onnx (quantize only)")
    parser.add_argument("steps", nargs="+", metavar="STEP",
                        help="name or name:key=value,... e.g. prune:ratio=0.35,steps=5 (see below)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the result of every step")
    parser.add_argument("--manifest", help="face-crop manifest with train/val/test splits: Taylor gradients and "
                        "fine-tunes use train, int8 calibration val, agreement checks test")
    parser.add_argument("--device", default="auto", help="device for fine-tuning (default: cuda when available)")


def _doc(step) -> str:
    return (step.__doc__ or "").strip().split("\n")[0]


def run(args: argparse.Namespace) -> int:
    from ..compress.steps import Context, run_pipeline
    from ..devices import resolve_device

    context = Context(out=args.out, manifest=args.manifest, device=resolve_device(args.device))
    written = run_pipeline(args.model, args.steps, context)
    print(f"final model: {written[-1]}")
    return 0
