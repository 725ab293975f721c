"""Training runs, the model registry and promotion (torch-free orchestration; the fine-tuning itself is
modelsvc/training.py, imported on the worker only).

A run: `train_start` takes the project's single-flight lock with a conditional UPDATE (a second
trigger while one runs returns the running Job and does nothing) and queues `train_run` on `model`.
The run splits the FinalLabels into a fixed training side and a fixed validation side (gold items plus
a seeded, stratified reserve that is never trained on), fine-tunes (warm start from the active
fine-tuned version when its labels match, else the base model), evaluates the candidate AND the active
version on the same validation set, registers the candidate (artifacts under
MODEL_DIR/<project>/<version>/ with the weights' sha256) and promotes it only if it beats the active
version by the configured margin on the configured metric; promotion re-scores the open items.

Failure: any exception, a Celery time limit, or a worker lost mid-run (the redelivered task finds its
Job already running, or the beat check finds its heartbeat stale) fails the Job with the reason,
releases the lock and leaves the previous version active. Nothing is registered before the end.
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.models import FinalLabel, Item, Job, Project
from annotation.models.job import JobKind, JobStatus
from modelsvc.contracts import ModelUnavailable
from modelsvc.models import ModelVersion, TrainedItem, TrainingState, ValidationItem, VersionKind, VersionStatus

logger = logging.getLogger(__name__)

LOST = "The worker running this training was lost (killed or crashed); the previous model version stays active."


# --- the lock ------------------------------------------------------------------------------------


def _state(project_id: int) -> TrainingState:
    state, _ = TrainingState.objects.get_or_create(project_id=project_id)
    return state


def train_start(*, project: Project, user=None, reason: str = "manual") -> Job:
    """Queue a training run unless one holds the project's lock (then that Job is returned)."""
    from modelsvc.tasks import train_task

    _state(project.pk)
    try:
        with transaction.atomic():
            job = Job.objects.create(project=project, kind=JobKind.TRAIN, created_by=user, params={"reason": reason})
            taken = TrainingState.objects.filter(project_id=project.pk, running_job__isnull=True).update(
                running_job=job, heartbeat_at=timezone.now()
            )
            if not taken:
                raise _Busy  # rolls the new Job back
            transaction.on_commit(lambda: train_task.delay(job.pk))
    except _Busy:
        running = TrainingState.objects.get(project_id=project.pk).running_job
        if running is None:  # released between our UPDATE and this read: try once more
            return train_start(project=project, user=user, reason=reason)
        return running
    return job


class _Busy(Exception):
    pass


def _release(job: Job, *, labels_seen: int | None = None) -> None:
    fields: dict[str, Any] = {"running_job": None, "heartbeat_at": None}
    if labels_seen is not None:
        fields.update(labels_at_last_run=labels_seen, last_run_at=timezone.now())
    TrainingState.objects.filter(project_id=job.project_id, running_job_id=job.pk).update(**fields)


@transaction.atomic  # the Job's end and the lock's release are seen together
def _fail(job: Job, message: str) -> None:
    logger.error("training job %s failed: %s", job.pk, message)
    Job.objects.filter(pk=job.pk, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).update(
        status=JobStatus.FAILED, error=message[:2000], finished_at=timezone.now()
    )
    _release(job)


@transaction.atomic
def _finish(job: Job, result: dict[str, Any], labels_seen: int) -> None:
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED,
        result=result,
        finished_at=timezone.now(),
        progress=Coalesce(F("total"), F("progress")),
    )
    _release(job, labels_seen=labels_seen)


# --- the split -----------------------------------------------------------------------------------


def _target(task_type: str, labels: list[str], value: Any):
    """An annotation value as a training target, or None when it does not fit the labels."""
    index = {name: i for i, name in enumerate(labels)}
    if not isinstance(value, dict):
        return None
    if task_type == "classification":
        return index.get(value.get("label"))
    if task_type == "multilabel":
        names = value.get("labels")
        return [index[n] for n in names if n in index] if isinstance(names, list) else None
    spans = value.get("spans")
    if not isinstance(spans, list):
        return None
    return [(s["start"], s["end"], index[s["label"]]) for s in spans if s.get("label") in index]


def _stratum(task_type: str, target: Any) -> str:
    if task_type == "classification":
        return str(target)
    if task_type == "multilabel":
        return ",".join(map(str, sorted(target)))
    return "spans" if target else "none"


def _seeded(project_id: int, item_id: int) -> str:
    return hashlib.sha256(f"{project_id}:{item_id}".encode()).hexdigest()


