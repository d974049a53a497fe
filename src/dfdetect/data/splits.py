"""Train / validation / test splits of a manifest, deterministic for a given seed.

Protocols:
  group     whole groups (source video or identity) go to one split, so no person is in two; proportions
            are met per stratum (the `method` column by default), as seed 003's 70/15/15 per category.
  official  the dataset's published lists (FF++ JSON pairs, Celeb-DF's test list) are kept; rows they leave
            out are split by group over the splits the lists do not define (over all three if they define all).
  seed001   reproduction of seed 001: classes balanced by down-sampling the larger one, then a random
            per-image split 56 / 24 / 20 (train / val / test) with seed 42. Marked split_level = "image"
            because it ignores groups: a fake and its source real can land in different splits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .manifest import SPLITS

DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)   # seed 003
SEED001_FRACTIONS = (0.56, 0.24, 0.20)  # seed 001: 56% train, 24% validation, 20% test
SEED001_SEED = 42
PROTOCOLS = ("auto", "group", "kfold", "official", "seed001", "none")


def parse_fractions(text: str | tuple | list) -> tuple[float, float, float]:
    """"0.7,0.15,0.15" (train, val, test) -> a tuple that sums to 1."""
    try:
        values = [float(v) for v in (text.split(",") if isinstance(text, str) else text)]
    except ValueError:
        raise ConfigError(
            f"split fractions {text!r}: give three numbers for train,val,test, e.g. 0.7,0.15,0.15"
        ) from None
    if len(values) != 3 or any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions {text!r}: need three non-negative numbers (train,val,test) summing to 1")
    return values[0], values[1], values[2]


def assign_splits(df: pd.DataFrame, protocol: str = "auto", fractions=None, seed: int | None = None,
                  stratify: str | None = "method", folds: int = 5, fold: int = 0) -> pd.DataFrame:
    """A copy of the manifest with `split` and `split_level` filled by the named protocol."""
    if protocol == "auto":
        protocol = "official" if (df["split_level"] == "official").any() else "group"
    if protocol == "none":
        return df.copy()
    if protocol == "seed001":
        return seed001_split(df, seed=SEED001_SEED if seed is None else seed,
                             fractions=parse_fractions(fractions or SEED001_FRACTIONS))
    fractions = parse_fractions(fractions or DEFAULT_FRACTIONS)
    seed = 0 if seed is None else seed
    if protocol == "group":
        return group_split(df, fractions, seed, stratify)
    if protocol == "official":
        return official_split(df, fractions, seed, stratify)
    if protocol == "kfold":
        return group_kfold_split(df, folds, fold, seed, stratify)
    raise ConfigError(f"unknown split protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")


def group_split(df: pd.DataFrame, fractions=DEFAULT_FRACTIONS, seed: int = 0, stratify: str | None = "method",
                group_col: str = "group") -> pd.DataFrame:
    """Assign whole groups to train/val/test so that each stratum's rows come close to `fractions`.

    Greedy: groups in a seeded random order, larger first, each to the split that keeps every split closest
    (least squares, each stratum measured as a fraction of its size) to its share of the rows placed so far.
    Comparing with what is placed so far, not with the final targets, keeps a stratum that arrives late
    (single-row groups after the big mixed ones) from being over-filled early. With many groups the
    proportions land within a group's size of the target.
    """
    fractions = np.asarray(parse_fractions(fractions), dtype=float)
    out = df.copy()
    if out.empty:
        return out
    groups = out[group_col].astype(str).where(out[group_col].astype(str) != "", out["path"].astype(str))
    strata = out[stratify].astype(str) if stratify else pd.Series("all", index=out.index)
    counts = pd.crosstab(groups, strata)  # groups x strata
    order = _seeded_order(counts.to_numpy().sum(axis=1), seed)
    split_of_group = _greedy_assign(counts.to_numpy(dtype=float)[order], fractions)
    mapping = pd.Series(np.asarray(SPLITS)[split_of_group], index=counts.index[order])
    out["split"] = groups.map(mapping).to_numpy()
    out["split_level"] = "group"
    return out


def group_kfold_split(df: pd.DataFrame, folds: int = 5, fold: int = 0, seed: int = 0,
                      stratify: str | None = "method", group_col: str = "group") -> pd.DataFrame:
    """Leave-groups-out cross-validation: groups dealt into `folds` balanced folds (same greedy as
    group_split); fold `fold` is the test split, the next one validation, the rest training. Running every
    `fold` in range(folds) with one seed gives each group exactly one turn as test data."""
    if folds < 3 or not 0 <= fold < folds:
        raise ConfigError(f"k-fold split needs folds >= 3 and 0 <= fold < folds (got folds={folds}, fold={fold})")
    out = df.copy()
    if out.empty:
        return out
    groups = out[group_col].astype(str).where(out[group_col].astype(str) != "", out["path"].astype(str))
    strata = out[stratify].astype(str) if stratify else pd.Series("all", index=out.index)
    counts = pd.crosstab(groups, strata)
    order = _seeded_order(counts.to_numpy().sum(axis=1), seed)
    fold_of_group = _greedy_assign(counts.to_numpy(dtype=float)[order], np.full(folds, 1.0 / folds))
    role = np.full(folds, "train", dtype=object)
    role[fold], role[(fold + 1) % folds] = "test", "val"
    mapping = pd.Series(role[fold_of_group], index=counts.index[order])
    out["split"] = groups.map(mapping).to_numpy()
    out["split_level"] = "group"
    return out


def _seeded_order(sizes: np.ndarray, seed: int) -> np.ndarray:
    """A random permutation (seeded), then stably sorted by size, largest first: big groups are placed while
    every split still has room, and equal-sized groups come in a seed-dependent order."""
    perm = np.random.default_rng(seed).permutation(len(sizes))
    return perm[np.argsort(-sizes[perm], kind="stable")]


def _greedy_assign(counts: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Each group (row of per-stratum counts, in the order given) to one split index."""
    totals = counts.sum(axis=0)
    weight = (1.0 / np.maximum(totals, 1.0)).tolist()  # each stratum measured as a fraction of its size
    open_splits = [int(s) for s in np.flatnonzero(fractions > 0)]
    share = [float(f) / float(fractions.sum()) for f in fractions]
    # Plain Python lists: for a handful of strata they beat numpy's per-call overhead by far.
    current = [[0.0] * counts.shape[1] for _ in fractions]
    placed = [0.0] * counts.shape[1]
    chosen = np.empty(len(counts), dtype=np.int64)
    for g, row in enumerate(counts.tolist()):
        nz = [(k, c * weight[k]) for k, c in enumerate(row) if c]
        best, best_cost = open_splits[0], None
        for s in open_splits:
            # Squared distance of every split from its share of what is placed so far (this group included),
            # over the strata this group touches: the others do not depend on the choice.
            cost = 0.0
            for k, c in nz:
                total = placed[k] + c
                for s2 in open_splits:
                    dev = current[s2][k] + (c if s2 == s else 0.0) - share[s2] * total
                    cost += dev * dev
            if best_cost is None or cost < best_cost:
                best, best_cost = s, cost
        for k, c in nz:
            current[best][k] += c
            placed[k] += c
        chosen[g] = best
    return chosen


