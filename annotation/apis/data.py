"""Import, export and jobs."""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import Capability, project_access
from annotation.apis.pagination import paginated
from annotation.apis.serializers import JobCreated, JobOutput
from annotation.exceptions import InvalidInput, PayloadTooLarge
from annotation.selectors.exporting import EXPORT_FILTERS, EXPORT_FORMATS, export_items, export_stream
from annotation.selectors.items import job_for_user, job_list
from annotation.services.importing import CHUNK, import_create

CONTENT_TYPES = {
    "jsonl": "application/x-ndjson; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "labelstudio": "application/json",
}
EXTENSIONS = {"jsonl": "jsonl", "csv": "csv", "labelstudio": "json"}


def _body_chunks(request: Request) -> Iterator[bytes]:
    raw = request._request  # the Django request: read its stream ourselves, never into memory whole
    while True:
        chunk = raw.read(CHUNK)
        if not chunk:
            return
        yield chunk


class ProjectImportApi(APIView):
    # multipart is parsed by Django into a temporary file; any other body is streamed by us
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={
            "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}},
            "application/json": {"type": "array", "items": {"type": "object"}},
        },
        parameters=[
            OpenApiParameter("on_error", str, enum=["reject", "skip"]),
            OpenApiParameter("format", str, enum=["json", "jsonl", "csv", "labelstudio"]),
            OpenApiParameter("text_field", str, description="labelstudio: the `data` field holding the text"),
        ],
        responses={202: JobCreated},
    )
    def post(self, request: Request, pk: int) -> Response:
        project = project_access(user=request.user, project_id=pk, capability=Capability.MANAGE).project
        declared = request.META.get("CONTENT_LENGTH")
        declared_size = int(declared) if declared and declared.isdigit() else None
        on_error = request.query_params.get("on_error")
        fmt = request.query_params.get("format")
        text_field = request.query_params.get("text_field")
        if request.content_type.startswith("multipart/form-data"):
            # refuse an oversized upload before Django spools it to a temporary file
            if declared_size is not None and declared_size > settings.TANDEM_IMPORT_MAX_BYTES:
                raise PayloadTooLarge(
                    f"The upload is {declared_size} bytes; the limit is {settings.TANDEM_IMPORT_MAX_BYTES}."
                )
            upload = request.FILES.get("file")
            if upload is None:
                raise InvalidInput("No file.", [{"field": "file", "message": "Send the items as the 'file' part."}])
            form = request.data  # multipart: a QueryDict
            assert isinstance(form, dict)
            on_error = on_error or form.get("on_error")
            fmt = fmt or form.get("format")
            text_field = text_field or form.get("text_field")
            job = import_create(
                project=project,
                user=request.user,
                chunks=upload.chunks(CHUNK),
                declared_size=upload.size,
                filename=upload.name,
                requested_format=fmt,
                on_error=on_error,
                text_field=text_field,
            )
        else:
            job = import_create(
                project=project,
                user=request.user,
                chunks=_body_chunks(request),
                declared_size=declared_size,
                filename=None,
                requested_format=fmt,
                on_error=on_error,
                text_field=text_field,
            )
        return Response({"job": job.pk}, status=status.HTTP_202_ACCEPTED)


class ProjectExportApi(APIView):
    def perform_content_negotiation(self, request: Request, force: bool = False):
        # the export answers whatever the client's Accept header says
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=list(EXPORT_FORMATS)),
            *(
                OpenApiParameter(name, str, many=True, explode=True, description="repeatable: any of the values")
                for name in EXPORT_FILTERS
            ),
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/json"): OpenApiTypes.STR,
        },
    )
    def get(self, request: Request, pk: int):
        project = project_access(user=request.user, project_id=pk, capability=Capability.EXPORT).project
        fmt = request.query_params.get("format", "jsonl").lower()
        if fmt not in EXPORT_FORMATS:
            raise InvalidInput(
                "Unknown export format.", [{"field": "format", "message": f"One of {', '.join(EXPORT_FORMATS)}."}]
            )
        # other query keys (page stuff, cache busters DRF clients add) are not filters: ignored
        items = export_items(
            project=project, filters={name: request.query_params.getlist(name) for name in EXPORT_FILTERS}
        )
        response = StreamingHttpResponse(
            export_stream(project=project, fmt=fmt, items=items), content_type=CONTENT_TYPES[fmt]
        )
        response["Content-Disposition"] = f'attachment; filename="tandem-project-{project.pk}.{EXTENSIONS[fmt]}"'
        response["Cache-Control"] = "no-store"
        return response


class JobDetailApi(APIView):
    @extend_schema(responses=JobOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(JobOutput(job_for_user(user=request.user, job_id=pk)).data)


class ProjectJobsApi(APIView):
    @extend_schema(responses=JobOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        access = project_access(user=request.user, project_id=pk, capability=Capability.VIEW)
        # blind members (annotators) see only their own Jobs: a training Job's result holds the model's metrics
        jobs = job_list(project=access.project, created_by=None if access.can(Capability.INSPECT) else request.user)
        return paginated(request, jobs, lambda page: JobOutput(page, many=True).data, self)
