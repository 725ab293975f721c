"""The quality dashboard: agreement, throughput, annotators, model versions, live accuracy, slices, stopping.

The page is thin: static/frontend/dashboard/ (ES modules) reads GET /api/projects/{id}/metrics (the numbers,
cached and refreshed by a worker Job) and GET /api/projects/{id}/annotators/ (who is paused), and un-pauses
through POST /api/projects/{id}/annotators/{user_id}/unpause, so the rules and the figures live in one place
(annotation/quality/, annotation/services/gold.py). Charts are drawn by Chart.js from npm when it is installed;
without it the page shows the same numbers as tables.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from annotation.access import Capability
from frontend.views import access_for_page

CHART_JS = "vendor/chart.js/chart.umd.min.js"


def chart_js_available() -> bool:
    """Whether Chart.js can be served: found in node_modules (settings.STATICFILES_DIRS) or already collected
    (a deployment that ran collectstatic and dropped node_modules). Without it the page loads no script that
    would answer 404."""
    return bool(finders.find(CHART_JS)) or staticfiles_storage.exists(CHART_JS)


@login_required
@ensure_csrf_cookie
def dashboard(request: HttpRequest, pk: int) -> HttpResponse:
    """`/projects/{id}/dashboard` for reviewers, managers, engineers and staff (404 non-members, 403 annotators)."""
    access = access_for_page(request, pk, Capability.INSPECT)
    project = access.project
    config = {
        "project": project.pk,
        "taskType": project.task_type,
        "labels": project.label_names,
        "overlap": project.annotations_per_item,
        "canManage": access.can(Capability.MANAGE),
    }
    return render(
        request,
        "frontend/dashboard.html",
        {
            "project": project,
            "config": config,
            "charts": chart_js_available(),
            "chart_js": CHART_JS,
            "can_manage": access.can(Capability.MANAGE),
            "can_review": access.can(Capability.REVIEW),
        },
    )
