"""One error family and one JSON error shape: {"detail": str, "errors": [{"field", "message", ...}]}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """A business-rule failure with an HTTP status and optional per-field errors."""

    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(
        self,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        status_code: int | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        # more top-level keys of the answer beside detail and errors, e.g. {"paused": true} (a paused annotator)
        self.extra = extra or {}
        self.headers = headers or {}  # response headers, e.g. Retry-After on a 503
        if status_code is not None:
            self.status_code = status_code


class InvalidInput(ApplicationError):
    status_code = status.HTTP_400_BAD_REQUEST


class Conflict(ApplicationError):
    status_code = status.HTTP_409_CONFLICT


class NotFound(ApplicationError):
    status_code = status.HTTP_404_NOT_FOUND


class Forbidden(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN


class PayloadTooLarge(ApplicationError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def _flatten(detail: Any, path: str = "") -> list[dict[str, Any]]:
    """DRF's nested error details as a flat list with dotted field paths (`labels[1].name`)."""
    if isinstance(detail, dict):
        out: list[dict[str, Any]] = []
        for key, value in detail.items():
            field = path if key in ("non_field_errors", "__all__") else (f"{path}.{key}" if path else str(key))
            out.extend(_flatten(value, field))
        return out
    if isinstance(detail, list):
        if all(not isinstance(v, (dict, list)) for v in detail):
            return [{"field": path or None, "message": str(v)} for v in detail]
        out = []
        for i, value in enumerate(detail):
            if value in ({}, [], None):
                continue
            out.extend(_flatten(value, f"{path}[{i}]"))
        return out
    return [{"field": path or None, "message": str(detail)}]


def _summary(errors: list[dict[str, Any]], fallback: str) -> str:
    if not errors:
        return fallback
    first = errors[0]
    where = f"{first['field']}: " if first.get("field") else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}{first['message']}{more}"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(
            {**exc.extra, "detail": exc.detail, "errors": exc.errors}, status=exc.status_code, headers=exc.headers
        )
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        exc = drf_exceptions.ValidationError(detail=detail)
    elif isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        errors = _flatten(exc.detail)
        response.data = {"detail": _summary(errors, "Invalid input."), "errors": errors}
    else:
        message = response.data.get("detail") if isinstance(response.data, dict) else response.data
        response.data = {"detail": str(message), "errors": []}
    return response
