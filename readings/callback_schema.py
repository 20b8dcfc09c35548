"""The callback endpoints in the OpenAPI schema (/api/schema/), applied to their
views in readings/views.py with drf-spectacular's extend_schema_view.

The views read their variables themselves (readings.serializers), so the
schema describes them here in words and examples.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

from readings.exceptions import body_limit_text

CALLBACK_VARIABLES = (
    "Sigfox callback variables, as JSON, form fields, text/plain holding either, or (GET) "
    "the query string: `device` (hex id, required), `time` (epoch seconds, required), "
    "`seqNumber`, `data` (raw payload, hex), `deviceTypeId`, `ack`, `longPolling`, "
    "`station`, `rssi`, `snr`, `avgSnr`, `lat`, `lng`, and from DATA ADVANCED callbacks "
    "`lqi`, `linkQuality`, `operatorName`, `countryCode`, `fixedLat`, `fixedLng`, "
    "`duplicates`, `computedLocation`. Every other field holding a number or a boolean "
    "becomes a reading named after the field."
)
CALLBACK_TOKEN = OpenApiParameter(
    "token", OpenApiTypes.STR,
    description=(
        "The shared secret SIGFOX_CALLBACK_TOKEN, when set (or send `Authorization: Bearer "
        "<token>`, or HTTP Basic with the token as password)."
    ),
)
ERROR = inline_serializer("CallbackError", {"detail": serializers.CharField(required=False)})


def _callback_query_parameters():
    names = {
        "device": "Hex Sigfox id of the device (required).",
        "time": "Unix epoch seconds of the message (required).",
        "seqNumber": "Sequence number of the message.",
        "data": "Raw payload, hex (decoded with the payload config).",
        "ack": "true when the device waits for a downlink.",
        "station": "Base station id.",
        "rssi": "dBm.",
        "snr": "dB.",
    }
    return [
        OpenApiParameter(name, OpenApiTypes.STR, description=f"GET only: {text}")
        for name, text in names.items()
    ]


UPLINK = dict(
    tags=["callbacks"],
    summary="A Sigfox DATA callback (UPLINK, BIDIR or ADVANCED)",
    description=CALLBACK_VARIABLES,
    parameters=[
        OpenApiParameter("sensor", OpenApiTypes.STR, OpenApiParameter.PATH,
                         description="A name for the sensor or callback, e.g. `1` or `kitchen`."),
        CALLBACK_TOKEN,
    ],
    request={
        "application/json": OpenApiTypes.OBJECT,
        "application/x-www-form-urlencoded": OpenApiTypes.OBJECT,
        "text/plain": OpenApiTypes.STR,
    },
    examples=[OpenApiExample(
        "The tutorial's callback", request_only=True,
        value={"device": "1A2B3C", "time": "1700000000", "temp": 21},
    )],
    responses={
        200: OpenApiResponse(
            inline_serializer("DownlinkAnswer", {"<device id>": inline_serializer(
                "DownlinkData", {"downlinkData": serializers.CharField()})}),
            description="Stored; a downlink for a BIDIR callback that asked for one.",
        ),
        204: OpenApiResponse(description="Stored (or already stored)."),
        400: OpenApiResponse(ERROR, description="Bad input, named field by field; nothing stored."),
        401: OpenApiResponse(ERROR, description="Missing or wrong callback token."),
        413: OpenApiResponse(ERROR, description=f"Body over {body_limit_text()}."),
        415: OpenApiResponse(ERROR, description="Unsupported Content-Type."),
    },
)

ACKNOWLEDGE = dict(
    tags=["callbacks"],
    summary="A Sigfox SERVICE ACKNOWLEDGE callback: the outcome of a downlink",
    description=(
        "Variables: `device`, `time`, `infoCode`, `infoMessage`, `downlinkAck`, "
        "`downlinkOverusage`, in the same encodings as the DATA callback."
    ),
    parameters=[CALLBACK_TOKEN],
    request={
        "application/json": OpenApiTypes.OBJECT,
        "application/x-www-form-urlencoded": OpenApiTypes.OBJECT,
        "text/plain": OpenApiTypes.STR,
    },
    examples=[OpenApiExample(
        "An acknowledged downlink", request_only=True,
        value={"device": "1A2B3C", "time": 1700000000, "infoCode": 0, "infoMessage": "ACKED",
               "downlinkAck": True, "downlinkOverusage": False},
    )],
    responses={
        204: OpenApiResponse(description="Recorded."),
        400: OpenApiResponse(ERROR, description="Bad input; nothing stored."),
        401: OpenApiResponse(ERROR, description="Missing or wrong callback token."),
    },
)

ENCODINGS = {
    "application/json": OpenApiTypes.OBJECT,
    "application/x-www-form-urlencoded": OpenApiTypes.OBJECT,
    "text/plain": OpenApiTypes.STR,
}
STORED = {
    204: OpenApiResponse(description="Stored (or already stored)."),
    400: OpenApiResponse(ERROR, description="Bad input, named field by field; nothing stored."),
    401: OpenApiResponse(ERROR, description="Missing or wrong callback token."),
    413: OpenApiResponse(ERROR, description=f"Body over {body_limit_text()}."),
    415: OpenApiResponse(ERROR, description="Unsupported Content-Type."),
}
IN_EVERY_ENCODING = (
    " In the same encodings as the DATA callback. Only `device` and `time` must be right "
    "(a 400 otherwise); any other field that is wrong is left out and named in the "
    "stored record's field_errors."
)

STATUS = dict(
    tags=["callbacks"],
    summary="A Sigfox SERVICE STATUS callback: module temperature and battery",
    description=(
        "Variables: `device`, `time`, `temp` (module temperature, taken as °C), `batt` "
        "(battery, taken as V), `seqNumber`, `duplicate`, `station`, `rssi`, `snr`, "
        "`avgSnr`, `lat`, `lng`, `deviceTypeId`. Stored as a message of the device; `temp` "
        "and `batt` become its readings `module_temp_c` and `battery_v` under the sensor "
        "`status`, the values as sent kept with the message." + IN_EVERY_ENCODING
    ),
    parameters=[CALLBACK_TOKEN],
    request=ENCODINGS,
    examples=[OpenApiExample(
        "A daily status frame", request_only=True,
        value={"device": "1A2B3C", "time": 1700000000, "temp": 21.5, "batt": 3.3,
               "seqNumber": 42},
    )],
    responses=STORED,
)

ERROR_CALLBACK = dict(
    tags=["callbacks"],
    summary="A Sigfox ERROR callback: keep-alive breached (ERROR) or network warning (WARN)",
    description=(
        "Variables: `device`, `time`, `severity` (`ERROR` or `WARN`), `info`. Stored once "
        "as an event of the device, however often the backend retries; a device not "
        "known yet is registered." + IN_EVERY_ENCODING
    ),
    parameters=[CALLBACK_TOKEN],
    request=ENCODINGS,
    examples=[OpenApiExample(
        "A keep-alive breached", request_only=True,
        value={"device": "1A2B3C", "time": 1700000000, "severity": "ERROR",
               "info": "No message received since 2023-11-13 22:13:20"},
    )],
    responses=STORED,
)

EVENT_CALLBACK = dict(
    tags=["callbacks"],
    summary="A Sigfox EVENT callback (group level): an event of the device it names",
    description=(
        "Variables: `time` (required), `severity`, `eventType`, `sourceType`, `sourceId`, "
        "`deviceTypeId`, `groupId`, `deviceInfo`, `deviceMessageTime`, and those of each "
        "event type. The device is `device` when sent, else `sourceId` when `sourceType` "
        "is `DEVICE`, else the `id` of `deviceInfo`; an event that names no device is "
        "stored without one. Every variable is kept as received. In the same encodings as "
        "the DATA callback; a `device` or a DEVICE `sourceId` that is not a device id is "
        "refused (400), any other wrong field is left out and named in field_errors."
    ),
    parameters=[CALLBACK_TOKEN],
    request=ENCODINGS,
    examples=[OpenApiExample(
        "Off contract", request_only=True,
        value={"time": 1700000000, "severity": "ERROR", "eventType": "OFF_CONTRACT",
               "sourceType": "DEVICE", "sourceId": "1A2B3C",
               "deviceShortCause": "Token expired", "deviceInfo": {"id": "1A2B3C"}},
    )],
    responses=STORED,
)

GEOLOC = dict(
    tags=["callbacks"],
    summary="A Sigfox GEOLOC callback (deprecated by Sigfox): where a message was sent from",
    description=(
        "Variables: `device`, `time`, `lat`, `lng` (degrees), `radius` (metres), "
        "`geolocSource`, `seqNumber`. One location per message (device and time): a retry "
        "is stored once. `lat` and `lng` are required; any other field that is wrong is "
        "left out and named in field_errors. In the same encodings as the DATA callback."
    ),
    parameters=[CALLBACK_TOKEN],
    request=ENCODINGS,
    examples=[OpenApiExample(
        "A location", request_only=True,
        value={"device": "1A2B3C", "time": 1700000000, "lat": 43.6, "lng": 1.44,
               "radius": 2000, "geolocSource": "2", "seqNumber": 42},
    )],
    responses=STORED,
)


def _for_every_method(schema: dict, *, get_parameters: list | None = None):
    """extend_schema_view for a callback view: POST and PUT take a body, GET the
    query string."""
    get = {**schema, "request": None,
           "parameters": [*(get_parameters or []), *schema.get("parameters", [])]}
    return extend_schema_view(post=extend_schema(**schema), put=extend_schema(**schema),
                              get=extend_schema(**get))


uplink_schema = _for_every_method(UPLINK, get_parameters=_callback_query_parameters())
acknowledge_schema = _for_every_method(ACKNOWLEDGE)
status_schema = _for_every_method(STATUS)
error_schema = _for_every_method(ERROR_CALLBACK)
event_schema = _for_every_method(EVENT_CALLBACK)
geoloc_schema = _for_every_method(GEOLOC)


class CallbackTokenScheme(OpenApiAuthenticationExtension):
    target_class = "readings.auth.CallbackTokenAuthentication"
    name = "callbackToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "SIGFOX_CALLBACK_TOKEN, when the server sets one: `Authorization: Bearer "
                "<token>`, HTTP Basic with the token as password, or `?token=<token>`."
            ),
        }
