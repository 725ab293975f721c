"""The model loop over REST: pre-label a project, explain an item's suggestion."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import Capability, item_access, project_access
from annotation.apis.serializers import JobCreated
from annotation.exceptions import Conflict, NotFound
from modelsvc.services import explanation_for_item, prelabel_start


class ProjectPrelabelApi(APIView):
    @extend_schema(request=None, responses={202: JobCreated})
    def post(self, request: Request, pk: int) -> Response:
        project = project_access(user=request.user, project_id=pk, capability=Capability.MODEL).project
        job = prelabel_start(project=project, user=request.user)
        return Response({"job": job.pk}, status=status.HTTP_202_ACCEPTED)


class ItemExplanationApi(APIView):
    @extend_schema(
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description='{"tokens": [...], "label", "model_version"}'),
            202: OpenApiResponse(OpenApiTypes.OBJECT, description="computing; ask again shortly"),
            404: OpenApiResponse(description="no such item, or it has no suggestion"),
        }
    )
    def get(self, request: Request, pk: int) -> Response:
        item = item_access(user=request.user, item_id=pk, capability=Capability.VIEW).item
        try:
            code, body = explanation_for_item(item)
        except LookupError as exc:
            raise NotFound(str(exc)) from exc
        response = Response(body, status=code)
        if code == status.HTTP_202_ACCEPTED:
            response["Retry-After"] = "1"
        return response


class ProjectTrainApi(APIView):
    @extend_schema(request=None, responses={202: JobCreated})
    def post(self, request: Request, pk: int) -> Response:
        from modelsvc.registry import train_start

        project = project_access(user=request.user, project_id=pk, capability=Capability.MODEL).project
        job = train_start(project=project, user=request.user, reason="manual")
        return Response({"job": job.pk}, status=status.HTTP_202_ACCEPTED)


def _version_out(v) -> dict:
    metrics = v.metrics or {}
    return {
        "version": v.version,
        "kind": v.kind,
        "status": v.status,
        "base_model": v.base_model,
        "labels": [label["name"] for label in v.labels],
        "sha256": v.sha256,
        "has_artifact": bool(v.artifact_path) or v.kind == "zero_shot",
        "metrics": metrics,
        "created_at": v.created_at.isoformat().replace("+00:00", "Z"),
        "activated_at": v.activated_at.isoformat().replace("+00:00", "Z") if v.activated_at else None,
    }


class ProjectModelVersionsApi(APIView):
    @extend_schema(
        responses=OpenApiResponse(
            OpenApiTypes.OBJECT,
            description='{"results": [version...], "learning_curve": [{"version", "n_train", metric}]}',
        )
    )
    def get(self, request: Request, pk: int) -> Response:
        from modelsvc.models import ModelVersion

        project = project_access(user=request.user, project_id=pk, capability=Capability.VIEW).project
        versions = list(ModelVersion.objects.filter(project=project).order_by("-version"))
        curve = [
            {
                "version": v.version,
                "n_train": v.metrics.get("n_train", 0),
                "accuracy": v.metrics.get("accuracy"),
                "macro_f1": v.metrics.get("macro_f1"),
            }
            for v in sorted(versions, key=lambda v: v.version)
            if v.metrics and "accuracy" in v.metrics
        ]
        return Response({"results": [_version_out(v) for v in versions], "learning_curve": curve})


class ModelVersionActivateApi(APIView):
    @extend_schema(request=None, responses={202: JobCreated})
    def post(self, request: Request, pk: int, version: int) -> Response:
        from modelsvc.models import ModelVersion
        from modelsvc.services import version_activate

        project = project_access(user=request.user, project_id=pk, capability=Capability.MODEL).project
        target = ModelVersion.objects.filter(project=project, version=version).first()
        if target is None:
            raise NotFound("No such model version.")
        if target.kind == "fine_tuned" and not target.artifact_path:
            raise Conflict(
                "This version's artifacts were pruned (TANDEM_MODEL_RETENTION); it cannot be activated.",
                [{"field": "version", "message": "artifacts pruned"}],
            )
        if [label["name"] for label in target.labels] != project.label_names or target.task_type != project.task_type:
            raise Conflict(
                "This version was trained for other labels or another task type than the project has now.",
                [{"field": "version", "message": "labels differ"}],
            )
        job = version_activate(version=target, user=request.user)
        return Response({"job": job.pk, "version": target.version, "status": "active"}, status=status.HTTP_202_ACCEPTED)


class ScheduleInput(serializers.Serializer):
    enabled = serializers.BooleanField(default=True)
    every_minutes = serializers.IntegerField(min_value=1, max_value=60 * 24 * 31, required=False, allow_null=True)
    cron = serializers.CharField(max_length=100, required=False, allow_null=True)

    def validate(self, attrs):
        if attrs.get("enabled", True):
            has_interval = attrs.get("every_minutes") is not None
            has_cron = bool(attrs.get("cron"))
            if has_interval == has_cron:
                raise serializers.ValidationError({"every_minutes": "Give exactly one of every_minutes or cron."})
            if has_cron:
                from celery.schedules import crontab

                parts = attrs["cron"].split()
                if len(parts) != 5:
                    raise serializers.ValidationError(
                        {"cron": "Five fields: minute hour day-of-month month day-of-week."}
                    )
                try:
                    crontab(*parts)
                except ValueError as exc:
                    raise serializers.ValidationError({"cron": str(exc)}) from exc
        return attrs


class ProjectTrainingScheduleApi(APIView):
    @extend_schema(responses=OpenApiResponse(OpenApiTypes.OBJECT, description='{"enabled", "every_minutes", "cron"}'))
    def get(self, request: Request, pk: int) -> Response:
        from modelsvc.registry import schedule_get

        project = project_access(user=request.user, project_id=pk, capability=Capability.VIEW).project
        return Response(schedule_get(project))

    @extend_schema(request=ScheduleInput, responses=OpenApiResponse(OpenApiTypes.OBJECT))
    def put(self, request: Request, pk: int) -> Response:
        from modelsvc.registry import schedule_set

        project = project_access(user=request.user, project_id=pk, capability=Capability.MODEL).project
        data = ScheduleInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(schedule_set(project, **data.validated_data))
