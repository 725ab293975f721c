"""The snapshot API: create (202, the build queued on commit), 400 with the field, access (403 annotator, 404
outsider), list and detail, an empty snapshot; the project's `license` field."""

from __future__ import annotations

import pytest

from annotation.datasets.build import snapshot_build
from annotation.models import Job, Snapshot
from tests.annotation.apis.helpers import assert_error, error_fields
from tests.conftest import add_member, client_for, make_user
from tests.datasets.helpers import item, label

pytestmark = pytest.mark.django_db

DETAIL_KEYS = {
    "id", "project", "name", "status", "job", "rows", "splits", "label_distribution", "agreement", "model_version",
    "sha256", "formats", "filters", "split", "pseudonymize", "error", "created_at", "finished_at",
}  # fmt: skip


@pytest.fixture
def labeled(project, annotator):
    for n, name in enumerate(("sports", "politics", "tech", "sports")):
        it = item(project, f"x{n}")
        label(it, {"label": name}, (annotator, {"label": name}))
    return project


def _create(client, project, body, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(f"/api/projects/{project.pk}/snapshots", body, format="json")
    return response, callbacks


def test_create_queues_the_build_and_detail_shows_it(labeled, manager_client, django_capture_on_commit_callbacks):
    body = {"name": "v1", "filters": {"labels": ["sports", "tech"]}, "split": {"train": 0.5, "validation": 0.25,
            "test": 0.25, "seed": 9}}  # fmt: skip
    response, callbacks = _create(manager_client, labeled, body, django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.content
    created = response.json()
    assert set(created) == {"job", "snapshot"}
    assert len(callbacks) == 1  # snapshot_build_task queued once the transaction commits
    job = Job.objects.get(pk=created["job"])
    assert (job.kind, job.status, job.params["snapshot"]) == ("snapshot", "queued", created["snapshot"])

    detail = manager_client.get(f"/api/snapshots/{created['snapshot']}").json()
    assert set(detail) == DETAIL_KEYS
    assert (detail["status"], detail["job"], detail["name"]) == ("building", job.pk, "v1")
    assert detail["filters"]["labels"] == ["sports", "tech"]
    assert detail["filters"]["status"] == ["approved"]  # defaults filled in
    assert detail["split"] == {"train": 0.5, "validation": 0.25, "test": 0.25, "seed": 9, "stratify": True,
                               "group_by": None}  # fmt: skip

    snapshot_build(job_id=job.pk)
    detail = manager_client.get(f"/api/snapshots/{created['snapshot']}").json()
    assert detail["status"] == "ready"
    assert detail["rows"] == 3
    # sports (2 rows) 1 / 0.5 / 0.5, then tech 0.5 / 0.25 / 0.25: each stratum's spare row to the split most behind
    assert detail["splits"] == {"train": 1, "validation": 1, "test": 1}
    assert detail["label_distribution"] == {"sports": 2, "politics": 0, "tech": 1}
    assert len(detail["sha256"]) == 64
    assert detail["formats"]["jsonl"]["sha256"] == detail["sha256"]
    assert detail["finished_at"] is not None


def test_an_empty_snapshot_says_so(labeled, manager_client, django_capture_on_commit_callbacks):
    response, _ = _create(
        manager_client, labeled, {"name": "none", "filters": {"status": "open"}}, django_capture_on_commit_callbacks
    )
    snapshot_build(job_id=response.json()["job"])
    detail = manager_client.get(f"/api/snapshots/{response.json()['snapshot']}").json()
    assert (detail["status"], detail["rows"]) == ("ready", 0)
    assert detail["splits"] == {"train": 0, "validation": 0, "test": 0}
    assert detail["sha256"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # of b""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "split": {"train": 0.5, "validation": 0.1, "test": 0.1}}, "split"),
        ({"name": "x", "filters": {"colour": "red"}}, "filters.colour"),
        ({"name": "x", "filters": {"min_agreement": 3}}, "filters.min_agreement"),
        ({"filters": {}}, "name"),
    ],
)
def test_bad_definitions_answer_400_with_the_field(labeled, manager_client, body, field):
    response = manager_client.post(f"/api/projects/{labeled.pk}/snapshots", body, format="json")
    assert field in error_fields(assert_error(response, 400))
    assert not Snapshot.objects.exists()
    assert not Job.objects.filter(kind="snapshot").exists()


def test_access(labeled, annotator_client, manager, django_capture_on_commit_callbacks):
    snapshot = Snapshot.objects.create(project=labeled, name="s", created_by=manager)
    for url in (f"/api/projects/{labeled.pk}/snapshots", f"/api/snapshots/{snapshot.pk}"):
        assert_error(annotator_client.get(url), 403)
    assert_error(annotator_client.post(f"/api/projects/{labeled.pk}/snapshots", {"name": "x"}, format="json"), 403)

    outsider = client_for(make_user("outsider"))
    for url in (f"/api/projects/{labeled.pk}/snapshots", f"/api/snapshots/{snapshot.pk}", "/api/snapshots/987654"):
        assert_error(outsider.get(url), 404)
    assert_error(outsider.post(f"/api/projects/{labeled.pk}/snapshots", {"name": "x"}, format="json"), 404)

    engineer = make_user("engineer")
    add_member(labeled, engineer, "engineer")
    response, _ = _create(client_for(engineer), labeled, {"name": "e"}, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    staff = client_for(make_user("staff_user", staff=True))
    assert staff.get(f"/api/snapshots/{snapshot.pk}").status_code == 200


def test_list_newest_first_and_paginated(labeled, manager, manager_client, django_assert_max_num_queries):
    made = [Snapshot.objects.create(project=labeled, name=f"s{n}", created_by=manager) for n in range(3)]
    with django_assert_max_num_queries(4):
        body = manager_client.get(f"/api/projects/{labeled.pk}/snapshots").json()
    assert body["count"] == 3
    assert [s["id"] for s in body["results"]] == [s.pk for s in reversed(made)]
    page = manager_client.get(f"/api/projects/{labeled.pk}/snapshots", {"page_size": 2, "page": 2}).json()
    assert [s["name"] for s in page["results"]] == ["s0"]


def test_project_license(project, manager_client):
    url = f"/api/projects/{project.pk}"
    assert manager_client.get(url).json()["license"] == ""
    response = manager_client.patch(url, {"license": " cc-by-4.0 "}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["license"] == "cc-by-4.0"
    assert "license" in error_fields(assert_error(manager_client.patch(url, {"license": "a\nb"}, format="json"), 400))
    created = manager_client.post("/api/projects", {"name": "n", "labels": ["a"], "license": "mit"}, format="json")
    assert created.json()["license"] == "mit"
