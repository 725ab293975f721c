"""The reviewer's loop: the next item awaiting review (leased to the reviewer), and a verdict on one of its
annotations."""

from __future__ import annotations

from collections import Counter
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import Capability, annotation_access, project_access
from annotation.apis.serializers import (
    ItemOutput,
    ReviewInput,
    ReviewNextOutput,
    ReviewOutput,
    iso,
    review_brief,
)
from annotation.selectors.reviewing import ReviewTask, canonical
from annotation.services.reviewing import ReviewResult, review_next_for_reviewer, review_submit


def review_task_out(task: ReviewTask) -> dict[str, Any]:
    agreeing = Counter(canonical(a.value) for a in task.annotations if a.counts)
    return {
        "item": ItemOutput(task.item).data,
        "annotations": [
            {
                "id": a.pk,
                "annotator": a.annotator.get_username(),
                "value": a.value,
                "lead_time_ms": a.lead_time_ms,
                "accepted_suggestion": a.accepted_suggestion,
                "created_at": iso(a.created_at),
                "updated_at": iso(a.updated_at),
                "agreeing": agreeing[canonical(a.value)] if a.counts else 0,
                "counts": a.counts,
                "review": review_brief(task.reviews.get(a.pk)),
            }
            for a in task.annotations
        ],
        "disagreement": task.disagreement,
        "waiting": task.waiting,
        "expires_at": iso(task.expires_at),
        "adjudication": task.item.adjudication,
        "rejections": task.item.rejections,
    }


def review_out(result: ReviewResult) -> dict[str, Any]:
    review = result.review
    return {
        "id": review.pk,
        "annotation": review.annotation_id,
        "item": result.item.pk,
        "reviewer": review.reviewer.get_username(),
        "verdict": review.verdict,
        "corrected_value": review.corrected_value,
        "comment": review.comment,
        "created_at": iso(review.created_at),
        "item_status": result.item.status,
        "final": result.final,
        "adjudication": result.item.adjudication,
        "rejections": result.item.rejections,
    }


class ProjectReviewNextApi(APIView):
    @extend_schema(responses={200: ReviewNextOutput, 204: None})
    def get(self, request: Request, pk: int) -> Response:
        """The item awaiting review, leased to you until `expires_at`, with all its annotations; 204 when none.

        Order: disagreements, then the majority against the model's suggestion, then items labeled by annotators of
        low gold accuracy, then the oldest (docs/review.md). Asking again while the lease lives returns the same item.
        """
        project = project_access(user=request.user, project_id=pk, capability=Capability.REVIEW).project
        task = review_next_for_reviewer(project=project, reviewer=request.user)
        if task is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(review_task_out(task))


class AnnotationReviewApi(APIView):
    @extend_schema(request=ReviewInput, responses={201: ReviewOutput, 200: ReviewOutput})
    def post(self, request: Request, pk: int) -> Response:
        """approve / reject / correct an annotation of an item in review; 201, or 200 for a repeat of the same verdict.

        403 on an item you labeled (unless the project sets reviewers_may_review_own); 409 when the item is not in
        review, another reviewer's lease holds it (their expiry in the error), or it awaits adjudication and the
        verdict is not `correct`."""
        annotation, access = annotation_access(user=request.user, annotation_id=pk, capability=Capability.REVIEW)
        data = ReviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        result = review_submit(
            annotation=annotation,
            project=access.project,
            reviewer=request.user,
            verdict=v["verdict"],
            value=v.get("value"),
            comment=v.get("comment", ""),
        )
        return Response(review_out(result), status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)
