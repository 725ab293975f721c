"""GET /api/projects/{id}/history: an annotator's own annotations with the reviewers' verdicts and comments (a
rejected one stays visible to its annotator, says it no longer counts, and why)."""

from __future__ import annotations

import pytest

from tests.annotation.apis.helpers import assert_error, label_next, make_items, member
from tests.conftest import client_for, make_project

pytestmark = pytest.mark.django_db


def test_the_annotator_reads_the_rejection_and_its_comment_in_their_history(manager):
    project = make_project(manager, name="hist", review_policy="all")
    make_items(project, 3)
    _, alice = member(project, "alice")
    _, bob = member(project, "bob")
    _, rev = member(project, "rev", "reviewer")
    rejected = label_next(alice, project, {"label": "sports"})
    approved = label_next(alice, project, {"label": "tech"})
    label_next(bob, project, {"label": "politics"})  # bob's work is not alice's history
    assert (
        rev.post(
            f"/api/annotations/{rejected['id']}/review",
            {"verdict": "reject", "comment": "politics, see §2"},
            format="json",
        ).status_code
        == 201
    )
    task = rev.get(f"/api/projects/{project.pk}/review/next").json()
    assert (
        rev.post(
            f"/api/annotations/{task['annotations'][0]['id']}/review", {"verdict": "approve"}, format="json"
        ).status_code
        == 201
    )

    body = alice.get(f"/api/projects/{project.pk}/history").json()
    assert body["count"] == 2
    rows = {row["id"]: row for row in body["results"]}
    assert [row["id"] for row in body["results"]] == sorted(rows, reverse=True)  # newest first
    assert set(rows) == {rejected["id"], approved["id"]}
    gone = rows[rejected["id"]]
    assert gone["counts"] is False
    assert (gone["review"]["verdict"], gone["review"]["comment"], gone["review"]["reviewer"]) == (
        "reject",
        "politics, see §2",
        "rev",
    )
    assert gone["external_id"]
    assert gone["text"]
    kept = rows[approved["id"]]
    assert kept["counts"] is True
    assert kept["review"]["verdict"] == "approve"

    only = alice.get(f"/api/projects/{project.pk}/history?verdict=reject").json()
    assert [row["id"] for row in only["results"]] == [rejected["id"]]
    assert_error(alice.get(f"/api/projects/{project.pk}/history?verdict=maybe"), 400)


def test_history_is_only_your_own_and_only_in_your_projects(manager, django_assert_max_num_queries):
    project = make_project(manager, name="own")
    make_items(project, 3)
    _, alice = member(project, "alice")
    for _ in range(3):
        label_next(alice, project, {"label": "sports"})
    assert client_for(manager).get(f"/api/projects/{project.pk}/history").json()["count"] == 0
    other = make_project(manager, name="other")
    assert_error(alice.get(f"/api/projects/{other.pk}/history"), 404)
    with django_assert_max_num_queries(6):  # access, count, page, reviews prefetch: not one query per row
        assert len(alice.get(f"/api/projects/{project.pk}/history").json()["results"]) == 3
