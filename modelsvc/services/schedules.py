"""Per-project training schedules: one django-celery-beat PeriodicTask per project (an interval or a
cron expression), so operators can also see and edit them in the Django admin. Each run goes through
`train_start`, so a scheduled run while another runs does nothing."""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction

from annotation.models import Project

SCHEDULED_TASK = "modelsvc.tasks.train_scheduled_task"


def _schedule_name(project: Project) -> str:
    return f"tandem: train project {project.pk}"


def schedule_get(project: Project) -> dict[str, Any]:
    """{"enabled", "every_minutes", "cron"} of the project's training schedule."""
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.filter(name=_schedule_name(project)).select_related("interval", "crontab").first()
    if task is None:
        return {"enabled": False, "every_minutes": None, "cron": None}
    cron = None
    if task.crontab is not None:
        c = task.crontab
        cron = f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"
    minutes = None
    if task.interval is not None:
        minutes = task.interval.every if task.interval.period == "minutes" else None
    return {"enabled": task.enabled, "every_minutes": minutes, "cron": cron}


@transaction.atomic
def schedule_set(
    project: Project, *, every_minutes: int | None = None, cron: str | None = None, enabled: bool = True
) -> dict[str, Any]:
    """Set (or, with enabled=False, remove) the project's schedule: every `every_minutes`, or at `cron`
    (five fields, UTC; validated by the caller). Returns it as `schedule_get` does."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    name = _schedule_name(project)
    if not enabled:
        PeriodicTask.objects.filter(name=name).delete()
        return schedule_get(project)
    fields: dict[str, Any] = {"task": SCHEDULED_TASK, "args": json.dumps([project.pk]), "enabled": True}
    if every_minutes is not None:
        interval, _ = IntervalSchedule.objects.get_or_create(every=every_minutes, period=IntervalSchedule.MINUTES)
        fields.update(interval=interval, crontab=None)
    else:
        assert cron is not None  # the API's input serializer requires one of the two
        minute, hour, dom, month, dow = cron.split()
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow, timezone="UTC"
        )
        fields.update(crontab=crontab, interval=None)
    PeriodicTask.objects.update_or_create(name=name, defaults=fields)
    return schedule_get(project)
