"""The labeling hot path with gold items, the pause, the served-suggestion record and honest pre-selection
(issue 13 points 3 and 5): `next` and submit through the REST API on real PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import Annotation, Assignment, FinalLabel, Item, Membership
from annotation.models.item import FinalLabelSource, ItemStatus
from annotation.services.queue import suggestion_preselect
from tests.annotation.apis.helpers import assert_error, make_items
from tests.conftest import add_member, client_for, make_project, make_user

pytestmark = pytest.mark.django_db


def make_gold(project, n: int, *, value=None, start: int = 1000, **fields) -> list[Item]:
    """n gold items (approved, FinalLabel source gold), created after the project's other items."""
    items = make_items(project, n, start=start, is_gold=True, status=ItemStatus.APPROVED, **fields)
    FinalLabel.objects.bulk_create(
        [FinalLabel(item=i, value=value or {"label": "sports"}, source=FinalLabelSource.GOLD) for i in items]
    )
    return items


def member_client(project, role: str = "annotator"):
    user = make_user()
    add_member(project, user, role)
    return user, client_for(user)


def next_item(client, project) -> dict | None:
    r = client.get(f"/api/projects/{project.pk}/next")
    assert r.status_code in (200, 204), r.content
    return r.json() if r.status_code == 200 else None


def submit(client, item_id: int, value=None, **body):
    return client.post(
        f"/api/items/{item_id}/annotations",
        {"value": value or {"label": "politics"}, **body},
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )


def label_all(client, project) -> list[int]:
    """Label until `next` answers 204; the ids served, in order."""
    served = []
    while (item := next_item(client, project)) is not None:
        served.append(item["id"])
        assert submit(client, item["id"]).status_code == 201
    return served


# ---------------------------------------------------------------- gold serving


def test_gold_rate_zero_never_serves_gold():
    project = make_project(gold_rate=0.0)
    normal = make_items(project, 5)
    make_gold(project, 3)
    _, client = member_client(project)
    assert label_all(client, project) == [i.pk for i in normal]


def test_gold_rate_one_serves_each_unanswered_gold_item_once_per_annotator_then_the_queue():
    project = make_project(gold_rate=1.0, annotations_per_item=2)
    normal = make_items(project, 3)
    gold = make_gold(project, 2)
    for _ in range(2):  # every annotator answers each gold item once, outside the overlap
        _, client = member_client(project)
        served = label_all(client, project)
        assert served[:2] == [g.pk for g in gold]
        assert sorted(served[2:]) == [i.pk for i in normal]
    # a third annotator finds every normal item decided (k = 2): nothing is served, gold included
    _, client = member_client(project)
    assert label_all(client, project) == []
    assert Annotation.objects.filter(item__in=gold).count() == 4
    assert Annotation.objects.filter(item__in=normal).count() == 6


def test_gold_is_served_at_the_rate():
    """Statistical with a wide bound: 80 nexts at gold_rate 0.5 serve Binomial(80, 0.5) gold items while some
    are left (mean 40, sd 4.5); 15..65 is more than 5 sd either side."""
    project = make_project(gold_rate=0.5)
    make_items(project, 100)
    gold = {g.pk for g in make_gold(project, 80)}
    _, client = member_client(project)
    served = []
    for _ in range(80):
        item = next_item(client, project)
        served.append(item["id"])
        assert submit(client, item["id"]).status_code == 201
    n_gold = sum(1 for i in served if i in gold)
    assert 15 <= n_gold <= 65, n_gold
    assert len(set(served)) == len(served)


@pytest.mark.parametrize("gold_rate", [0.0, 1.0])
def test_no_normal_item_left_means_nothing_is_served_even_with_gold_left(gold_rate):
    """A gold item served after the queue ran dry would stand out (the page says nothing is left), also on a
    gold draw: the gold statement serves only while the normal queue has an item for this user."""
    project = make_project(gold_rate=gold_rate)
    gold = make_gold(project, 2)
    _, client = member_client(project)
    assert next_item(client, project) is None
    [normal] = make_items(project, 1, start=0)
    assert next_item(client, project)["id"] == (gold[0].pk if gold_rate else normal.pk)


def test_a_gold_draw_serves_nothing_when_the_only_normal_item_is_excluded():
    project = make_project(gold_rate=1.0)
    [normal] = make_items(project, 1)
    gold = make_gold(project, 2)
    _, client = member_client(project)
    assert next_item(client, project)["id"] == gold[0].pk
    assert submit(client, gold[0].pk).status_code == 201
    # the client holds the normal item (prefetching): the queue has nothing else for it, so no gold either
    r = client.get(f"/api/projects/{project.pk}/next?exclude={normal.pk}")
    assert r.status_code == 204
    assert next_item(client, project)["id"] == gold[1].pk  # without the exclusion the normal item is there


