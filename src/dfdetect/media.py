"""Open and validate inputs, sample video frames, read images, write videos.

Everything that leaves this module is an RGB uint8 array, upright (rotation metadata and EXIF orientation
applied). Bad input raises MediaError with one line that says what is wrong with which file.
"""

from __future__ import annotations

import logging
import math
import os
import re
import stat
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .errors import ConfigError, MediaError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | IMAGE_EXTENSIONS

# A 100-megapixel RGB image is 300 MB decoded; anything larger is far more likely a mistake or a
# decompression bomb than a photo worth scanning for faces.
MAX_IMAGE_PIXELS = 100_000_000

# Packets that fail to decode before a video is declared unreadable: a few bad packets are common in
# damaged files and the decoder recovers at the next keyframe, so only give up on a long run of them.
MAX_BAD_PACKETS_IN_A_ROW = 500


# --------------------------------------------------------------------------------------------------
# Frame sampling
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameSampling:
    """Which frames of a video to use. Exactly one rule applies:
    `count` frames evenly spaced, every `every`-th frame, `fps` frames per second, the frames listed in
    `indices`, or all frames when all are None. `every`, `fps` or `indices` override the default `count`."""

    count: int | None = 32
    every: int | None = None
    fps: float | None = None
    indices: tuple[int, ...] | None = None

    def __post_init__(self):
        if sum(v is not None for v in (self.every, self.fps, self.indices)) > 1:
            raise ConfigError("frame sampling takes one rule: every=N, fps=R or indices, not several")
        if self.indices is not None:
            if any(i < 0 for i in self.indices):
                raise ConfigError("frame indices must not be negative")
            object.__setattr__(self, "indices", tuple(sorted(set(int(i) for i in self.indices))))
        if self.every is not None or self.fps is not None or self.indices is not None:
            object.__setattr__(self, "count", None)  # the default count gives way to an explicit rule
        for name, value in (("count", self.count), ("every", self.every), ("fps", self.fps)):
            if value is not None and not value > 0:
                raise ConfigError(f"frame sampling {name} must be positive, got {value!r}")
        if self.count is not None and self.count != int(self.count):
            raise ConfigError(f"frame sampling count must be a whole number, got {self.count!r}")
        if self.every is not None and self.every != int(self.every):
            raise ConfigError(f"frame sampling every must be a whole number, got {self.every!r}")

    @classmethod
    def all(cls) -> "FrameSampling":
        return cls(count=None)

    @property
    def is_all(self) -> bool:
        return self.count is None and self.every is None and self.fps is None and self.indices is None

    @classmethod
    def parse(cls, text: "str | int | FrameSampling") -> "FrameSampling":
        """"32" (evenly spaced), "every:5", "fps:2" or "all"."""
        if isinstance(text, FrameSampling):
            return text
        spec = str(text).strip().lower()
        try:
            if spec == "all":
                return cls.all()
            if spec.startswith("every:"):
                return cls(every=int(spec[6:]))
            if spec.startswith("fps:"):
                return cls(fps=float(spec[4:]))
            if spec.startswith("count:"):
                spec = spec[6:]
            return cls(count=int(spec))
        except ValueError:
            raise ConfigError(
                f"frame sampling {text!r} not understood; use a number (e.g. 32), every:N, fps:R or all"
            ) from None

    def __str__(self) -> str:
        if self.indices is not None:
            return "indices:" + ",".join(map(str, self.indices))
        if self.every is not None:
            return f"every:{self.every}"
        if self.fps is not None:
            return f"fps:{self.fps:g}"
        return "all" if self.count is None else str(self.count)


def sample_indices(frame_count: int, fps: float | None, sampling: FrameSampling) -> list[int]:
    """Frame indices (0-based, increasing) chosen by `sampling` from a video of `frame_count` frames."""
    if frame_count <= 0:
        return []
    if sampling.indices is not None:
        return [i for i in sampling.indices if i < frame_count]
    if sampling.count is not None:
        return _evenly_spaced(frame_count, int(sampling.count))
    indices = []
    for index in _open_ended_indices(sampling, fps):
        if index >= frame_count:
            break
        indices.append(index)
    return indices


