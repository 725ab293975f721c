"""Dataset snapshots (issue 14): an immutable, named dataset version of a project, defined by filters and a
split, built by a worker Job (annotation/datasets). The canonical content is the JSONL file written by the
build; every other format is written from it, so a snapshot never changes after it is built."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models.job import Job
from annotation.models.project import Project


class SnapshotStatus(models.TextChoices):
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


class Snapshot(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="snapshots")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=SnapshotStatus.choices, default=SnapshotStatus.BUILDING)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # normalised as the API took them (annotation/datasets/filters.py): every key present, defaults filled in
    filters = models.JSONField(default=dict)
    split = models.JSONField(default=dict)  # {"train", "validation", "test", "seed", "stratify", "group_by"}
    pseudonymize = models.BooleanField(default=False)
    rows = models.PositiveIntegerField(default=0)
    splits = models.JSONField(default=dict)  # {"train": n, "validation": n, "test": n}
    label_distribution = models.JSONField(default=dict)  # {label: n} over all rows
    agreement = models.JSONField(null=True, blank=True)  # of the rows it holds (annotation/datasets/build.py)
    model_version = models.PositiveIntegerField(null=True, blank=True)  # the active version at build time
    sha256 = models.CharField(max_length=64, blank=True, default="")  # of the canonical JSONL bytes
    # {format: {"bytes": n, "sha256": hex}} for each format written so far under TANDEM_SNAPSHOT_DIR
    formats = models.JSONField(default=dict)
    # what the writers need besides the rows: {"meta": [{"field", "column", "type"}], "labels": [...],
    # "task_type", "per_split": {split: {label: n}}, ...} (annotation/datasets/build.py)
    schema = models.JSONField(default=dict)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "-id"], name="snapshot_project_recent")]

    def __str__(self) -> str:
        return f"snapshot {self.pk} '{self.name}' of project {self.project_id} ({self.status})"