def training_split(project: Project) -> tuple[list[tuple[int, str, Any]], list[tuple[int, str, Any]]]:
    """(train, validation) as (item id, text, target). New approved items are assigned for good: per
    stratum (label), in a seeded order, to validation while it holds less than TANDEM_VALIDATION_FRACTION
    of that stratum, else to training. Gold items (with a gold value) are always validation."""
    labels = project.label_names
    finals = dict(FinalLabel.objects.filter(item__project=project).values_list("item_id", "value"))
    gold = dict(
        Item.objects.filter(project=project, is_gold=True, gold_value__isnull=False).values_list("id", "gold_value")
    )
    values = {**finals, **gold}
    texts = dict(Item.objects.filter(pk__in=values.keys()).values_list("id", "data__text"))
    val_ids = set(ValidationItem.objects.filter(project=project).values_list("item_id", flat=True))
    train_ids = set(TrainedItem.objects.filter(project=project).values_list("item_id", flat=True))
    targets = {i: _target(project.task_type, labels, v) for i, v in values.items()}
    strata: dict[str, list[int]] = defaultdict(list)
    for item_id, target in targets.items():
        if target is not None and isinstance(texts.get(item_id), str):
            strata[_stratum(project.task_type, target)].append(item_id)
    new_val, new_train = [], []
    fraction = settings.TANDEM_VALIDATION_FRACTION
    for members in strata.values():
        have_val = sum(1 for i in members if i in val_ids or i in gold)
        for item_id in sorted(members, key=lambda i: _seeded(project.pk, i)):
            if item_id in val_ids or item_id in train_ids or item_id in gold:
                continue
            if have_val < fraction * len(members):
                new_val.append(item_id)
                have_val += 1
            else:
                new_train.append(item_id)
    ValidationItem.objects.bulk_create(
        [ValidationItem(project=project, item_id=i) for i in new_val], ignore_conflicts=True
    )
    TrainedItem.objects.bulk_create([TrainedItem(project=project, item_id=i) for i in new_train], ignore_conflicts=True)
    val_ids |= set(new_val) | set(gold)
    train_ids |= set(new_train)
    usable = {i for members in strata.values() for i in members}
    train = [(i, texts[i], targets[i]) for i in sorted(train_ids & usable - val_ids)]
    validation = [(i, texts[i], targets[i]) for i in sorted(val_ids & usable)]
    return train, validation


# --- evaluation ----------------------------------------------------------------------------------


def evaluate_version(version: ModelVersion, validation: list[tuple[int, str, Any]]) -> dict[str, Any]:
    """Metrics of any version (zero-shot or fine-tuned) on the validation examples."""
    import numpy as np

    from modelsvc import evaluation
    from modelsvc.runtime import get_predictor
    from modelsvc.scoring import decode_spans
    from modelsvc.services import version_spec

    labels = [label["name"] for label in version.labels]
    predictor = get_predictor(version_spec(version))
    raws = predictor.predict([text for _, text, _ in validation])
    if version.task_type == "classification":
        return evaluation.classification_metrics(
            np.stack([r.probabilities for r in raws]), [t for _, _, t in validation], labels
        )
    if version.task_type == "multilabel":
        gold = np.zeros((len(validation), len(labels)), dtype=np.int64)
        for row, (_, _, target) in enumerate(validation):
            gold[row, target] = 1
        return evaluation.multilabel_metrics(np.stack([r.probabilities for r in raws]), gold, labels)
    predicted = [
        [
            (s["start"], s["end"], s["label"])
            for s in decode_spans(r.tags, np.asarray(r.marginals), np.asarray(r.offsets))
        ]
        for r in raws
    ]
    gold_spans = [[(s, e, labels[j]) for s, e, j in target] for _, _, target in validation]
    return evaluation.span_metrics(predicted, gold_spans, labels)


def beats(candidate: dict[str, Any], active: dict[str, Any] | None) -> bool:
    """The candidate beats the active version by more than the margin on the promotion metric; a tie
    exactly at that bar goes to the lower validation log loss. On the few validation items of an early
    round accuracy ties are common (both 5 of 5); without the tie-break a tie would keep the version
    trained on fewer labels, or (promoting every tie) take one that is no better on anything measured."""
    if active is None:
        return True
    metric = settings.TANDEM_PROMOTION_METRIC
    value, bar = float(candidate[metric]), float(active[metric]) + settings.TANDEM_PROMOTION_MARGIN
    if not math.isclose(value, bar, rel_tol=0.0, abs_tol=1e-9):
        return value > bar
    mine, theirs = candidate.get("log_loss"), active.get("log_loss")
    return mine is not None and theirs is not None and float(mine) < float(theirs)


# --- the run -------------------------------------------------------------------------------------


