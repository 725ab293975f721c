"""Importing hand-written Label Studio exports: items, annotations and their annotators (e-mail match and
placeholders), predictions and imported model versions, decisions, idempotency, and bad files."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from annotation.models import Annotation, FinalLabel, Item, Membership
from annotation.services.reviewing import review_eligible_annotator_exists, review_submit
from modelsvc.models import ModelVersion, Prediction, VersionKind, VersionStatus
from tests.annotation.apis.helpers import run_import
from tests.conftest import add_member, client_for, make_project, make_user
from tests.labelstudio.conftest import DATA, ls_run, res

User = get_user_model()

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return make_user("owner")


@pytest.fixture
def alice():
    user = make_user("alice")
    user.email = "alice@example.com"
    user.save(update_fields=["email"])
    return user


@pytest.fixture
def sentiment(owner):
    return make_project(owner, name="sentiment", labels=("positive", "negative", "neutral"))


def items_by_ext(project):
    return {i.external_id: i for i in Item.objects.filter(project=project).select_related("final_label")}


def values_by_annotator(item):
    return {a.annotator.username: a.value for a in Annotation.objects.filter(item=item).select_related("annotator")}


def final_of(item):
    f = FinalLabel.objects.filter(item=item).first()
    return (f.value, f.source) if f else None


def test_classification_export_imports_items_annotators_and_decisions(sentiment, owner, alice):
    job = ls_run(sentiment, owner, "classification.json")
    assert job.status == "succeeded", job.result
    r = res(job)
    assert (r["created"], r["duplicates"], r["annotations"], r["predictions"], r["users_created"]) == (7, 0, 6, 4, 2)
    assert r["error_count"] == 0
    assert r["rows"] == 7
    assert r["dropped_results"] == 1

    items = items_by_ext(sentiment)
    assert set(items) == {"ls-101", "ls-102", "ls-103", "ls-104", "ls-105", "ls-106", "crm-7"}
    # the other data fields are item metadata; the text field is the item's text
    assert items["ls-101"].data == {
        "text": "The new phone is fast and the battery lasts all day.",
        "source": "reviews",
        "stars": 5,
    }
    # two annotators (beyond the overlap k=1), one matched by e-mail (case-insensitive), one a placeholder
    assert values_by_annotator(items["ls-101"]) == {"ls-1": {"label": "positive"}, "alice": {"label": "positive"}}
    assert items["ls-101"].annotation_count == 2
    assert items["ls-101"].status == "approved"
    assert final_of(items["ls-101"]) == ({"label": "positive"}, "consensus")
    # the cancelled annotation is ignored; the other two tie: to review, no final label
    assert values_by_annotator(items["ls-102"]) == {"ls-3": {"label": "negative"}, "alice": {"label": "neutral"}}
    assert items["ls-102"].status == "in_review"
    assert final_of(items["ls-102"]) is None
    # no annotations / only an empty result: open, nothing decided
    for ext in ("ls-103", "ls-104", "ls-105"):
        assert items[ext].status == "open"
        assert items[ext].annotation_count == 0
        assert final_of(items[ext]) is None
    assert not Annotation.objects.filter(item=items["ls-105"]).exists()
    # the same annotator twice: the last one is kept
    assert values_by_annotator(items["ls-106"]) == {"ls-1": {"label": "positive"}}
    assert final_of(items["ls-106"]) == ({"label": "positive"}, "consensus")
    # data.external_id wins over the task id; lead_time (s) -> ms
    crm = Annotation.objects.get(item=items["crm-7"])
    assert crm.annotator == alice
    assert crm.value == {"label": "negative"}
    assert crm.lead_time_ms == 11000


def test_placeholders_are_inactive_members_without_a_password(sentiment, owner, alice):
    ls_run(sentiment, owner, "classification.json")
    for name in ("ls-1", "ls-3"):
        user = User.objects.get(username=name)
        assert not user.is_active
        assert not user.has_usable_password()
        assert Membership.objects.get(project=sentiment, user=user).role == "annotator"
    assert Membership.objects.get(project=sentiment, user=alice).role == "annotator"
    # cannot log in, whatever password is tried
    client = Client()
    assert not client.login(username="ls-1", password="")
    assert not client.login(username="ls-1", password="!")


def test_predictions_become_imported_versions_and_the_annotations_suggestion(sentiment, owner, alice):
    ls_run(sentiment, owner, "classification.json")
    versions = {v.name: v for v in ModelVersion.objects.filter(project=sentiment)}
    assert set(versions) == {"sentiment-v1", "keyword-rules"}
    for v in versions.values():
        assert v.kind == VersionKind.IMPORTED
        assert v.status == VersionStatus.CANDIDATE
        assert v.base_model == "labelstudio"
        assert v.label_names == ["positive", "negative", "neutral"]
    assert sorted(v.version for v in versions.values()) == [1, 2]
    items = items_by_ext(sentiment)
    p = Prediction.objects.get(item=items["ls-101"])
    assert p.model_version == versions["sentiment-v1"]
    assert p.value == {"label": "positive"}
    assert p.probabilities == {"positive": 0.87}
    assert p.least_confidence == pytest.approx(0.13)
    assert p.margin == pytest.approx(0.26)
    assert 0 < p.entropy < 1
    unscored = Prediction.objects.get(item=items["ls-103"])
    assert unscored.model_version == versions["keyword-rules"]
    assert unscored.probabilities == {}
    # the active version's suggestion on the item stays empty: the queue reads it
    assert all(i.prediction is None for i in items.values())
    ann = Annotation.objects.get(item=items["ls-102"], annotator__username="ls-3")
    assert ann.suggestion == {
        "model_version": "sentiment-v1",
        "kind": "imported",
        "value": {"label": "negative"},
        "confidence": 0.55,
    }
    assert ann.accepted_suggestion is True
    assert Annotation.objects.get(item=items["ls-102"], annotator=alice).accepted_suggestion is False
    assert Annotation.objects.get(item=items["ls-106"]).suggestion is None


def test_reimport_is_idempotent_and_reuses_users_and_versions(sentiment, owner, alice):
    ls_run(sentiment, owner, "classification.json")
    counts = (Item.objects.count(), Annotation.objects.count(), Prediction.objects.count(), User.objects.count())
    again = ls_run(sentiment, owner, "classification.json")
    assert again.status == "succeeded"
    assert (res(again)["created"], res(again)["duplicates"], res(again)["users_created"]) == (0, 7, 0)
    assert (Item.objects.count(), Annotation.objects.count(), Prediction.objects.count(), User.objects.count()) == (
        counts
    )
    assert ModelVersion.objects.filter(project=sentiment).count() == 2
    # a second project reuses the placeholders (created once) and numbers its own versions
    other = make_project(owner, name="other", labels=("positive", "negative", "neutral"))
    job = ls_run(other, owner, "classification.json")
    assert res(job)["created"] == 7
    assert res(job)["users_created"] == 0
    assert Membership.objects.filter(project=other, user__username__in=["ls-1", "ls-3"]).count() == 2


def test_multilabel_choices(owner):
    project = make_project(owner, name="topics", labels=("sports", "politics", "tech"), task_type="multilabel")
    job = ls_run(project, owner, "multilabel.json")
    assert job.status == "succeeded", job.result
    items = items_by_ext(project)
    # bob has no Tandem account: placeholder by id; the order of choices does not matter
    assert values_by_annotator(items["ls-1"]) == {
        "ls-7": {"labels": ["sports", "politics"]},
        "ls-8": {"labels": ["sports", "politics"]},
    }
    assert final_of(items["ls-1"]) == ({"labels": ["sports", "politics"]}, "consensus")
    # an empty multi-choice is a value: no label applies
    assert final_of(items["ls-2"]) == ({"labels": []}, "consensus")
    # two choices results of one annotation are merged, in the project's label order
    assert final_of(items["ls-3"]) == ({"labels": ["politics", "tech"]}, "consensus")
    pred = Prediction.objects.get(item=items["ls-1"])
    assert pred.model_version.name == "topics-2024-01"
    assert pred.probabilities == {"politics": 0.64}


def test_ner_labels_become_spans(owner):
    carol = make_user("carol")
    carol.email = "carol@example.org"
    carol.save(update_fields=["email"])
    project = make_project(owner, name="ner", labels=("PER", "LOC", "ORG", "DATE"), task_type="spans")
    job = ls_run(project, owner, "ner.json")
    assert job.status == "succeeded", job.result
    assert res(job)["dropped_results"] == 1  # the relation
    items = items_by_ext(project)
    obama = {
        "spans": [
            {"start": 0, "end": 12, "label": "PER"},
            {"start": 21, "end": 26, "label": "LOC"},
            {"start": 30, "end": 34, "label": "DATE"},
        ]
    }
    assert values_by_annotator(items["ls-201"]) == {"carol": obama, "ls-5": obama}
    assert final_of(items["ls-201"]) == (obama, "consensus")
    # Label Studio's UTF-16 offsets after an emoji, recognised by the quoted text
    assert final_of(items["ls-203"]) == (
        {"spans": [{"start": 2, "end": 7, "label": "PER"}, {"start": 17, "end": 26, "label": "LOC"}]},
        "consensus",
    )
    assert final_of(items["ls-204"]) == ({"spans": []}, "consensus")
    pred = Prediction.objects.get(item=items["ls-201"])
    assert pred.value == {"spans": [{"start": 0, "end": 12, "label": "PER"}, {"start": 21, "end": 26, "label": "LOC"}]}
    assert pred.probabilities == {"PER": 0.78, "LOC": 0.78}
    ann = Annotation.objects.get(item=items["ls-201"], annotator=carol)
    assert (ann.suggestion or {}).get("model_version") == "spacy-en-core-web-sm"
    assert ann.accepted_suggestion is False


def test_text_field(sentiment, owner):
    refused = ls_run(sentiment, owner, "text_field.json")
    assert refused.status == "failed"
    assert Item.objects.count() == 0
    assert res(refused)["errors"][0]["field"] == "data"
    assert "text_field" in res(refused)["errors"][0]["message"]
    job = ls_run(sentiment, owner, "text_field.json", text_field="review")
    assert job.status == "succeeded", job.result
    item = Item.objects.get(external_id="ls-31")
    assert item.data == {"text": "Great value for the money.", "lang": "en"}
    missing = ls_run(sentiment, owner, "text_field.json", text_field="body")
    assert missing.status == "failed"
    assert res(missing)["errors"][0]["field"] == "data.body"


def test_bad_file_reports_rows_and_fields_and_writes_nothing(sentiment, owner):
    users = User.objects.count()
    job = ls_run(sentiment, owner, "bad.json")
    assert job.status == "failed"
    errors = res(job)["errors"]
    assert [(e["row"], e["field"]) for e in errors] == [
        (2, "data"),
        (3, "annotations[0].result[0].value.choices"),
        (4, "data"),  # the only string field is an image URL
    ]
    assert "angry" in errors[1]["message"]
    assert res(job)["created"] == 0
    assert res(job)["error_count"] == 3
    assert Item.objects.count() == 0
    assert Annotation.objects.count() == 0
    assert User.objects.count() == users
    assert ModelVersion.objects.count() == 0
    # an image result is refused by name when the text is found
    image = [
        {
            "data": {"text": "x", "image": "a.jpg"},
            "annotations": [
                {"completed_by": 1, "result": [{"type": "rectanglelabels", "value": {"rectanglelabels": ["positive"]}}]}
            ],
        }
    ]
    job = ls_run(sentiment, owner, json.dumps(image).encode())
    assert res(job)["errors"][0]["field"] == "annotations[0].result[0].type"
    # skip: the valid task is imported, with its placeholder
    skipped = ls_run(sentiment, owner, "bad.json", on_error="skip")
    assert skipped.status == "succeeded"
    assert res(skipped)["created"] == 1
    assert res(skipped)["error_count"] == 3
    assert Annotation.objects.get().annotator.username == "ls-1"


def test_spans_out_of_range_or_not_matching_the_text(owner):
    project = make_project(owner, name="ner", labels=("PER", "LOC"), task_type="spans")
    job = ls_run(project, owner, "bad_spans.json")
    assert job.status == "failed"
    assert Item.objects.count() == 0
    assert [(e["row"], e["field"]) for e in res(job)["errors"]] == [
        (1, "annotations[0].result[0].value.end"),
        (2, "annotations[0].result[0].value.text"),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"data": {"text": "not a list"}}', None),
        (b"[1, 2]", None),
        (b'[{"data": {"text": "a"}, "annotations": [{"result": []}]}]', "annotations[0].completed_by"),
        (b'[{"data": {"text": "a"}, "predictions": [{"score": "high", "result": []}]}]', "predictions[0].score"),
        (
            b'[{"data": {"text": "a"}, "annotations": [{"completed_by": 1, "result": [{"type": "choices", '
            b'"value": {"choices": ["positive", "negative"]}}]}]}]',
            "annotations[0].result",
        ),
        (
            b'[{"data": {"text": "a"}, "annotations": [{"completed_by": 1, "result": [{"type": "labels", '
            b'"value": {"start": 0, "end": 1, "labels": ["positive"]}}]}]}]',
            "annotations[0].result[0].type",
        ),
    ],
)
def test_malformed_tasks(sentiment, owner, body, field):
    job = ls_run(sentiment, owner, body)
    assert job.status == "failed"
    assert Item.objects.count() == 0
    assert res(job)["errors"][0]["field"] == field


def test_a_placeholder_does_not_block_adjudication(owner, staff):
    """A rejected annotation sends its item back to the queue only while someone may still label it; an inactive
    placeholder member never will, so the item waits for adjudication instead of sitting in the queue forever."""
    project = make_project(owner, name="p", labels=("positive", "negative", "neutral"), review_policy="all")
    Membership.objects.filter(project=project, user=owner).delete()  # only the imported annotators are members
    tasks = [
        {
            "id": 1,
            "data": {"text": "one"},
            "annotations": [{"completed_by": 1, "result": [{"type": "choices", "value": {"choices": ["positive"]}}]}],
        },
        {
            "id": 2,
            "data": {"text": "two"},
            "annotations": [{"completed_by": 2, "result": [{"type": "choices", "value": {"choices": ["negative"]}}]}],
        },
    ]
    ls_run(project, owner, json.dumps(tasks).encode())
    item = Item.objects.get(external_id="ls-1")
    assert item.status == "in_review"
    # ls-2 is a member who has not labeled item 1, but cannot log in to do it
    assert not review_eligible_annotator_exists(item=item, project=project)
    result = review_submit(
        annotation=Annotation.objects.get(item=item), project=project, reviewer=staff, verdict="reject"
    )
    assert result.created
    item.refresh_from_db()
    assert (item.status, item.adjudication) == ("in_review", True)
    # an active annotator who has not labeled it is someone
    add_member(project, make_user("active"), "annotator")
    assert review_eligible_annotator_exists(item=Item.objects.get(external_id="ls-2"), project=project)


def test_exported_final_label_wins_over_a_tie(sentiment, owner):
    tasks = [
        {
            "id": 5,
            "data": {"text": "mixed", "tandem_label": "neutral", "tandem_label_source": "adjudication"},
            "annotations": [
                {"completed_by": 1, "result": [{"type": "choices", "value": {"choices": ["positive"]}}]},
                {"completed_by": 2, "result": [{"type": "choices", "value": {"choices": ["negative"]}}]},
            ],
        },
        {
            "id": 6,
            "data": {"text": "agreed", "tandem_label": "positive", "tandem_label_source": "consensus"},
            "annotations": [{"completed_by": 1, "result": [{"type": "choices", "value": {"choices": ["positive"]}}]}],
        },
    ]
    job = ls_run(sentiment, owner, json.dumps(tasks).encode())
    assert job.status == "succeeded", job.result
    items = items_by_ext(sentiment)
    assert items["ls-5"].status == "approved"
    assert final_of(items["ls-5"]) == ({"label": "neutral"}, "imported")
    assert final_of(items["ls-6"]) == ({"label": "positive"}, "consensus")
    assert items["ls-5"].data == {"text": "mixed"}  # the final label is not kept as metadata
    bad = [{"data": {"text": "x", "tandem_label": "angry"}}]
    job = ls_run(sentiment, owner, json.dumps(bad).encode())
    assert job.status == "failed"
    assert res(job)["errors"][0]["field"] == "data.tandem_label"


def test_an_imported_version_cannot_be_activated(sentiment, owner, alice):
    ls_run(sentiment, owner, "classification.json")
    version = ModelVersion.objects.get(project=sentiment, name="sentiment-v1")
    r = client_for(owner).post(f"/api/projects/{sentiment.pk}/model-versions/{version.version}/activate")
    assert r.status_code == 409
    listed = client_for(owner).get(f"/api/projects/{sentiment.pk}/model-versions").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert "sentiment-v1" in [v["name"] for v in rows if v["kind"] == "imported"]
    version.refresh_from_db()
    assert version.status == VersionStatus.CANDIDATE


def test_import_api_takes_a_label_studio_file_with_text_field(sentiment, owner):
    """The REST path: a multipart upload of a Label Studio export (a .json file name) with ?format=labelstudio and
    ?text_field=, 202 with its Job, run as the worker would; the Job's result through GET /api/jobs/{id}."""
    body = run_import(
        client_for(owner),
        sentiment,
        file=(DATA / "text_field.json").read_bytes(),
        name="project-3-at-2024-03-09.json",
        query="?format=labelstudio&text_field=review",
    )
    assert body["status"] == "succeeded", body
    assert body["result"]["created"] == 2
    assert body["result"]["users_created"] == 1
    assert Annotation.objects.get(item__external_id="ls-31").annotator.username == "ls-9"


