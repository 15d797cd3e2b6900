"""Top-level URL map: the UI at /, the REST API at /api/, OPTIMADE at /optimade/, the admin at /admin/."""

from django.contrib import admin
from django.urls import include, path

from gnomon.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("frontend.urls")),
]
