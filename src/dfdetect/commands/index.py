"""`dfdetect index DATASET --out manifest.csv`: read a dataset's official layout into a manifest with splits."""

from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    from ..data.indexes import INDEXERS, format_names

    layouts = "; ".join(f"{name}: {INDEXERS.get(name).layout}" for name in format_names())
    parser.add_argument("dataset", help="dataset folder in its official layout, or a crops CSV file")
    parser.add_argument("--format", default="auto", choices=["auto", *format_names()],
                        help=f"layout (default: recognise it). {layouts}")
    parser.add_argument("--out", default="manifest.csv", help="manifest to write (.csv, or .parquet with pyarrow)")
    parser.add_argument("--split", default="auto", choices=("auto", "group", "kfold", "official", "seed001", "none"),
                        help="auto: the dataset's official lists where it has them, else group; group: whole "
                             "sources per split, stratified by method; seed001: balanced classes, random "
                             "per-image 56/24/20 with seed 42 (leaks identity; for reproduction only); kfold: "
                             "leave-groups-out cross-validation, fold --fold of --folds is test, the next val")
    parser.add_argument("--folds", type=int, default=5, help="kfold: number of folds (default 5)")
    parser.add_argument("--fold", type=int, default=0, help="kfold: which fold is the test split (default 0)")
    parser.add_argument("--fractions", default=None,
                        help="train,val,test fractions (default 0.7,0.15,0.15; seed001: 0.56,0.24,0.2)")
    parser.add_argument("--seed", type=int, default=None, help="split seed (default 0; seed001: 42)")
    parser.add_argument("--stratify", default="method", help="column to stratify group splits by ('' for none)")
    parser.add_argument("--compression", default="auto", help="FF++: c23, c40, raw, all (default: c23 if present)")
    parser.add_argument("--splits-dir", default=None, help="FF++: folder with the official train/val/test.json")
    parser.add_argument("--celebdf-groups", default="identity", choices=("identity", "target"),
                        help="Celeb-DF: join identities that appear in one fake (no identity leak) or group by "
                             "the target identity only")
    parser.add_argument("--group-regex", default=None,
                        help="image folders: regex whose first group extracts the source id from the relative path")
    parser.add_argument("--csv", default=None, help="crops-csv: the CSV file, when the folder holds several")


def run(args) -> int:
    from ..data.indexes import index_dataset
    from ..data.manifest import write_manifest
    from ..data.splits import assign_splits, group_leaks, split_table

    from ..outputs import check_not_in_dataset, check_outputs

    check_outputs({"--out": args.out})
    check_not_in_dataset(args.out, args.dataset, "--out")
    options = _format_options(args)
    index = index_dataset(args.dataset, args.format, **options)
    for problem in index.problems:
        print(f"warning: {problem}", file=sys.stderr)
    manifest = assign_splits(index.manifest, args.split, args.fractions, args.seed, args.stratify or None,
                             folds=args.folds, fold=args.fold)
    write_manifest(manifest, args.out)
    print(f"{index.format}: {len(manifest)} items, {manifest['group'].nunique()} groups -> {args.out}")
    print(split_table(manifest).to_string())
    leaks = group_leaks(manifest)
    if len(leaks):
        level = ", ".join(sorted(set(manifest["split_level"]) - {""}))
        print(f"note: {len(leaks)} groups span more than one split ({level} split; e.g. {leaks.index[0]}: "
              f"{leaks.iloc[0]})", file=sys.stderr)
    return 0


def _format_options(args) -> dict:
    # Each indexer takes the options that concern its layout; index_dataset drops the others.
    return {"compression": args.compression, "splits_dir": args.splits_dir, "grouping": args.celebdf_groups,
            "group_regex": args.group_regex, "csv": args.csv}
