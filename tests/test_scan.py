"""`dfdetect scan` end to end on real clips, the sample clip and every kind of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfdetect.api import Detector
from dfdetect.cli import main
from dfdetect.results import ScanBatch, read_json


@pytest.fixture(scope="module")
def detector():
    return Detector.load("default", device="cpu", sampling="8")


@pytest.fixture(scope="module")
def sample_clip(tmp_path_factory):
    from dfdetect.samples import make_sample_video

    return make_sample_video(tmp_path_factory.mktemp("sample") / "astronaut.mp4")


def _frame_count_and_size(path: Path) -> tuple[int, int, int]:
    import av

    with av.open(str(path)) as container:
        frames = [f for f in container.decode(video=0)]
    return len(frames), frames[0].width, frames[0].height


# People visible throughout each shared DFDC clip (checked by eye on its frames).
PEOPLE = {"baxpshhrhc.mp4": 1, "bfkzrgovsv.mp4": 1, "cbqfgqronr.mp4": 1, "ccpzqqemva.mp4": 1, "cedpyannqf.mp4": 2,
          "euqujvlnnb.mp4": 1}


@pytest.fixture(scope="module")
def clip_results(detector, dfdc_videos):
    return {path: detector.scan(path) for path in dfdc_videos}


def test_real_clips_get_a_verdict_with_one_track_per_person(clip_results):
    for path, result in clip_results.items():
        assert result.verdict in ("fake", "real"), result.summary_line()
        assert 0.0 <= result.probability <= 1.0
        assert len(result.tracks) == PEOPLE[path.name], (path.name, [len(t.faces) for t in result.tracks])
        assert all(len(t.faces) >= 6 for t in result.tracks)
        if len(result.tracks) == 2:  # side by side: the tracks do not swap people
            centres = [[(f.box[0] + f.box[2]) / 2 for f in t.faces] for t in result.tracks]
            assert max(centres[0]) < min(centres[1]) or max(centres[1]) < min(centres[0])
        assert result.frames_sampled == 8
        assert result.media.width in (1920, 1080, 1280, 720)
        assert result.warnings == []  # the bundled model is trained for deepfakes
        assert {"decode_s", "detect_s", "classify_s", "total_s"} <= set(result.timings)


def test_bundled_model_gets_the_shared_clips_right(clip_results, dfdc_video_labels):
    """The shipped detector on the six real DFDC clips at 8 frames each. The three fakes were never in its
    training pool; each real clip gave it one training crop (of 18,200)."""
    verdicts = {path.name: result.verdict for path, result in clip_results.items()}
    right = [name for name, verdict in verdicts.items() if verdict == dfdc_video_labels[name].lower()]
    assert len(right) >= 5, verdicts


def test_a_model_not_trained_for_deepfakes_is_announced(tmp_path, astronaut):
    from dfdetect.models.checkpoint import resolve

    weights, card = resolve("default")
    (tmp_path / "m.safetensors").write_bytes(weights.read_bytes())
    text = json.loads(card.read_text())
    text.update(name="imagenet-only", trained_for_deepfakes=False)
    (tmp_path / "m.json").write_text(json.dumps(text))
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), astronaut)
    result = Detector.load(tmp_path / "m", device="cpu").scan(image)
    assert result.warnings and "'imagenet-only' is NOT trained" in result.warnings[0]


def test_a_detector_other_than_the_models_is_announced():
    assert Detector.load("default", device="cpu").warnings == []
    warnings = Detector.load("default", device="cpu", detector="haar").warnings
    assert len(warnings) == 1 and "found with haar" in warnings[0] and "trained on faces found with mtcnn" in warnings[0]


def test_sample_clip_scans_and_annotates(detector, sample_clip, tmp_path):
    result = detector.scan(sample_clip)
    assert result.verdict in ("fake", "real") and len(result.tracks) == 1
    out = result.render(tmp_path / "annotated.mp4")
    assert _frame_count_and_size(out) == _frame_count_and_size(sample_clip)


def test_an_annotated_face_shows_the_score_of_the_face_nearest_in_time():
    from dfdetect.render import _nearest_face_probability
    from dfdetect.results import FaceScore, TrackResult

    faces = [FaceScore(frame_index=i, time_s=i / 30, box=[0, 0, 9, 9], detector_score=1, probability=p)
             for i, p in ((0, 0.1), (30, 0.9), (60, 0.4))]
    track = TrackResult(track_id=0, probability=0.47, verdict="real", faces=faces)
    assert [_nearest_face_probability(track, i) for i in (0, 14, 16, 44, 46, 99)] == [0.1, 0.1, 0.9, 0.9, 0.4, 0.4]


def test_progress_is_reported_through_the_video(sample_clip):
    seen = []
    result = Detector.load("default", device="cpu", sampling="24", chunk_frames=8).scan(sample_clip, seen.append)
    assert result.verdict in ("fake", "real")
    assert len(seen) == 3 and seen == sorted(seen) and 0 < seen[0] < 0.5 and seen[-1] > 0.9


def test_annotated_real_clip_has_the_input_frames_and_size_and_coloured_boxes(clip_results, dfdc_videos, tmp_path):
    import av

    result = clip_results[dfdc_videos[0]]
    progress = []
    out = result.render(tmp_path / "annotated.mp4", on_progress=progress.append)
    assert _frame_count_and_size(out) == _frame_count_and_size(dfdc_videos[0])
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0, abs=0.01)
    with av.open(str(dfdc_videos[0])) as source, av.open(str(out)) as annotated:  # the sound is kept
        assert len(annotated.streams.audio) == len(source.streams.audio) == 1
        sound_in, sound_out = (sum(1 for p in c.demux(audio=0) if p.size) for c in (source, annotated))
    with av.open(str(out)) as annotated:
        assert sound_out == sound_in and annotated.streams.audio[0].codec_context.name == "aac"
    # The box colour of the verdict is drawn on a sampled frame, around the detected face.
    face = result.tracks[0].faces[0]
    capture = cv2.VideoCapture(str(out))
    capture.set(cv2.CAP_PROP_POS_FRAMES, face.frame_index)
    ok, bgr = capture.read()
    assert ok
    x1, y1, x2, y2 = (int(v) for v in face.box.to_list())
    edge = bgr[y1 + 1:y2 - 1, max(0, x1 - 1):x1 + 2][..., ::-1].reshape(-1, 3).astype(int)
    expected = (230, 40, 40) if result.tracks[0].verdict == "fake" else (40, 200, 60)
    assert np.median(np.abs(edge - np.array(expected)).sum(1)) < 80


def test_python_api_results_save_and_validate(detector, astronaut, tmp_path):
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    result = detector.scan(image)
    assert result.verdict in ("fake", "real") and result.media.kind == "image"
    box = result.tracks[0].faces[0].box
    assert 150 < (box[0] + box[2]) / 2 < 280 and 30 < (box[1] + box[3]) / 2 < 170
    assert read_json(result.save_json(tmp_path / "r.json"))[0] == result
    rows = (tmp_path / "r.csv")
    result.save_csv(rows)
    assert "face_probability" in rows.read_text().splitlines()[0]
    annotated = result.render(tmp_path / "annotated.png")
    assert cv2.imread(str(annotated)).shape == astronaut.shape


def _bad_inputs(folder: Path, dfdc_video: Path) -> dict[str, Path]:
    from PIL import Image

    text = folder / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    empty = folder / "empty.mp4"
    empty.touch()
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(dfdc_video.read_bytes()[:20_000])
    corrupt = folder / "corrupt.mp4"
    data = bytearray(dfdc_video.read_bytes())
    data[:4096] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    corrupt.write_bytes(bytes(data))
    huge = folder / "huge.png"
    Image.new("1", (60_000, 60_000)).save(huge, optimize=False)  # 1-bit: a few MB on disk, 3.6e9 pixels
    faceless = folder / "faceless.mp4"
    _write_faceless_clip(faceless)
    return {"text": text, "empty": empty, "truncated": truncated, "corrupt": corrupt, "huge": huge,
            "faceless": faceless}


def _write_faceless_clip(path: Path) -> None:
    from skimage import data

    from dfdetect.media import open_video_writer

    scene = np.ascontiguousarray(data.coffee())  # a cup of coffee: no face
    h, w = scene.shape[:2]
    with open_video_writer(path, 10, w, h) as writer:
        for k in range(10):
            writer.write(np.roll(scene, 3 * k, axis=1))


def test_bad_inputs_each_get_one_line_and_the_batch_goes_on(dfdc_videos, astronaut, tmp_path, capsys):
    folder = tmp_path / "batch"
    folder.mkdir()
    _bad_inputs(folder, dfdc_videos[0])
    good = folder / "good.jpg"
    cv2.imwrite(str(good), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    missing = tmp_path / "does-not-exist.mp4"
    out_json = tmp_path / "results.json"
    status = main(["scan", str(folder), str(missing), "--device", "cpu", "--frames", "4", "--quiet",
                   "--json", str(out_json), "--csv", str(tmp_path / "r.csv"), "--report", str(tmp_path / "r.md")])
    assert status == 1
    printed = capsys.readouterr().out.splitlines()
    results = {Path(r.path).name: r for r in read_json(out_json)}
    assert len(results) == 8
    assert results["good.jpg"].verdict in ("fake", "real")
    assert results["faceless.mp4"].verdict == "no_face"
    for name in ("notes.mp4", "empty.mp4", "truncated.mp4", "corrupt.mp4", "huge.png", "does-not-exist.mp4"):
        assert results[name].verdict == "error", results[name]
        assert results[name].error and "\n" not in results[name].error
        assert sum(line.startswith(f"{name}:") for line in printed) == 1, printed
    assert "empty" in results["empty.mp4"].error or "0 bytes" in results["empty.mp4"].error
    assert "not found" in results["does-not-exist.mp4"].error or "exist" in results["does-not-exist.mp4"].error
    assert "pixels" in results["huge.png"].error
    ScanBatch.model_validate(json.loads(out_json.read_text()))
    report = (tmp_path / "r.md").read_text()
    assert "1 real" in report or "1 fake" in report
    assert "| faceless.mp4 | **no_face** |" in report and "| huge.png | **error** |" in report


def test_console_script_prints_a_verdict_for_a_real_clip(dfdc_videos, tmp_path):
    exe = Path(sys.executable).with_name("dfdetect")
    proc = subprocess.run([str(exe), "scan", str(dfdc_videos[2]), "--device", "cpu", "--json", str(tmp_path / "o.json")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert dfdc_videos[2].name in proc.stdout and ("FAKE" in proc.stdout or "REAL" in proc.stdout)
    assert "NOT trained" not in proc.stderr
    assert read_json(tmp_path / "o.json")[0].frames_sampled == 32


def test_wrong_model_is_one_clear_error(astronaut, tmp_path, capsys):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), astronaut)
    assert main(["scan", str(image), "--model", str(tmp_path / "nope")]) == 2
    assert "model card not found" in capsys.readouterr().err


def test_an_unexpected_failure_is_an_error_item_not_a_crash(detector, sample_clip, monkeypatch):
    def broken(images, *hints, **options):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(detector.face_detector, "detect", broken)
    result = detector.scan(sample_clip)
    assert result.verdict == "error" and result.error == "internal error RuntimeError: CUDA out of memory"


def test_bad_options_are_refused_up_front():
    from dfdetect.errors import ConfigError

    with pytest.raises(ConfigError, match="at least 1"):
        Detector.load("default", device="cpu", batch_size=0)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        Detector.load("default", device="cpu", threshold=7)


def test_result_files_survive_an_interrupted_batch(detector, astronaut, tmp_path):
    from dfdetect.results import ResultFiles

    image = tmp_path / "a.png"
    cv2.imwrite(str(image), astronaut)
    json_path, csv_path = tmp_path / "r.json", tmp_path / "r.csv"
    with pytest.raises(KeyboardInterrupt):
        with ResultFiles(json_path, csv_path, json_interval_s=3600) as files:
            files.add(detector.scan(image))
            files.add(detector.scan(tmp_path / "missing.png"))
            raise KeyboardInterrupt
    assert [r.verdict for r in read_json(json_path)][1] == "error"
    assert len(csv_path.read_text().splitlines()) == 1 + len(read_json(json_path)[0].tracks[0].faces) + 1


def test_a_video_cut_short_gets_its_verdict_with_a_warning(detector, dfdc_videos, tmp_path):
    import av

    source = next(p for p in dfdc_videos if p.stem == "bfkzrgovsv")
    whole = tmp_path / "faststart.mp4"  # the index first, so that a cut file still opens
    with av.open(str(source)) as inp, av.open(str(whole), "w", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.3)])

    result = detector.scan(cut)
    complete = detector.scan(whole)

    assert result.verdict in ("fake", "real") and result.frames_asked == 8 and result.frames_sampled < 8
    assert any("of 8 sampled frames could be read" in w for w in result.warnings)
    assert "WARNING: only" in result.summary_line()
    assert complete.frames_sampled == complete.frames_asked == 8 and not complete.frames_short
    assert complete.warnings == [] and "WARNING" not in complete.summary_line()


def test_the_json_carries_its_schema_version_settings_and_hashes(detector, astronaut, tmp_path):
    import hashlib
    from datetime import datetime

    import jsonschema

    from dfdetect.results import SCHEMA_PATH, SCHEMA_VERSION, schema_text

    image = tmp_path / "a.png"
    cv2.imwrite(str(image), astronaut[:, :, ::-1])
    written = detector.scan(image).save_json(tmp_path / "r.json")
    data = json.loads(written.read_text())

    assert SCHEMA_PATH.read_text() == schema_text()  # the published schema is the one the code writes
    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text()))
    assert data["schema_version"] == SCHEMA_VERSION
    assert datetime.fromisoformat(data["created"]).tzinfo is not None
    result = data["results"][0]
    assert result["media"]["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert result["media"]["fps"] is None and result["media"]["duration_s"] is None  # an image
    assert result["settings"] == {"frames": "8", "tta": False, "detector": detector.detector_name,
                                  "aggregation": "max_track", "threshold": result["threshold"], "device": "cpu"}
    assert result["model"]["weights_sha256"] == detector.card.weights_sha256 != ""
    assert set(result["tracks"][0]["faces"][0]["box"]) == {"x1", "y1", "x2", "y2"}


def test_a_schema_1_file_still_reads(tmp_path):
    face = {"frame_index": 0, "time_s": 0.0, "box": [1, 2, 3, 4], "detector_score": 0.9, "probability": 0.2}
    old = {"dfdetect_version": "0.1.0", "results": [{"path": "a.png", "verdict": "real", "probability": 0.2,
           "tracks": [{"track_id": 0, "probability": 0.2, "verdict": "real", "faces": [face]}],
           "media": {"kind": "image", "width": 10, "height": 10, "fps": 0.0}}]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    box = read_json(tmp_path / "old.json")[0].tracks[0].faces[0].box
    assert (box.x1, box.y2) == (1, 4) and box[2] == 3


def test_the_python_api_takes_images_in_memory_and_gives_frames_repr_and_tables(detector, astronaut, tmp_path):
    from PIL import Image

    from dfdetect.errors import ConfigError
    from dfdetect.results import CSV_COLUMNS

    image = tmp_path / "a.png"
    cv2.imwrite(str(image), astronaut[:, :, ::-1])
    from_file = detector.scan(image)
    from_array = detector.scan(astronaut)
    from_pil = detector.scan(Image.fromarray(astronaut))

    assert from_array.verdict == from_file.verdict and from_array.path == "<array 512x512>"
    assert from_array.probability == pytest.approx(from_file.probability, abs=1e-6)
    assert from_pil.probability == pytest.approx(from_file.probability, abs=1e-6)
    assert from_array.media.kind == "image" and from_array.media.sha256 == from_pil.media.sha256
    bad = detector.scan(astronaut.astype(np.float32))
    assert bad.verdict == "error" and "uint8" in bad.error
    assert detector.scan(object()).verdict == "error"

    assert repr(from_file).startswith(f"ScanResult(path='{image}', verdict='{from_file.verdict}'")
    assert "frames='8'" in repr(detector) and "device='cpu'" in repr(detector)
    table = from_file.to_df()
    assert list(table.columns) == CSV_COLUMNS and len(table) == len(from_file.tracks[0].faces)
    ax = from_file.plot()
    assert ax.get_ylabel() == "p(fake)" and len(ax.lines) == len(from_file.tracks) + 1

    assert Detector.load("default", device="cpu", frames="every:5").sampling.every == 5
    with pytest.raises(ConfigError, match="unknown option.*sampels"):
        Detector.load("default", device="cpu", sampels=3)
