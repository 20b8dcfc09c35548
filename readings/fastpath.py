"""The common uplink in one SQL statement, on PostgreSQL.

Most callbacks are plain uplinks of a known device: values, maybe a
sequence number and radio metadata, nothing to decode and no downlink to
answer. Through the ORM such a callback costs nine round trips to the
database (lock and read the device, update it, insert the message and its
readings, each inside a transaction); here it is one statement, committed
on its own: register or widen the device, insert the message unless it is
stored already, insert its readings, and record a sequence gap.

Anything else (raw data to decode, a device type, a base station, a BIDIR
request, a database other than PostgreSQL) goes through the ORM path in
services.message_ingest, which stays the reference for behaviour. The suite
runs on SQLite, where every uplink takes the ORM path, and on PostgreSQL,
where the common ones take this one, with the same assertions.
"""

import json

import psycopg
from django.db import connection

from readings.models import DownlinkMode

SQL = """
WITH old AS (
    SELECT id, last_seen, last_seq_number FROM readings_device WHERE sigfox_id = %(device)s::text
), dev AS (
    INSERT INTO readings_device (
        sigfox_id, name, first_seen, last_seen, payload_config, last_seq_number,
        downlink_data, downlink_mode, downlink_delivered_at, device_type_id
    )
    VALUES (
        %(device)s::text, '', %(time)s::timestamptz, %(time)s::timestamptz, '', %(seq)s::integer,
        '', %(mode)s::text, NULL, NULL
    )
    ON CONFLICT (sigfox_id) DO UPDATE SET
        first_seen = LEAST(COALESCE(readings_device.first_seen, EXCLUDED.first_seen), EXCLUDED.first_seen),
        last_seen = GREATEST(COALESCE(readings_device.last_seen, EXCLUDED.last_seen), EXCLUDED.last_seen),
        last_seq_number = CASE
            WHEN EXCLUDED.last_seq_number IS NOT NULL
                 AND (readings_device.last_seen IS NULL OR EXCLUDED.last_seen > readings_device.last_seen)
            THEN EXCLUDED.last_seq_number
            ELSE readings_device.last_seq_number
        END
    RETURNING id
), msg AS (
    INSERT INTO readings_message (
        device_id, time, seq_number, sensor, body_raw, content_type, received_at, dedup_key,
        data, device_type_id, ack, long_polling, station, rssi, snr, avg_snr, lat, lng, lqi,
        link_quality, operator_name, country_code, fixed_lat, fixed_lng, duplicates,
        computed_location, decoded, downlink_data
    )
    SELECT dev.id, %(time)s::timestamptz, %(seq)s::integer, %(sensor)s::text, %(body_raw)s::text,
           %(content_type)s::text, %(now)s::timestamptz, %(key)s::text, '', NULL,
           %(ack)s::boolean, %(long_polling)s::boolean, '', %(rssi)s::float8, %(snr)s::float8,
           %(avg_snr)s::float8, %(lat)s::float8, %(lng)s::float8, %(lqi)s::text,
           %(link_quality)s::smallint, %(operator_name)s::text, %(country_code)s::text,
           %(fixed_lat)s::float8, %(fixed_lng)s::float8, %(duplicates)s::jsonb,
           %(computed_location)s::jsonb, NULL, ''
    FROM dev
    ON CONFLICT (device_id, time, dedup_key) DO NOTHING
    RETURNING id, device_id
), readings AS (
    INSERT INTO readings_reading (message_id, device_id, sensor, quantity, value, time, decoded)
    SELECT msg.id, msg.device_id, %(sensor)s::text, v.quantity, v.value, %(time)s::timestamptz, false
    FROM msg CROSS JOIN unnest(%(quantities)s::text[], %(values)s::float8[]) AS v(quantity, value)
), gap AS (
    INSERT INTO readings_sequencegap (
        device_id, message_id, previous_seq_number, seq_number, missing, time
    )
    SELECT msg.device_id, msg.id, old.last_seq_number, %(seq)s::integer,
           ((%(seq)s::integer - old.last_seq_number - 1) %% 4096 + 4096) %% 4096, %(time)s::timestamptz
    FROM msg CROSS JOIN old
    WHERE %(seq)s::integer IS NOT NULL AND old.last_seq_number IS NOT NULL
      AND old.last_seen < %(time)s::timestamptz
      AND ((%(seq)s::integer - old.last_seq_number - 1) %% 4096 + 4096) %% 4096 BETWEEN 1 AND 4094
)
SELECT count(*) FROM msg
"""


def applies(uplink) -> bool:
    """True for an uplink this statement stores exactly as the ORM path would."""
    return (
        connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and not uplink.data
        and not uplink.device_type_id
        and not uplink.station
        and not uplink.ack
    )


def _json(value) -> str | None:
    return None if value is None else json.dumps(value)


def ingest(uplink, *, key: str, now) -> bool:
    """Store the uplink; True if it was new, False if it was stored already."""
    params = {
        "device": uplink.device_id,
        "time": uplink.time,
        "seq": uplink.seq_number,
        "mode": DownlinkMode.ONCE.value,
        "sensor": uplink.sensor,
        "body_raw": uplink.body_raw,
        "content_type": uplink.content_type,
        "now": now,
        "key": key,
        "ack": uplink.ack,
        "long_polling": uplink.long_polling,
        "rssi": uplink.rssi,
        "snr": uplink.snr,
        "avg_snr": uplink.avg_snr,
        "lat": uplink.lat,
        "lng": uplink.lng,
        "lqi": uplink.lqi or "",
        "link_quality": uplink.link_quality,
        "operator_name": uplink.operator_name or "",
        "country_code": uplink.country_code or "",
        "fixed_lat": uplink.fixed_lat,
        "fixed_lng": uplink.fixed_lng,
        "duplicates": _json(uplink.duplicates),
        "computed_location": _json(uplink.computed_location),
        "quantities": list(uplink.values),
        "values": list(uplink.values.values()),
    }
    # Django's cursors bind parameters on the client and never prepare, so
    # PostgreSQL would plan this statement afresh every time. A cursor of
    # psycopg's own binds on the server, and prepare=True keeps the statement
    # prepared on the connection so that its plan is reused.
    with connection.wrap_database_errors:
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(SQL, params, prepare=True)
            (created,) = cursor.fetchone()
    return bool(created)
