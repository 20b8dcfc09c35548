"""The common uplink on PostgreSQL in one round trip: the mirror of
services.ingest.message_ingest, beside it.

Most callbacks are plain new uplinks of a known device: values, maybe a
sequence number and radio metadata, nothing to decode and no downlink to
answer. Through the ORM such a callback costs about ten round trips to the
database; here it is one:

- without a seqNumber, one statement committed on its own: register the
  device or widen its first/last seen (as services.devices.device_upsert does),
  insert the frame unless it is stored already, and its readings (with the
  device's or its type's quantity scale, as services.decoding.scaled);
- with a seqNumber, the sequence records around the frame must be worked
  out from the messages just before and after it in time (as
  services.sequences.sequence_gaps_refresh does), and a statement cannot see what
  another callback of the same device committed after the statement
  began. So the device upsert, which locks the device's row as the ORM
  path's SELECT FOR UPDATE does, runs first, and the frame, its readings
  and the sequence records follow in a second statement of the same
  transaction, which sees every message committed before the lock was
  granted. Both statements, BEGIN and COMMIT go in one round trip
  (psycopg's pipeline mode).

Anything else (raw data to decode, a device type, a base station, a BIDIR
request, a location to keep, a copy of a stored frame to merge, a database
other than PostgreSQL, a caller already inside a transaction) goes through the ORM
path in services.ingest, which stays the reference for behaviour. Every change to
ingest lands in both: tests/readings/services/test_fastpath.py applies generated sequences of
callbacks through each path and compares every row they write.
"""

import json

import psycopg
from django.db import connection

from readings import db
from readings.models import DownlinkMode
from readings.services.events import is_coordinate_name
from readings.sigfox import SEQ_MODULO

DEVICE_SQL = """
INSERT INTO readings_device (
    sigfox_id, name, first_seen, last_seen, payload_config, payload_config_notice,
    downlink_data, downlink_mode, downlink_delivered_at, device_type_id, series_refused
)
VALUES (%(device)s::text, '', %(time)s::timestamptz, %(time)s::timestamptz, '', '', '',
        %(mode)s::text, NULL, NULL, 0)
ON CONFLICT (sigfox_id) DO UPDATE SET
    first_seen = LEAST(COALESCE(readings_device.first_seen, EXCLUDED.first_seen), EXCLUDED.first_seen),
    last_seen = GREATEST(COALESCE(readings_device.last_seen, EXCLUDED.last_seen), EXCLUDED.last_seen)
"""


_SEQ, _TIME = "%(seq)s::integer", "%(time)s::timestamptz"

_MESSAGE = f"""
unknown AS (
    -- A quantity without a registered series of this device and sensor: the
    -- series must be admitted within the bounds first (services.series_admit),
    -- so the ORM path takes the callback.
    SELECT 1 FROM unnest(%(quantities)s::text[]) AS q(quantity)
    WHERE NOT EXISTS (
        SELECT 1 FROM readings_series s, dev
        WHERE s.device_id = dev.id AND s.sensor = %(sensor)s::text AND s.quantity = q.quantity
    )
    LIMIT 1
), msg AS (
    INSERT INTO readings_message (
        device_id, time, seq_number, sensor, body_raw, content_type, received_at,
        data, device_type_id, ack, long_polling, station, rssi, snr, avg_snr, lat, lng, lqi,
        link_quality, operator_name, country_code, fixed_lat, fixed_lng, duplicates,
        computed_location, payload_fields, values_raw, text_values, field_errors, downlink_data
    )
    SELECT dev.id, {_TIME}, {_SEQ}, %(sensor)s::text, %(body_raw)s::text,
           %(content_type)s::text, %(now)s::timestamptz, '', NULL,
           %(ack)s::boolean, %(long_polling)s::boolean, '', %(rssi)s::float8, %(snr)s::float8,
           %(avg_snr)s::float8, %(lat)s::float8, %(lng)s::float8, %(lqi)s::text,
           %(link_quality)s::smallint, %(operator_name)s::text, %(country_code)s::text,
           %(fixed_lat)s::float8, %(fixed_lng)s::float8, %(duplicates)s::jsonb,
           %(computed_location)s::jsonb, NULL, %(values_raw)s::jsonb, %(text_values)s::jsonb,
           %(field_errors)s::jsonb, ''
    FROM dev
    WHERE NOT EXISTS (SELECT 1 FROM unknown)
    ON CONFLICT (device_id, time) DO NOTHING
    RETURNING id, device_id
), readings AS (
    INSERT INTO readings_reading (message_id, device_id, sensor, quantity, value, time, from_payload)
    SELECT msg.id, msg.device_id, %(sensor)s::text, v.quantity,
           CASE WHEN own.id IS NOT NULL THEN v.value * own.scale + own."offset"
                WHEN typ.id IS NOT NULL THEN v.value * typ.scale + typ."offset"
                ELSE v.value END,
           {_TIME}, false
    FROM msg CROSS JOIN dev
    CROSS JOIN unnest(%(quantities)s::text[], %(values)s::float8[]) AS v(quantity, value)
    LEFT JOIN readings_quantitysetting own
           ON own.device_id = dev.id AND own.quantity = v.quantity
    LEFT JOIN readings_quantitysetting typ
           ON typ.device_type_id = dev.device_type_id AND typ.device_id IS NULL
              AND typ.quantity = v.quantity
)"""

# Without a seqNumber: the device upsert, the frame and its readings at once.
PLAIN_SQL = f"""
WITH dev AS (
    {DEVICE_SQL.strip()}
    RETURNING id, device_type_id
), {_MESSAGE.strip()}
SELECT (SELECT count(*) FROM msg), EXISTS (SELECT 1 FROM unknown)
"""

