"""False-positive rates on real faces per age band, gender and ethnicity: does the detector accuse some people
more often than others?

    people = describe_people(rows)                     # age, gender, race codes -> readable groups
    table = false_positive_table(people, called_fake)  # one row per (attribute, group): n, FPR, 95% interval
    print(fairness_markdown(table))

The codes are UTKFace's (../shared/data/real-faces/metadata.csv): gender 0 male / 1 female; race 0 white,
1 black, 2 asian, 3 indian, 4 other. Intervals are Wilson score intervals, so that a group of 40 faces with
no false positive is not read as a proven 0%.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

AGE_BANDS = ((0, 12, "under 13"), (13, 59, "13-59"), (60, 200, "60+"))
GENDERS = {"0": "male", "1": "female"}
ETHNICITIES = {"0": "white", "1": "black", "2": "asian", "3": "indian", "4": "other"}
ATTRIBUTES = ("age_band", "gender", "ethnicity")


def age_band(age) -> str:
    try:
        years = int(float(age))
    except (TypeError, ValueError):
        return "unknown"
    return next((name for low, high, name in AGE_BANDS if low <= years <= high), "unknown")


def describe_people(rows: pd.DataFrame) -> pd.DataFrame:
    """A copy with age_band, gender and ethnicity as words, from the age / gender / race columns."""
    out = rows.copy()
    code = lambda col: out[col].astype(str).str.replace(r"\.0$", "", regex=True)  # noqa: E731
    out["age_band"] = out["age"].map(age_band) if "age" in out else "unknown"
    out["gender"] = code("gender").map(GENDERS).fillna("unknown") if "gender" in out else "unknown"
    out["ethnicity"] = code("race").map(ETHNICITIES).fillna("unknown") if "race" in out else "unknown"
    return out


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def false_positive_table(people: pd.DataFrame, called_fake) -> pd.DataFrame:
    """Rows: "all" then each (attribute, group); columns n, false_positives, fpr, fpr_low, fpr_high."""
    fake = np.asarray(called_fake, dtype=bool)
    rows = [_rate_row("all", "all", fake)]
    for attribute in ATTRIBUTES:
        values = people[attribute].astype(str).to_numpy()
        for value in sorted(set(values), key=_group_order):
            rows.append(_rate_row(attribute, value, fake[values == value]))
    return pd.DataFrame(rows)


def _group_order(value: str):
    order = [name for _, _, name in AGE_BANDS] + list(GENDERS.values()) + list(ETHNICITIES.values())
    return (order.index(value) if value in order else len(order), value)


def _rate_row(attribute: str, group: str, fake: np.ndarray) -> dict:
    n, positives = int(len(fake)), int(fake.sum())
    low, high = wilson_interval(positives, n)
    return {"attribute": attribute, "group": group, "n": n, "false_positives": positives,
            "fpr": positives / n if n else math.nan, "fpr_low": low, "fpr_high": high}


def worst_groups(table: pd.DataFrame) -> dict[str, dict]:
    """Per attribute, the group with the highest false-positive rate (what a limit is checked against)."""
    out = {}
    for attribute, part in table[table["attribute"] != "all"].groupby("attribute"):
        row = part.loc[part["fpr"].idxmax()]
        out[attribute] = {"group": row["group"], "fpr": float(row["fpr"]), "n": int(row["n"])}
    return out


def fairness_markdown(table: pd.DataFrame) -> str:
    lines = ["| attribute | group | faces | called fake | false-positive rate | 95% interval |",
             "|---|---|---|---|---|---|"]
    for row in table.itertuples():
        lines.append(f"| {row.attribute.replace('_', ' ')} | {row.group} | {row.n} | {row.false_positives} | "
                     f"{row.fpr:.1%} | {row.fpr_low:.1%}-{row.fpr_high:.1%} |")
    return "\n".join(lines) + "\n"


def fairness_summary(table: pd.DataFrame) -> dict:
    """A JSON-ready summary for a model card: overall and per-group rates."""
    groups = {f"{r.attribute}:{r.group}": {"n": int(r.n), "fpr": round(float(r.fpr), 4)}
              for r in table.itertuples() if r.attribute != "all"}
    overall = table[table["attribute"] == "all"].iloc[0]
    return {"n": int(overall["n"]), "fpr": round(float(overall["fpr"]), 4), "groups": groups}
