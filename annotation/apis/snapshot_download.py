"""A snapshot's files: GET /api/snapshots/{id}/download?format=… (docs/dataset-formats.md).

Every format is written once (annotation/datasets/formats.py) and then served as a plain file: Content-Length,
an ETag (the sha256 of the file's bytes), single byte ranges (206 / 416), If-None-Match (304) and If-Range, so
an interrupted download of a large Parquet or HF tar resumes where it stopped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO

from django.http import FileResponse, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import Capability
from annotation.datasets.formats import (
    CARD,
    CONTENT_TYPES,
    EXTENSIONS,
    FORMATS,
    bundle_ensure,
    download_slug,
    format_check,
    format_ensure,
)
from annotation.datasets.paths import snapshot_for_user
from annotation.exceptions import Conflict
from annotation.models.snapshot import SnapshotStatus

CHUNK = 1 << 16
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class Unsatisfiable(Exception):
    pass


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range [start, end] (inclusive) that a Range header asks for, or None to serve the whole
    file (no header, a malformed one, or several ranges: RFC 9110 lets a server ignore Range). Raises
    Unsatisfiable for a range that starts past the end or an empty suffix."""
    if not header or "," in header:
        return None
    match = _RANGE.match(header)
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - n), size - 1
    start = int(first)
    if last != "" and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise Unsatisfiable
    return start, size - 1 if last == "" else min(int(last), size - 1)


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match: `*` or a list of (weak or strong) tags; weak comparison, as RFC 9110 says for it."""
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def _file_part(fh: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    try:
        fh.seek(start)
        while length > 0:
            chunk = fh.read(min(CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        fh.close()


class SnapshotDownloadApi(APIView):
    def perform_content_negotiation(self, request: Request, force: bool = False):
        # a file download answers whatever the client's Accept header says (and ?format= is ours, not DRF's)
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=[*FORMATS, CARD], default="jsonl"),
            OpenApiParameter("bundle", bool, description="a tar of the card and the file"),
        ],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            (206, "application/octet-stream"): OpenApiTypes.BINARY,
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponseBase:
        snapshot = snapshot_for_user(user=request.user, snapshot_id=pk, capability=Capability.EXPORT)
        fmt = request.query_params.get("format", "jsonl").lower()
        bundle = request.query_params.get("bundle", "").lower() in ("1", "true", "yes")
        format_check(snapshot, fmt)
        if snapshot.status == SnapshotStatus.BUILDING:
            raise Conflict("The snapshot is still being built.", extra={"status": snapshot.status})
        if snapshot.status == SnapshotStatus.FAILED:
            raise Conflict(
                f"The snapshot failed to build: {snapshot.error}",
                [{"field": None, "message": snapshot.error}],
                extra={"status": snapshot.status},
            )
        slug = download_slug(snapshot)
        if bundle:
            path, size, digest = bundle_ensure(snapshot, fmt)
            content_type, filename = "application/x-tar", f"{slug}-{fmt}-bundle.tar"
        else:
            path = format_ensure(snapshot, fmt, wait=False)  # FormatBusy: 503 with Retry-After
            size, digest = snapshot.formats[fmt]["bytes"], snapshot.formats[fmt]["sha256"]
            content_type, filename = CONTENT_TYPES[fmt], f"{slug}.{EXTENSIONS[fmt]}"
        etag = f'"{digest}"'
        headers = {
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "Cache-Control": "private",
            "Link": f'<{request.path}?format={CARD}>; rel="describedby"',
        }

        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None and _etag_matches(if_none_match, etag):
            response: HttpResponseBase = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
            for key, value in headers.items():
                response[key] = value
            return response

        if_range = request.headers.get("If-Range")
        wanted = request.headers.get("Range") if if_range is None or if_range.strip() == etag else None
        try:
            part = byte_range(wanted, size)
        except Unsatisfiable:
            return Response(
                {
                    "detail": f"The range is outside the file ({size} bytes).",
                    "errors": [{"field": "Range", "message": f"The file has {size} bytes."}],
                },
                status=status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE,
                headers={**headers, "Content-Range": f"bytes */{size}"},
            )

        fh = path.open("rb")
        if part is None:
            response = FileResponse(fh, content_type=content_type)
        else:
            start, end = part
            response = StreamingHttpResponse(
                _file_part(fh, start, end - start + 1),
                status=status.HTTP_206_PARTIAL_CONTENT,
                content_type=content_type,
            )
            response["Content-Range"] = f"bytes {start}-{end}/{size}"
            size = end - start + 1
        response["Content-Length"] = str(size)
        response["Content-Disposition"] = content_disposition_header(True, filename)
        for key, value in headers.items():
            response[key] = value
        return response
