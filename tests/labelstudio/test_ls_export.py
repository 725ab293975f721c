"""Exporting to Label Studio's JSON format (a project's items, a snapshot's rows), checked against the documented
shape with `json`, and round trips: project -> Label Studio -> a new project keeps texts, labels, spans and
annotators."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

import annotation.datasets.labelstudio as ls
from annotation.models import Annotation, FinalLabel, Item, Snapshot
from annotation.services.submitting import annotation_submit
from modelsvc.models import ModelVersion
from tests.conftest import add_member, client_for, make_project, make_user
from tests.labelstudio.conftest import ls_run, res

pytestmark = pytest.mark.django_db


def check_ls_shape(tasks: Any, task_type: str) -> None:
    """The documented Label Studio JSON export (docs/source/guide/export.md, "Label Studio JSON format of annotated
    tasks"): a list of tasks with id, data, annotations (id, completed_by, result, was_cancelled, ground_truth) and
    predictions (model_version, score, result); results with id, from_name, to_name, type and a value whose keys
    the control tag decides (Choices: choices; Labels: start, end, text, labels)."""
    assert isinstance(tasks, list)
    for task in tasks:
        assert isinstance(task["id"], int)
        assert isinstance(task["data"], dict)
        assert isinstance(task["data"]["text"], str)
        results = []
        for ann in task["annotations"]:
            assert isinstance(ann["id"], int)
            assert isinstance(ann["completed_by"]["id"], int)
            assert isinstance(ann["completed_by"]["email"], str)
            assert ann["was_cancelled"] is False
            assert isinstance(ann["ground_truth"], bool)
            results += ann["result"]
        for pred in task["predictions"]:
            assert isinstance(pred["model_version"], str)
            assert pred["score"] is None or isinstance(pred["score"], float)
            results += pred["result"]
        ids = [r["id"] for a in task["annotations"] for r in a["result"]]
        assert len(ids) == len(set(ids))  # unique within the task
        for r in results:
            assert (r["from_name"], r["to_name"]) == ("label", "text")
            if task_type == "spans":
                assert r["type"] == "labels"
                assert set(r["value"]) == {"start", "end", "text", "labels"}
                assert task["data"]["text"][r["value"]["start"] : r["value"]["end"]] == r["value"]["text"]
            else:
                assert r["type"] == "choices"
                assert set(r["value"]) == {"choices"}


def export(project) -> list[dict[str, Any]]:
    body = b"".join(ls.ls_project_export_stream(project=project, items=Item.objects.filter(project=project)))
    return json.loads(body)


def user_with_email(name: str):
    user = make_user(name)
    user.email = f"{name}@example.com"
    user.save(update_fields=["email"])
    return user


def state(project) -> dict[str, Any]:
    """What a round trip must keep, keyed by external_id: text, metadata, who labeled what, the final label."""
    out = {}
    for item in Item.objects.filter(project=project):
        anns = Annotation.objects.filter(item=item).select_related("annotator")
        final = FinalLabel.objects.filter(item=item).first()
        out[item.external_id] = {
            "data": item.data,
            "status": item.status,
            "annotations": {a.annotator.username: a.value for a in anns},
            "final": (final.value, final.source) if final else None,
        }
    return out


def test_spans_project_round_trip_keeps_texts_spans_and_annotators():
    owner = make_user("owner")
    alice, bob = user_with_email("alice"), user_with_email("bob")
    project = make_project(owner, name="ner", labels=("PER", "LOC"), task_type="spans", annotations_per_item=2)
    for user in (alice, bob):
        add_member(project, user)
    texts = ["Ada Lovelace met Babbage in London.", "Turing worked in Manchester.", "No names here."]
    tasks = [{"data": {"text": t, "source": f"doc-{n}"}} for n, t in enumerate(texts)]
    assert ls_run(project, owner, json.dumps(tasks).encode()).status == "succeeded"
    items = {i.data["text"]: i for i in Item.objects.filter(project=project)}
    ada = {"spans": [{"start": 0, "end": 12, "label": "PER"}, {"start": 28, "end": 34, "label": "LOC"}]}
    annotation_submit(item_id=items[texts[0]].pk, user=alice, value=ada)
    annotation_submit(item_id=items[texts[0]].pk, user=bob, value={"spans": list(reversed(ada["spans"]))})
    annotation_submit(item_id=items[texts[1]].pk, user=alice, value={"spans": [{"start": 0, "end": 6, "label": "PER"}]})
    annotation_submit(item_id=items[texts[1]].pk, user=bob, value={"spans": [{"start": 17, "end": 27, "label": "LOC"}]})
    before = state(project)
    assert before[items[texts[0]].external_id]["final"] == (ada, "consensus")

    tasks_out = export(project)
    check_ls_shape(tasks_out, "spans")
    assert [t["id"] for t in tasks_out] == sorted(i.pk for i in items.values())
    first = tasks_out[0]
    assert first["data"]["tandem_label"] == ada["spans"]  # the plain form, like a snapshot row's label
    assert first["data"]["tandem_label_source"] == "consensus"
    assert {a["completed_by"]["email"] for a in first["annotations"]} == {"alice@example.com", "bob@example.com"}
    assert [a["ground_truth"] for a in first["annotations"]] == [True, False]
    assert {r["value"]["text"] for r in first["annotations"][0]["result"]} == {"Ada Lovelace", "London"}

    target = make_project(owner, name="copy", labels=("PER", "LOC"), task_type="spans", annotations_per_item=2)
    job = ls_run(target, owner, json.dumps(tasks_out).encode())
    assert job.status == "succeeded", job.result
    assert res(job)["users_created"] == 0  # everyone matched by e-mail
    assert state(target) == before


def test_ls_file_to_project_to_ls_to_project_keeps_annotators_and_predictions():
    owner = make_user("owner")
    alice = user_with_email("alice")
    labels = ("positive", "negative", "neutral")
    project = make_project(owner, name="a", labels=labels)
    assert ls_run(project, owner, "classification.json").status == "succeeded"
    tasks_out = export(project)
    check_ls_shape(tasks_out, "classification")
    by_ext = {t["data"]["external_id"]: t for t in tasks_out}
    t101 = by_ext["ls-101"]
    # placeholders go back out under their Label Studio id; real users under theirs, with the e-mail
    assert [a["completed_by"] for a in t101["annotations"]] == [
        {"id": 1, "email": ""},
        {"id": alice.pk, "email": "alice@example.com"},
    ]
    assert t101["predictions"] == [
        {
            "model_version": "sentiment-v1",
            "score": 0.87,
            "result": [
                {
                    "id": "p1-0",
                    "from_name": "label",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": ["positive"]},
                }
            ],
        }
    ]
    assert by_ext["ls-103"]["predictions"][0]["score"] is None
    assert by_ext["ls-102"]["data"].get("tandem_label") is None  # in review: no final label yet

    target = make_project(owner, name="b", labels=labels)
    job = ls_run(target, owner, json.dumps(tasks_out).encode())
    assert job.status == "succeeded", job.result
    assert res(job)["users_created"] == 0  # ls-1 and ls-3 exist already
    assert state(target) == state(project)
    assert set(ModelVersion.objects.filter(project=target).values_list("name", flat=True)) == {
        "sentiment-v1",
        "keyword-rules",
    }


def test_export_streams_in_keyset_batches(monkeypatch, django_assert_max_num_queries):
    owner = make_user("owner")
    project = make_project(owner, name="many")
    tasks = [{"data": {"text": f"text {n}"}} for n in range(7)]
    ls_run(project, owner, json.dumps(tasks).encode())
    monkeypatch.setattr(ls, "EXPORT_BATCH", 3)
    stream = ls.ls_project_export_stream(project=project, items=Item.objects.filter(project=project))
    with django_assert_max_num_queries(4 * 3 + 1):  # items, annotations, predictions per batch of 3
        chunks = list(stream)
    tasks_out = json.loads(b"".join(chunks))
    assert [t["data"]["text"] for t in tasks_out] == [f"text {n}" for n in range(7)]
    # a filtered queryset (the caller's ?status= etc.) is honoured
    some = Item.objects.filter(project=project, data__text__in=["text 1", "text 5"])
    assert [
        t["data"]["text"] for t in json.loads(b"".join(ls.ls_project_export_stream(project=project, items=some)))
    ] == [
        "text 1",
        "text 5",
    ]
    empty = b"".join(ls.ls_project_export_stream(project=project, items=Item.objects.none()))
    assert json.loads(empty) == []


def _snapshot(project, *, pseudonymize: bool) -> Snapshot:
    return Snapshot.objects.create(
        project=project,
        name="s",
        status="ready",
        pseudonymize=pseudonymize,
        schema={
            "task_type": project.task_type,
            "labels": project.label_names,
            "meta": [
                {"field": "source", "column": "source", "type": "string"},
                {"field": "text", "column": "meta_text", "type": "string"},
            ],
            "per_split": {},
        },
    )


def _rows(annotators: tuple[str, str]) -> list[dict[str, Any]]:
    """Canonical rows as spec.md defines them (key order included)."""
    a, b = annotators
    return [
        {
            "external_id": "x1",
            "text": "Goal in the last minute!",
            "source": "feed",
            "meta_text": "original headline",
            "label": "sports",
            "label_source": "consensus",
            "split": "train",
            "annotations": [{"annotator": a, "value": "politics"}, {"annotator": b, "value": "sports"}],
            "suggestion": {"model_version": "3", "value": "sports", "confidence": 0.9},
        },
        {
            "external_id": "x2",
            "text": "Parliament votes today.",
            "source": None,
            "meta_text": None,
            "label": "politics",
            "label_source": "review",
            "split": "test",
            "annotations": [{"annotator": a, "value": "tech"}],
            "suggestion": None,
        },
    ]


def test_snapshot_file_names_users_by_email_and_round_trips():
    owner = make_user("owner")
    alice, bob = user_with_email("alice"), user_with_email("bob")
    project = make_project(owner, name="news", annotations_per_item=2)
    snapshot = _snapshot(project, pseudonymize=False)
    out = io.BytesIO()
    ls.ls_write_snapshot(snapshot=snapshot, rows=iter(_rows(("alice", "bob"))), out=out)
    tasks = json.loads(out.getvalue())
    check_ls_shape(tasks, "classification")
    assert [t["id"] for t in tasks] == [1, 2]
    assert tasks[0]["data"] == {
        "text": "Goal in the last minute!",
        "source": "feed",
        "meta_text": "original headline",  # a field named like a data key keeps its column name
        "external_id": "x1",
        "split": "train",
        "tandem_label": "sports",
        "tandem_label_source": "consensus",
    }
    assert tasks[1]["data"] == {
        "text": "Parliament votes today.",
        "external_id": "x2",
        "split": "test",
        "tandem_label": "politics",
        "tandem_label_source": "review",
    }
    anns = tasks[0]["annotations"]
    assert [a["completed_by"]["email"] for a in anns] == ["alice@example.com", "bob@example.com"]
    assert anns[0]["completed_by"]["id"] == tasks[1]["annotations"][0]["completed_by"]["id"]  # stable per name
    assert [a["ground_truth"] for a in anns] == [False, True]
    assert tasks[0]["predictions"][0]["model_version"] == "3"
    assert tasks[0]["predictions"][0]["score"] == 0.9
    assert tasks[1]["predictions"] == []

    target = make_project(owner, name="copy")
    job = ls_run(target, owner, out.getvalue())
    assert job.status == "succeeded", job.result
    got = state(target)
    assert got["x1"]["annotations"] == {"alice": {"label": "politics"}, "bob": {"label": "sports"}}
    assert got["x1"]["final"] == ({"label": "sports"}, "imported")  # the snapshot's label over a 1:1 tie
    assert got["x2"]["final"] == ({"label": "politics"}, "imported")
    assert got["x2"]["data"] == {"text": "Parliament votes today.", "split": "test"}
    assert res(job)["users_created"] == 0
    assert {alice.pk, bob.pk} <= set(
        Annotation.objects.filter(item__project=target).values_list("annotator", flat=True)
    )


def test_pseudonymized_snapshot_file_carries_no_email():
    owner = make_user("owner")
    user_with_email("alice")
    project = make_project(owner, name="news")
    snapshot = _snapshot(project, pseudonymize=True)
    out = io.BytesIO()
    ls.ls_write_snapshot(snapshot=snapshot, rows=iter(_rows(("annotator-0badc0de", "annotator-00000001"))), out=out)
    tasks = json.loads(out.getvalue())
    check_ls_shape(tasks, "classification")
    assert [a["completed_by"] for a in tasks[0]["annotations"]] == [
        {"id": 0x0BADC0DE, "email": ""},
        {"id": 1, "email": ""},
    ]


def test_multilabel_values_and_empty_choices_round_trip():
    owner = make_user("owner")
    alice = user_with_email("alice")
    project = make_project(owner, name="m", labels=("sports", "politics", "tech"), task_type="multilabel")
    add_member(project, alice)
    ls_run(project, owner, json.dumps([{"data": {"text": "a"}}, {"data": {"text": "b"}}]).encode())
    a, b = Item.objects.filter(project=project).order_by("pk")
    annotation_submit(item_id=a.pk, user=alice, value={"labels": ["tech", "sports"]})
    annotation_submit(item_id=b.pk, user=alice, value={"labels": []})
    tasks = export(project)
    check_ls_shape(tasks, "multilabel")
    assert tasks[0]["annotations"][0]["result"][0]["value"] == {"choices": ["sports", "tech"]}
    assert tasks[0]["data"]["tandem_label"] == ["sports", "tech"]
    assert tasks[1]["annotations"][0]["result"][0]["value"] == {"choices": []}
    target = make_project(owner, name="m2", labels=("sports", "politics", "tech"), task_type="multilabel")
    assert ls_run(target, owner, json.dumps(tasks).encode()).status == "succeeded"
    assert state(target) == state(project)


def test_plain_export_api_serves_label_studio_json_with_filters():
    owner = make_user("owner")
    user_with_email("alice")
    project = make_project(owner, name="a", labels=("positive", "negative", "neutral"))
    ls_run(project, owner, "classification.json")
    r = client_for(owner).get(f"/api/projects/{project.pk}/export?format=labelstudio&status=approved")
    assert r.status_code == 200
    tasks = json.loads(b"".join(r.streaming_content))  # type: ignore[attr-defined]
    check_ls_shape(tasks, "classification")
    assert sorted(t["data"]["external_id"] for t in tasks) == ["crm-7", "ls-101", "ls-106"]
