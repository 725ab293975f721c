"""Dataset snapshots: create, list, read (docs/datasets.md). Downloads: annotation/apis/snapshot_download.py."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import Capability, project_access
from annotation.apis.pagination import paginated
from annotation.datasets.build import snapshot_create
from annotation.datasets.paths import snapshot_for_user
from annotation.models import Snapshot


class SnapshotFiltersInput(serializers.Serializer):
    """The filters (documentation only: annotation/datasets/filters.py checks them, naming each bad field)."""

    status = serializers.JSONField(required=False, help_text="Item status, one or a list (any of). Default approved.")
    # a field named like drf's Field.source attribute
    source = serializers.JSONField(required=False, help_text="Final-label source, one or a list.")  # type: ignore[assignment]
    min_agreement = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    labels = serializers.JSONField(required=False, help_text="Final label, one or a list (any of).")
    annotators = serializers.JSONField(required=False, help_text="Usernames or user ids, one or a list (any of).")
    created_after = serializers.CharField(required=False, allow_null=True)
    created_before = serializers.CharField(required=False, allow_null=True)
    decided_after = serializers.CharField(required=False, allow_null=True)
    decided_before = serializers.CharField(required=False, allow_null=True)
    meta = serializers.DictField(required=False, help_text="{field: value}: metadata equality (all of).")
    gold = serializers.ChoiceField(choices=["include", "exclude", "only"], required=False)


class SnapshotSplitInput(serializers.Serializer):
    train = serializers.FloatField(required=False, default=0.8)
    validation = serializers.FloatField(required=False, default=0.1)
    test = serializers.FloatField(required=False, default=0.1)
    seed = serializers.IntegerField(required=False, default=0)
    stratify = serializers.BooleanField(required=False, default=True)
    group_by = serializers.CharField(required=False, allow_null=True)


class SnapshotInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    filters = SnapshotFiltersInput(required=False)
    split = SnapshotSplitInput(required=False)
    pseudonymize = serializers.BooleanField(required=False, default=False)


class SnapshotOutput(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id")
    job = serializers.IntegerField(source="job_id", allow_null=True)

    class Meta:
        model = Snapshot
        fields = [
            "id",
            "project",
            "name",
            "status",
            "job",
            "rows",
            "splits",
            "label_distribution",
            "agreement",
            "model_version",
            "sha256",
            "formats",
            "filters",
            "split",
            "pseudonymize",
            "error",
            "created_at",
            "finished_at",
        ]


SnapshotCreated = inline_serializer(
    "SnapshotCreated", fields={"job": serializers.IntegerField(), "snapshot": serializers.IntegerField()}
)


def _out(rows: Any) -> Any:
    return SnapshotOutput(rows, many=True).data


class ProjectSnapshotsApi(APIView):
    @extend_schema(responses=SnapshotOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        project = project_access(user=request.user, project_id=pk, capability=Capability.EXPORT).project
        snapshots = Snapshot.objects.filter(project=project).order_by("-id")
        return paginated(request, snapshots, _out, self)

    @extend_schema(request=SnapshotInput, responses={202: SnapshotCreated})
    def post(self, request: Request, pk: int) -> Response:
        project = project_access(user=request.user, project_id=pk, capability=Capability.EXPORT).project
        snapshot, job = snapshot_create(project=project, user=request.user, body=request.data)
        return Response({"job": job.pk, "snapshot": snapshot.pk}, status=status.HTTP_202_ACCEPTED)


class SnapshotDetailApi(APIView):
    @extend_schema(responses=SnapshotOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(SnapshotOutput(snapshot_for_user(user=request.user, snapshot_id=pk)).data)
