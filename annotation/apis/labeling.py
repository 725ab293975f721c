"""The expert's loop: items, next, submit, edit, skip."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.apis.pagination import PageNumberPagination
from annotation.apis.serializers import (
    AnnotationInput,
    AnnotationOutput,
    ItemOutput,
    annotation_out,
    next_out,
)
from annotation.exceptions import Forbidden, InvalidInput, NotFound
from annotation.models import Annotation
from annotation.models.item import ItemStatus
from annotation.permissions import ANNOTATE, REVIEW, VIEW, project_for_user
from annotation.selectors.items import item_filter_annotator, item_filter_label, item_for_user, item_list
from annotation.services.queue import item_next_for_annotator
from annotation.services.submitting import annotation_submit_checked, annotation_update, item_skip
from annotation.services.values import value_validate

MAX_KEY = 200


class ItemFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=ItemStatus.choices)
    label = django_filters.CharFilter(method="filter_label")
    annotator = django_filters.CharFilter(method="filter_annotator")
    uncertainty_min = django_filters.NumberFilter(field_name="uncertainty", lookup_expr="gte")
    uncertainty_max = django_filters.NumberFilter(field_name="uncertainty", lookup_expr="lte")
    is_gold = django_filters.BooleanFilter()
    external_id = django_filters.CharFilter()

    def filter_label(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return item_filter_label(qs, project=self.request.project, label=value)

    def filter_annotator(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return item_filter_annotator(qs, value)


class ProjectItemsApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, many=True),
            OpenApiParameter("label", str),
            OpenApiParameter("annotator", str),
            OpenApiParameter("uncertainty_min", float),
            OpenApiParameter("uncertainty_max", float),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses=ItemOutput(many=True),
    )
    def get(self, request: Request, pk: int) -> Response:
        project = project_for_user(user=request.user, project_id=pk, capability=VIEW)
        request.project = project
        filterset = ItemFilter(request.query_params, queryset=item_list(project=project), request=request)
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(filterset.qs, request, view=self)
        return paginator.get_paginated_response(ItemOutput(page, many=True).data)


class ItemDetailApi(APIView):
    @extend_schema(responses=ItemOutput)
    def get(self, request: Request, pk: int) -> Response:
        item = item_for_user(user=request.user, item_id=pk, capability=VIEW)
        return Response(ItemOutput(item).data)


class ProjectNextApi(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT, 204: None})
    def get(self, request: Request, pk: int) -> Response:
        project = project_for_user(user=request.user, project_id=pk, capability=ANNOTATE)
        nxt = item_next_for_annotator(project=project, user=request.user)
        if nxt is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(next_out(nxt.item, nxt.expires_at))


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise InvalidInput(
            "Bad Idempotency-Key header.",
            [{"field": "Idempotency-Key", "message": f"1 to {MAX_KEY} printable characters."}],
        )
    return key


class ItemAnnotationsApi(APIView):
    @extend_schema(responses=AnnotationOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        """Annotations of an item: all of them for reviewers and managers, only your own otherwise."""
        item = item_for_user(user=request.user, item_id=pk, capability=VIEW)
        qs = Annotation.objects.filter(item=item).select_related("annotator").order_by("id")
        if item.project.user_role not in REVIEW and item.project.user_role != "staff":
            qs = qs.filter(annotator=request.user)
        return Response(AnnotationOutput(qs, many=True).data)

    @extend_schema(
        request=AnnotationInput,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        responses={201: AnnotationOutput, 200: AnnotationOutput},
    )
    def post(self, request: Request, pk: int) -> Response:
        key = _idempotency_key(request)
        data = AnnotationInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        result = annotation_submit_checked(
            item_id=int(pk),
            user=request.user,
            value=v["value"],
            lead_time_ms=v.get("lead_time_ms"),
            accepted_suggestion=v.get("accepted_suggestion"),
            idempotency_key=key,
        )
        return Response(
            annotation_out(result.annotation, request.user.get_username()),
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class AnnotationDetailApi(APIView):
    def _get(self, request: Request, pk: int) -> Annotation:
        annotation = Annotation.objects.select_related("annotator").filter(pk=pk).first()
        if annotation is None:
            raise NotFound("No such annotation.")
        item = item_for_user(user=request.user, item_id=annotation.item_id, capability=VIEW)
        role = item.project.user_role
        if annotation.annotator_id != request.user.pk and role != "staff" and role not in REVIEW:
            raise NotFound("No such annotation.")
        annotation.item = item
        return annotation

    @extend_schema(responses=AnnotationOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(AnnotationOutput(self._get(request, pk)).data)

    @extend_schema(request=AnnotationInput, responses=AnnotationOutput)
    def patch(self, request: Request, pk: int) -> Response:
        annotation = self._get(request, pk)
        if annotation.annotator_id != request.user.pk:
            raise Forbidden("Only the annotator can edit an annotation; reviewers use the review endpoints.")
        data = AnnotationInput(data=request.data)
        data.is_valid(raise_exception=True)
        project = annotation.item.project
        value = value_validate(
            task_type=project.task_type,
            label_names=project.label_names,
            value=data.validated_data["value"],
            text=annotation.item.text,
        )
        updated = annotation_update(
            annotation_id=annotation.pk,
            project=project,
            user=request.user,
            value=value,
            lead_time_ms=data.validated_data.get("lead_time_ms"),
        )
        return Response(annotation_out(updated, request.user.get_username()))


class ItemSkipApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, pk: int) -> Response:
        item = item_for_user(user=request.user, item_id=pk, capability=ANNOTATE)
        item_skip(item_id=item.pk, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