def _evenly_spaced(frame_count: int, count: int) -> list[int]:
    if count >= frame_count:
        return list(range(frame_count))
    # The centre of each of `count` equal segments: never the very last frame, which is the one a
    # container's frame count most often gets wrong (and the one an encoder most often drops).
    return [int((j + 0.5) * frame_count / count) for j in range(count)]


def _open_ended_indices(sampling: FrameSampling, fps: float | None) -> Iterator[int]:
    """Indices for the rules that do not need the frame count (every, fps, all): an endless stream."""
    if sampling.every is not None:
        step: float = int(sampling.every)
    elif sampling.fps is not None:
        if not fps or fps <= 0:
            raise MediaError("the video's frame rate is unknown, so fps sampling cannot be used; use a count or every:N")
        step = max(1.0, fps / sampling.fps)
    else:
        step = 1
    j, last = 0, -1
    while True:
        index = int(math.floor(j * step + 0.5))
        if index > last:
            yield index
            last = index
        j += 1


# --------------------------------------------------------------------------------------------------
# Media description
# --------------------------------------------------------------------------------------------------
@dataclass
class MediaInfo:
    path: Path
    kind: str                      # "video" | "image"
    width: int                     # display size, after rotation
    height: int
    frame_count: int               # 1 for an image
    fps: float | None
    duration_s: float | None
    rotation: int                  # degrees clockwise applied to stored frames to show them upright
    codec: str
    frame_count_estimated: bool = False   # True when the container had no frame count (duration x fps)


@dataclass
class Frame:
    index: int
    time_s: float
    image: np.ndarray              # RGB uint8, upright


