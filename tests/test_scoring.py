"""Aggregation strategies and verdicts."""

import numpy as np
import pytest

from dfdetect.scoring import AGGREGATORS, calibrated_probability, confident_mean, judged_tracks, verdict


def test_registry_has_the_three_strategies():
    assert {"mean", "confident", "max_track"} <= set(AGGREGATORS.names())


def test_max_track_calls_a_video_fake_when_any_person_is_fake():
    real_person, fake_person = [0.1, 0.2, 0.1, 0.2], [0.9, 0.8, 0.95, 0.85]
    assert AGGREGATORS.get("max_track").video([real_person, fake_person]) == pytest.approx(0.875)
    assert AGGREGATORS.get("mean").video([real_person, fake_person]) == pytest.approx(0.5125)


def test_people_the_model_cannot_judge_count_only_when_no_one_else_can_be():
    assert judged_tracks([[], ["face small (30 px)"]]) == [True, False]
    assert judged_tracks([["face blurred"], ["face small (30 px)"]]) == [True, True]
    assert judged_tracks([[]]) == [True]


def test_confident_mean_follows_the_confident_frames():
    probs = [0.95] * 14 + [0.5] * 18  # 14 of 32 confidently fake: > 32/2.5 and > 11
    assert confident_mean(probs) == pytest.approx(0.95)
    assert confident_mean([0.9] * 5 + [0.4] * 27) == pytest.approx(np.mean([0.9] * 5 + [0.4] * 27))
    assert confident_mean([0.05] * 30 + [0.6] * 2) == pytest.approx(0.05)


def test_flat_call_treats_the_list_as_one_track():
    assert AGGREGATORS.get("max_track")([0.2, 0.4]) == pytest.approx(0.3)


def test_temperature_softens_probabilities():
    p1, p2 = calibrated_probability([3.0], 1.0)[0], calibrated_probability([3.0], 3.0)[0]
    assert p1 == pytest.approx(1 / (1 + np.exp(-3)))
    assert p2 == pytest.approx(1 / (1 + np.exp(-1)))


def test_verdicts():
    assert verdict(0.7, 0.5) == "fake" and verdict(0.3, 0.5) == "real" and verdict(None, 0.5) == "no_face"


def test_worker_tracebacks_shrink_to_their_one_line_message():
    from dfdetect.cli import one_line
    from dfdetect.errors import DatasetError

    wrapped = DatasetError("Caught DatasetError in DataLoader worker process 0.\nOriginal Traceback (most recent "
                           "call last):\n  File \"x.py\", line 1\ndfdetect.errors.DatasetError: cannot read face crop a.jpg")
    assert one_line(wrapped) == "cannot read face crop a.jpg"
    assert one_line(DatasetError("manifest m.csv has no rows")) == "manifest m.csv has no rows"
