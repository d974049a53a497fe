"""dfdetect results DB: summarise, filter and export what `dfdetect scan --db DB` recorded."""

from __future__ import annotations

import sys
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("db", metavar="DB", help="results database written by `dfdetect scan --db`")
    p.add_argument("--config", default=None, metavar="KEY", help="the model and settings whose results to show, by "
                   "key or its start (default: the one with the latest result; all are listed)")
    p.add_argument("--fake", action="store_true", help="only files called fake")
    p.add_argument("--real", action="store_true", help="only files called real")
    p.add_argument("--no-face", action="store_true", help="only files where no face was found")
    p.add_argument("--errors", action="store_true", help="only files that could not be scanned")
    p.add_argument("--unsure", action="store_true", help="only results marked unsure")
    p.add_argument("--json", metavar="FILE", help="write the selected results as `dfdetect scan --json` does")
    p.add_argument("--csv", metavar="FILE", help="write the selected results as CSV")
    p.add_argument("--parquet", metavar="FILE", help="write the selected results as Parquet")
    p.add_argument("--rows", choices=("files", "faces"), default="files",
                   help="CSV and Parquet rows: one per file, or one per face as `dfdetect scan --csv` (default: %(default)s)")
    p.add_argument("--list", action="store_true", help="print one line per selected file (the default with a filter)")


def run(args) -> int:
    from ..batch.export import choose_config, describe, export, select
    from ..batch.store import ResultStore
    from ..errors import DfdetectError

    db = Path(args.db)
    if not db.is_file():
        raise DfdetectError(f"results database not found: {db}")
    targets = [(fmt, getattr(args, fmt)) for fmt in ("json", "csv", "parquet") if getattr(args, fmt)]
    for _, target in targets:
        if Path(target).resolve() == db.resolve():
            raise DfdetectError(f"{target} is the database itself: choose another output file")
    verdicts = [v for v, wanted in (("fake", args.fake), ("real", args.real), ("no_face", args.no_face),
                                    ("error", args.errors)) if wanted]
    with ResultStore(db) as store:
        config = choose_config(store, args.config)
        others = [c for c in store.configs() if c["config_key"] != config["config_key"]]
        print(f"{db}:")
        for line in describe(config, store.counts(config["config_key"])):
            print("  " + line)
        for other in others:
            print(f"  also: configuration {other['config_key']} (model {other['model_name']}, weights "
                  f"{other['weights_sha256'][:12]}): {sum(other['counts'].values())} results; --config to choose")
        chosen = select(store.stored(config["config_key"]), verdicts, args.unsure)
    if args.list or verdicts or args.unsure:
        for stored in chosen:
            print(stored.result.summary_line().replace(Path(stored.path).name, stored.path, 1))
        print(f"{len(chosen)} files selected")
    for fmt, target in targets:
        print(f"wrote {export(chosen, config, target, fmt, rows=args.rows)} ({len(chosen)} files)", file=sys.stderr)
    return 0
