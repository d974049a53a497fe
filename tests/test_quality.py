"""The "unsure" flag: faces far smaller than the training faces, heavily blurred or turned away are named as
such, on real faces found by the real detector, and a scan still gives its verdict beside the flag."""

from __future__ import annotations

import cv2
import numpy as np
import pytest


@pytest.fixture(scope="module")
def mtcnn():
    from dfdetect.faces.detect import create_detector

    return create_detector("mtcnn", device="cpu")


def tiny_face_frame(astronaut: np.ndarray) -> np.ndarray:
    """A 1280 x 720 frame with the astronaut's portrait shrunk to 96 px: a face of about 15 px."""
    frame = np.full((720, 1280, 3), 120, np.uint8)
    frame[300:396, 600:696] = cv2.resize(astronaut, (96, 96), interpolation=cv2.INTER_AREA)
    return frame


def only_face(detector, image):
    boxes = detector.detect([image])[0]
    assert len(boxes) == 1
    return boxes[0]


def test_a_clear_frontal_face_passes_every_check(mtcnn, astronaut):
    from dfdetect.quality import measure_face, unsure_reasons

    quality = measure_face(astronaut, only_face(mtcnn, astronaut))
    assert quality.side_px > 60 and quality.sharpness > 50 and quality.yaw < 0.1
    assert unsure_reasons([quality] * 3) == []


def test_a_tiny_face_and_a_blurred_face_are_named(mtcnn, astronaut):
    from dfdetect.quality import measure_face, unsure_reasons

    frame = tiny_face_frame(astronaut)
    tiny = measure_face(frame, only_face(mtcnn, frame))
    assert tiny.side_px < 40
    assert unsure_reasons([tiny])[0].startswith("face small (")

    blurred_image = cv2.GaussianBlur(astronaut, (0, 0), 4)
    blurred = measure_face(blurred_image, only_face(mtcnn, blurred_image))
    assert blurred.side_px > 60  # found at full size, only the detail is gone
    assert [r.split(" (")[0] for r in unsure_reasons([blurred])] == ["face blurred"]


def test_a_person_is_unsure_only_when_most_faces_fail():
    from dfdetect.quality import FaceQuality, unsure_reasons

    good, small = FaceQuality(120, 80.0, 0.05), FaceQuality(20, 80.0, 0.05)
    assert unsure_reasons([good, good, small]) == []
    assert len(unsure_reasons([good, small, small])) == 1


def test_head_turn_from_landmarks():
    from dfdetect.quality import FaceQuality, unsure_reasons, yaw

    frontal = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], float)
    turned = frontal.copy()
    turned[2, 0] = 95  # the nose beyond the right eye: a head turned far to one side
    assert yaw(frontal) == pytest.approx(0.0)
    assert yaw(turned) > 1.0
    assert yaw(None) is None
    assert "turned away in 2 of 2" in unsure_reasons([FaceQuality(120, 80, yaw(turned))] * 2)[0]


def test_scan_flags_a_tiny_and_a_blurred_face_and_still_gives_a_verdict(tmp_path, astronaut):
    from dfdetect import Detector

    detector = Detector.load("default", device="cpu")
    images = {"clear": astronaut, "tiny": tiny_face_frame(astronaut),
              "blurred": cv2.GaussianBlur(astronaut, (0, 0), 4)}
    results = {}
    for name, image in images.items():
        path = tmp_path / f"{name}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        results[name] = detector.scan(path)
    assert all(r.verdict in ("fake", "real") for r in results.values())
    assert not results["clear"].unsure and results["clear"].unsure_reasons == []
    assert results["tiny"].unsure and results["tiny"].unsure_reasons[0].startswith("face small")
    assert results["blurred"].unsure and results["blurred"].unsure_reasons[0].startswith("face blurred")
    assert results["blurred"].tracks[0].unsure_reasons == results["blurred"].unsure_reasons
    line = results["tiny"].summary_line()
    assert "UNSURE: face small" in line and line.startswith("tiny.png: ")
    assert results["tiny"].csv_rows()[0]["unsure"].startswith("face small")


