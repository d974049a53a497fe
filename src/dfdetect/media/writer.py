"""Writing videos: MP4 (H.264 when available) from RGB frames."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import MediaError
from .sniff import _short


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
        self._audio = None  # (source container, packet iterator, output stream, next packet) once copied
        self.audio_note = ""

    def copy_audio_from(self, source: str | Path) -> bool:
        """Copy the first audio stream of `source` into this video unchanged (no re-encoding), interleaved
        with the frames as they are written. False, with `audio_note` saying why, when there is none or
        its codec cannot go into an MP4."""
        import av

        try:
            container = av.open(str(source))
        except (av.error.FFmpegError, OSError) as exc:
            self.audio_note = f"audio not copied ({_short(exc)})"
            return False
        if not container.streams.audio:
            container.close()
            return False
        in_stream = container.streams.audio[0]
        try:
            out_stream = self._container.add_stream_from_template(in_stream)
        except (av.error.FFmpegError, ValueError) as exc:
            container.close()
            self.audio_note = f"audio not copied: {in_stream.codec_context.name} cannot go into an MP4 ({_short(exc)})"
            return False
        packets = (p for p in container.demux(in_stream) if p.dts is not None)
        self._audio = [container, packets, out_stream, next(packets, None)]
        return True

    def _mux_audio_until(self, time_s: float | None) -> None:
        """Audio packets up to `time_s` (all that are left for None), so that sound and frames interleave."""
        if self._audio is None:
            return
        container, packets, out_stream, packet = self._audio
        while packet is not None and (time_s is None or packet.pts is None
                                      or float(packet.pts * packet.time_base) <= time_s):
            packet.stream = out_stream
            self._container.mux(packet)
            packet = next(packets, None)
        self._audio[3] = packet

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
        self._mux_audio_until(float(self.frames_written * self._frame_time_base))

    def close(self) -> None:
        if self._container is None:
            return
        try:
            self._container.mux(self._stream.encode(None))
            self._mux_audio_until(None)
        finally:
            if self._audio is not None:
                self._audio[0].close()
                self._audio = None
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
