"""`dfdetect calibrate CHECKPOINT MANIFEST --out NEW`: refit a trained model's temperature and thresholds on a
manifest split (default: val), with the same rules as the end of a training run, and write a copy of the
model with the new card. The weights are not changed; the input checkpoint is never overwritten."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint (.safetensors with its .json card, or its stem)")
    parser.add_argument("manifest", help="manifest of face crops with label, group and split columns")
    parser.add_argument("--split", default="val", help="rows to calibrate on (default: val)")
    parser.add_argument("--out", required=True, help="the new checkpoint (stem or .safetensors)")
    parser.add_argument("--threshold", default="eer", help="'eer', 'youden' or a probability (default: eer)")
    parser.add_argument("--max-real-fpr", type=float, default=None, metavar="SHARE",
                        help="raise the threshold until at most this share of the reals of every group of "
                             "people (source, age band, gender, ethnicity) is called fake, e.g. 0.04")
    parser.add_argument("--min-group-people", type=int, default=40,
                        help="groups with fewer distinct people than this do not bind (default: 40)")
    parser.add_argument("--fpr-groups", default="source,age_band,gender,ethnicity",
                        help="the kinds of groups --max-real-fpr bounds (default: source,age_band,gender,ethnicity)")
    parser.add_argument("--no-temperature", action="store_true", help="keep temperature 1 (raw sigmoid)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=4, help="threads that decode crops (default: 4)")


def run(args) -> int:
    import numpy as np

    from ..data.manifest import read_labelled_manifest
    from ..devices import resolve_device
    from ..errors import ConfigError
    from ..models import load_checkpoint, resolve, save_checkpoint
    from ..models.average import NOT_CALIBRATED
    from ..outputs import check_outputs
    from ..train.calibration import calibrate, card_metrics
    from ..train.recipe import CalibrationSection
    from .evaluate import _score, select_split

    out_weights, out_card = resolve(args.out)
    check_outputs({"--out": out_weights, "--out card": out_card}, inputs=[*resolve(args.checkpoint), args.manifest])
    try:
        section = CalibrationSection(fit_temperature=not args.no_temperature, threshold=args.threshold,
                                     max_real_fpr=args.max_real_fpr, min_group_people=args.min_group_people,
                                     fpr_groups=[g.strip() for g in args.fpr_groups.split(",") if g.strip()])
    except ValueError as exc:
        raise ConfigError(f"calibration options: {' '.join(str(exc).split())}") from None
    rows = select_split(read_labelled_manifest(args.manifest), args.split)
    if rows["label"].nunique() < 2:  # a temperature and threshold fitted on one class would mislead
        raise ConfigError(f"split {args.split!r} of {args.manifest} holds only {rows['label'].iloc[0]} crops; "
                          "calibration needs both real and fake ones")
    model, card = load_checkpoint(args.checkpoint, device=resolve_device(args.device))
    options = dict(batch_size=args.batch_size, workers=args.workers, skip_unreadable=True)
    rows, _ = _score(model, card, rows, options, notes=[])
    val = {"logits": rows["logit"].to_numpy(), "labels": rows["label"].to_numpy().astype(float),
           "indices": np.arange(len(rows))}
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    cal = calibrate(val, rows, section, log)
    training = dict(card.training, calibrated_on={
        "manifest": str(args.manifest), "split": args.split, "n": len(rows), "rule": section.model_dump()})
    new_card = card.model_copy(update={
        "warnings": [w for w in card.warnings if w != NOT_CALIBRATED], "temperature": cal.temperature, "threshold": cal.threshold, "video_threshold": cal.video_threshold,
        "metrics": card_metrics(args.split, cal.levels["frame"]), "training": training, "weights_sha256": ""})
    weights, _ = save_checkpoint(model, new_card, args.out)
    m = cal.levels["frame"]
    print(f"{weights}: T {cal.temperature:.3f}, threshold {cal.threshold:.4f}, {args.split} AUC {m['auc']}, "
          f"log loss {m['log_loss']:.4f} ({len(rows)} crops)")
    return 0
