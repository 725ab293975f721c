import uuid

import pytest

from annotation.models import Annotation, Assignment, FinalLabel, Item
from tests.annotation.apis.helpers import (
    assert_error,
    error_fields,
    expire_leases,
    make_items,
    member,
    next_item,
    submit,
)
from tests.conftest import client_for, make_project, make_user

pytestmark = pytest.mark.django_db


def final(item):
    return FinalLabel.objects.filter(item_id=item.pk).first()


def status(item):
    return Item.objects.get(pk=item.pk).status


# ------------------------------------------------------------------ basic submit + idempotency


def test_submit_201_and_retry_with_same_key_200_same_annotation(project, annotator_client, annotator):
    [item] = make_items(project, 1)
    assert next_item(annotator_client, project).json()["id"] == item.pk
    key = str(uuid.uuid4())
    r = submit(annotator_client, item.pk, {"label": "sports"}, key=key, lead_time_ms=1200)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["value"] == {"label": "sports"}
    assert body["annotator"] == "ann"
    assert body["item"] == item.pk
    assert body["lead_time_ms"] == 1200
    assert not Assignment.objects.filter(user=annotator).exists(), "the assignment is consumed"

    again = submit(annotator_client, item.pk, {"label": "sports"}, key=key)
    assert again.status_code == 200, again.content
    assert again.json()["id"] == body["id"]
    # a retry with a different body still answers the first annotation
    again = submit(annotator_client, item.pk, {"label": "tech"}, key=key)
    assert again.status_code == 200
    assert again.json()["value"] == {"label": "sports"}
    assert Annotation.objects.count() == 1


def test_submit_without_trailing_slash_and_with(project, annotator_client):
    a, b = make_items(project, 2)
    r = annotator_client.post(f"/api/items/{a.pk}/annotations/", {"value": {"label": "tech"}}, format="json")
    assert r.status_code == 201, r.content
    r = annotator_client.post(f"/api/items/{b.pk}/annotations", {"value": {"label": "tech"}}, format="json")
    assert r.status_code == 201, r.content


def test_same_key_on_another_item_is_409(project, annotator_client):
    a, b = make_items(project, 2)
    key = "key-1"
    assert submit(annotator_client, a.pk, {"label": "sports"}, key=key).status_code == 201
    body = assert_error(submit(annotator_client, b.pk, {"label": "sports"}, key=key), 409)
    assert "Idempotency-Key" in error_fields(body)
    assert not Annotation.objects.filter(item=b).exists()


def test_same_key_is_per_user(project, annotator_client):
    a, b = make_items(project, 2)
    _, other = member(project)
    assert submit(annotator_client, a.pk, {"label": "sports"}, key="shared").status_code == 201
    assert submit(other, b.pk, {"label": "sports"}, key="shared").status_code == 201


def test_second_submit_without_key_is_409(manager):
    project = make_project(manager, annotations_per_item=2)
    [item] = make_items(project, 1)
    _, client = member(project)
    assert submit(client, item.pk, {"label": "sports"}, key=None).status_code == 201
    assert_error(submit(client, item.pk, {"label": "tech"}, key=None), 409)
    assert_error(submit(client, item.pk, {"label": "tech"}, key="fresh-key"), 409)
    assert Annotation.objects.count() == 1


@pytest.mark.parametrize("key", ["", "   ", "k" * 201, "a\x00b"])
def test_bad_idempotency_key_is_400(project, annotator_client, key):
    [item] = make_items(project, 1)
    annotator_client.raise_request_exception = False
    r = annotator_client.post(
        f"/api/items/{item.pk}/annotations", {"value": {"label": "sports"}}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert_error(r, 400)
    assert Annotation.objects.count() == 0


# ------------------------------------------------------------------ value validation


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"label": "weather"}, "value.label"),
        ({"label": 3}, "value.label"),
        ({}, "value.label"),
        ({"label": "sports", "x": 1}, "value"),
        ("sports", "value"),
        (["sports"], "value"),
    ],
)
def test_classification_value_errors(project, annotator_client, value, field):
    [item] = make_items(project, 1)
    body = assert_error(submit(annotator_client, item.pk, value), 400)
    assert field in error_fields(body), body
    assert Annotation.objects.count() == 0


def test_missing_value_is_400(project, annotator_client):
    [item] = make_items(project, 1)
    r = annotator_client.post(f"/api/items/{item.pk}/annotations", {"lead_time_ms": 5}, format="json")
    body = assert_error(r, 400)
    assert "value" in error_fields(body)


