"""Rules on values, pure: when a value breaches its bound (with hysteresis),
the share of messages lost, which rules a device is under, and the words of
a rule.

No Django, no clock, like alerts.health: the worker's rule step
(alerts.rule_evaluation) feeds these from the database.

Kinds:
- "above": breached when the value is over the threshold; back within bounds
  once it is under threshold - hysteresis. A value hovering inside that band
  keeps whatever it was: it never flaps.
- "below": the mirror (battery: "below" on quantity battery_v).
- "loss": the share of messages lost over a device's last N messages (N the
  rule's window), an "above" on that share.
- "silence": no value of the quantity for more than `window` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ABOVE, BELOW, LOSS, SILENCE = "above", "below", "loss", "silence"
KINDS = (ABOVE, BELOW, LOSS, SILENCE)
# The quantity a battery rule watches unless told otherwise.
BATTERY_QUANTITY = "battery_v"


def breached(kind: str, value: float, threshold: float, hysteresis: float,
             currently_breached: bool) -> bool:
    """Whether a rule of `kind` is breached after seeing `value`.

    The bound is crossed outward at `threshold` and back inward only past
    `threshold` -/+ `hysteresis`, so a value between the two keeps the state.
    """
    hysteresis = max(hysteresis, 0.0)
    if kind in (ABOVE, LOSS):
        if currently_breached:
            return value >= threshold - hysteresis
        return value > threshold
    if kind == BELOW:
        if currently_breached:
            return value <= threshold + hysteresis
        return value < threshold
    raise ValueError(f"not a rule on a value: {kind!r}")


def loss_share(*, missing: int, received: int) -> float:
    """The share of messages lost: missing / (missing + received); 0 when nothing
    is known. `missing` counts the messages lost between the `received` ones
    (readings.models.SequenceGap; a counter reset loses nothing known)."""
    total = missing + received
    return missing / total if total > 0 else 0.0


def silent(*, newest_s: float | None, now_s: float, window_s: float) -> bool:
    """No value for more than window_s: breached. A series with no value at all
    has nothing to be silent about (a rule never judges a quantity a device
    has not sent)."""
    return newest_s is not None and now_s - newest_s > window_s


@dataclass(frozen=True)
class RuleScope:
    """Enough of a rule to know whom it is for: (pk, kind, quantity, device
    type pk or None, device pk or None)."""

    pk: int
    kind: str
    quantity: str
    device_type_id: int | None = None
    device_id: int | None = None

    @property
    def rank(self) -> int:
        """0 site, 1 device type, 2 device: the higher wins."""
        return 2 if self.device_id is not None else 1 if self.device_type_id is not None else 0


def rules_in_force(rules: Iterable[RuleScope], *, device_id: int,
                   device_type_id: int | None) -> list[RuleScope]:
    """The rules a device is under: the site's, its type's and its own, where
    the most specific scope wins for each (kind, quantity): a device rule
    "temp above 5" replaces the site's "temp above 30" for that device, while
    a site rule on another quantity or kind still applies. Rules of one scope
    with the same kind and quantity all apply."""
    best: dict[tuple[str, str], list[RuleScope]] = {}
    for rule in rules:
        if rule.device_id is not None and rule.device_id != device_id:
            continue
        if rule.device_type_id is not None and rule.device_type_id != device_type_id:
            continue
        key = (rule.kind, rule.quantity)
        current = best.get(key)
        if current is None or rule.rank > current[0].rank:
            best[key] = [rule]
        elif rule.rank == current[0].rank:
            current.append(rule)
    return sorted((r for group in best.values() for r in group), key=lambda r: r.pk)


def _number(value: float) -> str:
    return f"{value:g}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def describe(*, kind: str, quantity: str, threshold: float | None, window: int | None) -> str:
    """The rule in a few words: "temp above 30", "lost messages above 20% of the
    last 50", "no temp for 1 h"."""
    if kind == LOSS:
        return f"lost messages above {threshold:.0%} of the last {window}"
    if kind == SILENCE:
        return f"no {quantity} for {_duration(window or 0)}"
    return f"{quantity} {kind} {_number(threshold)}"


def value_text(*, kind: str, value: float | None, unit: str = "", window: int | None = None) -> str:
    """The value a breach or recovery saw, as the message shows it: "31.2 °C",
    "25% lost", "last value 2 h ago"."""
    if value is None:
        return ""
    if kind == LOSS:
        return f"{value:.0%} of the last {window} lost"
    if kind == SILENCE:
        return f"last value {_duration(round(value))} before"
    return f"{_number(round(value, 6))} {unit}".strip()
