"""Who may do what in a project. Non-members get 404 (never 403, which would confirm existence)."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from annotation.exceptions import Forbidden, NotFound
from annotation.models import Membership, Project
from annotation.models.project import Role
from annotation.sql import columns, fast_path, fetchone_prepared, load

# Capabilities -> roles that have them. Staff users have every capability in every project.
ANNOTATE = frozenset(Role.values)
VIEW = frozenset(Role.values)
REVIEW = frozenset({Role.REVIEWER, Role.MANAGER})
MANAGE = frozenset({Role.MANAGER})
EXPORT = frozenset({Role.MANAGER, Role.ENGINEER})
MODEL = frozenset({Role.MANAGER, Role.ENGINEER})  # pre-label, train, activate model versions

User = AbstractBaseUser | AnonymousUser


def project_role(*, user: User, project_id: int) -> str | None:
    """The user's role in the project, "staff" for staff users, None for non-members."""
    if getattr(user, "is_staff", False):
        return "staff"
    return Membership.objects.filter(project_id=project_id, user_id=user.pk).values_list("role", flat=True).first()


def require_capability(role: str | None, capability: Iterable[str], *, what: str = "project") -> None:
    if role is None:
        raise NotFound(f"No such {what}.")
    if role != "staff" and role not in capability:
        raise Forbidden(f"Your role ({role}) does not allow this.")


def project_for_user(*, user: User, project_id: int, capability: Iterable[str] = VIEW) -> Project:
    """The project if the user may act on it with `capability`; 404 for non-members, 403 for a weaker role."""
    if fast_path():
        row = fetchone_prepared(
            "tandem_project_for_user",
            f"SELECT {columns(Project, 'p')}, m.role FROM annotation_project p "  # noqa: S608 - column names only
            "LEFT JOIN annotation_membership m ON m.project_id = p.id AND m.user_id = %(user)s::integer "
            "WHERE p.id = %(project)s::bigint",
            {"user": user.pk, "project": project_id},
        )
        role = None if row is None else ("staff" if getattr(user, "is_staff", False) else row[-1])
        require_capability(role, capability)
        assert row is not None
        project = load(Project, row[:-1])
        project.user_role = role  # type: ignore[attr-defined]
        return project
    if getattr(user, "is_staff", False):
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise NotFound("No such project.")
        project.user_role = "staff"  # type: ignore[attr-defined]
        return project
    row = Membership.objects.filter(project_id=project_id, user_id=user.pk).select_related("project").first()
    if row is None:
        raise NotFound("No such project.")
    require_capability(row.role, capability)
    row.project.user_role = row.role  # type: ignore[attr-defined]
    return row.project
