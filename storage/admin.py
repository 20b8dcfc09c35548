"""The storage app's admin: the record of retention runs, read-only."""

from django.contrib import admin

from storage.models import RetentionRun


@admin.register(RetentionRun)
class RetentionRunAdmin(admin.ModelAdmin):
    """Each application of the retention policy (storage.retention): the
    worker's and prunereadings'. Written by the runs only."""

    list_display = ["started_at", "trigger", "duration", "partitions", "readings_deleted",
                    "messages_deleted", "bodies_cleared", "rollups_deleted", "failed"]
    list_filter = ["trigger"]
    date_hierarchy = "started_at"
    fields = ["started_at", "finished_at", "trigger", "partitions_dropped", "readings_deleted",
              "messages_deleted", "bodies_cleared", "rollups_deleted", "error"]
    readonly_fields = fields

    @admin.display(description="seconds")
    def duration(self, run: RetentionRun) -> str:
        if run.finished_at is None:
            return "running (or stopped)"
        return f"{(run.finished_at - run.started_at).total_seconds():.1f}"

    @admin.display(description="partitions dropped")
    def partitions(self, run: RetentionRun) -> int:
        return len(run.partitions_dropped or [])

    @admin.display(description="failed", boolean=True)
    def failed(self, run: RetentionRun) -> bool:
        return bool(run.error)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# The admin's index shows a link to the storage status page above its apps
# (the template extends admin/index.html), unless another app chose an index.
if admin.site.index_template is None:
    admin.site.index_template = "admin/storage_index.html"
