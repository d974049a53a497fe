"""A model's figures per source, measured the way a user meets it (through `Detector.scan`) where the source is
media, and with `dfdetect evaluate` where it is face crops; several models side by side in one run.

    .venv/bin/python benchmarks/source_figures.py runs/pool_v2.csv --models default,runs/default_v2/model \
        [--real-faces 750] [--out benchmarks/results/source_figures.md]

Per model:
  real faces   the pool's held-back real-faces rows (test split; never trained on), each photo scanned as a
               user scans it: share called FAKE at the card's threshold, per age band, gender and ethnicity
  sample clip  `dfdetect sample`, a real face
  DFDC clips   the six shared clips (../shared/data/dfdc-videos)
  FF++ clips   every shared FaceForensics++ c23 clip scanned; video ROC-AUC per method against the reals,
               on the clips of the pool's test split and of test + validation (groups never trained on)
  DFDC crops   `dfdetect evaluate` on the pool's DFDC test crops (source videos never trained on)
Writes a Markdown report and a JSON file of every number beside it; a model that file already holds is not
measured again (pass a bundled model by a path of its own, since `default` changes when a model is bundled).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from machine import describe_machine  # benchmarks/machine.py, beside this script

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("pool", type=Path, help="the pool manifest the models were trained from (dfdetect pool)")
    parser.add_argument("--models", default="default", help="comma-separated checkpoints")
    parser.add_argument("--real-faces", type=int, default=None, help="scan only the first N held-back real faces")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fresh", action="store_true", help="measure again models the output JSON already holds")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "source_figures.md")
    args = parser.parse_args()
    from dfdetect.data.manifest import read_manifest

    pool = read_manifest(args.pool)
    started = describe_machine()
    # Models measured by an earlier run into the same file are kept (accuracy figures do not depend on load).
    known = json.loads(args.out.with_suffix(".json").read_text()) if args.out.with_suffix(".json").exists() else {}
    figures = {model: known[model] if model in known and not args.fresh else measure(model, pool, args)
               for model in args.models.split(",")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # The JSON keeps every model measured, not only this run's: the bundled card reads its model's figures there.
    args.out.with_suffix(".json").write_text(json.dumps({**known, **figures}, indent=2, default=float))
    args.out.write_text(report(figures, args, started))
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}", file=sys.stderr)
    return 0


def measure(model: str, pool: pd.DataFrame, args) -> dict:
    from dfdetect import Detector
    from dfdetect.samples import sample_video_path

    detector = Detector.load(model, device=args.device, sampling="32")
    out = {"threshold": detector.threshold, "name": detector.card.name}
    t0 = time.perf_counter()
    out["real_faces"] = real_faces(detector, pool, args.real_faces)
    sample = detector.scan(sample_video_path())
    out["sample_clip"] = {"verdict": sample.verdict, "probability": sample.probability}
    out["dfdc_clips"] = dfdc_clips(detector)
    out["ffpp_clips"] = ffpp_clips(detector, pool)
    out["dfdc_crops"] = evaluate_crops(model, pool, args)
    out["minutes"] = round((time.perf_counter() - t0) / 60, 1)
    print(f"{model}: done in {out['minutes']} min", file=sys.stderr)
    return out


def real_faces(detector, pool: pd.DataFrame, limit: int | None) -> dict:
    from dfdetect.evaluate.fairness import describe_people, fairness_summary, false_positive_table, worst_groups

    rows = pool[(pool["dataset"] == "real-faces") & (pool["split"] == "test")]
    rows = rows.head(limit) if limit else rows
    results = [detector.scan(path) for path in rows["path"]]
    verdicts = np.array([r.verdict for r in results])
    table = false_positive_table(describe_people(rows), verdicts == "fake")
    return {"n": len(rows), "no_face": int((verdicts == "no_face").sum()),
            "unsure": int(sum(bool(getattr(r, "unsure", False)) for r in results)),
            **fairness_summary(table), "worst": worst_groups(table), "table": table.to_dict("records")}


def dfdc_clips(detector) -> list[dict]:
    labels = pd.read_csv(SHARED / "dfdc-videos" / "labels.csv")
    out = []
    for row in labels.itertuples():
        result = detector.scan(SHARED / "dfdc-videos" / row.path)
        out.append({"clip": Path(row.path).stem, "label": row.label.lower(), "verdict": result.verdict,
                    "probability": result.probability})
    return out


def ffpp_clips(detector, pool: pd.DataFrame) -> dict:
    """Every shared FF++ clip scanned, with the pool split its group is in."""
    labels = pd.read_csv(SHARED / "ffpp-c23" / "labels.csv", dtype=str)
    ffpp = pool[pool["dataset"] == "ffpp"].drop_duplicates("video").set_index("video")["split"]
    clips = []
    for row in labels.itertuples():
        result = detector.scan(SHARED / "ffpp-c23" / row.path)
        video = f"{'youtube' if row.label == 'REAL' else row.method}/{Path(row.path).stem}"
        clips.append({"video": video, "method": row.method, "label": int(row.label == "FAKE"),
                      "split": ffpp.get(video, ""), "verdict": result.verdict,
                      "probability": result.probability if result.probability is not None else 0.5})
    frame = pd.DataFrame(clips)
    aucs = {}
    for scope, splits in (("test", {"test"}), ("val+test", {"val", "test"}), ("all clips", {"train", "val", "test"})):
        part = frame[frame["split"].isin(splits)]
        reals = part[part["label"] == 0]
        per = {}
        for method in ("all", *FFPP_METHODS):
            fakes = part[part["label"] == 1] if method == "all" else part[part["method"] == method]
            both = pd.concat([reals, fakes])
            per[method] = {"auc": _auc(both), "n_real": len(reals), "n_fake": len(fakes)}
        aucs[scope] = per
    return {"auc": aucs, "clips": clips}


def _auc(frame: pd.DataFrame):
    from dfdetect.evaluate.metrics import roc_auc

    if frame["label"].nunique() < 2:
        return None
    return float(roc_auc(frame["label"].to_numpy(), frame["probability"].to_numpy()))


def evaluate_crops(model: str, pool: pd.DataFrame, args) -> dict:
    """`dfdetect evaluate` on the pool's DFDC test crops, flip TTA, as the card's figures are made."""
    from dfdetect.data.manifest import write_manifest

    work = REPO / "runs" / "source_figures"
    work.mkdir(parents=True, exist_ok=True)
    manifest = write_manifest(pool[(pool["dataset"] == "dfdc") & (pool["split"] == "test")], work / "dfdc_test.csv")
    out = work / (model.replace("/", "_") + "-dfdc-test")
    command = [sys.executable, "-m", "dfdetect.cli", "evaluate", model, str(manifest), "--split", "test",
               "--tta", "flip", "--device", args.device, "--out", str(out)]
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    level = json.loads((out / "metrics.json").read_text())["levels"]["frame"]
    return {key: level.get(key) for key in ("n", "auc", "log_loss", "accuracy", "ece")}


def report(figures: dict, args, machine: str) -> str:
    models = list(figures)
    head = "| | " + " | ".join(f"`{m}`" for m in models) + " |\n|---|" + "---|" * len(models) + "\n"

    def line(name, cell):
        return f"| {name} | " + " | ".join(cell(figures[m]) for m in models) + " |\n"

    def pct(x):
        return "n/a" if x is None else f"{x:.1%}"

    def num(x):
        return "n/a" if x is None else f"{x:.3f}"

    rows = [line("threshold (card)", lambda f: f"{f['threshold']:.3f}"),
            line("real faces: called FAKE", lambda f: f"{pct(f['real_faces']['fpr'])} of {f['real_faces']['n']}"),
            line("real faces: worst age band", lambda f: _worst(f, "age_band")),
            line("real faces: worst gender", lambda f: _worst(f, "gender")),
            line("real faces: worst ethnicity", lambda f: _worst(f, "ethnicity")),
            line("real faces: unsure / no face", lambda f: f"{f['real_faces']['unsure']} / {f['real_faces']['no_face']}"),
            line("sample clip (real)", lambda f: f"{f['sample_clip']['verdict'].upper()} {num(f['sample_clip']['probability'])}"),
            line("DFDC clips right", lambda f: f"{sum(c['verdict'] == c['label'] for c in f['dfdc_clips'])} of 6"),
            line("DFDC crops ROC-AUC / log loss", lambda f: f"{num(f['dfdc_crops']['auc'])} / {num(f['dfdc_crops']['log_loss'])}")]
    for scope in ("test", "val+test", "all clips"):
        for method in ("all", *FFPP_METHODS):
            rows.append(line(f"FF++ video ROC-AUC, {method}, {scope}", lambda f, s=scope, m=method: _ffpp(f, s, m)))
    clips = "".join(line(f"DFDC clip {c['clip']} ({c['label']})", lambda f, i=i: _clip(f["dfdc_clips"][i]))
                    for i, c in enumerate(figures[models[0]]["dfdc_clips"]))
    fairness = "".join(f"\n### `{m}`: false positives on held-back real faces\n\n"
                       + _fairness_table(figures[m]) for m in models)
    command = " ".join(["python benchmarks/source_figures.py", str(args.pool), "--models", args.models]
                       + (["--real-faces", str(args.real_faces)] if args.real_faces else []))
    return (f"# Figures per source\n\nMeasured {date.today().isoformat()} on {machine}.\n\n"
            f"Command: `{command}`\n\n"
            "Real faces, the sample clip, the DFDC and FF++ clips go through `Detector.scan` (32 frames, the "
            "card's detector, crop and threshold, max_track aggregation over the people the model can judge: "
            "one whose faces are too small, blurred or turned away counts only when no one else can be judged); "
            "DFDC crops through `dfdetect evaluate` "
            "with flip TTA. FF++ scopes: clips of the pool's test split; of its test and validation splits "
            "(groups never trained on); of every split (training clips included, so not a held-out figure).\n\n"
            + head + "".join(rows) + clips + fairness)


def _worst(f, attribute) -> str:
    w = f["real_faces"]["worst"].get(attribute)
    return "n/a" if w is None else f"{w['group']} {w['fpr']:.1%} (n={w['n']})"


def _ffpp(f, scope, method) -> str:
    cell = f["ffpp_clips"]["auc"][scope][method]
    auc = "n/a" if cell["auc"] is None else f"{cell['auc']:.3f}"
    return f"{auc} ({cell['n_fake']} fake, {cell['n_real']} real)"


def _clip(c) -> str:
    p = "n/a" if c["probability"] is None else f"{c['probability']:.3f}"
    return f"{c['verdict'].upper()} {p}"


def _fairness_table(f) -> str:
    from dfdetect.evaluate.fairness import fairness_markdown

    return fairness_markdown(pd.DataFrame(f["real_faces"]["table"]))


if __name__ == "__main__":
    sys.exit(main())
