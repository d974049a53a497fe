"""Planned decoding: decode only the packets the sampled frames need, and give the frames (numbers, times and
pixels) that decoding every frame in order gives.

A first pass demuxes the video without decoding it (a few milliseconds for a 10 s clip; reading, not
decoding) and makes a table of its packets in decoding order: timestamp, whether any other frame refers to
it, and whether decoding can start at it. A frame's number is the rank of its timestamp among all packets,
which is what counting decoded frames gives on a clean stream. Then, while decoding:

- a packet whose frame no other frame refers to (H.264: every NAL unit has nal_ref_idc 0) and that is not
  sampled is not decoded;
- when the next sampled frame lies beyond a clean start (an H.264 IDR frame or an MPEG-4 I-VOP that no
  later frame is shown before and no earlier one after), the packets before that start are not decoded:
  dropped as they are read, or skipped by seeking when there are many of them.

Anything unexpected raises `Unplanned` and the caller decodes every frame in order instead: an unsupported
codec or bitstream format, packets without timestamps or marked corrupt or to be discarded, a header frame
count that disagrees with the packets, a packet that fails to decode, a frame that does not come out in
order, or a seek that lands elsewhere than planned. A packet whose kind is in any doubt is decoded.
"""

from __future__ import annotations

import bisect
import heapq
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

# Seek instead of reading on when at least this many packets lie before the clean start the next sampled
# frame needs: below that, reading and dropping them costs less than a seek and the decoder drain before it.
SEEK_MIN_PACKETS = 64

# SEI messages that change no pixel of any frame: buffering period, picture timing, user data. Any other
# (film grain, frame packing, ...) keeps its packet decoded.
_HARMLESS_SEI = frozenset({0, 1, 5})
# NAL unit types a frame that can be left undecoded may hold: non-IDR slice, SEI, access unit delimiter, filler.
_DISPOSABLE_NALS = frozenset({1, 6, 9, 12})
_SUPPORTED_CODECS = ("h264", "mpeg4")


class Unplanned(Exception):
    """The video is not one planned decoding is sure about; decode it frame by frame instead."""


@dataclass
class PacketTable:
    """A video stream's packets in decoding order (compact arrays: a long video has hundreds of thousands)."""

    pts: array                # timestamps, in decoding order
    seek_ts: array            # where a seek to each packet aims: its decoding timestamp, else its timestamp
    display: array            # each packet's frame number: the rank of its timestamp
    disposable: bytearray     # no other frame refers to it: leaving it undecoded changes no other frame
    clean_start: array        # per packet, the latest packet at or before it where decoding can start
    sorted_pts: array         # the timestamps in display order
    position_of_frame: array  # frame number -> decoding position

    @property
    def count(self) -> int:
        return len(self.pts)

    def position_of(self, pts: int | None) -> int | None:
        """The decoding position of the packet with this timestamp, or None when there is none."""
        if pts is None:
            return None
        rank = bisect.bisect_left(self.sorted_pts, pts)
        if rank < len(self.sorted_pts) and self.sorted_pts[rank] == pts:
            return self.position_of_frame[rank]
        return None


def read_packet_table(path: Path, header_frames: int = 0) -> PacketTable:
    """Demux (without decoding) the first video stream of `path` into a PacketTable, or raise Unplanned."""
    import av

    pts, dts, keys, disposable = array("q"), [], bytearray(), bytearray()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            if codec not in _SUPPORTED_CODECS:
                raise Unplanned(f"codec {codec}")
            kind = _packet_kind(codec, stream.codec_context.extradata)
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                if packet.pts is None or packet.is_corrupt or packet.is_discard:
                    raise Unplanned("a packet without a timestamp, damaged or to be discarded")
                pts.append(packet.pts)
                dts.append(packet.dts)
                droppable, clean = kind(bytes(packet))
                disposable.append(droppable)
                keys.append(clean and packet.is_keyframe)
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        raise Unplanned(f"demuxing failed ({exc})") from None
    return _table(pts, dts, keys, disposable, header_frames)


