"""Agreement figures against the reference libraries called directly on the same fixed data (issue 13, point 4)."""

from __future__ import annotations

import json
import warnings
from typing import Any

import krippendorff
import numpy as np
import pytest
from django.contrib.auth import get_user_model
from nltk.metrics.agreement import AnnotationTask
from nltk.metrics.distance import masi_distance
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from annotation.quality.agreement import (
    OUTSIDE,
    Ratings,
    _pairwise,
    agreement_section,
    alpha_from_counts,
    span_token_codes,
)
from annotation.quality.window import Window
from annotation.services.gold import span_token_labels as token_labels
from tests.quality.helpers import DAY0, annotate, days, items, project_with, table, users

pytestmark = pytest.mark.django_db

NAMES = ["ann", "bob", "cat"]
# items x annotators (None: not rated); "tech" is a label nobody uses
ROWS = [
    ["sports", "sports", "politics"],
    ["politics", "politics", None],
    [None, "sports", "sports"],
    ["sports", "politics", "politics"],
    ["politics", None, "politics"],
    ["sports", "sports", "sports"],
    ["politics", "sports", None],
]


# ---------------------------------------------------------------- references, straight from the libraries


def ref_alpha(rows: list[list[Any]]) -> float:
    """krippendorff.alpha, nominal, on reliability data (coders x units, nan where missing)."""
    values = sorted({v for r in rows for v in r if v is not None})
    code = {v: i for i, v in enumerate(values)}
    data = [[np.nan if r[j] is None else code[r[j]] for r in rows] for j in range(len(rows[0]))]
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def ref_fleiss(rows: list[list[Any]]) -> float:
    """statsmodels: aggregate_raters on items x raters of category codes, then fleiss_kappa."""
    values = sorted({v for r in rows for v in r})
    code = {v: i for i, v in enumerate(values)}
    counts, _ = aggregate_raters(np.array([[code[v] for v in r] for r in rows]))
    return float(fleiss_kappa(counts, method="fleiss"))


def ref_pairs(rows: list[list[Any]], names: list[str]) -> list[dict[str, Any]]:
    """sklearn's cohen_kappa_score for every pair of annotators over the rows both rated."""
    out = []
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            both = [(r[i], r[j]) for r in rows if r[i] is not None and r[j] is not None]
            if not both:
                continue
            kappa = None
            if len(both) >= 2:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    value = cohen_kappa_score([x for x, _ in both], [y for _, y in both])
                kappa = None if np.isnan(value) else float(value)
            out.append({"a": a, "b": names[j], "kappa": kappa, "n": len(both)})
    return out


def approx_pairs(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**p, "kappa": None if p["kappa"] is None else pytest.approx(p["kappa"], abs=1e-12)} for p in pairs]


def one_vs_rest(rows: list[list[Any]], label: str) -> list[list[Any]]:
    return [[None if v is None else v == label for v in r] for r in rows]


# ---------------------------------------------------------------- single-label


