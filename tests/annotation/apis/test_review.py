"""GET /api/projects/{id}/review/next and POST /api/annotations/{id}/review (docs/review.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from annotation.models import Annotation, FinalLabel, Item, Review
from tests.annotation.apis.helpers import assert_error, error_fields, make_items, member, next_item, submit
from tests.conftest import client_for, make_project, make_user

pytestmark = pytest.mark.django_db


def review_next(client, project, slash: str = ""):
    return client.get(f"/api/projects/{project.pk}/review/next{slash}")


def verdict(client, annotation_id: int, body, slash: str = ""):
    return client.post(f"/api/annotations/{annotation_id}/review{slash}", body, format="json")


def labeled(project, item, *values) -> list[Annotation]:
    """Each value submitted through the API by a new annotator of the project; returns their annotations."""
    out = []
    for value in values:
        _, client = member(project)
        r = submit(client, item.pk, value)
        assert r.status_code == 201, r.content
        out.append(Annotation.objects.get(pk=r.json()["id"]))
    return out


@pytest.fixture
def tie_project(manager):
    """Overlap 2, review policy none: a tie (two different labels) goes to review."""
    return make_project(manager, name="tie", annotations_per_item=2)


@pytest.fixture
def reviewer_client(tie_project):
    return member(tie_project, "rev", "reviewer")[1]


@pytest.fixture
def tie(tie_project):
    """An item in review with a disagreement: sports vs politics."""
    [item] = make_items(tie_project, 1)
    anns = labeled(tie_project, item, {"label": "sports"}, {"label": "politics"})
    assert Item.objects.get(pk=item.pk).status == "in_review"
    return item, anns


def status_of(item) -> str:
    return Item.objects.get(pk=item.pk).status


# ------------------------------------------------------------------ review/next


def test_next_204_when_nothing_awaits_review(tie_project, reviewer_client):
    [item] = make_items(tie_project, 1)
    labeled(tie_project, item, {"label": "tech"}, {"label": "tech"})  # agreement: approved by consensus
    assert status_of(item) == "approved"
    r = review_next(reviewer_client, tie_project)
    assert r.status_code == 204
    assert r.content == b""


def test_next_shows_the_item_with_all_annotations_side_by_side(tie_project, reviewer_client, tie):
    item, (a, b) = tie
    for slash in ("", "/"):
        r = review_next(reviewer_client, tie_project, slash)
        assert r.status_code == 200, r.content
        body = r.json()
        assert body["item"]["id"] == item.pk
        assert body["item"]["data"]["text"] == item.text
        assert body["item"]["status"] == "in_review"
        assert body["disagreement"] is True
        assert body["waiting"] == 1
        assert (body["adjudication"], body["rejections"]) == (False, 0)
        assert body["expires_at"]  # leased to this reviewer (tests/annotation/test_review_loop.py)
        assert [(x["counts"], x["review"]) for x in body["annotations"]] == [(True, None), (True, None)]
        assert [x["id"] for x in body["annotations"]] == [a.pk, b.pk]
        assert [x["value"] for x in body["annotations"]] == [{"label": "sports"}, {"label": "politics"}]
        assert [x["annotator"] for x in body["annotations"]] == [a.annotator.username, b.annotator.username]
        assert [x["agreeing"] for x in body["annotations"]] == [1, 1]
        assert all(x["created_at"] for x in body["annotations"])
    # reading is not deciding
    assert status_of(item) == "in_review"
    assert not Review.objects.exists()


def test_next_serves_disagreements_first_then_the_oldest(manager):
    project = make_project(manager, name="all", annotations_per_item=2, review_policy="all")
    _, client = member(project, "rev", "reviewer")
    old_agree, young_agree, dis = make_items(project, 3)
    labeled(project, old_agree, {"label": "tech"}, {"label": "tech"})
    labeled(project, young_agree, {"label": "sports"}, {"label": "sports"})
    labeled(project, dis, {"label": "tech"}, {"label": "sports"})
    # make the agreeing items clearly older and younger than each other (created_at decides the age)
    base = Annotation.objects.filter(item=dis).first().created_at
    Annotation.objects.filter(item=old_agree).update(created_at=base - timedelta(hours=2))
    Annotation.objects.filter(item=young_agree).update(created_at=base - timedelta(hours=1))
    assert {status_of(i) for i in (old_agree, young_agree, dis)} == {"in_review"}

    order = []
    for _ in range(3):
        body = review_next(client, project).json()
        order.append((body["item"]["id"], body["disagreement"], body["waiting"]))
        r = verdict(client, body["annotations"][0]["id"], {"verdict": "approve"})
        assert r.status_code == 201, r.content
    assert order == [(dis.pk, True, 3), (old_agree.pk, False, 2), (young_agree.pk, False, 1)]
    assert review_next(client, project).status_code == 204


# ------------------------------------------------------------------ permissions


def test_anonymous_gets_401(tie_project, tie):
    _, (a, _) = tie
    anon = APIClient()
    assert_error(review_next(anon, tie_project), 401)
    assert_error(verdict(anon, a.pk, {"verdict": "approve"}), 401)


@pytest.mark.parametrize("role", ["annotator", "engineer"])
def test_roles_without_review_get_403(tie_project, tie, role):
    _, (a, _) = tie
    _, client = member(tie_project, role=role)
    assert_error(review_next(client, tie_project), 403)
    assert_error(verdict(client, a.pk, {"verdict": "approve"}), 403)
    assert not Review.objects.exists()
    assert status_of(a.item) == "in_review"


def test_an_annotator_cannot_approve_their_own_annotation(tie_project, tie):
    _, (a, _) = tie
    assert_error(verdict(client_for(a.annotator), a.pk, {"verdict": "approve"}), 403)


def test_non_members_get_404_even_for_existing_annotations(tie_project, tie):
    _, (a, _) = tie
    other = make_project(make_user(), name="other")
    _, client = member(other, role="manager")
    assert_error(review_next(client, tie_project), 404)
    assert_error(verdict(client, a.pk, {"verdict": "approve"}), 404)
    assert_error(verdict(client, 10**9, {"verdict": "approve"}), 404)
    assert_error(review_next(client, type(tie_project)(pk=10**9)), 404)
    assert not Review.objects.exists()


@pytest.mark.parametrize("who", ["reviewer", "manager", "staff"])
def test_reviewers_managers_and_staff_may_review(tie_project, tie, who, manager, staff):
    item, (a, _) = tie
    if who == "reviewer":
        user, client = member(tie_project, role="reviewer")
    elif who == "manager":
        user, client = manager, client_for(manager)
    else:
        user, client = staff, client_for(staff)
    assert review_next(client, tie_project).json()["item"]["id"] == item.pk
    r = verdict(client, a.pk, {"verdict": "approve"})
    assert r.status_code == 201, r.content
    assert r.json()["reviewer"] == user.username


# ------------------------------------------------------------------ verdicts


def test_approve_writes_the_annotations_value_as_final_label(tie_project, reviewer_client, tie):
    item, (_, b) = tie
    r = verdict(reviewer_client, b.pk, {"verdict": "approve", "comment": "politics it is"}, "/")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["verdict"] == "approve"
    assert body["annotation"] == b.pk
    assert body["item"] == item.pk
    assert body["item_status"] == "approved"
    assert body["final"] == {"label": "politics"}
    assert body["corrected_value"] is None
    assert body["comment"] == "politics it is"
    final = FinalLabel.objects.get(item=item)
    assert (final.value, final.source) == ({"label": "politics"}, "review")
    assert status_of(item) == "approved"
    review = Review.objects.get()
    assert (review.annotation_id, review.verdict, review.reviewer.username) == (b.pk, "approve", "rev")
    assert review_next(reviewer_client, tie_project).status_code == 204
    # the export reads the final label
    manager_export = client_for(tie_project.memberships.get(role="manager").user).get(
        f"/api/projects/{tie_project.pk}/export?format=jsonl"
    )
    assert b'"final": {"label": "politics"}' in b"".join(manager_export.streaming_content)


def test_correct_writes_the_validated_value_as_adjudication(tie_project, reviewer_client, tie):
    item, (a, _) = tie
    r = verdict(reviewer_client, a.pk, {"verdict": "correct", "value": {"label": "tech"}})
    assert r.status_code == 201, r.content
    assert r.json()["final"] == {"label": "tech"}
    assert r.json()["corrected_value"] == {"label": "tech"}
    final = FinalLabel.objects.get(item=item)
    assert (final.value, final.source) == ({"label": "tech"}, "adjudication")
    assert status_of(item) == "approved"
    assert Review.objects.get().corrected_value == {"label": "tech"}
    # the annotations themselves are untouched
    assert Annotation.objects.get(pk=a.pk).value == {"label": "sports"}


def test_correct_canonicalizes_a_multilabel_value(manager):
    project = make_project(manager, task_type="multilabel", labels=["a", "b", "c"], review_policy="all")
    _, client = member(project, role="reviewer")
    [item] = make_items(project, 1)
    [ann] = labeled(project, item, {"labels": ["a"]})
    r = verdict(client, ann.pk, {"verdict": "correct", "value": {"labels": ["c", "a"]}})
    assert r.status_code == 201, r.content
    assert FinalLabel.objects.get(item=item).value == {"labels": ["a", "c"]}


def test_reject_sends_the_item_back_to_the_queue_for_someone_else(tie_project, reviewer_client, tie):
    """Rejecting one side of a tie (k = 2): that annotation stops counting, the item goes back to the labeling queue
    with one slot free, never served to the rejected annotator (nor the other one); a new annotator's label decides
    it by consensus (docs/review.md; the whole loop: tests/annotation/test_review_loop.py)."""
    item, (a, b) = tie
    r = verdict(reviewer_client, a.pk, {"verdict": "reject", "comment": "text is not news"})
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["item_status"], body["final"], body["verdict"]) == ("in_progress", None, "reject")
    assert (body["adjudication"], body["rejections"]) == (False, 1)
    assert status_of(item) == "in_progress"
    assert not FinalLabel.objects.filter(item=item).exists()
    assert Review.objects.get().comment == "text is not news"
    # the rejected annotation is kept but no longer counts: one slot is free again
    assert Annotation.objects.get(pk=a.pk).counts is False
    assert Annotation.objects.get(pk=b.pk).counts is True
    row = Item.objects.get(pk=item.pk)
    assert (row.annotation_count, row.lease_count, row.rejections) == (1, 0, 1)
    assert review_next(reviewer_client, tie_project).status_code == 204
    assert next_item(client_for(a.annotator), tie_project).status_code == 204
    assert next_item(client_for(b.annotator), tie_project).status_code == 204
    _, fresh = member(tie_project)
    served = next_item(fresh, tie_project)
    assert served.json()["id"] == item.pk
    assert submit(fresh, item.pk, {"label": "politics"}).status_code == 201
    assert status_of(item) == "approved"
    export = client_for(tie_project.memberships.get(role="manager").user).get(
        f"/api/projects/{tie_project.pk}/export?format=jsonl"
    )
    assert b'"final": {"label": "politics"}' in b"".join(export.streaming_content)


def test_after_approval_the_annotator_can_no_longer_edit(tie_project, reviewer_client, tie):
    _, (a, _) = tie
    assert verdict(reviewer_client, a.pk, {"verdict": "approve"}).status_code == 201
    r = client_for(a.annotator).patch(f"/api/annotations/{a.pk}", {"value": {"label": "tech"}}, format="json")
    assert_error(r, 409)


def test_approve_takes_the_value_as_edited_before_the_verdict(tie_project, reviewer_client, tie):
    item, (a, _) = tie
    r = client_for(a.annotator).patch(f"/api/annotations/{a.pk}", {"value": {"label": "tech"}}, format="json")
    assert r.status_code == 200, r.content
    assert status_of(item) == "in_review"  # still a tie
    assert verdict(reviewer_client, a.pk, {"verdict": "approve"}).json()["final"] == {"label": "tech"}
    assert FinalLabel.objects.get(item=item).value == {"label": "tech"}


# ------------------------------------------------------------------ bad input: 400, nothing written


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "verdict"),
        ({"verdict": "maybe"}, "verdict"),
        ({"verdict": None}, "verdict"),
        ({"verdict": ["approve"]}, "verdict"),
        ({"verdict": "approve", "value": {"label": "tech"}}, "value"),
        ({"verdict": "reject", "value": {"label": "tech"}}, "value"),
        ({"verdict": "correct"}, "value"),
        ({"verdict": "correct", "value": None}, "value"),
        ({"verdict": "correct", "value": "tech"}, "value"),
        ({"verdict": "correct", "value": {"label": "weather"}}, "value.label"),
        ({"verdict": "correct", "value": {"labels": ["tech"]}}, "value"),
        ({"verdict": "correct", "value": {"label": "tech", "x": 1}}, "value"),
        ({"verdict": "approve", "comment": "x" * 5001}, "comment"),
        ({"verdict": "approve", "comment": {"a": 1}}, "comment"),
        ({"verdict": "approve", "verdikt": "approve"}, "verdikt"),
    ],
)
def test_bad_input_is_400_with_the_field(tie_project, reviewer_client, tie, body, field):
    item, (a, _) = tie
    err = assert_error(verdict(reviewer_client, a.pk, body), 400)
    assert field in error_fields(err), err
    assert not Review.objects.exists()
    assert status_of(item) == "in_review"
    assert not FinalLabel.objects.filter(item=item).exists()


def test_a_body_that_is_not_an_object_is_400(tie_project, reviewer_client, tie):
    _, (a, _) = tie
    assert_error(verdict(reviewer_client, a.pk, ["approve"]), 400)
    r = reviewer_client.generic(
        "POST", f"/api/annotations/{a.pk}/review", b"{not json", content_type="application/json"
    )
    assert_error(r, 400)
    assert not Review.objects.exists()


def test_span_corrections_are_checked_against_the_text(manager):
    project = make_project(manager, task_type="spans", labels=["PER", "LOC"], review_policy="all")
    _, client = member(project, role="reviewer")
    [item] = make_items(project, 1)  # "text number 0": 13 characters
    [ann] = labeled(project, item, {"spans": [{"start": 0, "end": 4, "label": "PER"}]})
    bad = {"verdict": "correct", "value": {"spans": [{"start": 5, "end": 99, "label": "LOC"}]}}
    err = assert_error(verdict(client, ann.pk, bad), 400)
    assert "value.spans[0].end" in error_fields(err)
    good = {"verdict": "correct", "value": {"spans": [{"start": 5, "end": 11, "label": "LOC"}]}}
    assert verdict(client, ann.pk, good).status_code == 201
    assert FinalLabel.objects.get(item=item).value == {"spans": [{"start": 5, "end": 11, "label": "LOC"}]}


# ------------------------------------------------------------------ decided items: idempotent repeat or 409


def test_the_same_verdict_again_returns_the_first_review(tie_project, reviewer_client, tie):
    _, (a, _) = tie
    first = verdict(reviewer_client, a.pk, {"verdict": "correct", "value": {"label": "tech"}})
    assert first.status_code == 201
    again = verdict(reviewer_client, a.pk, {"verdict": "correct", "value": {"label": "tech"}})
    assert again.status_code == 200, again.content
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["final"] == {"label": "tech"}
    assert Review.objects.count() == 1


@pytest.mark.parametrize(
    "second",
    [
        {"verdict": "approve"},
        {"verdict": "reject"},
        {"verdict": "correct", "value": {"label": "politics"}},
        {"verdict": "correct", "value": {"label": "tech"}, "comment": "changed my mind"},
    ],
)
def test_a_different_verdict_on_a_decided_item_is_409(tie_project, reviewer_client, tie, second):
    item, (a, _) = tie
    assert verdict(reviewer_client, a.pk, {"verdict": "correct", "value": {"label": "tech"}}).status_code == 201
    assert_error(verdict(reviewer_client, a.pk, second), 409)
    assert Review.objects.count() == 1
    assert FinalLabel.objects.get(item=item).value == {"label": "tech"}


def test_another_reviewer_on_a_decided_item_gets_409(tie_project, reviewer_client, tie):
    item, (a, b) = tie
    assert verdict(reviewer_client, a.pk, {"verdict": "approve"}).status_code == 201
    _, other = member(tie_project, role="reviewer")
    assert_error(verdict(other, a.pk, {"verdict": "approve"}), 409)
    assert_error(verdict(other, b.pk, {"verdict": "approve"}), 409)
    assert FinalLabel.objects.get(item=item).value == {"label": "sports"}
    assert Review.objects.count() == 1


def test_items_not_in_review_cannot_be_reviewed(tie_project, reviewer_client):
    half, agreed = make_items(tie_project, 2)
    [h] = labeled(tie_project, half, {"label": "tech"})  # 1 of 2: in progress
    [g, _] = labeled(tie_project, agreed, {"label": "tech"}, {"label": "tech"})  # consensus
    for ann, state in ((h, "in_progress"), (g, "approved")):
        body = assert_error(verdict(reviewer_client, ann.pk, {"verdict": "approve"}), 409)
        assert state in body["errors"][0]["message"]
    assert not Review.objects.exists()
    assert FinalLabel.objects.get(item=agreed).source == "consensus"


def test_the_schema_lists_the_review_endpoints(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert "get" in paths["/api/projects/{id}/review/next/"]
    assert "post" in paths["/api/annotations/{id}/review/"]


# ------------------------------------------------------------------ concurrency: the item lock serializes verdicts


@pytest.mark.django_db(transaction=True)
def test_concurrent_verdicts_on_one_item_one_wins_the_other_409():
    import threading

    from django.db import connections

    manager = make_user("boss2")
    project = make_project(manager, name="race", annotations_per_item=2)
    outcomes: list[tuple[str, int]] = []
    for round_ in range(5):
        [item] = make_items(project, 1, start=round_)
        a, b = labeled(project, item, {"label": "sports"}, {"label": "tech"})
        reviewers = [member(project, f"r{round_}-{i}", "reviewer")[1] for i in range(2)]
        barrier = threading.Barrier(2)
        results: list[tuple[str, int]] = []

        def go(client, ann, body, barrier=barrier, results=results):
            try:
                barrier.wait()
                r = verdict(client, ann.pk, body)
                results.append((body["verdict"], r.status_code))
            finally:
                connections.close_all()

        threads = [
            threading.Thread(target=go, args=(reviewers[0], a, {"verdict": "approve"})),
            threading.Thread(target=go, args=(reviewers[1], b, {"verdict": "reject"})),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(code for _, code in results) == [201, 409], results
        winner = next(v for v, code in results if code == 201)
        assert Review.objects.filter(annotation__item=item).count() == 1
        assert status_of(item) == ("approved" if winner == "approve" else "in_progress")
        assert FinalLabel.objects.filter(item=item).exists() is (winner == "approve")
        outcomes += results
    print("concurrent verdict outcomes:", outcomes)


# ------------------------------------------------------------------ the `sample` policy: drawn once per item


def test_sample_policy_is_decided_once_per_item(manager):
    """review_sample_rate 0.5, k=1: whether an item goes to review is drawn once for the item, so the annotator's
    edit (PATCH, which re-decides the item) leaves it where the submit put it, for every item: some in review,
    some approved (with the edited value as their consensus label)."""
    from annotation.services.submitting import sampled_for_review

    project = make_project(manager, name="sampled", review_policy="sample", review_sample_rate=0.5)
    items = make_items(project, 40)
    _, client = member(project)
    after_submit, after_edit = {}, {}
    for item in items:
        r = submit(client, item.pk, {"label": "sports"})
        assert r.status_code == 201, r.content
        after_submit[item.pk] = status_of(item)
        for label in ("tech", "politics"):  # two edits: each re-decides the item
            r = client.patch(f"/api/annotations/{r.json()['id']}", {"value": {"label": label}}, format="json")
            assert r.status_code == 200, r.content
            assert r.json()["value"] == {"label": label}
        after_edit[item.pk] = status_of(item)
        final = FinalLabel.objects.filter(item=item).first()
        if after_edit[item.pk] == "approved":
            assert (final.value, final.source) == ({"label": "politics"}, "consensus")
        else:
            assert final is None
    assert after_edit == after_submit
    assert set(after_submit.values()) == {"in_review", "approved"}, after_submit
    # the draw is the item's own (its id), at the project's rate
    assert after_submit == {
        i.pk: "in_review" if sampled_for_review(item_id=i.pk, rate=0.5) else "approved" for i in items
    }
    assert not any(sampled_for_review(item_id=i.pk, rate=0.0) for i in items)
    assert all(sampled_for_review(item_id=i.pk, rate=1.0) for i in items)
