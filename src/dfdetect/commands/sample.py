"""dfdetect sample: print the path of the sample clip (a pan over a public-domain astronaut photo), or copy it."""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("--out", default=None, help="copy the clip to this new file (default: print where the package keeps it)")


def run(args) -> int:
    from ..samples import copy_sample_video, sample_video_path

    path = copy_sample_video(args.out) if args.out else sample_video_path()
    print(path)
    return 0
