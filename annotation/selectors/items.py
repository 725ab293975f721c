"""Permission-scoped reads of items, projects and jobs."""

from __future__ import annotations

import json

from django.db import connections
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery

from annotation.exceptions import NotFound
from annotation.models import Annotation, Item, Job, Membership, Project
from annotation.models.item import QUEUE_STATUSES
from annotation.permissions import require_capability
from annotation.sql import columns, fast_path, fetchone_prepared, load, width


def project_list_for_user(*, user) -> QuerySet[Project]:
    """Projects the user is a member of (all for staff), with their item counts and the user's role."""
    qs = Project.objects.all() if user.is_staff else Project.objects.filter(memberships__user=user)
    return qs.annotate(
        item_count=Count("items", distinct=True),
        done_count=Count("items", filter=~Q(items__status__in=QUEUE_STATUSES), distinct=True),
        my_role=Subquery(Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]),
    ).order_by("id")


def item_for_user(*, user, item_id: int, capability) -> Item:
    """The item with its project, if the user's role in that project has `capability` (404 / 403 else). One query."""
    if fast_path():
        row = fetchone_prepared(
            "tandem_item_for_user",
            f"SELECT {columns(Item, 'i')}, {columns(Project, 'p')}, m.role FROM annotation_item i "  # noqa: S608
            "JOIN annotation_project p ON p.id = i.project_id "
            "LEFT JOIN annotation_membership m ON m.project_id = p.id AND m.user_id = %(user)s::integer "
            "WHERE i.id = %(item)s::bigint",
            {"user": user.pk, "item": item_id},
        )
        role = None if row is None else ("staff" if user.is_staff else row[-1])
        require_capability(role, capability, what="item")
        assert row is not None
        n = width(Item)
        found = load(Item, row[:n])
        found.project = load(Project, row[n:-1])
        found.project.user_role = role  # type: ignore[attr-defined]
        return found
    qs = Item.objects.select_related("project").filter(pk=item_id)
    if not user.is_staff:
        qs = qs.annotate(
            role=Subquery(Membership.objects.filter(project=OuterRef("project_id"), user=user).values("role")[:1])
        )
    item = qs.first()
    role = "staff" if user.is_staff else (item.role if item is not None else None)
    require_capability(role, capability, what="item")
    assert item is not None
    item.project.user_role = role  # type: ignore[attr-defined]
    return item


def item_list(*, project: Project) -> QuerySet[Item]:
    return Item.objects.filter(project=project).select_related("final_label").order_by("id")


def item_filter_annotator(qs: QuerySet[Item], username: str) -> QuerySet[Item]:
    return qs.filter(Exists(Annotation.objects.filter(item=OuterRef("pk"), annotator__username=username)))


def item_filter_label(qs: QuerySet[Item], *, project: Project, label: str) -> QuerySet[Item]:
    """Items whose final label is (classification) or includes (multilabel, spans) `label`."""
    if project.task_type == "classification":
        return qs.filter(final_label__value__label=label)
    key = "labels" if project.task_type == "multilabel" else "spans"
    if qs.db and connection_vendor(qs.db) == "postgresql":
        needle = [label] if key == "labels" else [{"label": label}]
        return qs.filter(**{f"final_label__value__{key}__contains": needle})
    # SQLite has no JSON containment: match the label as a JSON string inside the value
    return qs.filter(final_label__value__icontains=json.dumps(label))


def connection_vendor(alias: str) -> str:
    return connections[alias].vendor


def job_for_user(*, user, job_id: int) -> Job:
    """A job of a project the user is a member of (404 otherwise)."""
    qs = Job.objects.filter(pk=job_id)
    if not user.is_staff:
        qs = qs.filter(project__memberships__user=user)
    job = qs.first()
    if job is None:
        raise NotFound("No such job.")
    return job
