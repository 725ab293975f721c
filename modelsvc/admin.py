from django.contrib import admin

from modelsvc.models import ModelVersion, Prediction


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "version", "kind", "status", "base_model", "created_at", "activated_at"]
    list_filter = ["status", "kind"]
    raw_id_fields = ["project"]
    readonly_fields = ["labels", "metrics", "sha256", "artifact_path"]


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "model_version", "uncertainty", "created_at"]
    raw_id_fields = ["item", "model_version"]
    show_full_result_count = False
