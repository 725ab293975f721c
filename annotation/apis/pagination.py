"""One way to answer a list endpoint: `{"count", "next", "previous", "results"}` with ?page= and ?page_size=."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db.models import QuerySet
from rest_framework import pagination
from rest_framework.request import Request
from rest_framework.response import Response


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000


def paginated(
    request: Request, rows: QuerySet[Any] | Sequence[Any], serialize: Callable[[list[Any]], Any], view: Any = None
) -> Response:
    """The page of `rows` the request asks for, serialized by `serialize(page_rows)`."""
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(rows, request, view=view)
    return paginator.get_paginated_response(serialize(list(page or [])))
