"""Pre-label jobs, predictions, queue order and explanations, end to end in-process with the fake
predictor (the real model and a real worker: tests/integration/test_prelabel_worker.py)."""

from __future__ import annotations

import pytest

from annotation.models import Item, Job
from annotation.models.job import JobKind, JobStatus
from modelsvc.models import ModelVersion, Prediction, PrelabelChunk
from modelsvc.services.prelabel import prelabel_chunk, prelabel_start
from tests.conftest import add_member, client_for, make_project, make_user

pytestmark = pytest.mark.django_db

TEXTS = [
    "the sports final went to extra time",
    "a quiet day with nothing much",
    "tech stocks and politics collide",
    "politics dominated the evening news",
    "new tech gadgets unveiled today",
    "some words about nothing in particular",
]


def seed(project, n=30):
    Item.objects.bulk_create(
        [Item(project=project, external_id=f"e{i}", data={"text": f"{TEXTS[i % len(TEXTS)]} #{i}"}) for i in range(n)]
    )


def run_prelabel(project, user, django_capture_on_commit_callbacks) -> Job:
    with django_capture_on_commit_callbacks(execute=True):
        job = prelabel_start(project=project, user=user)
    job.refresh_from_db()
    return job


@pytest.fixture
def setup(settings, eager_tasks):
    settings.TANDEM_PRELABEL_CHUNK_SIZE = 7
    settings.TANDEM_COLD_START_PICKS = 0
    manager = make_user("m")
    project = make_project(manager, labels=("sports", "politics", "tech"), exploration_rate=0.0)
    seed(project)
    return project, manager


def test_prelabel_predicts_every_open_item_once(setup, django_capture_on_commit_callbacks):
    project, manager = setup
    job = run_prelabel(project, manager, django_capture_on_commit_callbacks)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.progress == job.total == 30
    assert PrelabelChunk.objects.filter(job=job).count() == 5  # ceil(30 / 7)
    version = ModelVersion.objects.get(project=project)
    assert (version.version, version.kind, version.status) == (1, "zero_shot", "active")
    assert Prediction.objects.filter(model_version=version).count() == 30
    for item in Item.objects.filter(project=project):
        p = item.prediction
        assert p["model_version"] == 1
        assert sum(p["probabilities"].values()) == pytest.approx(1, abs=1e-4)
        assert set(p["scores"]) >= {"least_confidence", "margin", "entropy"}
        assert p["uncertainty"] == p["scores"]["margin"]  # the project's measure
        assert round(item.uncertainty, 6) == p["uncertainty"]  # the JSON rounds, the row keeps it exact
        assert item.priority == item.uncertainty  # no exploration, no cold-start picks
        row = Prediction.objects.get(item=item, model_version=version)
        assert (row.uncertainty, row.margin) == (item.uncertainty, item.uncertainty)
    sports = Item.objects.get(project=project, external_id="e0")
    assert sports.prediction["value"] == {"label": "sports"}


def test_a_redelivered_chunk_writes_nothing_twice(setup, django_capture_on_commit_callbacks):
    project, manager = setup
    job = run_prelabel(project, manager, django_capture_on_commit_callbacks)
    lo, hi, size = job.params["chunks"][0]
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)  # as if the ack was lost
    prelabel_chunk(job_id=job.pk, index=0, lo=lo, hi=hi, size=size)
    job.refresh_from_db()
    assert job.progress == 30
    assert Prediction.objects.count() == 30


def test_one_prelabel_job_at_a_time(setup, django_capture_on_commit_callbacks):
    project, manager = setup
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = prelabel_start(project=project, user=manager)
        second = prelabel_start(project=project, user=manager)
    assert first.pk == second.pk
    assert len(callbacks) == 1


