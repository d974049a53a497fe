"""Metrics and calibration against hand-computed cases and scikit-learn."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from dfdetect.errors import ConfigError, DatasetError
from dfdetect.evaluate import calibration as cal
from dfdetect.evaluate import metrics as M

# Case A (scikit-learn's documentation example): reals score 0.1, 0.4; fakes 0.35, 0.8.
Y_A = np.array([0, 0, 1, 1])
P_A = np.array([0.1, 0.4, 0.35, 0.8])


def test_auc_counts_pairs_by_hand():
    # fake-real pairs: 0.35>0.1 yes, 0.35>0.4 no, 0.8>0.1 yes, 0.8>0.4 yes -> 3/4
    assert M.roc_auc(Y_A, P_A) == pytest.approx(0.75)


def test_auc_counts_ties_as_half():
    # fakes {0.5, 0.9}, reals {0.5, 0.2}: pairs 0.5=0.5 (1/2), 0.5>0.2, 0.9>0.5, 0.9>0.2 -> 3.5/4
    assert M.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(0.875)
    # every score equal: no information at all
    assert M.roc_auc([0, 1, 1, 0], [0.3] * 4) == pytest.approx(0.5)


def test_roc_curve_points_by_hand():
    fpr, tpr, thr = M.roc_curve(Y_A, P_A)
    # threshold inf: nothing flagged; 0.8 catches one fake; 0.4 adds a real; 0.35 the other fake; 0.1 all
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1]
    assert tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    assert thr[0] == np.inf and thr[1:].tolist() == [0.8, 0.4, 0.35, 0.1]


def test_one_class_has_no_auc_and_says_why():
    with pytest.raises(M.MetricUndefinedError, match="every label is FAKE"):
        M.roc_auc([1, 1, 1], [0.2, 0.5, 0.9])
    result = M.compute_metrics([1, 1, 1], [0.2, 0.5, 0.9])
    assert result["auc"] is None and result["eer"] is None
    assert "both real and fake" in result["undefined"]["auc"]
    assert result["specificity"] is None and result["undefined"]["specificity"] == "no real items"
    assert result["sensitivity"] == pytest.approx(2 / 3)
    json.dumps(result, allow_nan=False)  # still serialisable


def test_log_loss_by_hand_and_clipped():
    # -(ln 0.9 + ln 0.6 + ln 0.35 + ln 0.8) / 4 = (0.1053605 + 0.5108256 + 1.0498221 + 0.2231436) / 4
    assert M.log_loss(Y_A, P_A) == pytest.approx(0.47228795, abs=1e-7)
    # a certain, wrong answer costs -ln(1e-15) = 34.539 instead of infinity
    assert M.log_loss([1], [0.0]) == pytest.approx(-math.log(1e-15), rel=1e-6)


def test_eer_at_a_roc_vertex():
    # threshold 0.4: real 0.4 flagged (FPR 1/2), fake 0.35 missed (FNR 1/2)
    assert M.equal_error_rate(Y_A, P_A) == pytest.approx((0.5, 0.4))


def test_eer_interpolated_between_roc_points():
    # fakes 0.9, 0.3; reals 0.7, 0.5, 0.1. At 0.7: FPR 1/3, FNR 1/2; at 0.5: FPR 2/3, FNR 1/2.
    # FPR - FNR goes -1/6 -> +1/6, so they cross half way: EER 1/2 at threshold (0.7 + 0.5) / 2 = 0.6
    eer, threshold = M.equal_error_rate([1, 0, 0, 1, 0], [0.9, 0.7, 0.5, 0.3, 0.1])
    assert eer == pytest.approx(0.5)
    assert threshold == pytest.approx(0.6)


def test_eer_of_a_perfect_separation_is_zero():
    assert M.equal_error_rate([0, 1], [0.1, 0.9]) == pytest.approx((0.0, 0.9))


def test_thresholded_metrics_by_hand():
    # threshold 0.5 calls only 0.8 fake: tn 2, fp 0, fn 1 (0.35), tp 1
    result = M.compute_metrics(Y_A, P_A, threshold=0.5)
    assert result["confusion"] == {"tn": 2, "fp": 0, "fn": 1, "tp": 1}
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["sensitivity"] == pytest.approx(0.5) and result["recall"] == pytest.approx(0.5)
    assert result["specificity"] == pytest.approx(1.0)
    assert result["precision"] == pytest.approx(1.0)
    assert result["f1"] == pytest.approx(2 / 3)  # 2 tp / (2 tp + fp + fn)
    # a probability equal to the threshold is called fake
    assert M.accuracy([1], [0.5], threshold=0.5) == 1.0


def test_precision_undefined_when_nothing_called_fake():
    result = M.compute_metrics(Y_A, P_A, threshold=0.95)
    assert result["precision"] is None and result["f1"] is None
    assert "nothing was called fake" in result["undefined"]["precision"]


def test_ece_by_hand():
    # 10 bins. Bin [0.1, 0.2): mean p 0.1, half fake -> |0.1 - 0.5| x 2/4 = 0.2
    #          bin [0.9, 1.0]: mean p 0.9, all fake  -> |0.9 - 1.0| x 2/4 = 0.05
    assert M.expected_calibration_error([0, 1, 1, 1], [0.1, 0.1, 0.9, 0.9], n_bins=10) == pytest.approx(0.25)
    bins = M.reliability_bins([0, 1], [0.0, 1.0], n_bins=15)
    assert bins["count"][0] == 1 and bins["count"][-1] == 1 and sum(bins["count"]) == 2  # 1.0 in the last bin


def test_per_group_accuracy():
    result = M.compute_metrics(Y_A, P_A, groups=["original", "original", "Deepfakes", "Deepfakes"])
    assert result["per_group"]["original"] == {"n": 2, "n_fake": 0, "n_real": 2, "accuracy": 1.0, "auc": None}
    assert result["per_group"]["Deepfakes"]["accuracy"] == pytest.approx(0.5)


def test_labels_from_names():
    assert M.normalise_labels(["REAL", "fake", 1, 0, True, "0", 1.0, "1.0", "0_real"]).tolist() == [
        0, 1, 1, 0, 1, 0, 1, 1, 0]
    with pytest.raises(DatasetError, match="neither real nor fake"):
        M.normalise_labels(["REAL", "maybe"])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="equally long"):
        M.compute_metrics([0, 1], [0.5])
    with pytest.raises(ValueError, match="within"):
        M.compute_metrics([0, 1], [0.5, 1.5])
    with pytest.raises(ValueError, match="normalise_labels"):
        M.compute_metrics([0, 2], [0.5, 0.5])


def _labels_and_scores(seed: int, trials: int, max_n: int, decimals: int):
    """Random labels (both classes present) and scores rounded to `decimals`, so that many tie."""
    rng = np.random.default_rng(seed)
    for _ in range(trials):
        n = int(rng.integers(5, max_n))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        yield y, np.round(rng.random(n), decimals)


def test_library_metrics_agree_with_counting_pairs_and_the_formula():
    """The metrics come from scikit-learn; these are the definitions, computed the slow way."""
    for y, p in _labels_and_scores(11, trials=10, max_n=120, decimals=1):
        fakes, reals = p[y == 1], p[y == 0]
        pairs = (fakes[:, None] > reals[None, :]).sum() + 0.5 * (fakes[:, None] == reals[None, :]).sum()
        assert M.roc_auc(y, p) == pytest.approx(pairs / (len(fakes) * len(reals)), abs=1e-12)
        q = np.clip(p, M.LOG_LOSS_EPS, 1 - M.LOG_LOSS_EPS)
        assert M.log_loss(y, p) == pytest.approx(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)), abs=1e-12)
        pred = p >= 0.5
        assert M.confusion_counts(y, p) == {"tn": int(((y == 0) & ~pred).sum()), "fp": int(((y == 0) & pred).sum()),
                                            "fn": int(((y == 1) & ~pred).sum()), "tp": int(((y == 1) & pred).sum())}


def test_agrees_with_sklearn_on_random_scores_with_ties():
    from scipy.optimize import brentq
    from sklearn import metrics as sk

    for y, p in _labels_and_scores(7, trials=25, max_n=300, decimals=2):
        p_inner = np.clip(p, 0.01, 0.99)
        assert M.roc_auc(y, p) == pytest.approx(sk.roc_auc_score(y, p), abs=1e-12)
        fpr, tpr, thr = M.roc_curve(y, p)
        sk_fpr, sk_tpr, sk_thr = sk.roc_curve(y, p)
        np.testing.assert_allclose(fpr, sk_fpr)
        np.testing.assert_allclose(tpr, sk_tpr)
        np.testing.assert_allclose(thr[1:], sk_thr[1:])
        assert M.log_loss(y, p_inner) == pytest.approx(sk.log_loss(y, p_inner), abs=1e-12)
        pred = (p >= 0.5).astype(int)
        m = M.compute_metrics(y, p, threshold=0.5)
        tn, fp, fn, tp = sk.confusion_matrix(y, pred, labels=[0, 1]).ravel()
        assert m["confusion"] == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
        assert m["accuracy"] == pytest.approx(sk.accuracy_score(y, pred))
        if tp + fp:
            assert m["precision"] == pytest.approx(sk.precision_score(y, pred))
            assert m["f1"] == pytest.approx(sk.f1_score(y, pred))
        assert m["sensitivity"] == pytest.approx(sk.recall_score(y, pred))
        # EER: where 1 - TPR(FPR), TPR interpolated linearly on scikit-learn's curve, meets FPR
        crossing = brentq(lambda x: 1 - np.interp(x, sk_fpr, sk_tpr) - x, 0.0, 1.0, xtol=1e-12)
        assert m["eer"] == pytest.approx(crossing, abs=1e-7)


def test_compute_metrics_is_json_and_roc_matches_auc():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    p = cal.sigmoid(rng.normal(size=500) + 2 * y - 1)
    result = json.loads(json.dumps(M.compute_metrics(y, p), allow_nan=False))
    roc = result["roc"]
    assert roc["thresholds"][0] is None  # +inf: nothing flagged
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(result["auc"], abs=1e-6)
    assert 0.5 < result["auc"] < 1 and 0 < result["eer"] < 0.5


# ---------------------------------------------------------------- video level


def _frames():
    return pd.DataFrame({
        "video": ["a", "a", "b", "b", "b"],
        "prob": [0.2, 0.4, 0.9, 0.7, 0.8],
        "label": [0, 0, 1, 1, 1],
        "method": ["original", "original", "dfdc", "dfdc", "dfdc"],
        "frame": [0, 1, 0, 1, 2],
        "track": [0, 0, 0, 1, 1],
    })


def test_video_level_mean_and_callable():
    videos = M.video_level(_frames()).set_index("video")
    assert videos.loc["a", "prob"] == pytest.approx(0.3) and videos.loc["b", "prob"] == pytest.approx(0.8)
    assert videos.loc["b", "n_frames"] == 3 and videos.loc["b", "method"] == "dfdc"
    assert "frame" not in videos.columns  # varies within a video
    by_max = M.video_level(_frames(), max).set_index("video")
    assert by_max["prob"].tolist() == [0.4, 0.9]


def test_video_level_uses_the_scanning_registry_with_tracks():
    # max_track: video b's persons score mean(0.9) = 0.9 and mean(0.7, 0.8) = 0.75 -> 0.9
    videos = M.video_level(_frames(), "max_track").set_index("video")
    assert videos.loc["b", "prob"] == pytest.approx(0.9)
    with pytest.raises(ConfigError, match="choose one of"):
        M.video_level(_frames(), "no_such_strategy")


def test_video_with_mixed_labels_is_refused():
    frames = _frames()
    frames.loc[0, "label"] = 1
    with pytest.raises(DatasetError, match="video 'a'"):
        M.video_level(frames)


# ---------------------------------------------------------------- calibration


def _true_logits(n: int, seed: int = 0):
    """Labels and their exact log-odds: scores ~ N(+-1.5, 1) per class have log-odds 3 x score."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = rng.normal(size=n) + np.where(y == 1, 1.5, -1.5)
    return y, 3.0 * score


