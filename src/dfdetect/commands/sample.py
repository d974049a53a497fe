"""dfdetect sample: write the sample clip (made from skimage's public-domain astronaut photo) and print its path."""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("--out", default=None, help="where to write the clip (default: the user cache)")


def run(args) -> int:
    from ..samples import make_sample_video, sample_video_path

    path = make_sample_video(args.out) if args.out else sample_video_path()
    print(path)
    return 0
