"""Token authentication with one hand-written query (DRF's does the same lookup through the ORM)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from annotation.access import ProjectAccess, bigint_or_zero, project_access
from annotation.models import Project
from annotation.sql import columns, fast_path, fetchone_prepared, load, width


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`, as DRF's TokenAuthentication, with its lookup written out on PostgreSQL."""

    def authenticate_credentials(self, key: str):
        if not fast_path():
            return super().authenticate_credentials(key)
        User = get_user_model()
        row = fetchone_prepared(
            "tandem_auth",
            f"SELECT {columns(User, 'u')} FROM authtoken_token t "  # noqa: S608 - column names only
            f'JOIN {User._meta.db_table} u ON u."{User._meta.pk.column}" = t.user_id WHERE t.key = %(key)s::varchar',
            {"key": key},
        )
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        user = load(User, row)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return (user, key)


def token_key(request: Request) -> str | None:
    """The key of a plain `Authorization: Token <key>` header (letters and digits, as DRF makes them), else None."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    keyword, _, key = header.partition(" ")
    if keyword.lower() != TokenAuthentication.keyword.lower() or not key.isascii() or not key.isalnum():
        return None
    return key


def token_user_and_project(request: Request, project_id: int | str) -> ProjectAccess | None:
    """Token authentication and the project access check in one query (otherwise two round trips: DRF's
    token lookup, then project_for_user). On success request.user and request.auth are set, so DRF's
    authentication does not query again. (The labeling loop's `next` folds this into the queue's statement
    as well: annotation.services.queue.item_next_for_token.)

    None where it does not apply (SQLite, no plain token header, an unknown key, an inactive user): the
    caller then lets DRF authenticate and calls project_for_user, which answer as always.
    """
    key = token_key(request)
    if key is None or not fast_path():
        return None
    User = get_user_model()
    row = fetchone_prepared(
        "tandem_auth_project",
        f"SELECT {columns(User, 'u')}, {columns(Project, 'p')}, m.role "  # noqa: S608 - column names only
        f'FROM authtoken_token t JOIN {User._meta.db_table} u ON u."{User._meta.pk.column}" = t.user_id '
        "LEFT JOIN annotation_project p ON p.id = %(project)s::bigint "
        "LEFT JOIN annotation_membership m ON m.project_id = p.id AND m.user_id = t.user_id "
        "WHERE t.key = %(key)s::varchar",
        {"key": key, "project": bigint_or_zero(project_id)},
    )
    if row is None:
        return None
    n = width(User)
    user = load(User, row[:n])
    if not user.is_active:
        return None
    request.user, request.auth = user, key
    return project_access(user, row[n:-1], row[-1])
