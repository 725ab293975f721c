"""Migration 0009: items an earlier version left `rejected` are re-queued as reject does now, and the overlap trigger
counts only counting annotations (gold items stand outside it)."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction

from annotation.models import Annotation, FinalLabel, Item, Membership, Review, Skip
from tests.annotation.apis.helpers import make_items, member, next_item, submit
from tests.conftest import add_member, make_project, make_user

pytestmark = pytest.mark.django_db

requeue_rejected = importlib.import_module("annotation.migrations.0009_requeue_rejected").requeue_rejected


def _rejected_the_old_way(item, annotators, values, *, rejected: int, reviewer) -> list[Annotation]:
    """What the old review loop left: k annotations counted on the item, a reject Review on one, status rejected."""
    anns = [Annotation.objects.create(item=item, annotator=u, value=v) for u, v in zip(annotators, values, strict=True)]
    Review.objects.create(annotation=anns[rejected], reviewer=reviewer, verdict="reject", comment="no")
    Item.objects.filter(pk=item.pk).update(status="rejected", annotation_count=len(anns))
    return anns


def test_rejected_items_are_requeued_or_sent_to_adjudication():
    manager = make_user("boss")
    reviewer = make_user("rev")
    # overlap 2, max_rejections 2, a fresh member left: back to the queue with one counting annotation
    pair = make_project(manager, name="pair", annotations_per_item=2)
    add_member(pair, reviewer, "reviewer")
    a, b = make_user("a"), make_user("b")
    for user in (a, b):
        add_member(pair, user)
    requeued, untouched = make_items(pair, 2)
    ra, rb = _rejected_the_old_way(
        requeued, [a, b], [{"label": "sports"}, {"label": "tech"}], rejected=0, reviewer=reviewer
    )
    ua = Annotation.objects.create(item=untouched, annotator=a, value={"label": "tech"})
    Annotation.objects.create(item=untouched, annotator=b, value={"label": "tech"})
    Item.objects.filter(pk=untouched.pk).update(status="approved", annotation_count=2)
    FinalLabel.objects.create(item=untouched, value={"label": "tech"}, source="consensus")

    # max_rejections 1: adjudication at once
    strict = make_project(manager, name="strict", max_rejections=1)
    add_member(strict, a)
    [capped] = make_items(strict, 1)
    [ca] = _rejected_the_old_way(capped, [a], [{"label": "sports"}], rejected=0, reviewer=reviewer)

    # nobody left to label it (the manager skipped it, the reviewer is paused): adjudication
    lonely = make_project(manager, name="lonely", max_rejections=5)
    add_member(lonely, a)
    add_member(lonely, reviewer, "reviewer")
    [alone] = make_items(lonely, 1)
    _rejected_the_old_way(alone, [a], [{"label": "sports"}], rejected=0, reviewer=reviewer)
    Skip.objects.create(item=alone, user=manager)
    Membership.objects.filter(project=lonely, user=reviewer).update(paused=True)

    assert requeue_rejected(apps, None) == 3
    assert requeue_rejected(apps, None) == 0  # idempotent: nothing is left rejected
    assert not Item.objects.filter(status="rejected").exists()

    row = Item.objects.get(pk=requeued.pk)
    assert (row.status, row.annotation_count, row.rejections, row.adjudication) == ("in_progress", 1, 1, False)
    assert [Annotation.objects.get(pk=x.pk).counts for x in (ra, rb)] == [False, True]
    assert Review.objects.filter(annotation=ra, verdict="reject").exists()  # kept, with its Review

    row = Item.objects.get(pk=untouched.pk)
    assert (row.status, row.annotation_count, row.rejections) == ("approved", 2, 0)
    assert Annotation.objects.get(pk=ua.pk).counts is True
    assert FinalLabel.objects.get(item=untouched).source == "consensus"

    row = Item.objects.get(pk=capped.pk)
    assert (row.status, row.annotation_count, row.rejections, row.adjudication) == ("in_review", 0, 1, True)
    assert Annotation.objects.get(pk=ca.pk).counts is False
    row = Item.objects.get(pk=alone.pk)
    assert (row.status, row.rejections, row.adjudication) == ("in_review", 1, True)


def test_a_requeued_item_is_labeled_again_and_decided():
    """After the migration the re-queued item is served to a member who has not labeled it, and their submit (which
    the overlap trigger now allows: the rejected annotation takes no slot) decides it by consensus."""
    manager = make_user("boss")
    project = make_project(manager, name="again", annotations_per_item=2)
    reviewer = make_user("rev")
    add_member(project, reviewer, "reviewer")
    a, b = make_user("a"), make_user("b")
    for user in (a, b):
        add_member(project, user)
    [item] = make_items(project, 1)
    _rejected_the_old_way(item, [a, b], [{"label": "sports"}, {"label": "tech"}], rejected=0, reviewer=reviewer)
    requeue_rejected(apps, None)
    _, fresh = member(project, "fresh")
    assert next_item(fresh, project).json()["id"] == item.pk
    assert submit(fresh, item.pk, {"label": "tech"}).status_code == 201
    row = Item.objects.get(pk=item.pk)
    assert (row.status, row.annotation_count) == ("approved", 2)
    assert FinalLabel.objects.get(item=item).value == {"label": "tech"}


def test_the_overlap_trigger_counts_only_counting_annotations_and_skips_gold_items():
    project = make_project(make_user("boss"), name="trigger")  # k = 1
    plain, gold = make_items(project, 2)
    users = [make_user() for _ in range(3)]
    first = Annotation.objects.create(item=plain, annotator=users[0], value={"label": "tech"})
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(item=plain, annotator=users[1], value={"label": "tech"})  # a second one: refused
    Annotation.objects.filter(pk=first.pk).update(counts=False)
    Annotation.objects.create(item=plain, annotator=users[1], value={"label": "tech"})  # the rejected one is no slot
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(item=plain, annotator=users[2], value={"label": "tech"})
    Item.objects.filter(pk=gold.pk).update(is_gold=True, status="approved")
    for user in users:  # every annotator answers a gold item once, whatever k
        Annotation.objects.create(item=gold, annotator=user, value={"label": "sports"})
    assert Annotation.objects.filter(item=gold).count() == 3
