"""The bias view by slice (issue 13, point 7) against krippendorff, statsmodels (Wilson, the two-proportion
z-test and Holm) and numpy called directly on fixed data."""

from __future__ import annotations

import json
import zlib
from typing import Any

import krippendorff
import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests  # type: ignore[import-untyped]
from statsmodels.stats.proportion import proportion_confint, proportions_ztest  # type: ignore[import-untyped]

from annotation.models import Annotation, FinalLabel, Item
from annotation.models.item import FinalLabelSource, ItemStatus
from annotation.quality.agreement import alpha_from_counts, load_ratings
from annotation.quality.slices import (
    BOOTSTRAP_DRAWS,
    MAX_SLICES,
    SEED,
    _ItemAlpha,
    bootstrap_interval,
    holm_reject,
    resample_weights,
    slice_structure,
    slices_section,
)
from annotation.quality.window import Window
from modelsvc.models import ModelVersion, VersionKind, VersionStatus
from tests.quality.helpers import annotate, project_with, users

pytestmark = pytest.mark.django_db


def make_items(project, rows: list[dict[str, Any]], *, gold: bool = False, prefix: str = "i") -> list[Item]:
    made = Item.objects.bulk_create(
        [Item(project=project, external_id=f"{prefix}{i}", data=row, is_gold=gold) for i, row in enumerate(rows)]
    )
    return list(Item.objects.filter(pk__in=[i.pk for i in made]).order_by("id"))


def wilson(successes: float, n: int) -> list[float]:
    return list(proportion_confint(successes, n, alpha=0.05, method="wilson"))


def active(project, number: int = 1) -> ModelVersion:
    return ModelVersion.objects.create(
        project=project,
        version=number,
        kind=VersionKind.FINE_TUNED,
        base_model="test",
        labels=[{"name": n} for n in project.label_names],
        task_type=project.task_type,
        status=VersionStatus.ACTIVE,
    )


def reference_flags(counts: dict[str, tuple[int, int]], total: tuple[int, int]) -> set[str]:
    """The slices a one-sided two-proportion z-test against the rest, Holm-corrected, finds worse."""
    names, pvalues = [], []
    for name, (s, n) in counts.items():
        _, p = proportions_ztest([s, total[0] - s], [n, total[1] - n], alternative="smaller")
        names.append(name)
        pvalues.append(p)
    reject = multipletests(pvalues, alpha=0.05, method="holm")[0]
    return {name for name, r in zip(names, reject, strict=True) if r}


def rows_by_value(section: dict[str, Any], field: str) -> dict[str, dict[str, Any]]:
    return {row["value"]: row for row in section[field]["rows"]}


# ---------------------------------------------------------------- slices and their n


def test_no_items_no_slices():
    assert slices_section(project_with(), Window()) == {}


def test_metadata_fields_text_length_quartiles_and_truncation():
    project = project_with()
    rows: list[dict[str, Any]] = []
    lengths = [1, 2, 3, 4, 5, 6, 7, 8] * 3
    for i, length in enumerate(lengths):
        row: dict[str, Any] = {"text": "x" * length, "lang": "en" if i % 3 else "de", "score": i % 2 == 0}
        # 21 distinct sources: v00 on four items, v01..v20 on one each
        row["source"] = "v00" if i < 4 else f"v{i - 3:02d}"
        rows.append(row)
    rows[0]["note"] = None
    make_items(project, rows)

    section = slices_section(project, Window())
    assert sorted(section) == ["lang", "note", "score", "source", "text_length"]
    assert section["lang"] == {
        "truncated": False,
        "rows": [
            {**EMPTY, "value": "en", "n": 16},
            {**EMPTY, "value": "de", "n": 8},
        ],
    }
    assert [(r["value"], r["n"]) for r in section["score"]["rows"]] == [("false", 12), ("true", 12)]
    assert [(r["value"], r["n"]) for r in section["note"]["rows"]] == [("null", 1)]
    # more than MAX_SLICES values: the largest, then ties by value; the last value is dropped
    source = section["source"]
    assert source["truncated"] is True
    assert [r["value"] for r in source["rows"]] == ["v00"] + [f"v{i:02d}" for i in range(1, MAX_SLICES)]
    assert source["rows"][0]["n"] == 4
    # text_length: PostgreSQL's percentile_disc is numpy's inverted_cdf percentile
    q1, q2, q3 = np.percentile(lengths, [25, 50, 75], method="inverted_cdf").astype(int).tolist()
    assert (q1, q2, q3) == (2, 4, 6)
    assert [(r["value"], r["n"]) for r in section["text_length"]["rows"]] == [
        ("1-2", 6),
        ("3-4", 6),
        ("5-6", 6),
        ("7-8", 6),
    ]


