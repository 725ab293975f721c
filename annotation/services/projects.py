"""Creating and changing projects, their labels and their members."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from annotation.exceptions import Conflict, InvalidInput, NotFound
from annotation.models import Assignment, FinalLabel, Item, Membership, Project
from annotation.models.item import QUEUE_STATUSES, ItemStatus
from annotation.models.project import Role

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
# 1-9 first, then letters that the labeling page does not use for its own keys (S skip, U undo)
HOTKEYS = [str(i) for i in range(1, 10)] + [c for c in "abcdefghijklmnopqrtvwxyz"]
RESERVED_KEYS = {"s", "u", "?"}
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_LABELS = 500

PROJECT_FIELDS = (
    "name",
    "description",
    "task_type",
    "labels",
    "guidelines",
    "annotations_per_item",
    "review_policy",
    "review_sample_rate",
    "gold_rate",
    "sampling",
    "uncertainty_measure",
    "exploration_rate",
    "min_new_labels",
    "gold_pause_below",
    "gold_pause_min",
    "max_rejections",
    "reviewers_may_review_own",
    "preselect_min_confidence",
    "license",
)


def labels_normalize(raw: Any) -> list[dict[str, str]]:
    """Validate a label list (strings or {"name", "hotkey"?, "color"?, "description"?}) and fill defaults.

    Hotkeys default to 1-9 then free letters in label order; colors come from a palette.
    """
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(
            "A project needs a non-empty list of labels.", [{"field": "labels", "message": "Give at least one label."}]
        )
    if len(raw) > MAX_LABELS:
        raise InvalidInput(
            f"At most {MAX_LABELS} labels.", [{"field": "labels", "message": f"At most {MAX_LABELS} labels."}]
        )
    errors: list[dict[str, Any]] = []
    labels: list[dict[str, str]] = []
    for i, entry in enumerate(raw):
        where = f"labels[{i}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict):
            errors.append({"field": where, "message": "A label is a string or an object with a name."})
            continue
        unknown = set(entry) - {"name", "hotkey", "color", "description"}
        if unknown:
            errors.append({"field": where, "message": f"Unknown keys: {', '.join(sorted(unknown))}."})
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 100 or "\x00" in name:
            errors.append({"field": f"{where}.name", "message": "A non-empty string of at most 100 characters."})
            continue
        label = {"name": name.strip()}
        hotkey = entry.get("hotkey")
        if hotkey not in (None, ""):
            if not isinstance(hotkey, str) or len(hotkey) != 1 or not hotkey.isalnum():
                errors.append({"field": f"{where}.hotkey", "message": "One letter or digit."})
            elif hotkey.lower() in RESERVED_KEYS:
                errors.append(
                    {"field": f"{where}.hotkey", "message": f"'{hotkey}' is reserved (S skip, U undo, ? help)."}
                )
            else:
                label["hotkey"] = hotkey.lower()
        color = entry.get("color")
        if color not in (None, ""):
            if not isinstance(color, str) or not COLOR_RE.match(color):
                errors.append({"field": f"{where}.color", "message": "A color like #1f77b4."})
            else:
                label["color"] = color
        description = entry.get("description")
        if description not in (None, ""):
            if not isinstance(description, str) or len(description) > 2000:
                errors.append({"field": f"{where}.description", "message": "A string of at most 2000 characters."})
            else:
                label["description"] = description
        labels.append(label)
    names = [label["name"] for label in labels]
    for i, name in enumerate(names):
        if name in names[:i]:
            errors.append({"field": f"labels[{i}].name", "message": f"Duplicate label name '{name}'."})
    used = [label["hotkey"] for label in labels if "hotkey" in label]
    for key in set(used):
        if used.count(key) > 1:
            errors.append({"field": "labels", "message": f"Hotkey '{key}' is used twice."})
    if errors:
        raise InvalidInput("Invalid labels.", errors)
    free = iter(k for k in HOTKEYS if k not in used)
    for i, label in enumerate(labels):
        label.setdefault("hotkey", next(free, ""))
        label.setdefault("color", PALETTE[i % len(PALETTE)])
        if not label["hotkey"]:
            del label["hotkey"]
    return labels


def license_normalize(raw: Any) -> str:
    """The data's license as the dataset cards state it (e.g. "cc-by-4.0"; "" = not stated): one line of at most
    200 characters, since it goes into the cards' YAML header."""
    if raw is None:
        return ""
    if not isinstance(raw, str) or len(raw.strip()) > 200 or any(c < " " or c == "\x7f" for c in raw.strip()):
        raise InvalidInput(
            "Invalid license.",
            [
                {
                    "field": "license",
                    "message": "One line of at most 200 characters, e.g. cc-by-4.0 (empty: not stated).",
                }
            ],
        )
    return raw.strip()