def official_split(df: pd.DataFrame, fractions=DEFAULT_FRACTIONS, seed: int = 0,
                   stratify: str | None = "method") -> pd.DataFrame:
    """Keep the published assignment; split the rows it leaves out by group (see the module notes)."""
    out = df.copy()
    official = out["split"].isin(SPLITS)
    if not official.any():
        return group_split(out, fractions, seed, stratify)
    out.loc[official, "split_level"] = "official"
    rest = ~official
    if rest.any():
        defined = set(out.loc[official, "split"])
        fr = np.asarray(parse_fractions(fractions), dtype=float)
        if defined != set(SPLITS):
            fr = np.where([s in defined for s in SPLITS], 0.0, fr)
            if fr.sum() == 0:
                fr = np.where([s in defined for s in SPLITS], 0.0, 1.0)
            fr = fr / fr.sum()
        filled = group_split(out[rest], tuple(fr), seed, stratify)
        out.loc[rest, "split"] = filled["split"]
        out.loc[rest, "split_level"] = "group"
    return out


def seed001_split(df: pd.DataFrame, seed: int = SEED001_SEED, fractions=SEED001_FRACTIONS,
                  per_class: int | None = None) -> pd.DataFrame:
    """Seed 001's protocol: `per_class` rows of each label (default: the smaller class's count) drawn at
    random, then each class cut train / val / test at random. Returns only the drawn rows."""
    fractions = parse_fractions(fractions)
    rng = np.random.default_rng(seed)
    available = df["label"].value_counts()
    if set(available.index) != {"real", "fake"}:
        raise ConfigError("the seed001 split needs both real and fake rows")
    n = int(available.min() if per_class is None else min(per_class, available.min()))
    parts = []
    for label in ("real", "fake"):
        idx = df.index[df["label"] == label].to_numpy()
        picked = df.loc[rng.choice(idx, size=n, replace=False)].copy()
        n_train, n_val = round(n * fractions[0]), round(n * fractions[1])
        picked["split"] = ["train"] * n_train + ["val"] * n_val + ["test"] * (n - n_train - n_val)
        parts.append(picked)
    out = pd.concat(parts)
    out = out.loc[rng.permutation(out.index)] if len(out) else out
    out["split_level"] = "image"
    return out.reset_index(drop=True)


def group_leaks(df: pd.DataFrame, group_col: str = "group") -> pd.Series:
    """Groups found in more than one split (index: group, value: the splits joined by '+'); empty when none."""
    assigned = df[df["split"].isin(SPLITS)]
    per_group = assigned.groupby(group_col)["split"].agg(lambda s: "+".join(sorted(set(s))))
    return per_group[per_group.str.contains("+", regex=False)]


def split_table(df: pd.DataFrame, by: str = "method") -> pd.DataFrame:
    """Rows per split (columns) and `by` value (index), with a total row: what the CLI prints."""
    table = pd.crosstab(df[by], df["split"].replace("", "(none)"), margins=True, margins_name="total")
    return table