EMPTY = {
    "agreement": None,
    "agreement_ci": [None, None],
    "gold_accuracy": None,
    "gold_ci": [None, None],
    "model_accuracy": None,
    "model_ci": [None, None],
    "flagged": [],
}


def test_equal_quartiles_leave_empty_buckets_out():
    project = project_with()
    make_items(project, [{"text": "abcd"}] * 5 + [{"text": "abcdefgh"}])
    assert [(r["value"], r["n"]) for r in slices_section(project, Window())["text_length"]["rows"]] == [
        ("4-4", 5),
        ("5-8", 1),
    ]


# ---------------------------------------------------------------- agreement and its bootstrap


def agreement_project():
    project = project_with(annotations_per_item=3)
    people = users(project, "ann", "bob", "cat")
    # per item: its region and the three annotators' labels (None: not rated)
    table: list[tuple[str, list[str | None]]] = [
        ("north", ["sports", "sports", "sports"]),
        ("north", ["politics", "politics", None]),
        ("north", ["tech", "tech", "tech"]),
        ("north", ["sports", "sports", "politics"]),
        ("north", ["politics", None, "politics"]),
        ("south", ["sports", "politics", "tech"]),
        ("south", ["tech", "sports", None]),
        ("south", ["politics", "politics", "sports"]),
        ("south", [None, "tech", "politics"]),
        ("west", ["sports", "sports", None]),  # one item: no alpha
    ]
    made = make_items(project, [{"text": f"text {i}", "region": r} for i, (r, _) in enumerate(table)])
    for item, (_, labels) in zip(made, table, strict=True):
        for name, label in zip(["ann", "bob", "cat"], labels, strict=True):
            if label is not None:
                annotate(item, people[name], {"label": label})
    return project, table


def test_slice_agreement_is_krippendorffs_alpha_over_its_items():
    project, table = agreement_project()
    section = rows_by_value(slices_section(project, Window()), "region")
    for region in ("north", "south"):
        data = [
            [np.nan if v is None else ["sports", "politics", "tech"].index(v) for v in labels] for r, labels in table
        ]
        data = [row for row, (r, _) in zip(data, table, strict=True) if r == region]
        expected = krippendorff.alpha(reliability_data=np.array(data).T, level_of_measurement="nominal")
        assert section[region]["agreement"] == pytest.approx(expected)
        lo, hi = section[region]["agreement_ci"]
        assert lo <= hi
    assert section["north"]["agreement"] > section["south"]["agreement"]
    assert section["west"]["agreement"] is None
    assert section["west"]["agreement_ci"] == [None, None]
    # seeded: the same data gives the same interval
    again = rows_by_value(slices_section(project, Window()), "region")
    assert again["north"]["agreement_ci"] == section["north"]["agreement_ci"]


def test_bootstrap_interval_is_the_percentiles_of_krippendorff_on_each_resample():
    project, _ = agreement_project()
    ratings = load_ratings(project, Window())
    counts = ratings.value_counts()
    rows = np.arange(len(ratings.item_ids))
    seed = (SEED, project.pk, zlib.crc32(b"region\x00north"))
    # the reference: the same resamples (same generator, same draws), each one's alpha by the library
    rng = np.random.default_rng(list(seed))
    k = len(rows)
    items = _ItemAlpha(ratings)
    assert 3 * len(np.unique(items.features[rows], axis=0)) > k  # mostly distinct items: drawn by index
    weights = resample_weights(rng, k, 200)
    assert (weights.sum(axis=1) == k).all()
    alphas = [alpha_from_counts(np.repeat(counts[rows], w.astype(int), axis=0)) for w in weights]
    expected = np.percentile([a for a in alphas if a is not None], [2.5, 97.5])
    assert bootstrap_interval(items, rows, seed, draws=200) == pytest.approx(list(expected))
    assert BOOTSTRAP_DRAWS == 1000


