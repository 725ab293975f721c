"""Where a snapshot's files live, the canonical rows read back, and who may see a snapshot."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings

from annotation.access import Capability, access_decide
from annotation.exceptions import NotFound
from annotation.models import Snapshot

CANONICAL_NAME = "data.jsonl"


def snapshot_dir(snapshot: Snapshot) -> Path:
    """The snapshot's directory under TANDEM_SNAPSHOT_DIR (shared by web replicas and workers)."""
    return Path(settings.TANDEM_SNAPSHOT_DIR) / str(snapshot.pk)


def snapshot_files_remove(sender: Any, instance: Snapshot, **kwargs: Any) -> None:
    """post_delete of a Snapshot: its directory goes once the deletion commits (a rolled-back delete keeps it)."""
    import shutil

    from django.db import transaction

    folder = snapshot_dir(instance)
    transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))


def canonical_path(snapshot: Snapshot) -> Path:
    """The canonical content: data.jsonl, whose bytes snapshot.sha256 is the hash of."""
    return snapshot_dir(snapshot) / CANONICAL_NAME


def rows_read(snapshot: Snapshot) -> Iterator[dict[str, Any]]:
    """The snapshot's canonical rows, one at a time, in file order (by item id): constant memory."""
    with canonical_path(snapshot).open("rb") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def snapshot_for_user(*, user: Any, snapshot_id: int | str, capability: Capability = Capability.EXPORT) -> Snapshot:
    """The snapshot (with its project loaded), `capability` required in its project: 404 for an unknown snapshot
    or a non-member, 403 for a member whose role lacks it (annotation/access.py decides)."""
    snapshot = Snapshot.objects.select_related("project").filter(pk=snapshot_id).first()
    if snapshot is None:
        raise NotFound("No such snapshot.")
    member_role = snapshot.project.memberships.filter(user_id=user.pk).values_list("role", flat=True).first()
    access_decide(user=user, project=snapshot.project, member_role=member_role, capability=capability, what="snapshot")
    return snapshot
