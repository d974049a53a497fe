"""`dfdetect extract DATASET OUT --preset NAME`: face crops and a manifest of them (presets: data.extract.PRESETS)."""

from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    from ..data.extract import PRESETS
    from ..devices import device_option
    from ..faces.detect import DETECTORS
    from ..media.sampling import SAMPLING_HELP, FrameSampling
    from .options import add_quiet

    presets = "; ".join(f"{name}: {PRESETS.get(name).description}" for name in PRESETS.names())
    gpu_detectors = [name for name in DETECTORS.names() if "cuda" in DETECTORS.get(name).device_types]
    parser.add_argument("dataset", help="dataset folder in its official layout, or a manifest from `dfdetect index`")
    parser.add_argument("out", help="output folder (crops/, manifest.csv, extract_log.jsonl); rerun to resume")
    parser.add_argument("--preset", default="train", choices=PRESETS.names(), help=presets)
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: min(4, CPU count); 0 or 1: in this process)")
    parser.add_argument("--device", default="auto", type=device_option, help=f"detector device: auto (GPU when there is one), cpu, cuda; "
                        f"only {', '.join(gpu_detectors)} can use a GPU, the others run on the CPU")
    parser.add_argument("--limit", type=int, default=None, help="extract only the first N videos (whole groups first)")
    parser.add_argument("--size", type=int, default=None, help="crop side in pixels (default 224)")
    parser.add_argument("--frames", default=None, type=FrameSampling.option, metavar="SPEC",
                        help=f"frame sampling for every video instead of the preset's: {SAMPLING_HELP}")
    parser.add_argument("--max-frames", type=int, default=None, help="read only the first N frames of each video")
    parser.add_argument("--detect-side", type=int, default=None,
                        help="shrink frames to this long side for detection (crops still come from full frames)")
    parser.add_argument("--min-face", type=int, default=None, help="smallest face side in pixels to keep")
    parser.add_argument("--margin", type=float, default=None,
                        help="fraction of the face box added on each side (a model card's crop margin; 0: the box)")
    parser.add_argument("--margin-px", type=int, default=None, help="pixels added on each side of the face box")
    parser.add_argument("--faces-per-video", type=int, default=None, help="test preset: faces sampled per video")
    parser.add_argument("--min-track", type=int, default=None, help="test preset: frames a person must be tracked over")
    parser.add_argument("--no-balance", action="store_true", help="train preset: keep every fake video")
    parser.add_argument("--retry-skipped", action="store_true", help="try again the videos skipped as unreadable")
    parser.add_argument("--restart", action="store_true", help="discard OUT's earlier results and start over")
    add_quiet(parser)


def run(args) -> int:
    from ..data.extract import get_preset, run_extraction

    overrides = {
        "size": args.size, "max_frames": args.max_frames, "detect_side": args.detect_side,
        "min_face": args.min_face, "margin": args.margin,
        "margin_px": args.margin_px, "faces_per_video": args.faces_per_video, "min_track": args.min_track,
    }
    if args.frames:
        overrides.update(real_sampling=args.frames, fake_sampling=args.frames)
    if args.no_balance:
        overrides["balance"] = False
    preset = get_preset(args.preset, **overrides)
    _check_sampling(preset)
    _check_out(args.out, args.dataset)
    try:
        summary = run_extraction(
            args.dataset, args.out, preset, workers=args.workers, device=args.device, limit=args.limit,
            retry_skipped=args.retry_skipped, restart=args.restart, progress=not args.quiet,
            log=lambda line: print(line, file=sys.stderr),
        )
    except KeyboardInterrupt as stop:
        how = "terminated" if type(stop).__name__ == "Terminated" else "interrupted"
        print(f"{how}: the finished videos are kept in {args.out} (manifest.csv lists their crops); "
              "rerun the same command to finish", file=sys.stderr)
        return 143 if how == "terminated" else 130
    print(f"extracted with preset {preset.name} into {args.out}")
    for line in summary.lines():
        print(line)
    print(f"log of every video: {args.out}/extract_log.jsonl; crops listed in {args.out}/manifest.csv")
    return 0 if summary.errors == 0 else 1


def _check_out(out: str, dataset: str) -> None:
    """OUT gets crops/, manifest.csv and a log: never the dataset folder, nor a folder inside it where the
    dataset's own files could be overwritten."""
    from pathlib import Path

    from ..errors import ConfigError
    from ..outputs import check_writable_folder, file_key

    check_writable_folder(Path(out), "OUT")
    if file_key(out) == file_key(dataset) or (Path(dataset).is_file() and file_key(Path(out) / "manifest.csv")
                                               == file_key(dataset)):
        raise ConfigError(f"OUT {out} is the dataset itself (or holds its manifest); choose another output folder")


def _check_sampling(preset) -> None:
    from ..media import FrameSampling

    for spec in {preset.real_sampling, preset.fake_sampling}:
        FrameSampling.parse(spec)  # a ConfigError naming the spec, before any video is opened
