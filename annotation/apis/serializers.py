"""Input validation and output shapes. Hot paths (next, submit) serialize with plain functions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotation.models import Annotation, Item, Job, Membership, Project, Review
from annotation.models.project import ReviewPolicy, Role, Sampling, TaskType, UncertaintyMeasure
from annotation.services.projects import PROJECT_FIELDS


def iso(dt) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt else None


class StrictInput(serializers.Serializer):
    """An input serializer that refuses fields it does not know (a typo must not be silently ignored).
    `tolerated`: names accepted and ignored, e.g. the read-only fields of the matching output shape, so a
    client may send back what it read."""

    tolerated: frozenset[str] = frozenset()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        data = self.initial_data
        unknown = set(data) - set(self.fields) - self.tolerated if isinstance(data, dict) else set()
        if unknown:
            raise serializers.ValidationError({k: "Unknown field." for k in sorted(unknown)})
        return attrs


class UserInput(StrictInput):
    username = serializers.RegexField(r"^[\w.@+-]{1,150}$", max_length=150)
    password = serializers.CharField(min_length=8, max_length=128, write_only=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    is_staff = serializers.BooleanField(required=False, default=False)

    def validate_username(self, value: str) -> str:
        if get_user_model().objects.filter(username=value).exists():
            raise serializers.ValidationError("A user with that username already exists.")
        return value

    def validate_password(self, value: str) -> str:
        validate_password(value)
        return value


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField()
    is_staff = serializers.BooleanField()


class LabelSerializer(serializers.Serializer):
    name = serializers.CharField()
    hotkey = serializers.CharField(required=False)
    color = serializers.CharField(required=False)
    description = serializers.CharField(required=False)


class ProjectInput(StrictInput):
    tolerated = frozenset({"id", "created_at", "updated_at", "item_count", "done_count", "role", "created_by"})

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10000)
    task_type = serializers.ChoiceField(choices=TaskType.choices, required=False)
    # validated in depth by services.projects.labels_normalize (strings or {name, hotkey, color})
    labels = serializers.JSONField()
    guidelines = serializers.CharField(required=False, allow_blank=True, max_length=100_000)
    annotations_per_item = serializers.IntegerField(min_value=1, max_value=50, required=False)
    review_policy = serializers.ChoiceField(choices=ReviewPolicy.choices, required=False)
    review_sample_rate = serializers.FloatField(min_value=0, max_value=1, required=False)
    gold_rate = serializers.FloatField(min_value=0, max_value=1, required=False)
    sampling = serializers.ChoiceField(choices=Sampling.choices, required=False)
    uncertainty_measure = serializers.ChoiceField(choices=UncertaintyMeasure.choices, required=False)
    exploration_rate = serializers.FloatField(min_value=0, max_value=1, required=False)
    min_new_labels = serializers.IntegerField(min_value=1, required=False)
    gold_pause_below = serializers.FloatField(min_value=0, max_value=1, required=False, allow_null=True)
    gold_pause_min = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)
    max_rejections = serializers.IntegerField(min_value=1, max_value=100, required=False)
    reviewers_may_review_own = serializers.BooleanField(required=False)
    preselect_min_confidence = serializers.FloatField(min_value=0, max_value=1, required=False)
    # checked in depth by services.projects.license_normalize (one line: it goes into the dataset cards' YAML)
    license = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=200, trim_whitespace=False
    )


class ProjectOutput(serializers.ModelSerializer):
    labels = LabelSerializer(many=True)
    item_count = serializers.SerializerMethodField()
    done_count = serializers.SerializerMethodField()
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id",
            *PROJECT_FIELDS,
            "item_count",
            "done_count",
            "role",
            "created_at",
            "updated_at",
        ]

    def get_item_count(self, obj: Project) -> int | None:
        return getattr(obj, "item_count", None)

    def get_done_count(self, obj: Project) -> int | None:
        return getattr(obj, "done_count", None)

    def get_role(self, obj: Project) -> str | None:
        return getattr(obj, "my_role", None)


class MemberInput(StrictInput):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.ANNOTATOR)


class MemberRoleInput(StrictInput):
    role = serializers.ChoiceField(choices=Role.choices)


class MemberOutput(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    user_id = serializers.IntegerField()

    class Meta:
        model = Membership
        fields = ["user_id", "username", "role", "created_at"]


class AnnotationInput(serializers.Serializer):
    LEAD_TIME_MS_MAX = 7 * 24 * 3600 * 1000  # a week

    value = serializers.JSONField()
    lead_time_ms = serializers.IntegerField(min_value=0, max_value=LEAD_TIME_MS_MAX, required=False, allow_null=True)
    accepted_suggestion = serializers.BooleanField(required=False, allow_null=True)


def review_brief(review: Review | None) -> dict[str, Any] | None:
    """A reviewer's verdict as the annotation's annotator reads it (annotation/apis/reviewing.py)."""
    if review is None:
        return None
    return {
        "verdict": review.verdict,
        "comment": review.comment,
        "reviewer": review.reviewer.get_username(),
        "created_at": iso(review.created_at),
    }


class ReviewBriefOutput(serializers.Serializer):
    verdict = serializers.CharField()
    comment = serializers.CharField()
    reviewer = serializers.CharField()
    created_at = serializers.DateTimeField()


class AnnotationOutput(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username")
    item = serializers.IntegerField(source="item_id")
    # the latest reviewer verdict on it (a rejected annotation has counts = false), null before any review
    review = serializers.SerializerMethodField()

    class Meta:
        model = Annotation
        fields = [
            "id",
            "item",
            "annotator",
            "value",
            "lead_time_ms",
            "accepted_suggestion",
            "counts",
            "review",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(ReviewBriefOutput(allow_null=True))
    def get_review(self, obj: Annotation) -> dict[str, Any] | None:
        """The latest verdict on it; for a rejected one (counts false) the latest reject, which says why it no longer
        counts (a later correction of the item may have been sent through it)."""
        if "reviews" in getattr(obj, "_prefetched_objects_cache", {}):  # a list prefetched reviews__reviewer
            shown = [r for r in obj.reviews.all() if obj.counts or r.verdict == "reject"]
            return review_brief(max(shown, key=lambda r: r.pk) if shown else None)
        reviews = obj.reviews.select_related("reviewer").order_by("-id")
        return review_brief((reviews if obj.counts else reviews.filter(verdict="reject")).first())  # one query


def annotation_out(annotation: Annotation, username: str, review: Review | None = None) -> dict[str, Any]:
    """`review`: the annotation's latest Review, where the caller has it (a new annotation has none)."""
    return {
        "id": annotation.pk,
        "item": annotation.item_id,
        "annotator": username,
        "value": annotation.value,
        "lead_time_ms": annotation.lead_time_ms,
        "accepted_suggestion": annotation.accepted_suggestion,
        "counts": annotation.counts,
        "review": review_brief(review),
        "created_at": iso(annotation.created_at),
        "updated_at": iso(annotation.updated_at),
    }


