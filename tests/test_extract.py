"""Face extraction on a small DFDC-layout dataset of real clips (their first 60 frames, cut without
re-encoding from ../shared/data), with the papers' presets, resumption and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from dfdetect.cli import main
from dfdetect.data.extract import run as extract_module  # where the run calls extract_video
from dfdetect.data.extract import balance_fakes, get_preset, read_log, run_extraction
from dfdetect.data.indexes import index_dataset
from dfdetect.data.manifest import new_manifest, read_manifest
from dfdetect.errors import ConfigError

CLIP_FRAMES = 60
# Two sampled frames per video keep MTCNN on 1080p frames to a few seconds in all.
TRAIN = dict(real_sampling="2", fake_sampling="2")


def cut_clip(src: Path, dst: Path, frames: int = CLIP_FRAMES) -> Path:
    """The first `frames` video packets of a clip, copied without re-encoding (audio left out)."""
    import av

    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        source = inp.streams.video[0]
        target = out.add_stream_from_template(source)
        copied = 0
        for packet in inp.demux(source):
            if packet.dts is None:
                continue
            if copied >= frames:
                break
            packet.stream = target
            out.mux(packet)
            copied += 1
    return dst


@pytest.fixture(scope="module")
def short_clips(dfdc_videos, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {p.stem: cut_clip(p, folder / p.name) for p in dfdc_videos}


@pytest.fixture(scope="module")
def dataset(short_clips, tmp_path_factory) -> Path:
    """A DFDC part: two reals, a fake that is its original's exact copy (so cropping it at the original's
    boxes must give identical crops), a fake of that original, a fake without an original, and a file that
    is not a video."""
    root = tmp_path_factory.mktemp("dfdc") / "dfdc_train_part_0"
    root.mkdir()
    layout = {
        "realaaaaaa.mp4": ("baxpshhrhc", {"label": "REAL"}),
        "realbbbbbb.mp4": ("bfkzrgovsv", {"label": "REAL"}),
        "copyofaaaa.mp4": ("baxpshhrhc", {"label": "FAKE", "original": "realaaaaaa.mp4"}),
        "fakeofaaaa.mp4": ("ccpzqqemva", {"label": "FAKE", "original": "realaaaaaa.mp4"}),
        "orphanfake.mp4": ("euqujvlnnb", {"label": "FAKE"}),
    }
    for name, (clip, _) in layout.items():
        (root / name).symlink_to(short_clips[clip])
    (root / "brokenvid1.mp4").write_text("this is not a video\n")
    meta = {name: entry for name, (_, entry) in layout.items()}
    meta["brokenvid1.mp4"] = {"label": "REAL"}
    (root / "metadata.json").write_text(json.dumps(meta))
    return root


def all_in_train(dataset: Path) -> pd.DataFrame:
    videos = index_dataset(dataset).manifest
    return videos.assign(split="train", split_level="group")


@pytest.fixture(scope="module")
def train_run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("train_out")
    summary = run_extraction(all_in_train(dataset), out, get_preset("train", **TRAIN), workers=0, progress=False,
                             log=lambda line: None)
    return out, summary


def test_train_preset_extracts_faces_and_logs_every_video(train_run):
    out, summary = train_run
    assert summary.videos == 6 and summary.done == 5 and summary.skipped == 1 and summary.errors == 0
    records = read_log(out / "extract_log.jsonl")
    assert set(records) == {"realaaaaaa.mp4", "realbbbbbb.mp4", "copyofaaaa.mp4", "fakeofaaaa.mp4",
                            "orphanfake.mp4", "brokenvid1.mp4"}
    broken = records["brokenvid1.mp4"]
    assert broken["status"] == "skipped" and "brokenvid1.mp4" in broken["reason"]
    manifest = read_manifest(out / "manifest.csv")
    assert len(manifest) == summary.faces > 0
    assert set(manifest["split"]) == {"train"} and set(manifest["preset"]) == {"train"}
    for path in manifest["path"]:
        image = cv2.imread(path)
        assert image is not None and image.shape == (224, 224, 3)
    assert (np.minimum(manifest["x2"] - manifest["x1"], manifest["y2"] - manifest["y1"]) >= 70).all()
    # Crops live under their group: a fake beside its original.
    fake_row = manifest[manifest["video"] == "fakeofaaaa.mp4"].iloc[0]
    real_row = manifest[manifest["video"] == "realaaaaaa.mp4"].iloc[0]
    assert Path(fake_row["path"]).parent == Path(real_row["path"]).parent
    assert Path(fake_row["path"]).parent.name.startswith("realaaaaaa-")  # the group's name and a short hash
    assert json.loads((out / "summary.json").read_text())["faces"] == summary.faces


def test_fakes_are_cropped_at_their_originals_boxes(train_run):
    out, _ = train_run
    manifest = read_manifest(out / "manifest.csv")
    real = manifest[manifest["video"] == "realaaaaaa.mp4"].set_index(["frame", "track"])
    for fake_name in ("copyofaaaa.mp4", "fakeofaaaa.mp4"):
        fake = manifest[manifest["video"] == fake_name].set_index(["frame", "track"])
        assert set(fake["boxes_from"]) == {"original"}
        assert sorted(fake.index) == sorted(real.index)
        cols = ["x1", "y1", "x2", "y2"]
        assert np.allclose(fake.loc[real.index, cols].to_numpy(), real[cols].to_numpy())
    # The exact copy of the original gives byte-identical crops: the same region of the same pixels.
    copy = manifest[manifest["video"] == "copyofaaaa.mp4"].set_index(["frame", "track"])
    for key in real.index:
        assert Path(copy.loc[key, "path"]).read_bytes() == Path(real.loc[key, "path"]).read_bytes()
    orphan = manifest[manifest["video"] == "orphanfake.mp4"]
    assert set(orphan["boxes_from"]) == {"detected"}


def test_crops_are_the_scan_crop_of_the_frame(train_run, short_clips):
    from dfdetect.faces.crop import CropSettings, crop_face
    from dfdetect.faces.detect import FaceBox
    from dfdetect.media import FrameSampling, iter_frames

    out, _ = train_run
    row = read_manifest(out / "manifest.csv").query("video == 'realbbbbbb.mp4'").iloc[0]
    frame = next(f for f in iter_frames(short_clips["bfkzrgovsv"], FrameSampling.all()) if f.index == row["frame"])
    expected = crop_face(frame.image, FaceBox(row["x1"], row["y1"], row["x2"], row["y2"]),
                         CropSettings(size=224, margin=0.0, margin_px=30))
    stored = cv2.cvtColor(cv2.imread(row["path"]), cv2.COLOR_BGR2RGB)
    assert np.abs(stored.astype(int) - expected.astype(int)).mean() < 3  # JPEG q95 only


def test_interrupted_run_resumes_and_redoes_the_cut_off_video(dataset, train_run, tmp_path, monkeypatch):
    out = tmp_path / "out"
    preset = get_preset("train", **TRAIN)
    real_extract = extract_module.extract_video
    calls = []

    def cut_off_on_third(task):
        calls.append(task["video"])
        record = real_extract(task)
        if len(calls) == 3:
            for row in record.get("rows", []):  # its crops are on disk, one of them half-written...
                (out / row["path"]).write_bytes(b"\xff\xd8\xff partial")
            raise KeyboardInterrupt  # ...and the run dies before its log line
        return record

    monkeypatch.setattr(extract_module, "extract_video", cut_off_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_extraction(all_in_train(dataset), out, preset, workers=0, progress=False, log=lambda line: None)
    assert len(read_log(out / "extract_log.jsonl")) == 2
    assert len(read_manifest(out / "manifest.csv")) > 0  # what finished is already usable
    with open(out / "extract_log.jsonl", "a") as f:
        f.write('{"video": "realbbbbbb.mp4", "sta')  # a log line cut mid-write
    monkeypatch.setattr(extract_module, "extract_video", real_extract)

    summary = run_extraction(all_in_train(dataset), out, preset, workers=0, progress=False, log=lambda line: None)
    assert summary.processed_now == 6 - 2
    assert calls[2] in {r for r in read_log(out / "extract_log.jsonl")}
    for line in (out / "extract_log.jsonl").read_text().splitlines():
        json.loads(line)  # every line whole again
    resumed = read_manifest(out / "manifest.csv")
    clean = read_manifest(train_run[0] / "manifest.csv")
    rel = lambda df, root: sorted(Path(p).relative_to(root).as_posix() for p in df["path"])  # noqa: E731
    assert rel(resumed, out) == rel(clean, train_run[0])
    for path in resumed["path"]:
        assert cv2.imread(path) is not None  # the half-written crop was redone
    again = run_extraction(all_in_train(dataset), out, preset, workers=0, progress=False, log=lambda line: None)
    assert again.processed_now == 0 and again.faces == summary.faces


def test_other_settings_in_the_same_folder_are_refused(dataset, train_run):
    out, _ = train_run
    with pytest.raises(ConfigError, match="other settings"):
        run_extraction(all_in_train(dataset), out, get_preset("train"), workers=0, progress=False)


def test_test_preset_tracks_people_over_50_frames(short_clips, tmp_path):
    videos = new_manifest([{"path": str(short_clips["bfkzrgovsv"]), "label": "real", "group": "g", "video": "v.mp4"}])
    # Every frame is detected (at 320 px to stay quick on a CPU); the tracking and sampling are the paper's.
    preset = get_preset("test", detect_side=320)
    summary = run_extraction(videos, tmp_path / "a", preset, workers=0, progress=False)
    record = read_log(tmp_path / "a" / "extract_log.jsonl")["v.mp4"]
    assert record["status"] == "done" and record["frames"] == CLIP_FRAMES
    manifest = read_manifest(tmp_path / "a" / "manifest.csv")
    assert 0 < len(manifest) <= 50 and len(manifest) == summary.faces
    for _, rows in manifest.groupby("track"):
        if len(rows) > 1:
            assert rows["frame"].max() - rows["frame"].min() + 1 >= 50
    assert not manifest.duplicated(["frame", "track"]).any()
    # Only 20 frames read: nobody is tracked over 50 frames, so the video has no usable face.
    short = run_extraction(videos, tmp_path / "b", preset.with_overrides(max_frames=20), workers=0, progress=False)
    record = read_log(tmp_path / "b" / "extract_log.jsonl")["v.mp4"]
    assert short.no_face == 1 and "tracked over 50 frames" in record["reason"]


def test_seed003_preset_with_worker_processes_matches_one_process(dataset, tmp_path, capsys):
    args = ["extract", str(dataset), "--preset", "seed003", "--limit", "3", "--no-progress"]
    assert main(args[:2] + [str(tmp_path / "one")] + args[2:] + ["--workers", "0"]) == 0
    assert "videos: 3" in capsys.readouterr().out
    assert main(args[:2] + [str(tmp_path / "two")] + args[2:] + ["--workers", "2"]) == 0
    one = read_manifest(tmp_path / "one" / "manifest.csv")
    two = read_manifest(tmp_path / "two" / "manifest.csv")
    cols = ["video", "frame", "track", "x1", "y1", "x2", "y2"]
    assert len(one) > 0
    pd.testing.assert_frame_equal(one[cols].sort_values(cols).reset_index(drop=True),
                                  two[cols].sort_values(cols).reset_index(drop=True))
    assert set(one["track"]) == {0}  # the largest face only
    reals = one[one["label"] == "real"]
    assert set(reals["frame"]) <= {0, 30}  # every 30th frame of a real
    fakes = one[one["label"] == "fake"]
    assert fakes.groupby("video")["frame"].nunique().max() <= 10  # 10 random frames of a fake


def test_balance_down_samples_fakes_across_originals():
    rows = [{"path": f"r{i}", "label": "real", "video": f"r{i}", "group": f"r{i}", "split": "train"} for i in range(3)]
    rows += [{"path": f"f{i}{j}", "label": "fake", "video": f"f{i}{j}", "original": f"r{i}", "group": f"r{i}",
              "split": "train"} for i in range(3) for j in range(4)]
    kept, note = balance_fakes(new_manifest(rows), seed=0)
    fakes = kept[kept["label"] == "fake"]
    assert len(fakes) == 3 and fakes["original"].nunique() == 3
    assert "3 of 12 fakes" in note


def test_ids_that_look_alike_once_file_safe_keep_their_own_crops(short_clips, tmp_path):
    """ "a b.mp4" and "a-b.mp4" make one safe name, and so do two names in Cyrillic script."""
    names = {"a b.mp4": ("bfkzrgovsv", "real"), "a-b.mp4": ("ccpzqqemva", "fake"),
             "видео.mp4": ("baxpshhrhc", "real"), "фильм.mp4": ("euqujvlnnb", "fake")}
    videos = new_manifest([{"path": str(short_clips[clip]), "label": label, "group": name, "video": name}
                           for name, (clip, label) in names.items()])

    run_extraction(videos, tmp_path / "out", get_preset("seed003", real_sampling="2", fake_sampling="2"),
                   workers=0, progress=False, log=lambda line: None)

    manifest = read_manifest(tmp_path / "out" / "manifest.csv")
    assert set(manifest["video"]) == set(names)
    files = list((tmp_path / "out" / "crops").rglob("*.jpg"))
    assert len(files) == len(manifest) == manifest["path"].nunique()
    assert (manifest.groupby("path")["label"].nunique() == 1).all()


def _children(pid: int) -> list[int]:
    import os

    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
def test_workers_die_when_the_extraction_is_killed(dataset, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    # The test preset detects every frame: slow enough that the workers are busy when the parent dies.
    proc = subprocess.Popen([sys.executable, "-m", "dfdetect.cli", "extract", str(dataset), str(tmp_path / "out"),
                             "--preset", "test", "--workers", "2", "--no-progress"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    orphans: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.5)
            workers = [c for c in _children(proc.pid)
                       if b"multiprocessing" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(workers) >= 2, "the worker processes never started"
        time.sleep(2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.2)
        orphans = [w for w in workers if _alive(w)]
    finally:
        for pid in [proc.pid, *workers]:  # never leave a process of this test behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert not orphans, "worker processes outlived the killed extraction"
