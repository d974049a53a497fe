"""`dfdetect train CONFIG [key=value ...] [--out RUN_DIR] [--resume] [--device DEVICE]`.

Examples:
  dfdetect train configs/seed003_efficientnet_b0.yaml data.manifest=crops/manifest.csv
  dfdetect train seed002_xception data.augment=seed002_gridmask --out runs/xception_grid
  dfdetect train configs/default_lite0.yaml train.epochs=2 data.batch_size=8 --device cpu
  torchrun --nproc_per_node=4 -m dfdetect.cli train configs/seed002_efficientnet_b4.yaml   (multi-GPU)
"""

from __future__ import annotations

import argparse
import sys


class _IntermixedParser(argparse.ArgumentParser):
    """Takes key=value overrides before and after the options (`CONFIG --out DIR a=1 b=2`);
    plain argparse stops collecting positionals at the first option."""

    _inside = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inside:
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def add_arguments(parser) -> None:
    from ..devices import device_option

    parser.__class__ = _IntermixedParser
    parser.epilog = __doc__.split("\n", 2)[2]
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("config", help="recipe YAML file, or the name of one in configs/ (e.g. seed003_efficientnet_b0)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="override recipe fields, e.g. train.epochs=2 data.batch_size=8 model.pretrained=null")
    parser.add_argument("--out", metavar="RUN_DIR", help="run folder (default: runs/<recipe name>)")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run in RUN_DIR")
    parser.add_argument("--device", default="auto", type=device_option, help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    parser.add_argument("--print-config", action="store_true", help="print the resolved recipe and exit")


def run(args) -> int:
    from pathlib import Path

    from ..train.recipe import load_recipe

    recipe = load_recipe(args.config, args.overrides)
    if args.print_config:
        sys.stdout.write(recipe.to_yaml())
        return 0
    from ..train.loop import train

    run_dir = Path(args.out) if args.out else Path("runs") / recipe.name
    result = train(recipe, run_dir, resume=args.resume, device=args.device)
    if result.model_path is not None:
        print(result.model_path)
    return 0
