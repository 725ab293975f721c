"""The review loop through the REST API on PostgreSQL (docs/review.md): reject -> re-queue -> another annotator ->
decided; max_rejections -> adjudication -> correct; the review queue's lease and order; the own-work rule; what the
rejected annotator reads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import Annotation, FinalLabel, Item, Membership, Review, ReviewLease
from annotation.services.gold import gold_set
from tests.annotation.apis.helpers import assert_error, label_next, make_items, member, next_item, submit
from tests.conftest import client_for, make_project

pytestmark = pytest.mark.django_db


def review_next(client, project):
    return client.get(f"/api/projects/{project.pk}/review/next")


def verdict(client, annotation_id: int, body):
    return client.post(f"/api/annotations/{annotation_id}/review", body, format="json")


def item_row(item) -> Item:
    return Item.objects.get(pk=item.pk)


# ------------------------------------------------------------------ the whole loop


def test_reject_requeues_and_another_annotator_decides_the_item(manager):
    project = make_project(manager, name="loop", review_policy="all", max_rejections=2)
    [item] = make_items(project, 1)
    _, alice_client = member(project, "alice")
    _, bob_client = member(project, "bob")
    _, rev = member(project, "rev", "reviewer")

    first = label_next(alice_client, project, {"label": "sports"})
    assert item_row(item).status == "in_review"

    task = review_next(rev, project).json()
    assert (task["item"]["id"], task["adjudication"], task["rejections"]) == (item.pk, False, 0)
    assert task["expires_at"]
    r = verdict(rev, first["id"], {"verdict": "reject", "comment": "this is about politics"})
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["item_status"], body["final"], body["adjudication"], body["rejections"]) == (
        "open",
        None,
        False,
        1,
    )

    # the annotation is kept with its Review, but no longer counts; the item is back in the queue
    row = item_row(item)
    assert (row.status, row.annotation_count, row.rejections, row.adjudication) == ("open", 0, 1, False)
    assert Annotation.objects.get(pk=first["id"]).counts is False
    assert not FinalLabel.objects.filter(item=item).exists()
    assert not ReviewLease.objects.exists()  # the verdict released the lease
    assert review_next(rev, project).status_code == 204

    # alice reads her rejected annotation with the verdict and the comment
    mine = alice_client.get(f"/api/annotations/{first['id']}").json()
    assert mine["counts"] is False
    assert mine["review"]["verdict"] == "reject"
    assert mine["review"]["comment"] == "this is about politics"
    assert mine["review"]["reviewer"] == "rev"
    assert mine["review"]["created_at"]
    [listed] = alice_client.get(f"/api/items/{item.pk}/annotations").json()
    assert (listed["id"], listed["counts"], listed["review"]) == (first["id"], False, mine["review"])

    # she is not served the item again; bob is, and labels it
    assert next_item(alice_client, project).status_code == 204
    second = label_next(bob_client, project, {"label": "politics"})
    assert second["item"] == item.pk
    assert (second["counts"], second["review"]) == (True, None)
    assert item_row(item).status == "in_review"

    # the reviewer sees both, the rejected one marked, and approves bob's
    task = review_next(rev, project).json()
    assert task["item"]["id"] == item.pk
    assert task["rejections"] == 1
    assert task["disagreement"] is False  # the rejected value does not count
    by_id = {a["id"]: a for a in task["annotations"]}
    assert (by_id[first["id"]]["counts"], by_id[first["id"]]["agreeing"]) == (False, 0)
    assert by_id[first["id"]]["review"]["verdict"] == "reject"
    assert (by_id[second["id"]]["counts"], by_id[second["id"]]["agreeing"], by_id[second["id"]]["review"]) == (
        True,
        1,
        None,
    )
    r = verdict(rev, second["id"], {"verdict": "approve"})
    assert r.status_code == 201, r.content
    assert (r.json()["item_status"], r.json()["final"]) == ("approved", {"label": "politics"})
    final = FinalLabel.objects.get(item=item)
    assert (final.value, final.source) == ({"label": "politics"}, "review")
    row = item_row(item)
    assert (row.status, row.annotation_count, row.rejections) == ("approved", 1, 1)
    assert bob_client.get(f"/api/annotations/{second['id']}").json()["review"]["verdict"] == "approve"


def test_reject_with_overlap_two_keeps_the_other_annotation_and_consensus_ignores_the_rejected_one(manager):
    """k = 2, policy none: a tie goes to review; rejecting one side leaves one counting annotation, the next
    annotator's agreeing value decides the item by consensus (the rejected value does not vote)."""
    project = make_project(manager, name="k2", annotations_per_item=2)
    [item] = make_items(project, 1)
    _, a_client = member(project, "a")
    _, b_client = member(project, "b")
    _, c_client = member(project, "c")
    _, rev = member(project, "rev", "reviewer")
    a = label_next(a_client, project, {"label": "sports"})
    b = label_next(b_client, project, {"label": "politics"})
    assert item_row(item).status == "in_review"
    assert verdict(rev, a["id"], {"verdict": "reject"}).status_code == 201
    row = item_row(item)
    assert (row.status, row.annotation_count) == ("in_progress", 1)
    assert next_item(a_client, project).status_code == 204
    assert next_item(b_client, project).status_code == 204
    c = label_next(c_client, project, {"label": "politics"})
    assert c["item"] == item.pk
    row = item_row(item)
    assert (row.status, row.annotation_count) == ("approved", 2)
    final = FinalLabel.objects.get(item=item)
    assert (final.value, final.source) == ({"label": "politics"}, "consensus")
    assert b["id"] != c["id"]


