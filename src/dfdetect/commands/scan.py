"""dfdetect scan PATH...: verdicts for videos and images, with JSON/CSV results and annotated copies."""

from __future__ import annotations

import sys
from pathlib import Path

EXIT_OK, EXIT_ITEM_FAILED = 0, 1


def _positive_int(text: str) -> int:
    import argparse

    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(p) -> None:
    from ..faces.detect import DETECTORS
    from ..scoring import AGGREGATORS, DEFAULT_AGGREGATION

    aggregations = "; ".join(f"{name}: {AGGREGATORS.get(name).description}".replace("%", "%%") for name in AGGREGATORS.names())
    p.add_argument("paths", nargs="+", metavar="PATH", help="video or image files, or folders (searched recursively)")
    p.add_argument("--model", default="default", help="bundled model name or checkpoint path (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: %(default)s)")
    p.add_argument("--frames", default="32", metavar="SPEC",
                   help="frames to sample from a video: N evenly spaced, every:K, fps:R or all (default: %(default)s)")
    p.add_argument("--detector", default=None, choices=DETECTORS.names(), help="face detector (default: the model's)")
    p.add_argument("--threshold", type=float, default=None, help="p(fake) at or above which a face is fake "
                   "(default: the model card's)")
    p.add_argument("--aggregation", default=DEFAULT_AGGREGATION, choices=AGGREGATORS.names(),
                   help=f"how face scores become one per person and per video (default: %(default)s). {aggregations}")
    p.add_argument("--tta", action="store_true", help="also score horizontally flipped faces")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="faces per forward pass")
    p.add_argument("--json", metavar="FILE", help="write all results as JSON")
    p.add_argument("--csv", metavar="FILE", help="write one row per face (and per failed item) as CSV")
    p.add_argument("--report", metavar="FILE", help="write a Markdown report: verdicts, people, sightings")
    p.add_argument("--annotate", metavar="OUT", help="write the input with red/green face boxes: a file for one "
                   "input, else a folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
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
    from tqdm import tqdm

    from ..api import Detector
    from ..media import collect_inputs
    from ..results import ResultFiles

    paths = collect_inputs(args.paths)
    if not paths:
        print("error: no video or image files found in the given folders", file=sys.stderr)
        return EXIT_ITEM_FAILED
    if args.db:
        return _scan_into_db(args, paths)
    if args.ray or args.workers > 1:
        print("error: --workers and --ray need --db (the results database they share)", file=sys.stderr)
        return 2
    detector = Detector.load(args.model, device=args.device, sampling=args.frames, detector=args.detector,
                             threshold=args.threshold, aggregation=args.aggregation, tta=args.tta,
                             batch_size=args.batch_size)
    for warning in detector.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    results, annotated = [], set()
    bar = tqdm(paths, desc="scanning", unit="file", disable=args.quiet or len(paths) == 1, file=sys.stderr)
    with ResultFiles(json_path=args.json, csv_path=args.csv, report_path=args.report) as files:  # an interrupted batch keeps its results
        for path in bar:
            result = _scan_with_progress(detector, path, show=not args.quiet and sys.stderr.isatty())
            results.append(result)
            files.add(result)
            if args.annotate and result.verdict in ("fake", "real", "no_face"):
                _annotate(result, Path(args.annotate), single=len(paths) == 1, taken=annotated)
            bar.write(result.summary_line(), file=sys.stdout)
    failed = [r for r in results if r.verdict in ("error", "no_face")]
    if len(results) > 1:
        counts = {v: sum(r.verdict == v for r in results) for v in ("fake", "real", "no_face", "error")}
        print("summary: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    return EXIT_ITEM_FAILED if failed else EXIT_OK


def _scan_with_progress(detector, path: Path, show: bool):
    """Scan one input; on a terminal, a transient bar shows how far into a video the scan is."""
    if not show:
        return detector.scan(path)
    from tqdm import tqdm

    with tqdm(total=100, desc=path.name, unit="%", leave=False, file=sys.stderr,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}") as bar:
        def advance(done: float) -> None:
            bar.update(round(100 * done) - bar.n)

        return detector.scan(path, on_progress=advance)


def _annotate(result, target: Path, single: bool, taken: set) -> None:
    from ..errors import DfdetectError

    kind = result.media.kind if result.media else "video"
    if single and target.suffix:
        out = target
    else:
        suffix = "_annotated.mp4" if kind == "video" else "_annotated.png"
        out = target / (Path(result.path).stem + suffix)
        n = 1
        while out in taken:  # the same file name in two input folders: keep both
            n += 1
            out = target / f"{Path(result.path).stem}_{n}{suffix}"
        taken.add(out)
    try:
        result.render(out)
        print(f"  annotated: {out}")
    except DfdetectError as exc:
        print(f"  annotation failed: {exc}", file=sys.stderr)
    except Exception as exc:  # a failed annotation must not end the batch
        print(f"  annotation failed: {type(exc).__name__}: {exc}", file=sys.stderr)


def _scan_into_db(args, paths: list[Path]) -> int:
    """Scan into a results database, then write --json/--csv/--report for all the given files from it."""
    from ..batch.runner import BatchJob, run_batch
    from ..batch.store import DEFAULT_LEASE_S
    from ..results import write_csv, write_json, write_report

    if args.annotate and (args.workers > 1 or args.ray):
        print("error: --annotate works with one worker only", file=sys.stderr)
        return 2
    db = Path(args.db).resolve()
    if db in {p.resolve() for p in paths} or db in {Path(t).resolve() for t in (args.json, args.csv, args.report) if t}:
        print(f"error: --db {args.db} is also an input or another output: choose another file", file=sys.stderr)
        return 2
    job = BatchJob(db=args.db, model=args.model, device=args.device, lease_s=args.lease or DEFAULT_LEASE_S,
                   retry_errors=args.retry_errors, quiet=args.quiet,
                   scan_options=dict(sampling=args.frames, detector=args.detector, threshold=args.threshold,
                                     aggregation=args.aggregation, tta=args.tta, batch_size=args.batch_size))
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
