"""Annotated output: every face in every frame boxed in red (fake) or green (real) with its score."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DfdetectError

FAKE_COLOUR = (230, 40, 40)   # RGB
REAL_COLOUR = (40, 200, 60)


def render_result(result, out_path: str | Path, on_progress=None) -> Path:
    """`on_progress`, if given, is called with the share of a video written (0 to 1)."""
    if result.media is None:
        raise DfdetectError(f"nothing to render for {result.path}: {result.error or result.verdict}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if result.media.kind == "image":
        return _render_image(result, out_path)
    return _render_video(result, out_path, on_progress)


def _render_image(result, out_path: Path) -> Path:
    from PIL import Image

    from .media import read_image

    image = np.array(read_image(result.path))  # a writable copy to draw on
    _draw_frame(image, [(t, f.box.to_list(), f.probability) for t in result.tracks for f in t.faces])
    try:
        Image.fromarray(image).save(out_path)
    except (ValueError, OSError) as exc:  # Pillow: unknown extension (ValueError) or unwritable (OSError)
        raise DfdetectError(f"cannot write {out_path} ({exc}; use a .png or .jpg name)") from None
    return out_path


def _render_video(result, out_path: Path, on_progress=None) -> Path:
    """Every frame of the input with each person's box, their score and the score of their face nearest
    in time; the input's sound is copied along."""
    from .media import FrameSampling, iter_frames, open_video_writer

    tracks = [(t, *_as_track(t)) for t in result.tracks]
    fps = result.media.fps or 25.0
    total = max(1, result.media.frame_count)
    with open_video_writer(out_path, fps, result.media.width, result.media.height) as writer:
        writer.copy_audio_from(result.path)
        for frame in iter_frames(result.path, FrameSampling(every=1)):
            boxes = [(t, b.to_list(), _nearest_face_probability(t, frame.index)) for t, track, hold in tracks
                     if (b := track.box_at(frame.index, hold=hold)) is not None]
            image = np.array(frame.image)  # decoded frames may be read-only views
            _draw_frame(image, boxes)
            writer.write(image)
            if on_progress is not None:
                on_progress(min(1.0, (frame.index + 1) / total))
    return out_path


def _nearest_face_probability(result_track, frame_index: int) -> float:
    """The p(fake) of the person's scored face nearest in time to this frame."""
    nearest = min(result_track.faces, key=lambda f: abs(f.frame_index - frame_index))
    return nearest.probability


def _as_track(result_track):
    """A scan result's person as a faces.track.Track, whose box_at interpolates between sampled frames.
    End boxes are held for half a sampling gap, so a box does not vanish between samples."""
    from .faces.detect import FaceBox
    from .faces.track import Track, TrackedFace

    faces = sorted(result_track.faces, key=lambda f: f.frame_index)
    track = Track(result_track.track_id, [TrackedFace(f.frame_index, f.time_s, FaceBox(*f.box.to_list())) for f in faces])
    gaps = np.diff(track.frame_indices)
    hold = int(np.median(gaps)) // 2 if len(gaps) else 15
    return track, hold


def _draw_frame(image: np.ndarray, boxes) -> None:
    """Draws on `image` (RGB uint8, in place)."""
    from PIL import Image, ImageDraw

    if not boxes:
        return
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    thickness = max(2, round(max(image.shape[:2]) / 400))
    font = _font(max(12, round(max(image.shape[:2]) / 60)))
    for track, (x1, y1, x2, y2), face_probability in boxes:
        colour = FAKE_COLOUR if track.verdict == "fake" else REAL_COLOUR
        x1, y1, x2, y2 = int(x1), int(y1), max(int(x2), int(x1)), max(int(y2), int(y1))
        half = thickness // 2  # the line straddles the box's edge, as the face stays visible inside
        draw.rectangle((x1 - half, y1 - half, x2 + half, y2 + half), outline=colour, width=thickness)
        # The person's verdict and score, then this face's own score: the box colour follows the person.
        label = f"{track.verdict.upper()} {track.probability:.2f} | face {face_probability:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        height = bottom - top + 6
        y = max(0, y1 - height)
        draw.rectangle((x1, y, x1 + right - left + 6, y + height), fill=colour)
        draw.text((x1 + 3 - left, y + 3 - top), label, fill=(255, 255, 255), font=font)
    image[...] = np.asarray(canvas)


def _font(size: int):
    """Pillow's built-in scalable font (no font files needed); its bitmap font where FreeType is missing."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()