def test_max_rejections_sends_the_item_to_adjudication_and_only_a_correction_decides_it(manager):
    project = make_project(manager, name="adj", review_policy="all", max_rejections=2)
    [item] = make_items(project, 1)
    clients = [member(project, name)[1] for name in ("a", "b", "c")]
    _, rev = member(project, "rev", "reviewer")

    first = label_next(clients[0], project, {"label": "sports"})
    assert verdict(rev, first["id"], {"verdict": "reject"}).status_code == 201
    second = label_next(clients[1], project, {"label": "tech"})
    r = verdict(rev, second["id"], {"verdict": "reject", "comment": "still wrong"})
    assert r.status_code == 201, r.content
    assert (r.json()["item_status"], r.json()["adjudication"], r.json()["rejections"]) == ("in_review", True, 2)
    row = item_row(item)
    assert (row.status, row.adjudication, row.rejections, row.annotation_count) == ("in_review", True, 2, 0)
    assert next_item(clients[2], project).status_code == 204  # not served for labeling any more

    task = review_next(rev, project).json()
    assert (task["item"]["id"], task["adjudication"], task["rejections"]) == (item.pk, True, 2)
    assert [a["counts"] for a in task["annotations"]] == [False, False]
    assert [a["review"]["comment"] for a in task["annotations"]] == ["", "still wrong"]
    for body in ({"verdict": "approve"}, {"verdict": "reject"}):
        err = assert_error(verdict(rev, second["id"], body), 409)
        assert "adjudication" in err["detail"]
        assert err["errors"][0]["field"] == "verdict"
    r = verdict(rev, second["id"], {"verdict": "correct", "value": {"label": "politics"}})
    assert r.status_code == 201, r.content
    assert (r.json()["item_status"], r.json()["adjudication"]) == ("approved", False)
    final = FinalLabel.objects.get(item=item)
    assert (final.value, final.source) == ({"label": "politics"}, "adjudication")
    assert review_next(rev, project).status_code == 204
    # the correction was sent through the second annotation; its annotator still reads why theirs was rejected
    mine = clients[1].get(f"/api/annotations/{second['id']}").json()
    assert (mine["counts"], mine["review"]["verdict"], mine["review"]["comment"]) == (False, "reject", "still wrong")
    listed = client_for(manager).get(f"/api/items/{item.pk}/annotations").json()
    assert [(a["id"], a["counts"], a["review"]["verdict"]) for a in listed] == [
        (first["id"], False, "reject"),
        (second["id"], False, "reject"),
    ]


