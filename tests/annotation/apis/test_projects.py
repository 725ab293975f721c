import re

import pytest

from annotation.models import Assignment, Membership, Project
from annotation.services.gold import gold_set
from tests.annotation.apis.helpers import annotate, assert_error, error_fields, make_items
from tests.conftest import add_member, client_for, make_project, make_user

pytestmark = pytest.mark.django_db

COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def create(client, **payload):
    payload.setdefault("name", "proj")
    return client.post("/api/projects/", payload, format="json")


# ------------------------------------------------------------------ create


def test_create_with_string_labels_fills_defaults():
    user = make_user()
    r = create(client_for(user), labels=["sports", "politics", "tech"])
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["task_type"] == "classification"
    assert [label["name"] for label in body["labels"]] == ["sports", "politics", "tech"]
    assert [label["hotkey"] for label in body["labels"]] == ["1", "2", "3"]
    assert all(COLOR.match(label["color"]) for label in body["labels"])
    assert len({label["color"] for label in body["labels"]}) == 3
    assert body["annotations_per_item"] == 1
    assert body["review_policy"] == "none"
    assert body["sampling"] == "uncertainty"
    assert body["exploration_rate"] == pytest.approx(0.1)
    assert body["role"] == "manager"
    project = Project.objects.get(pk=body["id"])
    assert Membership.objects.get(project=project, user=user).role == "manager"


def test_nine_labels_get_hotkeys_one_to_nine_in_order():
    r = create(client_for(make_user()), labels=[f"l{i}" for i in range(9)])
    assert r.status_code == 201, r.content
    assert [label["hotkey"] for label in r.json()["labels"]] == [str(i) for i in range(1, 10)]


def test_create_with_label_objects_keeps_given_hotkey_and_color():
    r = create(
        client_for(make_user()),
        task_type="spans",
        labels=[{"name": "PER", "hotkey": "p", "color": "#112233"}, {"name": "LOC"}],
        annotations_per_item=3,
        review_policy="disagreements",
        sampling="sequential",
        exploration_rate=0.0,
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["task_type"] == "spans"
    per, loc = body["labels"]
    assert per == {"name": "PER", "hotkey": "p", "color": "#112233"} or (per["name"], per["hotkey"], per["color"]) == (
        "PER",
        "p",
        "#112233",
    )
    assert loc["name"] == "LOC"
    assert loc["hotkey"]
    assert COLOR.match(loc["color"])
    assert loc["hotkey"] != "p"
    assert body["annotations_per_item"] == 3
    assert body["review_policy"] == "disagreements"
    assert body["sampling"] == "sequential"
    assert body["exploration_rate"] == 0.0


@pytest.mark.parametrize(
    ("labels", "field"),
    [
        ([], "labels"),
        ("sports", "labels"),
        (["sports", "sports"], "labels[1].name"),
        (["a", ""], "labels[1].name"),
        (["a", {"hotkey": "2"}], "labels[1].name"),
        ([{"name": "a", "color": "red"}], "labels[0].color"),
        ([{"name": "a", "color": "#12345"}], "labels[0].color"),
        (["a", {"name": "b", "hotkey": "ab"}], "labels[1].hotkey"),
        (["a", {"name": "b", "hotkey": "!"}], "labels[1].hotkey"),
        ([{"name": "a", "hotkey": "s"}], "labels[0].hotkey"),
        ([{"name": "a", "hotkey": "S"}], "labels[0].hotkey"),
        ([{"name": "a", "hotkey": "u"}], "labels[0].hotkey"),
        ([42], "labels[0]"),
    ],
)
def test_bad_labels_are_400_with_field_path(labels, field):
    r = create(client_for(make_user()), labels=labels)
    body = assert_error(r, 400)
    assert field in error_fields(body), body
    assert Project.objects.count() == 0


def test_missing_labels_is_400():
    body = assert_error(create(client_for(make_user())), 400)
    assert "labels" in error_fields(body)


def test_unknown_field_is_400_naming_it():
    body = assert_error(create(client_for(make_user()), labels=["a"], colour="blue"), 400)
    assert "colour" in error_fields(body)
    assert Project.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("task_type", "regression"),
        ("review_policy", "sometimes"),
        ("sampling", "lucky"),
        ("annotations_per_item", 0),
        ("exploration_rate", 1.5),
    ],
)
def test_bad_choice_or_range_is_400(field, value):
    body = assert_error(create(client_for(make_user()), labels=["a"], **{field: value}), 400)
    assert field in error_fields(body)
    assert Project.objects.count() == 0


