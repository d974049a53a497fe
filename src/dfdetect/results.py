"""Scan results: typed, JSON-serialisable, able to save and render themselves."""

from __future__ import annotations

import csv
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Literal

from pydantic import BaseModel, Field, model_validator

# The version of the JSON layout (ScanBatch); raised whenever a field changes meaning or shape. The JSON Schema
# of each version is in dfdetect/schemas/ (SCHEMA_PATH), written by `python -m dfdetect.results --write`.
SCHEMA_VERSION = 2
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / f"scan-results.v{SCHEMA_VERSION}.schema.json"

Verdict = Literal["fake", "real", "no_face", "error"]
CSV_COLUMNS = [
    "path", "verdict", "probability", "track_id", "track_probability", "track_verdict",
    "frame_index", "time_s", "x1", "y1", "x2", "y2", "face_probability", "error", "unsure",
]


class Box(BaseModel):
    """A face box in pixels of the upright frame: left, top, right, bottom."""

    x1: float
    y1: float
    x2: float
    y2: float

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value):  # schema 1 wrote [x1, y1, x2, y2]
        if isinstance(value, (list, tuple)):
            return dict(zip(("x1", "y1", "x2", "y2"), value))
        return value

    def to_list(self) -> list[float]:
        return [self.x1, self.y1, self.x2, self.y2]

    def __getitem__(self, index: int) -> float:
        return self.to_list()[index]


class FaceScore(BaseModel):
    frame_index: int
    time_s: float
    box: Box
    detector_score: float
    probability: float


class TrackResult(BaseModel):
    track_id: int
    probability: float
    verdict: Literal["fake", "real"]
    faces: list[FaceScore]
    # Why this person's faces lie outside what the model knows (dfdetect.quality); empty when they do not.
    unsure_reasons: list[str] = Field(default_factory=list)
    # False when the model cannot judge this person (unsure) and can judge someone else in the video: the video's
    # verdict then rests on the others (dfdetect.scoring.judged_tracks).
    counted: bool = True


class MediaSummary(BaseModel):
    kind: Literal["video", "image"]
    width: int
    height: int
    fps: float | None = None         # None for an image, or a video whose rate is unknown
    frame_count: int = 1
    duration_s: float | None = None  # None for an image
    rotation: int = 0
    sha256: str | None = None        # of the input file's bytes: which file exactly was scanned


class ModelSummary(BaseModel):
    name: str
    arch: str
    trained_for_deepfakes: bool
    temperature: float
    weights_sha256: str = ""


class ScanSettings(BaseModel):
    """What the scan was asked to do, so that a result can be reproduced."""

    frames: str = "32"   # the --frames rule
    tta: bool = False
    detector: str = ""
    aggregation: str = ""
    threshold: float = 0.5
    device: str = ""