def test_a_rejected_annotation_and_an_item_awaiting_adjudication_cannot_be_edited(manager):
    project = make_project(manager, name="edits", review_policy="all", max_rejections=2)
    make_items(project, 2)
    _, alice = member(project, "alice")
    _, bob = member(project, "bob")
    _, rev = member(project, "rev", "reviewer")
    first = label_next(alice, project, {"label": "sports"})
    assert verdict(rev, first["id"], {"verdict": "reject", "comment": "no"}).status_code == 201
    err = assert_error(alice.patch(f"/api/annotations/{first['id']}", {"value": {"label": "tech"}}, format="json"), 409)
    assert "rejected" in err["detail"]
    assert Annotation.objects.get(pk=first["id"]).value == {"label": "sports"}  # unchanged
    # bob labels it next and is rejected too: max_rejections, adjudication; bob's edit is refused as well
    second = label_next(bob, project, {"label": "tech"})
    assert second["item"] == first["item"]
    assert verdict(rev, second["id"], {"verdict": "reject"}).status_code == 201
    assert item_row(Item(pk=first["item"])).adjudication is True
    assert_error(bob.patch(f"/api/annotations/{second['id']}", {"value": {"label": "politics"}}, format="json"), 409)


@pytest.mark.parametrize("unavailable", ["skipped", "paused"])
def test_no_eligible_annotator_left_sends_the_item_to_adjudication(manager, unavailable):
    """Every other member has skipped the item (or is paused): nobody could label it again, so a reject sends it
    to adjudication at once, below max_rejections."""
    project = make_project(manager, name="few", review_policy="all", max_rejections=5)
    [item] = make_items(project, 1)
    _, a_client = member(project, "a")
    _, rev = member(project, "rev", "reviewer")
    ann = label_next(a_client, project, {"label": "sports"})
    assert rev.post(f"/api/items/{item.pk}/skip").status_code == 204
    if unavailable == "skipped":
        assert client_for(manager).post(f"/api/items/{item.pk}/skip").status_code == 204
    else:
        Membership.objects.filter(project=project, user=manager).update(paused=True)
    r = verdict(rev, ann["id"], {"verdict": "reject"})
    assert r.status_code == 201, r.content
    row = item_row(item)
    assert (row.status, row.adjudication, row.rejections) == ("in_review", True, 1)


def test_a_new_member_is_an_eligible_annotator(manager):
    """The same project with one more member who has not seen the item: the item goes back to the queue."""
    project = make_project(manager, name="more", review_policy="all", max_rejections=5)
    [item] = make_items(project, 1)
    _, a_client = member(project, "a")
    _, rev = member(project, "rev", "reviewer")
    ann = label_next(a_client, project, {"label": "sports"})
    assert rev.post(f"/api/items/{item.pk}/skip").status_code == 204
    assert client_for(manager).post(f"/api/items/{item.pk}/skip").status_code == 204
    _, fresh = member(project, "fresh")
    assert verdict(rev, ann["id"], {"verdict": "reject"}).status_code == 201
    assert (item_row(item).status, item_row(item).adjudication) == ("open", False)
    assert next_item(fresh, project).json()["id"] == item.pk


def test_a_rejected_annotation_cannot_be_approved_or_rejected_again(manager):
    project = make_project(manager, name="twice", annotations_per_item=2, review_policy="all")
    [item] = make_items(project, 1)
    a = label_next(member(project, "a")[1], project, {"label": "sports"})
    label_next(member(project, "b")[1], project, {"label": "sports"})
    _, rev = member(project, "rev", "reviewer")
    assert verdict(rev, a["id"], {"verdict": "reject"}).status_code == 201
    label_next(member(project, "c")[1], project, {"label": "tech"})
    assert item_row(item).status == "in_review"
    err = assert_error(verdict(rev, a["id"], {"verdict": "approve"}), 409)
    assert err["errors"][0]["field"] == "annotation"
    retry = verdict(rev, a["id"], {"verdict": "reject"})  # the same verdict again: a client's retry
    assert retry.status_code == 200, retry.content
    assert Review.objects.count() == 1


