"""A small sample video of scikit-image's astronaut photo (public domain: NASA): a real face that moves, for
demos, documentation and tests. The package ships the clip (80 KB) so that the light install, which has
neither scikit-image nor OpenCV, can scan it; `make_sample_video` is how it was made (it needs both):

    python -c "from dfdetect.samples import make_sample_video; make_sample_video('src/dfdetect/assets/samples/astronaut.mp4')"
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np

SHIPPED_CLIP = Path(__file__).parent / "assets" / "samples" / "astronaut.mp4"
SAMPLE_SIZE = (480, 360)                 # width, height of the clip
# Camera path over the 512x512 photo: (centre x, centre y, window width) at the start and at the end.
# The window narrows and drifts towards the face (near x=225, y=110), so the face grows and moves.
_START = (250.0, 200.0, 480.0)
_END = (215.0, 165.0, 340.0)


def make_sample_video(path: str | Path, seconds: float = 3.0, fps: float = 15) -> Path:
    """Write a clip of the astronaut with a slow pan and zoom (the face moves and grows) and return its path.
    H.264 where PyAV has libx264, MPEG-4 otherwise; a few hundred kilobytes."""
    from skimage import data

    from .media import open_video_writer

    path = Path(path)
    photo = np.ascontiguousarray(data.astronaut())
    n_frames = max(1, round(seconds * fps))
    width, height = SAMPLE_SIZE
    with open_video_writer(path, fps, width, height) as writer:
        for i in range(n_frames):
            progress = i / max(1, n_frames - 1)
            writer.write(_camera_view(photo, _ease(progress), width, height))
    return path


def sample_video_path() -> Path:
    """The shipped sample clip; without it (a trimmed copy of the package), one made in the user's cache folder."""
    if SHIPPED_CLIP.is_file():
        return SHIPPED_CLIP
    path = _cache_dir() / "samples" / "astronaut.mp4"
    if not path.is_file() or path.stat().st_size == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write beside it and rename: two processes making it at once never leave a half-written file.
        fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=path.parent)
        os.close(fd)
        try:
            make_sample_video(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return path


def copy_sample_video(path: str | Path) -> Path:
    """The sample clip copied to `path` (which must not exist yet)."""
    import shutil

    path = Path(path)
    if path.exists():
        from .errors import DfdetectError

        raise DfdetectError(f"{path} exists; give a new file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sample_video_path(), path)
    return path


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(root):  # the XDG rule: a relative setting is ignored
        root = str(Path.home() / ".cache")
    return Path(root) / "dfdetect"


def _ease(t: float) -> float:
    """Slow start and stop, as a camera operator would move."""
    return 0.5 - 0.5 * math.cos(math.pi * t)


def _camera_view(photo: np.ndarray, t: float, width: int, height: int) -> np.ndarray:
    import cv2

    cx, cy, window = (a + (b - a) * t for a, b in zip(_START, _END))
    scale = width / window
    # Sub-pixel affine crop: whole-pixel crops would make the motion visibly jerky at this speed.
    matrix = np.array([[scale, 0.0, width / 2 - cx * scale], [0.0, scale, height / 2 - cy * scale]])
    return cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
