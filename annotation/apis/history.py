"""An annotator's own history in a project: what they labeled, and what reviewers said of it."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import Capability, project_access
from annotation.apis.pagination import paginated
from annotation.apis.serializers import AnnotationOutput
from annotation.exceptions import InvalidInput
from annotation.models.labeling import Verdict
from annotation.selectors.labeling import annotation_history


class HistoryOutput(AnnotationOutput):
    external_id = serializers.CharField(source="item.external_id")
    text = serializers.SerializerMethodField()

    class Meta(AnnotationOutput.Meta):
        fields = [*AnnotationOutput.Meta.fields, "external_id", "text"]

    def get_text(self, obj) -> str:
        return obj.item.text


class ProjectHistoryApi(APIView):
    @extend_schema(
        description="Your own annotations in the project, newest first, each with the latest reviewer verdict "
        "(`review`: verdict, comment, reviewer) and whether it still counts (`counts` is false once rejected: the "
        "item went to someone else). Every member may read their own; nobody else's.",
        parameters=[
            OpenApiParameter("verdict", str, enum=Verdict.values, description="Only those that received it."),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses=HistoryOutput(many=True),
    )
    def get(self, request: Request, pk: int) -> Response:
        project = project_access(user=request.user, project_id=pk, capability=Capability.VIEW).project
        verdict = request.query_params.get("verdict")
        if verdict is not None and verdict not in Verdict.values:
            raise InvalidInput(
                "Unknown verdict.", [{"field": "verdict", "message": f"One of {', '.join(Verdict.values)}."}]
            )
        rows = annotation_history(project=project, user=request.user, verdict=verdict)
        return paginated(request, rows, lambda page: HistoryOutput(page, many=True).data, self)
