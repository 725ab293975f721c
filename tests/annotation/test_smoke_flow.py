import uuid

import pytest

from annotation.models import Job
from annotation.services.importing import import_run


@pytest.mark.django_db
def test_flow(manager_client, annotator_client, project, django_capture_on_commit_callbacks):
    rows = [{"external_id": f"e{i}", "text": f"text {i}", "src": "x"} for i in range(5)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = manager_client.post(f"/api/projects/{project.pk}/import", rows, format="json")
    assert r.status_code == 202, r.content
    assert len(callbacks) == 1
    job = import_run(job_id=r.json()["job"])
    assert job.status == "succeeded", job.result
    assert job.result["created"] == 5
    r = annotator_client.get(f"/api/projects/{project.pk}/next")
    assert r.status_code == 200, r.content
    item = r.json()
    r = annotator_client.post(
        f"/api/items/{item['id']}/annotations",
        {"value": {"label": "sports"}},
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )
    assert r.status_code == 201, r.content
    r = manager_client.get(f"/api/projects/{project.pk}/export?format=jsonl")
    assert r.status_code == 200
    body = b"".join(r.streaming_content).decode()
    assert body.count("\n") == 5
    assert Job.objects.count() == 1