def test_classification_missing_values_against_the_libraries(django_assert_num_queries):
    project = project_with(annotations_per_item=3)
    made = table(project, ROWS, NAMES)
    people = {u.username: u for u in get_user_model().objects.filter(username__in=NAMES)}
    # none of these may change a figure: a gold item (rated with the unused label), rejected annotations (one on
    # an item of the table, one making an item look like it has two), an item with one counting annotation
    gold = items(project, ["gold text"], gold=True, prefix="g")[0]
    for name, v in zip(NAMES, ["tech", "sports", "tech"], strict=True):
        annotate(gold, people[name], {"label": v})
    annotate(made[1], people["cat"], {"label": "tech"}, counts=False)
    lone = items(project, ["lone"], prefix="l")[0]
    annotate(lone, people["ann"], {"label": "tech"})
    annotate(lone, people["bob"], {"label": "sports"}, counts=False)

    with django_assert_num_queries(2):
        got = agreement_section(project, Window())

    alpha = ref_alpha(ROWS)
    assert got["krippendorff_alpha"] == pytest.approx(alpha, abs=1e-12)
    assert got["n_items"] == 7
    # exactly k = 3 counting annotations: rows 0, 3 and 5
    assert got["fleiss_kappa"] == pytest.approx(ref_fleiss([ROWS[0], ROWS[3], ROWS[5]]), abs=1e-12)
    assert got["pairwise_cohen_kappa"] == approx_pairs(ref_pairs(ROWS, NAMES))
    assert [p["n"] for p in got["pairwise_cohen_kappa"]] == [5, 4, 4]
    assert got["per_label"] == {
        "sports": {"krippendorff_alpha": pytest.approx(ref_alpha(one_vs_rest(ROWS, "sports")), abs=1e-12)},
        "politics": {"krippendorff_alpha": pytest.approx(ref_alpha(one_vs_rest(ROWS, "politics")), abs=1e-12)},
        "tech": {"krippendorff_alpha": None},  # nobody used it (the gold item's and rejected "tech" are out)
    }
    assert got["over_time"] == [
        {"day": DAY0.date().isoformat(), "krippendorff_alpha": got["krippendorff_alpha"], "n_items": 7}
    ]
    # the figures are real disagreement, not a degenerate 1.0 or 0
    assert 0 < alpha < 1


def test_perfect_agreement_is_one():
    project = project_with(annotations_per_item=2)
    rows = [["sports", "sports"]] * 3
    table(project, rows, ["ann", "bob"])
    got = agreement_section(project, Window())
    # the library has no number here: one value in the domain
    with pytest.raises(ValueError):
        krippendorff.alpha(reliability_data=[[0, 0, 0], [0, 0, 0]], level_of_measurement="nominal")
    assert got["krippendorff_alpha"] == 1.0
    assert got["fleiss_kappa"] == 1.0
    assert got["per_label"] == {
        "sports": {"krippendorff_alpha": 1.0},
        "politics": {"krippendorff_alpha": None},
        "tech": {"krippendorff_alpha": None},
    }
    # Cohen's kappa is undefined for one category: sklearn says nan, we say null
    assert ref_pairs(rows, ["ann", "bob"])[0]["kappa"] is None
    assert got["pairwise_cohen_kappa"] == [{"a": "ann", "b": "bob", "kappa": None, "n": 3}]


def test_perfect_agreement_over_several_labels_is_the_librarys_one():
    project = project_with(annotations_per_item=2)
    rows = [["sports", "sports"], ["politics", "politics"], ["tech", "tech"]]
    table(project, rows, ["ann", "bob"])
    got = agreement_section(project, Window())
    assert ref_alpha(rows) == pytest.approx(1.0)
    assert got["krippendorff_alpha"] == pytest.approx(1.0)
    assert got["fleiss_kappa"] == pytest.approx(ref_fleiss(rows)) == pytest.approx(1.0)
    assert got["pairwise_cohen_kappa"] == [{"a": "ann", "b": "bob", "kappa": pytest.approx(1.0), "n": 3}]


EMPTY = {
    "krippendorff_alpha": None,
    "fleiss_kappa": None,
    "pairwise_cohen_kappa": [],
    "per_label": {name: {"krippendorff_alpha": None} for name in ("sports", "politics", "tech")},
    "n_items": 0,
    "over_time": [],
}


@pytest.mark.parametrize("task_type", ["classification", "multilabel", "spans"])
def test_no_annotations_is_all_null(task_type):
    project = project_with(task_type, annotations_per_item=2)
    items(project, ["a", "b"])
    assert agreement_section(project, Window()) == EMPTY


def test_one_annotator_is_all_null():
    project = project_with(annotations_per_item=2)
    table(project, [["sports"], ["politics"], ["sports"]], ["ann"])
    assert agreement_section(project, Window()) == EMPTY


