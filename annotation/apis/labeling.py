"""The expert's loop: items, next, submit, edit, skip."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import MAX_BIGINT
from annotation.apis.pagination import PageNumberPagination
from annotation.apis.serializers import (
    AnnotationInput,
    AnnotationOutput,
    ItemOutput,
    annotation_out,
    next_out,
)
from annotation.auth import token_key, token_user_and_project
from annotation.exceptions import Forbidden, InvalidInput, NotFound
from annotation.models import Annotation
from annotation.models.item import ItemStatus
from annotation.permissions import ANNOTATE, REVIEW, VIEW, project_for_user, require_capability
from annotation.selectors.items import item_filter_annotator, item_filter_label, item_for_user, item_list
from annotation.services.queue import MAX_EXCLUDE, item_next_for_annotator, item_next_for_token
from annotation.services.submitting import TokenRefused, annotation_submit_checked, annotation_update, item_skip
from annotation.services.values import value_validate
from annotation.sql import fast_path

MAX_KEY = 200


class JsonFirstNegotiation(DefaultContentNegotiation):
    """Content negotiation for the labeling loop's hot views, which only render JSON: a request that
    accepts JSON or anything (no Accept header, `*/*`, `application/json`) gets the JSON renderer without
    parsing the header; any other Accept goes through DRF's negotiation (and its 406)."""

    _TAKES_JSON = frozenset({"", "*/*", "application/json"})

    @classmethod
    def takes_json(cls, request: Request) -> bool:
        return request.META.get("HTTP_ACCEPT", "").strip() in cls._TAKES_JSON

    def select_renderer(self, request, renderers, format_suffix=None):
        if len(renderers) == 1 and self.takes_json(request):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)


_MAX_LEAD_MS = AnnotationInput._declared_fields["lead_time_ms"].max_value


def _annotation_input(data: object) -> dict:
    """The submit body: the plain JSON case is taken as is, anything else goes through AnnotationInput
    (same result, DRF's serializer costs about 0.1 ms per call)."""
    if type(data) is dict and data.get("value") is not None:
        lead, accepted = data.get("lead_time_ms"), data.get("accepted_suggestion")
        if (lead is None or (type(lead) is int and 0 <= lead <= _MAX_LEAD_MS)) and (
            accepted is None or type(accepted) is bool
        ):
            return {"value": data["value"], "lead_time_ms": lead, "accepted_suggestion": accepted}
    checked = AnnotationInput(data=data)
    checked.is_valid(raise_exception=True)
    return checked.validated_data


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


def _exclude_ids(request: Request) -> list[int]:
    """`?exclude=<id>[,<id>...]` (the parameter may also repeat): at most MAX_EXCLUDE item ids."""
    parts = [p.strip() for raw in request.query_params.getlist("exclude") for p in raw.split(",")]
    parts = [p for p in parts if p]
    if len(parts) > MAX_EXCLUDE:
        raise InvalidInput(
            "Too many excluded items.",
            [{"field": "exclude", "message": f"At most {MAX_EXCLUDE} item ids, got {len(parts)}."}],
        )
    bad = next((p for p in parts if not (p.isascii() and p.isdigit() and 0 < int(p) <= MAX_BIGINT)), None)
    if bad is not None:
        raise InvalidInput(
            "Bad exclude parameter.",
            [{"field": "exclude", "message": f"{bad[:40]!r} is not an item id (comma-separated positive integers)."}],
        )
    return [int(p) for p in parts]


class ProjectNextApi(APIView):
    content_negotiation_class = JsonFirstNegotiation

    def initial(self, request: Request, *args, **kwargs) -> None:
        # With `Authorization: Token` on PostgreSQL, the token lookup, the access check and (in the common
        # case) the lease are one statement; then DRF finds request.user set and does not query again. Only
        # for a request that DRF's negotiation will not refuse (a JSON Accept, no parameter but `exclude`),
        # since the lease is taken before it runs.
        self.folded = self.access = None
        key = token_key(request) if fast_path() else None
        plain = JsonFirstNegotiation.takes_json(request) and set(request.query_params) <= {"exclude"}
        if key is not None and not plain:
            self.access = token_user_and_project(request, kwargs["pk"])
        elif key is not None:
            try:
                exclude = _exclude_ids(request)
            except InvalidInput:  # answered in get(), after the access check, as on the general path
                self.access = token_user_and_project(request, kwargs["pk"])
            else:
                self.folded = item_next_for_token(token=key, project_id=kwargs["pk"], exclude=exclude)
                if self.folded is not None:
                    request.user, request.auth = self.folded.user, key
                    self.access = self.folded.access
        super().initial(request, *args, **kwargs)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "exclude",
                str,
                description=f"Comma-separated item ids (at most {MAX_EXCLUDE}) not to return: the items the "
                "client already holds, so it can prefetch the next one while the expert works on the current one.",
            )
        ],
        responses={200: OpenApiTypes.OBJECT, 204: None},
    )
    def get(self, request: Request, pk: int) -> Response:
        if self.access is not None:
            require_capability(self.access.role, ANNOTATE)
            project = self.access.project
        elif int(pk) > MAX_BIGINT:  # beyond bigint: no such project (and no query that would fail on it)
            raise NotFound("No such project.")
        else:
            project = project_for_user(user=request.user, project_id=pk, capability=ANNOTATE)
        if self.folded is not None and self.folded.found is not None:
            nxt = self.folded.found  # leased by the statement that checked access (initial)
        else:
            tried = self.folded is not None and self.folded.tried
            nxt = item_next_for_annotator(
                project=project, user=request.user, exclude=_exclude_ids(request), skip_locked_tried=tried
            )
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
    content_negotiation_class = JsonFirstNegotiation
    # POST with `Authorization: Token <key>` on PostgreSQL: the submit's lock statement looks the token up
    # (one round trip less); DRF's authentication and permission check run only when that does not apply,
    # when the token is refused, or before answering a bad request (so a bad token is still a 401 first).
    token: str | None = None

    def initial(self, request: Request, *args, **kwargs) -> None:
        self.token = token_key(request) if request.method == "POST" and fast_path() else None
        super().initial(request, *args, **kwargs)

    def perform_authentication(self, request: Request) -> None:
        if self.token is None:
            super().perform_authentication(request)

    def check_permissions(self, request: Request) -> None:
        if self.token is None:
            super().check_permissions(request)

    def _authenticate_now(self, request: Request) -> None:
        """DRF's authentication and permission check, as for any other request (raises 401 / 403)."""
        self.token = None
        super().perform_authentication(request)
        super().check_permissions(request)

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
        try:
            key = _idempotency_key(request)
            v = _annotation_input(request.data)
        except Exception:
            if self.token is not None:
                self._authenticate_now(request)  # a bad token answers 401 before a bad body answers 400
            raise
        submit = {
            "item_id": int(pk),
            "value": v["value"],
            "lead_time_ms": v.get("lead_time_ms"),
            "accepted_suggestion": v.get("accepted_suggestion"),
            "idempotency_key": key,
        }
        result = None
        if self.token is not None:
            try:
                result = annotation_submit_checked(user=None, token=self.token, **submit)
            except TokenRefused:
                self._authenticate_now(request)  # raises DRF's 401 (unknown token, inactive user)
            else:
                request.user, request.auth = result.annotation.annotator, self.token
        if result is None:
            result = annotation_submit_checked(user=request.user, **submit)
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
    content_negotiation_class = JsonFirstNegotiation

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, pk: int) -> Response:
        item = item_for_user(user=request.user, item_id=pk, capability=ANNOTATE)
        item_skip(item_id=item.pk, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
