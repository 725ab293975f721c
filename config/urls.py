from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView


def api_root(request):
    return JsonResponse({"name": "tandem", "schema": "/api/schema/", "docs": "/api/docs/"})


def api_not_found(request, rest=""):
    return JsonResponse({"detail": f"No API endpoint at /api/{rest}.", "errors": []}, status=404)


urlpatterns = [
    path("admin/", admin.site.urls),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    re_path(r"^api/?$", api_root, name="api-root"),
    path("api/", include("annotation.urls")),
    re_path(r"^api/(?P<rest>.*)$", api_not_found),
    path("", include("frontend.urls")),
]
