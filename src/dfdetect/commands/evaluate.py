"""`dfdetect evaluate CHECKPOINT MANIFEST`: score a manifest of face crops with a checkpoint and write
metrics.json, report.md, figures and per-item predictions.

Crops are scored by the shared inference core (dfdetect.models.predict), as scanning scores them.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

LEVELS = ("frame", "video", "both")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..devices import device_option
    from ..evaluate.calibration import THRESHOLD_RULES
    from .options import add_aggregation, add_tta, threshold_option

    parser.add_argument("checkpoint", help="checkpoint (.safetensors with its .json card, or its stem), an exported "
                        ".onnx model, or a bundled model name such as 'default'")
    parser.add_argument("manifest", help="CSV or Parquet table of face crops: path, label (0/1 or REAL/FAKE), "
                        "optional video, method, group, split; relative paths are read from the manifest's folder")
    parser.add_argument("--split", default="test",
                        help="rows whose 'split' is this (default: test); 'all' for every row")
    parser.add_argument("--out", type=Path, help="output folder (default: eval-<manifest>-<split> beside the "
                        "checkpoint, or in the current folder for a bundled model)")
    parser.add_argument("--level", choices=LEVELS, default="both",
                        help="score single crops, videos (crops aggregated per 'video'), or both (default)")
    add_aggregation(parser, "mean", "how crop probabilities become one per video, as scanning does")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto", type=device_option, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--workers", type=int, default=4, help="threads that decode crops (default: 4)")
    add_tta(parser, takes_mode=True)
    parser.add_argument("--fit-temperature-on", metavar="SPLIT",
                        help="fit the calibration temperature (and a rule-based threshold) on this split, e.g. val")
    rules = ("card", *THRESHOLD_RULES.names())
    parser.add_argument("--threshold", default="card", type=threshold_option(rules),
                        help=f"a probability such as 0.5, or a rule: {', '.join(rules)} (card: the model card's)")
    parser.add_argument("--group-by", metavar="COLUMN",
                        help="report accuracy per value of this column (default: 'method' when present)")
    parser.add_argument("--history", type=Path,
                        help="per-epoch training CSV to plot (default: found beside the checkpoint)")
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    parser.add_argument("--recrop", action="store_true",
                        help="find the face again in each crop and cut it as the model card says (detector, "
                             "margin), as the scan would: for crops cut by another pipeline")


# ---------------------------------------------------------------- manifest


def select_split(df, split: str):
    """Rows of one split; every row for 'all' or when the manifest has no 'split' column."""
    from ..errors import DatasetError

    if split == "all" or "split" not in df.columns:
        return df
    chosen = df[df["split"] == split]
    if chosen.empty:
        found = ", ".join(sorted(df["split"].unique()))
        raise DatasetError(f"no rows with split {split!r} in the manifest; it has: {found} (or use --split all)")
    return chosen.reset_index(drop=True)


# ---------------------------------------------------------------- inference


def _load_crop(path: str, size: int):
    from ..faces.crop import letterbox
    from ..media import read_image

    return letterbox(read_image(path), size)


def predict_logits(model, card, paths: Sequence[str | Path], *, batch_size: int = 64, tta: str | None = None,
                   workers: int = 4, progress: bool = True, skip_unreadable: bool = False, recrop=None):
    """Raw fake logits (float64 numpy, one per crop) on the model's device (`model`: a torch module or a Backend).

    Crops are read, letterboxed to ``card.input_size`` and scored by the shared Predictor, exactly as
    scanning does. Decoding runs in ``workers`` threads one batch ahead of the model. ``tta="flip"`` averages
    the logits of each crop and its mirror image. With ``skip_unreadable`` an unreadable crop gets NaN instead
    of stopping the run (MediaError). ``recrop`` (a faces.crop.Recropper) cuts each crop again as the card says.
    """
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    from tqdm import tqdm

    from ..errors import MediaError
    from ..media import read_image
    from ..models.predict import Predictor, as_backend

    predictor = Predictor.for_card(as_backend(model), card, batch_size=batch_size, tta=tta)
    paths = [str(p) for p in paths]
    logits = np.full(len(paths), np.nan, dtype=np.float64)
    batches = [range(i, min(i + batch_size, len(paths))) for i in range(0, len(paths), batch_size)]

    def load(path: str):
        try:
            if recrop is not None:
                return recrop(read_image(path))
            return _load_crop(path, card.input_size)
        except MediaError:
            if not skip_unreadable:
                raise
            return None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending = [pool.submit(load, paths[i]) for i in batches[0]] if batches else []
        for k, batch in enumerate(tqdm(batches, desc="scoring crops", unit="batch", disable=not progress,
                                       file=sys.stderr)):
            crops = [f.result() for f in pending]
            if k + 1 < len(batches):
                pending = [pool.submit(load, paths[i]) for i in batches[k + 1]]
            keep = [i for i, crop in zip(batch, crops) if crop is not None]
            if keep:
                logits[keep] = predictor.logits([c for c in crops if c is not None])
    return logits


def predict_manifest(model, card, df, *, temperature: float | None = None, **options):
    """Calibrated P(fake) for each row of a manifest DataFrame (absolute 'path' column, as read_manifest gives).

    ``temperature`` defaults to the card's; pass 1.0 for raw sigmoid probabilities (e.g. during training).
    Other options go to predict_logits.
    """
    from ..probability import apply_temperature

    logits = predict_logits(model, card, df["path"].tolist(), **options)
    return apply_temperature(logits, card.temperature if temperature is None else temperature)


# ---------------------------------------------------------------- command


def _default_out(checkpoint: str, manifest: Path, split: str) -> Path:
    from ..models import NAMED_MODELS

    name = f"eval-{manifest.stem}-{split}"
    if checkpoint in NAMED_MODELS:
        return Path.cwd() / f"eval-{checkpoint}-{manifest.stem}-{split}"
    return _weights_path(checkpoint).parent / name


def _level_table(frames, level: str, aggregate: str):
    from ..evaluate.metrics import video_level

    return frames if level == "frame" else video_level(frames, aggregate)


def run(args: argparse.Namespace) -> int:
    from ..data.manifest import read_labelled_manifest
    from ..devices import resolve_device
    from ..errors import ConfigError
    from ..evaluate.metrics import compute_metrics
    from ..evaluate.report import write_report
    from ..models.predict import load_backend
    from ..probability import apply_temperature

    if args.batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    notes: list[str] = []
    manifest = read_labelled_manifest(args.manifest)
    evaluated, calibration = _select_rows(manifest, args, notes)
    levels = _plan_levels(manifest, evaluated, args.level, notes)
    group_by = args.group_by or ("method" if "method" in manifest.columns else None)
    if group_by and group_by not in manifest.columns:
        raise ConfigError(f"--group-by {group_by!r}: no such column; the manifest has {', '.join(manifest.columns)}")

    device = resolve_device(args.device)
    model, card = load_backend(args.checkpoint, device=device)
    options = dict(batch_size=args.batch_size, tta=args.tta, workers=args.workers, skip_unreadable=True)
    if args.recrop:
        from ..faces.crop import Recropper

        options["recrop"] = Recropper(card.crop, card.input_size, device)
    else:
        _warn_if_cut_otherwise(Path(args.manifest), card, notes)
    evaluated, skipped = _score(model, card, evaluated, options, notes)
    if calibration is not None:
        calibration, _ = _score(model, card, calibration, options, notes)
    if args.recrop:
        recropped = len(evaluated) + (0 if calibration is None else len(calibration))
        notes.append(f"Crops cut again as the card says ({card.crop.detector}, margin {card.crop.margin:g}, "
                     f"{card.crop.margin_px} px); in {options['recrop'].kept} of {recropped} no face was found "
                     "and the crop was scored as given.")
    temperature, temperature_source = _temperature(card, calibration, args.fit_temperature_on, notes)
    for table in (evaluated, calibration):
        if table is not None:
            table["prob"] = apply_temperature(table["logit"].to_numpy(), temperature)

    out = args.out or _default_out(args.checkpoint, Path(args.manifest), args.split)
    out.mkdir(parents=True, exist_ok=True)
    results, thresholds = {}, {}
    for level in levels:
        table = _level_table(evaluated, level, args.aggregation)
        threshold, how = _threshold(args.threshold, card, level, table, calibration, args)
        thresholds[level] = {"value": threshold, "source": how}
        groups = table[group_by].astype(str).tolist() if group_by and group_by in table.columns else None
        results[level] = compute_metrics(table["label"].to_numpy(), table["prob"].to_numpy(), threshold, groups)
        table.assign(predicted=(table["prob"] >= threshold).astype(int)).to_csv(
            out / f"predictions_{level}.csv", index=False)
    if any("evaluated split" in t["source"] for t in thresholds.values()):
        notes.append("The threshold was chosen on the evaluated split itself: thresholded figures are optimistic.")
    if args.threshold == "card" and calibration is not None:
        notes.append("The card's threshold was set for the card's temperature; it is kept with the refitted one.")

    info = {
        "checkpoint": str(_weights_path(args.checkpoint)), "arch": card.arch, "params": card.params,
        "manifest": str(Path(args.manifest).resolve()), "split": args.split, "crops": int(len(evaluated)),
        "unreadable_skipped": skipped, "temperature": round(float(temperature), 6),
        "temperature_source": temperature_source, "thresholds": thresholds,
        "aggregate": args.aggregation if "video" in levels else None, "tta": args.tta, "recrop": args.recrop,
        "group_by": group_by,
        "device": device, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    written = write_report(out, results, info=info, history=_history_for(args), notes=notes,
                           title=f"Evaluation of {card.name} on {Path(args.manifest).name} ({args.split})",
                           figures=not args.no_figures)
    _print_summary(results, written["report"], temperature if calibration is not None else None)
    return 0


def _warn_if_cut_otherwise(manifest: Path, card, notes: list[str]) -> None:
    """A line when `dfdetect extract` recorded cutting these crops otherwise than the model's card says."""
    from ..data.extract.records import recorded_crop

    cut = recorded_crop(manifest.parent)
    if cut is None or (cut.detector, cut.margin, cut.margin_px) == (card.crop.detector, card.crop.margin,
                                                                    card.crop.margin_px):
        return
    line = (f"these crops were cut with {cut.detector}, margin {cut.margin:g}, {cut.margin_px} px (recorded in "
            f"{manifest.parent}); the model expects {card.crop.detector}, margin {card.crop.margin:g}, "
            f"{card.crop.margin_px} px, and framing changes its scores: --recrop cuts them again its way")
    print(f"warning: {line}", file=sys.stderr)
    notes.append(line[0].upper() + line[1:] + ".")


