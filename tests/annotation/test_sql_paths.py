"""The hand-written PostgreSQL hot paths (token authentication, the access check, next's queue statement,
submit's lock and write) work with and without server-side prepared statements (TANDEM_PG_PREPARE=0 behind a
pooler that does not keep sessions), with a session and with an API token."""

import uuid

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Annotation, Assignment, FinalLabel, Item
from tests.conftest import add_member, client_for, make_project, make_user


@pytest.mark.django_db
@pytest.mark.parametrize("prepare", [True, False])
@pytest.mark.parametrize("token", [False, True], ids=["session", "token"])
def test_next_and_submit_with_and_without_prepared_statements(settings, prepare, token):
    assert connection.vendor == "postgresql"
    settings.TANDEM_PG_PREPARE = prepare
    project = make_project(labels=("a", "b"))
    Item.objects.bulk_create([Item(project=project, external_id=f"e{i}", data={"text": f"t{i}"}) for i in range(3)])
    user = make_user()
    add_member(project, user)
    if token:  # DRF token authentication (annotation.auth: one prepared statement of its own)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    else:
        client = client_for(user)
    for _ in range(3):
        r = client.get(f"/api/projects/{project.pk}/next")
        assert r.status_code == 200, r.content
        item_id = r.json()["id"]
        assert Assignment.objects.filter(item_id=item_id, user=user).exists()
        r = client.post(
            f"/api/items/{item_id}/annotations",
            {"value": {"label": "b"}},
            format="json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )
        assert r.status_code == 201, r.content
    assert client.get(f"/api/projects/{project.pk}/next").status_code == 204
    assert Annotation.objects.filter(annotator=user).count() == 3
    assert FinalLabel.objects.filter(item__project=project, value={"label": "b"}).count() == 3
    assert not Assignment.objects.exists()
    assert set(Item.objects.values_list("status", "annotation_count", "lease_count")) == {("approved", 1, 0)}


@pytest.mark.django_db
@pytest.mark.parametrize("prepare", [True, False])
def test_gold_next_and_submit_and_the_pause_with_and_without_prepared_statements(settings, prepare):
    """The gold statement (gold_rate 1: tried before the queue's), the gold answer through the same lock and write,
    the served suggestion copied from the lease, and the paused flag read by the access statement."""
    settings.TANDEM_PG_PREPARE = prepare
    project = make_project(labels=("a", "b"), gold_rate=1.0)
    normal, gold = Item.objects.bulk_create(
        [
            Item(project=project, external_id="n", data={"text": "t"}),
            Item(project=project, external_id="g", data={"text": "t"}, is_gold=True, status="approved"),
        ]
    )
    FinalLabel.objects.create(item=gold, value={"label": "a"}, source="gold")
    prediction = {"model_version": 1, "kind": "fine_tuned", "value": {"label": "b"}, "confidence": 0.9}
    Item.objects.update(prediction=prediction)
    user = make_user()
    add_member(project, user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    served = []
    for _ in range(2):
        r = client.get(f"/api/projects/{project.pk}/next")
        assert r.status_code == 200, r.content
        assert r.json()["prediction"]["preselect"] is True
        served.append(r.json()["id"])
        r = client.post(
            f"/api/items/{served[-1]}/annotations",
            {"value": {"label": "b"}},
            format="json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )
        assert r.status_code == 201, r.content
        assert r.json()["accepted_suggestion"] is True
    assert served == [gold.pk, normal.pk]
    assert client.get(f"/api/projects/{project.pk}/next").status_code == 204
    assert list(FinalLabel.objects.filter(item=gold).values_list("value", "source")) == [({"label": "a"}, "gold")]
    assert Annotation.objects.get(item=gold).suggestion == prediction
    project.memberships.filter(user=user).update(paused=True)
    r = client.get(f"/api/projects/{project.pk}/next")
    assert (r.status_code, r.json()["paused"]) == (403, True)
