"""GET /api/projects/{id}/annotators/ and POST /api/projects/{id}/annotators/{user_id}/unpause."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import Annotation, Membership
from annotation.services.gold import gold_set
from tests.annotation.apis.helpers import assert_error, make_items, member
from tests.conftest import client_for, make_project, make_user

pytestmark = pytest.mark.django_db


def url(project, suffix=""):
    return f"/api/projects/{project.pk}/annotators{suffix}"


def rows(client, project, query=""):
    r = client.get(url(project, query))
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"count", "next", "previous", "results"}
    return {row["username"]: row for row in body["results"]}


def test_lists_members_with_gold_scores_and_pause(project, manager, manager_client):
    gold = [gold_set(item=i, value={"label": "tech"}) for i in make_items(project, 3)]
    alice, _ = member(project, "alice")
    bob, _ = member(project, "bob")
    rita, _ = member(project, "rita", "reviewer")
    for g, value in zip(gold, ["tech", "tech", "sports"], strict=True):
        Annotation.objects.create(item=g, annotator=alice, value={"label": value})
    Annotation.objects.create(item=gold[0], annotator=rita, value={"label": "tech"})
    Membership.objects.filter(project=project, user=bob).update(paused=True)

    got = rows(manager_client, project)
    assert got["alice"] == {
        "user_id": alice.pk,
        "username": "alice",
        "paused": False,
        "gold_answers": 3,
        "gold_accuracy": pytest.approx(2 / 3),
    }
    assert got["bob"] == {
        "user_id": bob.pk,
        "username": "bob",
        "paused": True,
        "gold_answers": 0,
        "gold_accuracy": None,
    }
    assert (got["rita"]["gold_answers"], got["rita"]["gold_accuracy"]) == (1, 1.0)
    assert set(got) == {"manager", "alice", "bob", "rita"}
    assert rows(manager_client, project, "/?page_size=2").keys() == {"manager", "alice"}


@pytest.mark.parametrize("role", ["reviewer", "engineer"])
def test_reviewers_and_engineers_may_list(project, role):
    _, client = member(project, role=role)
    assert "manager" in rows(client, project)
    assert "manager" in rows(client_for(make_user(staff=True)), project)


def test_annotators_and_outsiders_may_not_list(project, annotator_client):
    assert_error(annotator_client.get(url(project)), 403)
    assert_error(client_for(make_user()).get(url(project)), 404)


def test_list_is_a_constant_number_of_queries(project, manager_client):
    gold = gold_set(item=make_items(project, 1)[0], value={"label": "tech"})

    def count():
        with CaptureQueriesContext(connection) as ctx:
            rows(manager_client, project)
        return len(ctx.captured_queries)

    first = count()
    for _ in range(5):
        user, _ = member(project)
        Annotation.objects.create(item=gold, annotator=user, value={"label": "tech"})
    assert count() == first


def test_unpause_restarts_the_count(project, manager_client):
    gold = gold_set(item=make_items(project, 1)[0], value={"label": "tech"})
    user, _ = member(project, "paula")
    Annotation.objects.create(item=gold, annotator=user, value={"label": "sports"})
    Membership.objects.filter(project=project, user=user).update(paused=True)
    assert rows(manager_client, project)["paula"]["gold_answers"] == 1

    r = manager_client.post(url(project, f"/{user.pk}/unpause"))
    assert r.status_code == 200, r.content
    assert r.json() == {
        "user_id": user.pk,
        "username": "paula",
        "paused": False,
        "gold_answers": 0,
        "gold_accuracy": None,
    }
    membership = Membership.objects.get(project=project, user=user)
    assert membership.paused is False
    assert membership.gold_since is not None
    assert rows(manager_client, project)["paula"]["gold_answers"] == 0


def test_unpause_needs_a_manager_and_a_member(project, manager_client):
    user, _ = member(project)
    Membership.objects.filter(project=project, user=user).update(paused=True)
    for role in ("annotator", "reviewer", "engineer"):
        _, client = member(project, role=role)
        assert_error(client.post(url(project, f"/{user.pk}/unpause")), 403)
    assert Membership.objects.get(project=project, user=user).paused is True
    assert_error(manager_client.post(url(project, f"/{make_user().pk}/unpause")), 404)  # not a member
    other = make_project()
    assert_error(manager_client.post(f"/api/projects/{other.pk}/annotators/{user.pk}/unpause"), 404)
    r = client_for(make_user(staff=True)).post(url(project, f"/{user.pk}/unpause"))
    assert r.status_code == 200
    assert r.json()["paused"] is False
