"""A user's access to a project as read by the hand-written statements that fold the token lookup and the
access check together (annotation.auth.token_user_and_project, annotation.services.queue.item_next_for_token).
Imports neither DRF nor the API's exceptions, so both the auth module and the services can use it."""

from __future__ import annotations

from dataclasses import dataclass

from annotation.models import Project
from annotation.sql import load

MAX_BIGINT = 2**63 - 1  # ids are bigint


@dataclass
class ProjectAccess:
    """The requesting user's role in a project ("staff" for staff users; None: not a member, or no such
    project) and the project (None when it does not exist)."""

    role: str | None
    project: Project | None


def bigint_or_zero(project_id: int | str) -> int:
    """The project id for a query: ids are bigint, and an id beyond that is no project (0 matches none)."""
    project_id = int(project_id)
    return 0 if project_id > MAX_BIGINT else project_id


def project_access(user, project_row: tuple, member_role: str | None) -> ProjectAccess:
    """The ProjectAccess of a row selected as columns(Project, ...) through a LEFT JOIN (all NULL: no such
    project) and the user's membership role in it (NULL: none)."""
    if project_row[Project._meta.concrete_fields.index(Project._meta.pk)] is None:
        return ProjectAccess(role=None, project=None)
    project = load(Project, project_row)
    role = "staff" if user.is_staff else member_role
    project.user_role = role  # type: ignore[attr-defined]
    return ProjectAccess(role=role, project=project)
