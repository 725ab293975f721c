"""Annotator statistics and throughput on a fixed project, every figure worked out by hand (issue 13, point 5)."""

from __future__ import annotations

from statistics import median

import pytest
from django.contrib.auth import get_user_model

from annotation.models import Membership, Review
from annotation.models.item import FinalLabelSource
from annotation.quality.annotators import ACTIVE_CAP_MS, annotators_section, throughput_section
from annotation.quality.window import Window
from tests.conftest import make_user
from tests.quality.helpers import DAY0, annotate, days, final, items, project_with, users

pytestmark = pytest.mark.django_db


def suggestion(label: str, version: int = 1) -> dict:
    return {"model_version": version, "kind": "fine_tuned", "value": {"label": label}, "confidence": 0.9}


@pytest.fixture
def fixed():
    """ann: six annotations on DAY0 and one five days before; bob: one on DAY0; zed: paused, none."""
    project = project_with(annotations_per_item=2)
    people = users(project, "ann", "bob", "zed")
    Membership.objects.filter(project=project, user=people["zed"]).update(paused=True)
    it = items(project, [f"t{i}" for i in range(6)])
    gold = items(project, ["g"], prefix="g")[0]
    final(it[0], {"label": "sports"})
    final(it[1], {"label": "politics"})
    final(it[2], {"label": "politics"})
    final(it[4], {"label": "sports"})
    final(gold, {"label": "sports"}, source=FinalLabelSource.GOLD)
    ann, bob = people["ann"], people["bob"]
    # suggestion right, accepted; final agrees
    annotate(
        it[0], ann, {"label": "sports"}, lead_time_ms=1000, suggestion=suggestion("sports"), accepted_suggestion=True
    )
    # suggestion wrong, changed; final agrees
    annotate(
        it[1], ann, {"label": "politics"}, lead_time_ms=3000, suggestion=suggestion("sports"), accepted_suggestion=False
    )
    # suggestion wrong, accepted unchanged (20 minutes: capped at 10 of active time); final disagrees
    annotate(
        it[2],
        ann,
        {"label": "sports"},
        lead_time_ms=1_200_000,
        suggestion=suggestion("sports"),
        accepted_suggestion=True,
    )
    # no final, no lead time, no suggestion
    annotate(it[3], ann, {"label": "tech"})
    # rejected: out of agreement with the final, still one of their annotations
    annotate(it[4], ann, {"label": "tech"}, lead_time_ms=2000, counts=False)
    # a gold answer (right), with a wrong suggestion they changed
    annotate(
        gold, ann, {"label": "sports"}, lead_time_ms=4000, suggestion=suggestion("politics"), accepted_suggestion=False
    )
    # five days earlier: outside a DAY0 window
    annotate(
        it[5],
        ann,
        {"label": "sports"},
        at=DAY0 - days(5),
        lead_time_ms=5000,
        suggestion=suggestion("sports"),
        accepted_suggestion=True,
    )
    bob_ann = annotate(it[0], bob, {"label": "politics"})
    return project, people, bob_ann


def by_name(rows: list[dict]) -> dict[str, dict]:
    return {r["username"]: r for r in rows}


def test_annotator_figures_by_hand(fixed, django_assert_num_queries):
    project, _, _ = fixed
    with django_assert_num_queries(4):  # the figures, paused members, usernames, gold scores
        rows = annotators_section(project, Window(since=DAY0.date(), until=DAY0.date()))
    assert [r["username"] for r in rows] == ["ann", "bob", "zed"]
    got = by_name(rows)

    timed = [1000, 3000, 1_200_000, 2000, 4000]
    active_hours = (1000 + 3000 + ACTIVE_CAP_MS + 2000 + 4000) / 3_600_000
    assert got["ann"] == {
        "username": "ann",
        "annotations": 6,
        "per_hour": pytest.approx(5 / active_hours),
        "median_lead_time_ms": median(timed),
        "gold_answers": 1,
        "gold_accuracy": 1.0,
        "paused": False,
        "agreement_with_final": pytest.approx(2 / 3),  # it0 yes, it1 yes, it2 no (it4 rejected, gold out)
        "suggestion_accepted_rate": 0.5,  # it0 yes, it1 no, it2 yes, gold no
        "wrong_suggestion_accepted_rate": pytest.approx(1 / 3),  # wrong on it1, it2, gold: accepted on it2
    }
    assert got["bob"] == {
        "username": "bob",
        "annotations": 1,
        "per_hour": None,
        "median_lead_time_ms": None,
        "gold_answers": 0,
        "gold_accuracy": None,
        "paused": False,
        "agreement_with_final": 0.0,  # one counting annotation with a final, not equal: a real 0
        "suggestion_accepted_rate": None,
        "wrong_suggestion_accepted_rate": None,
    }
    assert got["zed"] == {
        "username": "zed",
        "annotations": 0,
        "per_hour": None,
        "median_lead_time_ms": None,
        "gold_answers": 0,
        "gold_accuracy": None,
        "paused": True,
        "agreement_with_final": None,
        "suggestion_accepted_rate": None,
        "wrong_suggestion_accepted_rate": None,
    }


