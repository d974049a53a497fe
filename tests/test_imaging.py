"""imaging.py (the scan's resize, grey and Laplacian without OpenCV) against OpenCV itself on real face crops,
and the track's own assignment against scipy's."""

from __future__ import annotations

import numpy as np
import pytest

from dfdetect.imaging import laplacian, resize, to_grey

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def faces(dfdc_faces):
    from PIL import Image

    paths = sorted(dfdc_faces.rglob("*.jpg"))[:6]
    assert paths, "no face crops found"
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


@pytest.mark.parametrize("size", [(150, 150), (100, 100), (137, 91), (57, 31), (199, 13)])
def test_shrinking_averages_areas_as_opencv_does(faces, size):
    for face in faces:
        h, w = face.shape[:2]
        target = (min(size[0], w - 1), min(size[1], h - 1))
        ours = resize(face, *target)
        theirs = cv2.resize(face, target, interpolation=cv2.INTER_AREA)
        assert ours.shape == theirs.shape and ours.dtype == np.uint8
        assert np.abs(ours.astype(int) - theirs).max() <= 1


@pytest.mark.parametrize("enlarge, flag", [("cubic", "INTER_CUBIC"), ("linear", "INTER_LINEAR")])
def test_enlarging_interpolates_as_opencv_does(faces, enlarge, flag):
    for face in faces:
        crop = face[7:-11, 3:-5]  # odd sizes
        for target in [(224, 224), (crop.shape[1] * 2 + 1, crop.shape[0] + 3)]:
            ours = resize(crop, *target, enlarge=enlarge)
            theirs = cv2.resize(crop, target, interpolation=getattr(cv2, flag))
            assert np.abs(ours.astype(int) - theirs).max() <= 1


def test_grey_images_and_identity(faces):
    grey = to_grey(faces[0])
    assert np.array_equal(grey, cv2.cvtColor(faces[0], cv2.COLOR_RGB2GRAY))
    assert resize(grey, 64, 48).shape == (48, 64)
    assert resize(faces[0], faces[0].shape[1], faces[0].shape[0]) is faces[0]
    with pytest.raises(ValueError):
        resize(faces[0], 0, 10)
    with pytest.raises(ValueError, match="enlarge"):
        resize(faces[0], 300, 300, enlarge="lanczos")


def test_laplacian_variance_matches_opencv(faces):
    for face in faces:
        grey = to_grey(face)
        assert laplacian(grey).var() == pytest.approx(cv2.Laplacian(grey, cv2.CV_64F).var(), rel=1e-9)


def test_assignment_is_as_cheap_as_scipys():
    from scipy.optimize import linear_sum_assignment

    from dfdetect.faces.track import min_cost_assignment

    rng = np.random.default_rng(1)
    for trial in range(500):
        cost = rng.random((rng.integers(1, 7), rng.integers(1, 7)))
        if trial % 3 == 0:
            cost = np.where(rng.random(cost.shape) < 0.4, 1e6, cost)  # forbidden pairs, as the tracker makes them
        if trial % 5 == 0:
            cost = np.round(cost, 1)  # ties
        rows, cols = min_cost_assignment(cost)
        best_rows, best_cols = linear_sum_assignment(cost)
        assert len(rows) == len(best_rows) == min(cost.shape)
        assert len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
        assert cost[rows, cols].sum() == pytest.approx(cost[best_rows, best_cols].sum())
    assert [len(a) for a in min_cost_assignment(np.zeros((0, 3)))] == [0, 0]


@pytest.mark.parametrize("size,target", [((720, 1280), (540, 960)), ((1280, 720), (960, 540)),
                                         ((500, 300), (200, 120)), ((90, 64), (60, 48))])
def test_shrinking_by_small_ratios_takes_the_block_path_with_the_same_pixels(size, target, monkeypatch):
    import dfdetect.imaging as imaging

    image = np.random.default_rng(1).integers(0, 256, size + (3,), dtype=np.uint8)
    calls = []
    original = imaging._resample_periodic
    monkeypatch.setattr(imaging, "_resample_periodic", lambda *a: calls.append(a[1]) or original(*a))
    blocked = imaging.resize(image, target[1], target[0])
    assert sorted(calls) == [0, 1]
    monkeypatch.setattr(imaging, "_MAX_PERIOD", 0)  # every line gathered on its own
    gathered = imaging.resize(image, target[1], target[0])
    assert np.abs(blocked.astype(int) - gathered.astype(int)).max() <= 1
    if size[0] * 3 == target[0] * 4:  # weights of quarters: exact sums either way
        assert np.array_equal(blocked, gathered)
