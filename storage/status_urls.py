"""The storage status page (storage/views.py); storage/admin.py links it from the admin's index."""

from django.urls import path

from storage import views

urlpatterns = [
    path("status/storage/", views.storage_status_page, name="storage-status"),
]