def test_a_gold_item_looks_like_any_other_in_next():
    project = make_project(gold_rate=1.0)
    [normal] = make_items(project, 1)
    [gold] = make_gold(project, 1)
    prediction = {"model_version": 1, "kind": "zero_shot", "value": {"label": "tech"}, "confidence": 0.4}
    Item.objects.update(prediction=prediction)
    _, client = member_client(project)
    got_gold = next_item(client, project)
    assert submit(client, got_gold["id"]).status_code == 201
    got_normal = next_item(client, project)
    assert (got_gold["id"], got_normal["id"]) == (gold.pk, normal.pk)
    assert set(got_gold) == set(got_normal)
    assert got_gold["status"] == got_normal["status"] == "open"
    assert got_gold["prediction"] == got_normal["prediction"]
    assert Assignment.objects.get(item=normal).suggestion == Annotation.objects.get(item=gold).suggestion


def test_live_gold_lease_returns_the_same_item_and_excluded_gold_is_not_served():
    project = make_project(gold_rate=1.0)
    make_items(project, 2)
    [gold] = make_gold(project, 1)
    _, client = member_client(project)
    first = next_item(client, project)
    assert first["id"] == gold.pk
    assert next_item(client, project)["assignment"] == first["assignment"]  # rule 1: the live lease
    r = client.get(f"/api/projects/{project.pk}/next?exclude={gold.pk}")
    assert r.status_code == 200
    assert r.json()["id"] != gold.pk
    assert Item.objects.get(pk=gold.pk).lease_count == 1  # the lease columns stay equal to its Assignments


def test_a_gold_answer_never_changes_the_final_label_the_count_or_the_status():
    project = make_project(gold_rate=1.0, annotations_per_item=1)
    make_items(project, 1)
    [gold] = make_gold(project, 1, value={"label": "sports"})
    for value in ({"label": "politics"}, {"label": "tech"}, {"label": "sports"}):
        _, client = member_client(project)
        item = next_item(client, project)
        assert item["id"] == gold.pk
        r = submit(client, gold.pk, value)
        assert r.status_code == 201, r.content
    gold.refresh_from_db()
    assert (gold.status, gold.annotation_count, gold.lease_count) == (ItemStatus.APPROVED, 0, 0)
    final = FinalLabel.objects.get(item=gold)
    assert (final.value, final.source) == ({"label": "sports"}, FinalLabelSource.GOLD)
    assert Annotation.objects.filter(item=gold).count() == 3


def test_an_edited_gold_answer_decides_nothing():
    project = make_project(gold_rate=1.0)
    make_items(project, 1)
    [gold] = make_gold(project, 1, value={"label": "sports"})
    _, client = member_client(project)
    assert next_item(client, project)["id"] == gold.pk
    ann = submit(client, gold.pk, {"label": "tech"}).json()
    r = client.patch(f"/api/annotations/{ann['id']}/", {"value": {"label": "politics"}}, format="json")
    assert r.status_code == 200, r.content
    assert Annotation.objects.get(pk=ann["id"]).value == {"label": "politics"}
    final = FinalLabel.objects.get(item=gold)
    assert (final.value, final.source) == ({"label": "sports"}, FinalLabelSource.GOLD)


def test_gold_answers_are_not_progress_on_the_labeling_page():
    project = make_project(gold_rate=1.0)
    make_items(project, 3)
    make_gold(project, 2)
    user, client = member_client(project)
    for _ in range(3):  # two gold answers, then one normal item
        assert submit(client, next_item(client, project)["id"]).status_code == 201
    client.force_login(user)
    r = client.get(f"/projects/{project.pk}/label")
    assert r.status_code == 200
    assert r.context["progress"] == {"done": 1, "left": 2}


# ---------------------------------------------------------------- the pause


def test_a_paused_member_gets_403_with_paused_true():
    project = make_project()
    make_items(project, 2)
    user, client = member_client(project)
    Membership.objects.filter(project=project, user=user).update(paused=True)
    body = assert_error(client.get(f"/api/projects/{project.pk}/next"), 403)
    assert body["paused"] is True
    assert "paused" in body["detail"]
    assert not Assignment.objects.exists()
    Membership.objects.filter(project=project, user=user).update(paused=False)
    assert next_item(client, project) is not None


def test_a_role_refusal_does_not_say_paused():
    project = make_project()
    outsider = make_user()
    body = assert_error(client_for(outsider).get(f"/api/projects/{project.pk}/next"), 404)
    assert "paused" not in body