@pytest.mark.parametrize("factor", [0.5, 2.5])
def test_temperature_recovers_known_over_or_under_confidence(factor):
    y, logits = _true_logits(20000)
    temperature = cal.fit_temperature(factor * logits, y)
    assert temperature == pytest.approx(factor, rel=0.05)


def test_temperature_scaling_lowers_ece_and_nll():
    y, logits = _true_logits(5000, seed=3)
    overconfident = 4.0 * logits
    temperature = cal.fit_temperature(overconfident, y)
    before = M.expected_calibration_error(y, cal.sigmoid(overconfident))
    after = M.expected_calibration_error(y, cal.apply_temperature(overconfident, temperature))
    assert after < before / 3
    assert cal.binary_nll(overconfident, y, temperature) < cal.binary_nll(overconfident, y)
    # scaling by a positive constant never reorders: AUC unchanged
    assert M.roc_auc(y, cal.apply_temperature(overconfident, temperature)) == pytest.approx(
        M.roc_auc(y, cal.sigmoid(overconfident)), abs=1e-9)


def test_separable_data_stop_at_the_lower_bound():
    temperature = cal.fit_temperature([-3.0, -2.0, 2.0, 4.0], [0, 0, 1, 1])
    assert temperature == pytest.approx(cal.TEMPERATURE_BOUNDS[0], rel=1e-3)