def test_fewer_than_two_items_is_null():
    project = project_with(annotations_per_item=2)
    table(project, [["sports", "politics"]], ["ann", "bob"])
    got = agreement_section(project, Window())
    assert got == {
        **EMPTY,
        "n_items": 1,
        "pairwise_cohen_kappa": [{"a": "ann", "b": "bob", "kappa": None, "n": 1}],
        "over_time": [{"day": DAY0.date().isoformat(), "krippendorff_alpha": None, "n_items": 1}],
    }


def test_fleiss_null_with_fewer_than_two_full_items():
    project = project_with(annotations_per_item=3)
    rows = [["sports", "politics", "sports"], ["sports", "sports", None], [None, "politics", "politics"]]
    table(project, rows, NAMES)
    got = agreement_section(project, Window())
    assert got["fleiss_kappa"] is None  # only one item has k = 3
    assert got["krippendorff_alpha"] == pytest.approx(ref_alpha(rows), abs=1e-12)
    assert got["n_items"] == 3


def test_pairwise_equals_sklearn_on_random_overlaps():
    rng = np.random.default_rng(13)
    names = ["a1", "a2", "a3", "a4", "a5", "a6"]
    labels = ["sports", "politics", "tech"]
    rows: list[list[Any]] = []
    for _ in range(40):
        who = rng.choice(len(names), size=int(rng.integers(2, 5)), replace=False)
        rows.append([str(rng.choice(labels)) if j in who else None for j in range(len(names))])
    project = project_with(annotations_per_item=4)
    table(project, rows, names)
    got = agreement_section(project, Window())
    expected = ref_pairs(rows, names)
    assert len(expected) == 15
    assert got["pairwise_cohen_kappa"] == approx_pairs(expected)
    assert got["krippendorff_alpha"] == pytest.approx(ref_alpha(rows), abs=1e-12)
    full = [[v for v in r if v is not None] for r in rows if sum(v is not None for v in r) == 4]
    assert got["fleiss_kappa"] == pytest.approx(ref_fleiss(full), abs=1e-12)


# ---------------------------------------------------------------- window and days


def test_window_and_over_time_by_the_day_of_the_last_counting_annotation():
    project = project_with(annotations_per_item=3)
    people = users(project, "ann", "bob", "cat")
    made = items(project, [f"t{i}" for i in range(6)])
    # (item, [(who, label, day)]): day 0 items 0-2, day 1 items 3-5 (item 3 started on day 0)
    plan = [
        [("ann", "sports", 0), ("bob", "sports", 0)],
        [("ann", "politics", 0), ("bob", "sports", 0)],
        [("ann", "politics", 0), ("cat", "politics", 0)],
        [("ann", "sports", 0), ("bob", "politics", 1)],
        [("bob", "tech", 1), ("cat", "tech", 1)],
        [("ann", "sports", 1), ("cat", "politics", 1)],
    ]
    for item, ratings in zip(made, plan, strict=True):
        for who, label, day in ratings:
            annotate(item, people[who], {"label": label}, at=DAY0 + days(day))
    # a rejected annotation two days later moves nothing
    annotate(made[2], people["bob"], {"label": "tech"}, at=DAY0 + days(2), counts=False)

    def rows_of(idx: list[int]) -> list[list[Any]]:
        out = []
        for i in idx:
            row: list[Any] = [None, None, None]
            for who, label, _ in plan[i]:
                row[["ann", "bob", "cat"].index(who)] = label
            out.append(row)
        return out

    day0, day1 = DAY0.date(), (DAY0 + days(1)).date()
    whole = agreement_section(project, Window())
    assert whole["n_items"] == 6
    assert whole["krippendorff_alpha"] == pytest.approx(ref_alpha(rows_of(list(range(6)))), abs=1e-12)
    assert whole["over_time"] == [
        {"day": day0.isoformat(), "krippendorff_alpha": pytest.approx(ref_alpha(rows_of([0, 1, 2]))), "n_items": 3},
        {"day": day1.isoformat(), "krippendorff_alpha": pytest.approx(ref_alpha(rows_of([3, 4, 5]))), "n_items": 3},
    ]

    second = agreement_section(project, Window(since=day1, until=day1))
    assert second["n_items"] == 3
    # item 3 is in with both its annotations, the day-0 one included
    assert second["krippendorff_alpha"] == pytest.approx(ref_alpha(rows_of([3, 4, 5])), abs=1e-12)
    assert second["pairwise_cohen_kappa"] == approx_pairs(ref_pairs(rows_of([3, 4, 5]), ["ann", "bob", "cat"]))
    assert [d["day"] for d in second["over_time"]] == [day1.isoformat()]

    first = agreement_section(project, Window(until=day0))
    assert first["n_items"] == 3
    assert first["krippendorff_alpha"] == pytest.approx(ref_alpha(rows_of([0, 1, 2])), abs=1e-12)
    assert agreement_section(project, Window(since=day1 + days(1)))["n_items"] == 0


