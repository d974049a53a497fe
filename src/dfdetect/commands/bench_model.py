"""`dfdetect bench-model MODEL... [--manifest M --split test] [--threads 2] [--out table.md]`.

Parameters, file size, MACs, CPU latency per batch of faces (median after warm-up, threads fixed) and,
with a manifest, ROC-AUC, accuracy and log loss on one split: all models measured in one run, one table.
MODEL is a checkpoint (name, stem, .safetensors) or an exported .onnx file; LABEL=MODEL names its row.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL", help="[LABEL=]checkpoint or .onnx file")
    parser.add_argument("--manifest", help="face-crop manifest: crops for the latency batch and the metrics")
    parser.add_argument("--split", default="test", help="manifest split to measure on (default: test)")
    parser.add_argument("--limit", type=int, help="at most this many crops of the split (real/fake kept in proportion)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for every model (default: 2)")
    parser.add_argument("--batch", type=int, default=32, help="faces per timed batch (default: 32)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per model (default: 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default: 3)")
    parser.add_argument("--out", type=Path, help="write the table (Markdown) here and the figures beside it (.json)")


def run(args: argparse.Namespace) -> int:
    from ..compress.bench import markdown_table, measure
    from ..errors import ConfigError, DfdetectError

    if args.threads < 1 or args.batch < 1 or args.runs < 1 or args.warmup < 0:
        raise ConfigError("--threads, --batch and --runs must be at least 1, --warmup at least 0")
    rows = _rows(args) if args.manifest else None
    labels, figures, failed = [], [], 0
    for item in args.models:
        label, _, model = item.rpartition("=") if "=" in item else ("", "", item)
        try:
            figures.append(measure(model, threads=args.threads, batch=args.batch, runs=args.runs,
                                   warmup=args.warmup, rows=rows))
            labels.append(label or model)
            print(f"{labels[-1]}: {figures[-1].latency_s:.3f} s per {args.batch} faces", file=sys.stderr)
        except DfdetectError as exc:  # one bad model is reported; the others are still measured
            print(f"error: {model}: {exc}", file=sys.stderr)
            failed += 1
    if not figures:
        return 1
    table = markdown_table(figures, labels)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(
            [dict(label=label, **f.as_dict()) for label, f in zip(labels, figures)], indent=2) + "\n")
    return 1 if failed else 0


def _rows(args):
    from ..commands.evaluate import select_split
    from ..data.dataset import split_rows
    from ..data.manifest import read_labelled_manifest

    manifest = read_labelled_manifest(args.manifest)
    if args.limit:
        return split_rows(manifest, args.split, args.limit, seed=0)
    return select_split(manifest, args.split)