def test_sigmoid_is_stable_and_logit_inverts_it():
    assert cal.sigmoid([-1000.0, 0.0, 1000.0]).tolist() == [0.0, 0.5, 1.0]
    np.testing.assert_allclose(cal.sigmoid(cal.logit([0.1, 0.5, 0.97])), [0.1, 0.5, 0.97])


def test_threshold_rules():
    # Youden J = TPR - FPR over case A's points: 0.8 -> 0.5, 0.4 -> 0, 0.35 -> 0.5, 0.1 -> 0; the highest wins ties
    assert cal.choose_threshold(Y_A, P_A, "youden") == pytest.approx(0.8)
    assert cal.choose_threshold([1, 0, 0, 1, 0], [0.9, 0.7, 0.5, 0.3, 0.1], "eer") == pytest.approx(0.6)
    assert cal.choose_threshold(Y_A, P_A, "0.3") == 0.3
    assert cal.choose_threshold(Y_A, P_A, 0.7) == 0.7
    with pytest.raises(ConfigError, match="outside"):
        cal.choose_threshold(Y_A, P_A, "1.5")
    with pytest.raises(ConfigError, match="eer, youden"):
        cal.choose_threshold(Y_A, P_A, "median")


def test_auc_standard_error_by_hand_and_against_resampling():
    from dfdetect.evaluate.metrics import auc_standard_error

    # By hand: Q1 = 0.9 / 1.1, Q2 = 1.62 / 1.9; (0.09 + 49 (Q1 - 0.81) + 49 (Q2 - 0.81)) / 2500 = 0.0010319.
    assert auc_standard_error(0.9, 50, 50) == pytest.approx(math.sqrt(0.0010319), rel=1e-3)
    assert auc_standard_error(1.0, 10, 10) == 0.0
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(400), np.zeros(400)]
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    aucs = [M.roc_auc(y, sigmoid(np.r_[rng.normal(1.0, 1, 400), rng.normal(0, 1, 400)])) for _ in range(300)]
    assert auc_standard_error(float(np.mean(aucs)), 400, 400) == pytest.approx(np.std(aucs), rel=0.15)
    with pytest.raises(M.DfdetectError):
        auc_standard_error(0.8, 0, 10)


def test_temperature_fit_finds_the_minimum_a_grid_search_finds():
    from dfdetect.probability import binary_nll

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    logits = 3.0 * (2 * y - 1) + rng.normal(0, 2.5, 400)
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 4001))
    best = grid[np.argmin([binary_nll(logits, y, t) for t in grid])]
    assert cal.fit_temperature(logits, y) == pytest.approx(best, rel=2e-3)