def test_managers_see_placeholders_in_the_annotators_list(sentiment, owner, alice):
    ls_run(sentiment, owner, "classification.json")
    r = client_for(owner).get(f"/api/projects/{sentiment.pk}/annotators")
    assert r.status_code == 200, r.content
    assert {row["username"] for row in r.json()["results"]} == {"owner", "alice", "ls-1", "ls-3"}


def test_a_repeated_external_id_in_one_file_is_a_duplicate(sentiment, owner):
    tasks = [
        {"id": 1, "data": {"text": "first", "external_id": "same"}},
        {"id": 2, "data": {"text": "second", "external_id": "same"}},
        {"id": 3, "data": {"text": "third"}},
    ]
    job = ls_run(sentiment, owner, json.dumps(tasks).encode())
    assert (res(job)["created"], res(job)["duplicates"]) == (2, 1)
    assert Item.objects.get(external_id="same").text == "first"


def _choice(control: str, *names: str) -> dict:
    return {"from_name": control, "to_name": "text", "type": "choices", "value": {"choices": list(names)}}


def test_results_of_other_controls_are_dropped_not_merged(owner, sentiment):
    # a labeling config with two <Choices> (sentiment and topic): the one whose values are this project's labels
    # is imported, the other dropped; an NER config with a document-level <Choices> keeps its spans
    tasks = [
        {
            "id": 1,
            "data": {"text": "Great phone"},
            "annotations": [
                {"completed_by": 1, "result": [_choice("topic", "tech"), _choice("sentiment", "positive")]}
            ],
        }
    ]
    job = ls_run(sentiment, owner, json.dumps(tasks).encode())
    assert job.status == "succeeded", job.result
    assert Annotation.objects.get(item__project=sentiment).value == {"label": "positive"}
    assert res(job)["dropped_results"] == 1

    ner = make_project(owner, name="ner2", labels=("PER", "LOC"), task_type="spans")
    span = {"from_name": "ner", "to_name": "text", "type": "labels"}
    tasks = [
        {
            "id": 2,
            "data": {"text": "Ada in Paris"},
            "annotations": [
                {
                    "completed_by": 1,
                    "result": [
                        {**span, "value": {"start": 0, "end": 3, "text": "Ada", "labels": ["PER"]}},
                        {**span, "value": {"start": 7, "end": 12, "text": "Paris", "labels": ["LOC"]}},
                        _choice("doc_type", "news"),
                    ],
                }
            ],
        }
    ]
    job = ls_run(ner, owner, json.dumps(tasks).encode())
    assert job.status == "succeeded", job.result
    assert [s["label"] for s in Annotation.objects.get(item__project=ner).value["spans"]] == ["PER", "LOC"]


def test_two_controls_that_both_fit_are_an_error(owner, sentiment):
    tasks = [
        {
            "data": {"text": "Fine"},
            "annotations": [{"completed_by": 1, "result": [_choice("a", "positive"), _choice("b", "negative")]}],
        }
    ]
    job = ls_run(sentiment, owner, json.dumps(tasks).encode())
    assert job.status == "failed"
    assert res(job)["errors"][0]["field"] == "annotations[0].result"
    assert "several <Choices> controls" in res(job)["errors"][0]["message"]
