"""The model registry's tables and the predictions its versions make (the rules: modelsvc.services).

ModelVersion: one per model a project has used, numbered per project. A zero-shot version (cold
start: label-name similarity over the base encoder, no artifact) is created when a project is first
pre-labeled; a fine-tuned version, registered by a training run, has an artifact and metrics. At most
one is active per project (a partial unique index).

Prediction: one per (item, model version), upserted, so a redelivered pre-label chunk writes nothing
twice. The item row carries the active version's prediction in the REST shape (Item.prediction).
"""

from __future__ import annotations

from django.db import models

from annotation.models import Item, Job, Project


class VersionKind(models.TextChoices):
    ZERO_SHOT = "zero_shot"
    FINE_TUNED = "fine_tuned"
    IMPORTED = "imported"  # predictions brought in with a Label Studio export: never loaded or activated


class VersionStatus(models.TextChoices):
    CANDIDATE = "candidate"
    ACTIVE = "active"
    RETIRED = "retired"


class ModelVersion(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    version = models.PositiveIntegerField()
    # an imported version's name (Label Studio's `model_version` string); "" for the versions Tandem made
    name = models.CharField(max_length=200, blank=True, default="", db_default="")
    kind = models.CharField(max_length=20, choices=VersionKind.choices)
    base_model = models.CharField(max_length=500)  # TANDEM_MODEL's directory, or services.versions.PACKAGED_MODEL
    labels = models.JSONField(default=list)  # [{"name", "description"}] in the order the version predicts
    task_type = models.CharField(max_length=20)
    artifact_path = models.CharField(max_length=1000, blank=True, default="")
    sha256 = models.CharField(max_length=64, blank=True, default="")
    metrics = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=VersionStatus.choices, default=VersionStatus.CANDIDATE)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="modelversion_unique_number"),
            models.UniqueConstraint(
                fields=["project"], condition=models.Q(status="active"), name="modelversion_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project_id} v{self.version} ({self.kind}, {self.status})"

    @property
    def label_names(self) -> list[str]:
        """The names of the labels it predicts, in order (like Project.label_names)."""
        return [label["name"] for label in self.labels]


class Prediction(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="predictions")
    value = models.JSONField()  # the suggested annotation value
    probabilities = models.JSONField()  # {label: p}
    least_confidence = models.FloatField()
    margin = models.FloatField()
    entropy = models.FloatField()
    uncertainty = models.FloatField()  # the score the project's sampling uses
    # token attributions for the suggestion: {"label", "tokens": [{"text", "start", "end", "weight"}]}
    explanation = models.JSONField(null=True, blank=True)
    explanation_requested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "model_version"], name="prediction_unique")]

    def __str__(self) -> str:
        return f"item {self.item_id} by v{self.model_version_id}"


class PrelabelChunk(models.Model):
    """A pre-label chunk that has been written: inserting it in the chunk's transaction makes a
    redelivered chunk a no-op, so Job progress counts each item once."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="+")
    index = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="prelabelchunk_unique")]

    def __str__(self) -> str:
        return f"job {self.job_id} chunk {self.index} ({self.size} items)"


class TrainingState(models.Model):
    """Per project: the training run holding the single-flight lock (set by a conditional UPDATE, so a
    second trigger while one runs does nothing), its heartbeat, and what the last run saw."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="training_state")
    running_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    labels_at_last_run = models.PositiveIntegerField(default=0)
    last_run_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"training of project {self.project_id}: {'running' if self.running_job_id else 'idle'}"


class ValidationItem(models.Model):
    """The fixed validation set: approved items reserved (seeded, stratified by label) the first time
    training sees them, never trained on afterwards. Gold items are always validation."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="validation")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"validation item {self.item_id}"


class TrainedItem(models.Model):
    """An approved item that training has assigned to the training side (so the split stays fixed)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="training_split")

    def __str__(self) -> str:
        return f"training item {self.item_id}"
