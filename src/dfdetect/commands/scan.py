"""dfdetect scan PATH...: verdicts for videos and images, with JSON/CSV results and annotated copies."""

from __future__ import annotations

import sys
from pathlib import Path

from ..outputs import file_key, name_key

EXIT_OK, EXIT_ITEM_FAILED = 0, 1


def _positive_int(text: str) -> int:
    import argparse

    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(p) -> None:
    from ..devices import DEVICE_FORMS, device_option
    from ..faces.detect import DETECTORS
    from ..media.sampling import SAMPLING_HELP, FrameSampling
    from ..scoring import DEFAULT_AGGREGATION
    from .options import add_aggregation, add_quiet, add_tta, threshold_option

    p.add_argument("paths", nargs="+", metavar="PATH", help="video or image files, or folders (searched recursively)")
    p.add_argument("--model", default="default", help="bundled model name or checkpoint path (default: %(default)s)")
    p.add_argument("--device", default="auto", type=device_option, help=f"{DEVICE_FORMS} (default: %(default)s)")
    p.add_argument("--frames", default="32", metavar="SPEC", type=FrameSampling.option,
                   help=f"frames to sample from a video: {SAMPLING_HELP} (default: %(default)s)")
    p.add_argument("--detector", default=None, choices=DETECTORS.names(), help="face detector (default: the model's)")
    p.add_argument("--threshold", type=threshold_option(("card",)), default="card",
                   help="p(fake) at or above which a face is fake, or 'card': the model card's (default)")
    add_aggregation(p, DEFAULT_AGGREGATION, "how face scores become one per person and per video (people the "
                    "model cannot judge, see UNSURE, count only when no one else can be judged)")
    add_tta(p)
    p.add_argument("--batch-size", type=_positive_int, default=32, help="faces per forward pass")
    p.add_argument("--json", metavar="FILE", help="write all results as JSON")
    p.add_argument("--csv", metavar="FILE", help="write one row per face (and per failed item) as CSV")
    p.add_argument("--report", metavar="FILE", help="write a Markdown report: verdicts, people, sightings")
    p.add_argument("--annotate", metavar="OUT", help="write the input with red/green face boxes: a file for one "
                   "input, else a folder")
    p.add_argument("--explain", metavar="DIR", help="write, per input, the faces looked at with Grad-CAM heat maps of "
                   "where the model looked, and each person's score over time, as PNGs (with --report: shown in it)")
    add_quiet(p)
    batch = p.add_argument_group("batch scanning into a results database (resumable, shared by several processes)")
    batch.add_argument("--db", metavar="FILE", help="record each file's result in this SQLite file as it finishes; "
                       "a rerun skips files already done with the same model and settings; several processes may "
                       "share one file. See `dfdetect results FILE`")
    batch.add_argument("--workers", type=_positive_int, default=1, help="worker processes scanning into --db "
                       "(default: %(default)s)")
    batch.add_argument("--retry-errors", action="store_true", help="scan again the files whose stored result is an error")
    batch.add_argument("--lease", type=float, default=None, metavar="SECONDS",
                       help="how long a file claimed by a process that stopped answering waits before another "
                       "process scans it (default: 120; renewed while the file is scanned)")
    batch.add_argument("--ray", action="store_true", help="scan on a Ray cluster (install dfdetect[cluster]): CPU "
                       "actors decode and find faces, model actors (on GPUs where the cluster has them) classify")
    batch.add_argument("--ray-address", default=None, metavar="ADDRESS",
                       help="Ray cluster to join, e.g. ray://head:10001 or auto (default: a local Ray instance)")