# --------------------------------------------------------------------------------------------------
# Recognising files from their content
# --------------------------------------------------------------------------------------------------
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
_BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}
_NOT_SUPPORTED = [  # recognised, but not inputs this tool reads: say what they are instead of "unknown"
    (b"GIF8", "a GIF image; convert it to PNG or MP4"),
    (b"II*\x00", "a TIFF image; convert it to PNG or JPEG"),
    (b"MM\x00*", "a TIFF image; convert it to PNG or JPEG"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive; unpack it first"),
    (b"\x1f\x8b", "a gzip archive; unpack it first"),
]


def sniff_kind(path: str | Path) -> str:
    """"video" or "image" from the first bytes of the file, whatever its name says."""
    path = Path(path)
    _check_readable_file(path)
    with open(path, "rb") as f:
        head = f.read(64)
    kind = _kind_from_magic(head)
    if kind is None:
        raise MediaError(f"not a video or image: {path} ({_describe_content(head)})")
    return kind


def _kind_from_magic(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "image"
    if head[4:8] == b"ftyp":
        return None if head[8:12] in _HEIF_BRANDS else "video"
    if head[4:8] in _QUICKTIME_ATOMS:  # QuickTime files from before the ftyp atom existed
        return "video"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska / WebM
        return "video"
    return None


def _describe_content(head: bytes) -> str:
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "content is a HEIF/AVIF image; convert it to JPEG or PNG"
    for magic, what in _NOT_SUPPORTED:
        if head.startswith(magic):
            return f"content is {what}"
    if not head.strip(b"\x00"):
        return "content is all zero bytes"
    if _looks_like_text(head):
        return "content looks like text"
    return "unrecognised content starting " + head[:8].hex(" ")


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    text = head.decode("utf-8", errors="ignore")
    if len(text.encode("utf-8")) < len(head) - 3:  # more lost than one character cut off at the end
        return False
    return bool(text) and sum(c.isprintable() or c in "\r\n\t" for c in text) >= 0.95 * len(text)


def _check_readable_file(path: Path) -> None:
    """One clear line for the ways a path can fail before its content is looked at."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise MediaError(f"file not found: {path}") from None
    except PermissionError:
        raise MediaError(f"cannot read {path} (permission denied)") from None
    except OSError as exc:
        raise MediaError(f"cannot read {path} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise MediaError(f"is a folder, not a file: {path} (give the files in it, or collect_inputs to list them)")
    if not stat.S_ISREG(st.st_mode):
        raise MediaError(f"not a regular file: {path}")
    if st.st_size == 0:
        raise MediaError(f"empty file (0 bytes): {path}")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise MediaError(f"cannot read {path} (permission denied)") from None
    except OSError as exc:
        raise MediaError(f"cannot read {path} ({exc.strerror or exc})") from None


# --------------------------------------------------------------------------------------------------
# Probing
# --------------------------------------------------------------------------------------------------
def probe(path: str | Path) -> MediaInfo:
    """Describe a video or image without decoding more than its first frame."""
    path = Path(path)
    if sniff_kind(path) == "image":
        return _probe_image(path)
    return _probe_video(path)


def _probe_video(path: Path) -> MediaInfo:
    with _open_video(path) as container:
        stream = _video_stream(container, path)
        first = _first_frame(container, stream, path)
        rotation = _rotation_of(first, stream)
        fps = _stream_fps(stream)
        duration = _stream_duration(stream, container)
        frame_count, estimated = _header_frame_count(stream, fps, duration)
        width, height = stream.codec_context.width or first.width, stream.codec_context.height or first.height
        if rotation % 180:
            width, height = height, width
        return MediaInfo(path=path, kind="video", width=width, height=height, frame_count=frame_count, fps=fps,
                         duration_s=duration, rotation=rotation, codec=stream.codec_context.name,
                         frame_count_estimated=estimated)


def _probe_image(path: Path) -> MediaInfo:
    with _open_pil(path, max_pixels=None) as im:
        width, height = im.size
        rotation = _EXIF_ROTATION.get(_exif_orientation(im), 0)
        codec = (im.format or "image").lower()
    if rotation % 180:
        width, height = height, width
    return MediaInfo(path=path, kind="image", width=width, height=height, frame_count=1, fps=None,
                     duration_s=None, rotation=rotation, codec=codec)


# --------------------------------------------------------------------------------------------------
# Video decoding
# --------------------------------------------------------------------------------------------------
def iter_frames(path: str | Path, sampling: FrameSampling | str = FrameSampling(),
                max_side: int | None = None) -> Iterator[Frame]:
    """Stream the sampled frames of a video (or an image as one frame), upright RGB uint8.

    Decodes sequentially and converts only the chosen frames, so memory stays at a few frames whatever
    the video's length. `max_side` shrinks frames whose longer side is larger (during the colour
    conversion, which costs nothing extra). A damaged video yields the frames that decode and raises
    MediaError only when none do.
    """
    path = Path(path)
    sampling = FrameSampling.parse(sampling)
    # Checked now rather than at the first frame, so a missing or wrong file fails where it is named.
    if sniff_kind(path) == "image":
        return iter([Frame(index=0, time_s=0.0, image=_shrink(read_image(path), max_side))])
    return _iter_video_frames(path, sampling, max_side)


def _iter_video_frames(path: Path, sampling: FrameSampling, max_side: int | None) -> Iterator[Frame]:
    with _open_video(path) as container:
        stream = _video_stream(container, path)
        fps = _stream_fps(stream)
        if sampling.count is not None:
            frame_count = _reliable_frame_count(path, stream, container, fps)
            targets: Iterator[int] = iter(_evenly_spaced(frame_count, int(sampling.count)))
        elif sampling.indices is not None:
            targets = iter(sampling.indices)
        else:
            targets = _open_ended_indices(sampling, fps)
        start = stream.start_time or 0
        decoder = _TolerantDecoder(container, stream, path)
        target = next(targets, None)
        index = -1
        last_unused = None           # the newest frame not yielded: stands in for targets past the real end
        for av_frame in decoder:
            index = _next_index(index, av_frame, start, fps, resync=decoder.bad_packets > 0)
            if index < target:
                last_unused = (index, av_frame)
                continue
            yield _to_frame(av_frame, index, start, fps, max_side, stream)
            last_unused = None
            while target is not None and target <= index:  # targets lost in a damaged stretch are skipped
                target = next(targets, None)
            if target is None:
                break
        if index < 0:
            raise MediaError(f"no video frame could be decoded from {path} (the file is damaged or empty)")
        if target is not None and last_unused is not None and sampling.count is not None:
            # The frame count overstated the video (damage, or an estimate): the last real frame stands in
            # for the samples that lay beyond the end.
            yield _to_frame(last_unused[1], last_unused[0], start, fps, max_side, stream)


def _next_index(previous: int, av_frame, start_pts: int, fps: float | None, resync: bool) -> int:
    """Frames are numbered in decoding order. Once packets have been lost to damage, the count falls behind
    the video, so the number is taken from the frame's timestamp instead (never going backwards)."""
    if resync and fps and av_frame.pts is not None and av_frame.time_base is not None:
        from_time = round(float((av_frame.pts - start_pts) * av_frame.time_base) * fps)
        return max(previous + 1, from_time)
    return previous + 1


def _to_frame(av_frame, index: int, start_pts: int, fps: float | None, max_side: int | None, stream) -> Frame:
    width, height = _fit(av_frame.width, av_frame.height, max_side)
    if (width, height) == (av_frame.width, av_frame.height):
        image = av_frame.to_ndarray(format="rgb24")
    else:
        # AREA averages the pixels a shrunk pixel covers: no aliasing on faces shrunk several-fold.
        image = av_frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
    rotation = _rotation_of(av_frame, stream)
    if rotation:
        image = np.ascontiguousarray(np.rot90(image, k=-rotation // 90))
    if av_frame.pts is not None and av_frame.time_base is not None:
        time_s = float((av_frame.pts - start_pts) * av_frame.time_base)
    else:
        time_s = index / fps if fps else 0.0
    return Frame(index=index, time_s=max(0.0, time_s), image=image)


class _TolerantDecoder:
    """Decoded frames in display order. Packets that fail to decode are skipped (the decoder recovers at the
    next keyframe) and reading stops quietly where a truncated file ends."""

    def __init__(self, container, stream, path: Path):
        self.container, self.stream, self.path = container, stream, path
        self.bad_packets = 0

    def __iter__(self) -> Iterator:
        import av

        bad_in_a_row = 0
        flushed = False
        try:
            for packet in self.container.demux(self.stream):
                if packet.size == 0:
                    flushed = True  # PyAV's end-of-stream packet: decoding it drains the decoder
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    self.bad_packets += 1
                    bad_in_a_row += 1
                    if bad_in_a_row > MAX_BAD_PACKETS_IN_A_ROW:
                        log.warning("%s: gave up after %d packets in a row failed to decode", self.path, bad_in_a_row)
                        break
                    continue
                bad_in_a_row = 0
                yield from frames
        except (av.error.FFmpegError, OSError) as exc:
            log.warning("%s: reading stopped early (%s); using the frames decoded so far", self.path, _short(exc))
        if not flushed:
            try:
                yield from self.stream.codec_context.decode(None)
            except (av.error.FFmpegError, ValueError):
                pass
        if self.bad_packets:
            log.warning("%s: %d damaged packets skipped", self.path, self.bad_packets)


def _open_video(path: Path):
    import av

    _check_readable_file(path)
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"cannot open video {path} ({_short(exc)}); the file is truncated, damaged or not a video") from None
    return container


def _video_stream(container, path: Path):
    if not container.streams.video:
        container.close()
        raise MediaError(f"no video stream in {path} (audio only or not a video)")
    stream = container.streams.video[0]
    # Frame threads keep both cores busy on H.264; slice threads alone leave most of the CPU idle.
    stream.thread_type = "AUTO"
    return stream


def _first_frame(container, stream, path: Path):
    for frame in _TolerantDecoder(container, stream, path):
        return frame
    raise MediaError(f"no video frame could be decoded from {path} (the file is damaged or empty)")


def _stream_fps(stream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            value = float(rate)
            if 0 < value < 1000:  # containers without timing report absurd tick rates
                return value
    return None


def _stream_duration(stream, container) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return None


def _header_frame_count(stream, fps: float | None, duration: float | None) -> tuple[int, bool]:
    if stream.frames:
        return int(stream.frames), False
    if fps and duration:
        return max(1, round(duration * fps)), True
    return 0, True


def _reliable_frame_count(path: Path, stream, container, fps: float | None) -> int:
    """The container's frame count, or else the number of video packets (one per frame): demuxing without
    decoding costs little next to decoding, and an estimate from duration x fps can be far off."""
    if stream.frames:
        return int(stream.frames)
    import av

    count = 0
    try:
        with av.open(str(path)) as other:
            for packet in other.demux(other.streams.video[0]):
                if packet.size:
                    count += 1
    except (av.error.FFmpegError, OSError):
        pass
    if count:
        return count
    estimate, _ = _header_frame_count(stream, fps, _stream_duration(stream, container))
    return estimate or 1


def _rotation_of(av_frame, stream) -> int:
    """Clockwise degrees (0/90/180/270) that make the stored frame upright."""
    ccw = getattr(av_frame, "rotation", 0) or 0  # from the display matrix; counter-clockwise, in [-180, 180]
    if ccw:
        return (-round(ccw / 90) * 90) % 360
    if stream is not None:
        # The older way: clockwise degrees as a stream tag ("rotate"; Matroska upper-cases tag names).
        tag = next((v for k, v in stream.metadata.items() if k.lower() == "rotate"), None)
        if tag and re.fullmatch(r"-?\d+", tag.strip()):
            return (round(int(tag) / 90) * 90) % 360
    return 0


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # PyAV appends "; last error log: ..." and the path: keep the reason only.
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    text = re.sub(r":\s*'[^']*'$", "", text)
    return text[:200]


# --------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------
_EXIF_ORIENTATION_TAG = 0x0112
_EXIF_ROTATION = {3: 180, 4: 180, 5: 90, 6: 90, 7: 270, 8: 270}


def read_image(path: str | Path, max_pixels: int | None = MAX_IMAGE_PIXELS) -> np.ndarray:
    """An image as upright RGB uint8 (EXIF orientation applied). Images whose header declares more than
    `max_pixels` pixels are refused before any pixel is decoded (None: no limit)."""
    from PIL import Image, ImageOps

    path = Path(path)
    kind = sniff_kind(path)
    if kind != "image":
        raise MediaError(f"not an image: {path} (content is a video; read it with iter_frames)")
    with _open_pil(path, max_pixels) as im:
        try:
            im = ImageOps.exif_transpose(im)
            if im.mode != "RGB":
                im = _to_rgb(im)
            image = np.asarray(im, dtype=np.uint8)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise MediaError(f"cannot decode image {path} ({_short(exc)}); the file is truncated or damaged") from None
    return np.ascontiguousarray(image)


def _to_rgb(im):
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Transparent pixels have arbitrary colours underneath: show them on white, as viewers do.
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        scaled = np.asarray(im, dtype=np.float64) / 257.0
        return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8)).convert("RGB")
    return im.convert("RGB")


class _open_pil:
    """PIL image opened lazily (header only) with the pixel limit checked before anything decodes."""

    def __init__(self, path: Path, max_pixels: int | None):
        self.path, self.max_pixels, self.image = path, max_pixels, None

    def __enter__(self):
        import warnings

        from PIL import Image

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                self.image = Image.open(self.path)
            except Image.DecompressionBombError:
                # PIL's own limit (about 179 MP) fired first; ours is the one to obey. Opening reads only
                # the header, so opening again without PIL's limit costs nothing.
                self.image = self._open_without_pil_limit()
            except (OSError, ValueError, SyntaxError) as exc:
                raise MediaError(f"cannot open image {self.path} ({_short(exc)}); the file is truncated or damaged") from None
        width, height = self.image.size
        if self.max_pixels is not None and width * height > self.max_pixels:
            self.image.close()
            raise MediaError(self._too_large(width, height))
        return self.image

    def __exit__(self, *exc):
        if self.image is not None:
            self.image.close()

    def _open_without_pil_limit(self):
        from PIL import Image

        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(self.path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved

    def _too_large(self, width: int, height: int) -> str:
        return (f"image too large: {self.path} is {width}x{height} = {width * height / 1e6:.0f} megapixels, over "
                f"the limit of {self.max_pixels / 1e6:g} megapixels; shrink it first or raise max_pixels")


def _exif_orientation(im) -> int:
    if im.format == "PNG" and "exif" not in im.info:
        # PIL would decode the whole image looking for an eXIf chunk after the pixel data.
        return 1
    try:
        return int(im.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    except Exception:  # a damaged EXIF block must not make the image unreadable
        return 1


def _fit(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _shrink(image: np.ndarray, max_side: int | None) -> np.ndarray:
    height, width = image.shape[:2]
    new_width, new_height = _fit(width, height, max_side)
    if (new_width, new_height) == (width, height):
        return image
    import cv2

    return cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------
def collect_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given (even missing ones, so that each gets its own error); folders expanded recursively,
    in sorted order, to files with a known image or video extension. Hidden files and folders (such as
    macOS "._" resource forks) are left out. A file reached twice is listed once."""
    out: list[Path] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        found = _media_files_under(path) if path.is_dir() else [path]
        for file in found:
            if file not in seen:
                seen.add(file)
                out.append(file)
    return out


def _media_files_under(folder: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in MEDIA_EXTENSIONS:
                files.append(Path(root) / name)
    return sorted(files, key=lambda p: p.relative_to(folder).parts)


# --------------------------------------------------------------------------------------------------
# Writing videos
# --------------------------------------------------------------------------------------------------
class VideoWriter:
    """Writes RGB frames to an MP4: H.264 (yuv420p, plays everywhere, including browsers) when this PyAV
    build has libx264, MPEG-4 Part 2 otherwise. An odd width or height gets its last row/column repeated
    once (yuv420p needs even sizes), so no source pixel is lost."""

    def __init__(self, path: str | Path, fps: float, width: int, height: int, *, rotation: int = 0,
                 quality: int = 23):
        import av

        self.path = Path(path)
        self.source_size = (int(width), int(height))
        self.width, self.height = _even_up(int(width)), _even_up(int(height))
        if min(self.source_size) < 1:
            raise MediaError(f"cannot write a {width}x{height} video to {self.path}")
        if not _is_frame_rate(fps):
            raise MediaError(f"cannot write a video at {fps} fps to {self.path}")
        # 29.97 becomes 2997/100 and 29.97002997 becomes 30000/1001: exact rates, small time bases.
        rate = fps if isinstance(fps, Fraction) else Fraction(float(fps)).limit_denominator(1001)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        codec, options = _video_encoder(quality)
        try:
            self._container = av.open(str(self.path), mode="w", options={"movflags": "+faststart"})
        except (av.error.FFmpegError, OSError) as exc:
            raise MediaError(f"cannot write video {self.path} ({_short(exc)})") from None
        self._stream = self._container.add_stream(codec, rate=rate, options=options)
        self._stream.width, self._stream.height = self.width, self.height
        self._stream.pix_fmt = "yuv420p"
        if codec == "mpeg4":
            self._stream.bit_rate = int(self.width * self.height * float(rate) * 0.2)
        if rotation:
            self._stream.set_display_rotation(-rotation)  # PyAV takes counter-clockwise degrees
        self.codec = codec
        self._frame_time_base = 1 / rate
        self.frames_written = 0

    def write(self, image: np.ndarray) -> None:
        import av

        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image, got shape {image.shape} dtype {image.dtype}")
        width, height = self.source_size
        if image.shape[0] < height or image.shape[1] < width:
            raise ValueError(f"frame of {image.shape[1]}x{image.shape[0]} is smaller than the video's "
                             f"{width}x{height}")
        image = image[:height, :width]
        if (width, height) != (self.width, self.height):
            image = np.pad(image, ((0, self.height - height), (0, self.width - width), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts, frame.time_base = self.frames_written, self._frame_time_base
        self._container.mux(self._stream.encode(frame))
        self.frames_written += 1

    def close(self) -> None:
        if self._container is None:
            return
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()
            self._container = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _even_up(n: int) -> int:
    return n + n % 2


def open_video_writer(path: str | Path, fps: float, width: int, height: int, **options) -> VideoWriter:
    """A VideoWriter; use it as a context manager so the file is finalised."""
    return VideoWriter(path, fps, width, height, **options)


def _is_frame_rate(fps) -> bool:
    try:
        return 0 < float(fps) < 1000  # False for NaN too
    except (TypeError, ValueError):
        return False


def _video_encoder(quality: int) -> tuple[str, dict]:
    import av

    try:
        av.codec.Codec("libx264", "w")
    except av.codec.codec.UnknownCodecError:
        return "mpeg4", {}
    return "libx264", {"crf": str(quality), "preset": "veryfast"}