def test_bootstrap_over_repeated_patterns_draws_a_multinomial_of_them():
    project = project_with(annotations_per_item=2)
    people = users(project, "ann", "bob")
    pairs = [("sports", "sports")] * 14 + [("sports", "politics")] * 5 + [("tech", "tech")] * 11
    made = make_items(project, [{"text": f"t{i}"} for i in range(len(pairs))])
    for item, (a, b) in zip(made, pairs, strict=True):
        annotate(item, people["ann"], {"label": a})
        annotate(item, people["bob"], {"label": b})
    ratings = load_ratings(project, Window())
    items = _ItemAlpha(ratings)
    rows = np.arange(len(ratings.item_ids))
    k = len(rows)
    patterns, first, counts = np.unique(items.features[rows], axis=0, return_index=True, return_counts=True)
    assert len(patterns) == 3  # three kinds of item: 3 * 3 <= 30, so patterns are drawn
    # the reference: the same multinomial draws over the patterns, each resample rebuilt from one item of each
    # pattern repeated, its alpha by the library
    seed = (SEED, 1, 2)
    weights = np.random.default_rng(list(seed)).multinomial(k, counts / k, size=300)
    value_counts = ratings.value_counts()
    reference = [alpha_from_counts(np.repeat(value_counts[first], w, axis=0)) for w in weights]
    finite = [a for a in reference if a is not None]
    expected = np.percentile(finite, [2.5, 97.5])
    assert bootstrap_interval(items, rows, seed, draws=300) == pytest.approx(list(expected))


@pytest.mark.parametrize("task_type", ["classification", "multilabel", "spans"])
def test_per_item_coincidences_give_the_librarys_alpha(task_type):
    labels = ("PER", "LOC") if task_type == "spans" else ("sports", "politics", "tech")
    project = project_with(task_type, labels=labels, annotations_per_item=3)
    people = users(project, "ann", "bob", "cat")
    texts = ["Ada went to Rome", "Bob and Ada", "in Paris today", "nothing here"]
    made = make_items(project, [{"text": t} for t in texts])
    rng = np.random.default_rng(11)
    for item in made:
        for name in ("ann", "bob", "cat"):
            if task_type == "classification":
                value: dict[str, Any] = {"label": str(rng.choice(labels))}
            elif task_type == "multilabel":
                value = {"labels": sorted({str(x) for x in rng.choice(labels, size=rng.integers(0, 3))})}
            else:
                first = item.data["text"].split()[0]
                value = {"spans": [{"start": 0, "end": len(first), "label": str(rng.choice(labels))}]}
            annotate(item, people[name], value)
    ratings = load_ratings(project, Window())
    items = _ItemAlpha(ratings)
    rows = np.arange(len(ratings.item_ids))
    features = items.features[rows]
    got = items.alphas(features, np.ones((1, len(rows))))[0]
    assert got == pytest.approx(alpha_from_counts(ratings.value_counts(), ratings.distance))
    # and a weighted resample: the items repeated
    w = np.array([2.0, 0.0, 1.0, 3.0])
    repeated = np.repeat(np.arange(len(rows)), w.astype(int))
    units = np.concatenate([np.flatnonzero(ratings.unit_item == i) for i in repeated])
    expected = alpha_from_counts(ratings.value_counts()[units], ratings.distance)
    assert items.alphas(features, w[None, :])[0] == pytest.approx(expected)
    # the distinct items, found once for every slice, are numpy's unique rows in numpy's order
    patterns, inverse = np.unique(items.features, axis=0, return_inverse=True)
    assert np.array_equal(items.patterns, patterns)
    assert np.array_equal(items.pattern_of, np.asarray(inverse).reshape(-1))
    assert np.array_equal(items.patterns[items.pattern_of], items.features)


# ---------------------------------------------------------------- gold and model accuracy, flags


