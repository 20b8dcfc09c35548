"""The admin of every table of the core.

Over 400 lines, on purpose: the big tables' machinery (capped counts, index-only
filter choices, bounded pages; tests/readings/admin/test_admin_scans.py) is shared by the
ModelAdmins below it, and Django looks for an app's admin in this one module.
"""

from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.core.paginator import EmptyPage, Paginator
from django.db import transaction
from django.db.models import F, Max, Min, Q, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.utils import timezone
from django.utils.functional import cached_property

from readings import db, payload, sigfox
from readings.api.serializers import message_exact_values
from readings.serializers import EXACT_FLOAT_LIMIT
from readings.services.rollups import rollups_invalidate
from readings.models import (
    Acknowledge,
    Device,
    DeviceEvent,
    DeviceLocation,
    DeviceType,
    Downlink,
    Message,
    MessageConflict,
    MessageRecovery,
    Quantity,
    QuantitySetting,
    Reading,
    Rejection,
    Reception,
    SequenceGap,
    Series,
)

# Past this many rows the admin shows "more than N" pages instead of counting,
# and lists no page past them: an OFFSET reads every row it skips.
COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows, so a page view never scans a huge table.

    An unfiltered list on PostgreSQL shows the planner's row estimate instead,
    which is free and close enough for paging. Pages stop at the one that
    reaches COUNT_CAP rows (the last page of a million readings would skip
    them all, 7 s): a page asked for past it is that last one, and
    `past_bound` keeps the number asked for, to say so.
    """

    past_bound = None

    @cached_property
    def num_pages(self):
        return min(super().num_pages, -(-COUNT_CAP // self.per_page))

    def validate_number(self, number):
        try:
            return super().validate_number(number)
        except EmptyPage:
            # Past the bound while rows remain: the bound's page. Past the rows: no page.
            if int(number) <= self.num_pages or self.count <= COUNT_CAP:
                raise
            self.past_bound = int(number)
            return self.num_pages

    @cached_property
    def count(self):
        queryset = self.object_list
        if not queryset.query.where:
            estimate = db.estimated_rows(queryset.model._meta.db_table, using=queryset.db)
            if estimate is not None and estimate > COUNT_CAP:
                return estimate
        return queryset.order_by()[: COUNT_CAP + 1].count()


class SpanDatesQuerySet(QuerySet):
    """datetimes() from the first and last value only: two index look-ups.

    The admin's date hierarchy asks for the distinct years, months or days of
    the listed rows, a scan of every row; on a big table the periods between
    the first and the last reading are a fair stand-in (an empty one just
    lists nothing when picked). It first asks for MIN() and MAX() together,
    which SQLite answers by reading the whole index: the same two look-ups.
    """

    def span(self, field_name):
        times = self.filter(**{f"{field_name}__isnull": False}).values_list(field_name, flat=True)
        first = times.order_by(field_name).first()
        if first is None:
            return None, None
        return first, times.order_by(f"-{field_name}").first()

    def aggregate(self, *args, **kwargs):
        first, last = kwargs.get("first"), kwargs.get("last")
        if (not args and len(kwargs) == 2 and isinstance(first, Min) and isinstance(last, Max)
                and first.filter is None and isinstance(field := first.source_expressions[0], F)
                and last.get_source_expressions() == first.get_source_expressions()):
            return dict(zip(["first", "last"], self.span(field.name)))
        return super().aggregate(*args, **kwargs)

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None):
        first, last = self.span(field_name)
        if first is None:
            return []
        zone = tzinfo or timezone.get_current_timezone()
        first, last = first.astimezone(zone), last.astimezone(zone)
        periods, current = [], first.replace(month=1, day=1) if kind == "year" else first
        if kind == "month":
            current = first.replace(day=1)
        current = current.replace(hour=0, minute=0, second=0, microsecond=0)
        while current <= last:
            periods.append(current)
            if kind == "year":
                current = current.replace(year=current.year + 1)
            elif kind == "month":
                year, month = divmod(current.month, 12)
                current = current.replace(year=current.year + year, month=month + 1)
            else:
                current = datetime.fromordinal(current.toordinal() + 1).replace(tzinfo=zone)
        return periods


class BoundedChangeList(ChangeList):
    """A list that reads a big table through its indexes only: pages stop at
    COUNT_CAP rows (with a word to the user), sorts are the `sortable_by`
    columns alone, and every list query has a LIMIT."""

    def get_ordering(self, request, queryset):
        # Django offers sortable_by's columns but obeys ?o= for any other:
        # drop those, leaving the default order when none is left.
        if (asked := self.params.get(ORDER_VAR)) and self.sortable_by is not None:
            if kept := [part for part in asked.split(".") if self.is_sortable(part)]:
                self.params[ORDER_VAR] = ".".join(kept)
            else:
                del self.params[ORDER_VAR]
        ordering = super().get_ordering(request, queryset)
        # The tie-break by id runs the way the sort does: one walk down the
        # index (SQLite sorts every row for time ASC, id DESC).
        if (len(ordering) > 1 and ordering[-1] == "-pk" and isinstance(ordering[0], str)
                and not ordering[0].startswith("-")):
            ordering[-1] = "pk"
        return ordering

    def is_sortable(self, order_part: str) -> bool:
        try:
            return self.list_display[int(order_part.rpartition("-")[2])] in self.sortable_by
        except (IndexError, ValueError):
            return False

    def get_results(self, request):
        super().get_results(request)
        if (asked := getattr(self.paginator, "past_bound", None)) is not None:
            self.page_num = self.paginator.num_pages
            messages.warning(request, (
                f"Page {asked} is past the last page listed ({self.page_num}, {COUNT_CAP:,} rows): "
                "this is that page. Narrow the list (a date, a filter or a search) or sort it "
                "the other way to reach the rest."
            ))
        if not self.result_list.query.is_sliced:
            # One page or "show all": the count said how few rows match; a row
            # stored since then must not turn this into a read of the table.
            self.result_list = self.result_list[
                : self.list_max_show_all if self.show_all else self.list_per_page
            ]


class SpanDatesChangeList(BoundedChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        return SpanDatesQuerySet(model=queryset.model, query=queryset.query.chain(), using=queryset.db)


class DeviceSearchMixin:
    """Search a list by its device's id, in the id's one spelling (004e2f1a finds
    4E2F1A) and by prefix, which an index answers; other text searches names."""

    device_path = "device"  # how the listed model reaches its device ("" for Device itself)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        path = f"{self.device_path}__" if self.device_path else ""
        condition = Q(**{f"{path}name__icontains": term})
        if (prefix := sigfox.device_id_prefix(term)) is not None:
            condition |= Q(**{f"{path}sigfox_id__startswith": prefix})
        return queryset.filter(condition), False


class RegistryValuesFilter(admin.AllValuesFieldListFilter):
    """A filter whose choices come from a small registry table, not from a
    SELECT DISTINCT over the listed one (a read of every row on each view)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lookup_choices = self.registry()

    def registry(self) -> QuerySet:
        raise NotImplementedError


