"""A training pool from several sources: indexed (or extracted) manifests joined into one, each row keeping
the name of its source in the `dataset` column and its method, with a split that never puts a group in two
splits.

    pool = pool_manifests({"dfdc": dfdc, "ffpp": ffpp_crops, "real-faces": utk}, split="keep")
    pool = pool_manifests(parts, hold_out="ffpp")      # leave one source out: all of FF++ is test

Groups are prefixed with their source ("ffpp:yt:033+yt:097"), so groups of two sources never merge by a
shared name, while the ties inside a source (FF++ fakes joining two ids, a DFDC fake and its original) stay
as each indexer made them.

Split protocols:
  keep   each row keeps the split its manifest gave it (a source indexed with a group split before, e.g.
         the DFDC pool a model was trained on, keeps its test rows unseen); rows without a split are split
         by group within their source.
  group  every source is split anew by group, 70/15/15 (or `fractions`) per source and method.
`hold_out` then moves every row of the named sources to test: training and validation never see them.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from ..errors import ConfigError, DatasetError
from .manifest import SPLITS, new_manifest, validate
from .splits import DEFAULT_FRACTIONS, group_leaks, group_split

POOL_SPLITS = ("keep", "group")
HELD_OUT_LEVEL = "held_out_source"


def pool_manifests(parts: Mapping[str, pd.DataFrame], split: str = "keep", hold_out=(), fractions=DEFAULT_FRACTIONS,
                   seed: int = 0) -> pd.DataFrame:
    """One manifest from {source name: manifest}; see the module's text for the protocols."""
    if split not in POOL_SPLITS:
        raise ConfigError(f"pool split {split!r}: choose one of {', '.join(POOL_SPLITS)}")
    unknown = sorted(set(hold_out) - set(parts))
    if unknown:
        raise ConfigError(f"--hold-out {', '.join(unknown)}: no such source; the pool has {', '.join(parts)}")
    if len(parts) < 1:
        raise ConfigError("a pool needs at least one manifest")
    pieces = [_split_source(_tagged(name, frame), split, fractions, seed) for name, frame in parts.items()]
    pool = new_manifest(pd.concat(pieces, ignore_index=True))
    held = pool["dataset"].isin(list(hold_out))
    pool.loc[held, "split"] = "test"
    pool.loc[held, "split_level"] = HELD_OUT_LEVEL
    validate(pool)
    leaks = group_leaks(pool)
    if len(leaks):  # a manifest whose own split leaked identity would carry it into every figure
        raise DatasetError(f"{len(leaks)} groups span more than one split (e.g. {leaks.index[0]}: {leaks.iloc[0]}); "
                           "re-split with --split group")
    return pool


def _tagged(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    if not name or any(c in name for c in ":=,"):
        raise ConfigError(f"source name {name!r}: use letters, digits, '-' or '_'")
    if frame.empty:
        raise DatasetError(f"source {name} has no rows")
    out = new_manifest(frame)
    groups = out["group"].where(out["group"] != "", out["path"])  # a row without a group is its own group
    out["group"] = name + ":" + groups
    out["dataset"] = name
    return out


def _split_source(frame: pd.DataFrame, split: str, fractions, seed: int) -> pd.DataFrame:
    if split == "group":
        return group_split(frame, fractions, seed, stratify="method")
    unsplit = ~frame["split"].isin(SPLITS)
    if unsplit.any():
        frame = frame.copy()
        frame.loc[unsplit] = group_split(frame[unsplit], fractions, seed, stratify="method")
    return frame


def pool_table(pool: pd.DataFrame) -> pd.DataFrame:
    """Rows per source and label (index) and split (columns), with totals: what the CLI prints."""
    key = pool["dataset"] + " " + pool["label"]
    return pd.crosstab(key.rename("source"), pool["split"].replace("", "(none)"), margins=True, margins_name="total")


def source_weights(rows: pd.DataFrame, share_power: float = 0.5, group_factors: Mapping[str, float] | None = None,
                   real_share: float = 0.5) -> np.ndarray:
    """A sampling weight per row (summing to 1). Each source (the `dataset` column) gets a share of the draws
    in proportion to its size ** share_power, so that 1,000 FF++ crops are not drowned by 18,000 DFDC ones
    (0.5: square root) without being repeated 18 times over; within a source, real and fake get the same
    split, `real_share` of its draws to real rows (0.5: halves), so that no source's style alone says "real"
    or "fake". A source with one label keeps it.

    group_factors ({"age_band under 13": 3.0}, groups named as the calibration names them) draw the rows of a
    group that many times more often than the other rows of their source and label, leaving the shares of
    sources and labels as they are: more children among the real faces (and among the self-blended fakes
    made from them), not more real faces."""
    from .manifest import label_to_int

    labels = label_to_int(rows["label"]).to_numpy()
    sources = rows["dataset"].astype(str).to_numpy()
    names, source_index = np.unique(sources, return_inverse=True)
    sizes = np.bincount(source_index).astype(float)
    shares = sizes ** share_power / (sizes ** share_power).sum()
    emphasis = row_factors(rows, group_factors or {})
    weights = np.zeros(len(rows))
    for s, name in enumerate(names):
        in_source = source_index == s
        present = [value for value in (0, 1) if (in_source & (labels == value)).any()]
        for value in present:
            cell = in_source & (labels == value)
            label_share = 1.0 if len(present) == 1 else (real_share if value == 0 else 1.0 - real_share)
            weights[cell] = shares[s] * label_share * emphasis[cell] / emphasis[cell].sum()
    return weights


def row_factors(rows: pd.DataFrame, group_factors: Mapping[str, float]) -> np.ndarray:
    """Each row's product of the factors of the groups it belongs to ("source dfdc", "age_band under 13",
    "gender female", "ethnicity asian")."""
    factors = np.ones(len(rows))
    if not group_factors:
        return factors
    from ..evaluate.fairness import describe_people

    described = describe_people(rows) if {"age", "gender", "race"} & set(rows.columns) else rows
    for name, factor in group_factors.items():
        kind, _, value = name.partition(" ")
        column = "dataset" if kind == "source" else kind
        if column not in described.columns or not value:
            raise ConfigError(f"group {name!r}: name it as '<source|age_band|gender|ethnicity> <value>', "
                              "e.g. 'age_band under 13'")
        member = described[column].astype(str).to_numpy() == value
        if not member.any():
            raise ConfigError(f"group {name!r}: no training row belongs to it")
        factors[member] *= float(factor)
    return factors
