"""Planned decoding (media/planned.py) gives the frames a plain sequential decode gives: the same numbers,
times and pixels, on the shared DFDC clips and on clips made here, for every sampling rule."""

from __future__ import annotations

import zlib
from pathlib import Path

import av
import numpy as np
import pytest

from dfdetect.media import FrameSampling, iter_frames, planned, probe, sample_indices, video

RULES = ["32", "every:7", "fps:1", "random:20", "5"]


def _sequential(path: Path, rule) -> list:
    return list(video._iter_sequential_frames(Path(path), FrameSampling.parse(rule), (None, None)))


def _planned(path: Path, rule, stats: dict | None = None) -> list:
    """The planned path alone: it raises Unplanned rather than hand over to the sequential one."""
    return list(video._iter_planned_frames(Path(path), FrameSampling.parse(rule), (None, None), stats=stats))


def _assert_same(planned_frames: list, sequential_frames: list) -> None:
    assert [f.index for f in planned_frames] == [f.index for f in sequential_frames]
    for ours, theirs in zip(planned_frames, sequential_frames):
        assert ours.time_s == theirs.time_s, ours.index
        assert np.array_equal(ours.image, theirs.image), ours.index


def _fingerprint(image: np.ndarray) -> tuple:
    return image.shape, zlib.crc32(np.ascontiguousarray(image).data)


# --------------------------------------------------------------------------------------------------
# the shared clips: 1080p and 720p H.264 with B-frames (a B-pyramid), an IDR frame every 250 or 150
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("clip", range(6))
def test_shared_clip_frames_equal_a_sequential_decode(dfdc_videos, clip):
    if clip >= len(dfdc_videos):
        pytest.skip(f"only {len(dfdc_videos)} shared clips")
    path = dfdc_videos[clip]
    info = probe(path)
    rules = [FrameSampling.parse(r) for r in ("32", "every:7", "fps:1")]
    rules.append(FrameSampling.parse("random:24").with_seed(0, clip))
    asked = {str(rule): sample_indices(info.frame_count, info.fps, rule) for rule in rules}
    union = sorted(set().union(*asked.values()))
    # One sequential decode of every frame any rule asks for is the reference (full size, fingerprinted).
    reference = {f.index: (f.time_s, _fingerprint(f.image))
                 for f in video._iter_sequential_frames(path, FrameSampling(indices=tuple(union)), (None, None))}
    assert sorted(reference) == union
    for rule in rules:
        stats: dict = {}
        got = [(f.index, f.time_s, _fingerprint(f.image)) for f in _planned(path, rule, stats)]
        assert got == [(i, *reference[i]) for i in asked[str(rule)]], str(rule)
        # Half the frames of these clips are B-frames nothing refers to: most of them are left undecoded.
        assert stats["decoded"] < 0.75 * info.frame_count, (str(rule), stats)
    # Through the public function, with a frame size limit, as a scan asks.
    shrunk = list(iter_frames(path, "32", max_side=320))
    assert [f.index for f in shrunk] == asked["32"] and max(shrunk[0].image.shape) == 320


# --------------------------------------------------------------------------------------------------
# clips made here
# --------------------------------------------------------------------------------------------------
def _moving(n: int, width: int, height: int, astronaut: np.ndarray):
    base = np.ascontiguousarray(astronaut[::3, ::3][:height, :width])
    for i in range(n):
        yield np.roll(np.roll(base, 3 * i, axis=1), 2 * i, axis=0)


