"""`dfdetect compare RUN...`: one table of accuracy, AUC, log loss, EER and size across trained runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run folders (holding metrics.json, directly or in an eval-* subfolder, and/or a "
                        "checkpoint card) or metrics.json files")
    parser.add_argument("--out", type=Path, help="also write the table as Markdown here, and as CSV beside it")
    parser.add_argument("--level", choices=("auto", "video", "frame"), default="auto",
                        help="which evaluation level to tabulate (default: video where evaluated, else frame)")


def run(args: argparse.Namespace) -> int:
    from ..errors import DfdetectError
    from ..evaluate.report import compare_runs, comparison_markdown, write_comparison

    table = compare_runs(args.runs, level=args.level)
    skipped = table.attrs["skipped"]
    for run_dir, reason in skipped:
        print(f"skipped {run_dir}: {reason}", file=sys.stderr)
    if table.empty:
        raise DfdetectError("none of the runs had metrics to compare; evaluate them first with `dfdetect evaluate`")
    print(comparison_markdown(table), end="")
    if args.out:
        md, csv = write_comparison(table, args.out)
        print(f"wrote {md} and {csv}", file=sys.stderr)
    return 1 if skipped else 0
