"""REST paths (DESIGN.md): every path answers with and without its trailing slash."""

from django.urls import re_path

from annotation.apis import accounts, data, labeling, modeling, projects, reviewing


def route(pattern: str, view, name: str):
    return re_path(rf"^{pattern}/?$", view.as_view(), name=name)


urlpatterns = [
    route(r"auth/token", accounts.TokenObtainApi, "auth-token"),
    route(r"users", accounts.UserListCreateApi, "users"),
    route(r"projects", projects.ProjectListCreateApi, "projects"),
    route(r"projects/(?P<pk>\d+)", projects.ProjectDetailApi, "project-detail"),
    route(r"projects/(?P<pk>\d+)/members", projects.ProjectMembersApi, "project-members"),
    route(r"projects/(?P<pk>\d+)/members/(?P<user_id>\d+)", projects.ProjectMemberDetailApi, "project-member"),
    route(r"projects/(?P<pk>\d+)/import", data.ProjectImportApi, "project-import"),
    route(r"projects/(?P<pk>\d+)/export", data.ProjectExportApi, "project-export"),
    route(r"projects/(?P<pk>\d+)/jobs", data.ProjectJobsApi, "project-jobs"),
    route(r"projects/(?P<pk>\d+)/items", labeling.ProjectItemsApi, "project-items"),
    route(r"projects/(?P<pk>\d+)/next", labeling.ProjectNextApi, "project-next"),
    route(r"items/(?P<pk>\d+)", labeling.ItemDetailApi, "item-detail"),
    route(r"items/(?P<pk>\d+)/annotations", labeling.ItemAnnotationsApi, "item-annotations"),
    route(r"items/(?P<pk>\d+)/skip", labeling.ItemSkipApi, "item-skip"),
    route(r"annotations/(?P<pk>\d+)", labeling.AnnotationDetailApi, "annotation-detail"),
    route(r"jobs/(?P<pk>\d+)", data.JobDetailApi, "job-detail"),
    route(r"projects/(?P<pk>\d+)/prelabel", modeling.ProjectPrelabelApi, "project-prelabel"),
    route(r"items/(?P<pk>\d+)/explanation", modeling.ItemExplanationApi, "item-explanation"),
    route(r"projects/(?P<pk>\d+)/train", modeling.ProjectTrainApi, "project-train"),
    route(r"projects/(?P<pk>\d+)/model-versions", modeling.ProjectModelVersionsApi, "project-model-versions"),
    route(
        r"projects/(?P<pk>\d+)/model-versions/(?P<version>\d+)/activate",
        modeling.ModelVersionActivateApi,
        "model-version-activate",
    ),
    route(r"projects/(?P<pk>\d+)/training-schedule", modeling.ProjectTrainingScheduleApi, "project-training-schedule"),
    route(r"projects/(?P<pk>\d+)/review/next", reviewing.ProjectReviewNextApi, "project-review-next"),
    route(r"annotations/(?P<pk>\d+)/review", reviewing.AnnotationReviewApi, "annotation-review"),
]
