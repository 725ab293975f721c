"""The review page: the item awaiting review with all its annotations side by side.

The page is thin: static/frontend/review/ (ES modules) drives GET /api/projects/{id}/review/next and
POST /api/annotations/{id}/review with the session, so the rules live in one place
(annotation/services/reviewing.py).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from annotation.access import Capability
from frontend.views import access_for_page


@login_required
@ensure_csrf_cookie
def review(request: HttpRequest, pk: int) -> HttpResponse:
    """`/projects/{id}/review` for reviewers, managers and staff (404 non-members, 403 other roles)."""
    access = access_for_page(request, pk, Capability.REVIEW)
    project = access.project
    config = {
        "project": project.pk,
        "taskType": project.task_type,
        "reviewPolicy": project.review_policy,
        "maxRejections": project.max_rejections,
        "labels": [
            {"name": lab["name"], "hotkey": lab.get("hotkey") or "", "color": lab.get("color") or ""}
            for lab in project.labels
        ],
    }
    return render(
        request,
        "frontend/review.html",
        {"project": project, "config": config, "can_manage": access.can(Capability.MANAGE)},
    )
