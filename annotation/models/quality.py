"""Cached quality metrics (annotation/quality): one row per project and range key ("all" or "since..until")."""

from __future__ import annotations

from django.db import models

from annotation.models.project import Project


class MetricsCache(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64)
    payload = models.JSONField()
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "key"], name="metricscache_unique")]

    def __str__(self) -> str:
        return f"metrics of project {self.project_id} ({self.key})"


class MetricsState(models.Model):
    """The refresh check's memory per project (annotation/quality/metrics.py, `metrics_check`): when the beat last
    looked for changes, and the latest change it has seen. A change seen while a refresh was already queued or
    running is kept here, so it still triggers a refresh after that one, whose snapshot may have missed it."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, primary_key=True, related_name="+")
    checked_at = models.DateTimeField()
    changed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"metrics state of project {self.project_id}"