class ScanResult(BaseModel):
    path: str
    verdict: Verdict
    probability: float | None = None
    threshold: float = 0.5
    aggregation: str = ""
    detector: str = ""
    settings: ScanSettings | None = None
    frames_sampled: int = 0
    # The frames the sampling rule asked of this input; more than frames_sampled when the file is cut short.
    frames_asked: int = 0
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

    @property
    def frames_short(self) -> bool:
        """Fewer frames could be read than the sampling asked for (a truncated or damaged video)."""
        return self.frames_sampled < self.frames_asked

    def summary_line(self) -> str:
        name = Path(self.path).name
        if self.verdict == "error":
            return f"{name}: error: {self.error}"
        short = (f" WARNING: only {self.frames_sampled} of {self.frames_asked} frames could be read (cut short or "
                 "damaged)" if self.frames_short else "")
        if self.verdict == "no_face":
            return f"{name}: no_face (no face found in {self.frames_sampled} sampled frames)" + short
        people = len(self.tracks)
        return (f"{name}: {self.verdict.upper()} p(fake)={self.probability:.3f} "
                f"({people} {'person' if people == 1 else 'people'}, {self.frames_sampled} frames, "
                f"{self.timings.get('total_s', 0):.1f}s)"
                + (f" UNSURE: {'; '.join(self.unsure_reasons)}" if self.unsure else "") + short)

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
             "frame_index": f.frame_index, "time_s": f.time_s, "x1": f.box.x1, "y1": f.box.y1,
             "x2": f.box.x2, "y2": f.box.y2, "face_probability": f.probability}
            for t in self.tracks for f in t.faces
        ]
        return rows or [base]

    def __repr__(self) -> str:
        p = "None" if self.probability is None else f"{self.probability:.3f}"
        return (f"ScanResult(path={self.path!r}, verdict={self.verdict!r}, probability={p}, "
                f"people={len(self.tracks)}, frames={self.frames_sampled})")

    def to_df(self):
        """One row per scored face (one row for an item without faces), with the CSV's columns, as pandas."""
        return results_frame([self])

    def plot(self, ax=None):
        """Each person's face p(fake) over the video's time (or per face for an image), with the threshold:
        a matplotlib Axes, on `ax` if given."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3.5))
        for track in self.tracks:
            xs = [f.time_s for f in track.faces] if self.media and self.media.kind == "video" else \
                [f.frame_index for f in track.faces]
            ax.plot(xs, [f.probability for f in track.faces], marker="o",
                    label=f"person {track.track_id}: {track.verdict} ({track.probability:.2f})")
        ax.axhline(self.threshold, color="grey", linestyle="--", linewidth=1, label=f"threshold {self.threshold:.2f}")
        ax.set_ylim(0, 1)
        ax.set_xlabel("time (s)" if self.media and self.media.kind == "video" else "face")
        ax.set_ylabel("p(fake)")
        ax.set_title(f"{Path(self.path).name}: {self.verdict}")
        if self.tracks:
            ax.legend(loc="best", fontsize="small")
        return ax

    def render(self, out_path: str | Path, on_progress=None) -> Path:
        """Annotated copy of the input (video or image): a red (fake) or green (real) box per face with the
        person's and the face's score; a video keeps its sound. `on_progress(share)` follows a video's frames."""
        from .render import render_result

        return render_result(self, out_path, on_progress)


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ScanBatch(BaseModel):
    """The JSON file format of `dfdetect scan --json` (and ScanResult.save_json)."""

    schema_version: int = SCHEMA_VERSION
    dfdetect_version: str
    created: str = Field(default_factory=_now, description="when the file was written (ISO 8601, UTC)")
    results: list[ScanResult]


def results_frame(results: Iterable[ScanResult]):
    """Results as a pandas DataFrame: the CSV's columns, one row per scored face or failed item."""
    import pandas as pd

    return pd.DataFrame([row for result in results for row in result.csv_rows()], columns=CSV_COLUMNS)


