"""Training runs (torch-free orchestration; the fine-tuning itself is modelsvc/training.py, imported on
the worker only).

`train_start` takes the project's single-flight lock with a conditional UPDATE (a second trigger while
one runs returns the running Job and does nothing) and queues `train_run` on `model`. A run goes
split -> train -> evaluate -> register and promote:

1. split: the fixed training and validation sides of the approved labels (modelsvc.splits);
2. train: fine-tune into a staging directory (warm start from the active fine-tuned version when its
   labels match, else the base model);
3. evaluate: the staged candidate AND the active version on the same validation set;
4. register and promote, in one transaction with the Job's end: the candidate becomes a ModelVersion
   (artifact under MODEL_DIR/<project>/<version>/), promoted if modelsvc.promotion says it beats the
   active version, which re-scores the open items.

Failure: any exception, a Celery time limit, or a worker lost mid-run (the redelivered task finds its
Job already running, or the beat check finds its heartbeat stale) fails the Job with the reason,
releases the lock and leaves the previous version active. Nothing is registered before step 4, so a
failed run leaves no candidate behind.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from annotation.models import FinalLabel, Job, Project
from annotation.models.job import JobKind, JobStatus
from annotation.services.jobs import job_claim, job_fail, job_failure_text, job_progress, job_succeed
from modelsvc.contracts import ModelUnavailable
from modelsvc.models import ModelVersion, TrainingState, VersionKind
from modelsvc.promotion import beats
from modelsvc.services.prelabel import prelabel_rescore
from modelsvc.services.versions import (
    PACKAGED_MODEL,
    label_spec,
    version_artifacts_prune,
    version_ensure_active,
    version_fits,
    version_predictor,
    version_register,
)
from modelsvc.splits import LabeledRow, training_split
from modelsvc.tasks import train_task

if TYPE_CHECKING:
    from modelsvc.training import TrainResult

logger = logging.getLogger(__name__)

LOST = "The worker running this training was lost (killed or crashed); the previous model version stays active."
COMPARED = ("accuracy", "macro_f1", "log_loss")  # the metrics a run's result and a candidate's record compare


# --- the lock ------------------------------------------------------------------------------------


class _Busy(Exception):
    pass


def train_start(*, project: Project, user: Any = None, reason: str = "manual") -> Job:
    """Queue a training run unless one holds the project's lock (then that Job is returned)."""
    TrainingState.objects.get_or_create(project_id=project.pk)
    try:
        with transaction.atomic():
            job = Job.objects.create(project=project, kind=JobKind.TRAIN, created_by=user, params={"reason": reason})
            taken = TrainingState.objects.filter(project_id=project.pk, running_job__isnull=True).update(
                running_job=job, heartbeat_at=timezone.now()
            )
            if not taken:
                raise _Busy  # rolls the new Job back
            train_task.delay_on_commit(job.pk)
    except _Busy:
        running = TrainingState.objects.get(project_id=project.pk).running_job
        if running is None:  # released between our UPDATE and this read: try once more
            return train_start(project=project, user=user, reason=reason)
        return running
    return job


def _release(job_id: int, *, labels_seen: int | None = None) -> None:
    fields: dict[str, Any] = {"running_job": None, "heartbeat_at": None}
    if labels_seen is not None:
        fields.update(labels_at_last_run=labels_seen, last_run_at=timezone.now())
    TrainingState.objects.filter(running_job_id=job_id).update(**fields)


@transaction.atomic  # the Job's end and the lock's release are seen together
def train_fail(*, job_id: int, error: str) -> None:
    """Fail a training Job and release its project's lock; the active version stays."""
    job_fail(job_id=job_id, error=error)
    _release(job_id)


@transaction.atomic
def _succeed(job: Job, result: dict[str, Any], labels_seen: int) -> None:
    if not job_succeed(job_id=job.pk, result=result):
        raise RuntimeError(f"training Job {job.pk} is no longer running")  # rolls the registration back
    _release(job.pk, labels_seen=labels_seen)


# --- the run -------------------------------------------------------------------------------------


