import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import FinalLabel, Item
from tests.annotation.apis.helpers import annotate, assert_error, error_fields, make_items
from tests.conftest import add_member, client_for, make_project, make_user

pytestmark = pytest.mark.django_db


def items_url(project, query=""):
    return f"/api/projects/{project.pk}/items{query}"


def ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_pagination_shape_and_pages(project, annotator_client):
    items = make_items(project, 7)
    r = annotator_client.get(items_url(project, "?page_size=3"))
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 7
    assert body["previous"] is None
    assert body["next"]
    assert [row["id"] for row in body["results"]] == [i.pk for i in items[:3]]
    row = body["results"][0]
    # an annotator is blind (issue 13): the item's data, nothing others' work or the model decided
    assert set(row) == {"id", "external_id", "data", "created_at"}
    assert row["data"]["text"] == "text number 0"
    assert row["external_id"] == "e0"

    r = annotator_client.get(items_url(project, "?page_size=3&page=3"))
    assert ids(r) == [items[6].pk]
    assert r.json()["next"] is None
    assert r.json()["previous"]
    # both spellings
    assert annotator_client.get(items_url(project, "/?page_size=3")).json()["count"] == 7


def test_page_size_up_to_1000_and_clamped(project, annotator_client):
    make_items(project, 1005)
    r = annotator_client.get(items_url(project, "?page_size=1000"))
    assert len(ids(r)) == 1000
    r = annotator_client.get(items_url(project, "?page_size=5000"))
    assert len(ids(r)) == 1000
    assert r.json()["count"] == 1005
    assert r.json()["next"]


def test_out_of_range_page_is_404_json(project, annotator_client):
    make_items(project, 2)
    assert_error(annotator_client.get(items_url(project, "?page=9")), 404)


def test_filter_status(project, manager_client):
    a, b, c = make_items(project, 3)
    Item.objects.filter(pk=b.pk).update(status="approved")
    Item.objects.filter(pk=c.pk).update(status="in_review")
    assert ids(manager_client.get(items_url(project, "?status=approved"))) == [b.pk]
    assert ids(manager_client.get(items_url(project, "?status=open"))) == [a.pk]
    assert ids(manager_client.get(items_url(project, "?status=approved&status=in_review"))) == [b.pk, c.pk]


def test_invalid_status_filter_is_400(project, manager_client):
    make_items(project, 1)
    body = assert_error(manager_client.get(items_url(project, "?status=finished")), 400)
    assert "status" in error_fields(body)


@pytest.mark.parametrize("query", ["?uncertainty_min=abc", "?page_size=abc&uncertainty_max=x"])
def test_invalid_number_filter_is_400(project, manager_client, query):
    make_items(project, 1)
    assert_error(manager_client.get(items_url(project, query)), 400)


def test_filter_label_uses_final_label(project, manager_client, annotator):
    a, b, c = make_items(project, 3)
    FinalLabel.objects.create(item=a, value={"label": "sports"}, source="consensus")
    FinalLabel.objects.create(item=b, value={"label": "tech"}, source="consensus")
    annotate(c, annotator, {"label": "sports"})  # an annotation is not a final label
    assert ids(manager_client.get(items_url(project, "?label=sports"))) == [a.pk]
    assert ids(manager_client.get(items_url(project, "?label=tech"))) == [b.pk]
    assert ids(manager_client.get(items_url(project, "?label=politics"))) == []
    r = manager_client.get(items_url(project, "?label=sports"))
    assert r.json()["results"][0]["final"] == {"label": "sports"}


def test_filter_label_multilabel_and_spans():
    owner = make_user()
    ml = make_project(owner, task_type="multilabel", labels=["a", "b", "c"])
    x, y = make_items(ml, 2)
    FinalLabel.objects.create(item=x, value={"labels": ["a", "b"]}, source="consensus")
    FinalLabel.objects.create(item=y, value={"labels": ["c"]}, source="consensus")
    client = client_for(owner)
    assert ids(client.get(items_url(ml, "?label=b"))) == [x.pk]
    assert ids(client.get(items_url(ml, "?label=c"))) == [y.pk]

    sp = make_project(owner, task_type="spans", labels=["PER", "LOC"])
    s1, s2 = make_items(sp, 2)
    FinalLabel.objects.create(item=s1, value={"spans": [{"start": 0, "end": 4, "label": "PER"}]}, source="consensus")
    FinalLabel.objects.create(item=s2, value={"spans": []}, source="consensus")
    assert ids(client.get(items_url(sp, "?label=PER"))) == [s1.pk]
    assert ids(client.get(items_url(sp, "?label=LOC"))) == []


