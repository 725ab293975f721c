"""The expert's loop: items, next, submit, edit, skip."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import Capability, annotation_access, item_access, project_access
from annotation.apis.pagination import paginated
from annotation.apis.serializers import (
    AnnotationInput,
    AnnotationOutput,
    BlindItemOutput,
    ItemOutput,
    StrictInput,
    annotation_out,
    next_out,
)
from annotation.exceptions import Forbidden, InvalidInput, NotFound
from annotation.selectors.items import BLIND_REFUSED, item_list
from annotation.selectors.labeling import annotation_list_for_item
from annotation.services.gold import gold_clear, gold_set
from annotation.services.queue import MAX_EXCLUDE, item_next_for_annotator, suggestion_preselect
from annotation.services.submitting import annotation_submit, annotation_update, item_skip

MAX_BIGINT = 2**63 - 1  # item ids are bigint: a larger ?exclude= id is refused, never sent to the database
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


_MAX_LEAD_MS = AnnotationInput.LEAD_TIME_MS_MAX


def _annotation_input(data: object) -> dict:
    """The submit body: the plain JSON case, checked against AnnotationInput's own bounds, is taken as is;
    anything else goes through AnnotationInput (same result: the serializer is costly for the hottest call)."""
    if type(data) is dict and data.get("value") is not None:
        lead, accepted = data.get("lead_time_ms"), data.get("accepted_suggestion")
        if (lead is None or (type(lead) is int and 0 <= lead <= _MAX_LEAD_MS)) and (
            accepted is None or type(accepted) is bool
        ):
            return {"value": data["value"], "lead_time_ms": lead, "accepted_suggestion": accepted}
    checked = AnnotationInput(data=data)
    checked.is_valid(raise_exception=True)
    return checked.validated_data


_BLIND = (
    "Annotators (no inspect capability) get the blind shape (id, external_id, data, created_at) and a 400 for "
    f"the filters {', '.join(BLIND_REFUSED)}."
)


class ProjectItemsApi(APIView):
    @extend_schema(
        description=f"The project's items, paginated and filtered. {_BLIND}",
        parameters=[
            OpenApiParameter("status", str, many=True),
            OpenApiParameter("label", str),
            OpenApiParameter("annotator", str),
            OpenApiParameter("uncertainty_min", float),
            OpenApiParameter("uncertainty_max", float),
            OpenApiParameter("is_gold", bool),
            OpenApiParameter("external_id", str),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses=ItemOutput(many=True),
    )
    def get(self, request: Request, pk: int) -> Response:
        access = project_access(user=request.user, project_id=pk, capability=Capability.VIEW)
        blind = not access.can(Capability.INSPECT)
        items = item_list(project=access.project, params=request.query_params, blind=blind)
        shape = BlindItemOutput if blind else ItemOutput
        return paginated(request, items, lambda page: shape(page, many=True).data, self)


class GoldInput(StrictInput):
    gold = serializers.JSONField(allow_null=True, help_text="The gold value (an annotation value), or null.")


class ItemDetailApi(APIView):
    @extend_schema(description=f"One item. {_BLIND}", responses=ItemOutput)
    def get(self, request: Request, pk: int) -> Response:
        found = item_access(user=request.user, item_id=pk, capability=Capability.VIEW)
        if not found.access.can(Capability.INSPECT):
            return Response(BlindItemOutput(found.item).data)
        return Response(ItemOutput(found.item).data)

    @extend_schema(
        description='Managers: `{"gold": value}` makes the item gold (its FinalLabel, source gold; status approved; '
        'its leases dropped), or changes its gold value; `{"gold": null}` removes it and the item returns to the '
        "queue (decided again by its counting annotations when it has k).",
        request=GoldInput,
        responses=ItemOutput,
    )
    def patch(self, request: Request, pk: int) -> Response:
        found = item_access(user=request.user, item_id=pk, capability=Capability.MANAGE)
        data = GoldInput(data=request.data)
        data.is_valid(raise_exception=True)
        value = data.validated_data["gold"]
        item = gold_clear(item=found.item) if value is None else gold_set(item=found.item, value=value)
        return Response(ItemOutput(item_list(project=found.access.project).get(pk=item.pk)).data)


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

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "exclude",
                str,
                description=f"Comma-separated item ids (at most {MAX_EXCLUDE}) not to return: the items the "
                "client already holds, so it can prefetch the next one while the expert works on the current one.",
            )
        ],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="The item leased to you: id, external_id, data, status, prediction (with `preselect`: "
                "whether a client may pre-select the suggestion), assignment.expires_at.",
            ),
            204: OpenApiResponse(description="Nothing left for you."),
            403: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description='Your role may not annotate, or you are paused ({"detail", "errors", "paused": true}).',
            ),
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        access = project_access(user=request.user, project_id=pk, capability=Capability.ANNOTATE)
        if access.paused:
            raise Forbidden(
                "You are paused in this project: your answers on the quality-check items fell below the "
                "project's threshold. A manager can un-pause you.",
                extra={"paused": True},
            )
        project = access.project
        nxt = item_next_for_annotator(project=project, user=request.user, exclude=_exclude_ids(request))
        if nxt is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        preselect = suggestion_preselect(suggestion=nxt.suggestion, min_confidence=project.preselect_min_confidence)
        return Response(next_out(nxt.item, nxt.expires_at, preselect=preselect))


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

    @extend_schema(responses=AnnotationOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        """Annotations of an item: all of them for reviewers and managers, only your own otherwise."""
        found = item_access(user=request.user, item_id=pk, capability=Capability.VIEW)
        annotations = annotation_list_for_item(item=found.item, access=found.access, user=request.user)
        return Response(AnnotationOutput(annotations, many=True).data)

    @extend_schema(
        request=AnnotationInput,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        responses={201: AnnotationOutput, 200: AnnotationOutput},
    )
    def post(self, request: Request, pk: int) -> Response:
        key = _idempotency_key(request)
        v = _annotation_input(request.data)
        result = annotation_submit(
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
    def _get(self, request: Request, pk: int):
        """The annotation, if it is the user's own or the user may inspect the project (404 otherwise)."""
        annotation, access = annotation_access(user=request.user, annotation_id=pk, capability=Capability.VIEW)
        if annotation.annotator_id != request.user.pk and not access.can(Capability.INSPECT):
            raise NotFound("No such annotation.")
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
        updated = annotation_update(
            annotation_id=annotation.pk,
            user=request.user,
            value=data.validated_data["value"],
            lead_time_ms=data.validated_data.get("lead_time_ms"),
        )
        return Response(annotation_out(updated, request.user.get_username()))


class ItemSkipApi(APIView):
    content_negotiation_class = JsonFirstNegotiation

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, pk: int) -> Response:
        item = item_access(user=request.user, item_id=pk, capability=Capability.ANNOTATE).item
        item_skip(item_id=item.pk, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
