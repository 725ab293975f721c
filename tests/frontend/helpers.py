"""What the page tests share: a logged-in Django test client, and the inline scripts a CSP would block."""

from __future__ import annotations

import re

from django.test import Client


def browser(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def inline_scripts(html: str) -> list[str]:
    """<script> tags that would run inline code (no src and not a JSON data block)."""
    tags = re.findall(r"<script\b[^>]*>", html)
    return [t for t in tags if "src=" not in t and 'type="application/json"' not in t]
