"""Video probing and decoding with PyAV: sampled frames, upright, tolerant of damaged packets."""

from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import MediaError
from ..imaging import fit_within, shrink_within
from .images import _probe_image, read_image
from .info import Frame, MediaInfo
from .planned import Unplanned, decode_planned, read_packet_table
from .sampling import FrameSampling, _open_ended_indices, counted_indices
from .sniff import _check_readable_file, _short, sniff_kind

log = logging.getLogger(__name__)

# Packets that fail to decode before a video is declared unreadable: a few bad packets are common in
# damaged files and the decoder recovers at the next keyframe, so only give up on a long run of them.
MAX_BAD_PACKETS_IN_A_ROW = 500


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
                         frame_count_estimated=estimated, bit_rate=_stream_bit_rate(path, stream, container, duration))


def iter_frames(path: str | Path, sampling: FrameSampling | str = FrameSampling(),
                max_side: int | None = None, preview_side: int | None = None) -> Iterator[Frame]:
    """Stream the sampled frames of a video (or an image as one frame), upright RGB uint8.

    Decodes only what the chosen frames need where the video allows it (planned.py: the same frames as
    decoding every frame in order), else every frame in order, and converts only the chosen frames, so
    memory stays at a few frames whatever the video's length. `max_side` shrinks frames whose longer
    side is larger (during the colour conversion, which costs nothing extra). `preview_side` adds to each
    frame larger than that its `preview`, shrunk to it (face detection works on it; made here, it is made
    in the decoding thread where the scan has one). A damaged video yields the frames
    that decode and raises MediaError only when none do.
    """
    path = Path(path)
    sampling = FrameSampling.parse(sampling)
    # Checked now rather than at the first frame, so a missing or wrong file fails where it is named.
    if sniff_kind(path) == "image":
        image = shrink_within(read_image(path), max_side)
        return iter([Frame(index=0, time_s=0.0, image=image, preview=_preview_of(image, preview_side))])
    return _iter_video_frames(path, sampling, (max_side, preview_side))


def _iter_video_frames(path: Path, sampling: FrameSampling, sides: tuple) -> Iterator[Frame]:
    """Planned decoding where the video allows it (the same frames for less work, see planned.py), else,
    or from the first doubt on, every frame in order; frames already yielded are not yielded again."""
    yielded = -1
    if not sampling.is_all and sampling.every != 1:  # when every frame is wanted, there is nothing to plan
        try:
            for frame in _iter_planned_frames(path, sampling, sides):
                yielded = frame.index
                yield frame
            return
        except Unplanned as exc:
            log.debug("%s: decoding every frame (%s)", path, exc)
    for frame in _iter_sequential_frames(path, sampling, sides):
        if frame.index > yielded:
            yield frame


def _iter_planned_frames(path: Path, sampling: FrameSampling, sides: tuple = (None, None),
                         stats: dict | None = None) -> Iterator[Frame]:
    with _open_video(path) as container:
        stream = _video_stream(container, path)
        fps = _stream_fps(stream)
        table = read_packet_table(path, header_frames=int(stream.frames or 0))
        # The packet count is the frame count the sequential path would use: the header's, which the table
        # has checked against the packets, or else the packets counted.
        wanted = list(itertools.takewhile(lambda i: i < table.count,
                                          _targets(sampling, lambda: table.count, fps)))
        if not wanted:
            raise Unplanned("no sampled frame within the stream")
        start = stream.start_time or 0
        for av_frame, index in decode_planned(container, stream, table, wanted, stats=stats):
            yield _to_frame(av_frame, index, start, fps, sides, stream)


def _targets(sampling: FrameSampling, frame_count, fps: float | None) -> Iterator[int]:
    """The sampled frame numbers, increasing; `frame_count` is called only by the rules that need it."""
    if sampling.needs_frame_count:
        return iter(counted_indices(frame_count(), sampling))
    if sampling.indices is not None:
        return iter(sampling.indices)
    return _open_ended_indices(sampling, fps)