def test_create_without_trailing_slash():
    r = client_for(make_user()).post("/api/projects", {"name": "x", "labels": ["a"]}, format="json")
    assert r.status_code == 201, r.content


# ------------------------------------------------------------------ list / detail


def test_list_shows_only_member_projects_and_staff_sees_all(staff):
    alice, bob = make_user("alice"), make_user("bob")
    a1 = make_project(alice, name="a1")
    make_project(bob, name="b1")
    shared = make_project(bob, name="shared")
    add_member(shared, alice, "annotator")

    for path in ("/api/projects/", "/api/projects"):
        r = client_for(alice).get(path)
        assert r.status_code == 200, r.content
        body = r.json()
        assert set(body) >= {"count", "next", "previous", "results"}
        assert body["count"] == 2
        assert sorted(p["name"] for p in body["results"]) == ["a1", "shared"]
        roles = {p["name"]: p["role"] for p in body["results"]}
        assert roles == {"a1": "manager", "shared": "annotator"}

    r = client_for(staff).get("/api/projects/")
    assert r.json()["count"] == 3
    assert a1.pk in [p["id"] for p in r.json()["results"]]


def test_detail_both_spellings_and_outsider_404(project, annotator_client):
    for path in (f"/api/projects/{project.pk}", f"/api/projects/{project.pk}/"):
        r = annotator_client.get(path)
        assert r.status_code == 200, r.content
        assert r.json()["id"] == project.pk
    assert_error(client_for(make_user()).get(f"/api/projects/{project.pk}/"), 404)
    assert_error(annotator_client.get("/api/projects/999999/"), 404)


def test_item_counts_in_project(project, manager_client):
    make_items(project, 3)
    r = manager_client.get(f"/api/projects/{project.pk}")
    assert r.json()["item_count"] == 3


def test_gold_items_stay_out_of_the_project_lists_progress(project, manager_client):
    """Gold items are approved from the start: counted, they would show work done that nobody did (issue 13)."""
    items = make_items(project, 4)
    gold_set(item=items[0], value={"label": "sports"})
    row = next(p for p in manager_client.get("/api/projects/").json()["results"] if p["id"] == project.pk)
    assert (row["item_count"], row["done_count"]) == (3, 0)


# ------------------------------------------------------------------ update / delete


def test_patch_by_manager(project, manager_client):
    r = manager_client.patch(
        f"/api/projects/{project.pk}", {"name": "renamed", "annotations_per_item": 2}, format="json"
    )
    assert r.status_code == 200, r.content
    assert r.json()["name"] == "renamed"
    assert r.json()["annotations_per_item"] == 2
    project.refresh_from_db()
    assert project.name == "renamed"
    assert project.annotations_per_item == 2
    # both spellings
    r = manager_client.patch(f"/api/projects/{project.pk}/", {"guidelines": "# be nice"}, format="json")
    assert r.status_code == 200, r.content
    project.refresh_from_db()
    assert project.guidelines == "# be nice"


def test_patch_labels_normalizes(project, manager_client):
    r = manager_client.patch(f"/api/projects/{project.pk}", {"labels": ["x", "y"]}, format="json")
    assert r.status_code == 200, r.content
    assert [(label["name"], label["hotkey"]) for label in r.json()["labels"]] == [("x", "1"), ("y", "2")]