class QuantityFilter(RegistryValuesFilter):
    def registry(self) -> QuerySet:
        return Quantity.objects.order_by("name").values_list("name", flat=True)


class SensorFilter(RegistryValuesFilter):
    """The sensors of the registered series. A sensor whose messages gave no
    reading is not listed; ?sensor=<name> still filters by it."""

    def registry(self) -> QuerySet:
        return Series.objects.order_by("sensor").values_list("sensor", flat=True).distinct()


class RecoveredFilter(admin.SimpleListFilter):
    """Messages fetched back through the Sigfox API (Message.recovered), read
    through the partial index that holds them alone (message_recovered_time)."""

    title = "recovered through the Sigfox API"
    parameter_name = "recovered"

    def lookups(self, request, model_admin):
        return [("any", "any way"), *((value, label) for value, label in MessageRecovery.choices
                                      if value)]

    def queryset(self, request, queryset):
        value = self.value()
        if value not in {"any", *MessageRecovery.values} or not value:
            return queryset
        # The index's own condition, for PostgreSQL to use it, then the value.
        recovered = queryset.exclude(recovered="")
        return recovered if value == "any" else recovered.filter(recovered=value)


class BigTableAdmin(DeviceSearchMixin, admin.ModelAdmin):
    """Admin for tables of millions of rows: each query of a list is answered by an index.

    No full counts, no distinct-date scans, filter choices from small tables,
    no facet counts (a count of every row for each choice), sorting by time
    alone (the one column an index orders), no page past COUNT_CAP rows.
    """

    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    sortable_by = ["time"]
    list_per_page = 50
    search_help_text = "The start of a device id (padded or not), or part of its name."
    # What a URL may filter by besides the list's filters and dates: fields an
    # index leads with (Django lets a URL filter by any field, ?rssi=-120).
    indexed_lookups = ["device"]

    def lookup_allowed(self, lookup, value, request=None):
        fields = {self.date_hierarchy, *self.indexed_lookups}
        fields |= {f[0] if isinstance(f, (list, tuple)) else getattr(f, "parameter_name", f)
                   for f in self.list_filter}
        if lookup.split(LOOKUP_SEP)[0] not in fields:
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_changelist(self, request, **kwargs):
        return SpanDatesChangeList


