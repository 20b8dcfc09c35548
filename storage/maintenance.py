"""The storage part of the worker's pass (manage.py runworker): partitions
ahead, rollups up to date, retention when due. Each step commits on its own;
one that fails is logged and the others still run."""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DatabaseError

from readings.services.rollups import rollups_refresh
from storage.partitions import PartitionBusy, partitions_ensure
from storage.retention import retention_apply, retention_due

log = logging.getLogger(__name__)


@dataclass
class StoragePass:
    """What one pass did: partitions made, readings taken into rollups,
    whether retention ran (and what it removed), and the steps that failed."""

    partitions_created: list[str] = field(default_factory=list)
    rollup_readings: int = 0
    rollups_caught_up: bool = True
    retention: object | None = None  # storage.retention.RetentionResult when it ran
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.partitions_created)} partitions created",
                 f"{self.rollup_readings} readings rolled up"
                 + ("" if self.rollups_caught_up else " (catching up)")]
        if self.retention is not None:
            parts.append(f"retention: {self.retention.summary()}")
        if self.failures:
            parts.append("failed: " + "; ".join(self.failures))
        return ", ".join(parts)


def storage_pass(*, now: datetime) -> StoragePass:
    done = StoragePass()
    try:
        done.partitions_created = partitions_ensure(now=now)
    except (PartitionBusy, DatabaseError) as exc:
        log.warning("partitions not created this pass: %s", exc)
        done.failures.append(f"partitions: {exc}")
    try:
        refreshed = rollups_refresh(now=now)
        done.rollup_readings, done.rollups_caught_up = refreshed.readings, refreshed.caught_up
    except DatabaseError as exc:
        log.warning("rollups not refreshed this pass: %s", exc)
        done.failures.append(f"rollups: {exc}")
    if retention_due(now):
        try:
            done.retention = retention_apply(now=now, trigger="runworker")
        except (PartitionBusy, DatabaseError) as exc:
            log.warning("retention not applied this pass: %s", exc)
            done.failures.append(f"retention: {exc}")
    return done
