"""`GET /api/projects/{id}/metrics`: the quality metrics of a project (issue 13's contract), for the members who may
inspect (reviewers, managers, engineers, staff). The numbers come from annotation/quality/metrics.py's cache."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from annotation.access import Capability, project_access
from annotation.apis.serializers import StrictInput
from annotation.quality.metrics import project_metrics_json
from annotation.quality.window import Window


class MetricsQuery(StrictInput):
    since = serializers.DateField(required=False, help_text="First day included (ISO date, UTC).")
    until = serializers.DateField(required=False, help_text="Last day included (ISO date, UTC).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"since": "since is after until."})
        return attrs


# The response's shape, for the OpenAPI schema only: the payload is served as cached, not re-serialized.
def _number() -> serializers.FloatField:
    return serializers.FloatField(allow_null=True)


class _Pair(serializers.Serializer):
    a = serializers.CharField()
    b = serializers.CharField()
    kappa = _number()
    n = serializers.IntegerField()


class _LabelAlpha(serializers.Serializer):
    krippendorff_alpha = _number()


class _AgreementDay(serializers.Serializer):
    day = serializers.DateField()
    krippendorff_alpha = _number()
    n_items = serializers.IntegerField()


class _Agreement(serializers.Serializer):
    krippendorff_alpha = _number()
    fleiss_kappa = _number()
    pairwise_cohen_kappa = _Pair(many=True)
    per_label = serializers.DictField(child=_LabelAlpha(), help_text="label -> its one-vs-rest alpha")
    n_items = serializers.IntegerField()
    over_time = _AgreementDay(many=True)


class _Annotator(serializers.Serializer):
    username = serializers.CharField()
    annotations = serializers.IntegerField()
    per_hour = _number()
    median_lead_time_ms = _number()
    gold_answers = serializers.IntegerField()
    gold_accuracy = _number()
    paused = serializers.BooleanField()
    agreement_with_final = _number()
    suggestion_accepted_rate = _number()
    wrong_suggestion_accepted_rate = _number()


class _Throughput(serializers.Serializer):
    day = serializers.DateField()
    annotations = serializers.IntegerField()
    reviews = serializers.IntegerField()


class _Bin(serializers.Serializer):
    bin = serializers.IntegerField()
    confidence = _number()
    accuracy = _number()
    n = serializers.IntegerField()


class _Version(serializers.Serializer):
    model_version = serializers.IntegerField()
    status = serializers.CharField()
    accuracy = _number()
    macro_f1 = _number()
    ece = _number()
    per_label_f1 = serializers.DictField(child=_number(), allow_null=True)
    confusion = serializers.JSONField(allow_null=True, help_text="rows: true label, columns: predicted")
    reliability = _Bin(many=True)


class _Rate(serializers.Serializer):
    n = serializers.IntegerField()
    accuracy = _number()
    ci = serializers.ListField(child=_number(), help_text="[lo, hi], 95 % Wilson")


class _Live(serializers.Serializer):
    model_version = serializers.IntegerField(allow_null=True)
    gold = _Rate(help_text="the served suggestion against the gold value on gold items")
    final = _Rate(help_text="against the final label over the last decided items (inflated by automation bias)")


class _CurvePoint(serializers.Serializer):
    model_version = serializers.IntegerField()
    n_train = serializers.IntegerField(allow_null=True)
    accuracy = _number()


class _Slice(serializers.Serializer):
    value = serializers.CharField(allow_null=True)
    n = serializers.IntegerField()
    agreement = _number()
    agreement_ci = serializers.ListField(child=_number())
    gold_accuracy = _number()
    gold_ci = serializers.ListField(child=_number())
    model_accuracy = _number()
    model_ci = serializers.ListField(child=_number())
    flagged = serializers.ListField(child=serializers.CharField())


class _Field(serializers.Serializer):
    truncated = serializers.BooleanField()
    rows = _Slice(many=True)


class _KappaPoint(serializers.Serializer):
    model_version = serializers.IntegerField()
    kappa = _number()


class _Stopping(serializers.Serializer):
    kappa_history = _KappaPoint(many=True)
    stable = serializers.BooleanField()
    sample_size = serializers.IntegerField(allow_null=True)
    sentence = serializers.CharField()


class MetricsOutput(serializers.Serializer):
    computed_at = serializers.DateTimeField(help_text="when these figures were computed (UTC)")
    agreement = _Agreement()
    annotators = _Annotator(many=True)
    throughput = _Throughput(many=True)
    model = _Version(many=True)
    live = _Live()
    learning_curve = _CurvePoint(many=True)
    slices = serializers.DictField(child=_Field(), help_text="metadata field (or text_length) -> its slices")
    stopping = _Stopping()


class ProjectMetricsApi(APIView):
    @extend_schema(
        parameters=[MetricsQuery],
        responses=MetricsOutput,
        description="Quality metrics; numbers are null where undefined. `since`/`until`: whole UTC days, both "
        "included. The whole project is refreshed by a worker after changes; `computed_at` says when.",
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        query = MetricsQuery(data=request.query_params)  # 400 before access: it says nothing about the project
        query.is_valid(raise_exception=True)
        access = project_access(user=request.user, project_id=pk, capability=Capability.INSPECT)
        window = Window(since=query.validated_data.get("since"), until=query.validated_data.get("until"))
        # the cached JSON text as it is (project_metrics_json says why)
        return HttpResponse(project_metrics_json(access.project, window), content_type="application/json")
