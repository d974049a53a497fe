"""Faces linked across sampled frames into one track per person, and the per-video face sample of seed 002.

A detection joins the live track whose latest box it overlaps enough (IoU) or, failing that, whose latest box
it sits close to at a similar size; boxes and tracks are paired one to one (Hungarian assignment). Seed 002 tracks
every frame and calls two boxes the same person above IoU 0.75; between sparse samples (32 frames over a 10 s
clip is one every ~9 frames) faces move more, so the defaults are looser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .detect import FaceBox, iou_matrix

# With 32 samples over the 10 s DFDC clips (one every ~9 frames) a face's box overlapped its previous one by IoU
# 0.74-0.90 on average but down to 0.41; at 0.75 one person split into up to 16 tracks, at 0.5 into two, at 0.3
# every clip gave exactly one track per person. Faces of different people hardly overlap at all.
DEFAULT_IOU_THRESHOLD = 0.3
# Sparser samples (16, 11, 8 over 10 s) moved a face's centre by up to 0.6, 0.8, 1.0 face sizes, at IoU down to
# 0.06, and IoU alone split a person into 2-3 tracks; with this centre-shift rule as well every clip gave one track
# per person at all four rates. Two people's faces, even cheek to cheek, are about a face size or more apart, and
# the one-to-one pairing keeps each on their own track while both are seen.
DEFAULT_MAX_SHIFT = 1.0
MAX_AREA_RATIO = 2.0
UNLINKED_SHIFT_COST = 100.0  # the shift a pair linked by IoU alone is costed at (finite; above any max_shift)
# Sampled frames a face may go undetected (turned head, blur) before its track ends.
DEFAULT_MAX_GAP = 2
# Longer misses are bridged afterwards by stitching: Haar missed the face in a third of the 192 sampled frames
# of the six shared clips, which cut one person into 2-5 tracks. A segment that starts after another ended,
# where that one left off (the same IoU / centre-shift test), continues it.


@dataclass
class TrackedFace:
    frame_index: int
    time_s: float
    box: FaceBox


@dataclass
class Track:
    """One person's faces in frame order."""

    id: int
    faces: list[TrackedFace] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.faces)

    @property
    def frame_indices(self) -> list[int]:
        return [f.frame_index for f in self.faces]

    @property
    def first_frame(self) -> int:
        return self.faces[0].frame_index

    @property
    def last_frame(self) -> int:
        return self.faces[-1].frame_index

    @property
    def span(self) -> int:
        """Video frames from the first to the last sighting, both included (how long the person was tracked)."""
        return self.last_frame - self.first_frame + 1 if self.faces else 0

    @property
    def median_face_size(self) -> float:
        """Median shorter box side in pixels."""
        return float(np.median([min(f.box.width, f.box.height) for f in self.faces])) if self.faces else 0.0

    def box_at(self, frame_index: int, hold: int = 0) -> FaceBox | None:
        """The face box at any frame: linear interpolation between the two nearest sightings; the end boxes are
        held for `hold` frames beyond the first and last sighting; None outside that."""
        if not self.faces:
            return None
        if frame_index <= self.first_frame:
            return self.faces[0].box if self.first_frame - frame_index <= hold else None
        if frame_index >= self.last_frame:
            return self.faces[-1].box if frame_index - self.last_frame <= hold else None
        indices = self.frame_indices
        after = int(np.searchsorted(indices, frame_index, side="left"))
        later = self.faces[after]
        if later.frame_index == frame_index:
            return later.box
        earlier = self.faces[after - 1]
        weight = (frame_index - earlier.frame_index) / (later.frame_index - earlier.frame_index)
        return _blend(earlier.box, later.box, weight)


def _blend(a: FaceBox, b: FaceBox, weight: float) -> FaceBox:
    """a moved `weight` of the way to b (0 -> a, 1 -> b)."""

    def mix(u, v):
        return u + (v - u) * weight

    landmarks = None
    if a.landmarks is not None and b.landmarks is not None:
        landmarks = mix(np.asarray(a.landmarks, float), np.asarray(b.landmarks, float))
    return FaceBox(mix(a.x1, b.x1), mix(a.y1, b.y1), mix(a.x2, b.x2), mix(a.y2, b.y2), mix(a.score, b.score), landmarks)


