"""Faces cut by another pipeline than the scan's: what the detector and the crop's framing do to each model.

A model that learnt one extraction's framing (how much forehead, chin and background a crop holds) can fail
on crops cut another way, as in published crop sets. For each pipeline below, `dfdetect extract` cuts 16
evenly spaced frames of every FF++ clip in the pool's validation and test groups (people never trained on);
`dfdetect evaluate` scores every model on those crops as cut and after `--recrop` (the face found again in each
crop and cut as the model card says, as the scan does with any image), per crop and per clip (the mean of its
crops), at the model card's threshold. Then every clip is scanned (`dfdetect scan`, 32 frames) with each face
detector: a detector other than the model's frames faces otherwise too. Extractions, evaluations and scans
already made are reused.

    python benchmarks/extraction_shift.py runs/pool_v2.csv runs/ffpp_c23.csv \
        --models runs/v22_children/calibrated,runs/hid/pool_kd/calibrated

POOL: the manifest the models were trained on (`dfdetect pool`); INDEX: `dfdetect index ../shared/data/ffpp-c23`.
Writes benchmarks/results/extraction_shift.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd

from machine import describe_machine  # benchmarks/machine.py, beside this script

DFDETECT = [sys.executable, "-m", "dfdetect.cli"]
RESULTS = Path(__file__).resolve().parent / "results"
FRAMES = "16"

# name -> (how faces are cut, `dfdetect extract` options)
PIPELINES = {
    "scan": ("MTCNN box, no margin, faces of 40 px or more: as the scan and the pool's crops",
             ["--preset", "train", "--margin", "0", "--margin-px", "0", "--min-face", "40", "--no-balance"]),
    "mtcnn+30px": ("MTCNN box + 30 px on each side, faces of 70 px or more (the train preset)",
                   ["--preset", "train", "--no-balance"]),
    "mtcnn+30%": ("MTCNN box + 30% of its side on each side, the largest face (seed 000)", ["--preset", "seed000"]),
    "haar+20%": ("OpenCV Haar box + 20% on each side, the largest face (seed 003's pipeline)",
                 ["--preset", "seed003", "--margin", "0.2"]),
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pool", type=Path, help="the pool manifest the models were trained on")
    p.add_argument("index", type=Path, help="`dfdetect index` manifest of the FF++ clips")
    p.add_argument("--models", required=True, help="comma-separated checkpoints or model names")
    p.add_argument("--splits", default="val,test", help="the pool's splits whose FF++ groups are used")
    p.add_argument("--pipelines", default=",".join(PIPELINES), help=f"some of {', '.join(PIPELINES)}")
    p.add_argument("--scan-detectors", default="mtcnn,haar", help="detectors to scan the clips with")
    p.add_argument("--work", type=Path, default=Path("runs/extraction_shift"))
    p.add_argument("--out", type=Path, default=RESULTS / "extraction_shift.md")
    a = p.parse_args()
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    pipelines = [name.strip() for name in a.pipelines.split(",")]
    unknown = sorted(set(pipelines) - set(PIPELINES))
    if unknown:
        print(f"error: unknown pipelines {unknown}; choose from {', '.join(PIPELINES)}", file=sys.stderr)
        return 2
    a.work.mkdir(parents=True, exist_ok=True)
    clips = unseen_clips(a.pool, a.index, a.splits.split(","), a.work / "clips.csv")
    machine, commands, rows = describe_machine(), [], []
    for name in pipelines:
        crops = extract(name, clips, a.work / name, commands)
        for model in models:
            for recrop in (False, True):
                rows.append({"pipeline": name, "model": model, "recrop": recrop,
                             **evaluate(model, crops, a.work / name, recrop, commands)})
    scans = [{"detector": detector, "model": model, **scan(model, detector, clips, a.work / "scans", commands)}
             for detector in a.scan_detectors.split(",") for model in models]
    a.out.write_text(report(a, machine, clips, rows, scans, commands))
    print(f"written: {a.out}")
    return 0


def unseen_clips(pool: Path, index: Path, splits: list[str], out: Path) -> Path:
    """The index's rows of the FF++ groups that the pool put in `splits`, all marked "test"."""
    frame = pd.read_csv(pool, usecols=["dataset", "group", "split"])
    held = frame[(frame["dataset"] == "ffpp") & frame["split"].isin(splits)]["group"]
    groups = {g.split(":", 1)[1] for g in held}  # the pool prefixes each group with its source
    clips = pd.read_csv(index)
    clips = clips[clips["group"].isin(groups)].assign(split="test")
    if clips.empty:
        raise SystemExit(f"error: no clip of {index} is in the {'/'.join(splits)} FF++ groups of {pool}")
    clips.to_csv(out, index=False)
    return out


def extract(name: str, clips: Path, out: Path, commands: list) -> Path:
    command = [*DFDETECT, "extract", str(clips), str(out), "--frames", FRAMES, "--quiet", *PIPELINES[name][1]]
    commands.append(command)
    if not (out / "summary.json").exists():
        run(command)
    return out / "manifest.csv"