def test_a_reviewer_is_not_handed_an_item_whose_only_annotation_is_their_rejected_one(manager):
    """The queue and the verdict check share one rule: any annotation of yours on the item (rejected ones too)."""
    project = make_project(manager, name="stuck", review_policy="all", max_rejections=1)
    make_items(project, 1)
    _, rita = member(project, "rita", "reviewer")
    _, rob = member(project, "rob", "reviewer")
    mine = label_next(rita, project, {"label": "sports"})
    assert verdict(rob, mine["id"], {"verdict": "reject"}).status_code == 201  # adjudication (max_rejections 1)
    assert review_next(rita, project).status_code == 204
    assert_error(verdict(rita, mine["id"], {"verdict": "correct", "value": {"label": "tech"}}), 403)
    assert review_next(rob, project).status_code == 200


def test_retrying_a_reject_that_sent_the_item_to_adjudication_returns_the_first_review(manager):
    project = make_project(manager, name="retry", review_policy="all", max_rejections=1)
    make_items(project, 1)
    first = label_next(member(project, "a")[1], project, {"label": "sports"})
    _, rev = member(project, "rev", "reviewer")
    created = verdict(rev, first["id"], {"verdict": "reject", "comment": "no"})
    assert created.status_code == 201
    assert created.json()["adjudication"] is True
    again = verdict(rev, first["id"], {"verdict": "reject", "comment": "no"})
    assert again.status_code == 200, again.content
    assert again.json()["id"] == created.json()["id"]
    assert Review.objects.count() == 1
    assert Item.objects.get(pk=first["item"]).rejections == 1


# ------------------------------------------------------------------ the lease


def _in_review(project, n: int) -> list[Item]:
    """n items in review (policy all, k = 1), each labeled by a new annotator."""
    items = make_items(project, n, start=Item.objects.filter(project=project).count())
    for item in items:
        _, client = member(project)
        assert submit(client, item.pk, {"label": "sports"}).status_code == 201
    return items


def test_the_same_reviewer_gets_the_same_item_while_the_lease_lives(manager):
    project = make_project(manager, name="lease", review_policy="all")
    _in_review(project, 2)
    reviewer, rev = member(project, "rev", "reviewer")
    first = review_next(rev, project).json()
    again = review_next(rev, project).json()
    assert again["item"]["id"] == first["item"]["id"]
    assert again["expires_at"] == first["expires_at"]
    lease = ReviewLease.objects.get()
    assert (lease.item_id, lease.reviewer_id, lease.project_id) == (first["item"]["id"], reviewer.pk, project.pk)
    ttl = (lease.expires_at - lease.created_at).total_seconds()
    assert ttl == pytest.approx(30 * 60, abs=1)  # settings.TANDEM_ASSIGNMENT_TTL_SECONDS


def test_two_reviewers_are_handed_different_items_and_a_verdict_on_anothers_lease_is_409(manager, settings):
    project = make_project(manager, name="two", review_policy="all")
    items = _in_review(project, 2)
    r1_user, r1 = member(project, "r1", "reviewer")
    _, r2 = member(project, "r2", "reviewer")
    t1 = review_next(r1, project).json()
    t2 = review_next(r2, project).json()
    assert {t1["item"]["id"], t2["item"]["id"]} == {i.pk for i in items}
    assert t1["waiting"] == t2["waiting"] == 2

    # r2 may not decide r1's item while r1's lease lives; the error says until when
    err = assert_error(verdict(r2, t1["annotations"][0]["id"], {"verdict": "approve"}), 409)
    assert err["errors"][0]["expires_at"] == t1["expires_at"]
    assert err["errors"][0]["reviewer"] == "r1"
    assert t1["expires_at"] in err["detail"]
    assert not Review.objects.exists()

    # a third reviewer finds nothing free
    _, r3 = member(project, "r3", "reviewer")
    assert review_next(r3, project).status_code == 204

    # r1's lease expires: r3 takes it over, and now r1's verdict is the one refused
    ReviewLease.objects.filter(reviewer=r1_user).update(expires_at=timezone.now() - timedelta(seconds=1))
    t3 = review_next(r3, project).json()
    assert t3["item"]["id"] == t1["item"]["id"]
    assert t3["expires_at"] != t1["expires_at"]
    assert_error(verdict(r1, t1["annotations"][0]["id"], {"verdict": "approve"}), 409)
    assert verdict(r3, t3["annotations"][0]["id"], {"verdict": "approve"}).status_code == 201
    assert not ReviewLease.objects.filter(item_id=t1["item"]["id"]).exists()

    # an expired lease of someone else does not block a verdict
    ReviewLease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert verdict(r1, t2["annotations"][0]["id"], {"verdict": "approve"}).status_code == 201
    assert not ReviewLease.objects.exists()


