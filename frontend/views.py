"""Server-rendered pages; they read through the same selectors as the REST API.

Pages are thin: the labeling page renders the project's labels, guidelines and settings, and its
JavaScript modules (static/frontend/label/, entry main.js) drive the REST API with the session.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from annotation.access import Capability, ProjectAccess, project_access, project_access_of
from annotation.exceptions import Forbidden, NotFound
from annotation.models import Annotation
from annotation.selectors.items import project_list_for_user
from frontend.selectors import items_left_by_project


def access_for_page(request: HttpRequest, project_id: int, capability: Capability) -> ProjectAccess:
    """The user's access to the project of a page, or Django's 404 (non-members) / 403 (a role that may not)
    pages: the same decision as the REST API's (annotation.access)."""
    try:
        return project_access(user=request.user, project_id=project_id, capability=capability)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    except Forbidden as exc:
        raise PermissionDenied(exc.detail) from exc


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    projects = list(project_list_for_user(user=request.user))
    left = items_left_by_project(user=request.user, project_ids=[p.pk for p in projects])
    rows = []
    for p in projects:
        # my_role, item_count, done_count: annotated by project_list_for_user
        access = project_access_of(user=request.user, project=p, member_role=p.my_role)  # type: ignore[attr-defined]
        done, total = p.done_count, p.item_count  # type: ignore[attr-defined]
        rows.append(
            {
                "project": p,
                "role": access.role,
                "can": {capability.value: access.can(capability) for capability in Capability},
                "percent_done": round(100 * done / total) if total else 0,
                "left_for_me": left.get(p.pk, 0),
            }
        )
    return render(request, "frontend/projects.html", {"projects": rows})


@login_required
@ensure_csrf_cookie
def label(request: HttpRequest, pk: int) -> HttpResponse:
    """The keyboard-first labeling page (static/frontend/label/ drives /api/projects/{id}/next and submit)."""
    project = access_for_page(request, pk, Capability.ANNOTATE).project
    config = {
        "project": project.pk,
        "taskType": project.task_type,
        "labels": [
            {"name": lab["name"], "hotkey": lab.get("hotkey") or "", "color": lab.get("color") or ""}
            for lab in project.labels
        ],
        "user": request.user.pk,
    }
    progress = {
        # gold answers are not progress (gold items stand outside the queue and must not stand out)
        "done": Annotation.objects.filter(
            item__project=project, annotator_id=request.user.pk, item__is_gold=False
        ).count(),
        "left": items_left_by_project(user=request.user, project_ids=[project.pk]).get(project.pk, 0),
    }
    config["progress"] = progress
    return render(request, "frontend/label.html", {"project": project, "config": config, "progress": progress})
