"""Self-blended images on real faces: DFDC crops (no landmarks) and skimage's astronaut (MTCNN 5 points)."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from dfdetect.data.sbi import (
    BLEND_RATIOS,
    SelfBlend,
    default_face_landmarks,
    downscale_upscale,
    make_pair,
    sharpen,
)

# A region around the astronaut's face (x1, y1, x2, y2) and MTCNN's 5 points in the full image.
ASTRONAUT_REGION = (165, 40, 275, 175)
ASTRONAUT_LANDMARKS = np.array([[205.0, 101.7], [246.8, 103.7], [224.7, 129.0], [201.7, 139.2], [245.3, 141.9]])

STILL = dict(color=False, frequency=False, max_shift=0.0, max_scale=0.0, ratios=(1.0,))


@pytest.fixture(scope="module")
def real_crops(dfdc_faces):
    """Eight REAL DFDC face crops (224x224 RGB)."""
    with open(dfdc_faces / "metadata.csv") as f:
        names = [row["videoname"] for row in csv.DictReader(f) if row["label"] == "REAL"][:8]
    crops = []
    for name in names:
        path = dfdc_faces / "faces" / (name.rsplit(".", 1)[0] + ".jpg")
        crops.append(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
    assert len(crops) == 8
    return crops


@pytest.fixture(scope="module")
def astronaut_face(astronaut):
    x1, y1, x2, y2 = ASTRONAUT_REGION
    return np.ascontiguousarray(astronaut[y1:y2, x1:x2]), ASTRONAUT_LANDMARKS - [x1, y1]


def laplacian_energy(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_output_shapes_types_and_mask_range(real_crops, astronaut_face):
    face, points = astronaut_face
    cases = [(crop, None) for crop in real_crops] + [(face, points)]
    blender = SelfBlend()
    for seed, (image, landmarks) in enumerate(cases):
        fake, mask = blender(image, landmarks, rng=np.random.default_rng(seed))
        assert fake.shape == image.shape and fake.dtype == np.uint8
        assert mask.shape == image.shape[:2] and mask.dtype == np.float32
        assert mask.min() >= 0.0 and mask.max() <= 1.0
        # A soft edge, not a cut-out: some weights lie strictly between 0 and 1.
        assert ((mask > 0.02) & (mask < 0.98 * mask.max())).sum() > 50


def test_fake_is_the_masked_mix_of_source_and_target(real_crops, astronaut_face):
    blender = SelfBlend()
    images = [(crop, None) for crop in real_crops] + [astronaut_face]
    for seed, (image, landmarks) in enumerate(images):
        result = blender.synthesize(image, landmarks, rng=np.random.default_rng(100 + seed))
        outside = result.mask == 0
        assert outside.mean() > 0.2, "the face region should leave part of the crop untouched"
        # Outside the mask's support the fake is the target, bit for bit; every change is inside it.
        np.testing.assert_array_equal(result.fake[outside], result.target[outside])
        changed = np.any(result.fake != result.target, axis=2)
        assert changed.any() and not (changed & outside).any()
        expected = result.source * result.mask[..., None] + result.target * (1.0 - result.mask[..., None])
        assert np.abs(result.fake - expected).max() <= 0.5 + 1e-3
        assert result.ratio in BLEND_RATIOS
        assert result.mask.max() == pytest.approx(result.ratio, abs=1e-4)


def test_untouched_copy_is_the_original_image(real_crops):
    """Exactly one copy is colour/frequency changed; the target is the original when the source was."""
    blender = SelfBlend()
    seen = set()
    for seed in range(12):
        image = real_crops[seed % len(real_crops)]
        result = blender.synthesize(image, rng=np.random.default_rng(seed))
        changed_copy = {c.split(":")[0] for c in result.changes if "scale(" not in c}
        assert len(changed_copy) == 1
        seen |= changed_copy
        if changed_copy == {"source"}:
            np.testing.assert_array_equal(result.target, image)
            # So the fake equals the real crop wherever the mask is zero.
            np.testing.assert_array_equal(result.fake[result.mask == 0], image[result.mask == 0])
        else:
            assert np.any(result.target != image)
    assert seen == {"source", "target"}


def test_reproducible_with_the_same_seed_and_different_with_another(real_crops):
    blender = SelfBlend()
    image = real_crops[0]
    fake_a, mask_a = blender(image, rng=np.random.default_rng(7))
    fake_b, mask_b = blender(image, rng=np.random.default_rng(7))
    fake_c, mask_c = blender(image, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(fake_a, fake_b)
    np.testing.assert_array_equal(mask_a, mask_b)
    assert np.any(fake_a != fake_c) and np.any(mask_a != mask_c)


def test_no_changes_and_full_ratio_give_back_the_image(real_crops, astronaut_face):
    blender = SelfBlend(**STILL)
    for image, landmarks in [(real_crops[1], None), astronaut_face]:
        fake, mask = blender(image, landmarks, rng=np.random.default_rng(3))
        np.testing.assert_array_equal(fake, image)
        assert mask.max() == pytest.approx(1.0)


def test_misaligned_source_shows_inside_the_mask_only(real_crops):
    blender = SelfBlend(color=False, frequency=False, max_shift=0.05, max_scale=0.05, ratios=(1.0,))
    image = real_crops[2]
    result = blender.synthesize(image, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(result.target, image)
    assert np.abs(result.source.astype(int) - image).mean() > 1.0, "the source should have moved"
    core = result.mask >= 1.0 - 1e-6
    assert core.sum() > 1000
    np.testing.assert_array_equal(result.fake[core], result.source[core])
    np.testing.assert_array_equal(result.fake[result.mask == 0], image[result.mask == 0])


def test_five_point_mask_covers_the_face_and_not_the_background(astronaut_face):
    face, points = astronaut_face
    blender = SelfBlend(**STILL)
    for seed in range(5):
        _fake, mask = blender(face, points, rng=np.random.default_rng(seed))
        xs, ys = np.round(points).astype(int).T
        assert (mask[ys, xs] > 0.9).all(), "eyes, nose and mouth lie inside the blend"
        # The face is ~87 px wide in this crop; the mask should be face-sized, centred near the features.
        height, width = mask.shape
        assert 0.25 < (mask > 0.5).mean() < 0.85
        assert mask[:5, :5].max() == 0 and mask[:5, -5:].max() == 0
        weighted_x = (mask.sum(axis=0) * np.arange(width)).sum() / mask.sum()
        assert abs(weighted_x - points[:, 0].mean()) < 0.1 * width


def test_outline_landmarks_use_their_convex_hull(astronaut_face):
    face, _points = astronaut_face
    height, width = face.shape[:2]
    # A 68-point stand-in: a face-shaped outline (an ellipse) plus inner points, as dense sets have.
    angles = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    outline = np.stack([55 + 30 * np.cos(angles), 75 + 40 * np.sin(angles)], axis=1)
    inner = np.random.default_rng(0).uniform([40, 55], [70, 95], size=(28, 2))
    landmarks = np.vstack([outline, inner])
    hull = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(outline).astype(np.int32)), 1)
    far = cv2.dilate(hull, np.ones((31, 31), np.uint8)) == 0
    for seed in range(4):
        _fake, mask = SelfBlend(**STILL)(face, landmarks, rng=np.random.default_rng(seed))
        assert mask[75, 55] == pytest.approx(1.0)
        assert mask[far].max() == 0.0
        inside_share = mask[hull == 1].sum() / mask.sum()
        assert inside_share > 0.75


def test_without_landmarks_the_mask_is_centred_and_shrinks_with_the_margin(real_crops):
    image = real_crops[3]
    areas = []
    for margin in (0.0, 0.3, 0.6):
        blender = SelfBlend(**STILL, crop_margin=margin)
        _fake, mask = blender(image, rng=np.random.default_rng(11))
        rows, cols = np.nonzero(mask > 0.5)
        assert abs(cols.mean() - 112) < 20 and abs(rows.mean() - 112) < 30
        assert mask[0, 0] == 0 and mask[-1, -1] == 0
        areas.append((mask > 0.5).sum())
    assert areas[0] > areas[1] > areas[2]


def test_default_face_landmarks_are_a_plausible_face():
    points = default_face_landmarks(224)
    assert points.shape == (5, 2) and points.dtype == np.float32
    left_eye, right_eye, nose, left_mouth, right_mouth = points
    assert left_eye[0] < nose[0] < right_eye[0] and left_mouth[0] < right_mouth[0]
    assert left_eye[1] == right_eye[1] < nose[1] < left_mouth[1] == right_mouth[1]
    # Frontal and upright: symmetric about the crop's vertical centre line.
    assert (left_eye[0] + right_eye[0]) / 2 == pytest.approx(112) and nose[0] == pytest.approx(112)
    # With a 30% margin the face box spans the central 62.5% of the crop; the points lie well inside it.
    assert points.min() > 224 * 0.1875 and points.max() < 224 * 0.8125
    tight = default_face_landmarks(224, margin=0.0)
    assert np.linalg.norm(tight[1] - tight[0]) > np.linalg.norm(points[1] - points[0])
    wide = default_face_landmarks((100, 200))
    assert np.allclose(wide[:, 0], default_face_landmarks(200)[:, 0])
    assert np.allclose(wide[:, 1], default_face_landmarks(100)[:, 1])


def test_frequency_changes_move_detail_the_right_way(real_crops):
    rng = np.random.default_rng(0)
    for image in real_crops[:4]:
        assert laplacian_energy(downscale_upscale(image, rng)) < laplacian_energy(image)
        assert laplacian_energy(sharpen(image, rng)) > laplacian_energy(image)


def test_make_pair_labels_real_and_fake(real_crops):
    image = real_crops[4]
    (real, real_label), (fake, fake_label) = make_pair(image, None, np.random.default_rng(2))
    assert (real_label, fake_label) == (0, 1)
    assert real is image
    assert fake.shape == image.shape and np.any(fake != image)


def test_bad_inputs_are_refused_with_a_reason(real_crops):
    blender = SelfBlend()
    image = real_crops[0]
    with pytest.raises(ValueError, match="RGB uint8"):
        blender(image.astype(np.float32))
    with pytest.raises(ValueError, match="RGB uint8"):
        blender(image[..., 0])
    with pytest.raises(ValueError, match="5 MTCNN points"):
        blender(image, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="empty face region"):
        blender(image, default_face_landmarks(224) + 5000)
    with pytest.raises(ValueError, match="ratios"):
        SelfBlend(ratios=(0.0, 1.0))
