"""Helpers for the Label Studio bridge's tests: the hand-written exports in data/ (written from Label Studio's
export and import guides: docs/source/guide/export.md, task_format.md, predictions.md) and an import run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from annotation.models import Job, Project
from annotation.services.importing import import_job_create, import_run

DATA = Path(__file__).parent / "data"


def ls_run(
    project: Project, user, body: bytes | str, *, text_field: str | None = None, on_error: str | None = None
) -> Job:
    """Import `body` (a file name in data/, or the bytes of a Label Studio export) through the import Job path
    with ?format=labelstudio, run right here, and return the finished Job."""
    data = (DATA / body).read_bytes() if isinstance(body, str) else body
    job = import_job_create(
        project=project,
        user=user,
        chunks=[data],
        declared_size=len(data),
        filename="export.json",
        requested_format="labelstudio",
        on_error=on_error,
        text_field=text_field,
    )
    done = import_run(job_id=job.pk)
    assert done is not None
    return done


def res(job: Job) -> dict[str, Any]:
    """A finished import Job's result (every import Job ends with one)."""
    assert job.result is not None
    return job.result
