"""Gold scoring (annotation/services/gold.py): answer scores against hand-computed values, per-member scores since
gold_since, the auto-pause, and the un-pause that restarts the count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import Annotation, Item, Membership
from annotation.services.gold import (
    GoldScore,
    annotator_unpause,
    gold_answer_check,
    gold_answer_score,
    gold_scores,
    gold_set,
    span_token_labels,
)
from tests.annotation.apis.helpers import make_items
from tests.conftest import add_member, make_project, make_user

pytestmark = pytest.mark.django_db

TEXT = "Ada Lovelace met Charles Babbage in London"
# tokens:  Ada(0-3) Lovelace(4-12) met(13-16) Charles(17-24) Babbage(25-32) in(33-35) London(36-42)
GOLD_SPANS = {
    "spans": [
        {"start": 0, "end": 12, "label": "PER"},
        {"start": 17, "end": 32, "label": "PER"},
        {"start": 36, "end": 42, "label": "LOC"},
    ]
}


def test_span_token_labels_by_hand():
    assert span_token_labels(TEXT, GOLD_SPANS["spans"]) == ["PER", "PER", "O", "PER", "PER", "O", "LOC"]
    # a span overlapping part of two tokens labels both
    assert span_token_labels(TEXT, [{"start": 2, "end": 5, "label": "LOC"}]) == ["LOC", "LOC"] + ["O"] * 5
    assert span_token_labels("  two   words ", []) == ["O", "O"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (GOLD_SPANS, 1.0),
        # Ada right, Lovelace missed, met right, Charles as LOC (wrong), Babbage missed, in right, London right
        (
            {
                "spans": [
                    {"start": 0, "end": 3, "label": "PER"},
                    {"start": 17, "end": 24, "label": "LOC"},
                    {"start": 36, "end": 42, "label": "LOC"},
                ]
            },
            4 / 7,
        ),
        ({"spans": []}, 2 / 7),  # only the two O tokens (met, in) agree
        ({"spans": [{"start": 0, "end": 42, "label": "LOC"}]}, 1 / 7),  # everything LOC: only London
    ],
)
def test_span_scores_are_token_level(answer, expected):
    score = gold_answer_score(task_type="spans", text=TEXT, answer=answer, gold=GOLD_SPANS)
    assert score == pytest.approx(expected)


def test_single_and_multilabel_scores_are_exact_match():
    score = gold_answer_score
    assert score(task_type="classification", text="x", answer={"label": "a"}, gold={"label": "a"}) == 1.0
    assert score(task_type="classification", text="x", answer={"label": "b"}, gold={"label": "a"}) == 0.0
    assert score(task_type="multilabel", text="x", answer={"labels": ["b", "a"]}, gold={"labels": ["a", "b"]}) == 1.0
    assert score(task_type="multilabel", text="x", answer={"labels": ["a"]}, gold={"labels": ["a", "b"]}) == 0.0
    assert score(task_type="multilabel", text="x", answer={"labels": []}, gold={"labels": []}) == 1.0
    assert score(task_type="multilabel", text="x", answer={"labels": ["a", "b", "c"]}, gold={"labels": ["a", "b"]}) == 0


def _answer(item: Item, user, value, *, at=None) -> Annotation:
    """A gold answer, written as the submit path stores it (outside the overlap: annotation_count unchanged)."""
    annotation = Annotation.objects.create(item=item, annotator=user, value=value)
    if at is not None:
        Annotation.objects.filter(pk=annotation.pk).update(created_at=at)
    return annotation


def _gold_items(project, values):
    items = make_items(project, len(values), start=100)
    return [gold_set(item=item, value=value) for item, value in zip(items, values, strict=True)]


def test_gold_scores_spans_match_the_answer_scores():
    owner = make_user()
    project = make_project(owner, task_type="spans", labels=["PER", "LOC"])
    [item] = make_items(project, 1)
    Item.objects.filter(pk=item.pk).update(data={"text": TEXT})
    item.refresh_from_db()
    gold_set(item=item, value=GOLD_SPANS)
    ann, rev = make_user(), make_user()
    add_member(project, ann)
    add_member(project, rev, "reviewer")  # every member who labels is scored, whatever the role
    _answer(item, ann, {"spans": [{"start": 0, "end": 3, "label": "PER"}]})  # Ada, met, in right: 3/7
    _answer(item, rev, GOLD_SPANS)
    [other] = make_items(project, 1, start=50)  # a normal item: not a gold answer
    _answer(other, ann, {"spans": []})
    scores = gold_scores(project=project)
    assert scores == {
        ann.pk: GoldScore(answers=1, correct=pytest.approx(3 / 7), accuracy=pytest.approx(3 / 7)),
        rev.pk: GoldScore(answers=1, correct=1.0, accuracy=1.0),
    }
    assert gold_scores(project=project, user_ids=[rev.pk]) == {rev.pk: GoldScore(1, 1.0, 1.0)}


def test_gold_scores_classification_counts_since_gold_since():
    owner = make_user()
    project = make_project(owner)
    g1, g2, g3 = _gold_items(project, [{"label": "sports"}, {"label": "tech"}, {"label": "politics"}])
    a, b, staff = make_user(), make_user(), make_user(staff=True)
    add_member(project, a)
    add_member(project, b)
    old = timezone.now() - timedelta(days=3)
    _answer(g1, a, {"label": "sports"}, at=old)  # right, but before a's gold_since
    _answer(g2, a, {"label": "sports"})  # wrong
    _answer(g3, a, {"label": "politics"})  # right
    _answer(g1, b, {"label": "tech"})  # wrong
    _answer(g1, staff, {"label": "sports"})  # staff without membership: scored, no gold_since
    assert gold_scores(project=project)[a.pk] == GoldScore(3, 2.0, pytest.approx(2 / 3))
    Membership.objects.filter(project=project, user=a).update(gold_since=timezone.now() - timedelta(days=1))
    scores = gold_scores(project=project)
    assert scores[a.pk] == GoldScore(2, 1.0, 0.5)
    assert scores[b.pk] == GoldScore(1, 0.0, 0.0)
    assert scores[staff.pk] == GoldScore(1, 1.0, 1.0)
    assert set(scores) == {a.pk, b.pk, staff.pk}
    # a gold item whose gold was removed no longer scores its answers
    from annotation.services.gold import gold_clear

    gold_clear(item=g3)
    assert gold_scores(project=project)[a.pk] == GoldScore(1, 0.0, 0.0)


def test_gold_scores_multilabel_ignore_list_order():
    owner = make_user()
    project = make_project(owner, task_type="multilabel", labels=["a", "b", "c"])
    g1, g2, g3 = _gold_items(project, [{"labels": ["a", "b"]}, {"labels": []}, {"labels": ["c"]}])
    user = make_user()
    add_member(project, user)
    _answer(g1, user, {"labels": ["b", "a"]})  # the same set in another order (written past the validation)
    _answer(g2, user, {"labels": []})
    _answer(g3, user, {"labels": ["a", "c"]})  # a superset is wrong
    expected = [
        gold_answer_score(task_type="multilabel", text="", answer=ans, gold=gold)
        for ans, gold in [
            ({"labels": ["b", "a"]}, {"labels": ["a", "b"]}),
            ({"labels": []}, {"labels": []}),
            ({"labels": ["a", "c"]}, {"labels": ["c"]}),
        ]
    ]
    assert expected == [1.0, 1.0, 0.0]
    assert gold_scores(project=project) == {user.pk: GoldScore(3, 2.0, pytest.approx(2 / 3))}


def test_no_gold_answers_no_score():
    project = make_project()
    assert gold_scores(project=project) == {}


def test_auto_pause_after_enough_answers_below_the_threshold():
    owner = make_user()
    project = make_project(owner, gold_pause_below=0.7, gold_pause_min=3)
    gold = _gold_items(project, [{"label": "sports"}] * 4)
    user = make_user()
    add_member(project, user)
    _answer(gold[0], user, {"label": "tech"})
    _answer(gold[1], user, {"label": "tech"})
    assert gold_answer_check(project=project, user_id=user.pk) is False  # 2 answers < gold_pause_min
    _answer(gold[2], user, {"label": "sports"})
    assert gold_answer_check(project=project, user_id=user.pk) is True  # 1/3 < 0.7
    assert Membership.objects.get(project=project, user=user).paused is True

    member = annotator_unpause(project=project, user_id=user.pk)
    assert member.paused is False
    assert member.gold_since is not None
    assert gold_scores(project=project, user_ids=[user.pk]) == {}  # the count restarts
    assert gold_answer_check(project=project, user_id=user.pk) is False


def test_no_pause_at_the_threshold_or_without_one():
    owner = make_user()
    project = make_project(owner, gold_pause_below=0.5, gold_pause_min=2)
    g1, g2 = _gold_items(project, [{"label": "sports"}, {"label": "tech"}])
    user = make_user()
    add_member(project, user)
    _answer(g1, user, {"label": "sports"})
    _answer(g2, user, {"label": "sports"})
    assert gold_answer_check(project=project, user_id=user.pk) is False  # 0.5 is not below 0.5
    project.gold_pause_below = None
    project.save(update_fields=["gold_pause_below"])
    Annotation.objects.filter(annotator=user, item=g1).update(value={"label": "tech"})  # now 0 of 2
    assert gold_answer_check(project=project, user_id=user.pk) is False
    assert Membership.objects.get(project=project, user=user).paused is False


def test_a_paused_member_stays_paused_until_unpaused():
    owner = make_user()
    project = make_project(owner)  # no threshold: the check pauses nobody, but reports the pause
    user = make_user()
    add_member(project, user)
    Membership.objects.filter(project=project, user=user).update(paused=True)
    assert gold_answer_check(project=project, user_id=user.pk) is True
