"""The production URLconf plus the intake ceilings the bench compares the webhook against."""

from django.urls import path

from portal.urls import urlpatterns as production_urlpatterns
from tests.bench import views

urlpatterns = [
    path("bench/bare", views.bare, name="bench_bare"),
    path("bench/insert", views.insert, name="bench_insert"),
    path("bench/insert-small", views.insert_small, name="bench_insert_small"),
    path("bench/webhook-plain/<str:slug>", views.webhook_plain, name="bench_webhook_plain"),
    *production_urlpatterns,
]
