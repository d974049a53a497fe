"""Evaluation outputs: metrics.json, a readable report.md with PNG figures, and a table comparing runs.

metrics.json holds ``{"info": {...}, "levels": {"frame": compute_metrics(...), "video": ...}}``.
Figures are drawn on matplotlib's Agg canvas without pyplot, so no global backend is switched.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import DfdetectError
from .history import find_history, history_columns, read_history  # noqa: F401  (find_history re-exported)

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
LEVEL_PREFERENCE = ("video", "frame")
SCORE_WORDS = ("auc", "acc", "eer", "f1", "precision", "recall", "sensitivity", "specificity", "ece")

# aliases under which a model card's metrics dict may hold the table's columns
CARD_METRIC_ALIASES = {
    "accuracy": ("accuracy", "val_accuracy", "val_acc", "acc"),
    "auc": ("auc", "val_auc", "roc_auc", "val_roc_auc"),
    "log_loss": ("log_loss", "val_log_loss", "logloss"),
    "eer": ("eer", "val_eer"),
}


# ---------------------------------------------------------------- figures


def _figure(width: float = 4.8, height: float = 4.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_roc(curves: Mapping[str, Mapping[str, Any]], path: str | Path, title: str = "ROC curve") -> Path:
    """One or more ROC curves; each value is a compute_metrics() result (needs "roc", uses "auc" and "eer")."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1, label="chance")
    for name, metrics in curves.items():
        roc = metrics.get("roc")
        if not roc:
            continue
        label = f"{name} (AUC {metrics['auc']:.3f})" if metrics.get("auc") is not None else name
        ax.plot(roc["fpr"], roc["tpr"], linewidth=1.6, label=label)
        if metrics.get("eer") is not None and len(curves) == 1:
            eer = metrics["eer"]
            ax.plot([eer], [1 - eer], "o", color="black", markersize=4, label=f"EER {eer:.3f}")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate (real called fake)",
           ylabel="true positive rate (fake caught)", title=title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, Path(path))


def plot_confusion(counts: Mapping[str, int], path: str | Path, title: str = "Confusion matrix") -> Path:
    import numpy as np

    matrix = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]])
    fig = _figure(4.0, 3.6)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(int(matrix.max()), 1))
    total = max(int(matrix.sum()), 1)
    for (row, col), value in np.ndenumerate(matrix):
        dark = value > matrix.max() / 2
        ax.text(col, row, f"{value}\n{100 * value / total:.1f}%", ha="center", va="center",
                color="white" if dark else "black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["real", "fake"], yticklabels=["real", "fake"],
           xlabel="predicted", ylabel="true", title=title)
    return _save(fig, Path(path))


def plot_reliability(bins: Mapping[str, list], path: str | Path, ece: float | None = None,
                     title: str = "Reliability diagram") -> Path:
    """Fraction of fakes against mean predicted P(fake) per bin; bar widths are the bins, the diagonal is perfect."""
    edges = bins["edges"]
    fig = _figure(4.8, 5.0)
    ax, hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
    for left, right, mean_p, frac, count in zip(edges[:-1], edges[1:], bins["mean_prob"],
                                                bins["fraction_fake"], bins["count"]):
        if not count:
            continue
        ax.bar(left, frac, width=right - left, align="edge", color="tab:blue", alpha=0.7, edgecolor="white")
        ax.plot([mean_p], [frac], "o", color="black", markersize=3)
    heading = title if ece is None else f"{title} (ECE {ece:.3f})"
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="fraction fake", title=heading)
    widths = [r - l for l, r in zip(edges[:-1], edges[1:])]
    hist.bar(edges[:-1], bins["count"], width=widths, align="edge", color="grey", edgecolor="white")
    hist.set(xlabel="predicted P(fake)", ylabel="items")
    return _save(fig, Path(path))


def plot_training_curves(history_csv: str | Path, path: str | Path) -> Path:
    """Losses on the left panel, scores in [0, 1] (AUC, accuracy, EER...) on the right; other columns such as
    learning rate or speed are left out, their scales would flatten the curves."""
    from matplotlib.ticker import MaxNLocator

    history = history_columns(read_history(history_csv))
    epochs = history.pop("epoch")
    losses = {k: v for k, v in history.items() if "loss" in k}
    scores = {k: v for k, v in history.items() if k not in losses and any(w in k for w in SCORE_WORDS)}
    fig = _figure(9.0, 3.8)
    left, right = fig.subplots(1, 2)
    for panel, series, label in ((left, losses, "loss"), (right, scores, "score")):
        for name, values in series.items():
            panel.plot(epochs, values, marker="o", markersize=3, linewidth=1.4, label=name)
        panel.set(xlabel="epoch", ylabel=label)
        panel.xaxis.set_major_locator(MaxNLocator(integer=True))
        panel.grid(alpha=0.3)
        if series:
            panel.legend(fontsize=8)
    return _save(fig, Path(path))


# ---------------------------------------------------------------- report


