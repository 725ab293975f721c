"""Gold end to end through the REST API: gold rows imported, served and answered, the answers scored in the
annotators list, the auto-pause (next answers 403 with paused true), the un-pause that restarts the count, and
PATCH {"gold": null} returning the item to the queue."""

from __future__ import annotations

import uuid

import pytest

from annotation.models import Membership
from tests.annotation.apis.helpers import assert_error, member, run_import
from tests.conftest import client_for, make_project, make_user

pytestmark = pytest.mark.django_db


def submit(client, item_id, value):
    return client.post(
        f"/api/items/{item_id}/annotations",
        {"value": value},
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )


def annotators(client, project):
    r = client.get(f"/api/projects/{project.pk}/annotators/")
    assert r.status_code == 200, r.content
    return {row["username"]: row for row in r.json()["results"]}


def test_imported_gold_is_served_scored_pauses_and_unpauses(django_capture_on_commit_callbacks):
    owner = make_user("gold_manager")
    manager = client_for(owner)
    # every `next` serves an unanswered gold item while one is left (gold_rate 1)
    project = make_project(owner, gold_rate=1.0, gold_pause_below=0.5, gold_pause_min=2, sampling="sequential")
    rows = [
        {"external_id": "g1", "text": "gold one", "gold": {"label": "sports"}},
        {"external_id": "g2", "text": "gold two", "gold": {"label": "tech"}},
        {"external_id": "n1", "text": "normal one"},
        {"external_id": "n2", "text": "normal two"},
    ]
    job = run_import(manager, project, rows=rows)
    assert (job["status"], job["result"]["created"], job["result"]["gold"]) == ("succeeded", 4, 2)
    user, client = member(project, "gilda")

    answers = {"g1": {"label": "politics"}, "g2": {"label": "politics"}}  # both wrong
    served = []
    for _ in range(2):
        item = client.get(f"/api/projects/{project.pk}/next").json()
        served.append(item["external_id"])
        with django_capture_on_commit_callbacks(execute=True):  # the pause check runs once the answer commits
            assert submit(client, item["id"], answers[item["external_id"]]).status_code == 201
    assert sorted(served) == ["g1", "g2"]

    assert annotators(manager, project)["gilda"] == {
        "user_id": user.pk,
        "username": "gilda",
        "paused": True,  # 0 of 2 < 0.5 after gold_pause_min answers
        "gold_answers": 2,
        "gold_accuracy": 0.0,
    }
    body = assert_error(client.get(f"/api/projects/{project.pk}/next"), 403)
    assert body.get("paused") is True

    r = manager.post(f"/api/projects/{project.pk}/annotators/{user.pk}/unpause")
    assert r.status_code == 200, r.content
    assert (r.json()["paused"], r.json()["gold_answers"], r.json()["gold_accuracy"]) == (False, 0, None)
    item = client.get(f"/api/projects/{project.pk}/next").json()  # no gold left for them: a normal item
    assert item["external_id"] == "n1"
    assert Membership.objects.get(project=project, user=user).paused is False

    # the manager takes g1 out of the gold set: gilda's answer now counts for it (k = 1), so it is decided
    g1 = manager.get(f"/api/projects/{project.pk}/items/?is_gold=true&external_id=g1").json()["results"][0]
    assert g1["is_gold"] is True
    r = manager.patch(f"/api/items/{g1['id']}", {"gold": None}, format="json")
    assert (r.json()["is_gold"], r.json()["status"], r.json()["final"]) == (False, "approved", {"label": "politics"})
    assert annotators(manager, project)["gilda"]["gold_answers"] == 0