def _select_rows(manifest, args, notes: list[str]):
    """(rows to evaluate, rows to calibrate on or None)."""
    from ..errors import DatasetError

    evaluated = select_split(manifest, args.split)
    if args.split != "all" and "split" not in manifest.columns:
        notes.append(f"The manifest has no 'split' column: all {len(manifest)} rows were evaluated.")
    if not args.fit_temperature_on:
        return evaluated, None
    if "split" not in manifest.columns:
        raise DatasetError("--fit-temperature-on needs a 'split' column in the manifest")
    if args.fit_temperature_on == args.split:
        notes.append("Calibrated on the evaluated split itself: the figures are optimistic.")
    return evaluated, select_split(manifest, args.fit_temperature_on)


def _plan_levels(manifest, evaluated, level: str, notes: list[str]) -> list[str]:
    from ..errors import DatasetError

    if level == "frame":
        return ["frame"]
    if "video" not in manifest.columns:
        if level == "video":
            raise DatasetError("--level video needs a 'video' column in the manifest")
        notes.append("No 'video' column in the manifest: only frame-level metrics.")
        return ["frame"]
    if level == "both" and evaluated["video"].is_unique:
        notes.append("Every video has one crop: video level equals frame level and is not repeated.")
        return ["frame"]
    return ["frame", "video"] if level == "both" else ["video"]