# With a seqNumber: after DEVICE_SQL, in the same transaction.
SQL = f"""
WITH dev AS (
    SELECT id, device_type_id FROM readings_device WHERE sigfox_id = %(device)s::text
), {_MESSAGE.strip()}, neighbour AS (
    -- The messages with a seqNumber just before and just after this one in time.
    (SELECT 'before' AS side, m.id, m.time, m.seq_number FROM readings_message m, dev
     WHERE m.device_id = dev.id AND m.seq_number IS NOT NULL AND m.time < {_TIME}
     ORDER BY m.time DESC LIMIT 1)
    UNION ALL
    (SELECT 'after', m.id, m.time, m.seq_number FROM readings_message m, dev
     WHERE m.device_id = dev.id AND m.seq_number IS NOT NULL AND m.time > {_TIME}
     ORDER BY m.time ASC LIMIT 1)
), pair AS (
    -- Each pair (a, b) of consecutive messages around this one, measured as
    -- sigfox.sequence_jump and sigfox.is_counter_reset measure it.
    SELECT p.*, j.jump,
           (j.jump >= {SEQ_MODULO} OR (j.jump > 1 AND j.jump * %(spacing)s::float8
                               > EXTRACT(EPOCH FROM (p.b_time - p.a_time))::float8)) AS reset
    FROM (
        SELECT msg.device_id, msg.id AS b_id, {_TIME} AS b_time, {_SEQ} AS b_seq,
               n.time AS a_time, n.seq_number AS a_seq
        FROM msg, neighbour n WHERE n.side = 'before'
        UNION ALL
        SELECT msg.device_id, n.id, n.time, n.seq_number, {_TIME}, {_SEQ}
        FROM msg, neighbour n WHERE n.side = 'after'
    ) p
    CROSS JOIN LATERAL (SELECT ((p.b_seq - p.a_seq - 1) %% {SEQ_MODULO} + {SEQ_MODULO}) %% {SEQ_MODULO} + 1 AS jump) j
), gaps AS (
    INSERT INTO readings_sequencegap (
        device_id, message_id, previous_seq_number, seq_number, missing, reset, time
    )
    SELECT device_id, b_id, a_seq, b_seq, CASE WHEN reset THEN 0 ELSE jump - 1 END, reset, b_time
    FROM pair WHERE reset OR jump > 1
    ON CONFLICT (message_id) DO UPDATE SET
        previous_seq_number = EXCLUDED.previous_seq_number, missing = EXCLUDED.missing,
        reset = EXCLUDED.reset
), no_gap AS (
    DELETE FROM readings_sequencegap g USING pair
    WHERE g.message_id = pair.b_id AND NOT (pair.reset OR pair.jump > 1)
)
SELECT (SELECT count(*) FROM msg), EXISTS (SELECT 1 FROM unknown)
"""


def applies(uplink) -> bool:
    """True for an uplink these statements store exactly as the ORM path would."""
    return (
        db.is_postgresql()
        and not connection.in_atomic_block
        and not uplink.data
        and not uplink.device_type_id
        and not uplink.station
        and not uplink.ack
        # A location to keep (DATA ADVANCED computedLocation, values named
        # like coordinates): services.ingest._locations_keep, not mirrored here.
        and uplink.computed_location is None
        and not any(is_coordinate_name(name) for name in uplink.values)
        # Scaled in SQL, a huge value would overflow float8 with an error; the
        # ORM path leaves such a reading out instead (services.ingest._readings_add).
        and all(abs(value) < MAX_FAST_VALUE for value in uplink.values.values())
    )


# With QuantitySetting's bounds on scale and offset, below this no scaled
# value can overflow.
MAX_FAST_VALUE = 1e15


def _json(value) -> str | None:
    return None if value is None else json.dumps(value)


def ingest(uplink, *, now, min_spacing_s: float) -> bool | None:
    """Store the uplink as a new frame: True. False when the frame is stored
    already, None when one of its quantities has no series of the device yet:
    no message or reading is written then (at most the device's first/last
    seen are widened, as the ORM path will do too), and the caller stores
    the callback through the ORM path (a merge, or series_admit's bounds)."""
    params = {
        "device": uplink.device_id,
        "time": uplink.time,
        "seq": uplink.seq_number,
        "mode": DownlinkMode.ONCE.value,
        "sensor": uplink.sensor,
        "body_raw": uplink.body_raw,
        "content_type": uplink.content_type,
        "now": now,
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
        "values_raw": _json({uplink.sensor: uplink.values_raw} if uplink.values_raw else None),
        "text_values": _json(uplink.text_values or None),
        "field_errors": _json(uplink.field_errors or None),
        "quantities": list(uplink.values),
        "values": list(uplink.values.values()),
        "spacing": float(min_spacing_s),
    }
    # Django's cursors bind parameters on the client and never prepare, so
    # PostgreSQL would plan these statements afresh every time. A cursor of
    # psycopg's own binds on the server, and prepare=True keeps them prepared
    # on the connection.
    with connection.wrap_database_errors:
        connection.ensure_connection()
        raw = connection.connection
        with psycopg.Cursor(raw) as cursor:
            if uplink.seq_number is None:
                cursor.execute(PLAIN_SQL, params, prepare=True)
            else:
                with raw.pipeline(), raw.transaction():
                    cursor.execute(DEVICE_SQL, params, prepare=True)
                    cursor.execute(SQL, params, prepare=True)
            created, unknown = cursor.fetchone()
    return None if unknown else bool(created)
