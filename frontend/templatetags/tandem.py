"""Template helpers shared by the pages: ``{% load tandem %}``."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from frontend.markdown import markdown_render

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str | None) -> SafeString:
    """``{{ project.guidelines|markdown }}``: Markdown rendered and sanitized (frontend/markdown.py)."""
    return markdown_render(text)