def test_negative_lead_time_is_400(project, annotator_client):
    [item] = make_items(project, 1)
    body = assert_error(submit(annotator_client, item.pk, {"label": "sports"}, lead_time_ms=-1), 400)
    assert "lead_time_ms" in error_fields(body)


def test_multilabel_values(manager):
    project = make_project(manager, task_type="multilabel", labels=["a", "b", "c"])
    x, y, z = make_items(project, 3)
    _, client = member(project)
    r = submit(client, x.pk, {"labels": ["c", "a"]})
    assert r.status_code == 201, r.content
    assert r.json()["value"] == {"labels": ["a", "c"]}  # canonical: label order
    assert submit(client, y.pk, {"labels": []}).status_code == 201
    for value, field in [
        ({"labels": ["a", "zz"]}, "value.labels[1]"),
        ({"labels": ["a", "a"]}, "value.labels[1]"),
        ({"labels": [1]}, "value.labels[0]"),
        ({"labels": "a"}, "value.labels"),
        ({"label": "a"}, "value"),
    ]:
        body = assert_error(submit(client, z.pk, value), 400)
        assert field in error_fields(body), (value, body)
    assert not Annotation.objects.filter(item=z).exists()


def test_spans_values(manager):
    project = make_project(manager, task_type="spans", labels=["PER", "LOC"])
    Item.objects.create(project=project, external_id="s", data={"text": "Ada lives in Paris"})  # 18 chars
    item = Item.objects.get(project=project)
    _, client = member(project)
    cases = [
        ({"spans": [{"start": -1, "end": 3, "label": "PER"}]}, "value.spans[0].start"),
        ({"spans": [{"start": 0, "end": 3, "label": "PER"}, {"start": 5, "end": 5, "label": "LOC"}]}, "value.spans[1]"),
        ({"spans": [{"start": 4, "end": 2, "label": "PER"}]}, "value.spans[0]"),
        ({"spans": [{"start": 13, "end": 19, "label": "LOC"}]}, "value.spans[0].end"),
        ({"spans": [{"start": 0, "end": 3, "label": "ORG"}]}, "value.spans[0].label"),
        ({"spans": [{"start": True, "end": 3, "label": "PER"}]}, "value.spans[0].start"),
        ({"spans": [{"start": 0, "end": True, "label": "PER"}]}, "value.spans[0].end"),
        ({"spans": [{"start": 0.0, "end": 3, "label": "PER"}]}, "value.spans[0].start"),
        ({"spans": [{"start": "0", "end": 3, "label": "PER"}]}, "value.spans[0].start"),
        ({"spans": [{"start": 0, "end": 3}]}, "value.spans[0].label"),
        ({"spans": ["PER"]}, "value.spans[0]"),
        ({"spans": {"start": 0}}, "value.spans"),
    ]
    for value, field in cases:
        body = assert_error(submit(client, item.pk, value), 400)
        assert field in error_fields(body), (value, body)
    assert Annotation.objects.count() == 0
    good = {"spans": [{"start": 13, "end": 18, "label": "LOC"}, {"start": 0, "end": 3, "label": "PER"}]}
    r = submit(client, item.pk, good)
    assert r.status_code == 201, r.content
    assert r.json()["value"]["spans"] == [
        {"start": 0, "end": 3, "label": "PER"},
        {"start": 13, "end": 18, "label": "LOC"},
    ]


def test_span_offsets_are_code_points(manager):
    project = make_project(manager, task_type="spans", labels=["X"])
    Item.objects.create(project=project, external_id="s", data={"text": "héé 😀"})  # 5 code points
    item = Item.objects.get(project=project)
    _, client = member(project)
    assert submit(client, item.pk, {"spans": [{"start": 4, "end": 5, "label": "X"}]}).status_code == 201


# ------------------------------------------------------------------ leases and slots


def test_submit_after_expired_assignment_accepted_while_slot_free(project, annotator_client, annotator):
    [item] = make_items(project, 1)
    assert next_item(annotator_client, project).json()["id"] == item.pk
    expire_leases(item.pk)
    r = submit(annotator_client, item.pk, {"label": "sports"})
    assert r.status_code == 201, r.content
    assert status(item) == "approved"


