"""`dfdetect pool NAME=MANIFEST ... --out pool.csv`: several sources' manifests joined into one training pool."""

from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    from ..data.pool import POOL_SPLITS

    parser.add_argument("sources", nargs="+", metavar="NAME=MANIFEST",
                        help="a source's name and its manifest (from `dfdetect index` or `dfdetect extract`), "
                             "e.g. dfdc=dfdc_faces.csv ffpp=ffpp_crops/manifest.csv")
    parser.add_argument("--out", required=True, help="pool manifest to write (.csv or .parquet)")
    parser.add_argument("--split", default="keep", choices=POOL_SPLITS,
                        help="keep: each row keeps its manifest's split (rows without one are split by group); "
                             "group: every source split anew by group, per source and method")
    parser.add_argument("--hold-out", default="", metavar="NAME[,NAME]",
                        help="sources put wholly in test, never trained or validated on (leave-one-source-out)")
    parser.add_argument("--fractions", default=None, help="train,val,test fractions for group splits (default 0.7,0.15,0.15)")
    parser.add_argument("--seed", type=int, default=0, help="group split seed (default 0)")


def run(args) -> int:
    from pathlib import Path

    from ..data.manifest import read_manifest, write_manifest
    from ..data.pool import pool_manifests, pool_table
    from ..data.splits import DEFAULT_FRACTIONS, parse_fractions
    from ..errors import ConfigError

    parts = {}
    for item in args.sources:
        name, sep, path = item.partition("=")
        if not sep or not path:
            raise ConfigError(f"{item!r}: give each source as NAME=MANIFEST, e.g. ffpp=ffpp_crops/manifest.csv")
        if name in parts:
            raise ConfigError(f"source {name!r} is named twice")
        parts[name] = read_manifest(path)
    if Path(args.out).resolve() in {Path(i.partition("=")[2]).resolve() for i in args.sources}:
        raise ConfigError(f"--out {args.out} is one of the inputs; write the pool to a new file")
    hold_out = [name for name in args.hold_out.split(",") if name]
    pool = pool_manifests(parts, args.split, hold_out, parse_fractions(args.fractions or DEFAULT_FRACTIONS), args.seed)
    write_manifest(pool, args.out)
    print(f"pool of {len(parts)} sources: {len(pool)} items, {pool['group'].nunique()} groups -> {args.out}")
    print(pool_table(pool).to_string())
    if hold_out:
        print(f"held out (all in test): {', '.join(hold_out)}", file=sys.stderr)
    return 0
