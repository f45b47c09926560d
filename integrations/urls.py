from django.urls import path

from integrations import views, views_erasure

app_name = "integrations"

urlpatterns = [
    path("", views.hub_list, name="hub_list"),
    path("healthz", views.healthz, name="healthz"),
    path("hubs/<slug:slug>/", views.hub_dashboard, name="hub_dashboard"),
    path("hubs/<slug:slug>/preview/", views.hub_preview, name="hub_preview"),
    path("hubs/<slug:slug>/test-connection/", views.hub_connection_test,
         name="hub_connection_test"),
    path("erase/", views_erasure.person_erase_view, name="person_erase"),
    path("erase/<int:pk>/", views_erasure.erasure_result, name="erasure_result"),
    path("submissions/<uuid:public_id>/", views.submission_detail, name="submission_detail"),
    path("submissions/<uuid:public_id>/redeliver/", views.submission_redeliver,
         name="submission_redeliver"),
]
