"""Train / validation / test assignment of a snapshot's items (docs/datasets.md, "Split"). Pure numpy over integer
codes, so it is tested without a database and costs a few bytes per item.

Inputs are per item: `order`, its rank in a stable order that does not depend on how the rows came out of the
database (the build uses the external id's rank); `strata`, an integer code of its stratum (equal codes: same
stratum); `groups`, an integer code of its group-by value, -1 for none. The same inputs and seed always give the
same assignment.

- Without group_by, each stratum's items (in `order`) are shuffled by `np.random.default_rng(seed)`, strata taken in
  code order, and the first x_train go to train, the next x_validation to validation, the rest to test. The counts x
  come from `apportion`: each within 1 of the stratum's share, and the totals within 1 of the whole's share (equal
  to it where the share is a whole number), summing to the number of items.
- With group_by, whole groups are assigned (an item without the field is a group of its own): a group's stratum is
  its most common one, each stratum's groups are shuffled by the seed and each goes to the split furthest below
  its target in items (a split with ratio 0 gets nothing). Totals are then as close as the group sizes allow.
"""

from __future__ import annotations

import numpy as np

SPLIT_NAMES = ("train", "validation", "test")


def apportion(sizes: list[int] | np.ndarray, ratios: tuple[float, float, float]) -> np.ndarray:
    """(strata, 3) counts: row k sums to sizes[k] and each count is within 1 of sizes[k] * ratio; each column's
    running total stays within 1 of its running share, so the totals are the whole's shares rounded.

    Each stratum gets the floors of its shares; its remaining items go to the splits with a fractional share that
    are furthest behind their running share (ties: train, validation, test). With three splits this keeps every
    running difference inside (-1, 1) (the argument is in docs/datasets.md)."""
    r = np.asarray(ratios, dtype=np.float64)
    out = np.zeros((len(sizes), 3), dtype=np.int64)
    behind = np.zeros(3)  # running share minus running count, per split
    for k, n in enumerate(sizes):
        quota = np.round(n * r, 9)  # 10 * 0.7 is 7.000000000000001: not a fraction of an item
        counts = np.floor(quota).astype(np.int64)
        frac = quota - counts
        extra = int(n - counts.sum())
        ahead = behind + frac
        if extra > 0:
            eligible = np.flatnonzero(frac > 0)
            if len(eligible) < extra:  # rounding left a share without a fraction: any split may take it
                eligible = np.flatnonzero(r > 0)
            ranked = eligible[np.argsort(-ahead[eligible], kind="stable")]
            counts[ranked[:extra]] += 1
        out[k] = counts
        behind = behind + quota - counts
    return out


def _blocks(keys: np.ndarray, order: np.ndarray) -> list[np.ndarray]:
    """Indexes grouped by key (keys ascending), each block in `order`."""
    idx = np.lexsort((order, keys))
    if not len(idx):
        return []
    cuts = np.flatnonzero(np.diff(keys[idx])) + 1
    return np.split(idx, cuts)


def split_assign(
    *,
    order: np.ndarray,
    strata: np.ndarray,
    groups: np.ndarray | None,
    ratios: tuple[float, float, float],
    seed: int,
    stratify: bool = True,
) -> np.ndarray:
    """Per item, its split: 0 train, 1 validation, 2 test (int8)."""
    n = len(order)
    order = np.asarray(order, dtype=np.int64)
    strata = np.asarray(strata, dtype=np.int64) if stratify else np.zeros(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    out = np.zeros(n, dtype=np.int8)
    if n == 0:
        return out
    if groups is None:
        blocks = _blocks(strata, order)
        counts = apportion([len(b) for b in blocks], ratios)
        for block, (x0, x1, _x2) in zip(blocks, counts, strict=True):
            shuffled = block[rng.permutation(len(block))]
            out[shuffled[x0 : x0 + x1]] = 1
            out[shuffled[x0 + x1 :]] = 2
        return out
    return _split_groups(order=order, strata=strata, groups=np.asarray(groups, dtype=np.int64), ratios=ratios, rng=rng)


def _split_groups(
    *, order: np.ndarray, strata: np.ndarray, groups: np.ndarray, ratios: tuple[float, float, float], rng
) -> np.ndarray:
    g = groups.copy()
    alone = g < 0
    g[alone] = g.max(initial=-1) + 1 + np.arange(int(alone.sum()))
    _, inv = np.unique(g, return_inverse=True)
    inv = inv.reshape(-1)
    n_groups = int(inv.max()) + 1
    size = np.bincount(inv, minlength=n_groups)
    first = np.full(n_groups, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, inv, order)  # a group's place in the stable order: its first item's
    # each group's most common stratum (ties: the smallest code)
    width = int(strata.max()) + 1
    pairs, pair_n = np.unique(inv.astype(np.int64) * width + strata, return_counts=True)
    pair_group, pair_stratum = pairs // width, pairs % width
    best = np.lexsort((pair_stratum, -pair_n, pair_group))
    head = best[np.r_[True, pair_group[best][1:] != pair_group[best][:-1]]]
    group_stratum = np.empty(n_groups, dtype=np.int64)
    group_stratum[pair_group[head]] = pair_stratum[head]

    r = [float(x) for x in ratios]
    group_split = np.zeros(n_groups, dtype=np.int8)
    for block in _blocks(group_stratum, first):
        members = block[rng.permutation(len(block))]
        total = float(size[members].sum())
        target = [total * x for x in r]
        assigned = [0.0, 0.0, 0.0]
        for gi in members.tolist():
            # the split furthest below its target; a split with ratio 0 never takes a group
            s = max((i for i in range(3) if r[i] > 0), key=lambda i: (target[i] - assigned[i], -i))
            group_split[gi] = s
            assigned[s] += size[gi]
    return group_split[inv]