def _fmt(value: Any, digits: int = 4, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if percent:
        return f"{100 * value:.2f} %"
    return f"{value:.{digits}f}"


def _level_markdown(level: str, m: Mapping[str, Any], figures: Mapping[str, str]) -> list[str]:
    n_bins = len(m["reliability"]["count"])
    eer = _fmt(m.get("eer"), percent=True)
    if m.get("eer_threshold") is not None:
        eer += f" (threshold {m['eer_threshold']:.4f})"
    lines = [
        f"## {level.capitalize()} level: {m['n']} items ({m['n_fake']} fake, {m['n_real']} real)",
        "",
        "| Metric | Value |",
        "|---|---|",
        f"| Accuracy at threshold {m['threshold']:.4f} | {_fmt(m['accuracy'], percent=True)} |",
        f"| ROC-AUC | {_fmt(m.get('auc'))} |",
        f"| Log loss | {_fmt(m['log_loss'])} |",
        f"| EER | {eer} |",
        f"| Sensitivity (fakes caught, TPR) | {_fmt(m['sensitivity'])} |",
        f"| Specificity (reals passed, TNR) | {_fmt(m['specificity'])} |",
        f"| Precision | {_fmt(m['precision'])} |",
        f"| F1 | {_fmt(m['f1'])} |",
        f"| ECE ({n_bins} bins) | {_fmt(m['ece'])} |",
        "",
        "| true \\ predicted | real | fake |",
        "|---|---|---|",
        f"| real | {m['confusion']['tn']} | {m['confusion']['fp']} |",
        f"| fake | {m['confusion']['fn']} | {m['confusion']['tp']} |",
        "",
    ]
    if m.get("per_group"):
        lines += ["| Group | Items | Fake | Real | Accuracy | AUC |", "|---|---|---|---|---|---|"]
        for name, g in m["per_group"].items():
            lines.append(f"| {name} | {g['n']} | {g['n_fake']} | {g['n_real']} | "
                         f"{_fmt(g['accuracy'], percent=True)} | {_fmt(g.get('auc'))} |")
        lines.append("")
    if m.get("undefined"):
        lines += ["Not defined on this data:", ""]
        lines += [f"- {name}: {reason}" for name, reason in m["undefined"].items()]
        lines.append("")
    lines += [f"![{caption}]({file})" for caption, file in figures.items()]
    lines.append("")
    return lines


def _info_markdown(info: Mapping[str, Any]) -> list[str]:
    lines = ["| | |", "|---|---|"]
    for key, value in info.items():
        lines.append(f"| {key} | {_inline(value).replace('|', '/')} |")
    return lines + [""]


def _inline(value: Any) -> str:
    """A value of the info block on one line; {"value": x, "source": s} reads "x (s)"."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        if set(value) == {"value", "source"}:
            return f"{_inline(value['value'])} ({value['source']})"
        return "; ".join(f"{k}: {_inline(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_inline(v) for v in value[:10]) + (" ..." if len(value) > 10 else "")
    return str(value)


def write_report(out_dir: str | Path, levels: Mapping[str, Mapping[str, Any]], *,
                 info: Mapping[str, Any] | None = None, history: str | Path | None = None,
                 notes: Sequence[str] = (), title: str = "Evaluation report", figures: bool = True) -> dict[str, Path]:
    """Write metrics.json, report.md and (with ``figures``) PNGs per level into out_dir; returns name -> path.

    ``levels`` maps "frame"/"video" to compute_metrics() results. ``history`` is a per-epoch training CSV.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = dict(info or {})
    written: dict[str, Path] = {}
    metrics_path = out / METRICS_FILE
    metrics_path.write_text(json.dumps({"info": info, "levels": levels}, indent=2, allow_nan=False) + "\n")
    written["metrics"] = metrics_path

    lines = [f"# {title}", ""]
    if info:
        lines += _info_markdown(info)
    lines += [f"> {note}" for note in notes] + ([""] if notes else [])
    for level, m in levels.items():
        level_figures: dict[str, str] = {}
        if figures:
            if m.get("roc"):
                written[f"roc_{level}"] = plot_roc({level: m}, out / f"roc_{level}.png", f"ROC curve ({level} level)")
                level_figures["ROC curve"] = f"roc_{level}.png"
            written[f"confusion_{level}"] = plot_confusion(m["confusion"], out / f"confusion_{level}.png",
                                                           f"Confusion matrix ({level} level)")
            level_figures["Confusion matrix"] = f"confusion_{level}.png"
            written[f"reliability_{level}"] = plot_reliability(m["reliability"], out / f"reliability_{level}.png",
                                                               m["ece"], f"Reliability ({level} level)")
            level_figures["Reliability diagram"] = f"reliability_{level}.png"
        lines += _level_markdown(level, m, level_figures)
    if history is not None and figures:
        written["training_curves"] = plot_training_curves(history, out / "training_curves.png")
        lines += ["## Training", "", f"From `{Path(history).name}`.", "", "![Training curves](training_curves.png)", ""]
    report_path = out / REPORT_FILE
    report_path.write_text("\n".join(lines))
    written["report"] = report_path
    return written


# ---------------------------------------------------------------- comparing runs


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DfdetectError(f"cannot read {path}: {exc}") from None


def _find_metrics(run: Path) -> Path | None:
    if run.is_file():
        return run if run.suffix == ".json" and run.name == METRICS_FILE else None
    # an evaluation in a subfolder (held-out split) outranks the validation report training leaves in the run
    nested = sorted(run.glob(f"*/{METRICS_FILE}"), key=lambda p: p.stat().st_mtime)
    if nested:
        return nested[-1]
    direct = run / METRICS_FILE
    return direct if direct.is_file() else None


def _find_card(run: Path, metrics_info: Mapping[str, Any]) -> Path | None:
    """The checkpoint the metrics name, else a *.json card beside a *.safetensors in the run (or its parent)."""
    checkpoint = metrics_info.get("checkpoint")
    if checkpoint:
        card = Path(checkpoint).with_suffix(".json")
        if card.is_file():
            return card
    folder = run if run.is_dir() else run.parent
    for place in (folder, folder.parent):
        cards = sorted(w.with_suffix(".json") for w in place.glob("*.safetensors") if w.with_suffix(".json").is_file())
        if cards:
            return cards[0]
    return None


def _pick_level(levels: Mapping[str, Any], level: str) -> tuple[str, Mapping[str, Any]] | None:
    order = LEVEL_PREFERENCE if level == "auto" else (level,)
    for name in order:
        if levels.get(name):
            return name, levels[name]
    return None


def _from_card_metrics(card_metrics: Mapping[str, Any]) -> dict[str, Any]:
    found = {}
    for column, aliases in CARD_METRIC_ALIASES.items():
        found[column] = next((card_metrics[a] for a in aliases if isinstance(card_metrics.get(a), (int, float))), None)
    return found


def _run_row(run: Path, level: str) -> dict[str, Any]:
    metrics_path = _find_metrics(run)
    payload = _read_json(metrics_path) if metrics_path else {}
    levels = payload.get("levels") if "levels" in payload else ({"frame": payload} if "auc" in payload else {})
    info = payload.get("info", {})
    card_path = _find_card(run, info)
    card = _read_json(card_path) if card_path else {}
    if not metrics_path and not card:
        raise DfdetectError(f"{run}: no {METRICS_FILE} and no model card (*.json beside *.safetensors) found")
    picked = _pick_level(levels, level)
    if picked:
        level_name, m = picked
        values = {k: m.get(k) for k in CARD_METRIC_ALIASES}
        source = f"{level_name} level, {info.get('split', 'evaluation')}"
    else:
        values = _from_card_metrics(card.get("metrics", {}))
        source = "model card"
    run_name = run.parent.name if run.is_file() else run.name
    return {
        "model": card.get("arch") or card.get("name") or run_name,
        "run": run_name,
        **values,
        "params": card.get("params") or None,
        "source": source,
    }


def compare_runs(run_dirs: Iterable[str | Path], level: str = "auto"):
    """One row per run (model, run, accuracy, auc, log_loss, eer, params, source) as a pandas DataFrame.

    A run is a folder holding metrics.json (one level down, e.g. eval-faces-test/ from `dfdetect evaluate`,
    preferred, the newest first; else directly, as training writes it) and/or a checkpoint card, or a
    metrics.json path. ``level`` is "video", "frame" or "auto" (video where evaluated, else frame).
    Runs that cannot be read are listed in ``table.attrs["skipped"]`` as (run, reason).
    """
    import pandas as pd

    rows, skipped = [], []
    for run in run_dirs:
        try:
            rows.append(_run_row(Path(run), level))
        except DfdetectError as exc:
            skipped.append((str(run), str(exc)))
    columns = ["model", "run", "accuracy", "auc", "log_loss", "eer", "params", "source"]
    table = pd.DataFrame(rows, columns=columns)
    table.attrs["skipped"] = skipped
    return table


def _params_text(params: Any) -> str:
    if params is None or (isinstance(params, float) and math.isnan(params)):
        return "n/a"
    return f"{params / 1e6:.1f}M"


def comparison_markdown(table) -> str:
    """The seed-000 style table: Model, Accuracy (%), AUC-ROC, Log loss, EER, Params."""
    lines = ["| Model | Run | Accuracy (%) | AUC-ROC | Log loss | EER | Params | Source |",
             "|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples(index=False):
        accuracy = "n/a" if _missing(row.accuracy) else f"{100 * row.accuracy:.1f}"
        lines.append(f"| {row.model} | {row.run} | {accuracy} | {_fmt_or_na(row.auc, 3)} | "
                     f"{_fmt_or_na(row.log_loss, 4)} | {_fmt_or_na(row.eer, 3)} | {_params_text(row.params)} | "
                     f"{row.source} |")
    return "\n".join(lines) + "\n"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt_or_na(value: Any, digits: int) -> str:
    return "n/a" if _missing(value) else f"{value:.{digits}f}"


def write_comparison(table, out_md: str | Path) -> tuple[Path, Path]:
    """Write the Markdown table and a CSV of the raw numbers beside it (same stem)."""
    out_md = Path(out_md)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(comparison_markdown(table))
    out_csv = out_md.with_suffix(".csv")
    table.to_csv(out_csv, index=False)
    return out_md, out_csv