def _encode(path: Path, codec: str, n: int, astronaut, *, fps: int = 25, size=(96, 64), options=None,
            b_frames: int | None = None, gop: int | None = None) -> Path:
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec} encoder")
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps, options=options or {})
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        if b_frames is not None:
            stream.codec_context.max_b_frames = b_frames
        if gop is not None:
            stream.codec_context.gop_size = gop
        for i, image in enumerate(_moving(n, *size, astronaut)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


X264_B_PYRAMID = {"x264-params": "keyint=40:min-keyint=40:bframes=3:b-pyramid=normal:scenecut=0"}
CLIPS = {
    # name: (file name, codec, frames, options, B-frames, GOP)
    "h264 B-pyramid": ("x264-pyramid.mp4", "libx264", 200, X264_B_PYRAMID, None, None),
    "h264 open GOP": ("x264-open.mp4", "libx264", 200, {"x264-params": "keyint=40:bframes=3:open-gop=1:scenecut=0"},
                      None, None),
    "h264 no B-frames": ("x264-ponly.mp4", "libx264", 120, {"x264-params": "keyint=30:bframes=0"}, None, None),
    "h264 in Matroska": ("x264.mkv", "libx264", 200,
                         {"x264-params": "keyint=40:min-keyint=40:bframes=2:b-pyramid=none:scenecut=0"}, None, None),
    "mpeg4 B-frames": ("mpeg4-b.mp4", "mpeg4", 150, None, 2, 30),
    "mpeg4": ("mpeg4.mp4", "mpeg4", 150, None, None, 30),
    # 60 s with an IDR frame every second: sparse sampling seeks
    "h264 long, short GOP": ("x264-long.mp4", "libx264", 1500,
                             {"x264-params": "keyint=25:min-keyint=25:bframes=3:scenecut=0"}, None, None),
}


@pytest.fixture(scope="module")
def made_clips(tmp_path_factory, astronaut) -> dict:
    folder = tmp_path_factory.mktemp("clips")
    made = {}
    for name, (file_name, codec, n, options, b_frames, gop) in CLIPS.items():
        if codec in av.codecs_available:
            made[name] = _encode(folder / file_name, codec, n, astronaut, options=options, b_frames=b_frames, gop=gop)
    return made


@pytest.mark.parametrize("name", list(CLIPS))
def test_made_clip_frames_equal_a_sequential_decode(made_clips, name, monkeypatch):
    if name not in made_clips:
        pytest.skip(f"no {CLIPS[name][1]} encoder in this PyAV build")
    path = made_clips[name]
    rules = RULES + [FrameSampling.parse("random:7").with_seed(0, 3), FrameSampling(indices=(3, 41, 42, 118))]
    sequential = {str(rule): _sequential(path, rule) for rule in rules}
    for seek_min in (1, planned.SEEK_MIN_PACKETS, 10**9):  # always seek, the default, never seek
        monkeypatch.setattr(planned, "SEEK_MIN_PACKETS", seek_min)
        for rule in rules:
            _assert_same(_planned(path, rule), sequential[str(rule)])
    if CLIPS[name][2] <= 200:
        for rule in ("all", "every:1"):  # every frame: iter_frames does not plan; the frames are the sequential ones
            _assert_same(list(iter_frames(path, rule)), _sequential(path, rule))


def test_sparse_sampling_of_a_long_clip_seeks_and_decodes_little(made_clips, monkeypatch):
    if "h264 long, short GOP" not in made_clips:
        pytest.skip("no libx264 encoder in this PyAV build")
    path = made_clips["h264 long, short GOP"]
    stats: dict = {}
    frames = _planned(path, "8", stats)
    assert [f.index for f in frames] == sample_indices(1500, 25.0, FrameSampling(count=8))
    assert stats["seeks"] >= 6 and stats["decoded"] < 8 * 25, stats  # at most one GOP per sampled frame
    _assert_same(frames, _sequential(path, "8"))
    # Reading on instead of seeking gives the same frames.
    monkeypatch.setattr(planned, "SEEK_MIN_PACKETS", 10**9)
    stats = {}
    _assert_same(_planned(path, "8", stats), frames)
    assert stats["seeks"] == 0 and stats["decoded"] < 8 * 25
    # The frame times follow the timestamps after every seek.
    assert [f.time_s for f in frames] == pytest.approx([f.index / 25 for f in frames])


def test_where_planning_is_not_sure_the_video_is_decoded_in_order(made_clips, tmp_path, astronaut):
    if "h264 B-pyramid" not in made_clips:
        pytest.skip("no libx264 encoder in this PyAV build")
    mp4 = made_clips["h264 B-pyramid"]
    # H.264 in MPEG-TS (Annex B start codes, timestamps rewritten): not planned, same frames.
    ts = tmp_path / "clip.ts"
    with av.open(str(mp4)) as inp, av.open(str(ts), "w", format="mpegts") as out:
        stream = inp.streams.video[0]
        out_stream = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is not None:
                packet.stream = out_stream
                out.mux(packet)
    with pytest.raises(planned.Unplanned):
        planned.read_packet_table(ts)
    assert [f.index for f in iter_frames(ts, "every:9")] == [f.index for f in _sequential(ts, "every:9")]
    # A header that counts other frames than the packets, two packets at one time, no clean start.
    with pytest.raises(planned.Unplanned, match="header counts"):
        planned.read_packet_table(mp4, header_frames=199)
    with pytest.raises(planned.Unplanned, match="share a timestamp"):
        planned._table([0, 1, 1], [0, 1, 2], [True, False, False], [False] * 3, 0)
    with pytest.raises(planned.Unplanned, match="clean keyframe"):
        planned._table([1, 0, 2], [0, 1, 2], [True, False, False], [False] * 3, 0)


def test_a_doubt_halfway_hands_over_to_the_sequential_decode_without_repeats(made_clips, monkeypatch):
    if "h264 B-pyramid" not in made_clips:
        pytest.skip("no libx264 encoder in this PyAV build")
    path = made_clips["h264 B-pyramid"]
    real = planned.decode_planned

    def doubtful(*args, **kwargs):
        for n, item in enumerate(real(*args, **kwargs)):
            if n == 3:
                raise planned.Unplanned("a doubt")
            yield item

    monkeypatch.setattr(video, "decode_planned", doubtful)
    _assert_same(list(iter_frames(path, "every:7")), _sequential(path, "every:7"))


def _avcc(*nals: bytes) -> bytes:
    return b"".join(len(nal).to_bytes(4, "big") + nal for nal in nals)


def test_which_h264_packets_are_left_undecoded():
    b_slice, p_slice, idr = b"\x01\x9e\x00\x11", b"\x41\x9a\x00\x22", b"\x65\x88\x84\x00"
    sei_user_data = b"\x06\x05\x03abc\x80"
    sei_film_grain = b"\x06\x13\x02\x00\x01\x80"
    assert planned._h264_packet(_avcc(b_slice), 4) == (True, False)
    assert planned._h264_packet(_avcc(b"\x09\xf0", sei_user_data, b_slice), 4) == (True, False)
    assert planned._h264_packet(_avcc(sei_film_grain, b_slice), 4) == (False, False)  # grain may persist
    assert planned._h264_packet(_avcc(p_slice), 4) == (False, False)  # nal_ref_idc 2: a reference
    assert planned._h264_packet(_avcc(b"\x06\x05\x01x\x80", idr), 4) == (False, True)
    assert planned._h264_packet(_avcc(b"\x67\x64\x00", b_slice), 4) == (False, False)  # an SPS travels along
    assert planned._h264_packet(_avcc(b_slice)[:-1], 4) == (False, False)  # cut short: in doubt
    assert planned._h264_packet(_avcc(b"\x81\x00"), 4) == (False, False)  # forbidden bit set
    assert planned._h264_packet(b"\x00\x04" + b_slice, 2) == (True, False)  # two-byte lengths
