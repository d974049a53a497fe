"""Decoding in a background thread (media/prefetch.py) while scans detect and classify: the same results in the
same order, errors per input, bounded memory, and nothing left running after an interruption."""

from __future__ import annotations

import threading
import time
from contextlib import closing
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfdetect.api import Detector
from dfdetect.cli import main
from dfdetect.errors import MediaError
from dfdetect.media.prefetch import FramePrefetcher
from dfdetect.results import read_json


def _decode_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "dfdetect-decode"]


def _wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


# --------------------------------------------------------------------------------------------------
# the prefetcher alone, with frames made up (numbers stand in for frames)
# --------------------------------------------------------------------------------------------------
class _Source:
    """frames_of for the prefetcher: records which inputs were opened and how far each was read."""

    def __init__(self, lengths: dict):
        self.lengths, self.opened, self.produced = lengths, [], {}

    def __call__(self, name):
        self.opened.append(name)
        if self.lengths[name] is None:
            raise MediaError(f"cannot open {name}")
        self.produced[name] = 0
        for i in range(self.lengths[name]):
            self.produced[name] = i + 1
            yield (name, i)


def test_frames_come_in_order_with_errors_where_their_input_is_read():
    source = _Source({"a": 5, "bad": None, "b": 3, "empty": 0, "c": 2})
    names = list(source.lengths)
    with FramePrefetcher(names, source, depth=2) as prefetch:
        seen = {}
        for i, name in enumerate(names):
            prefetch.start(i)
            try:
                seen[name] = list(prefetch.frames(i))
            except MediaError as exc:
                seen[name] = str(exc)
            prefetch.done(i)
    assert seen == {"a": [("a", i) for i in range(5)], "bad": "cannot open bad", "b": [("b", i) for i in range(3)],
                    "empty": [], "c": [("c", 0), ("c", 1)]}
    assert _wait_until(lambda: not _decode_threads())


def test_the_thread_stays_one_input_and_a_few_frames_ahead():
    source = _Source({"a": 50, "b": 50, "c": 50, "d": 50})
    names = list(source.lengths)
    with FramePrefetcher(names, source, depth=3) as prefetch:
        prefetch.start(0)
        frames = prefetch.frames(0)
        assert next(frames) == ("a", 0)
        # The thread fills the queue (3 frames) plus the one it holds, then waits.
        assert _wait_until(lambda: source.produced.get("a", 0) >= 4)
        time.sleep(0.3)
        assert source.produced["a"] <= 5 and source.opened == ["a"]
        rest = list(frames)
        assert len(rest) == 49
        # a is read: the thread goes on into b, a few frames, but not into c while the scan is on a.
        assert _wait_until(lambda: source.produced.get("b", 0) >= 4)
        time.sleep(0.3)
        assert source.opened == ["a", "b"] and source.produced["b"] <= 4
        prefetch.done(0)
        prefetch.start(1)
        # The scan gave up on b early (an error, say): the thread drops it and moves on to c, then d.
        prefetch.done(1)
        assert _wait_until(lambda: "c" in source.opened)
        assert source.produced["b"] <= 5
        assert list(prefetch.frames(2)) == [("c", i) for i in range(50)]
    assert _wait_until(lambda: not _decode_threads())
    assert "d" not in source.produced or source.produced["d"] <= 4


def test_an_input_that_gives_no_frame_does_not_hold_the_next_one_back():
    source = _Source({"a": 2, "bad": None, "b": 2})
    with FramePrefetcher(list(source.lengths), source, depth=4) as prefetch:
        prefetch.start(0)
        # While the scan is still on a, the thread passes the unreadable file and decodes b.
        assert _wait_until(lambda: source.produced.get("b", 0) == 2)
        assert list(prefetch.frames(0)) == [("a", 0), ("a", 1)]


def test_closing_stops_a_thread_that_waits_for_room():
    source = _Source({"long": 10_000})
    prefetch = FramePrefetcher(["long"], source, depth=2)
    prefetch.start(0)
    assert _wait_until(lambda: source.produced.get("long", 0) >= 3)
    started = time.monotonic()
    prefetch.close()
    assert time.monotonic() - started < 2 and not prefetch._thread.is_alive()
    assert source.produced["long"] < 10