def test_next_serves_the_most_uncertain_first(setup, django_capture_on_commit_callbacks):
    project, manager = setup
    run_prelabel(project, manager, django_capture_on_commit_callbacks)
    annotator = make_user("a1")
    add_member(project, annotator, "annotator")
    client = client_for(annotator)
    served = []
    for n in range(12):
        r = client.get(f"/api/projects/{project.pk}/next")
        assert r.status_code == 200
        body = r.json()
        assert body["prediction"] is not None
        assert body["prediction"]["model_version"] == 1
        served.append(body["prediction"]["uncertainty"])
        r = client.post(
            f"/api/items/{body['id']}/annotations",
            {"value": body["prediction"]["value"], "accepted_suggestion": True},
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"k{n}",
        )
        assert r.status_code == 201, r.content
    assert served == sorted(served, reverse=True)
    assert served[0] == round(max(Item.objects.filter(project=project).values_list("uncertainty", flat=True)), 6)


def test_cold_start_serves_the_diverse_pick_first(settings, eager_tasks, django_capture_on_commit_callbacks):
    settings.TANDEM_COLD_START_PICKS = 4
    manager = make_user("m2")
    project = make_project(manager, labels=("sports", "politics", "tech"))
    seed(project, 40)
    job = run_prelabel(project, manager, django_capture_on_commit_callbacks)
    first = job.params["first"]
    assert len(first) == 4
    assert len(set(first)) == 4
    annotator = make_user("a2")
    add_member(project, annotator, "annotator")
    client = client_for(annotator)
    served = []
    for n in range(4):
        body = client.get(f"/api/projects/{project.pk}/next").json()
        served.append(body["id"])
        client.post(
            f"/api/items/{body['id']}/annotations",
            {"value": {"label": "tech"}},
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"c{n}",
        )
    assert served == first


def test_a_missing_model_fails_the_job_with_a_reason_and_labeling_goes_on(
    settings, eager_tasks, django_capture_on_commit_callbacks, tmp_path
):
    manager = make_user("m3")
    project = make_project(manager, labels=("a", "b"))
    seed(project, 3)
    settings.TANDEM_MODEL_BACKEND = "hf"
    settings.TANDEM_MODEL = str(tmp_path / "no-such-model")
    job = run_prelabel(project, manager, django_capture_on_commit_callbacks)
    assert job.status == JobStatus.FAILED
    assert "could not be loaded" in job.error
    assert "no-such-model" in job.error
    assert not Prediction.objects.exists()
    annotator = make_user("a3")
    add_member(project, annotator, "annotator")
    r = client_for(annotator).get(f"/api/projects/{project.pk}/next")
    assert r.status_code == 200
    assert r.json()["prediction"] is None


def test_changed_labels_get_a_new_zero_shot_version(setup, django_capture_on_commit_callbacks):
    project, manager = setup
    run_prelabel(project, manager, django_capture_on_commit_callbacks)
    project.labels = [*project.labels, {"name": "science", "hotkey": "4", "color": "#123456"}]
    project.save(update_fields=["labels"])
    run_prelabel(project, manager, django_capture_on_commit_callbacks)
    versions = dict(ModelVersion.objects.filter(project=project).values_list("version", "status"))
    assert versions == {1: "retired", 2: "active"}
    item = Item.objects.filter(project=project).first()
    assert item.prediction["model_version"] == 2
    assert "science" in item.prediction["probabilities"]
    assert Prediction.objects.filter(item=item).count() == 2  # one per version


def test_spans_and_multilabel_predictions(settings, eager_tasks, django_capture_on_commit_callbacks):
    manager = make_user("m4")
    spans = make_project(manager, name="s", task_type="spans", labels=("paris", "london"))
    Item.objects.create(project=spans, external_id="s1", data={"text": "😀 from paris with love"})
    run_prelabel(spans, manager, django_capture_on_commit_callbacks)
    p = Item.objects.get(project=spans).prediction
    assert {"start": 7, "end": 12, "label": "paris"}.items() <= p["value"]["spans"][0].items()
    multi = make_project(manager, name="m", task_type="multilabel", labels=("red", "blue", "green"))
    Item.objects.create(project=multi, external_id="m1", data={"text": "red and blue"})
    run_prelabel(multi, manager, django_capture_on_commit_callbacks)
    p = Item.objects.get(project=multi).prediction
    assert p["value"] == {"labels": ["red", "blue"]}
    assert all(0 <= q <= 1 for q in p["probabilities"].values())


