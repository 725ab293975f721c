import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from annotation.models import Assignment, Item
from tests.annotation.apis.helpers import (
    annotate,
    assert_error,
    expire_leases,
    make_items,
    member,
    next_item,
    run_import,
    submit,
)
from tests.conftest import client_for, make_project, make_user

pytestmark = pytest.mark.django_db


def got_id(response):
    assert response.status_code == 200, response.content
    return response.json()["id"]


def test_204_when_project_is_empty(project, annotator_client):
    r = next_item(annotator_client, project)
    assert r.status_code == 204
    assert not r.content
    assert Assignment.objects.count() == 0


def test_204_when_everything_is_done(project, annotator_client, annotator):
    [item] = make_items(project, 1)
    annotate(item, annotator, {"label": "sports"})
    assert next_item(annotator_client, project).status_code == 204


def test_response_shape(project, annotator_client, annotator, settings):
    settings.TANDEM_ASSIGNMENT_TTL_SECONDS = 600
    [item] = make_items(project, 1)
    before = timezone.now()
    r = next_item(annotator_client, project)
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) >= {"id", "external_id", "data", "prediction", "assignment"}
    assert body["id"] == item.pk
    assert body["external_id"] == "e0"
    assert body["data"] == {"text": "text number 0", "n": 0}
    assert body["prediction"] is None
    expires = parse_datetime(body["assignment"]["expires_at"])
    assert expires is not None
    assert expires.tzinfo is not None
    assert before + timezone.timedelta(seconds=590) < expires < before + timezone.timedelta(seconds=700)
    a = Assignment.objects.get()
    assert (a.item_id, a.user_id) == (item.pk, annotator.pk)
    # both spellings
    assert annotator_client.get(f"/api/projects/{project.pk}/next/").status_code == 200


def test_highest_priority_first(manager):
    project = make_project(manager, exploration_rate=0.0)
    _a, c = member(project)
    _b, d = member(project)
    items = make_items(project, 4)
    for item, p in zip(items, [0.2, 0.9, 0.5, 0.1], strict=True):
        Item.objects.filter(pk=item.pk).update(priority=p)
    assert got_id(next_item(c, project)) == items[1].pk
    assert got_id(next_item(d, project)) == items[2].pk


def test_sequential_sampling_is_import_order(manager):
    project = make_project(manager, sampling="sequential", exploration_rate=0.0)
    run_import(client_for(manager), project, rows=[{"external_id": x, "text": x} for x in ["zeta", "alpha", "mid"]])
    Item.objects.filter(project=project, external_id="mid").update(priority=5)
    served = []
    for _ in range(3):
        _, client = member(project)
        r = next_item(client, project)
        served.append(r.json()["external_id"])
    assert served == ["zeta", "alpha", "mid"]


def test_uncertainty_sampling_without_predictions_is_import_order(manager):
    project = make_project(manager, exploration_rate=0.0)
    items = make_items(project, 3)
    served = []
    for _ in range(3):
        _, client = member(project)
        served.append(got_id(next_item(client, project)))
    assert served == [i.pk for i in items]


def test_same_item_again_while_assignment_is_live(project, annotator_client):
    make_items(project, 3)
    first = next_item(annotator_client, project).json()
    again = next_item(annotator_client, project).json()
    assert again["id"] == first["id"]
    assert again["assignment"]["expires_at"] == first["assignment"]["expires_at"]
    assert Assignment.objects.count() == 1


def test_k1_two_users_get_different_items(project, annotator_client):
    make_items(project, 2)
    _, other = member(project)
    _, third = member(project)
    x = got_id(next_item(annotator_client, project))
    y = got_id(next_item(other, project))
    assert x != y
    assert next_item(third, project).status_code == 204


def test_overlap_two_annotators_share_but_not_a_third(manager):
    project = make_project(manager, annotations_per_item=2)
    [item] = make_items(project, 1)
    _, a = member(project)
    _, b = member(project)
    _, c = member(project)
    assert got_id(next_item(a, project)) == item.pk
    assert got_id(next_item(b, project)) == item.pk
    assert next_item(c, project).status_code == 204


def test_never_an_item_the_user_already_annotated(manager):
    project = make_project(manager, annotations_per_item=3)
    first, second = make_items(project, 2)
    user, client = member(project)
    annotate(first, user, {"label": "sports"})
    assert got_id(next_item(client, project)) == second.pk
    annotate(second, user, {"label": "sports"})
    Assignment.objects.all().delete()
    Item.objects.update(lease_count=0, lease_expires_at=None)
    assert next_item(client, project).status_code == 204


