from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from integrations import apis
from integrations.metrics_export import metrics_view

urlpatterns = [
    path("api/v1/", include(apis.urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("metrics", metrics_view, name="metrics"),
    path("", include("integrations.urls")),
]