def _table(pts, dts: list, keys, disposable, header_frames: int) -> PacketTable:
    count = len(pts)
    if not count:
        raise Unplanned("no packets")
    if header_frames and header_frames != count:
        raise Unplanned(f"the header counts {header_frames} frames, the stream holds {count} packets")
    known = [d for d in dts if d is not None]
    if any(b <= a for a, b in zip(known, known[1:])):
        raise Unplanned("decoding timestamps do not increase")
    order = array("l", sorted(range(count), key=pts.__getitem__))
    sorted_pts = array("q", (pts[position] for position in order))
    if any(b == a for a, b in zip(sorted_pts, sorted_pts[1:])):
        raise Unplanned("two packets share a timestamp")
    display = array("l", [0]) * count
    for rank, position in enumerate(order):
        display[position] = rank
    # Decoding can start at a keyframe k when the frames before it in decoding order are exactly the frames
    # shown before it: then nothing from k on is shown before k (no leading pictures that reach back) and
    # nothing before k is shown after it.
    clean_start, latest, highest = array("l", display), -1, -1
    for position in range(count):
        if keys[position] and display[position] == position and highest == position - 1:
            latest = position
        if latest < 0:
            raise Unplanned("the stream does not start at a clean keyframe")
        clean_start[position] = latest
        highest = max(highest, display[position])
    seek_ts = array("q", (p if d is None else d for p, d in zip(pts, dts)))
    return PacketTable(pts=array("q", pts), seek_ts=seek_ts, display=display, disposable=bytearray(disposable),
                       clean_start=clean_start, sorted_pts=sorted_pts, position_of_frame=order)


def _packet_kind(codec: str, extradata: bytes | None):
    """A function of a packet's bytes -> (disposable, decoding can start here)."""
    if codec == "h264":
        # AVCC (MP4, Matroska): length-prefixed NAL units, the prefix size in the avcC record. Annex B
        # (start codes, e.g. MPEG-TS) is not planned.
        if not extradata or len(extradata) < 7 or extradata[0] != 1:
            raise Unplanned("H.264 without an avcC record")
        length_size = (extradata[4] & 3) + 1
        return lambda data: _h264_packet(data, length_size)
    return _mpeg4_packet


def _h264_packet(data: bytes, length_size: int) -> tuple[bool, bool]:
    """(every NAL unit has nal_ref_idc 0 and is a slice or harmless, the packet is an IDR picture).
    Anything malformed gives (False, False): decode it, and start nowhere near it."""
    i, end = 0, len(data)
    disposable, idr, other_slices = True, False, False
    while i < end:
        if i + length_size > end:
            return False, False
        size = int.from_bytes(data[i:i + length_size], "big")
        i += length_size
        if size == 0 or i + size > end:
            return False, False
        header = data[i]
        if header & 0x80:  # forbidden_zero_bit: not H.264 as we know it
            return False, False
        ref_idc, kind = header >> 5 & 3, header & 0x1F
        idr |= kind == 5
        other_slices |= kind in (1, 2, 3, 4)
        if ref_idc or kind not in _DISPOSABLE_NALS or (kind == 6 and not _harmless_sei(data[i + 1:i + size])):
            disposable = False
        i += size
    if i != end:
        return False, False
    return disposable and other_slices and not idr, idr and not other_slices


def _harmless_sei(payload: bytes) -> bool:
    """Every message of an SEI NAL unit's payload is one that changes no pixels."""
    rbsp = payload.replace(b"\x00\x00\x03", b"\x00\x00")  # emulation prevention bytes out
    i = 0
    try:
        while i < len(rbsp) and rbsp[i:] != b"\x80":  # rbsp_trailing_bits end the payload
            values = []
            for _ in range(2):  # payload type, then payload size: 0xFF bytes add 255 each
                value = 0
                while rbsp[i] == 0xFF:
                    value += 255
                    i += 1
                values.append(value + rbsp[i])
                i += 1
            kind, size = values
            if kind not in _HARMLESS_SEI or i + size > len(rbsp):
                return False
            i += size
    except IndexError:
        return False
    return True


