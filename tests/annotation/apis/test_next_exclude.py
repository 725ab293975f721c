"""GET /api/projects/{id}/next?exclude=<id>[,<id>...]: prefetching the next item while the expert works on the current one.

There is one implementation of next (annotation.services.queue: the access check, then the queue statement);
the `path` fixture checks that each behaviour test went through that statement."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from annotation.models import Assignment, Item
from annotation.services import queue
from annotation.services.queue import MAX_EXCLUDE, item_next_for_annotator
from tests.annotation.apis.helpers import annotate, assert_error, expire_leases, make_items, member, submit
from tests.conftest import add_member, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def path(monkeypatch):
    """Records the calls of the queue statement (_next_statement), and fails the test if it never ran."""
    assert connection.vendor == "postgresql"
    calls: list[dict] = []
    real = queue._next_statement
    monkeypatch.setattr(queue, "_next_statement", lambda **kw: calls.append(kw) or real(**kw))
    yield calls
    assert calls, "_next_statement did not run"


def nxt(client, project, *exclude, raw: str | None = None):
    query = raw if raw is not None else ",".join(str(i) for i in exclude)
    url = f"/api/projects/{project.pk}/next"
    return client.get(f"{url}?exclude={query}" if raw is not None or exclude else url)


def got(response) -> int:
    assert response.status_code == 200, (response.status_code, response.content[:500])
    return response.json()["id"]


def leases_of(user) -> list[int]:
    return sorted(Assignment.objects.filter(user=user).values_list("item_id", flat=True))


def assert_lease_columns(project) -> None:
    """lease_count on every item equals its Assignment rows (the slot accounting stays exact)."""
    for item in Item.objects.filter(project=project):
        assert item.lease_count == Assignment.objects.filter(item=item).count(), item.pk


def test_prefetch_k1(project, path):
    a, b, c = make_items(project, 3)
    user, client = member(project)
    assert got(nxt(client, project)) == a.pk
    r1 = nxt(client, project, a.pk)
    assert got(r1) == b.pk  # the prefetched item: a new lease, the current one is kept
    assert leases_of(user) == [a.pk, b.pk]
    # asking again with the same exclude is idempotent: the same lease, the same expiry
    r2 = nxt(client, project, a.pk)
    assert got(r2) == b.pk
    assert r2.json()["assignment"]["expires_at"] == r1.json()["assignment"]["expires_at"]
    # without exclude, the oldest live lease comes first
    assert got(nxt(client, project)) == a.pk
    assert leases_of(user) == [a.pk, b.pk]
    # submit the current item; the prefetched one becomes current and the client prefetches again
    assert submit(client, a.pk, {"label": "sports"}).status_code == 201
    assert got(nxt(client, project, b.pk)) == c.pk
    assert leases_of(user) == [b.pk, c.pk]
    # nothing left outside the excluded ones: 204, and the held leases stay as they are
    assert nxt(client, project, b.pk, c.pk).status_code == 204
    assert leases_of(user) == [b.pk, c.pk]
    assert_lease_columns(project)
    # another expert finds every slot leased (k=1)
    _, other = member(project)
    assert nxt(other, project).status_code == 204


def test_excluded_items_are_never_leased(project, path):
    items = make_items(project, 4)
    user, client = member(project)
    ids = [i.pk for i in items]
    # the excluded ones are free and first in serving order, still never picked
    assert got(nxt(client, project, ids[0], ids[1], ids[2])) == ids[3]
    assert leases_of(user) == [ids[3]]
    # an excluded id may be this user's only live lease: next neither returns nor drops it
    assert nxt(client, project, ids[3], raw=f"{ids[0]},{ids[1]},{ids[2]},{ids[3]}").status_code == 204
    assert leases_of(user) == [ids[3]]
    assert_lease_columns(project)


def test_prefetch_k2_never_gives_a_user_both_slots_of_one_item(path):
    project = make_project(labels=("a", "b"), annotations_per_item=2)
    x, y = make_items(project, 2)
    u1, c1 = member(project)
    _u2, c2 = member(project)
    assert got(nxt(c1, project)) == x.pk
    # x still has a free slot (k=2), but it is u1's current item: the prefetch must be another item
    assert got(nxt(c1, project, x.pk)) == y.pk
    assert nxt(c1, project, x.pk, y.pk).status_code == 204
    assert leases_of(u1) == [x.pk, y.pk]
    # the second slots go to another expert
    assert got(nxt(c2, project)) == x.pk
    assert got(nxt(c2, project, x.pk)) == y.pk
    assert nxt(c2, project, x.pk, y.pk).status_code == 204
    for item in (x, y):
        item.refresh_from_db()
        assert item.lease_count == 2
    assert_lease_columns(project)
    # each expert labels both; every item ends with its 2 annotations and no leases
    for client, order in ((c1, (x, y)), (c2, (y, x))):
        for item in order:
            assert submit(client, item.pk, {"label": "a"}).status_code == 201
    assert Assignment.objects.count() == 0
    assert set(Item.objects.filter(project=project).values_list("annotation_count", flat=True)) == {2}


def test_a_user_holds_at_most_one_plus_len_exclude_leases(project, path):
    make_items(project, 12)
    user, client = member(project)
    held: list[int] = []
    for _ in range(MAX_EXCLUDE + 3):
        exclude = held[-MAX_EXCLUDE:]
        new = got(nxt(client, project, *exclude))
        assert new not in exclude
        if new not in held:
            held.append(new)
        assert len(leases_of(user)) <= 1 + MAX_EXCLUDE
        # the leases this call can have added: the one returned; everything else was already held
        assert new in leases_of(user)
    assert len(set(held)) == len(held)
    assert_lease_columns(project)


def test_exclude_with_annotated_skipped_and_expired_items(project, path):
    a, b, c, d = make_items(project, 4)
    user, client = member(project)
    other, other_client = member(project)
    annotate(a, user, {"label": "sports"})  # a is full (k=1)
    assert got(nxt(other_client, project)) == b.pk
    assert got(nxt(client, project, c.pk)) == d.pk  # a full, b leased, c excluded
    # the other expert's lease on b expires: the slot is free again and reclaimed
    expire_leases(b.pk)
    assert got(nxt(client, project, d.pk)) == b.pk
    assert leases_of(other) == []
    assert leases_of(user) == [b.pk, d.pk]
    assert client.post(f"/api/items/{b.pk}/skip").status_code == 204
    assert got(nxt(client, project, d.pk)) == c.pk
    assert nxt(client, project, c.pk, d.pk).status_code == 204  # a annotated, b skipped
    assert leases_of(user) == [c.pk, d.pk]
    assert_lease_columns(project)


def test_exclude_ids_of_other_projects_or_unknown_are_harmless(project, path):
    [a] = make_items(project, 1)
    other_project = make_project(name="other")
    [foreign] = make_items(other_project, 1, start=50)
    _user, client = member(project)
    assert got(nxt(client, project, foreign.pk, 987654321)) == a.pk
    assert got(nxt(client, project, raw=f"%20{foreign.pk}%20,%20,{a.pk + 1000}")) == a.pk
    assert got(nxt(client, project, raw="")) == a.pk  # an empty exclude is no exclude
    # the parameter may also repeat
    r = client.get(f"/api/projects/{project.pk}/next?exclude={a.pk}&exclude={foreign.pk}")
    assert r.status_code == 204


def test_expiry_of_the_prefetched_lease_is_its_own(project, path, settings):
    settings.TANDEM_ASSIGNMENT_TTL_SECONDS = 600
    a, b = make_items(project, 2)
    user, client = member(project)
    first = nxt(client, project)
    second = nxt(client, project, a.pk)
    assert got(first) == a.pk
    assert got(second) == b.pk
    e1 = parse_datetime(first.json()["assignment"]["expires_at"])
    e2 = parse_datetime(second.json()["assignment"]["expires_at"])
    assert e2 >= e1
    assert Assignment.objects.get(user=user, item=b).expires_at == e2


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("abc", "'abc' is not an item id"),
        ("1,x", "'x' is not an item id"),
        ("-1", "'-1' is not an item id"),
        ("0", "'0' is not an item id"),
        ("1.5", "'1.5' is not an item id"),
        ("99999999999999999999", "is not an item id"),
        ("%C2%B2", "is not an item id"),  # a superscript two: isdigit() but no integer
        ("1,2,3,4,5,6", "At most 5 item ids, got 6."),
    ],
)
def test_bad_exclude_is_400_with_the_field(project, query, message):
    make_items(project, 1)
    _user, client = member(project)
    body = assert_error(client.get(f"/api/projects/{project.pk}/next?exclude={query}"), 400)
    assert body["errors"][0]["field"] == "exclude"
    assert message in body["errors"][0]["message"]
    assert Assignment.objects.count() == 0


def test_exclude_keeps_access_rules(project):
    make_items(project, 1)
    _, stranger = member(make_project(name="elsewhere"))
    # access is checked before the parameter: a non-member learns nothing, even from a bad value
    assert_error(stranger.get(f"/api/projects/{project.pk}/next?exclude=1"), 404)
    assert_error(stranger.get(f"/api/projects/{project.pk}/next?exclude=x"), 404)
    assert APIClient().get(f"/api/projects/{project.pk}/next?exclude=1").status_code in (401, 403)
    assert Assignment.objects.count() == 0


def test_service_refuses_more_than_max_exclude(project):
    user, _ = member(project)
    with pytest.raises(ValueError, match="at most"):
        item_next_for_annotator(project=project, user=user, exclude=range(1, MAX_EXCLUDE + 2))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("k", [1, 2])
def test_concurrent_prefetching_experts_never_share_a_slot(k):
    """Experts asking next and next?exclude=<current> at once (real transactions, one connection each):
    no item gets more than k leases, nobody holds two slots of one item or more than 2 leases, and the
    lease columns stay exact."""
    project = make_project(labels=("a", "b"), annotations_per_item=k)
    all_items = make_items(project, 9)
    experts = [make_user() for _ in range(8)]
    for user in experts:
        add_member(project, user)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(experts))

    def work(user) -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(3):
                first = item_next_for_annotator(project=project, user=user)
                if first is None:
                    return
                item_next_for_annotator(project=project, user=user, exclude=[first.item.pk])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def check() -> list[tuple[int, int]]:
        leases = list(Assignment.objects.values_list("item_id", "user_id"))
        assert len(leases) == len(set(leases))
        per_item = {i.pk: sum(1 for item_id, _ in leases if item_id == i.pk) for i in all_items}
        assert all(n <= k for n in per_item.values()), per_item
        per_user = {u.pk: sum(1 for _, user_id in leases if user_id == u.pk) for u in experts}
        assert all(n <= 2 for n in per_user.values()), per_user
        assert_lease_columns(project)
        return leases

    threads = [threading.Thread(target=work, args=(u,)) for u in experts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    check()
    # whoever was turned away while others held row locks gets the free slots when asking again
    for user in experts:
        first = item_next_for_annotator(project=project, user=user)
        if first is not None:
            second = item_next_for_annotator(project=project, user=user, exclude=[first.item.pk])
            assert second is None or second.item.pk != first.item.pk
    # 8 experts x 2 leases = 16 wanted; 9 items x k slots to give
    assert len(check()) == min(16, 9 * k)


def test_exclude_is_in_the_openapi_schema():
    from django.test import Client

    paths = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    [path] = [p for p in paths if p.startswith("/api/projects/{id}/next") or p.startswith("/api/projects/{pk}/next")]
    params = {p["name"] for p in paths[path]["get"].get("parameters", [])}
    assert "exclude" in params, paths[path]


@pytest.mark.parametrize(
    "path",
    [
        "/api/projects/99999999999999999999/next",
        "/api/items/99999999999999999999/annotations",
        "/api/items/99999999999999999999/explanation",
        "/api/projects/99999999999999999999/model-versions",
        "/projects/99999999999999999999/label",
    ],
)
def test_ids_beyond_64_bits_are_404_not_500(manager_client, path):
    assert manager_client.get(path).status_code == 404