class DeviceForm(forms.ModelForm):
    class Meta:
        model = Device
        fields = [
            "sigfox_id", "name", "device_type", "payload_config", "downlink_data", "downlink_mode",
        ]

    def clean_sigfox_id(self):
        # One device, one id: 004e2f1a typed here is the 4E2F1A callbacks name.
        try:
            return sigfox.normalize_device_id(self.cleaned_data["sigfox_id"])
        except ValueError:
            raise forms.ValidationError("Up to 8 hexadecimal characters.") from None

    def clean_downlink_data(self):
        return self.cleaned_data["downlink_data"].strip().lower()


class DownlinkInline(admin.TabularInline):
    model = Downlink
    fields = ["answered_at", "data", "mode", "acknowledged_at", "info_code", "delivered"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "Downlink history"

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-answered_at")


class QuantitySettingInline(admin.TabularInline):
    """Units, labels and the linear scale of each quantity (a device's own override its type's)."""

    model = QuantitySetting
    fields = ["quantity", "unit", "label", "scale", "offset"]
    extra = 0
    verbose_name_plural = "Quantities: unit, label and scale (reading = raw × scale + offset)"


RETENTION_FIELDSET = ("Retention", {
    "fields": ["raw_retention_days", "rollup_retention_days", "body_retention_days"],
    "description": "Days kept, applied by the worker (manage.py runworker) about every "
                   "SIGFOX_RETENTION_INTERVAL_S. Empty inherits; 0 keeps forever.",
})


@admin.register(Device)
class DeviceAdmin(DeviceSearchMixin, admin.ModelAdmin):
    form = DeviceForm
    list_display = ["sigfox_id", "name", "device_type", "first_seen", "last_seen", "downlink_data",
                    "series_refused"]
    list_editable = ["name"]
    # A fleet of 100,000 devices: no full count, no date hierarchy (two scans
    # of the table per view), ids searched by prefix (an index range).
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    # Thousands of device types: searched, not listed (no filter, no select of them all).
    list_filter = ["downlink_mode"]
    autocomplete_fields = ["device_type"]
    list_select_related = ["device_type"]
    search_fields = ["sigfox_id", "name"]
    search_help_text = "The start of an id (padded or not), or part of a name."
    # An id by prefix, in its one spelling: an index range, not a scan of
    # UPPER(sigfox_id) over every device.
    device_path = ""
    fieldsets = [
        (None, {"fields": ["sigfox_id", "name", "device_type", "first_seen", "last_seen",
                           "series_refused", "series_refused_at"]}),
        ("Payload decoding", {"fields": ["payload_config_notice", "payload_config"]}),
        ("Downlink", {"fields": ["downlink_data", "downlink_mode", "downlink_delivered_at"]}),
        RETENTION_FIELDSET,
    ]
    inlines = [QuantitySettingInline, DownlinkInline]

    def get_changelist(self, request, **kwargs):
        return BoundedChangeList

    def get_readonly_fields(self, request, obj=None):
        # The id ties stored messages to the device: fixed once created.
        fixed = ["first_seen", "last_seen", "downlink_delivered_at", "payload_config_notice",
                 "series_refused", "series_refused_at"]
        return fixed + (["sigfox_id"] if obj else [])

    def save_model(self, request, obj, form, change):
        # New downlink data has not been delivered, whatever the old data was.
        if {"downlink_data", "downlink_mode"} & set(form.changed_data):
            obj.downlink_delivered_at = None
        config_saved(request, obj, form)
        super().save_model(request, obj, form, change)


def config_saved(request, obj, form) -> None:
    """A config the operator has saved again is theirs: the upgrade notice has done its job.

    Fields that can exceed 2^53 are stored exactly with each message but
    their readings (floats) are not: say so.
    """
    if "payload_config" in form.changed_data:
        obj.payload_config_notice = ""
        try:
            wide = payload.wide_fields(obj.payload_config) if obj.payload_config.strip() else []
        except payload.PayloadError:
            wide = []
        if wide:
            messages.warning(request, (
                f"{', '.join(wide)} can exceed 2^53: the readings hold the nearest float; the exact "
                "integer is kept with each message (admin, CSV, exact_values in the API)."
            ))


@admin.register(DeviceType)
class DeviceTypeAdmin(admin.ModelAdmin):
    list_display = ["sigfox_id", "name", "payload_config", "payload_config_notice", "first_seen"]
    search_fields = ["sigfox_id", "name"]
    readonly_fields = ["first_seen"]
    fieldsets = [
        (None, {"fields": ["sigfox_id", "name", "payload_config_notice", "payload_config", "first_seen"]}),
        RETENTION_FIELDSET,
    ]
    inlines = [QuantitySettingInline]

    def get_readonly_fields(self, request, obj=None):
        return ["first_seen", "payload_config_notice"] + (["sigfox_id"] if obj else [])

    def save_model(self, request, obj, form, change):
        config_saved(request, obj, form)
        super().save_model(request, obj, form, change)


class ReceptionInline(admin.TabularInline):
    model = Reception
    fields = ["station", "rssi", "snr", "duplicate", "received_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


class ReadingInline(admin.TabularInline):
    model = Reading
    fields = ["sensor", "quantity", "value", "from_payload"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class ConflictInline(admin.TabularInline):
    model = MessageConflict
    fields = ["variable", "sensor", "kept_value", "other_value", "received_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = "Copies of this frame that disagreed (the first value was kept)"


@admin.register(Message)
class MessageAdmin(BigTableAdmin):
    list_display = ["time", "device", "sensor", "seq_number", "data", "rssi", "snr", "received_at",
                    "recovered"]
    # By time, and recovered through a partial index: no index holds sensor or
    # ack, so filtering by them reads every message when few match (readings
    # are filtered by sensor).
    list_filter = ["time", RecoveredFilter]
    list_select_related = ["device"]
    search_fields = ["device__sigfox_id"]
    date_hierarchy = "time"
    fieldsets = [
        (None, {"fields": ["device", "device_type", "time", "seq_number", "sensor", "received_at",
                           "recovered"]}),
        ("Payload", {"fields": ["data", "payload_fields", "downlink_data", "ack", "long_polling"]}),
        ("Values as sent", {"fields": [
            "values_raw", "exact_values", "text_values", "field_errors",
        ]}),
        ("Radio", {"fields": [
            "station", "rssi", "snr", "avg_snr", "lat", "lng", "lqi", "link_quality",
            "operator_name", "country_code", "fixed_lat", "fixed_lng", "duplicates",
            "computed_location",
        ]}),
        ("As received", {"fields": ["content_type", "body_raw"]}),
    ]
    inlines = [ReadingInline, ConflictInline, ReceptionInline]

    def get_readonly_fields(self, request, obj=None):
        return [name for fieldset in self.fieldsets for name in fieldset[1]["fields"]]

    # A deletion takes the messages' readings along: their hours are marked
    # for the rollups to compute again.
    def delete_model(self, request, obj):
        with transaction.atomic():
            rollups_invalidate(Reading.objects.filter(message=obj))
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            rollups_invalidate(Reading.objects.filter(message__in=queryset.values("pk")))
            super().delete_queryset(request, queryset)

    @admin.display(description="Exact values (integers beyond 2^53)")
    def exact_values(self, obj) -> str:
        exact = message_exact_values(obj)
        return ", ".join(f"{name}={value}" for name, value in exact.items()) or "-"

    def has_add_permission(self, request):
        return False


@admin.register(Reading)
class ReadingAdmin(BigTableAdmin):
    list_display = ["time", "device", "sensor", "quantity", "value_shown"]
    list_filter = [("quantity", QuantityFilter), ("sensor", SensorFilter), "time"]
    list_select_related = ["device"]
    search_fields = ["device__sigfox_id"]
    date_hierarchy = "time"
    raw_id_fields = ["device", "message"]
    indexed_lookups = ["device", "message"]
    readonly_fields = ["message", "device", "sensor", "quantity", "value_shown", "time"]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    # A deletion marks the readings' hours for the rollups to compute again.
    def delete_model(self, request, obj):
        with transaction.atomic():
            rollups_invalidate([(obj.device_id, obj.sensor, obj.quantity, obj.time)])
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            rollups_invalidate(queryset)
            super().delete_queryset(request, queryset)

    # Not sortable: no index orders readings by value, a sort reads them all.
    @admin.display(description="value")
    def value_shown(self, obj) -> str:
        """The value; past 2^53, the exact integer its message keeps, when it is that one."""
        if abs(obj.value) >= EXACT_FLOAT_LIMIT:
            exact = message_exact_values(obj.message).get(obj.quantity)
            if exact is not None and float(int(exact)) == obj.value:
                return exact
        return repr(obj.value)


@admin.register(Downlink)
class DownlinkAdmin(DeviceSearchMixin, admin.ModelAdmin):
    list_display = ["answered_at", "device", "data", "mode", "acknowledged_at", "info_code", "delivered"]
    list_filter = ["delivered", "mode"]
    list_select_related = ["device"]
    search_fields = ["device__sigfox_id"]
    date_hierarchy = "answered_at"
    readonly_fields = ["device", "message", "data", "mode", "answered_at", "acknowledged_at",
                       "info_code", "delivered"]

    def has_add_permission(self, request):
        return False


@admin.register(Acknowledge)
class AcknowledgeAdmin(DeviceSearchMixin, admin.ModelAdmin):
    list_display = ["time", "device", "info_code", "info_meaning", "info_message", "downlink_ack",
                    "downlink_overusage", "downlink"]
    list_filter = ["info_meaning", "downlink_ack"]
    list_select_related = ["device", "downlink"]
    search_fields = ["device__sigfox_id"]
    date_hierarchy = "time"
    readonly_fields = ["device", "time", "info_code", "info_meaning", "info_message", "downlink_ack",
                       "downlink_overusage", "downlink", "body_raw", "received_at"]

    def has_add_permission(self, request):
        return False


@admin.register(SequenceGap)
class SequenceGapAdmin(DeviceSearchMixin, admin.ModelAdmin):
    list_display = ["time", "device", "previous_seq_number", "seq_number", "missing", "reset"]
    list_filter = ["reset"]
    list_select_related = ["device"]
    search_fields = ["device__sigfox_id"]
    date_hierarchy = "time"
    readonly_fields = ["device", "message", "previous_seq_number", "seq_number", "missing",
                       "reset", "time"]

    def has_add_permission(self, request):
        return False


@admin.register(MessageConflict)
class MessageConflictAdmin(DeviceSearchMixin, admin.ModelAdmin):
    """Copies of a frame that carried another value than the one stored (the first was kept)."""

    list_display = ["received_at", "message", "variable", "sensor", "kept_value", "other_value"]
    list_select_related = ["message__device"]
    search_fields = ["message__device__sigfox_id"]
    device_path = "message__device"
    date_hierarchy = "received_at"
    readonly_fields = ["message", "variable", "sensor", "kept_value", "other_value", "received_at"]

    def has_add_permission(self, request):
        return False


@admin.register(Rejection)
class RejectionAdmin(admin.ModelAdmin):
    """Callbacks this server refused, newest first: the Sigfox backend is the only client
    that sees the answer, so this is where an operator finds why messages were lost."""

    list_display = ["time", "status", "device_id", "reason", "client_address", "repeated"]
    list_filter = ["status"]
    search_fields = ["device_id", "client_address"]
    readonly_fields = ["time", "status", "device_id", "reason", "path", "client_address", "repeated"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DeviceEvent)
class DeviceEventAdmin(BigTableAdmin):
    """ERROR and EVENT callbacks, newest first: what the Sigfox cloud said of a device.
    One a keep-alive breach or a cloud event, but a fleet's network warnings add up."""

    list_display = ["time", "device", "kind", "event_type", "severity", "info"]
    # Kind has choices (no SELECT DISTINCT to list them); severity and type are
    # anyone's text, shown but not filtered on.
    list_filter = ["kind", "time"]
    list_select_related = ["device"]
    search_fields = ["device__sigfox_id"]
    date_hierarchy = "time"
    fields = ["device", "time", "kind", "event_type", "severity", "info", "variables",
              "field_errors", "content_type", "body_raw", "received_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DeviceLocation)
class DeviceLocationAdmin(BigTableAdmin):
    """Where devices were: one location a message (payload fix, DATA ADVANCED
    computedLocation or GEOLOC callback), as many rows as messages."""

    list_display = ["time", "device", "lat", "lng", "radius_m", "source", "sigfox_source",
                    "seq_number"]
    list_filter = ["source", "time"]
    list_select_related = ["device"]
    search_fields = ["device__sigfox_id"]
    date_hierarchy = "time"
    fields = ["device", "time", "lat", "lng", "radius_m", "source", "sigfox_source", "seq_number",
              "field_errors", "content_type", "body_raw", "received_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
