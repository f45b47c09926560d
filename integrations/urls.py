from django.urls import path

from integrations import views, views_audit, views_erasure
from integrations.editor import views as editor

app_name = "integrations"

urlpatterns = [
    path("", views.hub_list, name="hub_list"),
    path("healthz", views.healthz, name="healthz"),
    path("hubs/new/", editor.hub_create, name="hub_create"),
    path("hubs/<slug:slug>/", views.hub_dashboard, name="hub_dashboard"),
    path("hubs/<slug:slug>/preview/", views.hub_preview, name="hub_preview"),
    path("hubs/<slug:slug>/audit/", views_audit.hub_audit, name="hub_audit"),
    path("hubs/<slug:slug>/audit.csv", views_audit.hub_audit_csv, name="hub_audit_csv"),
    path("hubs/<slug:slug>/test-connection/", views.hub_connection_test,
         name="hub_connection_test"),
    path("erase/", views_erasure.person_erase_view, name="person_erase"),
    path("erase/<int:pk>/", views_erasure.erasure_result, name="erasure_result"),
    path("hubs/<slug:slug>/edit/", editor.hub_edit, name="hub_edit"),
    path("hubs/<slug:slug>/edit/hub/", editor.hub_edit_general, name="hub_edit_general"),
    path("hubs/<slug:slug>/edit/connection/", editor.hub_edit_connection,
         name="hub_edit_connection"),
    path("hubs/<slug:slug>/edit/identity/", editor.hub_edit_identity, name="hub_edit_identity"),
    path("hubs/<slug:slug>/edit/mappings/", editor.hub_edit_mappings, name="hub_edit_mappings"),
    path("hubs/<slug:slug>/edit/events/", editor.hub_edit_events, name="hub_edit_events"),
    path("hubs/<slug:slug>/edit/events/<str:kind>/", editor.hub_edit_event,
         name="hub_edit_event"),
    path("hubs/<slug:slug>/edit/events/<str:kind>/cards/<str:card_type>/", editor.hub_edit_card,
         name="hub_edit_card"),
    path("hubs/<slug:slug>/edit/engagement/", editor.hub_edit_engagement,
         name="hub_edit_engagement"),
    path("hubs/<slug:slug>/edit/emails/", editor.hub_edit_emails, name="hub_edit_emails"),
    path("hubs/<slug:slug>/edit/emails/<str:kind>/", editor.hub_edit_email,
         name="hub_edit_email"),
    path("hubs/<slug:slug>/edit/advanced/", editor.hub_edit_advanced, name="hub_edit_advanced"),
    path("hubs/<slug:slug>/edit/json/", editor.hub_edit_json, name="hub_edit_json"),
    path("hubs/<slug:slug>/export.json", editor.hub_export, name="hub_export"),
    path("hubs/<slug:slug>/switch/", editor.hub_switch, name="hub_switch"),
    path("hubs/<slug:slug>/token/", editor.hub_token, name="hub_token"),
    path("submissions/<uuid:public_id>/", views.submission_detail, name="submission_detail"),
    path("submissions/<uuid:public_id>/redeliver/", views.submission_redeliver,
         name="submission_redeliver"),
]
