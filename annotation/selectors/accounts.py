"""Reads of user accounts (staff pages and the users API)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet


def user_list() -> QuerySet[Any]:
    return get_user_model().objects.order_by("id")
