from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models.project import Project


class ItemStatus(models.TextChoices):
    OPEN = "open"  # no annotation yet
    IN_PROGRESS = "in_progress"  # some annotations, fewer than the project's overlap k
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    # no REJECTED: a reviewer's reject sends the item back to the queue or to adjudication (migration 0009)


QUEUE_STATUSES = (ItemStatus.OPEN, ItemStatus.IN_PROGRESS)


class Item(models.Model):
    """One thing to label.

    The slot accounting the queue needs lives on the row itself (annotation_count, lease_count,
    lease_expires_at), so that `SELECT ... FOR UPDATE SKIP LOCKED` re-checks it when a concurrent
    transaction changed the row (see annotation/services/queue.md).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=255)
    data = models.JSONField()
    status = models.CharField(max_length=20, choices=ItemStatus.choices, default=ItemStatus.OPEN)
    priority = models.FloatField(default=0.0)
    uncertainty = models.FloatField(null=True, blank=True)
    # the current model suggestion in the REST shape (modelsvc writes it with each pre-label, for the
    # project's active model version), on the row so that `next` and item lists read it for free
    prediction = models.JSONField(null=True, blank=True)
    # a gold item: its gold value is its FinalLabel (source `gold`); served at the project's gold_rate to
    # every annotator once, outside the overlap (annotation/services/gold.py)
    is_gold = models.BooleanField(default=False)
    # reviewer rejections of this item so far; at the project's max_rejections it goes to adjudication
    rejections = models.PositiveSmallIntegerField(default=0, db_default=0)
    # in review, awaiting a reviewer's correction (max_rejections reached, or no eligible annotator left)
    adjudication = models.BooleanField(default=False, db_default=False)
    annotation_count = models.PositiveSmallIntegerField(default=0)
    lease_count = models.PositiveSmallIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="item_unique_external_id"),
        ]
        indexes = [
            # the queue: only items still needing annotations, in serving order
            models.Index(
                "project",
                models.F("priority").desc(),
                "id",
                name="item_queue",
                condition=models.Q(status__in=QUEUE_STATUSES),
            ),
            # sequential and random sampling: import order
            models.Index(
                fields=["project", "id"], name="item_queue_seq", condition=models.Q(status__in=QUEUE_STATUSES)
            ),
            models.Index(fields=["project", "status"], name="item_project_status"),
            # the gold statement of `next` (queue.md): a project's gold items without reading its other items
            models.Index(fields=["project", "id"], name="item_gold", condition=models.Q(is_gold=True)),
        ]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.external_id}"

    @property
    def text(self) -> str:
        return self.data.get("text", "")


class Assignment(models.Model):
    """The lease that keeps one expert's slot on an item for `TANDEM_ASSIGNMENT_TTL_SECONDS`."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    # the model suggestion served with the item when it was leased: {"model_version", "kind", "value",
    # "confidence"} (None: none); a submit on this lease copies it to the Annotation
    suggestion = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "user"], name="assignment_unique")]
        indexes = [models.Index(fields=["user", "project", "expires_at"], name="assignment_user_live")]

    def __str__(self) -> str:
        return f"item {self.item_id} -> user {self.user_id} until {self.expires_at:%Y-%m-%d %H:%M}"


class Skip(models.Model):
    """An expert skipped this item: the queue does not serve it to them again."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="skips")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "user"], name="skip_unique")]

    def __str__(self) -> str:
        return f"item {self.item_id} skipped by user {self.user_id}"


class FinalLabelSource(models.TextChoices):
    CONSENSUS = "consensus"
    REVIEW = "review"
    GOLD = "gold"
    ADJUDICATION = "adjudication"
    IMPORTED = "imported"  # an existing label brought in with the item (JSONL/CSV `label`, Label Studio)


class FinalLabel(models.Model):
    """What training and export read: one per item."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="final_label")
    value = models.JSONField()
    source = models.CharField(max_length=20, choices=FinalLabelSource.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"item {self.item_id}: {self.value} ({self.source})"