def test_annotator_figures_over_the_whole_project(fixed):
    project, _, _ = fixed
    ann = by_name(annotators_section(project, Window()))["ann"]
    timed = [1000, 3000, 1_200_000, 2000, 4000, 5000]
    assert ann["annotations"] == 7
    assert ann["per_hour"] == pytest.approx(6 / ((1000 + 3000 + ACTIVE_CAP_MS + 2000 + 4000 + 5000) / 3_600_000))
    assert ann["median_lead_time_ms"] == median(timed)
    assert ann["suggestion_accepted_rate"] == pytest.approx(3 / 5)
    assert ann["agreement_with_final"] == pytest.approx(2 / 3)  # it5 has no final


def test_only_members_with_annotations_in_the_window_and_paused_ones(fixed):
    project, _, _ = fixed
    later = annotators_section(project, Window(since=(DAY0 + days(1)).date()))
    assert [r["username"] for r in later] == ["zed"]
    empty = project_with(name="empty")
    assert annotators_section(empty, Window()) == []


def test_values_compare_as_sets_for_multilabel():
    project = project_with("multilabel", labels=("a", "b", "c"))
    ann = users(project, "ann")["ann"]
    it = items(project, ["x", "y"])
    final(it[0], {"labels": ["a", "b"]})
    final(it[1], {"labels": ["a", "b"]})
    annotate(
        it[0],
        ann,
        {"labels": ["b", "a"]},
        suggestion={"model_version": 1, "kind": "zero_shot", "value": {"labels": ["b", "a"]}, "confidence": 0.7},
        accepted_suggestion=True,
    )
    annotate(
        it[1],
        ann,
        {"labels": ["a"]},
        suggestion={"model_version": 1, "kind": "zero_shot", "value": {"labels": ["a"]}, "confidence": 0.7},
        accepted_suggestion=True,
    )
    row = annotators_section(project, Window())[0]
    assert row["agreement_with_final"] == 0.5  # [b, a] equals [a, b]; [a] does not
    assert row["wrong_suggestion_accepted_rate"] == 1.0  # only it1's suggestion is wrong, and it was accepted


def test_a_staff_user_without_membership_is_listed():
    project = project_with()
    root = make_user("root", staff=True)
    annotate(items(project, ["x"])[0], root, {"label": "sports"})
    rows = annotators_section(project, Window())
    assert [(r["username"], r["annotations"], r["paused"]) for r in rows] == [("root", 1, False)]


def test_throughput_per_utc_day(fixed, django_assert_num_queries):
    project, people, bob_ann = fixed
    reviewer = get_user_model().objects.get(username="zed")
    review = Review.objects.create(annotation=bob_ann, reviewer=reviewer, verdict="approve")
    Review.objects.filter(pk=review.pk).update(created_at=DAY0 + days(1))
    # 23:30 UTC is still DAY0's day
    late = items(project, ["late"], prefix="late")[0]
    annotate(late, people["bob"], {"label": "tech"}, at=DAY0.replace(hour=23, minute=30))
    with django_assert_num_queries(2):
        rows = throughput_section(project, Window())
    assert rows == [
        {"day": (DAY0 - days(5)).date().isoformat(), "annotations": 1, "reviews": 0},
        {"day": DAY0.date().isoformat(), "annotations": 8, "reviews": 0},
        {"day": (DAY0 + days(1)).date().isoformat(), "annotations": 0, "reviews": 1},
    ]
    assert throughput_section(project, Window(since=DAY0.date(), until=DAY0.date())) == [
        {"day": DAY0.date().isoformat(), "annotations": 8, "reviews": 0}
    ]
    assert throughput_section(project_with(name="quiet"), Window()) == []


def test_gold_figures_come_from_gold_scores_since_gold_since():
    project = project_with()
    people = users(project, "ann", "bob")
    gold = items(project, ["g1", "g2"], prefix="g")
    for g in gold:
        final(g, {"label": "sports"}, source=FinalLabelSource.GOLD)
    annotate(gold[0], people["ann"], {"label": "sports"}, at=DAY0)
    annotate(gold[1], people["ann"], {"label": "politics"}, at=DAY0 + days(1))
    annotate(gold[0], people["bob"], {"label": "politics"}, at=DAY0)
    # bob was un-paused after his answer: it no longer counts
    Membership.objects.filter(project=project, user=people["bob"]).update(gold_since=DAY0 + days(1))
    got = by_name(annotators_section(project, Window()))
    assert (got["ann"]["gold_answers"], got["ann"]["gold_accuracy"]) == (2, 0.5)
    assert (got["bob"]["gold_answers"], got["bob"]["gold_accuracy"]) == (0, None)
    assert got["bob"]["annotations"] == 1
    # gold answers are never agreement with the final label
    assert got["ann"]["agreement_with_final"] is None
