"""The Sigfox API app's admin: the record of backfill runs, read-only."""

from django.contrib import admin

from sigfoxapi.models import BackfillRun


@admin.register(BackfillRun)
class BackfillRunAdmin(admin.ModelAdmin):
    """Each backfill (sigfoxapi.backfill): `manage.py sigfox backfill`'s and the
    worker's (sigfoxapi.watch), with its span, counts and errors. Written by
    the runs only."""

    list_display = ["started_at", "scope", "sigfox_id", "since", "until", "reason", "fetched",
                    "stored", "replayed", "already", "failed", "api_calls", "attempts", "complete"]
    list_filter = ["reason", "scope", "complete"]
    search_fields = ["sigfox_id"]
    date_hierarchy = "started_at"
    fields = ["started_at", "finished_at", "scope", "sigfox_id", "device_type", "device", "since",
              "until", "reason", "fetched", "stored", "replayed", "already", "failed", "api_calls",
              "attempts", "complete", "retry_after", "resume_before", "error"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
