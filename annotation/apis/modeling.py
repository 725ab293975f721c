"""The model loop over REST: pre-label a project, explain an item's suggestion."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.apis.serializers import JobCreated
from annotation.exceptions import NotFound
from annotation.permissions import MODEL, VIEW, project_for_user
from annotation.selectors.items import item_for_user
from modelsvc.services import explanation_for_item, prelabel_start


class ProjectPrelabelApi(APIView):
    @extend_schema(request=None, responses={202: JobCreated})
    def post(self, request: Request, pk: int) -> Response:
        project = project_for_user(user=request.user, project_id=pk, capability=MODEL)
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
        item = item_for_user(user=request.user, item_id=pk, capability=VIEW)
        try:
            code, body = explanation_for_item(item)
        except LookupError as exc:
            raise NotFound(str(exc)) from exc
        response = Response(body, status=code)
        if code == status.HTTP_202_ACCEPTED:
            response["Retry-After"] = "1"
        return response