def test_submit_after_expired_assignment_409_when_slot_taken(project, annotator_client, annotator):
    [item] = make_items(project, 1)
    _, other = member(project)
    assert next_item(annotator_client, project).json()["id"] == item.pk
    expire_leases(item.pk)
    assert next_item(other, project).json()["id"] == item.pk
    body = assert_error(submit(annotator_client, item.pk, {"label": "sports"}), 409)
    assert body["errors"]
    assert Annotation.objects.count() == 0
    # the user who holds the slot can still submit
    assert submit(other, item.pk, {"label": "tech"}).status_code == 201


def test_submit_without_assignment_409_when_every_slot_is_leased(project, annotator_client):
    [item] = make_items(project, 1)
    _, other = member(project)
    assert next_item(other, project).json()["id"] == item.pk
    assert_error(submit(annotator_client, item.pk, {"label": "sports"}), 409)


def test_submit_on_decided_item_is_409(project, annotator_client):
    [item] = make_items(project, 1)
    _, other = member(project)
    assert submit(annotator_client, item.pk, {"label": "sports"}).status_code == 201
    assert_error(submit(other, item.pk, {"label": "tech"}), 409)
    assert Annotation.objects.count() == 1


def test_submit_outsider_404_and_unknown_item_404(project):
    [item] = make_items(project, 1)
    assert_error(submit(client_for(make_user()), item.pk, {"label": "sports"}), 404)
    _, client = member(project)
    assert_error(submit(client, 99999999, {"label": "sports"}), 404)


# ------------------------------------------------------------------ deciding


def test_k1_consensus_approves(project, annotator_client):
    [item] = make_items(project, 1)
    assert submit(annotator_client, item.pk, {"label": "politics"}).status_code == 201
    assert status(item) == "approved"
    f = final(item)
    assert f is not None
    assert f.source == "consensus"
    assert f.value == {"label": "politics"}


def test_k2_agreement_approves_and_first_annotation_leaves_item_in_progress(manager):
    project = make_project(manager, annotations_per_item=2)
    [item] = make_items(project, 1)
    _, a = member(project)
    _, b = member(project)
    assert submit(a, item.pk, {"label": "tech"}).status_code == 201
    assert status(item) == "in_progress"
    assert final(item) is None
    assert submit(b, item.pk, {"label": "tech"}).status_code == 201
    assert status(item) == "approved"
    assert final(item).value == {"label": "tech"}
    assert final(item).source == "consensus"


def test_k2_tie_goes_to_review_without_final_label(manager):
    project = make_project(manager, annotations_per_item=2)
    [item] = make_items(project, 1)
    _, a = member(project)
    _, b = member(project)
    assert submit(a, item.pk, {"label": "tech"}).status_code == 201
    assert submit(b, item.pk, {"label": "sports"}).status_code == 201
    assert status(item) == "in_review"
    assert final(item) is None


def test_k3_majority_approves_under_policy_none(manager):
    project = make_project(manager, annotations_per_item=3)
    [item] = make_items(project, 1)
    for label in ["tech", "sports", "tech"]:
        _, c = member(project)
        assert submit(c, item.pk, {"label": label}).status_code == 201
    assert status(item) == "approved"
    assert final(item).value == {"label": "tech"}


def test_policy_disagreements_sends_majority_to_review(manager):
    project = make_project(manager, annotations_per_item=3, review_policy="disagreements")
    split, unanimous = make_items(project, 2)
    for label in ["tech", "sports", "tech"]:
        _, c = member(project)
        assert submit(c, split.pk, {"label": label}).status_code == 201
        assert submit(c, unanimous.pk, {"label": "tech"}).status_code == 201
    assert status(split) == "in_review"
    assert final(split) is None
    assert status(unanimous) == "approved"
    assert final(unanimous).value == {"label": "tech"}


def test_policy_all_reviews_everything(manager):
    project = make_project(manager, review_policy="all")
    [item] = make_items(project, 1)
    _, c = member(project)
    assert submit(c, item.pk, {"label": "tech"}).status_code == 201
    assert status(item) == "in_review"
    assert final(item) is None


def test_multilabel_consensus_compares_canonical_values(manager):
    project = make_project(manager, task_type="multilabel", labels=["a", "b"], annotations_per_item=2)
    [item] = make_items(project, 1)
    _, c1 = member(project)
    _, c2 = member(project)
    assert submit(c1, item.pk, {"labels": ["b", "a"]}).status_code == 201
    assert submit(c2, item.pk, {"labels": ["a", "b"]}).status_code == 201
    assert status(item) == "approved"
    assert final(item).value == {"labels": ["a", "b"]}