def accuracy_project():
    """Three channels of 40 decided items each; the active version's first suggestion is right on 38 (web),
    36 (mail) and 12 (sms) of them. Gold items: 10 per channel, answered by two annotators: right on 18 of 20
    (web), 17 (mail), 16 (sms): sms is not clearly worse there."""
    project = project_with()
    active(project)
    people = users(project, "ann", "bob")
    right = {"web": 38, "mail": 36, "sms": 12}
    gold_right = {"web": 18, "mail": 17, "sms": 16}
    channels = list(right)
    decided = make_items(project, [{"text": f"t{i}", "channel": c} for c in channels for i in range(40)])
    annotations, finals = [], []
    for n, item in enumerate(decided):
        channel, i = item.data["channel"], n % 40
        suggested = "sports" if i < right[channel] else "politics"
        served = {"model_version": 1, "kind": "fine_tuned", "value": {"label": suggested}, "confidence": 0.9}
        annotations.append(Annotation(item=item, annotator=people["ann"], value={"label": "sports"}, suggestion=served))
        finals.append(FinalLabel(item=item, value={"label": "sports"}, source=FinalLabelSource.CONSENSUS))
    gold = make_items(project, [{"text": f"g{i}", "channel": c} for c in channels for i in range(10)], prefix="g")
    Item.objects.filter(pk__in=[g.pk for g in gold]).update(is_gold=True, status=ItemStatus.APPROVED)
    for n, item in enumerate(gold):
        channel, i = item.data["channel"], n % 10
        finals.append(FinalLabel(item=item, value={"label": "tech"}, source=FinalLabelSource.GOLD))
        for j, name in enumerate(("ann", "bob")):
            answer = "tech" if 2 * i + j < gold_right[channel] else "sports"
            annotations.append(Annotation(item=item, annotator=people[name], value={"label": answer}))
    Annotation.objects.bulk_create(annotations)
    FinalLabel.objects.bulk_create(finals)
    return project, right, gold_right


def test_gold_and_model_accuracy_per_slice_with_wilson_intervals_and_holm_flags():
    project, right, gold_right = accuracy_project()
    section = slices_section(project, Window())
    rows = rows_by_value(section, "channel")
    for channel in right:
        row = rows[channel]
        assert row["n"] == 50
        assert row["model_accuracy"] == pytest.approx(right[channel] / 40)
        assert row["model_ci"] == pytest.approx(wilson(right[channel], 40))
        assert row["gold_accuracy"] == pytest.approx(gold_right[channel] / 20)
        assert row["gold_ci"] == pytest.approx(wilson(gold_right[channel], 20))
    model_expected = reference_flags({c: (right[c], 40) for c in right}, (sum(right.values()), 120))
    gold_expected = reference_flags({c: (gold_right[c], 20) for c in gold_right}, (sum(gold_right.values()), 60))
    assert model_expected == {"sms"}  # the clearly worse slice
    assert gold_expected == set()  # a fair one: 16 of 20 is not significantly below 35 of 40
    assert {c for c, row in rows.items() if "model_accuracy" in row["flagged"]} == model_expected
    assert {c for c, row in rows.items() if "gold_accuracy" in row["flagged"]} == gold_expected
    assert rows["sms"]["flagged"] == ["model_accuracy"]


def test_small_slices_are_not_tested_and_identical_results_never_flag():
    project = project_with()
    active(project)
    ann = users(project, "ann")["ann"]
    made = make_items(project, [{"text": "a", "kind": "x"}, {"text": "b", "kind": "y"}, {"text": "c", "kind": "y"}])
    served = {"model_version": 1, "kind": "fine_tuned", "value": {"label": "sports"}, "confidence": 0.9}
    for item, truth in zip(made, ["politics", "sports", "sports"], strict=True):
        annotate(item, ann, {"label": truth}, suggestion=served)
        FinalLabel.objects.create(item=item, value={"label": truth}, source=FinalLabelSource.CONSENSUS)
    rows = rows_by_value(slices_section(project, Window()), "kind")
    # x: one trial (wrong), not tested; y: 2 of 2 right, and its rest has 1 trial: not tested either
    assert rows["x"]["model_accuracy"] == 0.0
    assert rows["x"]["flagged"] == []
    assert rows["y"]["flagged"] == []


def test_json_values_are_stringified_as_postgres_writes_them():
    project = project_with()
    make_items(project, [{"text": "a", "meta": {"k": [1, 2]}, "n": 1.5}, {"text": "b", "meta": None, "n": 2}])
    section = slices_section(project, Window())
    assert sorted(r["value"] for r in section["meta"]["rows"]) == sorted([json.dumps({"k": [1, 2]}), "null"])
    assert sorted(r["value"] for r in section["n"]["rows"]) == ["1.5", "2"]


def test_text_length_quartiles_are_postgres_percentile_disc():
    from django.db import connection

    project = project_with()
    rng = np.random.default_rng(2)
    lengths = rng.integers(0, 60, size=37).tolist()
    make_items(project, [{"text": "y" * n} for n in lengths])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT percentile_disc(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY length(data->>'text')) "
            "FROM annotation_item WHERE project_id = %s",
            [project.pk],
        )
        q1, q2, q3 = cursor.fetchone()[0]
    bounds = [(min(lengths), q1), (q1 + 1, q2), (q2 + 1, q3), (q3 + 1, max(lengths))]
    expected = [(f"{lo}-{hi}", sum(lo <= n <= hi for n in lengths)) for lo, hi in bounds]
    got = [(r["value"], r["n"]) for r in slices_section(project, Window())["text_length"]["rows"]]
    assert got == [(label, n) for label, n in expected if n]