def test_prelabel_after_import(settings, eager_tasks, django_capture_on_commit_callbacks, tmp_path):
    from annotation.services.importing import import_file

    settings.TANDEM_PRELABEL_ON_IMPORT = True
    manager = make_user("m5")
    project = make_project(manager, labels=("sports", "tech"))
    path = tmp_path / "items.jsonl"
    path.write_text('{"text": "sports today"}\n{"text": "tech today"}\n')
    with django_capture_on_commit_callbacks(execute=True):
        import_file(project=project, user=manager, path=path)
    job = Job.objects.get(project=project, kind="prelabel")
    assert job.status == JobStatus.SUCCEEDED
    assert Prediction.objects.filter(item__project=project).count() == 2


# --- API -----------------------------------------------------------------------------------------


def test_prelabel_api_permissions(setup, django_capture_on_commit_callbacks):
    project, _manager = setup
    annotator = make_user("a6")
    add_member(project, annotator, "annotator")
    engineer = make_user("e6")
    add_member(project, engineer, "engineer")
    outsider = make_user("o6")
    url = f"/api/projects/{project.pk}/prelabel"
    assert client_for(annotator).post(url).status_code == 403
    assert client_for(outsider).post(url).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        r = client_for(engineer).post(url)
    assert r.status_code == 202
    assert set(r.json()) == {"job"}
    job = client_for(engineer).get(f"/api/jobs/{r.json()['job']}").json()
    assert job["kind"] == "prelabel"
    assert job["status"] == "succeeded"
    assert job["progress"] == job["total"] == 30


def test_explanation_api_202_then_200_with_the_deciding_word(setup, settings, django_capture_on_commit_callbacks):
    project, manager = setup
    settings.TANDEM_EXPLAIN_HEAD = 0  # nothing explained ahead of time: on demand only
    reviewer = make_user("a7")  # annotators see an explanation only on the item they hold (test_blind_walk)
    add_member(project, reviewer, "reviewer")
    client = client_for(reviewer)
    item = Item.objects.get(project=project, external_id="e0")  # "the sports final went to extra time #0"
    r = client.get(f"/api/items/{item.pk}/explanation")
    assert r.status_code == 404
    assert "no model suggestion" in r.json()["detail"]
    run_prelabel(project, manager, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = client.get(f"/api/items/{item.pk}/explanation")
    assert r.status_code == 202
    assert r.json()["status"] == "computing"
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=False) as again:
        assert client.get(f"/api/items/{item.pk}/explanation").status_code == 202
    assert again == []  # queued once, not on every poll
    callbacks[0]()  # the worker computes it
    r = client.get(f"/api/items/{item.pk}/explanation")
    assert r.status_code == 200
    body = r.json()
    assert body["label"] == "sports"
    assert body["model_version"] == 1
    top = max(body["tokens"], key=lambda t: t["weight"])
    assert top["text"] == "sports"
    assert item.data["text"][top["start"] : top["end"]] == "sports"
    outsider = make_user("o7")
    assert client_for(outsider).get(f"/api/items/{item.pk}/explanation").status_code == 404


def test_head_of_queue_is_explained_after_prelabel(setup, settings, django_capture_on_commit_callbacks):
    project, manager = setup
    settings.TANDEM_EXPLAIN_HEAD = 3
    prelabel = run_prelabel(project, manager, django_capture_on_commit_callbacks)
    head = Item.objects.filter(project=project).order_by("-priority", "id")[:3]
    explained = Prediction.objects.filter(item__in=head, explanation__isnull=False).count()
    assert explained == 3
    assert Prediction.objects.filter(explanation__isnull=False).count() == 3
    job = Job.objects.get(project=project, kind=JobKind.EXPLAIN)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result == {"explained": 3}
    assert job.progress == job.total == 3
    assert job.created_by == manager
    assert job.params == {"prelabel_job": prelabel.pk, "model_version": 1}
    assert (job.started_at, job.finished_at) != (None, None)
    # the jobs API serializes it like any other Job
    client = client_for(manager)
    body = client.get(f"/api/jobs/{job.pk}").json()
    assert (body["kind"], body["status"], body["result"], body["project"]) == (
        "explain",
        "succeeded",
        {"explained": 3},
        project.pk,
    )
    listed = client.get(f"/api/projects/{project.pk}/jobs").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [(r["kind"], r["status"]) for r in rows] == [("explain", "succeeded"), ("prelabel", "succeeded")]


