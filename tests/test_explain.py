"""Explanations of a scan: the faces it scored cut again, Grad-CAM heat maps, the score timeline, and
`dfdetect scan --explain DIR --report`."""

from __future__ import annotations

import re

import numpy as np
import pytest

from dfdetect.api import Detector
from dfdetect.explain import GradCam, explain_faces, save_explanation


@pytest.fixture(scope="module")
def detector():
    return Detector.load("default", device="cpu", sampling="4")


@pytest.fixture(scope="module")
def clip_result(detector, ffpp_clips):
    result = detector.scan(ffpp_clips["fake"][0])
    assert result.tracks, result.summary_line()
    return result


def test_explained_faces_are_the_ones_the_scan_scored(detector, clip_result):
    faces = explain_faces(detector, clip_result, faces_per_person=3)
    per_person = {t.track_id: len(t.faces) for t in clip_result.tracks}
    for track_id, n in per_person.items():
        assert sum(f.track_id == track_id for f in faces) == min(3, n)
    scanned = {(t.track_id, f.frame_index): f.probability for t in clip_result.tracks for f in t.faces}
    # the same crop as scanned, up to the 0.1 px the result keeps of a box
    diffs = [abs(f.probability - scanned[(f.track_id, f.frame_index)]) for f in faces]
    assert np.median(diffs) < 1e-4 and max(diffs) < 0.1, diffs
    for face in faces:
        assert face.scan_probability == scanned[(face.track_id, face.frame_index)]
        assert face.crop.shape == face.heatmap.shape == (detector.card.input_size,) * 2 + (3,)
        assert face.heatmap.dtype == np.uint8 and not np.array_equal(face.heatmap, face.crop)
    most_fake = max(clip_result.tracks[0].faces, key=lambda f: f.probability)
    assert any(f.frame_index == most_fake.frame_index and f.track_id == clip_result.tracks[0].track_id for f in faces)


def test_grad_cam_follows_the_class_and_the_face(detector, clip_result):
    face = explain_faces(detector, clip_result, faces_per_person=1)[0]
    (fake_map, real_map), probs = GradCam(detector).run([face.crop, face.crop], [True, False])
    assert probs[0] == pytest.approx(probs[1]) == pytest.approx(face.probability, abs=1e-5)
    for cam in (fake_map, real_map):
        assert cam.shape == face.crop.shape[:2] and 0 <= cam.min() and cam.max() <= 1
    assert fake_map.max() == pytest.approx(1.0) or real_map.max() == pytest.approx(1.0)
    assert not np.allclose(fake_map, real_map)  # evidence for "fake" and for "real" lie in different places
    # the letterbox padding holds no face: little of the evidence for the face's own verdict (the map shown)
    # may lie there; the other class's evidence may (on a clearly fake face, "real" is where no face is)
    padding = face.crop.sum(axis=2) == 0
    shown = fake_map if face.probability >= detector.threshold else real_map
    if padding.any() and shown.sum() > 0:
        assert shown[padding].sum() / shown.sum() < padding.mean() + 0.1


def test_save_explanation_writes_pngs_and_a_timeline(detector, clip_result, tmp_path):
    import cv2

    saved = save_explanation(clip_result, explain_faces(detector, clip_result), tmp_path / "x")
    assert saved.timeline and cv2.imread(str(saved.timeline)).shape[0] > 100
    for face, crop, heat in saved.faces:
        assert cv2.imread(str(crop)).shape == cv2.imread(str(heat)).shape == face.crop.shape


def test_scan_explain_and_report_show_the_heat_maps(ffpp_clips, shared_data, tmp_path, capsys):
    from dfdetect.cli import main

    photo = sorted((shared_data / "real-faces" / "faces").glob("*.jpg"))[0]
    clip = ffpp_clips["real"][0]
    report = tmp_path / "report.md"
    status = main(["scan", str(clip), str(photo), "--device", "cpu", "--frames", "4", "--quiet",
                   "--explain", str(tmp_path / "why"), "--report", str(report)])
    assert status == 0
    assert (tmp_path / "why" / clip.stem / "timeline.png").is_file()
    assert list((tmp_path / "why" / photo.stem).glob("*_gradcam.png"))
    text = report.read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert any(i.endswith("timeline.png") for i in images) and any(i.endswith("_gradcam.png") for i in images)
    assert all((report.parent / i).is_file() for i in images)  # links relative to the report, all present
    assert "explained:" in capsys.readouterr().out
