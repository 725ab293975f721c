"""The Celery app: `celery -A config worker -Q default,model` runs everything, `celery -A config beat` schedules.

The broker is Redis (compose, CI, production) or, in the quick start, the embedded Valkey that
scripts/embedded.py starts (`redis+socket://` on its Unix socket): one transport, Celery's Redis one, everywhere."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tandem")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