def test_gold_answers_count_from_the_members_gold_since():
    from annotation.models import Membership
    from tests.quality.helpers import DAY0, days, final

    project = project_with()
    people = users(project, "ann", "bob")
    (gold,) = make_items(project, [{"text": "g", "kind": "x"}], prefix="g")
    final(gold, {"label": "tech"}, FinalLabelSource.GOLD)
    annotate(gold, people["ann"], {"label": "sports"}, at=DAY0)  # before ann's un-pause: not counted
    annotate(gold, people["bob"], {"label": "tech"}, at=DAY0)
    Membership.objects.filter(project=project, user=people["ann"]).update(gold_since=DAY0 + days(1))
    row = rows_by_value(slices_section(project, Window()), "kind")["x"]
    assert row["gold_accuracy"] == 1.0
    assert row["gold_ci"] == pytest.approx(wilson(1, 1))


# ---------------------------------------------------------------- the project-wide part, computed once


def test_the_project_wide_part_is_plain_json_and_given_it_no_item_is_scanned(monkeypatch):
    project, _ = agreement_project()
    make_items(project, [{"text": "a much longer text than the others", "region": "east"}], prefix="x")
    structure = slice_structure(project)
    assert json.loads(json.dumps(structure)) == structure
    assert structure["fields"]["region"]["truncated"] is False
    assert structure["fields"]["region"]["slices"][0] == ["north", 5]
    expected = slices_section(project, Window())
    assert structure["lengths"]["slices"] == [[r["value"], r["n"]] for r in expected["text_length"]["rows"]]

    def scan(project):
        raise AssertionError("a scan of every item")

    monkeypatch.setattr("annotation.quality.slices._field_slices", scan)
    monkeypatch.setattr("annotation.quality.slices._length_buckets", scan)
    cached = json.loads(json.dumps(structure))  # as the cache gives it back
    assert slices_section(project, Window(), structure=cached) == expected
    # a range keeps the project's n and touches only its own items
    day = Item.objects.filter(project=project).order_by("id")[0].created_at.date()
    ranged = slices_section(project, Window(since=day, until=day), structure=cached)
    assert {r["value"]: r["n"] for r in ranged["region"]["rows"]} == {"north": 5, "south": 4, "west": 1, "east": 1}


def test_a_range_looks_up_only_the_items_that_carry_a_figure():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    project, _ = agreement_project()
    make_items(project, [{"text": f"unrated {i}", "region": "north"} for i in range(30)], prefix="u")
    structure = slice_structure(project)
    with CaptureQueriesContext(connection) as queries:
        slices_section(project, Window(), structure=structure)
    item_reads = [q["sql"] for q in queries if "jsonb_each_text" in q["sql"] or "length(" in q["sql"]]
    assert item_reads
    assert all("ANY(" in sql for sql in item_reads)


def test_slices_below_two_rated_items_get_no_bootstrap(monkeypatch):
    project, _ = agreement_project()
    sizes = []
    real = bootstrap_interval

    def counting(items, rows, seed, draws=BOOTSTRAP_DRAWS):
        sizes.append(len(rows))
        return real(items, rows, seed, draws)

    monkeypatch.setattr("annotation.quality.slices.bootstrap_interval", counting)
    section = rows_by_value(slices_section(project, Window()), "region")
    assert section["west"]["agreement_ci"] == [None, None]
    assert sizes
    assert min(sizes) >= 2


def test_holm_decides_as_statsmodels_multipletests():
    rng = np.random.default_rng(5)
    cases = [[], [0.01], [0.06], [0.01, 0.02, 0.03], [0.05 / 3, 0.05 / 2, 0.05], [0.2, 0.001, 0.001, 0.02]]
    cases += [list(rng.random(m) ** 3) for m in (2, 3, 5, 20, 20, 20)]
    cases += [list(np.round(rng.random(20) * 0.05, 3)) for _ in range(20)]  # ties
    for pvalues in cases:
        expected = multipletests(pvalues, alpha=0.05, method="holm")[0] if pvalues else np.zeros(0, dtype=bool)
        assert holm_reject(pvalues).tolist() == list(expected), pvalues