def run(args) -> int:
    from ..api import Detector
    from ..media import collect_inputs
    from ..results import ResultFiles

    unreadable: list[str] = []
    paths = collect_inputs(args.paths, problems=unreadable)
    for problem in unreadable:
        print(f"warning: {problem}", file=sys.stderr)
    if not paths:
        print("error: no video or image files found in the given folders", file=sys.stderr)
        return EXIT_ITEM_FAILED
    # Every output is checked (and held) before the model loads: a wrong path costs a second, not a scan.
    _check_annotate_target(args.annotate, paths)
    if args.explain:
        from ..extras import require
        from ..outputs import check_writable_folder

        require("torch", "--explain (Grad-CAM heat maps)")
        require("matplotlib", "--explain (score timelines)")
        check_writable_folder(Path(args.explain), "--explain")
    if args.db:
        return _scan_into_db(args, paths)
    if args.ray or args.workers > 1:
        print("error: --workers and --ray need --db (the results database they share)", file=sys.stderr)
        return 2
    files = ResultFiles(json_path=args.json, csv_path=args.csv, report_path=args.report).claim(inputs=paths)
    try:
        detector = Detector.load(args.model, device=args.device, batch_size=args.batch_size, **_scan_options(args))
    except BaseException:
        files.release()
        raise
    for warning in detector.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    with files:  # an interrupted batch keeps its results
        results = _scan_all(detector, paths, files, args)
    failed = [r for r in results if r.verdict in ("error", "no_face")]
    if len(results) > 1:
        counts = {v: sum(r.verdict == v for r in results) for v in ("fake", "real", "no_face", "error")}
        short = sum(r.frames_short for r in results)
        print("summary: " + ", ".join(f"{n} {v}" for v, n in counts.items())
              + (f"; {short} with fewer frames read than asked" if short else ""))
    return EXIT_ITEM_FAILED if failed or unreadable else EXIT_OK


def _scan_all(detector, paths: list[Path], files, args) -> list:
    from contextlib import closing

    from tqdm import tqdm

    results, explained = [], set()
    annotated = {file_key(p) for p in paths}  # an annotated copy never takes an input's name
    bar = tqdm(paths, desc="scanning", unit="file", disable=args.quiet or len(paths) == 1, file=sys.stderr)
    # The scans in input order; the next input is decoded while the current one is detected and classified.
    with closing(detector.pending_scans(paths)) as scans:
        for path, pending in zip(bar, scans):
            result = _scan_with_progress(pending, path, show=not args.quiet and sys.stderr.isatty())
            results.append(result)
            files.add(result, explanation=_explain(detector, result, args.explain, taken=explained)
                      if args.explain else None)
            if args.annotate and result.verdict in ("fake", "real", "no_face"):
                _annotate(result, Path(args.annotate), single=len(paths) == 1, taken=annotated,
                          show=not args.quiet and sys.stderr.isatty())
            bar.write(result.summary_line(), file=sys.stdout)
    return results


def _check_annotate_target(annotate: str | None, paths: list[Path]) -> None:
    from ..outputs import check_outputs, check_writable_folder

    if not annotate:
        return
    target = Path(annotate)
    if len(paths) == 1 and target.suffix:
        check_outputs({"--annotate": target}, paths)
    else:
        check_writable_folder(target, "--annotate")


def _scan_with_progress(pending, path: Path, show: bool):
    """Run one input's scan (api.PendingScan); on a terminal, a transient bar shows how far into a video it is."""
    if not show:
        return pending.run()
    from tqdm import tqdm

    with tqdm(total=100, desc=path.name, unit="%", leave=False, file=sys.stderr,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}") as bar:
        def advance(done: float) -> None:
            bar.update(round(100 * done) - bar.n)

        return pending.run(on_progress=advance)


def _render_with_progress(result, out: Path, show: bool) -> None:
    """Writing an annotated video decodes all of it again: on a terminal a transient bar shows how far."""
    if not show or result.media is None or result.media.kind != "video":
        result.render(out)
        return
    from tqdm import tqdm

    with tqdm(total=100, desc=f"annotating {out.name}", unit="%", leave=False, file=sys.stderr,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}") as bar:
        result.render(out, on_progress=lambda done: bar.update(round(100 * done) - bar.n))