def write_report(results: Iterable[ScanResult], path: str | Path, explanations: dict | None = None) -> Path:
    """A Markdown report a person reads (see report_text)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, report_text(results, explanations, path.parent))
    return path


def report_text(results: Iterable[ScanResult], explanations: dict | None = None,
                report_dir: Path | None = None) -> str:
    """One line per item, then each person's score and sightings, and where `explanations`
    (dfdetect.explain.ExplanationFiles by result path) has them, the timeline and the faces with their heat
    maps, linked relative to `report_dir`."""
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
            lines.append(f"| {t.track_id} | {t.verdict}{'' if t.counted else ' (not counted)'} | {t.probability:.3f} | {len(t.faces)} | "
                         f"{min(times):.1f} - {max(times):.1f} | {min(probs):.3f} - {max(probs):.3f} |")
        if explanations and explanations.get(r.path):
            lines += _explanation_lines(explanations[r.path], report_dir or Path("."))
    return "\n".join(lines) + "\n"


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
    _atomic_write(path, results_frame(results).to_csv(index=False))
    return path


class ResultFiles:
    """Results written as a batch goes: CSV rows appended per item, the JSON file rewritten at most every
    `json_interval_s` seconds and on exit (also on Ctrl-C or SIGTERM), so a long batch costs linear I/O and an
    interruption loses nothing that finished.

    `claim()` checks and locks the files before any work (outputs.HeldFile), so that a wrong path fails in
    a second rather than after the model loads, and two runs never write one file; entering the context
    starts writing them; files claimed but never started are left as they were."""

    def __init__(self, json_path: str | Path | None = None, csv_path: str | Path | None = None,
                 json_interval_s: float = 5.0, report_path: str | Path | None = None):
        from .outputs import HeldFile

        named = {"--json": json_path, "--csv": csv_path, "--report": report_path}
        self.held = {option: HeldFile(path, option) for option, path in named.items() if path}
        self.json_interval_s = json_interval_s
        self.results: list[ScanResult] = []
        self.explanations: dict = {}  # result path -> dfdetect.explain.ExplanationFiles, for the report
        self._csv = None
        self._last_json = 0.0
        self._claimed = False

    def claim(self, inputs: Iterable[str | Path] = ()) -> "ResultFiles":
        from .outputs import check_outputs

        check_outputs({option: held.path for option, held in self.held.items()}, inputs)
        try:
            for held in self.held.values():
                held.acquire()
        except BaseException:
            self.release()
            raise
        self._claimed = True
        return self

    def release(self) -> None:
        for held in self.held.values():
            held.release()

    def __enter__(self) -> "ResultFiles":
        if not self._claimed:
            self.claim()
        try:
            if "--csv" in self.held:
                self._csv = self.held["--csv"].open_for_appending()
                self._writer = csv.DictWriter(self._csv, fieldnames=CSV_COLUMNS)
                self._writer.writeheader()
            if "--json" in self.held:  # from the start a valid (empty) batch, not yesterday's results
                self._write_json()
        except BaseException:  # __exit__ does not run when __enter__ fails: let the files go here
            self.release()
            raise
        return self

    def add(self, result: ScanResult, explanation=None) -> None:
        import time

        self.results.append(result)
        if explanation is not None:
            self.explanations[result.path] = explanation
        with _as_output_error("--csv", self.held.get("--csv")):
            if self._csv:
                self._writer.writerows(result.csv_rows())
                self._csv.flush()
        if "--json" in self.held and time.monotonic() - self._last_json >= self.json_interval_s:
            self._write_json()

    def _write_json(self) -> None:
        import time

        from . import __version__

        batch = ScanBatch(dfdetect_version=__version__, results=self.results)
        with _as_output_error("--json", self.held["--json"]):
            self.held["--json"].replace(batch.model_dump_json(indent=2) + "\n")
        self._last_json = time.monotonic()

    def __exit__(self, *exc) -> None:
        try:
            if self._csv:
                self._csv.close()
            if "--json" in self.held:
                self._write_json()
            if "--report" in self.held:
                with _as_output_error("--report", self.held["--report"]):
                    report = self.held["--report"]
                    report.replace(report_text(self.results, self.explanations, Path(report.path).parent))
        finally:
            self.release()


@contextmanager
def _as_output_error(option: str, held):
    """A write that fails mid-batch (disk full, a removed folder) is one line naming the file, not a traceback."""
    try:
        yield
    except OSError as exc:
        from .errors import DfdetectError

        raise DfdetectError(f"{option} {held.path if held else ''}: writing failed ({exc.strerror or exc})") from None


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def json_schema() -> dict:
    schema = ScanBatch.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://dfdetect/schemas/{SCHEMA_PATH.name}"
    return schema


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


if __name__ == "__main__":  # print the schema; with --write, regenerate the packaged file
    import sys

    if "--write" in sys.argv:
        SCHEMA_PATH.write_text(schema_text())
    print(SCHEMA_PATH if "--write" in sys.argv else schema_text(), end="\n" if "--write" in sys.argv else "")
