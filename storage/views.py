"""The storage status page for staff: sizes, partitions, the span of data
kept and the retention runs (storage.status)."""

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from storage.status import storage_status


@never_cache
def storage_status_page(request):
    """GET /status/storage/: 200 for staff; a visitor not logged in is sent to
    the login page, a logged-in user who is not staff gets 403."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not request.user.is_staff:
        raise PermissionDenied("Staff only.")
    return render(request, "storage/status.html", {"status": storage_status()})