class ItemOutput(serializers.ModelSerializer):
    final = serializers.SerializerMethodField()
    gold_value = serializers.SerializerMethodField()
    prediction = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = [
            "id",
            "external_id",
            "data",
            "status",
            "priority",
            "uncertainty",
            "is_gold",
            "annotation_count",
            "final",
            "gold_value",
            "prediction",
            "created_at",
        ]

    def get_final(self, obj: Item) -> Any:
        final = getattr(obj, "final_label", None)
        return final.value if final is not None else None

    def get_gold_value(self, obj: Item) -> Any:
        """The gold value (the FinalLabel of a gold item), null for other items."""
        final = getattr(obj, "final_label", None)
        return final.value if obj.is_gold and final is not None and final.source == "gold" else None

    def get_prediction(self, obj: Item) -> dict[str, Any] | None:
        return obj.prediction


class BlindItemOutput(serializers.ModelSerializer):
    """An item as a member without Capability.INSPECT (an annotator) sees it: its data only. No prediction,
    final, gold flag or value, and no status, counts or uncertainty, which would tell them others' work, the
    model's output and the gold items (issue 13, blind labeling)."""

    class Meta:
        model = Item
        fields = ["id", "external_id", "data", "created_at"]


def next_out(item: Item, expires_at, *, preselect: bool = False) -> dict[str, Any]:
    """The `next` answer. A gold item looks like any other: its status (approved) is shown as `open`.
    `prediction.preselect`: whether the page may pre-select the suggestion (services.queue.suggestion_preselect)."""
    prediction = item.prediction
    if prediction is not None:
        prediction = {**prediction, "preselect": preselect}
    return {
        "id": item.pk,
        "external_id": item.external_id,
        "data": item.data,
        "status": "open" if item.is_gold else item.status,
        "prediction": prediction,
        "assignment": {"expires_at": iso(expires_at)},
    }


class JobOutput(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id")

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "project",
            "status",
            "progress",
            "total",
            "result",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]


class JobCreated(serializers.Serializer):
    job = serializers.IntegerField()


# ---------------------------------------------------------------- review (annotation/apis/reviewing.py)


class ReviewInput(StrictInput):
    verdict = serializers.ChoiceField(choices=["approve", "reject", "correct"])
    value = serializers.JSONField(required=False, allow_null=True)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000, trim_whitespace=False)


class ReviewOutput(serializers.Serializer):
    id = serializers.IntegerField()
    annotation = serializers.IntegerField()
    item = serializers.IntegerField()
    reviewer = serializers.CharField()
    verdict = serializers.CharField()
    corrected_value = serializers.JSONField(allow_null=True)
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()
    item_status = serializers.CharField()
    final = serializers.JSONField(allow_null=True)
    adjudication = serializers.BooleanField(help_text="The item now awaits a correction (after a reject).")
    rejections = serializers.IntegerField(help_text="Reviewer rejections of the item so far.")


class ReviewAnnotationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    annotator = serializers.CharField()
    value = serializers.JSONField()
    lead_time_ms = serializers.IntegerField(allow_null=True)
    accepted_suggestion = serializers.BooleanField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    agreeing = serializers.IntegerField(
        help_text="Counting annotations of the item holding this value, this one included (0 for a rejected one)."
    )
    counts = serializers.BooleanField(help_text="False once a reviewer rejected it: shown, but out of the decision.")
    review = ReviewBriefOutput(allow_null=True, help_text="The latest verdict on this annotation.")


class ReviewNextOutput(serializers.Serializer):
    item = ItemOutput()
    annotations = ReviewAnnotationOutput(many=True)
    disagreement = serializers.BooleanField()
    waiting = serializers.IntegerField(help_text="Items of the project awaiting review, this one included.")
    expires_at = serializers.DateTimeField(help_text="Your lease on this item: no other reviewer is handed it until.")
    adjudication = serializers.BooleanField(
        help_text="Rejected max_rejections times, or nobody is left to label it: only a correction decides it."
    )
    rejections = serializers.IntegerField()