# --------------------------------------------------------------------------------------------------
# scans
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def detector():
    return Detector.load("default", device="cpu", sampling="4")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, dfdc_videos, astronaut):
    from dfdetect.samples import make_sample_video

    folder = tmp_path_factory.mktemp("inputs")
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(dfdc_videos[0].read_bytes()[:20_000])
    image = folder / "astronaut.png"
    cv2.imwrite(str(image), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    sample = make_sample_video(folder / "sample.mp4")
    # The smallest shared clip (720p) last: it is decoded while the image and the sample clip are scanned.
    clip = next(v for v in dfdc_videos if v.name == "cbqfgqronr.mp4") if any(
        v.name == "cbqfgqronr.mp4" for v in dfdc_videos) else dfdc_videos[0]
    return [sample, folder / "missing.mp4", truncated, image, clip]


def _essence(result) -> tuple:
    return (result.path, result.verdict, result.probability, result.error, result.frames_sampled,
            [[(f.frame_index, f.probability, f.box) for f in t.faces] for t in result.tracks])


def test_overlapped_scans_equal_one_by_one_scans_in_input_order(detector, inputs, monkeypatch):
    events = []  # ("decode" | "scan", file name), in the order they began, from both threads
    frames_of, scan = detector._frames_of, detector._scan
    monkeypatch.setattr(detector, "_frames_of", lambda path: events.append(("decode", Path(path).name)) or
                        frames_of(path))
    monkeypatch.setattr(detector, "_scan", lambda path, *a, **k: events.append(("scan", Path(path).name)) or
                        scan(path, *a, **k))
    overlapped = list(detector.scan_many(inputs))
    assert _wait_until(lambda: not _decode_threads())
    monkeypatch.setattr(detector, "_frames_of", frames_of)
    monkeypatch.setattr(detector, "_scan", scan)
    monkeypatch.setattr(detector.options, "overlap", False)
    plain = [detector.scan(path) for path in inputs]
    assert [_essence(r) for r in overlapped] == [_essence(r) for r in plain]
    assert [r.path for r in overlapped] == [str(p) for p in inputs]
    assert [r.verdict for r in overlapped][1:3] == ["error", "error"]
    assert all(r.verdict in ("fake", "real") for r in overlapped[3:])
    # The clip after the image began decoding while the image was still being scanned (an order of events, not
    # a timing: how much that saves is benchmarks/decode_cpu.py's to say).
    clip = inputs[-1].name
    assert events.index(("decode", clip)) < events.index(("scan", clip))


def test_chunks_scored_beside_the_face_search_give_the_scores_of_a_scan_in_one_thread(inputs, monkeypatch):
    chunked = Detector.load("default", device="cpu", sampling="12", chunk_frames=4)  # three chunks of faces
    threads = []
    predict = chunked.predict
    monkeypatch.setattr(chunked, "predict", lambda crops: threads.append(threading.current_thread()) or
                        predict(crops))
    overlapped = chunked.scan(inputs[-1])
    assert len(threads) == 3 and threading.main_thread() not in threads
    monkeypatch.setattr(chunked.options, "overlap", False)
    threads.clear()
    plain = chunked.scan(inputs[-1])
    assert threads == [threading.main_thread()] * 3
    assert _essence(overlapped) == _essence(plain) and overlapped.frames_sampled == 12


def test_a_classification_that_fails_in_its_thread_gives_that_input_one_error_line(inputs, monkeypatch):
    chunked = Detector.load("default", device="cpu", sampling="12", chunk_frames=4)
    calls = []

    def predict(crops):
        calls.append(len(crops))
        if len(calls) == 2:
            raise MediaError("crops unreadable")
        return np.full(len(crops), 0.5)

    monkeypatch.setattr(chunked, "predict", predict)
    failed, after = list(chunked.scan_many([inputs[-1], inputs[0]]))
    assert failed.verdict == "error" and failed.error == "crops unreadable"
    assert after.verdict in ("fake", "real")


def test_the_command_prints_each_bad_file_once_and_finishes_the_others(inputs, tmp_path, capsys):
    out = tmp_path / "r.json"
    status = main(["scan", *map(str, inputs), "--device", "cpu", "--frames", "4", "--quiet", "--json", str(out)])
    assert status == 1
    printed = capsys.readouterr().out.splitlines()
    results = read_json(out)
    assert [Path(r.path).name for r in results] == [p.name for p in inputs]
    for path, result in zip(inputs, results):
        assert sum(line.startswith(f"{path.name}:") for line in printed) == 1, printed
        assert (result.verdict == "error") == (path.name in ("missing.mp4", "truncated.mp4"))
    assert _wait_until(lambda: not _decode_threads())


def test_an_interrupted_batch_leaves_no_thread_decoding(detector, inputs, monkeypatch):
    calls = []

    def interrupted(crops):
        calls.append(len(crops))
        raise KeyboardInterrupt

    monkeypatch.setattr(detector, "predict", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with closing(detector.scan_many(inputs)) as results:
            for _ in results:
                pass
    assert calls and _wait_until(lambda: not _decode_threads(), timeout=15)
