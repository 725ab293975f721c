"""The snapshot page: create a curated dataset snapshot (filters, split), watch its build, download it.

Thin, like the other manager pages: the view checks access with the same rule as the REST API
(Capability.EXPORT: managers, engineers, staff) and renders the page; static/frontend/snapshots/ (ES modules)
then lists, creates and follows snapshots through /api/projects/{id}/snapshots, /api/snapshots/{id} and
/api/jobs/{id} with the session and the CSRF token, and links each ready one's downloads
(/api/snapshots/{id}/download?format=...), so the rules live in annotation/datasets alone.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from annotation.access import Capability
from annotation.models.item import FinalLabelSource, ItemStatus
from frontend.views import access_for_page

# the filter's values are the API's (filters.status); the words are what a person reads
STATUS_TEXT = {
    ItemStatus.OPEN: "open",
    ItemStatus.IN_PROGRESS: "in progress",
    ItemStatus.IN_REVIEW: "in review",
    ItemStatus.APPROVED: "approved",
}


@login_required
@ensure_csrf_cookie
def snapshots(request: HttpRequest, pk: int) -> HttpResponse:
    """`/projects/{id}/snapshots` for managers, engineers and staff (404 non-members, 403 other roles)."""
    access = access_for_page(request, pk, Capability.EXPORT)
    project = access.project
    config = {
        "project": project.pk,
        "taskType": project.task_type,
        "labels": project.label_names,
    }
    return render(
        request,
        "frontend/snapshots.html",
        {
            "project": project,
            "config": config,
            "can_manage": access.can(Capability.MANAGE),
            "can_inspect": access.can(Capability.INSPECT),
            "statuses": [(s.value, STATUS_TEXT[s]) for s in ItemStatus],
            "sources": [(s.value, s.value) for s in FinalLabelSource],
        },
    )
