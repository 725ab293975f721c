"""Write a snapshot's file on the command line: the CLI twin of GET /api/snapshots/{id}/download (the same
format_ensure), optionally creating and building the snapshot first, right here (no worker needed).

    manage.py export_snapshot 12 --format parquet --out train.parquet
    manage.py export_snapshot --project 3 --name v1 --split '{"train": 0.9, "validation": 0, "test": 0.1}' \\
        --format hf --out v1.tar

A summary goes to stderr as JSON, so `--out -` can put the file itself on stdout.
"""

from __future__ import annotations

import json
import shutil
from typing import Any, BinaryIO

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from annotation.datasets.formats import CARD, FORMATS, format_ensure
from annotation.exceptions import ApplicationError
from annotation.models import Project, Snapshot
from annotation.models.snapshot import SnapshotStatus


def _json_arg(value: str | None, name: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--{name} is not JSON: {exc}") from None


class Command(BaseCommand):
    help = "Write a snapshot's file in one format (building a new snapshot first with --project and --name)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("snapshot_id", type=int, nargs="?", help="an existing snapshot")
        parser.add_argument("--project", type=int, help="build a new snapshot of this project")
        parser.add_argument("--name", help="the new snapshot's name")
        parser.add_argument("--filters", help='the filters as JSON, e.g. \'{"status": ["approved"]}\'')
        parser.add_argument("--split", help='the split as JSON, e.g. \'{"train": 0.8, "validation": 0.1, ...}\'')
        parser.add_argument("--pseudonymize", action="store_true", help="annotator names as stable pseudonyms")
        parser.add_argument("--user", help="the username recorded as the new snapshot's creator")
        parser.add_argument("--format", default="jsonl", choices=[*FORMATS, CARD])
        parser.add_argument("--out", required=True, help="the file to write; - for stdout")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["snapshot_id"] is not None:
            if options["project"] is not None:
                raise CommandError("Give a snapshot id or --project and --name, not both.")
            snapshot = Snapshot.objects.select_related("project").filter(pk=options["snapshot_id"]).first()
            if snapshot is None:
                raise CommandError(f"No snapshot {options['snapshot_id']}.")
        elif options["project"] is not None and options["name"]:
            snapshot = self._build(options)
        else:
            raise CommandError("Give a snapshot id, or --project and --name to build a new snapshot.")

        if snapshot.status == SnapshotStatus.BUILDING:
            raise CommandError(f"Snapshot {snapshot.pk} is still being built.")
        if snapshot.status == SnapshotStatus.FAILED:
            raise CommandError(f"Snapshot {snapshot.pk} failed: {snapshot.error}")
        fmt = options["format"]
        try:
            path = format_ensure(snapshot, fmt)
        except ApplicationError as exc:
            raise CommandError(f"{exc.detail} {json.dumps(exc.errors, ensure_ascii=False)}") from None

        out = options["out"]
        with path.open("rb") as source:
            if out == "-":
                raw: Any = self.stdout._out  # the stream under Django's text wrapper
                stream: BinaryIO = getattr(raw, "buffer", raw)  # sys.stdout's bytes (or a test's BytesIO)
                shutil.copyfileobj(source, stream)
                stream.flush()
            else:
                with open(out, "wb") as target:
                    shutil.copyfileobj(source, target)
        entry = snapshot.formats[fmt]
        summary = {
            "snapshot": snapshot.pk,
            "rows": snapshot.rows,
            "splits": snapshot.splits,
            "sha256": snapshot.sha256,
            "format": fmt,
            "bytes": entry["bytes"],
            "file_sha256": entry["sha256"],
            "out": out,
        }
        self.stderr.write(json.dumps(summary, ensure_ascii=False))

    def _build(self, options: dict[str, Any]) -> Snapshot:
        """Create the snapshot and build it in this process (no task is queued: no worker builds it too)."""
        from annotation.datasets.build import snapshot_build, snapshot_create

        project = Project.objects.filter(pk=options["project"]).first()
        if project is None:
            raise CommandError(f"No project {options['project']}.")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user {options['user']}.")
        body: dict[str, Any] = {"name": options["name"], "pseudonymize": options["pseudonymize"]}
        for key in ("filters", "split"):
            value = _json_arg(options[key], key)
            if value is not None:
                body[key] = value

        try:
            with transaction.atomic():
                _, job = snapshot_create(project=project, user=user, body=body, queue=False)
        except ApplicationError as exc:
            raise CommandError(f"{exc.detail} {json.dumps(exc.errors, ensure_ascii=False)}") from None
        built = snapshot_build(job_id=job.pk)
        if built is None:
            raise CommandError("The snapshot's build did not run.")
        return built
