"""Create the admin user named by DJANGO_SUPERUSER_USERNAME / DJANGO_SUPERUSER_PASSWORD if it does not exist."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the admin user from DJANGO_SUPERUSER_USERNAME / DJANGO_SUPERUSER_PASSWORD unless it exists."

    def handle(self, *args, **options):
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        if not username or not password:
            raise CommandError("Set DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD.")
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"admin user '{username}' exists")
            return
        User.objects.create_superuser(
            username=username, password=password, email=os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
        )
        self.stdout.write(f"created admin user '{username}'")