def test_the_pause_check_runs_after_a_gold_answer(django_capture_on_commit_callbacks):
    """Below gold_pause_below after gold_pause_min answers (annotation.services.gold.gold_answer_check, called
    by the submit once the gold answer is committed): the next `next` answers 403 paused."""
    project = make_project(gold_rate=1.0, gold_pause_below=0.5, gold_pause_min=2)
    make_items(project, 3)
    make_gold(project, 3, value={"label": "sports"})
    user, client = member_client(project)
    for n in range(2):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            assert submit(client, next_item(client, project)["id"], {"label": "tech"}).status_code == 201
        assert len(callbacks) == 1  # the check, after the commit
        assert Membership.objects.get(project=project, user=user).paused is (n == 1)
    body = assert_error(client.get(f"/api/projects/{project.pk}/next"), 403)
    assert body["paused"] is True


# ---------------------------------------------------------------- the served suggestion and pre-selection


def _predict(items, *, kind: str | None, confidence: float | None, label: str = "tech", version: int = 2):
    prediction = {
        "model_version": version,
        "value": {"label": label},
        "probabilities": {"sports": 0.1, "politics": 0.2, "tech": 0.7},
        "uncertainty": 0.5,
    }
    if kind is not None:
        prediction["kind"] = kind
    if confidence is not None:
        prediction["confidence"] = confidence
    Item.objects.filter(pk__in=[i.pk for i in items]).update(prediction=prediction)


def test_the_lease_records_the_suggestion_served_and_the_server_decides_accepted():
    project = make_project()
    items = make_items(project, 3)
    _predict(items, kind="fine_tuned", confidence=0.7)
    _, client = member_client(project)
    served = next_item(client, project)
    expected = {"model_version": 2, "kind": "fine_tuned", "value": {"label": "tech"}, "confidence": 0.7}
    assert Assignment.objects.get(item_id=served["id"]).suggestion == expected
    # the client's flag is ignored both ways
    r = submit(client, served["id"], {"label": "tech"}, accepted_suggestion=False)
    assert r.status_code == 201
    assert r.json()["accepted_suggestion"] is True
    ann = Annotation.objects.get(item_id=served["id"])
    assert (ann.suggestion, ann.accepted_suggestion) == (expected, True)
    served = next_item(client, project)
    r = submit(client, served["id"], {"label": "sports"}, accepted_suggestion=True)
    assert r.json()["accepted_suggestion"] is False
    assert Annotation.objects.get(item_id=served["id"]).accepted_suggestion is False


def test_an_edit_decides_accepted_again_against_the_stored_suggestion():
    project = make_project()
    items = make_items(project, 1)
    _predict(items, kind="fine_tuned", confidence=0.9)
    _, client = member_client(project)
    served = next_item(client, project)
    ann = submit(client, served["id"], {"label": "sports"}).json()
    assert ann["accepted_suggestion"] is False
    r = client.patch(f"/api/annotations/{ann['id']}/", {"value": {"label": "tech"}}, format="json")
    assert r.json()["accepted_suggestion"] is True
    assert Annotation.objects.get(pk=ann["id"]).accepted_suggestion is True


def test_without_a_suggestion_accepted_is_null_whatever_the_client_says():
    project = make_project()
    make_items(project, 1)
    _, client = member_client(project)
    served = next_item(client, project)
    assert served["prediction"] is None
    assert Assignment.objects.get().suggestion is None
    r = submit(client, served["id"], {"label": "tech"}, accepted_suggestion=True)
    assert r.json()["accepted_suggestion"] is None


def test_a_prediction_from_before_the_kind_counts_as_zero_shot():
    project = make_project()
    items = make_items(project, 1)
    _predict(items, kind=None, confidence=None)
    _, client = member_client(project)
    served = next_item(client, project)
    assert served["prediction"]["preselect"] is False
    suggestion = Assignment.objects.get().suggestion
    # its confidence: the predicted label's probability
    assert suggestion == {"model_version": 2, "kind": "zero_shot", "value": {"label": "tech"}, "confidence": 0.7}


@pytest.mark.parametrize(
    ("kind", "confidence", "preselect"),
    [
        ("zero_shot", 0.99, False),  # never for a zero-shot model: its confidence is uncalibrated
        ("fine_tuned", 0.79, False),  # below the project's preselect_min_confidence (0.8)
        ("fine_tuned", 0.8, True),  # at it
        ("fine_tuned", 0.95, True),
        ("fine_tuned", None, False),  # no confidence (spans): never
    ],
)
def test_preselect_rule_in_next(kind, confidence, preselect):
    project = make_project()
    items = make_items(project, 1)
    _predict(items, kind=kind, confidence=confidence)
    _, client = member_client(project)
    assert next_item(client, project)["prediction"]["preselect"] is preselect


