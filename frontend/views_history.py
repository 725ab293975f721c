"""`/projects/{id}/history`: what you labeled in a project and what reviewers said of it (issue 13: a rejected
annotation stays visible to its annotator, with the verdict and the comment). Server-rendered from the same
selector as `GET /api/projects/{id}/history`; every member sees their own work only."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotation.access import Capability
from annotation.models.labeling import Verdict
from annotation.selectors.labeling import annotation_history
from frontend.views import access_for_page

PAGE_SIZE = 50


@login_required
def history(request: HttpRequest, pk: int) -> HttpResponse:
    access = access_for_page(request, pk, Capability.VIEW)
    verdict = request.GET.get("verdict")
    if verdict not in Verdict.values:
        verdict = None
    rows = annotation_history(project=access.project, user=request.user, verdict=verdict)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    for annotation in page:
        # the latest verdict, as the API shows it (a rejected annotation: its reject, which says why it left)
        reviews = [r for r in annotation.reviews.all() if annotation.counts or r.verdict == Verdict.REJECT]
        annotation.latest_review = max(reviews, key=lambda r: r.pk) if reviews else None  # type: ignore[attr-defined]
    return render(
        request,
        "frontend/history.html",
        {
            "project": access.project,
            "page": page,
            "verdict": verdict,
            "verdicts": [("approve", "approved"), ("reject", "rejected"), ("correct", "corrected")],
            "can_review": access.can(Capability.REVIEW),
        },
    )