def _iter_sequential_frames(path: Path, sampling: FrameSampling, sides: tuple = (None, None)) -> Iterator[Frame]:
    with _open_video(path) as container:
        stream = _video_stream(container, path)
        fps = _stream_fps(stream)
        targets = _targets(sampling, lambda: _reliable_frame_count(path, stream, container, fps), fps)
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
            yield _to_frame(av_frame, index, start, fps, sides, stream)
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
            yield _to_frame(last_unused[1], last_unused[0], start, fps, sides, stream)


def _next_index(previous: int, av_frame, start_pts: int, fps: float | None, resync: bool) -> int:
    """Frames are numbered in decoding order. Once packets have been lost to damage, the count falls behind
    the video, so the number is taken from the frame's timestamp instead (never going backwards)."""
    if resync and fps and av_frame.pts is not None and av_frame.time_base is not None:
        from_time = round(float((av_frame.pts - start_pts) * av_frame.time_base) * fps)
        return max(previous + 1, from_time)
    return previous + 1


def _to_frame(av_frame, index: int, start_pts: int, fps: float | None, sides: tuple, stream) -> Frame:
    """`sides`: (max_side, preview_side), as iter_frames takes them."""
    max_side, preview_side = sides
    rotation = _rotation_of(av_frame, stream)
    image = _rgb(av_frame, max_side, rotation)
    # Shrunk from the RGB frame as the detector would shrink it (the decoder's own scaler gives other pixels,
    # enough to move MTCNN's boxes), but here, in the decoding thread where there is one.
    preview = _preview_of(image, preview_side)
    if av_frame.pts is not None and av_frame.time_base is not None:
        time_s = float((av_frame.pts - start_pts) * av_frame.time_base)
    else:
        time_s = index / fps if fps else 0.0
    return Frame(index=index, time_s=max(0.0, time_s), image=image, preview=preview)


def _rgb(av_frame, max_side: int | None, rotation: int) -> np.ndarray:
    """The decoded frame as upright RGB, shrunk to `max_side` in the colour conversion."""
    width, height = fit_within(av_frame.width, av_frame.height, max_side)
    if (width, height) == (av_frame.width, av_frame.height):
        image = av_frame.to_ndarray(format="rgb24")
    else:
        # AREA averages the pixels a shrunk pixel covers: no aliasing on faces shrunk several-fold.
        image = av_frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
    if rotation:
        image = np.ascontiguousarray(np.rot90(image, k=-rotation // 90))
    return image


def _preview_of(image: np.ndarray, preview_side: int | None) -> np.ndarray | None:
    if not preview_side or max(image.shape[:2]) <= preview_side:
        return None
    return shrink_within(image, preview_side)


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


def _stream_bit_rate(path: Path, stream, container, duration: float | None) -> int | None:
    """The video stream's bit rate from its header, else from the file's size when the video is its only
    stream (the file's size would count the audio too)."""
    if stream.bit_rate:
        return int(stream.bit_rate)
    if len(container.streams) == 1 and duration:
        return round(path.stat().st_size * 8 / duration)
    return None


def keyframe_bits_per_pixel(path: str | Path, keyframes: int = 3, max_packets: int = 2000) -> float | None:
    """Bits per pixel of the largest of the first few keyframes, read without decoding. Unlike the stream's
    average it does not fall when the picture stands still (a still scene costs a codec few bits between
    keyframes, a keyframe it costs as much as any); the largest, so that a fade from black does not count."""
    import av

    with _open_video(Path(path)) as container:
        stream = _video_stream(container, Path(path))
        pixels = (stream.codec_context.width or 0) * (stream.codec_context.height or 0)
        sizes = []
        try:
            for number, packet in enumerate(container.demux(stream)):
                if packet.size and packet.is_keyframe:
                    sizes.append(packet.size)
                if len(sizes) >= keyframes or number >= max_packets:
                    break
        except av.error.FFmpegError:  # a damaged file: the keyframes read before the damage still say it
            pass
    return max(sizes) * 8 / pixels if sizes and pixels else None


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