def test_preselect_follows_the_projects_threshold():
    project = make_project(preselect_min_confidence=0.5)
    items = make_items(project, 1)
    _predict(items, kind="fine_tuned", confidence=0.6)
    _, client = member_client(project)
    assert next_item(client, project)["prediction"]["preselect"] is True


def test_suggestion_preselect_rule():
    high = {"kind": "fine_tuned", "confidence": 0.9}
    assert suggestion_preselect(suggestion=high, min_confidence=0.8)
    assert not suggestion_preselect(suggestion=high, min_confidence=0.95)
    assert not suggestion_preselect(suggestion={**high, "kind": "zero_shot"}, min_confidence=0.0)
    assert not suggestion_preselect(suggestion={"confidence": 0.9}, min_confidence=0.0)
    assert not suggestion_preselect(suggestion={**high, "confidence": None}, min_confidence=0.0)
    assert not suggestion_preselect(suggestion=None, min_confidence=0.0)


@pytest.mark.parametrize(
    ("task_type", "labels", "predicted", "answer", "accepted"),
    [
        ("multilabel", ("a", "b", "c"), {"labels": ["c", "a"]}, {"labels": ["a", "c"]}, True),
        ("multilabel", ("a", "b", "c"), {"labels": ["a"]}, {"labels": ["a", "b"]}, False),
        (
            "spans",
            ("PER", "LOC"),
            {"spans": [{"start": 5, "end": 9, "label": "LOC", "score": 0.7}, {"start": 0, "end": 4, "label": "PER"}]},
            {"spans": [{"start": 0, "end": 4, "label": "PER"}, {"start": 5, "end": 9, "label": "LOC"}]},
            True,
        ),
        (
            "spans",
            ("PER", "LOC"),
            {"spans": [{"start": 0, "end": 4, "label": "PER", "score": 0.9}]},
            {"spans": [{"start": 0, "end": 3, "label": "PER"}]},
            False,
        ),
    ],
)
def test_accepted_compares_values_not_their_order_or_span_scores(task_type, labels, predicted, answer, accepted):
    project = make_project(task_type=task_type, labels=labels)
    [item] = make_items(project, 1)
    Item.objects.filter(pk=item.pk).update(prediction={"model_version": 1, "kind": "fine_tuned", "value": predicted})
    _, client = member_client(project)
    assert next_item(client, project)["id"] == item.pk
    r = submit(client, item.pk, answer)
    assert r.status_code == 201, r.content
    assert r.json()["accepted_suggestion"] is accepted


# ---------------------------------------------------------------- the cost of gold


def _statements(ctx) -> list[str]:
    """The statements run, each as its first words (EXECUTE <name>), parameters left out; the savepoints of the
    submit inside the test's transaction (in production its transaction is its own) left out."""
    return [q["sql"].split("(")[0] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]]


def test_gold_rate_zero_adds_no_statement_to_next_or_submit():
    """Session auth (force_authenticate: no auth statement): next is the access check and the queue statement;
    submit is the lock and the write. A gold rate of 0 draws nothing and runs nothing more."""
    project = make_project(gold_rate=0.0)
    make_items(project, 3)
    make_gold(project, 2)
    _, client = member_client(project)
    assert submit(client, next_item(client, project)["id"]).status_code == 201  # prepares the statements
    with CaptureQueriesContext(connection) as ctx:
        item = next_item(client, project)
    assert _statements(ctx) == ["EXECUTE tandem_project_access", "EXECUTE tandem_next_prio_skip"]
    with CaptureQueriesContext(connection) as ctx:
        assert submit(client, item["id"]).status_code == 201
    assert _statements(ctx) == ["EXECUTE tandem_submit_lock", "EXECUTE tandem_submit_write"]


def test_with_gold_next_tries_the_gold_statement_first_and_a_gold_submit_is_the_same_two():
    project = make_project(gold_rate=1.0)
    make_items(project, 3)
    [gold] = make_gold(project, 1)
    _, client = member_client(project)
    assert next_item(client, project)["id"] == gold.pk
    with CaptureQueriesContext(connection) as ctx:
        assert submit(client, gold.pk).status_code == 201
    assert _statements(ctx)[-2:] == ["EXECUTE tandem_submit_lock", "EXECUTE tandem_submit_write"]
    assert submit(client, next_item(client, project)["id"]).status_code == 201  # prepares the normal statement
    with CaptureQueriesContext(connection) as ctx:
        item = next_item(client, project)  # every gold item is answered: the gold statement finds none
    assert item["id"] != gold.pk
    assert _statements(ctx) == [
        "EXECUTE tandem_project_access",
        "EXECUTE tandem_next_gold_skip",
        "EXECUTE tandem_next_prio_skip",
    ]
