"""Device health in the admin: states (with a mute action), their history,
rules on values and their breaches, channels (with a test button) and
notifications (with their errors)."""

from datetime import timedelta

from django.contrib import admin, messages
from django.utils import timezone

from alerts import rules
from alerts.models import (
    Channel,
    DeviceHealth,
    DeviceTypeHealth,
    Notification,
    Rule,
    RuleBreach,
    StateChange,
)
from alerts.notify import send
from readings.admin import CappedCountPaginator, DeviceSearchMixin


@admin.register(DeviceHealth)
class DeviceHealthAdmin(DeviceSearchMixin, admin.ModelAdmin):
    list_display = ["device", "state", "state_since", "learned_interval_s", "interval_s",
                    "muted_until"]
    list_filter = ["state"]
    search_fields = ["device__sigfox_id"]  # by id prefix or name: DeviceSearchMixin
    readonly_fields = ["device", "state", "state_since", "samples", "learned_interval_s",
                       "learned_until", "keep_alive_breached_at"]
    fields = [*readonly_fields, "interval_s", "late_after", "down_after", "grace_s", "muted_until"]
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    actions = ["mute_for_a_day", "unmute"]

    def has_add_permission(self, request):
        return False  # the worker makes one per device

    def save_model(self, request, obj, form, change):
        # Only what the form edits: the worker may have changed the state and
        # the learned rhythm since the page was loaded.
        obj.save(update_fields=["interval_s", "late_after", "down_after", "grace_s",
                                "muted_until"])

    @admin.action(description="Mute the selected devices for 24 hours")
    def mute_for_a_day(self, request, queryset):
        until = timezone.now() + timedelta(days=1)
        count = queryset.update(muted_until=until)
        self.message_user(request, f"{count} devices muted until {until:%Y-%m-%d %H:%M} UTC.")

    @admin.action(description="Unmute the selected devices")
    def unmute(self, request, queryset):
        self.message_user(request, f"{queryset.update(muted_until=None)} devices unmuted.")


@admin.register(DeviceTypeHealth)
class DeviceTypeHealthAdmin(admin.ModelAdmin):
    list_display = ["device_type", "interval_s", "late_after", "down_after", "grace_s"]
    autocomplete_fields = ["device_type"]


class NotificationInline(admin.TabularInline):
    model = Notification
    fields = ["url", "kind", "status", "attempts", "sent_at", "error"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(StateChange)
class StateChangeAdmin(DeviceSearchMixin, admin.ModelAdmin):
    list_display = ["time", "device", "from_state", "to_state", "reason"]
    list_filter = ["to_state"]
    search_fields = ["device__sigfox_id"]
    readonly_fields = ["device", "time", "from_state", "to_state", "reason"]
    inlines = [NotificationInline]
    paginator = CappedCountPaginator
    show_full_result_count = False
    sortable_by = ["time"]

    def has_add_permission(self, request):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["change", "breach", "kind", "url", "status", "attempts", "next_attempt_at",
                    "error"]
    list_filter = ["status", "kind"]
    readonly_fields = ["change", "breach", "url", "channel", "kind", "status", "attempts",
                       "next_attempt_at", "last_attempt_at", "sent_at", "error"]
    paginator = CappedCountPaginator
    show_full_result_count = False

    def has_add_permission(self, request):
        return False


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "device_type", "device"]
    autocomplete_fields = ["device_type", "device"]
    actions = ["send_a_test"]

    @admin.action(description="Send a test notification to the selected channels")
    def send_a_test(self, request, queryset):
        for channel in queryset:
            error = send(channel.url, "sigfoxsite: a test notification",
                         f"This channel ({channel.name}) receives the site's device alerts.")
            if error:
                self.message_user(request, f"{channel.name}: not sent: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{channel.name}: sent.")


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "scope", "kind", "quantity", "threshold", "hysteresis", "window",
                    "enabled"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "quantity"]
    autocomplete_fields = ["device_type", "device"]
    fields = ["name", "device_type", "device", "kind", "quantity", "threshold", "hysteresis",
              "window", "enabled"]

    def get_changeform_initial_data(self, request):
        # The commonest rule first: a battery running low.
        return {"kind": rules.BELOW, "quantity": rules.BATTERY_QUANTITY,
                **super().get_changeform_initial_data(request)}


class BreachNotificationInline(NotificationInline):
    fk_name = "breach"


@admin.register(RuleBreach)
class RuleBreachAdmin(DeviceSearchMixin, admin.ModelAdmin):
    list_display = ["started_at", "device", "rule", "reason", "ended_at", "recovered"]
    list_filter = [("ended_at", admin.EmptyFieldListFilter), "rule__kind"]
    search_fields = ["device__sigfox_id"]
    readonly_fields = ["rule", "device", "started_at", "ended_at", "value", "end_value", "reason",
                       "recovered"]
    inlines = [BreachNotificationInline]
    paginator = CappedCountPaginator
    show_full_result_count = False
    sortable_by = ["started_at"]

    def has_add_permission(self, request):
        return False
