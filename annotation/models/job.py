from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models.project import Project


class JobKind(models.TextChoices):
    IMPORT = "import"
    EXPORT = "export"
    PRELABEL = "prelabel"
    TRAIN = "train"
    EXPLAIN = "explain"  # the head of the queue explained after a pre-label (on-demand ones have no Job)
    METRICS = "metrics"  # the quality metrics' refresh (annotation/quality)
    SNAPSHOT = "snapshot"  # a dataset snapshot's build (annotation/datasets)


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Job(models.Model):
    """Every long action is a Job, so clients can poll it and the UI can draw a progress bar."""

    kind = models.CharField(max_length=20, choices=JobKind.choices)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.BigIntegerField(default=0)
    total = models.BigIntegerField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    celery_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "-id"], name="job_project_recent")]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)
