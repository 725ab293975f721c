"""Server-rendered pages; they read through the same selectors as the REST API."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotation.selectors.items import project_list_for_user


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    projects = list(project_list_for_user(user=request.user))
    for p in projects:
        p.percent_done = round(100 * p.done_count / p.item_count) if p.item_count else 0
    return render(request, "frontend/projects.html", {"projects": projects})
