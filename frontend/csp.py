"""Content-Security-Policy for every HTML page: no inline script, no eval.

A small middleware instead of a package: one header, set on ``text/html`` responses that do not
already carry one. Page code is ES modules under ``frontend/static/frontend/`` (``lib/`` and one
folder per page), loaded with ``<script type="module" src=...>``, so nothing inline is needed.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

DEFAULT_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Adds ``Content-Security-Policy`` to HTML responses (paths in ``TANDEM_CSP_EXEMPT`` excepted)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy: str = getattr(settings, "TANDEM_CSP", DEFAULT_POLICY)
        self.exempt: tuple[str, ...] = tuple(getattr(settings, "TANDEM_CSP_EXEMPT", ()))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        content_type = response.get("Content-Type", "")
        if (
            content_type.startswith("text/html")
            and "Content-Security-Policy" not in response
            and not request.path.startswith(self.exempt)
        ):
            response["Content-Security-Policy"] = self.policy
        return response