def _heartbeat(job_id: int, project_id: int):
    last = [0.0]

    def beat(step: int, total: int) -> None:
        now = timezone.now()
        if now.timestamp() - last[0] < 1.0 and step < total:
            return
        last[0] = now.timestamp()
        TrainingState.objects.filter(project_id=project_id, running_job_id=job_id).update(heartbeat_at=now)
        Job.objects.filter(pk=job_id).update(progress=step, total=total)

    return beat


def train_run(*, job_id: int) -> None:
    """The training run of a Job (see the module docstring). A redelivered message for a Job that is
    already running means the worker that ran it was lost: the run is failed, not repeated."""
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    job = Job.objects.select_related("project").filter(pk=job_id).first()
    if job is None or job.is_finished:
        return
    if not claimed:
        _fail(job, LOST)
        return
    try:
        _train(job)
    except ModelUnavailable as exc:
        _fail(job, f"The model could not be loaded: {exc}")
    except Exception as exc:
        from celery.exceptions import SoftTimeLimitExceeded

        if isinstance(exc, SoftTimeLimitExceeded):
            _fail(
                job,
                f"Training ran past its time limit ({settings.TANDEM_TRAIN_TASK_TIME_LIMIT} s); the previous version stays active.",
            )
        else:
            logger.exception("training job %s failed", job.pk)
            _fail(job, f"Training failed: {type(exc).__name__}: {exc}")


def _train(job: Job) -> None:
    from modelsvc.services import version_activate, version_ensure_active
    from modelsvc.training import Example, TrainConfig, train

    project = job.project
    train_rows, validation = training_split(project)
    labels_seen = FinalLabel.objects.filter(item__project=project).count()
    if len(train_rows) < settings.TANDEM_TRAIN_MIN_LABELS or len(validation) < 2:
        _finish(
            job,
            {
                "skipped": f"needs at least {settings.TANDEM_TRAIN_MIN_LABELS} training and 2 validation labels "
                f"(has {len(train_rows)} and {len(validation)})",
                "n_train": len(train_rows),
                "n_validation": len(validation),
            },
            labels_seen,
        )
        return
    active = version_ensure_active(project)
    labels = project.label_names
    same_labels = [label["name"] for label in active.labels] == labels and active.task_type == project.task_type
    warm = active.artifact_path if active.kind == VersionKind.FINE_TUNED and same_labels else None
    staging = Path(settings.MODEL_DIR) / str(project.pk) / f"staging-job-{job.pk}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        config = TrainConfig(
            task_type=project.task_type,
            labels=labels,
            base_path=settings.TANDEM_MODEL or None,
            warm_start_path=warm,
            max_epochs=settings.TANDEM_TRAIN_MAX_EPOCHS,
            batch_size=settings.TANDEM_TRAIN_BATCH_SIZE,
            learning_rate=settings.TANDEM_TRAIN_LEARNING_RATE,
            seed=settings.TANDEM_TRAIN_SEED,
            patience=settings.TANDEM_TRAIN_PATIENCE,
            max_length=settings.TANDEM_TRAIN_MAX_LENGTH,
            time_limit_s=settings.TANDEM_TRAIN_TIME_LIMIT,
            cpu_threads=settings.TANDEM_CPU_THREADS or None,
            freeze_word_embeddings=settings.TANDEM_TRAIN_FREEZE_EMBEDDINGS,
        )
        result = train(
            config,
            [Example(text, target) for _, text, target in train_rows],
            [Example(text, target) for _, text, target in validation],
            staging,
            heartbeat=_heartbeat(job.pk, project.pk),
        )
        with transaction.atomic():
            Project.objects.select_for_update().filter(pk=project.pk).first()
            if not Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).exists():
                return  # failed meanwhile (stale heartbeat): register nothing
            number = (
                ModelVersion.objects.filter(project=project)
                .order_by("-version")
                .values_list("version", flat=True)
                .first()
                or 0
            ) + 1
            final_dir = Path(settings.MODEL_DIR) / str(project.pk) / str(number)
            shutil.rmtree(final_dir, ignore_errors=True)
            staging.rename(final_dir)
            candidate = ModelVersion.objects.create(
                project=project,
                version=number,
                kind=VersionKind.FINE_TUNED,
                base_model=active.base_model
                if active.kind == VersionKind.FINE_TUNED
                else (settings.TANDEM_MODEL or "all-MiniLM-L6-v2"),
                labels=_labels(project),
                task_type=project.task_type,
                artifact_path=str(final_dir),
                sha256=result.sha256,
                status=VersionStatus.CANDIDATE,
            )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    candidate_metrics = evaluate_version(candidate, validation)
    # the active version on the same validation set (a version for other labels cannot be compared: it loses)
    active_metrics = evaluate_version(active, validation) if same_labels else None
    promoted = beats(candidate_metrics, active_metrics)
    compared = {k: active_metrics.get(k) for k in ("accuracy", "macro_f1", "log_loss")} if active_metrics else {}
    candidate.metrics = {
        **candidate_metrics,
        "n_train": len(train_rows),
        "n_validation": len(validation),
        "temperature": result.temperature,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "stopped": result.stopped,
        "history": result.history,
        "compared_with": {"version": active.version, **compared},
        "promotion_metric": settings.TANDEM_PROMOTION_METRIC,
    }
    candidate.save(update_fields=["metrics"])
    if active_metrics and (not active.metrics or active.kind == VersionKind.ZERO_SHOT):
        ModelVersion.objects.filter(pk=active.pk).update(
            metrics={**active_metrics, "n_validation": len(validation), "n_train": 0}
        )
    if promoted:
        version_activate(version=candidate, user=job.created_by)
    _finish(
        job,
        {
            "version": candidate.version,
            "promoted": promoted,
            "metric": settings.TANDEM_PROMOTION_METRIC,
            "candidate": {k: candidate_metrics.get(k) for k in ("accuracy", "macro_f1", "log_loss")},
            "n_validation": len(validation),
            "temperature": result.temperature,
            "active": {"version": active.version, **compared},
        },
        labels_seen,
    )
    prune_artifacts(project)


