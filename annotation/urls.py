"""REST paths (DESIGN.md): every path answers with and without its trailing slash. Ids have at most 18
digits (below 2**63), so a longer one is a plain 404, never a database overflow."""

from django.urls import re_path

from annotation.apis import (
    accounts,
    annotators,
    data,
    history,
    labeling,
    projects,
    reviewing,
    snapshot_download,
    snapshots,
)
from annotation.apis import metrics as quality_metrics
from modelsvc import apis as modeling


def route(pattern: str, view, name: str):
    return re_path(rf"^{pattern}/?$", view.as_view(), name=name)


urlpatterns = [
    route(r"auth/token", accounts.TokenObtainApi, "auth-token"),
    route(r"users", accounts.UserListCreateApi, "users"),
    route(r"projects", projects.ProjectListCreateApi, "projects"),
    route(r"projects/(?P<pk>\d{1,18})", projects.ProjectDetailApi, "project-detail"),
    route(r"projects/(?P<pk>\d{1,18})/members", projects.ProjectMembersApi, "project-members"),
    route(
        r"projects/(?P<pk>\d{1,18})/members/(?P<user_id>\d{1,18})", projects.ProjectMemberDetailApi, "project-member"
    ),
    route(r"projects/(?P<pk>\d{1,18})/annotators", annotators.ProjectAnnotatorsApi, "project-annotators"),
    route(
        r"projects/(?P<pk>\d{1,18})/annotators/(?P<user_id>\d{1,18})/unpause",
        annotators.AnnotatorUnpauseApi,
        "project-annotator-unpause",
    ),
    route(r"projects/(?P<pk>\d{1,18})/import", data.ProjectImportApi, "project-import"),
    route(r"projects/(?P<pk>\d{1,18})/export", data.ProjectExportApi, "project-export"),
    route(r"projects/(?P<pk>\d{1,18})/jobs", data.ProjectJobsApi, "project-jobs"),
    route(r"projects/(?P<pk>\d{1,18})/snapshots", snapshots.ProjectSnapshotsApi, "project-snapshots"),
    route(r"snapshots/(?P<pk>\d{1,18})", snapshots.SnapshotDetailApi, "snapshot-detail"),
    route(r"snapshots/(?P<pk>\d{1,18})/download", snapshot_download.SnapshotDownloadApi, "snapshot-download"),
    route(r"projects/(?P<pk>\d{1,18})/items", labeling.ProjectItemsApi, "project-items"),
    route(r"projects/(?P<pk>\d{1,18})/next", labeling.ProjectNextApi, "project-next"),
    route(r"projects/(?P<pk>\d{1,18})/history", history.ProjectHistoryApi, "project-history"),
    route(r"items/(?P<pk>\d{1,18})", labeling.ItemDetailApi, "item-detail"),
    route(r"items/(?P<pk>\d{1,18})/annotations", labeling.ItemAnnotationsApi, "item-annotations"),
    route(r"items/(?P<pk>\d{1,18})/skip", labeling.ItemSkipApi, "item-skip"),
    route(r"annotations/(?P<pk>\d{1,18})", labeling.AnnotationDetailApi, "annotation-detail"),
    route(r"jobs/(?P<pk>\d{1,18})", data.JobDetailApi, "job-detail"),
    route(r"projects/(?P<pk>\d{1,18})/prelabel", modeling.ProjectPrelabelApi, "project-prelabel"),
    route(r"items/(?P<pk>\d{1,18})/explanation", modeling.ItemExplanationApi, "item-explanation"),
    route(r"projects/(?P<pk>\d{1,18})/train", modeling.ProjectTrainApi, "project-train"),
    route(r"projects/(?P<pk>\d{1,18})/model-versions", modeling.ProjectModelVersionsApi, "project-model-versions"),
    route(
        r"projects/(?P<pk>\d{1,18})/model-versions/(?P<version>\d{1,18})/activate",
        modeling.ModelVersionActivateApi,
        "model-version-activate",
    ),
    route(
        r"projects/(?P<pk>\d{1,18})/training-schedule", modeling.ProjectTrainingScheduleApi, "project-training-schedule"
    ),
    route(r"projects/(?P<pk>\d{1,18})/review/next", reviewing.ProjectReviewNextApi, "project-review-next"),
    route(r"annotations/(?P<pk>\d{1,18})/review", reviewing.AnnotationReviewApi, "annotation-review"),
    route(r"projects/(?P<pk>\d{1,18})/metrics", quality_metrics.ProjectMetricsApi, "project-metrics"),
]
