"""The command line: wrong values fail when it is read (before any model loads), one spelling per idea."""

from __future__ import annotations

import os

import pytest

from dfdetect.cli import build_parser, main


def _parse(*argv: str):
    return build_parser(argv[0]).parse_args(list(argv))


def test_a_mistyped_command_gets_a_suggestion(capsys):
    assert main(["scna", "clip.mp4"]) == 2
    assert "did you mean 'scan'?" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert "commands: scan, sample" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["scan", "x.mp4", "--device", "gpu"], "unknown device 'gpu'; use auto, cpu, cuda or cuda:N (did you mean cuda?)"),
    (["scan", "x.mp4", "--frames", "fsp:2"], "frame sampling 'fsp:2' not understood"),
    (["scan", "x.mp4", "--frames", "0"], "must be positive"),
    (["scan", "x.mp4", "--detector", "dlib"], "invalid choice: 'dlib'"),
    (["scan", "x.mp4", "--aggregation", "median"], "invalid choice: 'median'"),
    (["scan", "x.mp4", "--threshold", "7"], "between 0 and 1"),
    (["extract", "ds", "out", "--frames", "every:x"], "not understood"),
    (["evaluate", "default", "m.csv", "--threshold", "eerr"], "card, eer, youden"),
    (["evaluate", "default", "m.csv", "--device", "cuda1"], "unknown device 'cuda1'"),
])
def test_wrong_option_values_are_one_usage_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err


def test_help_lists_the_registered_choices(capsys):
    from dfdetect.faces.detect import DETECTORS
    from dfdetect.scoring import AGGREGATORS

    with pytest.raises(SystemExit):
        main(["scan", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in [*DETECTORS.names(), *AGGREGATORS.names()])
    assert "seed" not in out.lower()  # plain words, not the papers' numbers


def test_one_spelling_per_idea_with_the_old_ones_kept(capsys):
    assert _parse("evaluate", "m", "t.csv", "--aggregation", "max_track").aggregation == "max_track"
    assert _parse("evaluate", "m", "t.csv", "--aggregate", "max_track").aggregation == "max_track"
    assert "--aggregate is now spelt --aggregation" in capsys.readouterr().err
    assert _parse("evaluate", "m", "t.csv").aggregation == "mean"
    assert _parse("extract", "ds", "out", "--no-progress").quiet is True
    assert "--no-progress is now spelt --quiet" in capsys.readouterr().err
    assert _parse("extract", "ds", "out", "--quiet").quiet is True
    # --tta alone means flip everywhere; evaluate also takes the mode.
    assert _parse("scan", "x.mp4", "--tta").tta == "flip" and _parse("scan", "x.mp4").tta == "none"
    assert _parse("scan", "--tta", "x.mp4").paths == ["x.mp4"]
    assert _parse("evaluate", "m", "t.csv", "--tta").tta == "flip"
    assert _parse("evaluate", "m", "t.csv", "--tta", "none").tta == "none"
    assert _parse("scan", "x.mp4", "--threshold", "card").threshold == "card"
    assert _parse("scan", "x.mp4", "--threshold", "0.7").threshold == 0.7


def test_scanning_commands_keep_openblas_to_one_thread_unless_told_otherwise(monkeypatch, tmp_path, capsys):
    missing = str(tmp_path / "missing.mp4")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "unset")  # so that teardown restores whatever was there
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    assert main(["models"]) == 0
    assert "OPENBLAS_NUM_THREADS" not in os.environ  # other commands keep BLAS's own choice
    assert main(["scan", missing, "--quiet"]) != 0
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert main(["scan", missing, "--quiet"]) != 0
    assert os.environ["OPENBLAS_NUM_THREADS"] == "3"