# ------------------------------------------------------------------ editing


def test_annotator_edits_own_annotation_history_kept_final_recomputed(project, annotator_client):
    [item] = make_items(project, 1)
    ann = submit(annotator_client, item.pk, {"label": "sports"}).json()
    assert final(item).value == {"label": "sports"}
    r = annotator_client.patch(
        f"/api/annotations/{ann['id']}", {"value": {"label": "tech"}, "lead_time_ms": 10}, format="json"
    )
    assert r.status_code == 200, r.content
    assert r.json()["value"] == {"label": "tech"}
    assert r.json()["id"] == ann["id"]
    a = Annotation.objects.get(pk=ann["id"])
    assert a.value == {"label": "tech"}
    assert [h["value"] for h in a.history] == [{"label": "sports"}]
    assert final(item).value == {"label": "tech"}
    assert status(item) == "approved"
    r = annotator_client.patch(f"/api/annotations/{ann['id']}/", {"value": {"label": "politics"}}, format="json")
    assert r.status_code == 200
    a.refresh_from_db()
    assert [h["value"] for h in a.history] == [{"label": "sports"}, {"label": "tech"}]


def test_edit_resolving_a_tie_approves(manager):
    project = make_project(manager, annotations_per_item=2)
    [item] = make_items(project, 1)
    _, a = member(project)
    _, b = member(project)
    submit(a, item.pk, {"label": "tech"})
    ann_b = submit(b, item.pk, {"label": "sports"}).json()
    assert status(item) == "in_review"
    assert b.patch(f"/api/annotations/{ann_b['id']}", {"value": {"label": "tech"}}, format="json").status_code == 200
    assert status(item) == "approved"
    assert final(item).value == {"label": "tech"}


def test_edit_with_bad_value_is_400_and_keeps_value(project, annotator_client):
    [item] = make_items(project, 1)
    ann = submit(annotator_client, item.pk, {"label": "sports"}).json()
    body = assert_error(
        annotator_client.patch(f"/api/annotations/{ann['id']}", {"value": {"label": "nope"}}, format="json"), 400
    )
    assert "value.label" in error_fields(body)
    a = Annotation.objects.get(pk=ann["id"])
    assert a.value == {"label": "sports"}
    assert a.history == []


def test_another_annotator_cannot_edit(project, annotator_client):
    [item] = make_items(project, 1)
    ann = submit(annotator_client, item.pk, {"label": "sports"}).json()
    _, other = member(project)
    r = other.patch(f"/api/annotations/{ann['id']}", {"value": {"label": "tech"}}, format="json")
    assert r.status_code in (403, 404)
    assert_error(r, r.status_code)
    _, reviewer = member(project, role="reviewer")
    r = reviewer.patch(f"/api/annotations/{ann['id']}", {"value": {"label": "tech"}}, format="json")
    assert_error(r, 403)
    r = client_for(make_user()).patch(f"/api/annotations/{ann['id']}", {"value": {"label": "tech"}}, format="json")
    assert_error(r, 404)
    assert Annotation.objects.get(pk=ann["id"]).value == {"label": "sports"}
    assert final(item).value == {"label": "sports"}


def test_annotation_get_visibility(project, annotator_client, manager_client):
    [item] = make_items(project, 1)
    ann = submit(annotator_client, item.pk, {"label": "sports"}).json()
    assert annotator_client.get(f"/api/annotations/{ann['id']}").json()["value"] == {"label": "sports"}
    assert manager_client.get(f"/api/annotations/{ann['id']}").status_code == 200
    _, other = member(project)
    assert_error(other.get(f"/api/annotations/{ann['id']}"), 404)
    assert_error(client_for(make_user()).get(f"/api/annotations/{ann['id']}"), 404)


def test_item_annotations_list_own_only_for_annotators(manager, manager_client):
    project = make_project(manager, annotations_per_item=2)
    [item] = make_items(project, 1)
    _, a = member(project, "aa")
    _, b = member(project, "bb")
    submit(a, item.pk, {"label": "tech"})
    submit(b, item.pk, {"label": "sports"})
    r = a.get(f"/api/items/{item.pk}/annotations")
    assert r.status_code == 200
    assert [x["annotator"] for x in r.json()] == ["aa"]
    r = client_for(manager).get(f"/api/items/{item.pk}/annotations")
    assert [x["annotator"] for x in r.json()] == ["aa", "bb"]
