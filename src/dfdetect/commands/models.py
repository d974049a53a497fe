"""`dfdetect models`: the models usable by name, with their cards' headline figures."""

from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


def run(args) -> int:
    import json

    from ..errors import CheckpointError
    from ..models import available_models, load_card, user_models_dir

    rows = []
    for name, stem in available_models().items():
        try:
            rows.append(model_row(name, stem, load_card(stem)))
        except CheckpointError as exc:  # one broken card must not hide the others
            rows.append({"name": name, "path": str(stem), "error": str(exc)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<12} {'architecture':<22} {'input':>5} {'AUC':>6} {'accuracy':>8}  figures on      source")
    for row in rows:
        if "error" in row:
            print(f"{row['name']:<12} error: {row['error']}")
            continue
        print(f"{row['name']:<12} {row['arch']:<22} {row['input_size']:>5} {_num(row['auc']):>6} "
              f"{_num(row['accuracy']):>8}  {row['measured_on']:<15} {row['source']}")
        if not row["trained_for_deepfakes"]:
            print(f"{'':<12} NOT trained to detect deepfakes")
    print(f"your own checkpoints (<name>.safetensors + <name>.json) go in {user_models_dir()} "
          "(or $DFDETECT_MODELS) and are then used with --model <name>", file=sys.stderr)
    return 0


def model_row(name: str, stem, card) -> dict:
    """The card's headline: its test figures (face level), else its validation figures."""
    from ..models.checkpoint import NAMED_MODELS

    metrics = card.metrics or {}
    figures, measured_on = ({}, "")
    for split in ("test", "validation"):
        if isinstance(metrics.get(split), dict) and "auc" in metrics[split]:
            figures = metrics[split]
            measured_on = f"{split} (n={figures.get('n', '?')})"
            break
    return {"name": name, "card_name": card.name, "arch": card.arch, "input_size": card.input_size,
            "trained_for_deepfakes": card.trained_for_deepfakes, "auc": figures.get("auc"),
            "accuracy": figures.get("accuracy"), "measured_on": measured_on or "no figures",
            "source": "bundled" if name in NAMED_MODELS else str(stem), "path": str(stem)}


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"
