from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from integrations import apis

urlpatterns = [
    path("api/v1/", include(apis.urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("integrations.urls")),
]