def test_no_explain_job_when_the_head_is_not_explained(setup, settings, django_capture_on_commit_callbacks):
    project, manager = setup
    settings.TANDEM_EXPLAIN_HEAD = 0
    run_prelabel(project, manager, django_capture_on_commit_callbacks)
    assert not Job.objects.filter(kind=JobKind.EXPLAIN).exists()


def _explain_job(project, manager, settings, django_capture_on_commit_callbacks) -> Job:
    """Pre-label with nothing explained, then queue and run the explain Job on its own."""
    from modelsvc.services.explanations import explain_head_queue

    settings.TANDEM_EXPLAIN_HEAD = 0
    run_prelabel(project, manager, django_capture_on_commit_callbacks)
    settings.TANDEM_EXPLAIN_HEAD = 3
    with django_capture_on_commit_callbacks(execute=True):
        job = explain_head_queue(project_id=project.pk, user_id=manager.pk, params={})
    assert job is not None
    job.refresh_from_db()
    return job


def test_a_redelivered_explain_message_does_nothing(setup, settings, monkeypatch, django_capture_on_commit_callbacks):
    import modelsvc.runtime
    from modelsvc.contracts import ModelUnavailable
    from modelsvc.tasks import explain_head_task

    project, manager = setup
    job = _explain_job(project, manager, settings, django_capture_on_commit_callbacks)
    assert (job.status, job.result) == (JobStatus.SUCCEEDED, {"explained": 3})

    def no_model(spec, **options):
        raise ModelUnavailable("must not be loaded")

    monkeypatch.setattr(modelsvc.runtime, "get_predictor", no_model)
    Prediction.objects.update(explanation=None)
    explain_head_task.delay(job.pk)  # delivered again after it succeeded
    again = Job.objects.get(pk=job.pk)
    assert (again.status, again.result, again.finished_at, again.error) == (
        JobStatus.SUCCEEDED,
        {"explained": 3},
        job.finished_at,
        "",
    )
    assert not Prediction.objects.filter(explanation__isnull=False).exists()
    prelabel = Job.objects.get(kind=JobKind.PRELABEL)
    Job.objects.filter(pk=prelabel.pk).update(status=JobStatus.RUNNING)
    explain_head_task.delay(prelabel.pk)  # a Job of another kind is never claimed
    prelabel.refresh_from_db()
    assert (prelabel.status, prelabel.error) == (JobStatus.RUNNING, "")


def test_an_explain_job_whose_worker_was_lost_is_taken_over(setup, settings, django_capture_on_commit_callbacks):
    from modelsvc.tasks import explain_head_task

    project, manager = setup
    job = _explain_job(project, manager, settings, django_capture_on_commit_callbacks)
    first = Prediction.objects.filter(explanation__isnull=False).order_by("id").first()
    Prediction.objects.exclude(pk=first.pk).update(explanation=None)  # the worker died after one of three
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, progress=1, result=None, finished_at=None)
    explain_head_task.delay(job.pk)  # redelivered (acks_late, reject_on_worker_lost)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result == {"explained": 2}
    assert job.progress == job.total == 2
    assert Prediction.objects.filter(explanation__isnull=False).count() == 3


