"""Import a JSON / JSONL / CSV file into a project right here (no worker needed): the CLI twin of POST /import."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from annotation.services.importing import import_file


class Command(BaseCommand):
    help = "Import items from a .json, .jsonl or .csv file into a project."

    def add_arguments(self, parser):
        parser.add_argument("project_id", type=int)
        parser.add_argument("path", type=Path)
        parser.add_argument("--on-error", choices=["reject", "skip"], default="reject")

    def handle(self, *args, project_id: int, path: Path, on_error: str, **options):
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"No project {project_id}.")
        if not path.is_file():
            raise CommandError(f"No file at {path}.")
        job = import_file(project=project, user=None, path=path, on_error=on_error)
        self.stdout.write(json.dumps({"job": job.pk, "status": job.status, "error": job.error, "result": job.result}))
        if job.status != "succeeded":
            raise CommandError(job.error)