def test_patch_bad_labels_is_400_and_changes_nothing(project, manager_client):
    body = assert_error(
        manager_client.patch(f"/api/projects/{project.pk}", {"name": "zzz", "labels": ["a", "a"]}, format="json"), 400
    )
    assert "labels[1].name" in error_fields(body)
    project.refresh_from_db()
    assert project.name == "news"
    assert project.label_names == ["sports", "politics", "tech"]


def test_patch_unknown_field_is_400(project, manager_client):
    body = assert_error(manager_client.patch(f"/api/projects/{project.pk}", {"nmae": "x"}, format="json"), 400)
    assert "nmae" in error_fields(body)


def test_patch_by_annotator_403_and_outsider_404(project, annotator_client):
    assert_error(annotator_client.patch(f"/api/projects/{project.pk}", {"name": "x"}, format="json"), 403)
    assert_error(client_for(make_user()).patch(f"/api/projects/{project.pk}", {"name": "x"}, format="json"), 404)
    project.refresh_from_db()
    assert project.name == "news"


def test_delete(project, manager_client, annotator_client):
    assert_error(annotator_client.delete(f"/api/projects/{project.pk}"), 403)
    assert_error(client_for(make_user()).delete(f"/api/projects/{project.pk}"), 404)
    assert Project.objects.filter(pk=project.pk).exists()
    make_items(project, 2)
    r = manager_client.delete(f"/api/projects/{project.pk}/")
    assert r.status_code == 204
    assert not Project.objects.filter(pk=project.pk).exists()
    assert_error(manager_client.get(f"/api/projects/{project.pk}"), 404)


def test_removing_a_used_label_is_409(project, manager_client, annotator):
    [item] = make_items(project, 1)
    annotate(item, annotator, {"label": "politics"})
    body = assert_error(
        manager_client.patch(f"/api/projects/{project.pk}", {"labels": ["sports", "tech"]}, format="json"), 409
    )
    assert "labels" in error_fields(body)
    project.refresh_from_db()
    assert project.label_names == ["sports", "politics", "tech"]
    # adding a label is fine
    r = manager_client.patch(
        f"/api/projects/{project.pk}", {"labels": ["sports", "politics", "tech", "arts"]}, format="json"
    )
    assert r.status_code == 200, r.content


def test_removing_an_unused_label_without_annotations_is_ok(project, manager_client):
    make_items(project, 1)
    r = manager_client.patch(f"/api/projects/{project.pk}", {"labels": ["sports", "tech"]}, format="json")
    assert r.status_code == 200, r.content


# ------------------------------------------------------------------ members


def members_url(project, user_id=None):
    return f"/api/projects/{project.pk}/members" + (f"/{user_id}" if user_id else "")


