"""Manager pages: create and edit a project (labels, overlap, sampling, members), import, export.

Thin views: they check access with the same permission functions as the REST API and render a
template; static/frontend/manage/ (ES modules) then calls the REST API (POST/PATCH /api/projects/, members,
import, GET /api/jobs/{id}) with the session and CSRF token, so there is one set of rules.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from annotation.access import Capability
from annotation.apis.serializers import ProjectOutput
from annotation.models import Item, Project
from annotation.models.project import ReviewPolicy, Role, Sampling, TaskType
from annotation.selectors.items import job_list
from frontend.views import access_for_page

NEW_PROJECT_DEFAULTS: dict[str, Any] = {
    "name": "",
    "description": "",
    "task_type": TaskType.CLASSIFICATION,
    "labels": [],
    "guidelines": "",
    "annotations_per_item": 1,
    "review_policy": ReviewPolicy.NONE,
    "review_sample_rate": 0.0,
    "sampling": Sampling.UNCERTAINTY,
    "exploration_rate": 0.1,
}


def _choices(enum) -> list[dict[str, str]]:
    return [{"value": v, "label": str(label)} for v, label in enum.choices]


def _form_context(request: HttpRequest, project: Project | None) -> dict[str, Any]:
    fields = dict(NEW_PROJECT_DEFAULTS) if project is None else dict(ProjectOutput(project).data)
    config = {
        "project": None if project is None else project.pk,
        "fields": fields,
        "choices": {
            "task_type": _choices(TaskType),
            "review_policy": _choices(ReviewPolicy),
            "sampling": _choices(Sampling),
            "role": _choices(Role),
        },
        "me": request.user.get_username(),
    }
    return {"project": project, "config": config}


@login_required
@ensure_csrf_cookie
def project_new(request: HttpRequest) -> HttpResponse:
    """`/projects/new`: any signed-in user may create a project (POST /api/projects/ makes them its manager)."""
    return render(request, "frontend/manage_project.html", _form_context(request, None))


@login_required
@ensure_csrf_cookie
def project_settings(request: HttpRequest, pk: int) -> HttpResponse:
    """`/projects/{id}/settings`: labels, overlap, review, sampling, guidelines and members (managers, staff)."""
    project = access_for_page(request, pk, Capability.MANAGE).project
    return render(request, "frontend/manage_project.html", _form_context(request, project))


@login_required
@ensure_csrf_cookie
def project_import(request: HttpRequest, pk: int) -> HttpResponse:
    """`/projects/{id}/import`: upload a file, watch its import Job, see what was created and what was wrong."""
    project = access_for_page(request, pk, Capability.MANAGE).project
    jobs = job_list(project=project).filter(kind="import")[:10]
    return render(request, "frontend/manage_import.html", {"project": project, "jobs": jobs})


@login_required
def project_export(request: HttpRequest, pk: int) -> HttpResponse:
    """`/projects/{id}/export`: download links for the streamed JSONL / CSV export (managers, engineers, staff)."""
    access = access_for_page(request, pk, Capability.EXPORT)
    project = access.project
    counts = Item.objects.filter(project=project).aggregate(
        items=Count("id"), final=Count("id", filter=Q(final_label__isnull=False))
    )
    return render(
        request,
        "frontend/manage_export.html",
        {"project": project, "counts": counts, "can_manage": access.can(Capability.MANAGE)},
    )