# ------------------------------------------------------------------ reviewing your own work


def test_reviewers_do_not_review_their_own_work_unless_the_project_allows_it(manager):
    project = make_project(manager, name="own", review_policy="all")
    theirs, mine = make_items(project, 2)
    _, rev = member(project, "rev", "reviewer")
    _, annotator = member(project, "a")
    own = submit(rev, mine.pk, {"label": "tech"}).json()  # reviewers may label too
    other = submit(annotator, theirs.pk, {"label": "tech"}).json()

    task = review_next(rev, project).json()
    assert task["item"]["id"] == theirs.pk  # never the item they labeled
    err = assert_error(verdict(rev, own["id"], {"verdict": "approve"}), 403)
    assert "reviewers_may_review_own" in err["detail"]
    assert verdict(rev, other["id"], {"verdict": "approve"}).status_code == 201
    assert review_next(rev, project).status_code == 204  # only their own is left

    _, rev2 = member(project, "rev2", "reviewer")
    assert review_next(rev2, project).json()["item"]["id"] == mine.pk

    r = client_for(manager).patch(f"/api/projects/{project.pk}/", {"reviewers_may_review_own": True}, format="json")
    assert r.status_code == 200, r.content
    ReviewLease.objects.all().delete()
    assert review_next(rev, project).json()["item"]["id"] == mine.pk
    assert verdict(rev, own["id"], {"verdict": "approve"}).status_code == 201


def test_a_verdict_on_anothers_annotation_of_an_item_you_labeled_is_403(manager):
    project = make_project(manager, name="own2", annotations_per_item=2)
    [item] = make_items(project, 1)
    _, rev = member(project, "rev", "reviewer")
    submit(rev, item.pk, {"label": "tech"})
    other = submit(member(project, "a")[1], item.pk, {"label": "sports"}).json()
    assert item_row(item).status == "in_review"
    assert_error(verdict(rev, other["id"], {"verdict": "reject"}), 403)
    assert review_next(rev, project).status_code == 204
    assert item_row(item).status == "in_review"


# ------------------------------------------------------------------ the order


