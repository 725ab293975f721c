"""The Celery app: `celery -A config worker -Q default,model` runs everything, `celery -A config beat` schedules."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

if os.environ.get("CELERY_BROKER_URL", "sqla+").startswith("sqla+"):
    # The embedded SQLite broker polls; kombu passes broker_transport_options to SQLAlchemy's
    # create_engine(), so the interval is set on the transport class (1 s by default -> 0.1 s).
    from kombu.transport import sqlalchemy as kombu_sqlalchemy

    kombu_sqlalchemy.Transport.polling_interval = 0.1

app = Celery("tandem")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