# ---------------------------------------------------------------- multilabel


ML_ROWS = [
    [{"a"}, {"a"}, {"a", "b"}],
    [{"a", "b"}, {"b"}, None],
    [None, {"c"}, {"c"}],
    [{"a"}, {"b"}, {"b", "c"}],
    [{"a", "b", "c"}, None, {"a", "b"}],
    [{"b"}, {"b"}, {"b"}],
]


def test_multilabel_masi_against_nltk():
    project = project_with("multilabel", labels=("a", "b", "c", "unused"), annotations_per_item=3)
    table(project, ML_ROWS, NAMES, wrap=lambda s: {"labels": sorted(s)})
    got = agreement_section(project, Window())

    data = [(NAMES[j], i, frozenset(v)) for i, r in enumerate(ML_ROWS) for j, v in enumerate(r) if v is not None]
    nltk_alpha = AnnotationTask(data=data, distance=masi_distance).alpha()
    assert got["krippendorff_alpha"] == pytest.approx(nltk_alpha, abs=1e-12)
    assert got["n_items"] == 6

    # Fleiss and Cohen take the canonical label-set string as the category
    def cat(s: set[str] | None) -> str | None:
        return None if s is None else json.dumps(sorted(s))

    cats = [[cat(v) for v in r] for r in ML_ROWS]
    assert got["fleiss_kappa"] == pytest.approx(ref_fleiss([cats[0], cats[3], cats[5]]), abs=1e-12)
    assert got["pairwise_cohen_kappa"] == approx_pairs(ref_pairs(cats, NAMES))

    def contains(label: str) -> list[list[Any]]:
        return [[None if v is None else label in v for v in r] for r in ML_ROWS]

    assert got["per_label"] == {
        "a": {"krippendorff_alpha": pytest.approx(ref_alpha(contains("a")), abs=1e-12)},
        "b": {"krippendorff_alpha": pytest.approx(ref_alpha(contains("b")), abs=1e-12)},
        "c": {"krippendorff_alpha": pytest.approx(ref_alpha(contains("c")), abs=1e-12)},
        "unused": {"krippendorff_alpha": None},
    }


def test_multilabel_empty_sets_are_identical_values():
    project = project_with("multilabel", labels=("a", "b"), annotations_per_item=2)
    rows = [[set(), set()], [{"a"}, set()], [{"a"}, {"a", "b"}]]
    table(project, rows, ["ann", "bob"], wrap=lambda s: {"labels": sorted(s)})
    got = agreement_section(project, Window())
    # the krippendorff package with its custom-metric form, on a MASI matrix whose only change is d(empty, empty) = 0
    domain = [frozenset(), frozenset({"a"}), frozenset({"a", "b"})]
    dist = np.array([[0.0 if x == y else masi_distance(set(x), set(y)) for y in domain] for x in domain])
    data = [[domain.index(frozenset(r[j])) for r in rows] for j in range(2)]

    def metric(v1, v2, i1, i2, n_v, dtype=np.float64):
        return dist[v1.astype(int), v2.astype(int)]

    expected = krippendorff.alpha(reliability_data=data, value_domain=[0, 1, 2], level_of_measurement=metric)
    assert got["krippendorff_alpha"] == pytest.approx(float(expected), abs=1e-12)


