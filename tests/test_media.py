"""media.py and samples.py on real files: DFDC clips, the astronaut photo, and damaged copies made here."""

from __future__ import annotations

import functools
import os
import shutil
import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from dfdetect import media, samples
from dfdetect.errors import ConfigError, DfdetectError, MediaError
from dfdetect.media import FrameSampling, collect_inputs, iter_frames, probe, read_image, sample_indices, sniff_kind


# --------------------------------------------------------------------------------------------------
# helpers that make real files
# --------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _probe_once(path: Path) -> media.MediaInfo:
    return probe(path)


def _landscape_clip(dfdc_videos) -> Path:
    return next(v for v in dfdc_videos if _probe_once(v).width > _probe_once(v).height)


def _smallest_clip(dfdc_videos) -> Path:
    return min(dfdc_videos, key=lambda v: _probe_once(v).width * _probe_once(v).height)


def _remux(src: Path, dst: Path, options: dict | None = None) -> Path:
    """Copy the video stream into another container without re-encoding (fast)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options=options or {}) as out:
        stream = inp.streams.video[0]
        out_stream = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = out_stream
            out.mux(packet)
    return dst


def _top_level_atoms(data: bytes) -> dict[bytes, tuple[int, int]]:
    atoms, pos = {}, 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        atoms[kind] = (pos, size)
        if size < 8:
            break
        pos += size
    return atoms


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _write_blank_png(path: Path, side: int, rows_per_piece: int = 100) -> Path:
    """A valid 1-bit black PNG of side x side pixels, written in milliseconds and a few hundred kB even at
    60000x60000: the compressed data of `rows_per_piece` zero rows is made once and repeated (a full flush
    makes each piece independent), and the Adler-32 of n zero bytes is (n mod 65521) << 16 | 1."""
    row = 1 + (side + 7) // 8  # filter byte + packed bits
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = deflate.compress(bytes(row * rows_per_piece)) + deflate.flush(zlib.Z_FULL_FLUSH)
    final_block = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    adler = ((row * side) % 65521) << 16 | 1
    stream = b"\x78\xda" + piece * (side // rows_per_piece) + final_block + struct.pack(">I", adler)
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", stream)
                     + _png_chunk(b"IEND", b""))
    return path


def _write_clip(path: Path, image: np.ndarray, n_frames: int = 3, fps: int = 10, **writer_options) -> Path:
    height, width = image.shape[:2]
    with media.open_video_writer(path, fps, width, height, **writer_options) as writer:
        for _ in range(n_frames):
            writer.write(image)
    return path


def _marked(astronaut: np.ndarray) -> np.ndarray:
    """A landscape image with a white square in its top-left corner: shows which way frames come out."""
    image = np.ascontiguousarray(astronaut[:256:2, ::2][:, :192])  # 128 x 192
    image[:24, :24] = 255
    return image


def _expect_error(path: Path, *words: str) -> str:
    """probe and iter_frames both refuse `path` with one line that names it and contains `words`."""
    messages = []
    for attempt in (lambda: probe(path), lambda: list(iter_frames(path))):
        with pytest.raises(MediaError) as caught:
            attempt()
        message = str(caught.value)
        assert "\n" not in message and str(path) in message, message
        for word in words:
            assert word in message, message
        messages.append(message)
    return messages[0]


def _mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --------------------------------------------------------------------------------------------------
# sampling rules
# --------------------------------------------------------------------------------------------------
def test_frame_sampling_parse_and_text():
    assert FrameSampling.parse("32") == FrameSampling(count=32)
    assert FrameSampling.parse("every:5") == FrameSampling(every=5)
    assert FrameSampling.parse("fps:2").fps == 2.0
    assert FrameSampling.parse("all").is_all
    assert FrameSampling(every=5).count is None  # an explicit rule replaces the default count
    for spec in ("32", "every:5", "fps:2.5", "all"):
        assert str(FrameSampling.parse(spec)) == spec
    for bad in ("every:x", "0", "fps:-1", "many", "every:2.5"):
        with pytest.raises(ConfigError):
            FrameSampling.parse(bad)
    with pytest.raises(ConfigError):
        FrameSampling(every=2, fps=3.0)


def test_sample_indices_rules():
    even = sample_indices(300, 29.97, FrameSampling(count=32))
    assert len(even) == 32 and even == sorted(set(even)) and 0 <= even[0] and even[-1] < 300
    gaps = np.diff(even)
    assert gaps.max() - gaps.min() <= 1
    assert sample_indices(10, 30, FrameSampling(count=32)) == list(range(10))
    assert sample_indices(300, 30, FrameSampling(every=30)) == list(range(0, 300, 30))
    assert sample_indices(300, 30, FrameSampling(fps=2)) == list(range(0, 300, 15))
    assert sample_indices(300, 29.97, FrameSampling(fps=2))[:3] == [0, 15, 30]
    assert sample_indices(5, 30, FrameSampling(fps=100)) == list(range(5))  # faster than the video: every frame
    assert sample_indices(7, 30, FrameSampling.all()) == list(range(7))
    assert sample_indices(0, 30, FrameSampling()) == []


# --------------------------------------------------------------------------------------------------
# real DFDC clips
# --------------------------------------------------------------------------------------------------
def test_probe_real_clips(dfdc_videos):
    for video in dfdc_videos:
        info = probe(video)
        assert info.kind == "video" and info.codec == "h264"
        assert {info.width, info.height} in ({1920, 1080}, {1280, 720})
        assert 290 <= info.frame_count <= 310 and not info.frame_count_estimated
        assert info.fps == pytest.approx(30, abs=0.1)
        assert info.duration_s == pytest.approx(10, abs=0.1)
        assert info.rotation == 0


def test_count_sampling_on_1080p_clip(dfdc_videos):
    import cv2

    video = _landscape_clip(dfdc_videos)
    info = probe(video)
    frames = list(iter_frames(video, FrameSampling(count=32)))
    assert [f.index for f in frames] == sample_indices(info.frame_count, info.fps, FrameSampling(count=32))
    assert all(f.image.shape == (1080, 1920, 3) and f.image.dtype == np.uint8 for f in frames)
    times = [f.time_s for f in frames]
    assert times == sorted(times) and times[-1] == pytest.approx(frames[-1].index / info.fps, abs=0.05)
    # The frame numbered i is the i-th frame that OpenCV reads, and RGB (not BGR).
    capture = cv2.VideoCapture(str(video))
    opencv = []
    for _ in range(frames[1].index + 1):
        ok, bgr = capture.read()
        assert ok
        opencv.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    ours = frames[1].image
    assert _mean_diff(ours, opencv[frames[1].index]) < 2.0
    assert _mean_diff(ours, opencv[frames[1].index]) < _mean_diff(ours, opencv[frames[0].index])
    assert _mean_diff(ours, opencv[frames[1].index]) < _mean_diff(ours, opencv[frames[1].index][..., ::-1])


def test_every_and_fps_sampling_on_real_clip(dfdc_videos):
    video = _landscape_clip(dfdc_videos)
    info = probe(video)
    every = list(iter_frames(video, "every:30"))
    assert [f.index for f in every] == list(range(0, info.frame_count, 30))
    by_rate = list(iter_frames(video, "fps:2", max_side=480))
    assert len(by_rate) == pytest.approx(info.duration_s * 2, abs=1)
    assert np.diff([f.time_s for f in by_rate]) == pytest.approx(0.5, abs=0.02)
    assert all(f.image.shape == (270, 480, 3) for f in by_rate)  # 1920x1080 shrunk to a 480 long side


def test_portrait_clip_and_max_side(dfdc_videos):
    video = _smallest_clip(dfdc_videos)
    info = probe(video)
    frames = list(iter_frames(video, "4", max_side=320))
    assert len(frames) == 4
    long_side, short_side = 320, round(320 * min(info.width, info.height) / max(info.width, info.height))
    expected = (long_side, short_side) if info.height > info.width else (short_side, long_side)
    assert all(f.image.shape == (*expected, 3) for f in frames)
    # max_side never enlarges
    assert next(iter_frames(video, "all", max_side=10_000)).image.shape == (info.height, info.width, 3)


def test_container_without_frame_count(dfdc_videos, tmp_path):
    video = _smallest_clip(dfdc_videos)
    mkv = _remux(video, tmp_path / "clip.mkv")
    info = probe(mkv)
    assert info.frame_count_estimated  # Matroska stores no frame count: duration x fps
    frames = list(iter_frames(mkv, "32", max_side=256))
    assert len(frames) == 32
    assert frames[-1].index > 0.9 * probe(video).frame_count  # spread over the whole clip, not its start


def test_count_sampling_survives_a_wrong_estimate(tmp_path, astronaut):
    """21 frames: 20 at 10 fps, then one at 10 s. Duration x fps promises about 100 frames."""
    from fractions import Fraction

    path = tmp_path / "variable-rate.mkv"
    image = np.ascontiguousarray(astronaut[:96, :128])
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, pts in enumerate([100 * i for i in range(20)] + [10_000]):
            frame = av.VideoFrame.from_ndarray(np.roll(image, 3 * i, axis=1), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    info = probe(path)
    assert info.frame_count_estimated and info.frame_count > 80
    frames = list(iter_frames(path, "32"))
    assert [f.index for f in frames] == list(range(21))  # every frame there is, not a third of them
    assert frames[-1].time_s == pytest.approx(10.0)


# --------------------------------------------------------------------------------------------------
# damaged videos
# --------------------------------------------------------------------------------------------------
def test_truncated_video_yields_what_decodes(dfdc_videos, tmp_path):
    video = _smallest_clip(dfdc_videos)
    # DFDC files keep their index (moov) at the end: cut, they cannot be opened at all.
    cut = tmp_path / "cut.mp4"
    data = video.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.3)])
    _expect_error(cut, "cannot open video", "truncated")
    # With the index first, a cut file opens and the frames before the cut decode.
    faststart = _remux(video, tmp_path / "faststart.mp4", {"movflags": "+faststart"})
    data = faststart.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.3)])
    assert probe(cut).frame_count == probe(video).frame_count  # the header still promises every frame
    decodable = [f.index for f in iter_frames(cut, "all", max_side=64)]
    assert 0.1 * probe(video).frame_count < len(decodable) < 0.6 * probe(video).frame_count
    sampled = [f.index for f in iter_frames(cut, "32", max_side=64)]
    assert sampled == sorted(set(sampled)) and set(sampled) <= set(decodable)
    assert sampled[-1] == decodable[-1]  # samples promised past the cut fall back to the last real frame
    # Cut straight after the index: the file opens but holds no frame.
    mdat = _top_level_atoms(data)[b"mdat"][0]
    cut.write_bytes(data[: mdat + 108])
    _expect_error(cut, "no video frame could be decoded")


def test_garbage_inside_video(dfdc_videos, tmp_path):
    video = _smallest_clip(dfdc_videos)
    count = probe(video).frame_count
    data = bytearray(video.read_bytes())
    mdat_start, mdat_size = _top_level_atoms(bytes(data))[b"mdat"]
    rng = np.random.default_rng(0)
    # The middle third of the frame data overwritten: frames on both sides of it still come out.
    damaged = tmp_path / "damaged.mp4"
    lo, hi = mdat_start + 8 + mdat_size // 3, mdat_start + 8 + 2 * mdat_size // 3
    data_copy = bytearray(data)
    data_copy[lo:hi] = rng.integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
    damaged.write_bytes(bytes(data_copy))
    frames = list(iter_frames(damaged, "32", max_side=64))
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices)) and len(frames) >= 16
    assert indices[0] < count * 0.2 and indices[-1] > count * 0.8
    assert all(f.time_s == pytest.approx(f.index / probe(video).fps, abs=0.05) for f in frames)
    # All frame data overwritten: nothing decodes.
    data[mdat_start + 8: mdat_start + mdat_size] = rng.integers(0, 256, mdat_size - 8, dtype=np.uint8).tobytes()
    damaged.write_bytes(bytes(data))
    _expect_error(damaged, "no video frame could be decoded")


# --------------------------------------------------------------------------------------------------
# bad inputs, each with one clear line
# --------------------------------------------------------------------------------------------------
def test_bad_inputs_get_clear_errors(tmp_path):
    text = tmp_path / "x.mp4"
    text.write_text("this is not a video, just some notes\n" * 3)
    assert "content looks like text" in _expect_error(text, "not a video or image")

    empty = tmp_path / "empty.mp4"
    empty.touch()
    _expect_error(empty, "empty file")

    _expect_error(tmp_path / "missing.mp4", "file not found")

    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    _expect_error(folder, "folder")

    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _expect_error(noise, "not a video or image", "unrecognised content")

    zeros = tmp_path / "zeros.png"
    zeros.write_bytes(bytes(1000))
    _expect_error(zeros, "all zero bytes")

    audio_only = tmp_path / "voice.mp4"
    with av.open(str(audio_only), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        silence = np.zeros((1, 1024), np.float32)
        for _ in range(4):
            frame = av.AudioFrame.from_ndarray(silence, format="fltp", layout="mono")
            frame.sample_rate = 16000
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    _expect_error(audio_only, "no video stream")

    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    _expect_error(fifo, "not a regular file")


def test_unreadable_file(tmp_path, astronaut):
    if os.geteuid() == 0:
        pytest.skip("running as root, which reads files whatever their permissions")
    path = tmp_path / "locked.png"
    Image.fromarray(astronaut).save(path)
    path.chmod(0)
    try:
        _expect_error(path, "permission denied")
    finally:
        path.chmod(0o644)


def test_sniffing_ignores_names(dfdc_videos, tmp_path, astronaut):
    png_named_mp4 = tmp_path / "photo.mp4"
    Image.fromarray(astronaut).save(png_named_mp4, format="PNG")
    assert sniff_kind(png_named_mp4) == "image"
    assert probe(png_named_mp4).kind == "image"
    frames = list(iter_frames(png_named_mp4))
    assert len(frames) == 1 and frames[0].index == 0 and np.array_equal(frames[0].image, astronaut)

    video_named_jpg = tmp_path / "clip.jpg"
    shutil.copyfile(_smallest_clip(dfdc_videos), video_named_jpg)
    assert sniff_kind(video_named_jpg) == "video"
    assert probe(video_named_jpg).kind == "video"
    with pytest.raises(MediaError, match="not an image"):
        read_image(video_named_jpg)


def test_sniff_recognises_each_format(tmp_path, astronaut):
    small = astronaut[::4, ::4]
    for fmt, suffix in (("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("BMP", "bmp")):
        path = tmp_path / f"image.{suffix}"
        Image.fromarray(small).save(path, format=fmt)
        assert sniff_kind(path) == "image"
        image = read_image(path)
        assert image.shape == small.shape and image.dtype == np.uint8
        assert _mean_diff(image, small) < (1 if fmt in ("PNG", "BMP") else 12)
    for container, codec in (("mp4", "libx264"), ("mov", "libx264"), ("mkv", "libx264"), ("avi", "mpeg4"),
                             ("webm", "libvpx-vp9")):
        path = tmp_path / f"clip.{container}"
        with av.open(str(path), "w") as out:
            stream = out.add_stream(codec, rate=10)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            for _ in range(2):
                out.mux(stream.encode(av.VideoFrame.from_ndarray(small[:48, :64].copy(), format="rgb24")))
            out.mux(stream.encode(None))
        assert sniff_kind(path) == "video", container
        assert len(list(iter_frames(path, "all"))) == 2, container
    for fmt, suffix in (("TIFF", "tif"), ("TIFF", "tiff.bin")):  # read by content, whatever the name says
        path = tmp_path / f"image.{suffix}"
        Image.fromarray(small).save(path, format=fmt)
        assert sniff_kind(path) == "image" and _mean_diff(read_image(path), small) < 1


def test_videos_in_transport_stream_flash_and_gif_are_read(tmp_path, astronaut):
    from PIL import Image

    small = np.ascontiguousarray(astronaut[::4, ::4][:48, :64])
    for container, suffix, codec in (("mpegts", "ts", "libx264"), ("flv", "flv", "flv"),
                                     ("mpegts", "video.bin", "mpeg2video")):
        path = tmp_path / f"clip.{suffix}"
        with av.open(str(path), "w", format=container) as out:
            stream = out.add_stream(codec, rate=10)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            for _ in range(3):
                out.mux(stream.encode(av.VideoFrame.from_ndarray(small.copy(), format="rgb24")))
            out.mux(stream.encode(None))
        assert sniff_kind(path) == "video", suffix
        frames = list(iter_frames(path, "all"))
        assert len(frames) == 3 and frames[0].image.shape == small.shape, suffix
    gif = tmp_path / "anim.gif"
    pages = [Image.fromarray(np.roll(small, 8 * i, axis=1)) for i in range(4)]
    pages[0].save(gif, save_all=True, append_images=pages[1:], duration=100, loop=0)
    assert sniff_kind(gif) == "video" and probe(gif).kind == "video"
    frames = list(iter_frames(gif, "all"))
    assert len(frames) == 4 and _mean_diff(frames[1].image, np.asarray(pages[1].convert("RGB"))) < 12
    assert {p.suffix for p in collect_inputs([tmp_path])} == {".ts", ".flv", ".gif"}


# --------------------------------------------------------------------------------------------------
# rotation
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_from_display_matrix(tmp_path, astronaut, rotation):
    image = _marked(astronaut)
    clip = _write_clip(tmp_path / "rotated.mp4", image, rotation=rotation)
    expected = np.rot90(image, k=-rotation // 90)  # clockwise
    info = probe(clip)
    assert info.rotation == rotation
    assert (info.height, info.width) == expected.shape[:2]
    frames = list(iter_frames(clip, "all"))
    assert len(frames) == 3
    for frame in frames:
        assert frame.image.shape == expected.shape
        assert _mean_diff(frame.image, expected) < 6
    shrunk = next(iter_frames(clip, "1", max_side=96)).image
    assert shrunk.shape[:2] == tuple(round(s / 2) for s in expected.shape[:2])


def test_rotation_from_rotate_tag(tmp_path, astronaut):
    image = _marked(astronaut)
    path = tmp_path / "tagged.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
        stream.metadata["rotate"] = "90"  # the old way phones marked portrait video
        for _ in range(2):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    assert probe(path).rotation == 90
    frame = next(iter_frames(path, "all"))
    assert frame.image.shape == (192, 128, 3)
    assert frame.image[:20, -20:].mean() > 200  # the white corner went from top-left to top-right


def test_unrotated_clip_keeps_its_orientation(tmp_path, astronaut):
    image = _marked(astronaut)
    frame = next(iter_frames(_write_clip(tmp_path / "plain.mp4", image), "1"))
    assert frame.image.shape == image.shape and frame.image[:20, :20].mean() > 200


# --------------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------------
def test_huge_image_refused_before_decoding(tmp_path):
    huge = _write_blank_png(tmp_path / "huge.png", 60000)
    assert huge.stat().st_size < 2_000_000
    info = probe(huge)  # describing it is fine: only the header is read
    assert (info.width, info.height) == (60000, 60000)
    with pytest.raises(MediaError) as caught:
        read_image(huge)
    message = str(caught.value)
    assert "60000x60000" in message and "max_pixels" in message and "\n" not in message
    with pytest.raises(MediaError, match="image too large"):
        list(iter_frames(huge))
    # The limit is a parameter; a small image of the same kind decodes under it and is refused over it.
    small = _write_blank_png(tmp_path / "small.png", 400)
    assert read_image(small, max_pixels=160_000).shape == (400, 400, 3)
    assert read_image(small).max() == 0
    with pytest.raises(MediaError, match="image too large"):
        read_image(small, max_pixels=159_999)


def test_exif_orientation(tmp_path, astronaut):
    image = astronaut[:, :320]  # 512 tall, 320 wide
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    Image.fromarray(image).save(path, quality=95, exif=exif)
    upright = read_image(path)
    expected = np.rot90(image, k=-1)
    assert upright.shape == expected.shape == (320, 512, 3)
    assert _mean_diff(upright, expected) < 4
    info = probe(path)
    assert (info.width, info.height, info.rotation) == (512, 320, 90)


def test_damaged_images(tmp_path, astronaut):
    data = (tmp_path / "ok.jpg")
    Image.fromarray(astronaut).save(data, quality=90)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data.read_bytes()[:2000])
    with pytest.raises(MediaError, match="truncated or damaged"):
        read_image(truncated)
    header_only = tmp_path / "header.png"
    header_only.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    with pytest.raises(MediaError, match="cannot open image"):
        read_image(header_only)


def test_transparent_and_grey_images_become_rgb(tmp_path, astronaut):
    rgba = np.dstack([astronaut, np.zeros(astronaut.shape[:2], np.uint8)])  # fully transparent
    Image.fromarray(rgba).save(tmp_path / "clear.png")
    assert (read_image(tmp_path / "clear.png") == 255).all()  # shown on white
    Image.fromarray(astronaut[..., 0]).save(tmp_path / "grey.png")
    grey = read_image(tmp_path / "grey.png")
    assert grey.shape == astronaut.shape and np.array_equal(grey[..., 1], astronaut[..., 0])


# --------------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------------
def test_collect_inputs(tmp_path):
    for name in ("b/clip.mp4", "a/photo.JPG", "a/z/deep.webm", "a/notes.txt", "a/._clip.mp4", ".cache/x.png",
                 "top.png", "b/readme.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    missing = tmp_path / "not-there.mov"
    found = collect_inputs([tmp_path, missing, tmp_path / "top.png", "a-file-name.txt"])
    assert found == [tmp_path / "a/photo.JPG", tmp_path / "a/z/deep.webm", tmp_path / "b/clip.mp4",
                     tmp_path / "top.png", missing, Path("a-file-name.txt")]
    assert collect_inputs([]) == []


def test_collect_inputs_skips_what_it_cannot_list_and_says_so(tmp_path, monkeypatch):
    for name in ("ok/a.mp4", "locked/b.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    real_scandir = os.scandir

    def scandir(path="."):  # as for a folder without read permission (root would read it anyway)
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    problems: list[str] = []
    long_name = tmp_path / ("x" * 300 + ".mp4")

    found = collect_inputs([tmp_path, long_name], problems=problems)

    assert found == [tmp_path / "ok/a.mp4", long_name]  # the long name gets its own error when scanned
    assert problems == [f"skipped folder {tmp_path / 'locked'}: Permission denied"]
    with pytest.raises(MediaError, match="File name too long"):
        probe(long_name)


# --------------------------------------------------------------------------------------------------
# writing, and the sample clip
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("encoder", ["default", "mpeg4"])
def test_video_writer_round_trip(tmp_path, astronaut, monkeypatch, encoder):
    if encoder == "mpeg4":  # the fallback for PyAV builds without libx264
        monkeypatch.setattr(media.writer, "_video_encoder", lambda quality: ("mpeg4", {}))
    path = tmp_path / "out" / "written.mp4"
    frames = [np.roll(astronaut[:300, :401], 8 * i, axis=1) for i in range(12)]  # odd width on purpose
    with media.open_video_writer(path, 12.5, 401, 300) as writer:
        for frame in frames:
            writer.write(frame)
    info = probe(path)
    assert (info.width, info.height, info.frame_count) == (402, 300, 12)  # the odd column repeated, not lost
    assert info.fps == pytest.approx(12.5)
    read = list(iter_frames(path, "all"))
    assert len(read) == 12
    for original, decoded in zip(frames, read):
        assert decoded.image.shape == (300, 402, 3)
        assert _mean_diff(decoded.image[:, :401], original) < 6
        assert _mean_diff(decoded.image[:, 401], original[:, 400]) < 12
    assert info.codec == ("mpeg4" if encoder == "mpeg4" else "h264")
    with pytest.raises(ValueError):
        with media.open_video_writer(tmp_path / "bad.mp4", 10, 64, 64) as writer:
            writer.write(np.zeros((64, 64), np.uint8))
    with pytest.raises(MediaError, match="fps"):
        media.open_video_writer(tmp_path / "bad.mp4", float("nan"), 64, 64)


def test_sample_video(tmp_path, monkeypatch):
    path = samples.make_sample_video(tmp_path / "sample.mp4")
    assert path.stat().st_size < 1_000_000
    info = probe(path)
    assert info.frame_count == 45 and info.fps == pytest.approx(15) and (info.width, info.height) == (480, 360)
    first, last = (f.image for f in iter_frames(path, "2"))
    assert _mean_diff(first, last) > 10  # the camera moves

    # The package ships the clip it makes; a copy of the package without it makes one in the cache.
    assert samples.sample_video_path() == samples.SHIPPED_CLIP
    shipped = [f.image for f in iter_frames(samples.SHIPPED_CLIP, "3")]
    diffs = [_mean_diff(a, b) for a, b in zip(shipped, (f.image for f in iter_frames(path, "3")))]
    assert len(diffs) == 3 and max(diffs) < 3.0, diffs  # encoder noise: 0 to 1.2 grey levels
    monkeypatch.setattr(samples, "SHIPPED_CLIP", tmp_path / "missing.mp4")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cached = samples.sample_video_path()
    assert cached == tmp_path / "cache" / "dfdetect" / "samples" / "astronaut.mp4"
    made_at = cached.stat().st_mtime_ns
    assert samples.sample_video_path() == cached and cached.stat().st_mtime_ns == made_at
    assert list(cached.parent.iterdir()) == [cached]  # no temporary file left behind

    copied = samples.copy_sample_video(tmp_path / "copy" / "clip.mp4")
    assert copied.read_bytes() == cached.read_bytes()
    with pytest.raises(DfdetectError, match="exists"):
        samples.copy_sample_video(copied)


def test_explicit_frame_indices(dfdc_videos):
    wanted = (250, 3, 77, 77)
    frames = list(iter_frames(dfdc_videos[0], FrameSampling(indices=wanted)))
    assert [f.index for f in frames] == [3, 77, 250]
    assert str(FrameSampling(indices=wanted)) == "indices:3,77,250"
    assert sample_indices(100, 30.0, FrameSampling(indices=wanted)) == [3, 77]
    with pytest.raises(ConfigError, match="one rule"):
        FrameSampling(every=2, indices=(1,))


def test_random_frame_sampling_is_seeded_and_sorted(dfdc_videos):
    from dfdetect.errors import ConfigError
    from dfdetect.media import FrameSampling, iter_frames, sample_indices

    rule = FrameSampling.parse("random:5")
    assert str(rule) == "random:5" and rule.count is None and rule.needs_frame_count
    drawn = sample_indices(300, 30.0, rule.with_seed(0, 7))
    assert drawn == sorted(drawn) and len(set(drawn)) == 5 and max(drawn) < 300
    assert drawn == sample_indices(300, 30.0, rule.with_seed(0, 7))
    assert drawn != sample_indices(300, 30.0, rule.with_seed(0, 8))
    assert sample_indices(3, 30.0, rule) == [0, 1, 2]
    frames = [f.index for f in iter_frames(dfdc_videos[0], rule.with_seed(0, 7))]
    assert frames == drawn
    for bad in ("random:0", "random:x"):
        with pytest.raises(ConfigError):
            FrameSampling.parse(bad)
