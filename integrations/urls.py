from django.urls import path

from integrations import backfill_views, views

app_name = "integrations"

urlpatterns = [
    path("", views.hub_list, name="hub_list"),
    path("healthz", views.healthz, name="healthz"),
    path("hubs/<slug:slug>/", views.hub_dashboard, name="hub_dashboard"),
    path("hubs/<slug:slug>/preview/", views.hub_preview, name="hub_preview"),
    path("hubs/<slug:slug>/test-connection/", views.hub_connection_test,
         name="hub_connection_test"),
    path("hubs/<slug:slug>/backfills/", backfill_views.backfill_list, name="backfill_list"),
    path("hubs/<slug:slug>/backfills/<uuid:public_id>/", backfill_views.backfill_detail,
         name="backfill_detail"),
    path("hubs/<slug:slug>/backfills/<uuid:public_id>/progress.json",
         backfill_views.backfill_progress, name="backfill_progress"),
    path("hubs/<slug:slug>/backfills/<uuid:public_id>/unreadable-rows.csv",
         backfill_views.backfill_report, name="backfill_report"),
    path("hubs/<slug:slug>/backfills/<uuid:public_id>/<str:action>/",
         backfill_views.backfill_action, name="backfill_action"),
    path("submissions/<uuid:public_id>/", views.submission_detail, name="submission_detail"),
    path("submissions/<uuid:public_id>/redeliver/", views.submission_redeliver,
         name="submission_redeliver"),
]
