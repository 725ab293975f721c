"""User accounts: creation (the users API, the demo's admin)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction


@transaction.atomic
def user_create(*, username: str, password: str, email: str = "", is_staff: bool = False) -> Any:
    """A new active user with a hashed password. Input is validated by the caller's serializer (username
    unique and well-formed, password through Django's validators)."""
    user = get_user_model()(username=username, email=email, is_staff=is_staff)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return user
