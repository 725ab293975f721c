from __future__ import annotations

import pytest

from config.celery import app


@pytest.fixture
def eager_tasks(settings):
    """Run Celery tasks in-process (unit tests only; integration tests use a real worker)."""
    settings.TANDEM_MODEL_BACKEND = "fake"
    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous
