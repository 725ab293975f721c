"""Blind labeling (issue 13): walk EVERY read endpoint of annotation.urls as an annotator and check that nothing
they may not see leaks: others' annotations and usernames, final labels, gold flags and values, the model's output
outside the item served to them, model versions and metrics. The endpoint list comes from the URL patterns, so a
new endpoint is walked (or, with an id this test does not know, fails it) without anyone remembering to add it.

The same detector run over a manager's walk must find every one of those values: it is not vacuous."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.utils import timezone

from annotation.models import Annotation, FinalLabel, Item, Job, Review
from annotation.models.job import JobKind, JobStatus
from annotation.services.gold import gold_set
from annotation.urls import urlpatterns
from modelsvc.models import ModelVersion, Prediction
from tests.annotation.apis.helpers import assert_error, error_fields
from tests.conftest import add_member, client_for, make_project, make_user

pytestmark = pytest.mark.django_db

LABELS = ["sports", "politics", "tech", "science", "arts"]
MINE = {"label": "sports"}  # the walking annotator's own answers
OTHERS = {"label": "arts"}  # another annotator's answers
GOLD = {"label": "tech"}  # the gold value
FINAL = {"label": "science"}  # a decided item's final label
SUGGESTED = {"label": "politics"}  # the model's suggestion on every item
SECRET_NAMES = ("zed_other", "carol_third")  # other annotators' usernames
# keys that carry what an annotator may not see (the served item's `prediction` in `next` aside)
FORBIDDEN_KEYS = {
    "prediction",
    "probabilities",
    "uncertainty",
    "final",
    "is_gold",
    "gold_value",
    "gold_answers",
    "gold_accuracy",
    "accuracy",
    "macro_f1",
    "metrics",
}
FORBIDDEN_VALUES = (GOLD, FINAL, OTHERS, SUGGESTED)
BLIND_FILTERS = {
    "label": "science",
    "annotator": "zed_other",
    "is_gold": "true",
    "uncertainty_min": "0.1",
    "uncertainty_max": "0.9",
    "status": "approved",
}


def _prediction(item: Item, version: ModelVersion) -> dict[str, Any]:
    probabilities = {"politics": 0.6, "sports": 0.1, "tech": 0.1, "science": 0.1, "arts": 0.1}
    Prediction.objects.create(
        item=item,
        model_version=version,
        value=SUGGESTED,
        probabilities=probabilities,
        least_confidence=0.4,
        margin=0.5,
        entropy=1.2,
        uncertainty=0.5,
        explanation={"tokens": [{"text": "t", "start": 0, "end": 1, "weight": 0.3}], "label": "politics"},
    )
    return {
        "model_version": version.version,
        "value": SUGGESTED,
        "probabilities": probabilities,
        "uncertainty": 0.5,
        "scores": {"least_confidence": 0.4, "margin": 0.5, "entropy": 1.2},
    }


@pytest.fixture
def world(settings, tmp_path, monkeypatch):
    """A project with predictions, a model version, gold items, decided items, others' annotations, Jobs, a
    dataset snapshot."""
    manager = make_user("walk_manager")
    project = make_project(
        manager, labels=LABELS, annotations_per_item=2, sampling="sequential", exploration_rate=0, gold_rate=0
    )
    me, other, third = make_user("walker"), make_user(SECRET_NAMES[0]), make_user(SECRET_NAMES[1])
    for user in (me, other, third):
        add_member(project, user)
    version = ModelVersion.objects.create(
        project=project,
        version=1,
        kind="fine_tuned",
        base_model="m",
        labels=[{"name": n} for n in LABELS],
        task_type="classification",
        metrics={"accuracy": 0.77, "macro_f1": 0.7},
        status="active",
    )
    names = ["open", "shared", "decided", "gold", "others_only"]
    items = {n: Item.objects.create(project=project, external_id=n, data={"text": f"{n} text"}) for n in names}
    for item in items.values():
        Item.objects.filter(pk=item.pk).update(prediction=_prediction(item, version), uncertainty=0.5, priority=0.5)

    def annotate(item, user, value, **extra):
        annotation = Annotation.objects.create(item=item, annotator=user, value=value, **extra)
        Item.objects.filter(pk=item.pk).update(annotation_count=Annotation.objects.filter(item=item).count())
        return annotation

    mine = annotate(items["shared"], me, MINE)
    theirs = annotate(items["shared"], other, OTHERS)
    Item.objects.filter(pk=items["shared"].pk).update(status="in_review")
    Review.objects.create(annotation=mine, reviewer=manager, verdict="approve", comment="fine")
    annotate(items["decided"], other, OTHERS)
    annotate(items["decided"], third, FINAL)
    Item.objects.filter(pk=items["decided"].pk).update(status="approved")
    FinalLabel.objects.create(item=items["decided"], value=FINAL, source="review")
    annotate(items["others_only"], third, OTHERS)
    Item.objects.filter(pk=items["others_only"].pk).update(status="in_progress")
    gold_set(item=items["gold"], value=GOLD)
    Annotation.objects.create(item=items["gold"], annotator=other, value=OTHERS)  # a gold answer
    now = timezone.now()
    jobs = [
        Job.objects.create(
            project=project,
            kind=JobKind.TRAIN,
            created_by=manager,
            status=JobStatus.SUCCEEDED,
            result={"accuracy": 0.77, "macro_f1": 0.7, "model_version": 1},
            finished_at=now,
        ),
        Job.objects.create(
            project=project, kind=JobKind.IMPORT, created_by=manager, status=JobStatus.SUCCEEDED, result={"created": 5}
        ),
    ]
    # a built snapshot (issue 14): its API is for engineers, managers and staff only
    import annotation.datasets.build as snapshot_building

    settings.TANDEM_SNAPSHOT_DIR, settings.TANDEM_SNAPSHOT_EAGER_FORMATS = tmp_path / "snapshots", []
    monkeypatch.setattr(snapshot_building, "_progress", lambda *args: None)  # the "jobs" connection: not in tests
    _, snapshot_job = snapshot_building.snapshot_create(project=project, user=manager, body={"name": "walk"})
    snapshot = snapshot_building.snapshot_build(job_id=snapshot_job.pk)
    return {
        "project": project,
        "manager": manager,
        "snapshot": snapshot,
        "me": me,
        "other": other,
        "items": items,
        "annotations": [mine, theirs],
        "jobs": jobs,
        "version": version,
    }


_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def _urls(world) -> list[tuple[str, str]]:
    """(route name, URL) for every pattern of annotation.urls, once per id worth asking about."""
    ids = {
        "projects": [world["project"].pk],
        "items": [i.pk for i in world["items"].values()],
        "annotations": [a.pk for a in world["annotations"]],
        "jobs": [j.pk for j in world["jobs"]],
        "snapshots": [world["snapshot"].pk],
    }
    out = []
    for pattern in urlpatterns:
        regex = pattern.pattern.regex.pattern
        path = regex.removeprefix("^").removesuffix("/?$")
        groups = _GROUP.findall(path)
        if not groups:
            out.append((pattern.name, f"/api/{path}"))
            continue
        head = path.split("/")[0]
        assert head in ids, f"the walk does not know the ids of /api/{path}: add them to test_blind_walk._urls"
        for pk in ids[head]:
            values = {
                "pk": pk,
                "user_id": world["other"].pk,
                "version": world["version"].version,
            }
            unknown = set(groups) - set(values)
            assert not unknown, f"the walk does not know {unknown} in /api/{path}: add them to test_blind_walk._urls"
            out.append((pattern.name, "/api/" + _GROUP.sub(lambda m, v=values: str(v[m.group(1)]), path)))
    return out


def _body(response) -> Any:
    if getattr(response, "streaming", False):
        raw = b"".join(response.streaming_content)
    else:
        raw = response.content
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def _leaks(body: Any, *, served: dict[str, Any] | None = None) -> list[str]:
    """What in `body` an annotator may not see. `served`: the item served to them (by `next`), whose
    `prediction` they may see."""
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if served is not None and node.get("id") == served["id"] and "prediction" in node:
                node = {k: v for k, v in node.items() if k != "prediction"}
            for key, value in node.items():
                if key in FORBIDDEN_KEYS:
                    found.append(f"key {key!r} at {where}")
                walk(value, f"{where}.{key}")
            if node in FORBIDDEN_VALUES:
                found.append(f"value {node} at {where}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(body, "$")
    text = json.dumps(body) if not isinstance(body, str) else body
    found += [f"username {name!r}" for name in SECRET_NAMES if name in text]
    return found


def _walk(client, world, *, served=None) -> dict[str, tuple[int, list[str]]]:
    """GET every endpoint; {url: (status, leaks)}."""
    results = {}
    for _name, url in _urls(world):
        response = client.get(url)
        assert response.status_code in (200, 202, 204, 403, 404, 405), (url, response.status_code, response.content)
        leaks = _leaks(_body(response), served=served) if response.status_code in (200, 202) else []
        results[url] = (response.status_code, leaks)
    return results


def test_an_annotator_sees_nothing_they_may_not(world):
    client = client_for(world["me"])
    project = world["project"]
    # the item served to the annotator: its suggestion (and explanation) are theirs to see
    served = client.get(f"/api/projects/{project.pk}/next").json()
    assert served["id"] == world["items"]["open"].pk
    assert served["prediction"]["value"] == SUGGESTED

    results = _walk(client, world, served=served)
    leaking = {url: leaks for url, (_status, leaks) in results.items() if leaks}
    assert leaking == {}
    assert any(code == 200 for code, _ in results.values())

    p, items = project.pk, world["items"]
    # what they may not have at all
    assert results[f"/api/projects/{p}/model-versions"][0] == 403
    assert results[f"/api/projects/{p}/annotators"][0] == 403
    snapshot = world["snapshot"].pk
    for url in (f"/api/projects/{p}/snapshots", f"/api/snapshots/{snapshot}", f"/api/snapshots/{snapshot}/download"):
        assert results[url][0] == 403, url
    assert results[f"/api/jobs/{world['jobs'][0].pk}"][0] == 404
    assert results[f"/api/annotations/{world['annotations'][1].pk}"][0] == 404  # another's annotation
    # the model's output only on the item served to them
    assert results[f"/api/items/{items['open'].pk}/explanation"][0] == 200
    for name in ("shared", "decided", "gold", "others_only"):
        assert results[f"/api/items/{items[name].pk}/explanation"][0] == 403, name
    # their own annotation and its review are theirs
    own = client.get(f"/api/items/{items['shared'].pk}/annotations").json()
    assert [a["value"] for a in own] == [MINE]


@pytest.mark.parametrize(("name", "value"), sorted(BLIND_FILTERS.items()))
def test_an_annotator_may_not_filter_by_what_they_do_not_see(world, name, value):
    client = client_for(world["me"])
    url = f"/api/projects/{world['project'].pk}/items"
    body = assert_error(client.get(url, {name: value}), 400)
    assert error_fields(body) == [name]
    # those who may inspect the project filter by it
    assert client_for(world["manager"]).get(url, {name: value}).status_code == 200


def test_the_detector_finds_what_a_manager_sees(world):
    """Those who may inspect see everything: the same walk finds each secret, so the annotator's walk above is
    not passing because the detector is blind."""
    results = _walk(client_for(world["manager"]), world)
    leaks = "\n".join(leak for _status, found in results.values() for leak in found)
    for secret in (*SECRET_NAMES, "key 'gold_value'", "key 'is_gold'", "key 'final'", "key 'prediction'"):
        assert secret in leaks, secret
    for value in FORBIDDEN_VALUES:
        assert f"value {value}" in leaks, value
    p = world["project"].pk
    assert results[f"/api/projects/{p}/model-versions"][0] == 200
    assert results[f"/api/projects/{p}/annotators"][0] == 200
    assert results[f"/api/snapshots/{world['snapshot'].pk}"][0] == 200
    assert results[f"/api/snapshots/{world['snapshot'].pk}/download"][0] == 200
    for item in world["items"].values():
        assert results[f"/api/items/{item.pk}/explanation"][0] == 200
