"""The split's properties: exact totals, each stratum's share within 1, groups never straddle two splits, the same
split for the same input and seed whatever the row order, another split for another seed."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.datasets.split import apportion, split_assign
from tests.conftest import make_project, make_user
from tests.datasets.helpers import build, item, label, rows

RATIOS = (0.8, 0.1, 0.1)


def _items(n: int, n_strata: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    strata = rng.choice(n_strata, size=n, p=np.linspace(1, 3, n_strata) / np.linspace(1, 3, n_strata).sum())
    return order, strata


def test_totals_are_exact():
    order, strata = _items(1000, 5)
    split = split_assign(order=order, strata=strata, groups=None, ratios=RATIOS, seed=0)
    assert np.bincount(split, minlength=3).tolist() == [800, 100, 100]
    split = split_assign(order=order[:7], strata=strata[:7], groups=None, ratios=(0.5, 0.3, 0.2), seed=0)
    counts = np.bincount(split, minlength=3)
    assert counts.sum() == 7
    assert all(abs(c - 7 * r) < 1 for c, r in zip(counts, (0.5, 0.3, 0.2), strict=True))


@pytest.mark.parametrize("seed", range(5))
def test_each_stratum_within_one_of_its_share(seed):
    order, strata = _items(997, 7, seed=seed)
    ratios = (0.7, 0.15, 0.15)
    split = split_assign(order=order, strata=strata, groups=None, ratios=ratios, seed=seed)
    for stratum in np.unique(strata):
        members = split[strata == stratum]
        for s, r in enumerate(ratios):
            assert abs(int((members == s).sum()) - len(members) * r) < 1, (stratum, s)
    assert all(abs(int((split == s).sum()) - 997 * r) < 1 for s, r in enumerate(ratios))


def test_apportion_rows_and_running_totals():
    rng = np.random.default_rng(3)
    for _ in range(200):
        sizes = rng.integers(0, 40, size=rng.integers(1, 30))
        raw = rng.random(3)
        ratios = tuple(raw / raw.sum())
        counts = apportion(sizes, ratios)
        assert (counts.sum(axis=1) == sizes).all()
        assert (np.abs(counts - np.outer(sizes, ratios)) < 1 + 1e-9).all()
        running = np.abs(np.cumsum(counts, axis=0) - np.outer(np.cumsum(sizes), ratios))
        assert (running < 1 + 1e-9).all()


def test_unstratified_split_ignores_the_strata():
    order, strata = _items(100, 2)
    one = split_assign(order=order, strata=strata, groups=None, ratios=RATIOS, seed=4, stratify=False)
    two = split_assign(order=order, strata=np.zeros(100, int), groups=None, ratios=RATIOS, seed=4)
    assert (one == two).all()
    assert np.bincount(one, minlength=3).tolist() == [80, 10, 10]


def test_groups_never_straddle():
    rng = np.random.default_rng(5)
    order, strata = _items(600, 3)
    groups = rng.integers(0, 80, size=600)
    groups[rng.random(600) < 0.2] = -1  # no group-by value: a group of its own
    split = split_assign(order=order, strata=strata, groups=groups, ratios=RATIOS, seed=2)
    for g in np.unique(groups[groups >= 0]):
        assert len(set(split[groups == g].tolist())) == 1, g
    counts = np.bincount(split, minlength=3)
    assert counts.sum() == 600
    assert counts[0] > counts[1] > 0
    assert counts[2] > 0
    # a split with ratio 0 gets no group
    none_to_test = split_assign(order=order, strata=strata, groups=groups, ratios=(0.9, 0.1, 0), seed=2)
    assert (none_to_test != 2).all()


def test_same_input_same_split_whatever_the_row_order():
    order, strata = _items(300, 4)
    groups = np.where(np.arange(300) % 3 == 0, -1, np.arange(300) // 6)
    for g in (None, groups):
        base = split_assign(order=order, strata=strata, groups=g, ratios=RATIOS, seed=11)
        again = split_assign(order=order, strata=strata, groups=g, ratios=RATIOS, seed=11)
        assert (base == again).all()
        shuffled = np.random.default_rng(0).permutation(300)  # the same items, handed in another order
        moved = split_assign(
            order=order[shuffled],
            strata=strata[shuffled],
            groups=None if g is None else g[shuffled],
            ratios=RATIOS,
            seed=11,
        )
        assert (moved == base[shuffled]).all()
        other = split_assign(order=order, strata=strata, groups=g, ratios=RATIOS, seed=12)
        assert (other != base).any()


def test_empty():
    assert len(split_assign(order=np.zeros(0), strata=np.zeros(0), groups=None, ratios=RATIOS, seed=0)) == 0


@pytest.mark.django_db
def test_a_build_splits_the_same_whatever_the_insertion_order():
    """Two projects with the same items inserted in opposite orders (so other item ids): each item lands in the same
    split, stratified by its label, and whole groups (`source`) stay together."""
    manager, ann = make_user(), make_user()
    results = []
    for names in (range(60), reversed(range(60))):
        project = make_project(manager)
        for n in names:
            it = item(project, f"e{n:02d}", source=f"src{n // 4}" if n % 5 else None)
            value = {"label": ("sports", "politics", "tech")[n % 3]}
            label(it, value, (ann, value))
        snapshot = build(project, manager, split={"seed": 3, "group_by": "source"})
        plain = build(project, manager, split={"seed": 3})
        results.append(({r["external_id"]: r["split"] for r in rows(snapshot)}, rows(plain), snapshot, plain))
    (grouped_a, plain_a, snap_a, _), (grouped_b, plain_b, _, plain_snap_b) = results
    assert grouped_a == grouped_b
    assert {r["external_id"]: r["split"] for r in plain_a} == {r["external_id"]: r["split"] for r in plain_b}
    assert plain_snap_b.splits == {"train": 48, "validation": 6, "test": 6}
    for name in ("sports", "politics", "tech"):  # 20 of each: 16 / 2 / 2
        assert [
            sum(1 for r in plain_a if r["label"] == name and r["split"] == s) for s in ("train", "validation", "test")
        ] == [16, 2, 2]
    by_source: dict[str, set[str]] = {}
    for r in rows(snap_a):
        if r["source"] is not None:
            by_source.setdefault(r["source"], set()).add(r["split"])
    assert all(len(splits) == 1 for splits in by_source.values())
    seeded = build(results[0][2].project, manager, split={"seed": 4})
    assert {r["external_id"]: r["split"] for r in rows(seeded)} != {r["external_id"]: r["split"] for r in plain_a}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("task_type", "values"),
    [
        ("multilabel", [{"labels": ["a", "b"]}, {"labels": ["b"]}]),
        (
            "spans",
            [
                {"spans": [{"start": 0, "end": 1, "label": "a"}, {"start": 2, "end": 3, "label": "b"}]},
                {"spans": [{"start": 0, "end": 1, "label": "b"}]},
            ],
        ),
    ],
)
def test_multilabel_and_span_strata(task_type, values):
    """The stratum of a multilabel item is its label set, of a span item the set of its spans' labels: 10 items of
    each of two strata at 0.5 / 0.5 split 5 / 5 within each."""
    manager, ann = make_user(), make_user()
    project = make_project(manager, task_type=task_type, labels=["a", "b"])
    for n in range(20):
        value = values[n % 2]
        label(item(project, f"e{n:02d}", "x y z"), value, (ann, value))
    for seed in range(4):  # an unstratified split would miss 5 / 5 for some seed (each time with p = 0.75)
        got = rows(build(project, manager, split={"train": 0.5, "validation": 0.5, "test": 0, "seed": seed}))
        for stratum in range(2):
            splits = [r["split"] for n, r in enumerate(got) if n % 2 == stratum]
            assert (splits.count("train"), splits.count("validation")) == (5, 5), (seed, stratum)