def test_members_list_and_add(project, manager_client, annotator):
    for path in (members_url(project), members_url(project) + "/"):
        r = manager_client.get(path)
        assert r.status_code == 200, r.content
        got = {m["username"]: m["role"] for m in r.json()["results"]}
        assert got == {"manager": "manager", "ann": "annotator"}

    newbie = make_user("newbie")
    r = manager_client.post(members_url(project), {"username": "newbie", "role": "reviewer"}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["username"] == "newbie"
    assert r.json()["role"] == "reviewer"
    assert r.json()["user_id"] == newbie.pk
    assert Membership.objects.get(project=project, user=newbie).role == "reviewer"
    # the new member now sees the project
    assert client_for(newbie).get(f"/api/projects/{project.pk}").status_code == 200


def test_readding_changes_role(project, manager_client, annotator):
    r = manager_client.post(members_url(project), {"username": "ann", "role": "engineer"}, format="json")
    assert r.status_code in (200, 201), r.content
    assert r.json()["role"] == "engineer"
    assert Membership.objects.filter(project=project, user=annotator).count() == 1
    assert Membership.objects.get(project=project, user=annotator).role == "engineer"


def test_members_annotator_403_outsider_404(project, annotator_client):
    make_user("newbie")
    assert_error(annotator_client.get(members_url(project)), 403)
    assert_error(annotator_client.post(members_url(project), {"username": "newbie"}, format="json"), 403)
    outsider = client_for(make_user())
    assert_error(outsider.get(members_url(project)), 404)
    assert_error(outsider.post(members_url(project), {"username": "newbie"}, format="json"), 404)
    assert not Membership.objects.filter(project=project, user__username="newbie").exists()


def test_members_unknown_user_and_bad_role_are_400(project, manager_client):
    body = assert_error(
        manager_client.post(members_url(project), {"username": "ghost", "role": "annotator"}, format="json"), 400
    )
    assert "username" in error_fields(body)
    make_user("newbie")
    body = assert_error(
        manager_client.post(members_url(project), {"username": "newbie", "role": "boss"}, format="json"), 400
    )
    assert "role" in error_fields(body)
    assert not Membership.objects.filter(project=project, user__username="newbie").exists()


def test_member_patch_and_delete(project, manager_client, annotator, annotator_client):
    r = manager_client.patch(members_url(project, annotator.pk), {"role": "reviewer"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["role"] == "reviewer"
    assert Membership.objects.get(project=project, user=annotator).role == "reviewer"

    body = assert_error(manager_client.patch(members_url(project, annotator.pk), {"role": "boss"}, format="json"), 400)
    assert "role" in error_fields(body)

    stranger = make_user()
    assert_error(manager_client.patch(members_url(project, stranger.pk), {"role": "annotator"}, format="json"), 404)
    assert_error(annotator_client.delete(members_url(project, annotator.pk)), 403)

    r = manager_client.delete(members_url(project, annotator.pk) + "/")
    assert r.status_code == 204
    assert not Membership.objects.filter(project=project, user=annotator).exists()
    # removed: the project is now invisible to them
    assert_error(annotator_client.get(f"/api/projects/{project.pk}"), 404)
    assert_error(manager_client.delete(members_url(project, annotator.pk)), 404)


def test_member_detail_outsider_404(project, annotator):
    outsider = client_for(make_user())
    assert_error(outsider.patch(members_url(project, annotator.pk), {"role": "manager"}, format="json"), 404)
    assert_error(outsider.delete(members_url(project, annotator.pk)), 404)
    assert Membership.objects.get(project=project, user=annotator).role == "annotator"


# ------------------------------------------------------------------ changing k and task type


def test_lowering_k_decides_items_that_now_have_enough(manager, manager_client):
    project = make_project(manager, annotations_per_item=2)
    a, _b = make_items(project, 2)
    user = make_user()
    add_member(project, user)
    assert (
        client_for(user)
        .post(f"/api/items/{a.pk}/annotations", {"value": {"label": "sports"}}, format="json")
        .status_code
        == 201
    )
    r = manager_client.patch(f"/api/projects/{project.pk}", {"annotations_per_item": 1}, format="json")
    assert r.status_code == 200, r.content
    a.refresh_from_db()
    assert a.status == "approved"
    assert a.final_label.value == {"label": "sports"}
    assert a.final_label.source == "consensus"
    # raising k again re-opens it and withdraws the consensus label
    r = manager_client.patch(f"/api/projects/{project.pk}", {"annotations_per_item": 2}, format="json")
    assert r.status_code == 200, r.content
    a.refresh_from_db()
    assert a.status == "in_progress"
    from annotation.models import FinalLabel

    assert not FinalLabel.objects.filter(item=a).exists()


def test_task_type_cannot_change_once_annotated(project, manager_client, annotator):
    [item] = make_items(project, 1)
    annotate(item, annotator, {"label": "sports"})
    body = assert_error(
        manager_client.patch(f"/api/projects/{project.pk}", {"task_type": "multilabel"}, format="json"), 409
    )
    assert "task_type" in error_fields(body)
    project.refresh_from_db()
    assert project.task_type == "classification"


@pytest.mark.parametrize(
    ("labels_json", "field"),
    [
        (r'["a\ud800"]', "labels[0]"),  # a lone surrogate escape in a label given as a string
        (r'[{"name": "a", "description": "x\ud800"}]', "labels[0].description"),
        (r'[{"name": "a", "description": "x\u0000"}]', "labels[0].description"),
    ],
)
def test_labels_that_postgres_cannot_store_are_400(labels_json, field):
    """Lone surrogates and NUL characters cannot be stored: a 400 naming the field, never a 500."""
    client = client_for(make_user())
    client.raise_request_exception = False
    body = ('{"name": "x", "labels": ' + labels_json + "}").encode()
    r = client.generic("POST", "/api/projects/", body, content_type="application/json")
    body = assert_error(r, 400)
    assert field in error_fields(body)
    assert Project.objects.count() == 0


def _decided_while_leased(manager, manager_client):
    """k=2; one user annotated the item while another holds the second slot's lease; then k is lowered to 1,
    which decides the item with the first annotation. Returns (project, item, first user, lease holder's client)."""
    from annotation.models import Assignment

    project = make_project(manager, annotations_per_item=2)
    [item] = make_items(project, 1)
    first, holder = make_user(), make_user()
    add_member(project, first)
    add_member(project, holder)
    holder_client = client_for(holder)
    assert holder_client.get(f"/api/projects/{project.pk}/next").json()["id"] == item.pk
    r = client_for(first).post(
        f"/api/items/{item.pk}/annotations", {"value": {"label": "sports"}}, format="json", HTTP_IDEMPOTENCY_KEY="f"
    )
    assert r.status_code == 201, r.content
    assert Assignment.objects.filter(item=item, user=holder).exists()
    r = manager_client.patch(f"/api/projects/{project.pk}", {"annotations_per_item": 1}, format="json")
    assert r.status_code == 200, r.content
    item.refresh_from_db()
    assert (item.status, item.annotation_count) == ("approved", 1)
    return project, item, first, holder_client


def test_lowering_k_while_a_lease_is_held_refuses_the_lease_holders_submit(manager, manager_client):
    """The lease holder's submit on an item that lowering k decided answers 409, "every slot is taken" (one
    answer: the ORM path used to answer "This Idempotency-Key was already used." here), and writes nothing."""
    from annotation.models import Annotation, FinalLabel

    project, item, first, holder_client = _decided_while_leased(manager, manager_client)
    body = assert_error(
        holder_client.post(
            f"/api/items/{item.pk}/annotations", {"value": {"label": "tech"}}, format="json", HTTP_IDEMPOTENCY_KEY="h"
        ),
        409,
    )
    assert body["detail"] == "Every slot of this item is taken: it already has its annotations."
    assert body["errors"] == [{"field": "item", "message": "1 of 1 annotations."}]
    # the same answer without an Idempotency-Key, and for a repeat of the same key
    for key in ({}, {"HTTP_IDEMPOTENCY_KEY": "h"}):
        r = holder_client.post(f"/api/items/{item.pk}/annotations", {"value": {"label": "tech"}}, format="json", **key)
        assert assert_error(r, 409)["detail"] == body["detail"]
    assert list(Annotation.objects.filter(item=item).values_list("annotator_id", flat=True)) == [first.pk]
    item.refresh_from_db()
    assert (item.status, item.annotation_count) == ("approved", 1)
    assert FinalLabel.objects.get(item=item).value == {"label": "sports"}
    # the lease holder moves on: with the item excluded, nothing else is left for them
    assert holder_client.get(f"/api/projects/{project.pk}/next?exclude={item.pk}").status_code == 204


def test_an_item_decided_by_lowering_k_is_not_served_to_its_lease_holder(manager, manager_client):
    """Lowering k decides the item and drops its leases; next never serves a decided item from a live lease."""
    project, item, _first, holder_client = _decided_while_leased(manager, manager_client)
    assert holder_client.get(f"/api/projects/{project.pk}/next").status_code == 204
    item.refresh_from_db()
    assert (item.lease_count, item.lease_expires_at) == (0, None)
    assert not Assignment.objects.filter(item=item).exists()