def _apply(project: Project, fields: dict[str, Any]) -> list[str]:
    changed = []
    for name, value in fields.items():
        if name not in PROJECT_FIELDS:
            continue
        if name == "labels":
            value = labels_normalize(value)
        elif name == "license":
            value = license_normalize(value)
        setattr(project, name, value)
        changed.append(name)
    return changed


@transaction.atomic
def project_create(*, created_by, **fields: Any) -> Project:
    """Create a project; its creator becomes its manager."""
    project = Project(created_by=created_by)
    _apply(project, fields)
    if "labels" not in fields:
        raise InvalidInput("A project needs labels.", [{"field": "labels", "message": "This field is required."}])
    project.full_clean()
    project.save()
    if created_by is not None:
        Membership.objects.create(project=project, user=created_by, role=Role.MANAGER)
    return project


@transaction.atomic
def project_update(*, project: Project, **fields: Any) -> Project:
    """Change a project's settings. Removing or renaming a label that annotations use is refused (409)."""
    project = Project.objects.select_for_update().get(pk=project.pk)
    old_names = set(project.label_names)
    old_k = project.annotations_per_item
    old_type = project.task_type
    changed = _apply(project, fields)
    if not changed:
        return project
    project.full_clean()
    # annotations, and final labels without any (gold values, imported labels), hold label names of this task type
    has_annotations = (
        Item.objects.filter(project=project, annotation_count__gt=0).exists()
        or FinalLabel.objects.filter(item__project=project).exists()
    )
    if has_annotations and project.task_type != old_type:
        raise Conflict(
            "The task type cannot change once items are annotated or labeled.",
            [{"field": "task_type", "message": "Items are already annotated or labeled."}],
        )
    removed = old_names - set(project.label_names)
    if removed and has_annotations:
        raise Conflict(
            "Labels in use cannot be removed or renamed once items are annotated or labeled.",
            [{"field": "labels", "message": f"Missing: {', '.join(sorted(removed))}."}],
        )
    project.save(update_fields=[*changed, "updated_at"])
    if project.annotations_per_item != old_k:
        _requeue_for_overlap(project)
    return project


def _requeue_for_overlap(project: Project) -> None:
    """After k changed: items short of k go back to the queue; queued items that now have k are decided."""
    from annotation.models import FinalLabel
    from annotation.services.submitting import item_decide

    k = project.annotations_per_item
    items = Item.objects.filter(project=project)
    # an item awaiting adjudication stays there: reviewers rejected it (max_rejections) or nobody is left to label it
    reopen = items.filter(annotation_count__lt=k, annotation_count__gt=0, adjudication=False).filter(
        Q(status=ItemStatus.IN_REVIEW) | Q(status=ItemStatus.APPROVED, final_label__source="consensus")
    )
    reopen_ids = list(reopen.values_list("id", flat=True))
    if reopen_ids:
        FinalLabel.objects.filter(item_id__in=reopen_ids, source="consensus").delete()
        Item.objects.filter(id__in=reopen_ids).update(status=ItemStatus.IN_PROGRESS)
    for item in items.filter(status__in=QUEUE_STATUSES, annotation_count__gte=k).select_for_update():
        item_decide(item=item, project=project)
        if item.lease_count:  # decided while leased: its leases hold no slot any more
            Assignment.objects.filter(item_id=item.pk).delete()
            Item.objects.filter(pk=item.pk).update(lease_count=0, lease_expires_at=None)


def project_delete(*, project: Project) -> None:
    project.delete()


@transaction.atomic
def membership_set(*, project: Project, username: str, role: str) -> Membership:
    """Add a member or change their role (idempotent)."""
    if role not in Role.values:
        raise InvalidInput("Unknown role.", [{"field": "role", "message": f"One of {', '.join(Role.values)}."}])
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise InvalidInput("No such user.", [{"field": "username", "message": f"No user named '{username}'."}])
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership


def membership_remove(*, project: Project, user_id: int) -> None:
    deleted, _ = Membership.objects.filter(project=project, user_id=user_id).delete()
    if not deleted:
        raise NotFound("No such member.")