def test_an_explain_job_fails_when_the_model_cannot_be_loaded(
    setup, settings, monkeypatch, django_capture_on_commit_callbacks
):
    import modelsvc.runtime
    from modelsvc.contracts import ModelUnavailable
    from modelsvc.services.explanations import explain_head_queue

    project, manager = setup
    settings.TANDEM_EXPLAIN_HEAD = 0
    run_prelabel(project, manager, django_capture_on_commit_callbacks)

    def no_model(spec, **options):
        raise ModelUnavailable("the artifact is corrupt")

    monkeypatch.setattr(modelsvc.runtime, "get_predictor", no_model)
    settings.TANDEM_EXPLAIN_HEAD = 3
    with django_capture_on_commit_callbacks(execute=True):
        job = explain_head_queue(project_id=project.pk, user_id=manager.pk, params={})
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "could not be loaded" in job.error
    assert "the artifact is corrupt" in job.error
    assert job.finished_at is not None
    assert not Prediction.objects.filter(explanation__isnull=False).exists()


def test_an_explain_job_fails_at_its_time_limits(setup, settings, monkeypatch, django_capture_on_commit_callbacks):
    from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

    import modelsvc.services.explanations as explanations
    from modelsvc.tasks import explain_head_task

    project, manager = setup

    def stuck(prediction, predictor):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(explanations, "_explain", stuck)
    job = _explain_job(project, manager, settings, django_capture_on_commit_callbacks)
    assert job.status == JobStatus.FAILED
    assert "Explaining the head of the queue ran past its time limit" in job.error
    # killed at the hard limit: the worker's main process fails the Job (JobTask.on_failure)
    hung = Job.objects.create(project=project, kind=JobKind.EXPLAIN, status=JobStatus.RUNNING)
    explain_head_task.on_failure(TimeLimitExceeded(), "task-id", (hung.pk,), {}, None)
    hung.refresh_from_db()
    assert hung.status == JobStatus.FAILED
    assert "hard time limit" in hung.error


def test_activating_a_version_rescores_the_open_items(setup, django_capture_on_commit_callbacks):
    from modelsvc.services.prelabel import prelabel_rescore

    project, manager = setup
    run_prelabel(project, manager, django_capture_on_commit_callbacks)
    v1 = ModelVersion.objects.get(project=project)
    v2 = ModelVersion.objects.create(
        project=project,
        version=2,
        kind="zero_shot",
        base_model=v1.base_model,
        labels=v1.labels,
        task_type="classification",
    )
    with django_capture_on_commit_callbacks(execute=True):
        job = prelabel_rescore(version=v2, user=manager)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert dict(ModelVersion.objects.filter(project=project).values_list("version", "status")) == {
        1: "retired",
        2: "active",
    }
    assert set(Item.objects.filter(project=project).values_list("prediction__model_version", flat=True)) == {2}


def test_a_trained_version_for_other_labels_gives_way_to_zero_shot(setup):
    from modelsvc.services.versions import version_ensure_active

    project, _ = setup
    trained = ModelVersion.objects.create(
        project=project,
        version=1,
        kind="fine_tuned",
        base_model="m",
        labels=[{"name": n, "description": ""} for n in project.label_names],
        task_type="classification",
        status="active",
    )
    assert version_ensure_active(project) == trained  # same label names: kept
    project.labels = [*project.labels, {"name": "science", "hotkey": "4", "color": "#123456"}]
    project.save(update_fields=["labels"])
    fresh = version_ensure_active(project)
    assert (fresh.version, fresh.kind, fresh.status) == (2, "zero_shot", "active")
    trained.refresh_from_db()
    assert trained.status == "retired"


def test_a_stale_prelabel_job_is_replaced(setup, settings, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    project, manager = setup
    with django_capture_on_commit_callbacks(execute=False):
        lost = prelabel_start(project=project, user=manager)  # its message never reaches a worker
    Job.objects.filter(pk=lost.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.TANDEM_PRELABEL_STALE_SECONDS + 60)
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        fresh = prelabel_start(project=project, user=manager)
    assert fresh.pk != lost.pk
    assert len(callbacks) == 1
    lost.refresh_from_db()
    assert lost.status == "failed"
    assert "replaced" in lost.error
