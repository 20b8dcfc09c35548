"""Times and durations as the pages show them: "4 minutes ago" with the exact
time on hover, "10 min"."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.timesince import timesince

register = template.Library()

# (seconds, unit): the largest unit that fits is shown, and the next one down
# when it adds something ("1 h 30 min").
UNITS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


@register.filter
def duration(seconds: float | None) -> str:
    """600 -> "10 min", 5400 -> "1 h 30 min", 90 -> "1 min 30 s", None -> "–"."""
    if seconds is None:
        return "–"
    total = max(0, round(seconds))
    for i, (size, unit) in enumerate(UNITS):
        if total >= size or size == 1:
            whole, rest = divmod(total, size)
            if whole >= 10 or size == 1:
                return f"{round(total / size)} {unit}"
            smaller_size, smaller_unit = UNITS[i + 1]
            smaller = round(rest / smaller_size)
            if smaller * smaller_size >= size:
                whole, smaller = whole + 1, 0
            return f"{whole} {unit} {smaller} {smaller_unit}" if smaller else f"{whole} {unit}"
    return "0 s"


@register.filter
def reading(value: float | None) -> str:
    """A value as read: 21.5, 3.55, 40 (at most three decimals, no trailing zeros)."""
    if value is None:
        return "–"
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


@register.simple_tag
def when(time: datetime | None, now: datetime | None = None) -> str:
    """<time> saying how long ago, with the exact time in the site's zone on hover."""
    if time is None:
        return "–"
    now = now or timezone.now()
    local = timezone.localtime(time)
    ago = "just now" if time >= now else f"{timesince(time, now, depth=1)} ago"
    return format_html('<time datetime="{}" title="{}">{}</time>', time.isoformat(),
                       date_format(local, "Y-m-d H:i:s T"), ago)


@register.simple_tag(takes_context=True)
def query(context, **changes) -> str:
    """The page's query string with `changes` made ("" or None removes a key),
    e.g. {% query sort="-state" page=None %}."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value in ("", None):
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"
