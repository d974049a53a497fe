"""The scan's face search between full searches (api.FULL_SEARCH_EVERY, FOLLOW_MARGIN): near the last faces
only, and again in full when a face is lost there."""

from __future__ import annotations

import pytest

import dfdetect.api as api
from dfdetect.api import Detector


class Recording:
    """A face detector that passes every call on and keeps what it was asked and what it found."""

    def __init__(self, detector, lose_faces_near: bool = False):
        self.detector, self.lose_faces_near, self.calls = detector, lose_faces_near, []
        self.searches_regions = detector.searches_regions

    def detect(self, images, previews=None, smallest_face=None, regions=None):
        found = self.detector.detect(images, previews, smallest_face=smallest_face, regions=regions)
        if regions is not None and self.lose_faces_near:
            found = [[] for _ in images]
        self.calls.append((len(images), smallest_face, regions, found))
        return found


@pytest.fixture(scope="module")
def two_people(dfdc_videos):
    return next(clip for clip in dfdc_videos if clip.name == "cedpyannqf.mp4")


def scan_recorded(clip, **recording):
    detector = Detector.load("default", device="cpu", sampling="16", overlap=False)
    detector.face_detector = Recording(detector.face_detector, **recording)
    return detector.scan(clip), detector.face_detector.calls


def test_frames_between_full_searches_are_searched_near_the_last_faces(two_people):
    result, calls = scan_recorded(two_people)
    full = [c for c in calls if c[2] is None]
    near = [c for c in calls if c[2] is not None]
    assert len(full) == 16 // api.FULL_SEARCH_EVERY and len(near) == 16 - len(full)
    last = full[0][3][0]
    for _, smallest, regions, found in calls[1:]:
        if regions is not None:
            assert smallest is not None and len(regions[0]) == len(last)
            for box in found[0]:  # every face found lies inside a region around a face of the frame before
                assert any(x1 <= box.x1 and y1 <= box.y1 and box.x2 <= x2 and box.y2 <= y2
                           for x1, y1, x2, y2 in regions[0])
        last = found[0]
    assert len(result.tracks) == 2


def test_a_face_lost_near_the_last_faces_makes_a_full_search_of_that_frame(two_people, monkeypatch):
    result, calls = scan_recorded(two_people, lose_faces_near=True)
    monkeypatch.setattr(api, "FULL_SEARCH_EVERY", 1)
    reference, reference_calls = scan_recorded(two_people)
    assert all(c[2] is None for c in reference_calls)
    frames_searched_in_full = sum(1 for c in calls if c[2] is None)
    assert frames_searched_in_full == 16  # each region search lost its faces, so each frame was searched again
    assert result.probability == pytest.approx(reference.probability, abs=1e-6)
    assert len(result.tracks) == len(reference.tracks) == 2
