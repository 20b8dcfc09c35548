"""Facts of the Sigfox protocol that more than one module needs.

Pure module: no Django import. Sources: ../shared/sigfox/CALLBACKS.md
(sections 2, 4 and 5), which cites the Sigfox backend documentation.
"""

from __future__ import annotations

import re

# {seqNumber} is 12 bits on the radio: it wraps from 4095 to 0.
SEQ_MODULO = 4096
# A device id is 32 bits, sent as up to 8 hex digits.
DEVICE_ID_MAX_CHARS = 8
DEVICE_ID_PATTERN = r"[0-9A-Fa-f]{1,8}"
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)
# The device type id the backend sends: up to 24 hex digits (12 bytes).
DEVICE_TYPE_ID_MAX_CHARS = 24
DEVICE_TYPE_ID_PATTERN = r"[0-9A-Fa-f]{1,24}"
# The <sensor> of /data/<sensor>: the tutorial's "1", or any short name.
SENSOR_MAX_CHARS = 64
SENSOR_PATTERN = r"[A-Za-z0-9_.\-]{1,64}"
# An uplink payload is 0 to 12 bytes, sent as hex (section 2).
UPLINK_PAYLOAD_MAX_BYTES = 12
# A downlink payload is exactly 8 bytes (section 4).
DOWNLINK_PAYLOAD_BYTES = 8
# {infoCode} of a DOWNLINK ACKNOWLEDGE callback (section 4): code -> name.
INFO_CODES = {
    0: "ACKED",
    1: "NO_ANSWER",
    2: "INVALID_PAYLOAD",
    3: "OVERRUN_ERROR",
    4: "NETWORK_ERROR",
    5: "PENDING",
    6: "NO_DOWNLINK_CONTRACT",
    7: "TOO_MANY_REQUESTS",
    8: "INVALID_CONFIGURATION",
}
# A frame with its repetitions takes about 6 s on air, and the backend never
# stamps two frames of one device within the same second (section 5).
DEFAULT_MIN_FRAME_SPACING_S = 20


def normalize_device_id(text: str) -> str:
    """The one spelling of a device id: upper case, no leading zeros ("004e2f1a" -> "4E2F1A").

    The backend sends ids without leading zeros while modules and labels
    print them padded to 8 digits; both name the same device. Raises
    ValueError when `text` is not 1 to 8 hex digits (surrounding white space
    is ignored).
    """
    text = text.strip() if isinstance(text, str) else text
    if not isinstance(text, str) or not _DEVICE_ID.fullmatch(text):
        raise ValueError("must be 1 to 8 hexadecimal digits")
    return text.lstrip("0").upper() or "0"


def device_id_prefix(text: str) -> str | None:
    """The start of a device id in the one spelling (normalize_device_id), for
    a search by prefix ("004e2f" -> "4E2F"), or None when `text` is no hex prefix."""
    text = text.strip() if isinstance(text, str) else ""
    if not _DEVICE_ID.fullmatch(text):
        return None
    return normalize_device_id(text)


def sequence_jump(previous_seq: int, seq: int) -> int:
    """How far the counter moved from one frame to the next (1 = none lost), modulo 4096.

    The same number again counts as a full turn (4096), which no device can
    make between two frames it sends a few minutes apart.
    """
    return (seq - previous_seq - 1) % SEQ_MODULO + 1


def is_counter_reset(*, jump: int, elapsed_s: float, min_spacing_s: float) -> bool:
    """True when the counter moved further than the device could have sent frames.

    A device sends at most one frame every `min_spacing_s` seconds, so in
    `elapsed_s` it can have used at most elapsed_s / min_spacing_s numbers;
    a larger jump (seq 21, then 0 an hour later) is a reset of the counter
    (reflash, power loss, network disengage), not thousands of lost frames.
    A full turn (the same number again) is always a reset; the next number
    (jump 1) never is.
    """
    if jump >= SEQ_MODULO:
        return True
    # Multiplied rather than divided, so that SQL and Python agree at the boundary.
    return jump > 1 and jump * min_spacing_s > elapsed_s
