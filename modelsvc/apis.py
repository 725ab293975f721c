"""The model loop over REST: pre-label, explain a suggestion, train, list and activate versions, and the
training schedule. Each view checks access (annotation.access), calls one service or selector, and
serializes."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import Capability, item_access, project_access
from annotation.apis.serializers import JobCreated, StrictInput, iso
from annotation.exceptions import Forbidden
from modelsvc.models import ModelVersion
from modelsvc.selectors import learning_curve, lease_held, version_get, version_list
from modelsvc.services.explanations import explanation_for_item
from modelsvc.services.prelabel import prelabel_rescore, prelabel_start
from modelsvc.services.schedules import schedule_get, schedule_set
from modelsvc.services.training import train_start


class ProjectPrelabelApi(APIView):
    @extend_schema(request=None, responses={202: JobCreated})
    def post(self, request: Request, pk: int) -> Response:
        access = project_access(user=request.user, project_id=pk, capability=Capability.MODEL)
        job = prelabel_start(project=access.project, user=request.user)
        return Response({"job": job.pk}, status=status.HTTP_202_ACCEPTED)


class ItemExplanationApi(APIView):
    @extend_schema(
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description='{"tokens": [...], "label", "model_version"}'),
            202: OpenApiResponse(OpenApiTypes.OBJECT, description="computing; ask again shortly"),
            403: OpenApiResponse(description="an annotator asking about an item they do not hold a live lease on"),
            404: OpenApiResponse(description="no such item, or it has no suggestion"),
        }
    )
    def get(self, request: Request, pk: int) -> Response:
        found = item_access(user=request.user, item_id=pk, capability=Capability.VIEW)
        if not found.access.can(Capability.INSPECT) and not lease_held(item=found.item, user=request.user):
            # blind labeling: an annotator sees the model's output only on the item served to them (their live
            # lease). 403, not 404: a member may list the project's items, so the item's existence is no secret
            raise Forbidden("The explanation is shown with the item you are labeling, while you hold it.")
        ready, body = explanation_for_item(item=found.item)
        if ready:
            return Response(body)
        response = Response(body, status=status.HTTP_202_ACCEPTED)
        response["Retry-After"] = "1"
        return response


class ProjectTrainApi(APIView):
    @extend_schema(request=None, responses={202: JobCreated})
    def post(self, request: Request, pk: int) -> Response:
        access = project_access(user=request.user, project_id=pk, capability=Capability.MODEL)
        job = train_start(project=access.project, user=request.user, reason="manual")
        return Response({"job": job.pk}, status=status.HTTP_202_ACCEPTED)


def _version_out(v: ModelVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "name": v.name,  # an imported version's Label Studio model_version; "" for Tandem's own
        "kind": v.kind,
        "status": v.status,
        "base_model": v.base_model,
        "labels": v.label_names,
        "sha256": v.sha256,
        "has_artifact": bool(v.artifact_path) or v.kind == "zero_shot",
        "metrics": v.metrics or {},
        "created_at": iso(v.created_at),
        "activated_at": iso(v.activated_at),
    }


class ProjectModelVersionsApi(APIView):
    @extend_schema(
        responses=OpenApiResponse(
            OpenApiTypes.OBJECT,
            description='{"results": [version...], "learning_curve": [{"version", "n_train", metric}]}',
        )
    )
    def get(self, request: Request, pk: int) -> Response:
        # model versions and their metrics are not the annotators' (blind labeling): 403 for them
        access = project_access(user=request.user, project_id=pk, capability=Capability.INSPECT)
        versions = version_list(project=access.project)
        return Response({"results": [_version_out(v) for v in versions], "learning_curve": learning_curve(versions)})


class ModelVersionActivateApi(APIView):
    @extend_schema(request=None, responses={202: JobCreated})
    def post(self, request: Request, pk: int, version: int) -> Response:
        access = project_access(user=request.user, project_id=pk, capability=Capability.MODEL)
        target = version_get(project=access.project, number=version)
        job = prelabel_rescore(version=target, user=request.user)
        return Response({"job": job.pk, "version": target.version, "status": "active"}, status=status.HTTP_202_ACCEPTED)


class ScheduleInput(StrictInput):
    enabled = serializers.BooleanField(default=True)
    every_minutes = serializers.IntegerField(min_value=1, max_value=60 * 24 * 31, required=False, allow_null=True)
    cron = serializers.CharField(max_length=100, required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)  # unknown fields
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
        access = project_access(user=request.user, project_id=pk, capability=Capability.VIEW)
        return Response(schedule_get(access.project))

    @extend_schema(request=ScheduleInput, responses=OpenApiResponse(OpenApiTypes.OBJECT))
    def put(self, request: Request, pk: int) -> Response:
        access = project_access(user=request.user, project_id=pk, capability=Capability.MODEL)
        data = ScheduleInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(schedule_set(access.project, **data.validated_data))
