"""Permission-scoped reads of projects, members, items and jobs (access itself: annotation.access)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Value

from annotation.access import STAFF, Capability, job_access, project_access, project_scope
from annotation.exceptions import InvalidInput, NotFound
from annotation.models import Annotation, Item, Job, Membership, Project
from annotation.models.item import QUEUE_STATUSES, ItemStatus
from annotation.models.project import TaskType
from annotation.services.gold import gold_scores


def project_list_for_user(*, user: Any) -> QuerySet[Project]:
    """The projects the user may see (annotation.access.project_scope), with their item counts and the user's
    role there as annotation.access gives it (`my_role`: STAFF for staff users, else the membership's)."""
    member_role = Subquery(Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1])
    return (
        project_scope(user=user)
        .annotate(
            # gold items are not work to do: they stay out of progress (issue 13)
            item_count=Count("items", filter=Q(items__is_gold=False), distinct=True),
            done_count=Count(
                "items", filter=Q(items__is_gold=False) & ~Q(items__status__in=QUEUE_STATUSES), distinct=True
            ),
            my_role=Value(STAFF) if user.is_staff else member_role,
        )
        .order_by("id")
    )


def member_list(*, project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user").order_by("id")


def member_for_project(*, project: Project, user_id: int) -> Membership:
    member = Membership.objects.filter(project=project, user_id=user_id).select_related("user").first()
    if member is None:
        raise NotFound("No such member.")
    return member


class ItemFilter(django_filters.FilterSet):
    """The item list's query parameters (GET /api/projects/{id}/items)."""

    status = django_filters.MultipleChoiceFilter(choices=ItemStatus.choices)
    label = django_filters.CharFilter(method="filter_label")
    annotator = django_filters.CharFilter(method="filter_annotator")
    uncertainty_min = django_filters.NumberFilter(field_name="uncertainty", lookup_expr="gte")
    uncertainty_max = django_filters.NumberFilter(field_name="uncertainty", lookup_expr="lte")
    is_gold = django_filters.BooleanFilter()
    external_id = django_filters.CharFilter()

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project

    def filter_label(self, qs: QuerySet[Item], name: str, value: str) -> QuerySet[Item]:
        """Items whose final label is (classification) or includes (multilabel, spans) `value`."""
        if self.project.task_type == TaskType.CLASSIFICATION:
            return qs.filter(final_label__value__label=value)
        if self.project.task_type == TaskType.MULTILABEL:
            return qs.filter(final_label__value__labels__contains=[value])
        return qs.filter(final_label__value__spans__contains=[{"label": value}])

    def filter_annotator(self, qs: QuerySet[Item], name: str, value: str) -> QuerySet[Item]:
        return qs.filter(Exists(Annotation.objects.filter(item=OuterRef("pk"), annotator__username=value)))


# The filters a member without Capability.INSPECT (an annotator, blind) may not use: each reads what they do not
# see (final labels, others' annotations, gold flags, the model's uncertainty, the status others' work decides).
BLIND_REFUSED = ("label", "annotator", "is_gold", "uncertainty_min", "uncertainty_max", "status")


def item_list(*, project: Project, params: Any = None, blind: bool = False) -> QuerySet[Item]:
    """The project's items in id order, filtered by `params` (ItemFilter's query parameters); 400 on a bad one.
    `blind` (a member without Capability.INSPECT): 400 for the filters in BLIND_REFUSED."""
    qs = Item.objects.filter(project=project).order_by("id")
    if not blind:
        qs = qs.select_related("final_label")
    if params is None:
        return qs
    if blind:
        refused = [name for name in BLIND_REFUSED if name in params]
        if refused:
            raise InvalidInput(
                "Your role cannot filter items by this.",
                [{"field": name, "message": "Not available to annotators (blind labeling)."} for name in refused],
            )
    filterset = ItemFilter(params, queryset=qs, project=project)
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset.qs


def annotator_rows(*, project: Project, members: list[Membership]) -> list[dict[str, Any]]:
    """The annotators list's rows for these members (a page of member_list): their pause and gold score (one
    query for the scores, whatever the page size)."""
    scores = gold_scores(project=project, user_ids=[m.user_id for m in members])
    rows = []
    for m in members:
        score = scores.get(m.user_id)
        rows.append(
            {
                "user_id": m.user_id,
                "username": m.user.get_username(),
                "paused": m.paused,
                "gold_answers": score.answers if score else 0,
                "gold_accuracy": score.accuracy if score else None,
            }
        )
    return rows


def job_list(*, project: Project, created_by: Any = None) -> QuerySet[Job]:
    """The project's Jobs, newest first; only those `created_by` started when given (blind members: a training
    or pre-label Job's result holds the model's metrics)."""
    qs = Job.objects.filter(project=project).order_by("-id")
    return qs if created_by is None else qs.filter(created_by_id=created_by.pk)


def job_for_user(*, user: Any, job_id: int | str) -> Job:
    """A Job the user may see (annotation.access.job_access); a member without Capability.INSPECT (an annotator)
    sees only the Jobs they started (404 for the others, as for a Job of another project)."""
    job = job_access(user=user, job_id=job_id)
    if job.created_by_id != user.pk and not project_access(user=user, project_id=job.project_id).can(
        Capability.INSPECT
    ):
        raise NotFound("No such job.")
    return job
