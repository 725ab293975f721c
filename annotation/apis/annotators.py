"""The project's annotators with their gold accuracy and pause (issue 13): who is paused, and un-pausing them."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import Capability, project_access
from annotation.apis.pagination import paginated
from annotation.selectors.items import annotator_rows, member_list
from annotation.services.gold import annotator_unpause


class AnnotatorOutput(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    paused = serializers.BooleanField()
    gold_answers = serializers.IntegerField(help_text="Gold answers since the member's last un-pause.")
    gold_accuracy = serializers.FloatField(
        allow_null=True, help_text="Mean score of those answers (exact match; token-level for spans); null without."
    )


class ProjectAnnotatorsApi(APIView):
    @extend_schema(
        description="Every member of the project with their gold score and pause; reviewers, managers, engineers "
        "and staff.",
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses=AnnotatorOutput(many=True),
    )
    def get(self, request: Request, pk: int) -> Response:
        project = project_access(user=request.user, project_id=pk, capability=Capability.INSPECT).project
        return paginated(
            request, member_list(project=project), lambda page: annotator_rows(project=project, members=page), self
        )


class AnnotatorUnpauseApi(APIView):
    @extend_schema(
        description="Managers: let a paused member label again; their gold answers count from now.",
        request=None,
        responses=AnnotatorOutput,
    )
    def post(self, request: Request, pk: int, user_id: int) -> Response:
        project = project_access(user=request.user, project_id=pk, capability=Capability.MANAGE).project
        member = annotator_unpause(project=project, user_id=int(user_id))
        return Response(annotator_rows(project=project, members=[member])[0])
