"""Outputs never destroy inputs, wrong output paths fail before the model loads, two runs never write one file,
and SIGTERM keeps what finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from dfdetect.cli import main
from dfdetect.errors import ConfigError
from dfdetect.outputs import HeldFile, check_outputs
from dfdetect.results import ResultFiles, read_json

import dfdetect

SRC = Path(dfdetect.__file__).resolve().parents[1]  # the package under test, also in child processes


@pytest.fixture
def images(tmp_path, astronaut) -> list[Path]:
    paths = [tmp_path / "in1.jpg", tmp_path / "in2.jpg"]
    for path in paths:
        cv2.imwrite(str(path), astronaut[:, :, ::-1])
    return paths


@pytest.fixture
def no_model(monkeypatch):
    """Every check here must come before the model loads."""
    from dfdetect.api import Detector

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the outputs were checked")

    monkeypatch.setattr(Detector, "load", refuse)


def _scan(*args) -> list[str]:
    return ["scan", *map(str, args), "--quiet"]


@pytest.mark.parametrize("option", ["--csv", "--json", "--report"])
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(images, option, no_model, capsys):
    before = [p.read_bytes() for p in images]

    assert main(_scan(*images, option, images[1])) == 2

    assert "is one of the inputs" in capsys.readouterr().err
    assert [p.read_bytes() for p in images] == before


def test_an_input_reached_by_another_name_is_still_an_input(images, tmp_path, no_model):
    (tmp_path / "link.jpg").symlink_to(images[0])
    os.link(images[1], tmp_path / "hard.jpg")
    assert main(_scan(images[0], "--json", tmp_path / "link.jpg")) == 2
    assert main(_scan(tmp_path, "--csv", tmp_path / "hard.jpg")) == 2  # a folder's files are inputs too


def test_two_options_naming_one_file_are_refused(images, tmp_path, no_model, capsys):
    assert main(_scan(*images, "--json", tmp_path / "out", "--csv", tmp_path / "out")) == 2
    assert "--json and --csv both name" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_annotating_an_image_onto_itself_is_refused(images, no_model, capsys):
    before = images[0].read_bytes()
    assert main(_scan(images[0], "--annotate", images[0])) == 2
    assert "--annotate" in capsys.readouterr().err and images[0].read_bytes() == before


@pytest.mark.parametrize("target,message", [("folder", "is a folder"), ("/dev/full", "not a regular file"),
                                            ("file/x.json", "is a file, not a folder")])
def test_unusable_output_paths_fail_in_one_line_before_the_model_loads(images, tmp_path, target, message,
                                                                       no_model, capsys):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    path = target if target.startswith("/") else tmp_path / target
    assert main(_scan(images[0], "--json", path)) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(images, tmp_path, no_model, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(_scan(images[0], "--csv", folder / "r.csv")) == 2
    finally:
        folder.chmod(0o755)
    assert "not writable" in capsys.readouterr().err


def test_index_refuses_to_overwrite_the_datasets_own_label_file(tmp_path, capsys):
    dataset = tmp_path / "ds"
    (dataset / "faces").mkdir(parents=True)
    labels = dataset / "metadata.csv"
    labels.write_text("videoname,label\na.mp4,REAL\n")
    assert main(["index", str(dataset), "--out", str(labels)]) == 2
    assert "file of the dataset" in capsys.readouterr().err
    assert labels.read_text() == "videoname,label\na.mp4,REAL\n"


def test_index_drops_rows_that_point_outside_the_dataset(tmp_path, astronaut, capsys):
    dataset = tmp_path / "ds"
    (dataset / "faces").mkdir(parents=True)
    outside = tmp_path / "secret.jpg"
    for path in (dataset / "faces" / "a.jpg", dataset / "faces" / "b.jpg", outside):
        cv2.imwrite(str(path), astronaut)
    (dataset / "metadata.csv").write_text(
        f"path,label\nfaces/a.jpg,REAL\nfaces/b.jpg,FAKE\n../secret.jpg,FAKE\n{outside},REAL\n")

    assert main(["index", str(dataset), "--out", str(tmp_path / "m.csv"), "--split", "none"]) == 0

    from dfdetect.data.manifest import read_manifest

    assert sorted(Path(p).name for p in read_manifest(tmp_path / "m.csv")["path"]) == ["a.jpg", "b.jpg"]
    assert "2 of 4 rows name files outside the dataset folder" in capsys.readouterr().err


def test_a_held_output_is_refused_to_a_second_writer_even_after_a_rewrite(tmp_path):
    first = ResultFiles(json_path=tmp_path / "r.json", csv_path=tmp_path / "r.csv").claim()
    with first:
        for option in ("--json", "--csv"):
            with pytest.raises(ConfigError, match="being written by another"):
                ResultFiles(**{option.strip("-") + "_path": tmp_path / f"r.{option.strip('-')}"}).claim()
        first._write_json()  # the JSON is replaced by a new file: the lock moves with it
        with pytest.raises(ConfigError, match="being written by another"):
            HeldFile(tmp_path / "r.json").acquire()
    HeldFile(tmp_path / "r.json").acquire().release()  # free again once the first run is done
    assert read_json(tmp_path / "r.json") == []


def test_claimed_files_that_were_never_started_are_removed_and_old_ones_kept(tmp_path):
    (tmp_path / "old.csv").write_text("yesterday\n")
    files = ResultFiles(json_path=tmp_path / "new.json", csv_path=tmp_path / "old.csv").claim()
    files.release()  # e.g. the model failed to load
    assert not (tmp_path / "new.json").exists() and (tmp_path / "old.csv").read_text() == "yesterday\n"


def test_check_outputs_names_the_option(tmp_path):
    with pytest.raises(ConfigError, match="^--csv"):
        check_outputs({"--csv": tmp_path}, [])
    assert check_outputs({"--json": tmp_path / "a.json", "--csv": None}) == {"--json": tmp_path / "a.json"}


def _start_scan(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen([sys.executable, "-m", "dfdetect.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_scans_writing_one_file_do_not_splice_it(images, tmp_path):
    args = ["scan", *map(str, images), "--csv", str(tmp_path / "r.csv"), "--quiet", "--device", "cpu"]
    first, second = _start_scan(args), _start_scan(args)
    outs = [p.communicate(timeout=300) for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    assert codes == [0, 2], outs
    assert any("being written by another" in err for _, err in outs)
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0].startswith("path,") and sum(line.startswith("path,") for line in lines) == 1
    assert {line.split(",")[0] for line in lines[1:]} == {str(p) for p in images}


@pytest.mark.slow
def test_sigterm_keeps_the_finished_results(tmp_path, astronaut):
    paths = []
    for i in range(12):
        paths.append(tmp_path / f"img{i:02d}.jpg")
        cv2.imwrite(str(paths[-1]), astronaut[:, :, ::-1])
    proc = _start_scan(["scan", *map(str, paths), "--json", str(tmp_path / "r.json"), "--report",
                        str(tmp_path / "r.md"), "--quiet", "--device", "cpu"])
    printed = [proc.stdout.readline(), proc.stdout.readline()]  # two items finished
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=120)
    printed += rest.splitlines()
    finished = [line for line in printed if ": REAL" in line or ": FAKE" in line]

    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "terminated" in err and "Traceback" not in err
    assert 2 <= len(read_json(tmp_path / "r.json")) == len(finished) < 12
    assert (tmp_path / "r.md").is_file()


def test_a_write_that_fails_mid_batch_is_one_line(tmp_path, monkeypatch):
    from dfdetect.errors import DfdetectError

    def disk_full(self, text):
        raise OSError(28, "No space left on device")

    files = ResultFiles(json_path=tmp_path / "r.json").claim()
    monkeypatch.setattr(HeldFile, "replace", disk_full)
    with pytest.raises(DfdetectError, match=r"--json .*r.json: writing failed \(No space left on device\)"):
        with files:
            pass
    HeldFile(tmp_path / "r.json").acquire().release()  # the lock was let go


@pytest.mark.slow
def test_annotated_copies_never_take_an_inputs_name(tmp_path, astronaut):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), astronaut[:, :, ::-1])
    cv2.imwrite(str(folder / "a_annotated.png"), astronaut[::2, ::2, ::-1])  # an input, by chance so named
    before = (folder / "a_annotated.png").read_bytes()

    assert main(_scan(folder, "--annotate", folder, "--device", "cpu", "--frames", "1")) == 0

    assert (folder / "a_annotated.png").read_bytes() == before
    written = sorted(p.name for p in folder.iterdir())
    assert written == ["a.png", "a_2_annotated.png", "a_annotated.png", "a_annotated_annotated.png"]