def test_filter_annotator_by_username(project, manager_client, annotator):
    other = make_user("other")
    add_member(project, other)
    a, b, _c = make_items(project, 3)
    annotate(a, annotator, {"label": "sports"})
    annotate(b, other, {"label": "tech"})
    assert ids(manager_client.get(items_url(project, "?annotator=ann"))) == [a.pk]
    assert ids(manager_client.get(items_url(project, "?annotator=other"))) == [b.pk]
    assert ids(manager_client.get(items_url(project, "?annotator=nobody"))) == []


def test_filter_uncertainty_range(project, manager_client):
    items = make_items(project, 4)
    for item, u in zip(items, [0.1, 0.4, 0.7, None], strict=True):
        Item.objects.filter(pk=item.pk).update(uncertainty=u)
    assert ids(manager_client.get(items_url(project, "?uncertainty_min=0.4"))) == [items[1].pk, items[2].pk]
    assert ids(manager_client.get(items_url(project, "?uncertainty_max=0.4"))) == [items[0].pk, items[1].pk]
    assert ids(manager_client.get(items_url(project, "?uncertainty_min=0.2&uncertainty_max=0.5"))) == [items[1].pk]


def test_items_outsider_404(project):
    make_items(project, 1)
    assert_error(client_for(make_user()).get(items_url(project)), 404)


@pytest.mark.parametrize("who", ["annotator", "manager"])
def test_items_list_is_a_constant_number_of_queries(project, manager, annotator, django_assert_max_num_queries, who):
    client = client_for(annotator if who == "annotator" else manager)

    def run(n_items):
        with CaptureQueriesContext(connection) as ctx:
            r = client.get(items_url(project, "?page_size=100"))
        assert r.status_code == 200
        assert len(r.json()["results"]) == n_items
        return len(ctx.captured_queries)

    items = make_items(project, 5)
    for item in items:
        FinalLabel.objects.create(item=item, value={"label": "sports"}, source="consensus")
    small = run(5)
    more = make_items(project, 45, start=100)
    for item in more:
        FinalLabel.objects.create(item=item, value={"label": "tech"}, source="consensus")
    with django_assert_max_num_queries(small):
        r = client.get(items_url(project, "?page_size=100"))
    assert len(r.json()["results"]) == 50
    assert run(50) == small
    assert small <= 5


def test_item_detail(project, annotator_client, manager_client):
    [item] = make_items(project, 1)
    FinalLabel.objects.create(item=item, value={"label": "tech"}, source="consensus")
    r = annotator_client.get(f"/api/items/{item.pk}")
    assert r.status_code == 200
    assert r.json()["id"] == item.pk
    assert set(r.json()) == {"id", "external_id", "data", "created_at"}  # blind
    r = manager_client.get(f"/api/items/{item.pk}")
    assert r.status_code == 200
    assert r.json()["final"] == {"label": "tech"}
    assert r.json()["gold_value"] is None
    assert r.json()["is_gold"] is False
    assert_error(client_for(make_user()).get(f"/api/items/{item.pk}"), 404)
    assert_error(annotator_client.get("/api/items/99999999"), 404)


def test_full_shape_for_those_who_inspect(project, manager_client):
    items = make_items(project, 2)
    Item.objects.filter(pk=items[1].pk).update(is_gold=True, status="approved")
    FinalLabel.objects.create(item=items[1], value={"label": "politics"}, source="gold")
    rows = manager_client.get(items_url(project)).json()["results"]
    assert set(rows[0]) == {
        "id",
        "external_id",
        "data",
        "status",
        "priority",
        "uncertainty",
        "is_gold",
        "annotation_count",
        "final",
        "gold_value",
        "prediction",
        "created_at",
    }
    assert (rows[0]["is_gold"], rows[0]["gold_value"], rows[0]["final"]) == (False, None, None)
    assert (rows[1]["is_gold"], rows[1]["gold_value"]) == (True, {"label": "politics"})
    assert ids(manager_client.get(items_url(project, "?is_gold=true"))) == [items[1].pk]
    assert ids(manager_client.get(items_url(project, "?is_gold=false"))) == [items[0].pk]


@pytest.mark.parametrize("role", ["reviewer", "engineer"])
def test_reviewers_and_engineers_see_everything(project, role):
    [item] = make_items(project, 1)
    FinalLabel.objects.create(item=item, value={"label": "tech"}, source="consensus")
    user = make_user()
    add_member(project, user, role)
    client = client_for(user)
    [row] = client.get(items_url(project, "?label=tech")).json()["results"]
    assert row["final"] == {"label": "tech"}
    assert client.get(f"/api/items/{item.pk}").json()["final"] == {"label": "tech"}
