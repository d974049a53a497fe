"""`dfdetect average A B [C ...] --out NEW`: the weight average of models fine-tuned from one start (a model
soup), written as a new checkpoint whose temperature and threshold still have to be fitted with `calibrate`."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoints", nargs="+", help="two or more checkpoints (stems, .safetensors or names)")
    parser.add_argument("--out", required=True, help="the averaged checkpoint (stem or .safetensors)")
    parser.add_argument("--weights", default=None, metavar="W1,W2,...",
                        help="one weight per checkpoint, normalised to sum 1 (default: equal)")
    parser.add_argument("--name", default="", help="the new model's name (default: the first one's + -averaged)")


def run(args) -> int:
    from ..errors import ConfigError
    from ..models import resolve, save_checkpoint
    from ..models.average import average_checkpoints
    from ..outputs import check_outputs

    try:
        weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    except ValueError:
        raise ConfigError(f"--weights: numbers separated by commas, got {args.weights!r}") from None
    out_weights, out_card = resolve(args.out)
    inputs = [path for checkpoint in args.checkpoints for path in resolve(checkpoint)]
    check_outputs({"--out": out_weights, "--out card": out_card}, inputs=inputs)
    model, card = average_checkpoints(args.checkpoints, weights, name=args.name)
    weights_path, _ = save_checkpoint(model, card, args.out)
    shares = ", ".join(f"{part['name']} {part['weight']:.3f}" for part in card.training["averaged_from"])
    print(f"{weights_path}: average of {shares}; calibrate it before use "
          f"(dfdetect calibrate {args.out} MANIFEST --out ...)")
    return 0
