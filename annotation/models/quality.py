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
