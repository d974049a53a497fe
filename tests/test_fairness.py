"""False-positive rates per age band, gender and ethnicity, from UTKFace-coded metadata."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_DATA, _need


def test_groups_from_the_shared_metadata_cover_every_face():
    from dfdetect.evaluate.fairness import describe_people

    meta = pd.read_csv(_need(SHARED_DATA / "real-faces" / "metadata.csv"), dtype=str)
    people = describe_people(meta)
    assert set(people["age_band"]) == {"under 13", "13-59", "60+"}
    assert set(people["gender"]) == {"male", "female"}
    assert set(people["ethnicity"]) == {"white", "black", "asian", "indian", "other"}
    child = people[meta["age"] == "5"].iloc[0]
    assert child["age_band"] == "under 13"


def test_rates_per_group_with_wilson_intervals():
    from dfdetect.evaluate.fairness import (describe_people, fairness_markdown, fairness_summary,
                                            false_positive_table, wilson_interval, worst_groups)

    rows = pd.DataFrame({"age": ["4", "30", "70", "30"] * 25, "gender": ["0", "1"] * 50,
                         "race": ["2", "0", "1", "3"] * 25})
    called_fake = np.array([True, False, False, False] * 25)  # every child (and so every asian face) called fake
    table = false_positive_table(describe_people(rows), called_fake)
    overall = table.iloc[0]
    assert (overall["attribute"], overall["n"], overall["false_positives"]) == ("all", 100, 25)
    by = table.set_index(["attribute", "group"])
    assert by.loc[("age_band", "under 13"), "fpr"] == 1.0
    assert by.loc[("age_band", "13-59"), "fpr"] == 0.0
    assert by.loc[("ethnicity", "asian"), "fpr"] == 1.0
    assert worst_groups(table)["age_band"] == {"group": "under 13", "fpr": 1.0, "n": 25}
    low, high = wilson_interval(0, 40)
    assert low == 0.0 and 0.08 < high < 0.1  # no false positive in 40 is not a proven 0%
    assert wilson_interval(5, 10)[0] == pytest.approx(1 - wilson_interval(5, 10)[1])
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    assert "| age band | under 13 | 25 | 25 | 100.0% |" in fairness_markdown(table)
    summary = fairness_summary(table)
    assert summary["fpr"] == 0.25 and summary["groups"]["ethnicity:asian"] == {"n": 25, "fpr": 1.0}
