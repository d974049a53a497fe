"""Scan results: typed, JSON-serialisable, able to save and render themselves."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterable, Literal

from pydantic import BaseModel, Field

Verdict = Literal["fake", "real", "no_face", "error"]
CSV_COLUMNS = [
    "path", "verdict", "probability", "track_id", "track_probability", "track_verdict",
    "frame_index", "time_s", "x1", "y1", "x2", "y2", "face_probability", "error", "unsure",
]


class FaceScore(BaseModel):
    frame_index: int
    time_s: float
    box: tuple[float, float, float, float]
    detector_score: float
    probability: float


class TrackResult(BaseModel):
    track_id: int
    probability: float
    verdict: Literal["fake", "real"]
    faces: list[FaceScore]
    # Why this person's faces lie outside what the model knows (dfdetect.quality); empty when they do not.
    unsure_reasons: list[str] = Field(default_factory=list)


class MediaSummary(BaseModel):
    kind: Literal["video", "image"]
    width: int
    height: int
    fps: float = 0.0
    frame_count: int = 1
    duration_s: float = 0.0
    rotation: int = 0


class ModelSummary(BaseModel):
    name: str
    arch: str
    trained_for_deepfakes: bool
    temperature: float


class ScanResult(BaseModel):
    path: str
    verdict: Verdict
    probability: float | None = None
    threshold: float = 0.5
    aggregation: str = ""
    detector: str = ""
    frames_sampled: int = 0
    tracks: list[TrackResult] = Field(default_factory=list)
    media: MediaSummary | None = None
    model: ModelSummary | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    error: str | None = None
    # The verdict stands, but some scored person's faces lie outside what the model knows; the reasons say how.
    unsure: bool = False
    unsure_reasons: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict != "error"

    def summary_line(self) -> str:
        name = Path(self.path).name
        if self.verdict == "error":
            return f"{name}: error: {self.error}"
        if self.verdict == "no_face":
            return f"{name}: no_face (no face found in {self.frames_sampled} sampled frames)"
        people = len(self.tracks)
        return (f"{name}: {self.verdict.upper()} p(fake)={self.probability:.3f} "
                f"({people} {'person' if people == 1 else 'people'}, {self.frames_sampled} frames, "
                f"{self.timings.get('total_s', 0):.1f}s)"
                + (f" UNSURE: {'; '.join(self.unsure_reasons)}" if self.unsure else ""))

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def save_json(self, path: str | Path) -> Path:
        return write_json([self], path)

    def save_csv(self, path: str | Path) -> Path:
        return write_csv([self], path)

    def csv_rows(self) -> list[dict]:
        base = {"path": self.path, "verdict": self.verdict, "probability": self.probability, "error": self.error,
                "unsure": "; ".join(self.unsure_reasons)}
        rows = [
            {**base, "track_id": t.track_id, "track_probability": t.probability, "track_verdict": t.verdict,
             "frame_index": f.frame_index, "time_s": f.time_s, "x1": f.box[0], "y1": f.box[1],
             "x2": f.box[2], "y2": f.box[3], "face_probability": f.probability}
            for t in self.tracks for f in t.faces
        ]
        return rows or [base]

    def render(self, out_path: str | Path) -> Path:
        """Annotated copy of the input (video or image): a red (fake) or green (real) box per face."""
        from .render import render_result

        return render_result(self, out_path)


class ScanBatch(BaseModel):
    """The JSON file format of `dfdetect scan --json`."""

    dfdetect_version: str
    results: list[ScanResult]


def write_report(results: Iterable[ScanResult], path: str | Path, explanations: dict | None = None) -> Path:
    """A Markdown report a person reads: one line per item, then each person's score and sightings, and
    where `explanations` (dfdetect.explain.ExplanationFiles by result path) has them, the timeline and the
    faces with their heat maps."""
    from . import __version__

    results = list(results)
    counts = {v: sum(r.verdict == v for r in results) for v in ("fake", "real", "no_face", "error")}
    lines = [f"# dfdetect scan report ({len(results)} items)", "",
             ", ".join(f"{n} {v}" for v, n in counts.items()), ""]
    model = next((r.model for r in results if r.model), None)
    if model:
        lines.append(f"Model: {model.name} ({model.arch}), temperature {model.temperature:g}; dfdetect {__version__}.")
    lines += [f"> **Warning:** {w}" for w in sorted({w for r in results for w in r.warnings})]
    lines += ["", "| item | verdict | p(fake) | people | frames | seconds | note |", "|---|---|---|---|---|---|---|"]
    for r in results:
        p = "" if r.probability is None else f"{r.probability:.3f}"
        note = r.error or ("unsure: " + "; ".join(r.unsure_reasons) if r.unsure else "")
        lines.append(f"| {Path(r.path).name} | **{r.verdict}** | {p} | {len(r.tracks)} | {r.frames_sampled} | "
                     f"{r.timings.get('total_s', 0):.1f} | {note.replace('|', '/')} |")
    for r in results:
        if not r.tracks:
            continue
        lines += ["", f"## {Path(r.path).name}: {r.verdict} (p(fake) {r.probability:.3f}, threshold {r.threshold:g}, "
                      f"{r.aggregation})", "", "| person | verdict | p(fake) | faces | seen from - to (s) | face p(fake) min - max |",
                  "|---|---|---|---|---|---|"]
        for t in r.tracks:
            times = [f.time_s for f in t.faces]
            probs = [f.probability for f in t.faces]
            lines.append(f"| {t.track_id} | {t.verdict} | {t.probability:.3f} | {len(t.faces)} | "
                         f"{min(times):.1f} - {max(times):.1f} | {min(probs):.3f} - {max(probs):.3f} |")
        if explanations and explanations.get(r.path):
            lines += _explanation_lines(explanations[r.path], Path(path).parent)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, "\n".join(lines) + "\n")
    return path


def _explanation_lines(files, report_dir: Path) -> list[str]:
    import os

    def link(p: Path) -> str:
        return Path(os.path.relpath(p, report_dir)).as_posix()

    lines = []
    if files.timeline:
        lines += ["", f"![each person's p(fake) over time]({link(files.timeline)})"]
    if files.faces:
        lines += ["", "Faces looked at, and where the model looked (Grad-CAM: red weighed most towards the face's verdict):",
                  "", "| person | time (s) | p(fake) | face | heat map |", "|---|---|---|---|---|"]
        lines += [f"| {face.track_id} | {face.time_s:.1f} | {face.scan_probability:.3f} ({face.verdict}) | "
                  f"![face]({link(crop)}) | ![heat map]({link(heat)}) |" for face, crop, heat in files.faces]
    return lines


def write_json(results: Iterable[ScanResult], path: str | Path) -> Path:
    from . import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = ScanBatch(dfdetect_version=__version__, results=list(results))
    _atomic_write(path, batch.model_dump_json(indent=2) + "\n")
    return path


def read_json(path: str | Path) -> list[ScanResult]:
    return ScanBatch.model_validate_json(Path(path).read_text()).results


def write_csv(results: Iterable[ScanResult], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for result in results:
            writer.writerows(result.csv_rows())
    tmp.replace(path)
    return path


class ResultFiles:
    """Results written as a batch goes: CSV rows appended per item, the JSON file rewritten at most every
    `json_interval_s` seconds and on exit (also on Ctrl-C), so a long batch costs linear I/O and an
    interruption loses nothing that finished."""

    def __init__(self, json_path: str | Path | None = None, csv_path: str | Path | None = None,
                 json_interval_s: float = 5.0, report_path: str | Path | None = None):
        self.report_path = Path(report_path) if report_path else None
        self.json_path = Path(json_path) if json_path else None
        self.csv_path = Path(csv_path) if csv_path else None
        self.json_interval_s = json_interval_s
        self.results: list[ScanResult] = []
        self.explanations: dict = {}  # result path -> dfdetect.explain.ExplanationFiles, for the report
        self._csv = None
        self._last_json = 0.0

    def __enter__(self) -> "ResultFiles":
        if self.csv_path:
            self.csv_path.parent.mkdir(parents=True, exist_ok=True)
            self._csv = open(self.csv_path, "w", newline="")
            self._writer = csv.DictWriter(self._csv, fieldnames=CSV_COLUMNS)
            self._writer.writeheader()
        return self

    def add(self, result: ScanResult, explanation=None) -> None:
        import time

        self.results.append(result)
        if explanation is not None:
            self.explanations[result.path] = explanation
        if self._csv:
            self._writer.writerows(result.csv_rows())
            self._csv.flush()
        if self.json_path and time.monotonic() - self._last_json >= self.json_interval_s:
            write_json(self.results, self.json_path)
            self._last_json = time.monotonic()

    def __exit__(self, *exc) -> None:
        if self._csv:
            self._csv.close()
        if self.json_path:
            write_json(self.results, self.json_path)
        if self.report_path:
            write_report(self.results, self.report_path, self.explanations)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def json_schema() -> dict:
    return ScanBatch.model_json_schema()


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2))