def _score(model, card, rows, options: dict, notes: list[str]):
    """(rows with a 'logit' column, minus unreadable crops; how many were dropped)."""
    from ..errors import DatasetError

    rows = rows.assign(logit=predict_logits(model, card, rows["path"].tolist(), **options))
    bad = rows["logit"].isna()
    if bad.all():
        raise DatasetError(f"none of the {len(rows)} crops could be read, e.g. {rows['path'].iloc[0]}")
    if bad.any():
        first = rows.loc[bad, "path"].iloc[0]
        print(f"warning: {int(bad.sum())} unreadable crop(s) skipped, e.g. {first}", file=sys.stderr)
        notes.append(f"{int(bad.sum())} unreadable crop(s) were skipped (first: {first}).")
    return rows[~bad].reset_index(drop=True), int(bad.sum())


def _temperature(card, calibration, split: str | None, notes: list[str]) -> tuple[float, str]:
    from ..evaluate.calibration import TEMPERATURE_BOUNDS, fit_temperature

    if calibration is None:
        return float(card.temperature), "model card"
    temperature = fit_temperature(calibration["logit"].to_numpy(), calibration["label"].to_numpy())
    low, high = TEMPERATURE_BOUNDS
    if not low * 1.01 < temperature < high / 1.01:
        notes.append(f"The fitted temperature {temperature:.3g} sits at its search bound: the validation split is "
                     "too small, separates perfectly, or the model has not learnt; do not ship it.")
    return temperature, f"fitted on split {split!r} ({len(calibration)} crops)"


