"""Token authentication: DRF's TokenAuthentication with its lookup as one prepared statement.

DRF's own does `Token.objects.select_related("user").get(key=key)`; compiling that ORM query costs more CPU
than the database spends answering it, and every API request runs it. The contract is DRF's: the request's
`(user, auth)` is `(User, Token)`, and an unknown key or an inactive user is a 401.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from annotation.sql import columns, fetchone_prepared, load, width


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`, as DRF's TokenAuthentication."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        User = get_user_model()
        row = fetchone_prepared(
            "tandem_auth",
            f"SELECT {columns(Token, 't')}, {columns(User, 'u')} FROM authtoken_token t "  # noqa: S608 - column names only
            f'JOIN {User._meta.db_table} u ON u."{User._meta.pk.column}" = t.user_id WHERE t.key = %(key)s::varchar',
            {"key": key},
        )
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        n = width(Token)
        token, user = load(Token, row[:n]), load(User, row[n:])
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        token.user = user
        return (user, token)