def train_run(*, job_id: int) -> None:
    """The training run of a Job (see the module docstring). A redelivered message for a Job that is
    already running means the worker that ran it was lost: the run is failed, not repeated."""
    job = job_claim(job_id=job_id, kind=JobKind.TRAIN)
    if job is None:
        if Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).exists():
            train_fail(job_id=job_id, error=LOST)
        return
    try:
        _train(job)
    except ModelUnavailable as exc:
        train_fail(job_id=job.pk, error=f"The model could not be loaded: {exc}")
    except Exception as exc:
        logger.exception("training job %s failed", job.pk)
        train_fail(
            job_id=job.pk, error=f"{job_failure_text(exc, doing='Training')} The previous model version stays active."
        )


@dataclass
class _Evaluated:
    result: TrainResult
    metrics: dict[str, Any]  # the candidate's
    active_metrics: dict[str, Any] | None  # the active version's on the same set; None: not comparable


def _train(job: Job) -> None:
    project = job.project
    train_rows, validation = training_split(project)
    labels_seen = FinalLabel.objects.filter(item__project=project).count()
    if len(train_rows) < settings.TANDEM_TRAIN_MIN_LABELS or len(validation) < 2:
        _succeed(
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
    comparable = version_fits(active, project)
    staging = Path(settings.MODEL_DIR) / str(project.pk) / f"staging-job-{job.pk}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        result = _fine_tune(job, project, active if comparable else None, train_rows, validation, staging)
        evaluated = _evaluate(job.pk, project, result, staging, active if comparable else None, validation)
        candidate = _register_and_promote(job, project, active, staging, evaluated, len(train_rows), labels_seen)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if candidate is not None:
        version_artifacts_prune(project)


def _fine_tune(
    job: Job,
    project: Project,
    warm: ModelVersion | None,
    train_rows: list[LabeledRow],
    validation: list[LabeledRow],
    staging: Path,
) -> TrainResult:
    """Fine-tune into `staging`, warm-started from `warm` when it is a fine-tuned version for these labels."""
    from modelsvc.training import Example, TrainConfig, train

    config = TrainConfig(
        task_type=project.task_type,
        labels=project.label_names,
        base_path=settings.TANDEM_MODEL or None,
        warm_start_path=warm.artifact_path if warm is not None and warm.kind == VersionKind.FINE_TUNED else None,
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
    return train(
        config,
        [Example(text, target) for _, text, target in train_rows],
        [Example(text, target) for _, text, target in validation],
        staging,
        heartbeat=_heartbeat(job.pk),
    )


def _alive(job_id: int) -> None:
    """Record liveness for the beat check (training_check reaps a run whose heartbeat went stale)."""
    TrainingState.objects.filter(running_job_id=job_id).update(heartbeat_at=timezone.now())


def _heartbeat(job_id: int) -> Callable[[int, int], None]:
    """Record liveness and progress during fine-tuning, at most once a second and at the last step."""
    last = [0.0]

    def beat(step: int, total: int) -> None:
        now = timezone.now().timestamp()
        if now - last[0] < 1.0 and step < total:
            return
        last[0] = now
        _alive(job_id)
        job_progress(job_id=job_id, progress=step, total=total)

    return beat


def evaluate_version(version: ModelVersion, validation: list[LabeledRow], *, cache: bool = True) -> dict[str, Any]:
    """Metrics of a version (zero-shot or fine-tuned) on validation examples; `cache=False` for a model
    evaluated once (a candidate in its staging directory)."""
    from modelsvc.evaluation import evaluate_predictor  # scikit-learn: worker side, like the runtimes

    predictor = version_predictor(version, cache=cache)
    return evaluate_predictor(predictor, version.task_type, version.label_names, validation)


def _evaluate(
    job_id: int,
    project: Project,
    result: TrainResult,
    staging: Path,
    active: ModelVersion | None,
    validation: list[LabeledRow],
) -> _Evaluated:
    """The staged candidate and the active version (when it predicts the same labels) on the same set."""
    # the candidate as version_register will record it, unsaved, its artifact still in staging
    candidate = ModelVersion(
        project=project,
        kind=VersionKind.FINE_TUNED,
        labels=label_spec(project),
        task_type=project.task_type,
        artifact_path=str(staging),
        sha256=result.sha256,
    )
    _alive(job_id)
    metrics = evaluate_version(candidate, validation, cache=False)
    _alive(job_id)
    active_metrics = evaluate_version(active, validation) if active is not None else None
    _alive(job_id)
    return _Evaluated(result, metrics, active_metrics)


def _compared(metrics: dict[str, Any] | None) -> dict[str, Any]:
    return {k: metrics.get(k) for k in COMPARED} if metrics else {}


def _base_model(active: ModelVersion) -> str:
    """What a candidate was fine-tuned from: the active version's base when it warm-started, else the base."""
    return active.base_model if active.kind == VersionKind.FINE_TUNED else (settings.TANDEM_MODEL or PACKAGED_MODEL)


def _candidate_record(evaluated: _Evaluated, n_train: int, active_number: int) -> dict[str, Any]:
    """The candidate's metrics as its ModelVersion keeps them: validation metrics, how it trained, and
    what it was compared with."""
    result = evaluated.result
    return {
        **evaluated.metrics,
        "n_train": n_train,
        "n_validation": evaluated.metrics["n"],
        "temperature": result.temperature,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "stopped": result.stopped,
        "history": result.history,
        "compared_with": {"version": active_number, **_compared(evaluated.active_metrics)},
        "promotion_metric": settings.TANDEM_PROMOTION_METRIC,
    }


def _register_and_promote(
    job: Job,
    project: Project,
    active: ModelVersion,
    staging: Path,
    evaluated: _Evaluated,
    n_train: int,
    labels_seen: int,
) -> ModelVersion | None:
    """Register the evaluated candidate, promote it if it beats the active version, and end the Job: one
    transaction. None when the Job was failed meanwhile (a stale heartbeat): nothing is registered."""
    result, metrics, active_metrics = evaluated.result, evaluated.metrics, evaluated.active_metrics
    n_validation = metrics["n"]
    compared = _compared(active_metrics)
    moved: list[Path] = []  # the artifact directory, once moved into place
    try:
        with transaction.atomic():
            locked = Project.objects.select_for_update().get(pk=project.pk)
            # the Job's row lock, held to the end of this transaction: the beat check cannot fail the Job
            # between this test and its success (its job_fail waits, then finds the Job ended)
            if Job.objects.select_for_update().filter(pk=job.pk, status=JobStatus.RUNNING).first() is None:
                return None
            candidate = version_register(
                project=project,
                staging=staging,
                base_model=_base_model(active),
                sha256=result.sha256,
                metrics=_candidate_record(evaluated, n_train, active.version),
            )
            moved.append(Path(candidate.artifact_path))
            if active_metrics and (not active.metrics or active.kind == VersionKind.ZERO_SHOT):
                ModelVersion.objects.filter(pk=active.pk).update(
                    metrics={**active_metrics, "n_validation": n_validation, "n_train": 0}
                )
            # the project's labels may have changed while it trained: then it stays a candidate
            promoted = beats(metrics, active_metrics) and version_fits(candidate, locked)
            if promoted:
                prelabel_rescore(version=candidate, user=job.created_by)
            _succeed(
                job,
                {
                    "version": candidate.version,
                    "promoted": promoted,
                    "metric": settings.TANDEM_PROMOTION_METRIC,
                    "candidate": _compared(metrics),
                    "n_validation": n_validation,
                    "temperature": result.temperature,
                    "active": {"version": active.version, **compared},
                },
                labels_seen,
            )
    except BaseException:
        for path in moved:  # its row rolled back: no artifact without a version either
            shutil.rmtree(path, ignore_errors=True)
        raise
    return candidate


# --- the trigger ---------------------------------------------------------------------------------


def training_check() -> dict[str, list[int]]:
    """Beat, every minute: fail runs whose heartbeat went stale (worker lost) and start a run for each
    project with at least `min_new_labels` new approved labels since its last run."""
    stale_before = timezone.now() - timedelta(seconds=settings.TANDEM_TRAIN_STALE_SECONDS)
    reaped = []
    for project_id, job_id in TrainingState.objects.filter(
        running_job__isnull=False, heartbeat_at__lt=stale_before
    ).values_list("project_id", "running_job_id"):
        train_fail(job_id=job_id, error=LOST)
        reaped.append(project_id)
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


def train_scheduled(*, project_id: int) -> Job | None:
    """A beat schedule's run for the project (modelsvc.services.schedules); None when the project is gone."""
    project = Project.objects.filter(pk=project_id).first()
    return None if project is None else train_start(project=project, reason="schedule")
