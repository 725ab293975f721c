"""Small projects for the snapshot tests, built through the ORM the way the services leave them."""

from __future__ import annotations

import json
from typing import Any

from annotation.datasets.build import snapshot_build, snapshot_create
from annotation.datasets.paths import canonical_path
from annotation.models import Annotation, FinalLabel, Item, Snapshot


def item(project, external_id: str, text: str | None = None, *, status: str = "approved", **meta: Any) -> Item:
    return Item.objects.create(
        project=project, external_id=external_id, data={"text": text or f"text of {external_id}", **meta}, status=status
    )


def label(it: Item, value: dict[str, Any] | None, *annotations: tuple[Any, dict[str, Any]], source: str = "consensus"):
    """Counting annotations (user, value) and, unless value is None, the final label."""
    for user, v in annotations:
        Annotation.objects.create(item=it, annotator=user, value=v)
    Item.objects.filter(pk=it.pk).update(annotation_count=len(annotations))
    if value is not None:
        FinalLabel.objects.create(item=it, value=value, source=source)


def build(project, user, body: dict[str, Any] | None = None, **kwargs: Any) -> Snapshot:
    """Create and build a snapshot synchronously (the task's work, without Celery)."""
    body = {"name": "s", **(body or {}), **kwargs}
    _, job = snapshot_create(project=project, user=user, body=body)
    built = snapshot_build(job_id=job.pk)
    assert built is not None
    assert built.status == "ready", built.error
    return built


def rows(snapshot: Snapshot) -> list[dict[str, Any]]:
    """The canonical file read back with the json module."""
    with canonical_path(snapshot).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def ids(snapshot: Snapshot) -> list[str]:
    return [r["external_id"] for r in rows(snapshot)]
