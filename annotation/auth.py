"""Token authentication with one hand-written query (DRF's does the same lookup through the ORM)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import authentication, exceptions

from annotation.sql import columns, fast_path, fetchone_prepared, load


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