# ---------------------------------------------------------------- spans


TEXT = "Anna met Bob in Paris today"  # tokens: Anna met Bob in Paris today


def test_token_labels_overlap_rule():
    spans = [{"start": 1, "end": 3, "label": "PER"}, {"start": 9, "end": 21, "label": "LOC"}]
    assert token_labels(TEXT, spans) == ["PER", "O", "LOC", "LOC", "LOC", "O"]
    # where two spans overlap a token the first (by start) wins; end offsets are exclusive
    spans = [{"start": 5, "end": 8, "label": "LOC"}, {"start": 0, "end": 6, "label": "PER"}]
    assert token_labels(TEXT, spans) == ["PER", "PER", "O", "O", "O", "O"]
    assert token_labels("  ", []) == []


def test_vectorised_token_labels_equal_the_reference():
    """span_token_codes (numpy, all annotations at once) against token_labels (one loop per span) on random
    texts with Unicode whitespace, empty texts, overlapping and touching spans."""
    rng = np.random.default_rng(7)
    pieces = ["ab", "c", "dé", "€x", " ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2029"]
    texts = ["".join(rng.choice(pieces, size=int(rng.integers(0, 15)))) for _ in range(40)] + ["", "   "]
    labels = ["PER", "LOC", "ORG"]
    code_of = {name: i for i, name in enumerate([OUTSIDE, *labels])}
    ann_item, ann_spans = [], []
    for _ in range(150):
        idx = int(rng.integers(len(texts)))
        length = len(texts[idx])
        spans = []
        for _ in range(int(rng.integers(0, 4)) if length else 0):
            start = int(rng.integers(0, length))
            spans.append(
                {"start": start, "end": int(rng.integers(start + 1, length + 1)), "label": str(rng.choice(labels))}
            )
        ann_item.append(idx)
        ann_spans.append(spans)
    counts, codes = span_token_codes(texts, np.array(ann_item), ann_spans, code_of)
    expected = [
        code_of[t] for idx, spans in zip(ann_item, ann_spans, strict=True) for t in token_labels(texts[idx], spans)
    ]
    assert counts.tolist() == [len(token_labels(t, [])) for t in texts]
    assert codes.tolist() == expected
    assert any(c != code_of[OUTSIDE] for c in expected)  # the spans did label tokens


def test_spans_nominal_over_tokens():
    project = project_with("spans", labels=("PER", "LOC", "ORG"), annotations_per_item=3)
    people = users(project, *NAMES)
    made = items(project, [TEXT, "Bob works at Acme"])

    def s(start: int, end: int, label: str) -> dict[str, Any]:
        return {"start": start, "end": end, "label": label}

    values = {
        (0, "ann"): [s(0, 4, "PER"), s(9, 12, "PER"), s(16, 21, "LOC")],
        (0, "bob"): [s(0, 4, "PER"), s(16, 27, "LOC")],
        (0, "cat"): [s(1, 3, "PER"), s(9, 12, "LOC")],
        (1, "ann"): [s(0, 3, "PER")],
        (1, "bob"): [s(0, 3, "PER"), s(13, 17, "LOC")],
        (1, "cat"): [],
    }
    for (i, who), spans in values.items():
        annotate(made[i], people[who], {"spans": spans})
    got = agreement_section(project, Window())

    # each annotator's label per token, written out by hand
    # (the first text's six tokens, then "Bob works at Acme")
    per_token = {
        "ann": ["PER", "O", "PER", "O", "LOC", "O", "PER", "O", "O", "O"],
        "bob": ["PER", "O", "O", "O", "LOC", "LOC", "PER", "O", "O", "LOC"],
        "cat": ["PER", "O", "LOC", "O", "O", "O", "O", "O", "O", "O"],
    }
    rows = [[per_token[n][t] for n in NAMES] for t in range(10)]  # units = tokens
    assert got["krippendorff_alpha"] == pytest.approx(ref_alpha(rows), abs=1e-12)
    assert got["n_items"] == 2
    assert got["fleiss_kappa"] == pytest.approx(ref_fleiss(rows), abs=1e-12)
    # Cohen over the tokens of the items both labeled; n counts items
    expected_pairs = [{**p, "n": 2} for p in ref_pairs(rows, NAMES)]
    assert got["pairwise_cohen_kappa"] == approx_pairs(expected_pairs)
    assert got["per_label"] == {
        "PER": {"krippendorff_alpha": pytest.approx(ref_alpha(one_vs_rest(rows, "PER")), abs=1e-12)},
        "LOC": {"krippendorff_alpha": pytest.approx(ref_alpha(one_vs_rest(rows, "LOC")), abs=1e-12)},
        "ORG": {"krippendorff_alpha": None},
    }