def test_order_disagreement_then_model_then_low_gold_then_oldest(manager):
    """Five items in review (k = 2, policy all), each younger than the next bucket's, so that only the buckets
    explain the order: a disagreement, a majority against the model's suggestion, one labeled by an annotator whose
    gold accuracy is below 0.8 (the default without gold_pause_below), then two by age."""
    project = make_project(manager, name="order", annotations_per_item=2, review_policy="all")
    gold_item, oldest, older, low, model, dis = make_items(project, 6)
    _, c1 = member(project, "u1")
    _, c2 = member(project, "u2")
    weak, weak_client = member(project, "weak")
    _, rev = member(project, "rev", "reviewer")

    gold_set(item=gold_item, value={"label": "sports"})
    Annotation.objects.create(item=gold_item, annotator=weak, value={"label": "tech"})  # a wrong gold answer

    tech, sports = {"label": "tech"}, {"label": "sports"}
    for item, values, clients in (
        (oldest, (tech, tech), (c1, c2)),
        (older, (tech, tech), (c1, c2)),
        (low, (tech, tech), (c1, weak_client)),
        (model, (tech, tech), (c1, c2)),
        (dis, (tech, sports), (c1, c2)),
    ):
        for value, client in zip(values, clients, strict=True):
            assert submit(client, item.pk, value).status_code == 201
    # the suggestion served with each annotation, and whether the annotator's value was it (decided at submit)
    agree = {"model_version": 1, "kind": "fine_tuned", "value": tech, "confidence": 0.9}
    Annotation.objects.filter(item=model).update(suggestion={**agree, "value": sports}, accepted_suggestion=False)
    Annotation.objects.filter(item__in=[oldest, low]).update(suggestion=agree, accepted_suggestion=True)
    Annotation.objects.filter(item=dis, value=tech).update(suggestion=agree, accepted_suggestion=True)
    Annotation.objects.filter(item=dis, value=sports).update(suggestion=agree, accepted_suggestion=False)
    now = timezone.now()
    for hours, item in ((5, oldest), (4, older), (3, low), (2, model), (1, dis)):
        Annotation.objects.filter(item=item).update(created_at=now - timedelta(hours=hours))

    order = []
    while (r := review_next(rev, project)).status_code == 200:
        task = r.json()
        order.append(task["item"]["id"])
        assert verdict(rev, task["annotations"][0]["id"], {"verdict": "approve"}).status_code == 201
    assert order == [dis.pk, model.pk, low.pk, oldest.pk, older.pk]


def test_order_uses_the_projects_gold_pause_below(manager):
    """An annotator at 0.5 gold accuracy is 'low' under the default 0.8, and not under gold_pause_below 0.4."""
    project = make_project(manager, name="gold", annotations_per_item=1, review_policy="all")
    g1, g2, old, young = make_items(project, 4)
    weak, weak_client = member(project, "weak")
    _, other = member(project, "other")
    _, rev = member(project, "rev", "reviewer")
    gold_set(item=g1, value={"label": "sports"})
    gold_set(item=g2, value={"label": "sports"})
    Annotation.objects.create(item=g1, annotator=weak, value={"label": "sports"})
    Annotation.objects.create(item=g2, annotator=weak, value={"label": "tech"})
    assert submit(other, old.pk, {"label": "tech"}).status_code == 201
    assert submit(weak_client, young.pk, {"label": "tech"}).status_code == 201
    Annotation.objects.filter(item=old).update(created_at=timezone.now() - timedelta(hours=1))

    assert review_next(rev, project).json()["item"]["id"] == young.pk
    ReviewLease.objects.all().delete()
    project.gold_pause_below = 0.4
    project.save(update_fields=["gold_pause_below"])
    assert review_next(rev, project).json()["item"]["id"] == old.pk


def test_an_adjudication_item_is_served_in_the_order_like_the_others(manager):
    """After a reject into adjudication, the time of that reject is when the item (re-)entered review."""
    project = make_project(manager, name="adj-order", review_policy="all", max_rejections=1)
    first, second = make_items(project, 2)
    a_ann = submit(member(project, "a")[1], first.pk, {"label": "tech"}).json()
    submit(member(project, "b")[1], second.pk, {"label": "tech"})
    Annotation.objects.filter(item=first).update(created_at=timezone.now() - timedelta(hours=2))
    Annotation.objects.filter(item=second).update(created_at=timezone.now() - timedelta(hours=1))
    _, rev = member(project, "rev", "reviewer")
    assert verdict(rev, a_ann["id"], {"verdict": "reject"}).status_code == 201
    assert item_row(first).adjudication is True
    task = review_next(rev, project).json()
    assert (task["item"]["id"], task["adjudication"]) == (second.pk, False)  # entered review earlier
    assert verdict(rev, task["annotations"][0]["id"], {"verdict": "approve"}).status_code == 201
    task = review_next(rev, project).json()
    assert (task["item"]["id"], task["adjudication"]) == (first.pk, True)