def _mpeg4_packet(data: bytes) -> tuple[bool, bool]:
    """MPEG-4 Part 2: never left undecoded; decoding can start at a packet that holds one VOP, an I-VOP."""
    start = data.find(b"\x00\x00\x01\xb6")
    if start < 0 or start + 4 >= len(data) or data.find(b"\x00\x00\x01\xb6", start + 4) >= 0:
        return False, False
    return False, data[start + 4] >> 6 == 0


def decode_planned(container, stream, table: PacketTable, wanted: Sequence[int], seek_min: int | None = None,
                   stats: dict | None = None) -> Iterator[tuple[object, int]]:
    """Decode the frames numbered `wanted` (increasing, each below table.count) from `container`, just
    opened: yields (PyAV frame, frame number). Raises Unplanned as soon as anything differs from the plan;
    the frames yielded until then are right. `stats`, if given, counts packets "decoded" and "seeks"."""
    import av

    seek_min = SEEK_MIN_PACKETS if seek_min is None else seek_min
    stats = {} if stats is None else stats
    stats.update(decoded=0, seeks=0)
    codec = stream.codec_context
    wanted_set = set(wanted)
    target_positions = sorted(table.position_of_frame[d] for d in wanted)
    fed: list[int] = []  # frame numbers sent to the decoder and not yet out of it (a heap)

    def out(frames) -> Iterator[tuple[object, int]]:
        for frame in frames:
            position = table.position_of(frame.pts)
            if position is None:
                raise Unplanned("a frame came out with a timestamp the stream does not have")
            number = table.display[position]
            if not fed or fed[0] != number:
                raise Unplanned(f"frame {number} came out of order or was not asked for")
            heapq.heappop(fed)
            if frame.time_base is None:  # frames drained from the decoder carry no time base of their own
                frame.time_base = stream.time_base
            if number in wanted_set:
                yield frame, number

    def drain() -> list:
        try:
            return codec.decode(None)
        except (av.error.FFmpegError, ValueError) as exc:
            raise Unplanned(f"draining the decoder failed ({exc})") from None

    packets = container.demux(stream)
    next_target, expect, after_seek = 0, 0, False
    while next_target < len(target_positions):
        try:
            packet = next(packets, None)
        except (av.error.FFmpegError, OSError) as exc:
            raise Unplanned(f"reading failed ({exc})") from None
        if packet is None or not packet.size:
            raise Unplanned("the stream ended before the last sampled frame")
        position = table.position_of(packet.pts)
        if position is None or packet.is_corrupt:
            raise Unplanned("a packet the first pass did not see")
        if after_seek and position < expect:
            continue  # the seek landed before the clean start: read on to it
        if position != expect:
            raise Unplanned(f"packet {position} read where packet {expect} was expected")
        after_seek, expect = False, position + 1
        start = table.clean_start[target_positions[next_target]]
        if start > position:  # no frame from here to `start` is needed by any sampled frame
            if start - position >= seek_min:
                yield from out(drain())
                _seek(container, stream, table, start)
                stats["seeks"] += 1
                packets, expect, after_seek = container.demux(stream), start, True
            continue
        if position == target_positions[next_target]:
            next_target += 1
        elif table.disposable[position]:
            continue
        heapq.heappush(fed, table.display[position])
        stats["decoded"] += 1
        try:
            frames = codec.decode(packet)
        except av.error.FFmpegError as exc:
            raise Unplanned(f"packet {position} failed to decode ({exc})") from None
        yield from out(frames)
    yield from out(drain())
    if fed:
        raise Unplanned(f"frame {fed[0]} never came out of the decoder")


def _seek(container, stream, table: PacketTable, start: int) -> None:
    """Seek to the keyframe at decoding position `start` (or a keyframe before it: packets up to it are
    read and dropped). The decoder is flushed: it must have been drained first."""
    import av

    try:
        container.seek(table.seek_ts[start], backward=True, any_frame=False, stream=stream)
    except (av.error.FFmpegError, OSError) as exc:
        raise Unplanned(f"seeking failed ({exc})") from None
