from django.contrib.auth import views as auth_views
from django.urls import path, register_converter

from frontend import views, views_dashboard, views_history, views_manage, views_review, views_snapshots


class IdConverter:
    """A database id: at most 18 digits (below 2**63), so a longer one is a 404, not an overflow."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

urlpatterns = [
    path("", views.project_list, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="frontend/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="/login/"), name="logout"),
    path("projects/<id:pk>/label", views.label, name="label"),
    path("projects/<id:pk>/review", views_review.review, name="review"),
    path("projects/<id:pk>/dashboard", views_dashboard.dashboard, name="dashboard"),
    path("projects/<id:pk>/history", views_history.history, name="history"),
    path("projects/new", views_manage.project_new, name="project-new"),
    path("projects/<id:pk>/settings", views_manage.project_settings, name="project-settings"),
    path("projects/<id:pk>/import", views_manage.project_import, name="project-import"),
    path("projects/<id:pk>/export", views_manage.project_export, name="project-export"),
    path("projects/<id:pk>/snapshots", views_snapshots.snapshots, name="snapshots"),
]