def test_a_person_too_small_to_judge_does_not_decide_the_verdict_of_a_clear_one(tmp_path, astronaut):
    """A background face of a few pixels, upscaled, is scored but left out of the image's verdict, and said so."""
    from dfdetect import Detector

    frame = tiny_face_frame(astronaut)
    frame[100:612, 100:612] = cv2.resize(astronaut, (512, 512), interpolation=cv2.INTER_AREA)
    path = tmp_path / "two.png"
    cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    result = Detector.load("default", device="cpu").scan(path)  # (the tiny face scores far higher than the clear one)
    assert len(result.tracks) == 2
    clear, tiny = sorted(result.tracks, key=lambda t: bool(t.unsure_reasons))
    assert clear.counted and not clear.unsure_reasons
    assert not tiny.counted and tiny.unsure_reasons[0].startswith("face small")
    assert result.probability == clear.probability
    assert result.unsure and result.unsure_reasons == [
        f"person {tiny.track_id} (not counted in the verdict): " + " and ".join(tiny.unsure_reasons)]


def test_a_video_compressed_hard_is_unsure_and_the_shipped_clip_is_not(tmp_path):
    """The H.264 stream's bits per pixel, read from the file's header, mark a video compressed like FF++ c40."""
    from dfdetect import Detector
    from dfdetect.media import iter_frames, probe
    from dfdetect.media.writer import open_video_writer
    from dfdetect.samples import SHIPPED_CLIP

    hard = tmp_path / "crf48.mp4"
    frames = [frame.image for frame in iter_frames(SHIPPED_CLIP, "all")]
    with open_video_writer(hard, 15, frames[0].shape[1], frames[0].shape[0], quality=48) as writer:
        for frame in frames:
            writer.write(frame)
    shipped, squeezed = probe(SHIPPED_CLIP), probe(hard)
    assert shipped.bits_per_pixel > 0.05 and squeezed.bits_per_pixel < 0.02

    detector = Detector.load("default", device="cpu")
    clear, compressed = detector.scan(SHIPPED_CLIP), detector.scan(hard)
    assert not any("compressed" in r for r in clear.unsure_reasons)
    assert compressed.verdict in ("fake", "real") and compressed.unsure
    assert compressed.unsure_reasons[-1].startswith("video heavily compressed (0.0")
    assert all(t.counted for t in compressed.tracks)  # it marks the video, not who counts in it


def test_a_still_video_is_not_taken_for_a_compressed_one(tmp_path, astronaut):
    """A scene that stands still costs few bits between keyframes: the keyframes tell it from hard compression."""
    from pathlib import Path

    from dfdetect.media import probe
    from dfdetect.media.info import MediaInfo
    from dfdetect.media.writer import open_video_writer
    from dfdetect.quality import compression_reason

    still = tmp_path / "still.mp4"
    with open_video_writer(still, 25, 512, 512, quality=23) as writer:
        for _ in range(75):
            writer.write(astronaut)
    info = probe(still)
    assert info.bits_per_pixel < 0.02 and compression_reason(info) is None

    def described(**changes):
        fields = dict(path=Path("none.mp4"), kind="video", width=640, height=480, frame_count=100, fps=25.0,
                      duration_s=4.0, rotation=0, codec="h264", bit_rate=100_000)
        return MediaInfo(**{**fields, **changes})

    assert described().bits_per_pixel == pytest.approx(100_000 / (640 * 480 * 25))
    # Neither is read from the file: another codec spends its bits otherwise, and a high average settles it.
    assert compression_reason(described(codec="hevc")) is None and compression_reason(described(bit_rate=10**6)) is None
    assert compression_reason(described(bit_rate=None)) is None and compression_reason(described(kind="image")) is None