def _weights_path(checkpoint: str) -> Path:
    from ..models import resolve
    from ..models.predict import is_onnx

    return Path(checkpoint) if is_onnx(checkpoint) else resolve(checkpoint)[0]


def _history_for(args) -> Path | None:
    from ..evaluate.report import find_history
    from ..models import NAMED_MODELS

    if args.history is not None or args.checkpoint in NAMED_MODELS:
        return args.history
    return find_history(_weights_path(args.checkpoint).parent)


def _print_summary(results: dict, report: Path, fitted_temperature: float | None) -> None:
    def number(value):
        return "n/a" if value is None else f"{value:.4f}"

    for level, m in results.items():
        print(f"{level}: n={m['n']} accuracy={m['accuracy']:.4f} auc={number(m['auc'])} "
              f"log_loss={m['log_loss']:.4f} eer={number(m['eer'])}")
    print(f"report: {report}")
    if fitted_temperature is not None:
        print(f"fitted temperature {fitted_temperature:.4f}: put it in the model card to use it when scanning")


def _threshold(rule: str, card, level: str, table, calibration, args) -> tuple[float, str]:
    """(threshold, where it came from): the card's, a fixed number, or a rule on the calibration split's
    table at this level (the evaluated one when no calibration split was given)."""
    from ..evaluate.calibration import choose_threshold

    if rule == "card":
        return float(card.threshold), "model card"
    try:
        return choose_threshold(None, None, float(rule)), "fixed"
    except ValueError:
        pass
    if calibration is not None:
        source = _level_table(calibration, level, args.aggregation)
        return choose_threshold(source["label"].to_numpy(), source["prob"].to_numpy(), rule), \
            f"{rule} on split {args.fit_temperature_on!r}"
    return choose_threshold(table["label"].to_numpy(), table["prob"].to_numpy(), rule), f"{rule} on the evaluated split"