def evaluate(model: str, crops: Path, work: Path, recrop: bool, commands: list) -> dict:
    out = work / ("eval-" + model.strip("/").replace("/", "_") + ("-recrop" if recrop else ""))
    command = [*DFDETECT, "evaluate", model, str(crops), "--split", "all", "--level", "both", "--no-figures",
               "--device", "cpu", "--out", str(out), *(["--recrop"] if recrop else [])]
    commands.append(command)
    if not (out / "metrics.json").exists():
        run(command)
    levels = json.loads((out / "metrics.json").read_text())["levels"]
    frame, video = levels["frame"], levels.get("video", {})
    return {"crops": frame["n"], "threshold": frame["threshold"], "auc": frame["auc"], "log_loss": frame["log_loss"],
            "reals_fake": 1 - frame["specificity"], "fakes_missed": 1 - frame["sensitivity"],
            "videos": video.get("n"), "video_auc": video.get("auc")}


def scan(model: str, detector: str, clips: Path, work: Path, commands: list) -> dict:
    """Clip ROC-AUC, real clips called fake and fake clips missed when the scan finds faces with `detector`."""
    from dfdetect.evaluate.metrics import roc_auc

    out = work / (model.strip("/").replace("/", "_") + f"-{detector}.json")
    table = pd.read_csv(clips)
    command = [*DFDETECT, "scan", *table["path"], "--model", model, "--detector", detector, "--device", "cpu",
               "--json", str(out), "--quiet"]
    commands.append(command[:len(DFDETECT) + 1] + ["CLIPS"] + command[len(DFDETECT) + 1 + len(table):])
    if not out.exists():
        work.mkdir(parents=True, exist_ok=True)
        subprocess.run(command, check=False, stdout=subprocess.DEVNULL)  # exit 1 when a clip has no face
    results = pd.DataFrame(json.loads(out.read_text())["results"])
    results = results.merge(table[["path", "label"]], on="path")
    scored = results[results["verdict"].isin(["fake", "real"])]
    fake, called = scored["label"] == "fake", scored["verdict"] == "fake"
    return {"clips": len(scored), "no_face": len(results) - len(scored),
            "auc": roc_auc(fake.to_numpy().astype(int), scored["probability"].to_numpy()),
            "reals_fake": f"{int((called & ~fake).sum())} of {int((~fake).sum())}",
            "fakes_missed": f"{int((~called & fake).sum())} of {int(fake.sum())}"}


def run(command: list[str]) -> None:
    print("+", shown(command), flush=True)
    subprocess.run(command, check=True)


def shown(command: list[str]) -> str:
    return shlex.join(["dfdetect", *command[len(DFDETECT):]])


def report(a, machine: str, clips: Path, rows: list[dict], scans: list[dict], commands: list) -> str:
    table = pd.read_csv(clips)
    counts = ", ".join(f"{method} {n}" for method, n in table["method"].value_counts().sort_index().items())
    lines = [
        "# Faces cut by another pipeline: figures per extraction", "",
        f"Measured {date.today()} on {machine}.", "",
        f"Command: `python benchmarks/extraction_shift.py {' '.join(shlex.quote(x) for x in sys.argv[1:])}`", "",
        f"Clips: the FF++ c23 clips of the pool's {a.splits} groups (people never trained on): {len(table)} "
        f"({counts}). Each pipeline cuts {FRAMES} evenly spaced frames of each; a clip's score is the mean of its "
        "crops. AUC: ROC-AUC; reals called fake and fakes missed: per crop, at the model card's threshold.", "",
        "| pipeline | how faces are cut |", "|---|---|",
        *(f"| {name} | {PIPELINES[name][0]} |" for name in dict.fromkeys(r["pipeline"] for r in rows)), "",
        "| pipeline | model | crops scored | crops | AUC | log loss | reals called fake | fakes missed | clips "
        "| clip AUC |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        clip_auc = "" if r["video_auc"] is None else f"{r['video_auc']:.3f}"
        how = "cut again (`--recrop`)" if r["recrop"] else "as cut"
        lines.append(f"| {r['pipeline']} | `{r['model']}` | {how} | {r['crops']} | {r['auc']:.3f} | "
                     f"{r['log_loss']:.3f} | {r['reals_fake']:.1%} | {r['fakes_missed']:.1%} | {r['videos']} | "
                     f"{clip_auc} |")
    lines += ["", "Through the scan (each clip scanned whole, the faces found and cut by the scan itself):", "",
              "| scan's detector | model | clips | ROC-AUC | real clips called fake | fake clips missed |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {r['detector']} | `{r['model']}` | {r['clips']} | {r['auc']:.3f} | {r['reals_fake']} | "
              f"{r['fakes_missed']} |" for r in scans]
    lines += ["", "Commands (CLIPS: the clips' paths in clips.csv):", "```",
              *(shown(c) for c in dict.fromkeys(map(tuple, commands))), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