def _annotate(result, target: Path, single: bool, taken: set, show: bool = False) -> None:
    from ..errors import DfdetectError

    kind = result.media.kind if result.media else "video"
    if single and target.suffix:
        out = target
    else:
        suffix = "_annotated.mp4" if kind == "video" else "_annotated.png"
        out = target / (Path(result.path).stem + suffix)
        n = 1
        while file_key(out) in taken or name_key(out) in taken:  # a name met twice, or an input's: keep both
            n += 1
            out = target / f"{Path(result.path).stem}_{n}{suffix}"
        taken.add(name_key(out))
    try:
        _render_with_progress(result, out, show)
        print(f"  annotated: {out}")
    except DfdetectError as exc:
        print(f"  annotation failed: {exc}", file=sys.stderr)
    except Exception as exc:  # a failed annotation must not end the batch
        print(f"  annotation failed: {type(exc).__name__}: {exc}", file=sys.stderr)


def _explain(detector, result, target: str, taken: set):
    """The faces of one result with their heat maps and its timeline, in TARGET/<input name>/."""
    from ..explain import explain_faces, save_explanation

    if not result.tracks:
        return None
    stem = Path(result.path).stem
    out, n = Path(target) / stem, 1
    while out in taken:  # the same file name in two input folders: keep both
        n += 1
        out = Path(target) / f"{stem}_{n}"
    taken.add(out)
    try:
        saved = save_explanation(result, explain_faces(detector, result), out)
        print(f"  explained: {out}")
        return saved
    except Exception as exc:  # the verdict stands without its pictures
        print(f"  explanation failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


def _scan_into_db(args, paths: list[Path]) -> int:
    """Scan into a results database, then write --json/--csv/--report for all the given files from it."""
    from ..batch.runner import BatchJob, run_batch
    from ..batch.store import DEFAULT_LEASE_S
    from ..results import write_csv, write_json, write_report

    from ..outputs import check_outputs

    if args.annotate and (args.workers > 1 or args.ray):
        print("error: --annotate works with one worker only", file=sys.stderr)
        return 2
    if args.explain:
        print("error: --explain works without --db only", file=sys.stderr)
        return 2
    check_outputs({"--db": args.db, "--json": args.json, "--csv": args.csv, "--report": args.report}, paths)
    job = BatchJob(db=args.db, model=args.model, device=args.device, lease_s=args.lease or DEFAULT_LEASE_S,
                   retry_errors=args.retry_errors, quiet=args.quiet,
                   scan_options=dict(batch_size=args.batch_size, **_scan_options(args)))
    if args.ray:
        from ..batch.ray_scan import run_batch_on_ray

        key, items, stats = run_batch_on_ray(job, paths, address=args.ray_address)
    else:
        key, items, stats = run_batch(job, paths, workers=args.workers)
    from ..batch.store import ResultStore

    with ResultStore(args.db) as store:
        results = [stored.result for stored in store.stored(key, [item.path for item in items])]
    if args.annotate:
        taken: set = set()
        for result in results:
            if result.verdict != "error":
                _annotate(result, Path(args.annotate), single=len(paths) == 1, taken=taken)
    for write, target in ((write_json, args.json), (write_csv, args.csv), (write_report, args.report)):
        if target:
            write(results, target)
    counts = {v: sum(r.verdict == v for r in results) for v in ("fake", "real", "no_face", "error")}
    missing = len(items) - len(results)
    print("summary: " + ", ".join(f"{n} {v}" for v, n in counts.items())
          + (f", {missing} not finished" if missing else "")
          + f" ({stats.scanned} scanned now, {stats.skipped} already had a result in {args.db})")
    failed = missing or counts["error"] or counts["no_face"]
    return EXIT_ITEM_FAILED if failed else EXIT_OK


def _scan_options(args) -> dict:
    """The options that change a verdict, as Detector.load takes them."""
    return dict(sampling=args.frames, detector=args.detector,
                threshold=None if args.threshold == "card" else args.threshold,
                aggregation=args.aggregation, tta=args.tta == "flip")
