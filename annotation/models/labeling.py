from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models.item import Item


class Annotation(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotations")
    value = models.JSONField()
    lead_time_ms = models.PositiveIntegerField(null=True, blank=True)
    # decided by the server: the value equals the suggestion served with the item (`suggestion`)
    accepted_suggestion = models.BooleanField(null=True, blank=True)
    # the suggestion served with the item (from the lease): {"model_version", "kind", "value", "confidence"}
    suggestion = models.JSONField(null=True, blank=True)
    # False once a reviewer rejected it: kept (with its Review) but out of consensus and the slot count
    counts = models.BooleanField(default=True, db_default=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    # earlier values, oldest first: [{"value", "lead_time_ms", "replaced_at"}]
    history = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="annotation_one_per_annotator"),
            models.UniqueConstraint(
                fields=["annotator", "idempotency_key"],
                name="annotation_idempotency_key",
                condition=models.Q(idempotency_key__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"annotation {self.pk} of item {self.item_id} by user {self.annotator_id}"


class Verdict(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"
    CORRECT = "correct"


class Review(models.Model):
    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews")
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    corrected_value = models.JSONField(null=True, blank=True)
    comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(verdict="correct") | models.Q(corrected_value__isnull=False),
                name="review_correct_has_value",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.verdict} of annotation {self.annotation_id} by user {self.reviewer_id}"


class ReviewLease(models.Model):
    """A reviewer's hold on an item awaiting review, for `TANDEM_ASSIGNMENT_TTL_SECONDS`: two reviewers are
    never handed the same item at once, and a verdict on an item another reviewer holds answers 409."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="review_lease")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["reviewer", "project", "expires_at"], name="reviewlease_reviewer")]

    def __str__(self) -> str:
        return f"review of item {self.item_id} held by user {self.reviewer_id} until {self.expires_at:%H:%M}"
