from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class TaskType(models.TextChoices):
    CLASSIFICATION = "classification"
    MULTILABEL = "multilabel"
    SPANS = "spans"


class ReviewPolicy(models.TextChoices):
    NONE = "none"  # consensus approves; a tie goes to review
    DISAGREEMENTS = "disagreements"  # anything short of unanimous goes to review
    ALL = "all"
    SAMPLE = "sample"  # review_sample_rate of the items, plus ties


class Sampling(models.TextChoices):
    UNCERTAINTY = "uncertainty"
    RANDOM = "random"
    SEQUENTIAL = "sequential"


class UncertaintyMeasure(models.TextChoices):
    LEAST_CONFIDENCE = "least_confidence"
    MARGIN = "margin"  # "breaking ties": ranked best by Schröder et al. 2022
    ENTROPY = "entropy"


class Role(models.TextChoices):
    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"
    MANAGER = "manager"
    ENGINEER = "engineer"


class Project(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    task_type = models.CharField(max_length=20, choices=TaskType.choices, default=TaskType.CLASSIFICATION)
    # ordered list of {"name", "hotkey", "color", "description"?}; validated by services.projects
    labels = models.JSONField(default=list)
    guidelines = models.TextField(blank=True, default="")
    annotations_per_item = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )
    review_policy = models.CharField(max_length=20, choices=ReviewPolicy.choices, default=ReviewPolicy.NONE)
    review_sample_rate = models.FloatField(default=0.0, validators=[MinValueValidator(0), MaxValueValidator(1)])
    gold_rate = models.FloatField(default=0.0, validators=[MinValueValidator(0), MaxValueValidator(1)])
    sampling = models.CharField(max_length=20, choices=Sampling.choices, default=Sampling.UNCERTAINTY)
    uncertainty_measure = models.CharField(
        max_length=20, choices=UncertaintyMeasure.choices, default=UncertaintyMeasure.MARGIN
    )
    exploration_rate = models.FloatField(default=0.1, validators=[MinValueValidator(0), MaxValueValidator(1)])
    min_new_labels = models.PositiveIntegerField(default=100)
    # quality (annotation/services/gold.py, reviewing.py; issue 13)
    gold_pause_below = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )  # None: no auto-pause (the review queue still ranks annotators below 0.8 first)
    gold_pause_min = models.PositiveIntegerField(default=10, db_default=10)
    max_rejections = models.PositiveSmallIntegerField(
        default=2, db_default=2, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    reviewers_may_review_own = models.BooleanField(default=False, db_default=False)
    preselect_min_confidence = models.FloatField(
        default=0.8, db_default=0.8, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    # the data's license, written in every snapshot's dataset card (e.g. "cc-by-4.0"; "" = not stated)
    license = models.CharField(max_length=200, blank=True, default="", db_default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(annotations_per_item__gte=1), name="project_overlap_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def label_names(self) -> list[str]:
        return [label["name"] for label in self.labels]

    def clean(self) -> None:
        if not isinstance(self.labels, list) or not self.labels:
            raise ValidationError({"labels": "A project needs at least one label."})


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.ANNOTATOR)
    # gold auto-pause: `next` answers 403 while paused; gold answers count from gold_since (an un-pause resets it)
    paused = models.BooleanField(default=False, db_default=False)
    gold_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique")]
        indexes = [models.Index(fields=["user", "project"], name="membership_user_project")]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.project_id}:{self.role}"
