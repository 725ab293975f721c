"""PATCH /api/items/{id} {"gold": value | null}: making an item gold, changing and removing its gold value."""

from __future__ import annotations

import pytest
from django.test import Client

from annotation.models import Annotation, Assignment, FinalLabel, Item, ReviewLease
from tests.annotation.apis.helpers import annotate, assert_error, error_fields, make_items, member, next_item
from tests.conftest import client_for, make_project, make_user

pytestmark = pytest.mark.django_db


def patch(client, item, body):
    return client.patch(f"/api/items/{item.pk}", body, format="json")


def final_of(item):
    return FinalLabel.objects.filter(item=item).values_list("value", "source").first()


def test_manager_sets_changes_and_removes_gold(project, manager_client):
    [item] = make_items(project, 1)
    r = patch(manager_client, item, {"gold": {"label": "tech"}})
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["is_gold"], body["gold_value"], body["final"], body["status"]) == (
        True,
        {"label": "tech"},
        {"label": "tech"},
        "approved",
    )
    assert final_of(item) == ({"label": "tech"}, "gold")

    r = patch(manager_client, item, {"gold": {"label": "sports"}})  # a new gold value replaces the old one
    assert r.json()["gold_value"] == {"label": "sports"}
    assert final_of(item) == ({"label": "sports"}, "gold")

    r = patch(manager_client, item, {"gold": None})
    assert r.status_code == 200, r.content
    assert (r.json()["is_gold"], r.json()["gold_value"], r.json()["final"], r.json()["status"]) == (
        False,
        None,
        None,
        "open",
    )
    assert final_of(item) is None
    r = patch(manager_client, item, {"gold": None})  # not gold: nothing changes
    assert r.status_code == 200
    assert r.json()["status"] == "open"


def test_gold_replaces_a_consensus_label(project, manager_client, annotator):
    [item] = make_items(project, 1)
    annotate(item, annotator, {"label": "sports"})
    Item.objects.filter(pk=item.pk).update(status="approved")
    FinalLabel.objects.create(item=item, value={"label": "sports"}, source="consensus")
    patch(manager_client, item, {"gold": {"label": "politics"}})
    assert final_of(item) == ({"label": "politics"}, "gold")
    # the annotation stays, as a gold answer now: outside the overlap's count
    assert list(Annotation.objects.filter(item=item).values_list("value", flat=True)) == [{"label": "sports"}]
    assert Item.objects.get(pk=item.pk).annotation_count == 0
    r = patch(manager_client, item, {"gold": None})  # and counts again once the item is no longer gold
    assert (r.json()["annotation_count"], r.json()["status"], r.json()["final"]) == (1, "approved", {"label": "sports"})
    assert final_of(item) == ({"label": "sports"}, "consensus")  # k = 1: decided again


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"gold": {"label": "cooking"}}, "gold.label"),
        ({"gold": {"labels": ["tech"]}}, "gold"),
        ({"gold": "tech"}, "gold"),
        ({}, "gold"),
        ({"gold": {"label": "tech"}, "status": "open"}, "status"),
    ],
)
def test_bad_bodies_are_400_with_the_field(project, manager_client, body, field):
    [item] = make_items(project, 1)
    err = assert_error(patch(manager_client, item, body), 400)
    assert field in error_fields(err), err
    assert Item.objects.get(pk=item.pk).is_gold is False
    assert final_of(item) is None


def test_span_gold_is_checked_against_the_text():
    owner = make_user()
    project = make_project(owner, task_type="spans", labels=["PER"])
    [item] = make_items(project, 1)  # "text number 0": 13 characters
    err = assert_error(
        patch(client_for(owner), item, {"gold": {"spans": [{"start": 0, "end": 99, "label": "PER"}]}}), 400
    )
    assert error_fields(err) == ["gold.spans[0].end"]
    r = patch(client_for(owner), item, {"gold": {"spans": [{"start": 0, "end": 4, "label": "PER"}]}})
    assert r.json()["gold_value"] == {"spans": [{"start": 0, "end": 4, "label": "PER"}]}


@pytest.mark.parametrize("role", ["annotator", "reviewer", "engineer"])
def test_only_managers_and_staff_set_gold(project, role):
    [item] = make_items(project, 1)
    _, client = member(project, role=role)
    assert_error(patch(client, item, {"gold": {"label": "tech"}}), 403)
    assert_error(patch(client_for(make_user()), item, {"gold": {"label": "tech"}}), 404)  # no member
    assert Item.objects.get(pk=item.pk).is_gold is False
    r = patch(client_for(make_user(staff=True)), item, {"gold": {"label": "tech"}})
    assert r.status_code == 200
    assert r.json()["is_gold"] is True


def test_set_gold_drops_the_items_leases(project, manager_client):
    [item] = make_items(project, 1)
    _, client = member(project)
    assert next_item(client, project).json()["id"] == item.pk
    ReviewLease.objects.create(
        item=item, reviewer=make_user(), project=project, expires_at=Item.objects.get(pk=item.pk).lease_expires_at
    )
    assert Assignment.objects.filter(item=item).count() == 1
    patch(manager_client, item, {"gold": {"label": "tech"}})
    row = Item.objects.get(pk=item.pk)
    assert (row.lease_count, row.lease_expires_at) == (0, None)
    assert not Assignment.objects.filter(item=item).exists()
    assert not ReviewLease.objects.filter(item=item).exists()


def test_clear_returns_the_item_to_the_queue_by_its_counting_annotations(manager):
    project = make_project(manager, annotations_per_item=2)
    client = client_for(manager)
    one, two, tie = make_items(project, 3)
    a, _ = member(project)
    b, _ = member(project)
    for item in (one, two, tie):
        patch(client, item, {"gold": {"label": "tech"}})
    # gold answers (outside the overlap, as the submit path writes them)
    Annotation.objects.create(item=one, annotator=a, value={"label": "sports"})
    Annotation.objects.create(item=two, annotator=a, value={"label": "sports"})
    Annotation.objects.create(item=two, annotator=b, value={"label": "sports"})
    Annotation.objects.create(item=tie, annotator=a, value={"label": "sports"})
    Annotation.objects.create(item=tie, annotator=b, value={"label": "politics"})
    rejected = Annotation.objects.create(item=tie, annotator=make_user(), value={"label": "sports"}, counts=False)

    r = patch(client, one, {"gold": None})
    assert (r.json()["status"], r.json()["annotation_count"], r.json()["final"]) == ("in_progress", 1, None)
    r = patch(client, two, {"gold": None})  # k answers: decided by consensus
    assert (r.json()["status"], r.json()["annotation_count"]) == ("approved", 2)
    assert final_of(two) == ({"label": "sports"}, "consensus")
    r = patch(client, tie, {"gold": None})  # a tie (the rejected one does not count) goes to review
    assert (r.json()["status"], r.json()["annotation_count"], r.json()["final"]) == ("in_review", 2, None)
    assert Annotation.objects.get(pk=rejected.pk).counts is False


def test_patch_is_in_the_schema(db):
    paths = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    operation = paths["/api/items/{id}/"]["patch"]
    assert "requestBody" in operation
    assert "/api/projects/{id}/annotators/" in paths
    assert "post" in paths["/api/projects/{id}/annotators/{user_id}/unpause/"]
