"""Test settings: real PostgreSQL and Redis by default (override with DATABASE_URL / CELERY_BROKER_URL)."""

import os
import tempfile

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tandem")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-0123456789-abcdefghijklmnop")
os.environ.setdefault("TANDEM_MODEL_BACKEND", "fake")  # unit tests; integration tests set hf for their worker
os.environ.setdefault("TANDEM_PRELABEL_ON_IMPORT", "false")  # tests that need it turn it on
os.environ.setdefault("TANDEM_VAR_DIR", os.path.join(tempfile.gettempdir(), "tandem-tests"))

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
os.makedirs(STATIC_ROOT, exist_ok=True)  # noqa: F405 - whitenoise warns about a missing directory