def test_after_submit_the_user_gets_the_next_item(manager):
    project = make_project(manager, annotations_per_item=2)
    first, second = make_items(project, 2)
    _, client = member(project)
    assert got_id(next_item(client, project)) == first.pk
    assert submit(client, first.pk, {"label": "sports"}).status_code == 201
    assert got_id(next_item(client, project)) == second.pk
    assert submit(client, second.pk, {"label": "tech"}).status_code == 201
    assert next_item(client, project).status_code == 204


def test_expired_assignment_frees_the_slot(project, annotator_client, annotator):
    [item] = make_items(project, 1)
    _, other = member(project)
    assert got_id(next_item(annotator_client, project)) == item.pk
    assert next_item(other, project).status_code == 204
    expire_leases(item.pk)
    assert got_id(next_item(other, project)) == item.pk
    assert Assignment.objects.filter(item=item).count() == 1


def test_expired_assignment_via_ttl_setting(project, annotator_client, settings):
    settings.TANDEM_ASSIGNMENT_TTL_SECONDS = -60
    [item] = make_items(project, 1)
    _, other = member(project)
    assert got_id(next_item(annotator_client, project)) == item.pk
    assert got_id(next_item(other, project)) == item.pk


def test_expired_own_assignment_is_not_served_as_live(project, annotator_client, annotator):
    first, second = make_items(project, 2)
    assert got_id(next_item(annotator_client, project)) == first.pk
    expire_leases(first.pk)
    # the stale lease is dropped; the user is served again (the same item is free again)
    r = next_item(annotator_client, project)
    assert got_id(r) in (first.pk, second.pk)
    assert parse_datetime(r.json()["assignment"]["expires_at"]) > timezone.now()
    assert Assignment.objects.filter(user=annotator).count() == 1


def test_one_expired_lease_out_of_two_frees_a_slot(manager, settings):
    """k=2: A's lease has expired while B's is live -> A's slot is free for C (an expired assignment is no lock)."""
    project = make_project(manager, annotations_per_item=2)
    [item] = make_items(project, 1)
    _, a = member(project)
    _, b = member(project)
    _, c = member(project)
    settings.TANDEM_ASSIGNMENT_TTL_SECONDS = -60  # A's lease is born expired
    assert got_id(next_item(a, project)) == item.pk
    settings.TANDEM_ASSIGNMENT_TTL_SECONDS = 600
    assert got_id(next_item(b, project)) == item.pk
    assert got_id(next_item(c, project)) == item.pk
    assert Assignment.objects.filter(item=item).count() == 2
    # and A, whose lease was taken, cannot submit any more (both slots are held by live leases)
    assert_error(submit(a, item.pk, {"label": "sports"}), 409)
    assert submit(b, item.pk, {"label": "sports"}).status_code == 201
    assert submit(c, item.pk, {"label": "sports"}).status_code == 201


def test_skip_releases_and_is_not_served_again(project, annotator_client, annotator):
    first, second = make_items(project, 2)
    _, other = member(project)
    assert got_id(next_item(annotator_client, project)) == first.pk
    r = annotator_client.post(f"/api/items/{first.pk}/skip")
    assert r.status_code == 204
    assert not Assignment.objects.filter(user=annotator).exists()
    # the skipped item is free for somebody else...
    assert got_id(next_item(other, project)) == first.pk
    # ...and never served to the skipper again
    assert got_id(next_item(annotator_client, project)) == second.pk
    annotator_client.post(f"/api/items/{second.pk}/skip/")
    assert next_item(annotator_client, project).status_code == 204


def test_skip_outsider_404(project):
    [item] = make_items(project, 1)
    assert_error(client_for(make_user()).post(f"/api/items/{item.pk}/skip"), 404)


def test_next_outsider_404(project):
    make_items(project, 1)
    assert_error(next_item(client_for(make_user()), project), 404)
    assert_error(next_item(client_for(make_user()), type("P", (), {"pk": 99999999})()), 404)
    assert Assignment.objects.count() == 0


def test_next_query_count_is_bounded_and_flat(project, annotator, django_assert_max_num_queries):
    def run(n_items, user):
        client = client_for(user)
        with CaptureQueriesContext(connection) as ctx:
            assert next_item(client, project).status_code == 200
        return len(ctx.captured_queries)

    make_items(project, 5)
    small = run(5, annotator)
    make_items(project, 45, start=100)
    user2, _ = member(project)
    _user3, client3 = member(project)
    big = run(50, user2)
    assert big <= small
    with django_assert_max_num_queries(10):
        assert next_item(client3, project).status_code == 200
    # a repeat (live lease) is cheaper still
    with django_assert_max_num_queries(6):
        assert next_item(client3, project).status_code == 200