def min_cost_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of a one-to-one pairing of min(rows, columns) pairs with the least total cost
    (the Hungarian method with potentials, O(n^3); a frame has a handful of faces). As scipy's
    linear_sum_assignment, which the scan no longer needs to install."""
    cost = np.asarray(cost, dtype=float)
    if cost.size == 0:
        return np.zeros(0, int), np.zeros(0, int)
    if cost.shape[0] > cost.shape[1]:
        cols, rows = min_cost_assignment(cost.T)
        order = np.argsort(rows)
        return rows[order], cols[order]
    n, m = cost.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    match = np.zeros(m + 1, dtype=int)  # match[j]: the row (1-based) paired with column j; 0: none
    for row in range(1, n + 1):
        match[0], j0 = row, 0
        slack, way, used = np.full(m + 1, np.inf), np.zeros(m + 1, dtype=int), np.zeros(m + 1, dtype=bool)
        while match[j0]:
            used[j0] = True
            i0 = match[j0]
            free = ~used[1:]
            reduced = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < slack[1:])
            slack[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, slack[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[match[used]] += delta
            v[used] -= delta
            slack[1:][free] -= delta
            j0 = j1
        while j0:  # flip the augmenting path
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
    cols = np.flatnonzero(match[1:])
    rows = match[1:][cols] - 1
    order = np.argsort(rows)
    return rows[order], cols[order]


def build_tracks(
    detections: Sequence[tuple[int, float, list[FaceBox]]],
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    max_gap: int = DEFAULT_MAX_GAP,
    max_shift: float = DEFAULT_MAX_SHIFT,
    stitch: bool = True,
) -> list[Track]:
    """Link per-frame detections, given as (frame_index, time_s, boxes) in any order, into tracks.

    A box may join a live track when it overlaps the track's latest box by at least iou_threshold, or when its
    centre moved at most max_shift face sizes from it at a similar size (sparse samples of a moving head);
    boxes and tracks are paired one to one, closest first overall (Hungarian assignment). For seed 002's
    every-frame rule pass iou_threshold=0.75, max_shift=0. A track stays live while it has missed at most
    max_gap consecutive sampled frames. With `stitch`, a track that ended is then continued by a later one
    starting where it left off (see stitch_tracks). Tracks come back ordered by id (order of first
    appearance); the FaceBox objects given are the ones stored.
    """
    tracks: list[Track] = []
    missed: dict[int, int] = {}  # track id -> consecutive sampled frames without a match
    live: list[Track] = []
    for frame_index, time_s, boxes in sorted(detections, key=lambda d: d[0]):
        matched_tracks: set[int] = set()
        matched_boxes: set[int] = set()
        if live and boxes:
            last = [t.faces[-1].box for t in live]
            iou = iou_matrix(last, boxes)
            shift = np.array([[_relative_shift(a, b) for b in boxes] for a in last])
            allowed = (iou >= iou_threshold) | (shift <= max_shift)
            # Forbidden pairs get a cost no allowed assignment can beat, so they are only ever leftovers.
            cost = np.where(allowed, _link_cost(iou, shift), 1e6)
            for r, c in zip(*min_cost_assignment(cost)):
                if allowed[r, c]:
                    live[r].faces.append(TrackedFace(frame_index, time_s, boxes[c]))
                    matched_tracks.add(live[r].id)
                    matched_boxes.add(c)
        for track in live:
            missed[track.id] = 0 if track.id in matched_tracks else missed[track.id] + 1
        live = [t for t in live if missed[t.id] <= max_gap]
        for c, box in enumerate(boxes):
            if c not in matched_boxes:
                track = Track(id=len(tracks), faces=[TrackedFace(frame_index, time_s, box)])
                tracks.append(track)
                live.append(track)
                missed[track.id] = 0
    return stitch_tracks(tracks, iou_threshold, max_shift) if stitch else tracks


def stitch_tracks(tracks: Sequence[Track], iou_threshold: float = DEFAULT_IOU_THRESHOLD,
                  max_shift: float = DEFAULT_MAX_SHIFT) -> list[Track]:
    """Join track segments of one person that a detector's misses cut apart, whatever the gap's length.

    Taking segments by first sighting, each continues the closest earlier track that ended before it began
    and whose last box passes the linking test with its first box; segments overlapping in time are never
    joined, so two people seen together stay apart. Tracks are renumbered by first appearance.
    """
    joined: list[Track] = []
    for segment in sorted((t for t in tracks if t.faces), key=lambda t: t.first_frame):
        first = segment.faces[0].box
        best, best_cost = None, math.inf
        for track in joined:
            if track.last_frame >= segment.first_frame:
                continue
            last = track.faces[-1].box
            iou, shift = last.iou(first), _relative_shift(last, first)
            cost = float(_link_cost(iou, shift))
            if (iou >= iou_threshold or shift <= max_shift) and cost < best_cost:
                best, best_cost = track, cost
        if best is None:
            joined.append(Track(id=len(joined), faces=list(segment.faces)))
        else:
            best.faces.extend(segment.faces)
    return joined


def _link_cost(iou, shift):
    """Lower is a closer pair. A pair linked by overlap alone may have an infinite shift (sizes too far
    apart for the shift rule): it costs more than any pair the shift rule allows, but stays finite, since an
    infinite cost makes the assignment infeasible."""
    return np.minimum(shift, UNLINKED_SHIFT_COST) - iou


def _relative_shift(a: FaceBox, b: FaceBox) -> float:
    """Centre distance in face sizes (square root of the mean area); infinite when the sizes differ by more
    than MAX_AREA_RATIO, since a near face and a far one are not the same sighting."""
    small, large = sorted((max(a.area, 1e-9), max(b.area, 1e-9)))
    if large / small > MAX_AREA_RATIO:
        return math.inf
    return math.dist(a.center, b.center) / math.sqrt((a.area + b.area) / 2)


def filter_tracks(
    tracks: Sequence[Track], n_frames: int, min_fraction: float = 0.2, min_face: float = 0
) -> list[Track]:
    """Drop tracks that are likely false positives: seen in fewer than min_fraction of the n_frames sampled
    frames, or with a median face side below min_face pixels. If that would drop every track, the longest
    one is kept, so that a person seen briefly is not reported as a face-less video."""
    if not tracks:
        return []
    min_faces = min_fraction * n_frames
    kept = [t for t in tracks if len(t) >= min_faces and t.median_face_size >= min_face]
    if kept:
        return kept
    return [max(tracks, key=lambda t: (len(t), t.median_face_size))]


def sample_track_faces(
    tracks: Sequence[Track], total: int = 50, min_length: int = 50
) -> list[tuple[Track, TrackedFace]]:
    """About `total` faces over the tracks, shared in proportion to how long each person was tracked (seed 002:
    100 vs 200 frames -> 17 and 33 of 50), spread evenly over each track's sightings.

    Only tracks spanning at least min_length video frames take part; if none does (a short clip, an image),
    every track does. A track with fewer sightings than its share gives all it has and the rest goes to others.
    Returned in track order, then frame order.
    """
    if total <= 0 or not tracks:
        return []
    eligible = [t for t in tracks if t.span >= min_length and len(t) > 0] or [t for t in tracks if len(t) > 0]
    shares = _proportional_shares([t.span for t in eligible], [len(t) for t in eligible], total)
    picked = []
    for track, share in zip(eligible, shares):
        for position in _evenly_spaced(len(track), share):
            picked.append((track, track.faces[position]))
    return picked


def _proportional_shares(weights: list[int], capacities: list[int], total: int) -> list[int]:
    """Integer shares of `total` proportional to (positive) weights by largest remainder, none above its
    capacity; what a full entry cannot take is shared again among the others."""
    shares = [0] * len(weights)
    remaining = min(total, sum(capacities))
    open_ = [i for i in range(len(weights)) if capacities[i] > 0]
    while remaining > 0 and open_:
        weight_sum = sum(max(weights[i], 1) for i in open_)
        exact = {i: remaining * max(weights[i], 1) / weight_sum for i in open_}
        give = {i: min(math.floor(exact[i]), capacities[i] - shares[i]) for i in open_}
        left = remaining - sum(give.values())
        for i in sorted(open_, key=lambda i: (exact[i] - math.floor(exact[i]), weights[i]), reverse=True):
            if left > 0 and give[i] < capacities[i] - shares[i]:
                give[i] += 1
                left -= 1
        for i, n in give.items():
            shares[i] += n
        remaining -= sum(give.values())
        open_ = [i for i in open_ if shares[i] < capacities[i]]
    return shares


def _evenly_spaced(count: int, k: int) -> list[int]:
    """k distinct positions in range(count) spread evenly, ends included."""
    if k >= count:
        return list(range(count))
    if k <= 0:
        return []
    if k == 1:
        return [count // 2]
    # floor(x + 0.5), not round(): banker's rounding could map two positions to one.
    return [math.floor(i * (count - 1) / (k - 1) + 0.5) for i in range(k)]
