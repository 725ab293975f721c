"""Who may do what in a project: the one file where 404 versus 403 is decided.

Every view, page and service asks one of the selectors below (`project_access`, `item_access`,
`annotation_access`) or, where a statement of its own already read the membership under a lock (submit),
`access_decide`. Each returns a `ProjectAccess(project, role)` whose `.can(capability)` answers the role
questions; nothing is attached to model instances.

The rule: a user who is not a member of the project (or asks for an object that does not exist) gets 404,
never 403, which would confirm that it exists; a member whose role lacks the capability gets 403. Staff
users hold every capability in every project.

A request that is malformed in itself (a bad header or body, an id past bigint) answers 400 before access is
looked up: such an answer says nothing about whether the object exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db.models import QuerySet

from annotation.exceptions import Forbidden, NotFound
from annotation.models import Annotation, Item, Job, Project
from annotation.models.project import Role
from annotation.sql import columns, fetchone_prepared, load, width

STAFF = "staff"  # the role a staff user holds in every project


class Capability(StrEnum):
    VIEW = "view"
    ANNOTATE = "annotate"
    REVIEW = "review"
    MANAGE = "manage"
    EXPORT = "export"
    MODEL = "model"  # pre-label, train, activate model versions, schedules
    # see beyond your own work: others' annotations, final labels, gold flags and values, the model's output
    # outside the item served to you, model versions, quality metrics (annotators are blind: issue 13)
    INSPECT = "inspect"


# capability -> the membership roles that hold it (staff hold all)
_GRANTS: dict[Capability, frozenset[str]] = {
    Capability.VIEW: frozenset(Role.values),
    Capability.ANNOTATE: frozenset(Role.values),
    Capability.REVIEW: frozenset({Role.REVIEWER, Role.MANAGER}),
    Capability.MANAGE: frozenset({Role.MANAGER}),
    Capability.EXPORT: frozenset({Role.MANAGER, Role.ENGINEER}),
    Capability.MODEL: frozenset({Role.MANAGER, Role.ENGINEER}),
    Capability.INSPECT: frozenset({Role.REVIEWER, Role.MANAGER, Role.ENGINEER}),
}


@dataclass(frozen=True)
class ProjectAccess:
    """A user's access to a project: the project and their role in it (a Role value, or STAFF)."""

    project: Project
    role: str
    # the member is paused by the gold auto-pause (Membership.paused): `next` refuses them (read by
    # project_access in its one statement; False where the membership was not read)
    paused: bool = False

    def can(self, capability: Capability) -> bool:
        return self.role == STAFF or self.role in _GRANTS[capability]

    def require(self, capability: Capability) -> None:
        """403 unless the role holds `capability`."""
        if not self.can(capability):
            raise Forbidden(f"Your role ({self.role}) does not allow this.")


@dataclass(frozen=True)
class ItemAccess:
    item: Item
    access: ProjectAccess


def access_decide(
    *, user: Any, project: Project | None, member_role: str | None, capability: Capability, what: str = "project"
) -> ProjectAccess:
    """The access of `user` (whose membership role in `project` is `member_role`, None for none) with
    `capability` checked: 404 when the project is None or the user is no member, 403 when the role lacks it."""
    role = STAFF if getattr(user, "is_staff", False) else member_role
    if project is None or role is None:
        raise NotFound(f"No such {what}.")
    access = ProjectAccess(project=project, role=role)
    access.require(capability)
    return access


def project_scope(*, user: Any) -> QuerySet[Project]:
    """The projects the user may see at all: those they are a member of, every project for staff. Lists start
    here, so a list shows exactly what the selectors below would not answer 404 for."""
    if getattr(user, "is_staff", False):
        return Project.objects.all()
    return Project.objects.filter(memberships__user_id=user.pk)


def job_access(*, user: Any, job_id: int | str) -> Job:
    """A Job of a project the user may see (404 otherwise: a Job says nothing its project's members may not
    know)."""
    job = Job.objects.filter(pk=job_id, project__in=project_scope(user=user)).first()
    if job is None:
        raise NotFound("No such job.")
    return job


def project_access_of(*, user: Any, project: Project, member_role: str | None) -> ProjectAccess:
    """The access of a member (or staff user) to a project already read, e.g. by a project list that
    annotated each row with the user's membership role; for listing what the user may do, nothing required."""
    return access_decide(user=user, project=project, member_role=member_role, capability=Capability.VIEW)


def project_access(*, user: Any, project_id: int | str, capability: Capability = Capability.VIEW) -> ProjectAccess:
    """The user's access to the project, with `capability` required (404 / 403 as the module says), and whether
    the member is paused (`paused`). One query."""
    row = fetchone_prepared(
        "tandem_project_access",
        f"SELECT {columns(Project, 'p')}, m.role, m.paused FROM annotation_project p "  # noqa: S608 - column names only
        "LEFT JOIN annotation_membership m ON m.project_id = p.id AND m.user_id = %(user)s::integer "
        "WHERE p.id = %(project)s::bigint",
        {"user": user.pk, "project": int(project_id)},
    )
    access = access_decide(
        user=user,
        project=None if row is None else load(Project, row[:-2]),
        member_role=None if row is None else row[-2],
        capability=capability,
    )
    if row is not None and row[-1]:
        return ProjectAccess(project=access.project, role=access.role, paused=True)
    return access


def item_access(*, user: Any, item_id: int | str, capability: Capability = Capability.VIEW) -> ItemAccess:
    """The item (with `item.project` loaded) and the user's access to its project, `capability` required. One query."""
    row = fetchone_prepared(
        "tandem_item_access",
        f"SELECT {columns(Item, 'i')}, {columns(Project, 'p')}, m.role FROM annotation_item i "  # noqa: S608
        "JOIN annotation_project p ON p.id = i.project_id "
        "LEFT JOIN annotation_membership m ON m.project_id = p.id AND m.user_id = %(user)s::integer "
        "WHERE i.id = %(item)s::bigint",
        {"user": user.pk, "item": int(item_id)},
    )
    if row is None:
        raise NotFound("No such item.")
    n = width(Item)
    item = load(Item, row[:n])
    item.project = load(Project, row[n:-1])
    access = access_decide(user=user, project=item.project, member_role=row[-1], capability=capability, what="item")
    return ItemAccess(item=item, access=access)


def annotation_access(
    *, user: Any, annotation_id: int | str, capability: Capability = Capability.VIEW
) -> tuple[Annotation, ProjectAccess]:
    """The annotation (with its item, project and annotator loaded) and the user's access to its project,
    `capability` required: 404 for a missing annotation or a non-member, 403 for a role without it."""
    annotation = Annotation.objects.select_related("item__project", "annotator").filter(pk=annotation_id).first()
    if annotation is None:
        raise NotFound("No such annotation.")
    project = annotation.item.project
    member_role = project.memberships.filter(user_id=user.pk).values_list("role", flat=True).first()
    access = access_decide(
        user=user, project=project, member_role=member_role, capability=capability, what="annotation"
    )
    return annotation, access
