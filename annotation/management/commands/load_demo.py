"""Load the demo project: 500 SMS messages (UCI SMS Spam Collection, see annotation/demo/) to label ham / spam."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from annotation.services.importing import import_file
from annotation.services.projects import project_create

DEMO_FILE = Path(__file__).resolve().parents[2] / "demo" / "sms_spam_demo.jsonl"
DEMO_NAME = "SMS spam (demo)"
GUIDELINES = """\
# Is this SMS spam?

* **spam**: unsolicited advertising, prize or lottery claims, premium-rate numbers, phishing.
* **ham**: everything else, including messages between friends and legitimate service notices.

Press **1** for ham, **2** for spam, **Enter** to submit, **S** to skip.
"""


class Command(BaseCommand):
    help = "Create the demo project (idempotent) with the admin user as its manager."

    def add_arguments(self, parser):
        parser.add_argument("--owner", default=None, help="username of the manager (default: the first superuser)")

    def handle(self, *args, owner: str | None, **options):
        User = get_user_model()
        user = (
            User.objects.filter(username=owner).first()
            if owner
            else User.objects.filter(is_superuser=True).order_by("id").first()
        )
        if user is None:
            raise CommandError("No owner: create the admin user first (manage.py ensure_admin).")
        project = Project.objects.filter(name=DEMO_NAME).first()
        if project is None:
            project = project_create(
                created_by=user,
                name=DEMO_NAME,
                description="Label 500 real SMS messages as ham or spam.",
                task_type="classification",
                labels=[
                    {"name": "ham", "description": "A normal message."},
                    {"name": "spam", "description": "Unsolicited advertising, prizes, phishing."},
                ],
                guidelines=GUIDELINES,
            )
        job = import_file(project=project, user=user, path=DEMO_FILE)
        if job.status != "succeeded":
            raise CommandError(f"demo import failed: {job.error}")
        result = job.result or {}
        self.stdout.write(
            f"demo project {project.pk} '{DEMO_NAME}': {result.get('created')} new items, "
            f"{result.get('duplicates')} already there"
        )