# ---------------------------------------------------------------- the alpha helper on its own


def test_alpha_from_counts_matches_value_counts_form():
    counts = np.array([[2, 0, 1], [0, 3, 0], [1, 1, 0], [0, 0, 2], [1, 0, 0]])
    expected = krippendorff.alpha(value_counts=counts, level_of_measurement="nominal")
    assert alpha_from_counts(counts) == pytest.approx(float(expected), abs=1e-12)
    assert alpha_from_counts(np.array([[1, 0], [0, 1]])) is None  # no unit with two values
    assert alpha_from_counts(np.array([[2, 0], [3, 0]])) == 1.0


def test_a_label_no_longer_in_the_project_still_counts_as_a_value():
    project = project_with(annotations_per_item=2)
    rows = [["sports", "retired"], ["retired", "retired"], ["politics", "sports"]]
    table(project, rows, ["ann", "bob"])
    got = agreement_section(project, Window())
    assert got["krippendorff_alpha"] == pytest.approx(ref_alpha(rows), abs=1e-12)
    assert set(got["per_label"]) == {"sports", "politics", "tech"}


@pytest.mark.parametrize("n_values", [4, 100])
def test_pairwise_tables_small_and_large_domains_equal_sklearn(n_values):
    """The per-pair tables over the whole domain (few values) and over the values the pair used (many: e.g.
    distinct label sets), against sklearn on the same ratings."""
    rng = np.random.default_rng(n_values)
    n_items, coders = 300, [f"c{i}" for i in range(8)]
    a = rng.integers(0, 8, n_items)
    b = (a + rng.integers(1, 8, n_items)) % 8
    code = rng.integers(0, min(n_values, 6), 2 * n_items) * (n_values // 6 or 1)  # spread over the domain
    ratings = Ratings(
        unit=np.repeat(np.arange(n_items), 2),
        coder=np.stack([a, b], 1).ravel(),
        code=code,
        unit_item=np.arange(n_items),
        item_ids=np.arange(n_items),
        item_n=np.full(n_items, 2),
        item_day=np.zeros(n_items, dtype=np.int64),
        days=[DAY0.date()],
        coders=coders,
        domain=list(range(n_values)),
        categories=[str(i) for i in range(n_values)],
        distance=None,
        membership=np.zeros((n_values, 0), dtype=bool),
        labels=[],
    )
    by_pair: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
    for i in range(n_items):
        (x, cx), (y, cy) = sorted([(int(a[i]), int(code[2 * i])), (int(b[i]), int(code[2 * i + 1]))])
        xs, ys = by_pair.setdefault((coders[x], coders[y]), ([], []))
        xs.append(cx)
        ys.append(cy)
    expected = [
        {"a": x, "b": y, "kappa": pytest.approx(cohen_kappa_score(xs, ys), abs=1e-12), "n": len(xs)}
        for (x, y), (xs, ys) in sorted(by_pair.items())
    ]
    assert _pairwise(ratings) == expected
    assert len(expected) == 28