def _labels(project: Project) -> list[dict[str, str]]:
    return [{"name": label["name"], "description": label.get("description", "")} for label in project.labels]


def prune_artifacts(project: Project) -> list[int]:
    """Delete the artifacts of retired and unpromoted versions beyond the newest TANDEM_MODEL_RETENTION
    (the rows stay, with their metrics; an artifact-less version cannot be activated again)."""
    keep = settings.TANDEM_MODEL_RETENTION
    old = list(
        ModelVersion.objects.filter(project=project, kind=VersionKind.FINE_TUNED)
        .exclude(status=VersionStatus.ACTIVE)
        .exclude(artifact_path="")
        .order_by("-version")[keep:]
    )
    for version in old:
        shutil.rmtree(version.artifact_path, ignore_errors=True)
        ModelVersion.objects.filter(pk=version.pk).update(artifact_path="")
    return [v.version for v in old]


# --- triggers ------------------------------------------------------------------------------------


def training_check() -> dict[str, list[int]]:
    """Beat, every minute: fail runs whose heartbeat went stale (worker lost) and start a run for each
    project with at least `min_new_labels` new approved labels since its last run."""
    stale_before = timezone.now() - timedelta(seconds=settings.TANDEM_TRAIN_STALE_SECONDS)
    reaped = []
    for state in TrainingState.objects.filter(running_job__isnull=False, heartbeat_at__lt=stale_before).select_related(
        "running_job"
    ):
        _fail(state.running_job, LOST)
        reaped.append(state.project_id)
    # two queries for all projects: approved labels per project, and each project's training state
    counts = dict(
        FinalLabel.objects.values("item__project_id").annotate(n=Count("id")).values_list("item__project_id", "n")
    )
    states = {s.project_id: s for s in TrainingState.objects.filter(project_id__in=counts)}
    started = []
    for project in Project.objects.filter(pk__in=counts).only("id", "min_new_labels"):
        state = states.get(project.pk)
        if state is not None and state.running_job_id:
            continue
        new = counts[project.pk] - (state.labels_at_last_run if state else 0)
        if new >= project.min_new_labels:
            train_start(project=project, reason=f"{new} new approved labels")
            started.append(project.pk)
    return {"reaped": reaped, "started": started}


def schedule_get(project: Project) -> dict[str, Any]:
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


def _schedule_name(project: Project) -> str:
    return f"tandem: train project {project.pk}"


@transaction.atomic
def schedule_set(project: Project, *, every_minutes: int | None = None, cron: str | None = None, enabled: bool = True):
    """A django-celery-beat PeriodicTask per project (interval or cron), editable in the admin too."""
    import json

    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    name = _schedule_name(project)
    if not enabled:
        PeriodicTask.objects.filter(name=name).delete()
        return schedule_get(project)
    fields: dict[str, Any] = {
        "task": "modelsvc.tasks.train_scheduled_task",
        "args": json.dumps([project.pk]),
        "enabled": True,
    }
    if every_minutes is not None:
        interval, _ = IntervalSchedule.objects.get_or_create(every=every_minutes, period=IntervalSchedule.MINUTES)
        fields.update(interval=interval, crontab=None)
    else:
        minute, hour, dom, month, dow = cron.split()
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow, timezone="UTC"
        )
        fields.update(crontab=crontab, interval=None)
    PeriodicTask.objects.update_or_create(name=name, defaults=fields)
    return schedule_get(project)
