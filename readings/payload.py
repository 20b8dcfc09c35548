"""Decode Sigfox payloads with the backend's "custom payload config" grammar.

Pure module: standard library only, no Django, so it can be tested and reused
(re-decoding stored messages) without a database. Over 400 lines, on purpose:
it is one grammar (parse, then decode), and its parts share the field type
they check, so it reads best as one file against section 3 of CALLBACKS.md.

Source: /work/shared/sigfox/CALLBACKS.md section 3, which follows the Sigfox
backend's own help text for the custom format; the worked examples are in
payload-vectors.json beside it (copied to tests/data/).

A config is fields separated by white space; each field is::

    name:byteIndex:type:length[:endianness][:bitOffset]

name
    ASCII letters, digits, ``_`` and ``-`` (at most 64); unique within the config.
byteIndex
    Byte where the field starts, 0 to 63. Left empty, the first field starts
    at byte 0; a ``bool`` stays on the last byte used by the previous field;
    any other type starts on the byte after it, or on that same last byte
    when the previous field was given a bitOffset (written out, even ``7``).
    "Previous" means the field just before in the config, so an explicit
    index resets the cursor. ``mode::uint:4:big-endian:7 batt::uint:4::3``
    reads both nibbles of byte 0; ``a::uint:4 b::uint:4`` reads bytes 0 and 1.
type:length
    ``bool:B``      bit B (0 to 7, 7 = most significant) of one byte.
    ``char:N``      N bytes (1 to 64) as text, decoded as latin-1 (every byte
                    maps to one character, so decoding never fails); trailing
                    NUL characters are stripped.
    ``float:32|64`` IEEE 754. NaN and infinities are returned as they are;
                    the caller decides whether to store them.
    ``uint:L``      L bits (1 to 64), unsigned.
    ``int:L``       L bits (1 to 64), two's complement.
endianness
    ``big-endian`` (the default, also when left empty, as in
    ``Status:1:uint:4::3``) or ``little-endian``; only for ``uint``, ``int``
    and ``float``. ``char`` has no endianness part: ``s:2:char:3:5`` is a
    char with bitOffset 5.
bitOffset
    For ``uint``, ``int``, ``float`` and ``char``: the bit of the first byte
    where reading starts, 0 to 7 (7 = most significant, the default). The
    value is the big-endian bit stream of its length from that bit on,
    continuing into the following bytes: ``x:1:uint:8:big-endian:5`` is bits
    5..0 of byte 1 then bits 7..6 of byte 2; ``x:0:uint:10`` is the top 10
    bits of bytes 0 and 1. Sigfox does not say how ``little-endian`` combines
    with a bitOffset other than 7 or a length that is not a whole number of
    bytes, so both are refused rather than guessed.

A field with any bit outside the payload decodes to ``None``. Payloads are hex
text (either case, possibly empty) or bytes, up to 64 bytes.

Until this module followed the backend's help text, the last part was read as
``highBit``, a bit number within the field's own bytes, and an empty byteIndex
always meant the next byte; ``legacy_meaning_changed`` says which stored
configs that changes. ``wide_fields`` names the fields whose values a float64
(JavaScript, most JSON readers) cannot hold exactly.
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "PayloadError",
    "ConfigError",
    "DataError",
    "Field",
    "parse_config",
    "decode",
    "format_config",
    "wide_fields",
    "legacy_meaning_changed",
]

KINDS = ("bool", "char", "float", "uint", "int")
MAX_BYTE_INDEX = 63
MAX_PAYLOAD_BYTES = 64
MAX_BIT_OFFSET = 7
# Configs come from users; cap them so a pasted novel cannot fill the cache.
MAX_CONFIG_CHARS = 4096
# A float64 holds every integer of magnitude up to 2**53, and not all beyond.
MAX_EXACT_FLOAT_INT = 2**53

# Names become reading quantities, stored in 64 characters.
MAX_NAME_CHARS = 64
_NAME = re.compile(r"[A-Za-z0-9_-]{1,%d}" % MAX_NAME_CHARS)
_WHOLE = re.compile(r"[0-9]+")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*")
_ENDIANNESS = {"": False, "big-endian": False, "little-endian": True}
_FORMAT = "expected name:byteIndex:type:length[:endianness][:bitOffset]"
_CHAR_FORMAT = "expected name:byteIndex:char:length[:bitOffset] (char has no endianness)"

Value = bool | int | float | str | None


class PayloadError(ValueError):
    """Base of every error this module raises."""


class ConfigError(PayloadError):
    """The config text (or a Field) is not valid."""


class DataError(PayloadError):
    """The payload is not hex, has an odd length, or is too long."""


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a config, validated when built.

    ``size`` is the bit number for ``bool``, the byte count for ``char`` and
    the bit length for the other kinds. ``byte_index`` None means "follow the
    previous field"; ``bit_offset`` None means none was written (reading
    starts at bit 7, and the next field follows as for a field without one).
    See the module docstring. Raises ConfigError.
    """

    name: str
    byte_index: int | None
    kind: str
    size: int
    little_endian: bool = False
    bit_offset: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigError(
                f"name must be 1 to {MAX_NAME_CHARS} letters, digits, _ or -, got {self.name!r}"
            )
        if self.byte_index is not None and not _is_int_in(self.byte_index, 0, MAX_BYTE_INDEX):
            raise ConfigError(f"byteIndex must be 0 to {MAX_BYTE_INDEX}, got {self.byte_index!r}")
        if self.kind not in KINDS:
            raise ConfigError(f"unknown type {self.kind!r} (expected bool, char, float, uint or int)")
        if self.kind == "bool" and not _is_int_in(self.size, 0, 7):
            raise ConfigError(f"bit must be 0 to 7, got {self.size!r}")
        if self.kind == "char" and not _is_int_in(self.size, 1, MAX_PAYLOAD_BYTES):
            raise ConfigError(f"length must be 1 to {MAX_PAYLOAD_BYTES} bytes, got {self.size!r}")
        if self.kind == "float" and not (type(self.size) is int and self.size in (32, 64)):
            raise ConfigError(f"float length must be 32 or 64, got {self.size!r}")
        if self.kind in ("uint", "int") and not _is_int_in(self.size, 1, 64):
            raise ConfigError(f"length must be 1 to 64 bits, got {self.size!r}")
        if not isinstance(self.little_endian, bool):
            raise ConfigError(f"little_endian must be a bool, got {self.little_endian!r}")
        if self.little_endian and self.kind in ("bool", "char"):
            raise ConfigError(f"endianness is only for uint, int and float, not {self.kind}")
        if self.bit_offset is not None:
            if self.kind == "bool":
                raise ConfigError("bitOffset is only for uint, int, float and char, not bool")
            if not _is_int_in(self.bit_offset, 0, MAX_BIT_OFFSET):
                raise ConfigError(
                    f"bitOffset must be 0 to {MAX_BIT_OFFSET}, got {self.bit_offset!r}"
                )
        if self.little_endian:
            # Undefined in Sigfox's text (CALLBACKS.md section 3): refuse, never guess.
            if self.size % 8:
                raise ConfigError(
                    f"little-endian is not defined by Sigfox for a length that is not a whole "
                    f"number of bytes, got {self.kind}:{self.size}"
                )
            if self.bit_offset not in (None, MAX_BIT_OFFSET):
                raise ConfigError(
                    f"little-endian is not defined by Sigfox with a bitOffset other than 7, "
                    f"got {self.bit_offset}"
                )


def _is_int_in(value: object, low: int, high: int) -> bool:
    # bool is an int subclass; True must not pass as byte index 1.
    return type(value) is int and low <= value <= high


def _length_bits(field: Field) -> int:
    """Number of bits the field reads (1 for a bool)."""
    if field.kind == "bool":
        return 1
    if field.kind == "char":
        return 8 * field.size
    return field.size


def _first_bit(field: Field, start_byte: int) -> int:
    """Position of the field's first bit, counted from the top bit of byte 0."""
    if field.kind == "bool":
        return 8 * start_byte + MAX_BIT_OFFSET - field.size
    offset = MAX_BIT_OFFSET if field.bit_offset is None else field.bit_offset
    return 8 * start_byte + MAX_BIT_OFFSET - offset


def _last_byte(field: Field, start_byte: int) -> int:
    """Index of the last byte the field reads a bit of."""
    if field.kind == "bool":
        return start_byte
    return (_first_bit(field, start_byte) + _length_bits(field) - 1) // 8


def _whole(text: str, what: str) -> int:
    # int() alone would accept "+1", " 1", "1_0" and non-ASCII digits.
    if not _WHOLE.fullmatch(text):
        raise ConfigError(f"{what} must be a whole number, got {text!r}")
    # The config length cap keeps this under int()'s 4300-digit limit.
    return int(text)


def _parse_field(token: str) -> Field:
    parts = token.split(":")
    if not 4 <= len(parts) <= 6:
        raise ConfigError(_FORMAT)
    name, index, kind, length, *rest = parts
    if kind not in KINDS:
        # Checked before the length so "temp::integer:8" says what is wrong.
        raise ConfigError(f"unknown type {kind!r} (expected bool, char, float, uint or int)")
    if kind == "char":
        # The part after a char's length is its bitOffset: "s:2:char:3:5".
        if len(rest) > 1:
            raise ConfigError(_CHAR_FORMAT)
        endianness, bit_offset = "", rest[0] if rest else ""
        if bit_offset in ("big-endian", "little-endian"):
            raise ConfigError("endianness is only for uint, int and float, not char")
    else:
        endianness = rest[0] if rest else ""
        bit_offset = rest[1] if len(rest) > 1 else ""
    if endianness not in _ENDIANNESS:
        # "x::uint:8:3" is a likely slip for a bitOffset with the endianness left out.
        hint = ""
        if _WHOLE.fullmatch(endianness):
            hint = f" (leave it empty before a bitOffset: '::{endianness}')"
        raise ConfigError(
            f"endianness must be big-endian or little-endian, got {endianness!r}{hint}"
        )
    return Field(
        name=name,
        byte_index=_whole(index, "byteIndex") if index else None,
        kind=kind,
        size=_whole(length, "bit" if kind == "bool" else "length"),
        little_endian=_ENDIANNESS[endianness],
        bit_offset=_whole(bit_offset, "bitOffset") if bit_offset else None,
    )


def _check_names(fields: Sequence[Field], tokens: Sequence[str]) -> None:
    seen: dict[str, int] = {}
    for number, (field, token) in enumerate(zip(fields, tokens), start=1):
        if field.name in seen:
            raise ConfigError(
                f"field {number} ({token!r}): duplicate name {field.name!r} (also field {seen[field.name]})"
            )
        seen[field.name] = number


def parse_config(text: str) -> tuple[Field, ...]:
    """Parse a config into Fields; raise ConfigError naming the bad field.

    Results are cached: the same few configs are decoded over and over.
    """
    if not isinstance(text, str):
        # Checked here because the cache would raise TypeError on a list.
        raise ConfigError(f"config must be text, got {type(text).__name__}")
    return _parse_config(text)


@functools.lru_cache(maxsize=256)
def _parse_config(text: str) -> tuple[Field, ...]:
    if len(text) > MAX_CONFIG_CHARS:
        raise ConfigError(f"config is longer than {MAX_CONFIG_CHARS} characters")
    tokens = text.split()
    if not tokens:
        raise ConfigError("config is empty")
    fields = []
    for number, token in enumerate(tokens, start=1):
        try:
            fields.append(_parse_field(token))
        except ConfigError as error:
            raise ConfigError(f"field {number} ({token!r}): {error}") from None
    _check_names(fields, tokens)
    return tuple(fields)


def _field_text(field: Field) -> str:
    parts = [field.name, "" if field.byte_index is None else str(field.byte_index), field.kind, str(field.size)]
    if field.kind != "char" and (field.little_endian or field.bit_offset is not None):
        parts.append("little-endian" if field.little_endian else "")
    if field.bit_offset is not None:
        # Written even when 7: a given bitOffset moves the next field (see _layout).
        parts.append(str(field.bit_offset))
    return ":".join(parts)


def format_config(fields: Sequence[Field]) -> str:
    """Canonical config text: one space between fields, default parts left out."""
    fields = _as_fields(fields)
    return " ".join(_field_text(field) for field in fields)


def _as_fields(config: str | Sequence[Field]) -> tuple[Field, ...]:
    if isinstance(config, str):
        return parse_config(config)
    try:
        fields = tuple(config)
    except TypeError:
        raise ConfigError(f"config must be text or Fields, got {type(config).__name__}") from None
    if not fields:
        raise ConfigError("config is empty")
    for number, field in enumerate(fields, start=1):
        if not isinstance(field, Field):
            raise ConfigError(f"field {number}: expected a Field, got {type(field).__name__}")
    _check_names(fields, [_field_text(field) for field in fields])
    return fields


def _layout(fields: tuple[Field, ...]) -> tuple[int, ...]:
    """First byte of each field, resolving empty byte indexes."""
    starts = []
    last_used: int | None = None  # last byte the previous field read
    previous_had_offset = False
    for field in fields:
        if field.byte_index is not None:
            start = field.byte_index
        elif last_used is None:
            start = 0
        elif field.kind == "bool" or previous_had_offset:
            start = last_used
        else:
            start = last_used + 1
        starts.append(start)
        last_used = _last_byte(field, start)
        previous_had_offset = field.bit_offset is not None
    return tuple(starts)


def _payload_bytes(payload: str | bytes) -> bytes:
    if isinstance(payload, str):
        # Regex rather than bytes.fromhex, which skips spaces between bytes.
        if not _HEX.fullmatch(payload):
            if len(payload) % 2 and re.fullmatch(r"[0-9A-Fa-f]*", payload):
                raise DataError("payload has an odd number of hex digits")
            raise DataError("payload is not hex")
        data = bytes.fromhex(payload)
    elif isinstance(payload, (bytes, bytearray, memoryview)):
        data = bytes(payload)
    else:
        raise DataError(f"payload must be hex text or bytes, got {type(payload).__name__}")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise DataError(f"payload is longer than {MAX_PAYLOAD_BYTES} bytes")
    return data


def _decode_field(field: Field, start: int, data: bytes) -> Value:
    first_bit, length_bits = _first_bit(field, start), _length_bits(field)
    end_bit = first_bit + length_bits
    if end_bit > 8 * len(data):
        return None
    if field.little_endian:
        # Whole bytes from bit 7 only (Field refuses the rest), so plain bytes.
        raw = int.from_bytes(data[start : start + length_bits // 8], "little")
    else:
        first_byte, last_byte = first_bit // 8, (end_bit - 1) // 8
        window = int.from_bytes(data[first_byte : last_byte + 1], "big")
        raw = window >> (8 * (last_byte + 1) - end_bit) & ((1 << length_bits) - 1)
    if field.kind == "bool":
        return bool(raw)
    if field.kind == "char":
        return raw.to_bytes(field.size, "big").decode("latin-1").rstrip("\x00")
    if field.kind == "float":
        code = ">f" if field.size == 32 else ">d"
        return struct.unpack(code, raw.to_bytes(field.size // 8, "big"))[0]
    if field.kind == "int" and raw >> (field.size - 1):
        raw -= 1 << field.size
    return raw


def decode(config: str | Sequence[Field], payload: str | bytes) -> dict[str, Value]:
    """Decode a payload with a config (text or Fields), keeping field order.

    Raises ConfigError for a bad config and DataError for a bad payload.
    """
    fields = _as_fields(config)
    data = _payload_bytes(payload)
    return {
        field.name: _decode_field(field, start, data)
        for field, start in zip(fields, _layout(fields))
    }


def _is_wide(field: Field) -> bool:
    # The largest magnitude each kind can decode to: uint:L up to 2**L - 1,
    # int:L down to -2**(L-1) (so int:54 still fits).
    if field.kind == "uint":
        return 2**field.size - 1 > MAX_EXACT_FLOAT_INT
    if field.kind == "int":
        return 2 ** (field.size - 1) > MAX_EXACT_FLOAT_INT
    return False


def wide_fields(config: str | Sequence[Field]) -> list[str]:
    """Names, in config order, of the fields whose value can lie beyond ±2**53.

    Beyond MAX_EXACT_FLOAT_INT a float64 (a JavaScript number, most JSON
    readers, a float reading value) no longer holds every integer, so such
    values are rounded: that is ``uint`` longer than 53 bits and ``int``
    longer than 54. Raises ConfigError for a bad config.
    """
    return [field.name for field in _as_fields(config) if _is_wide(field)]


def _accepted_by_old_grammar(text: str) -> bool:
    """Whether the grammar before the bitOffset correction accepted text.

    Frozen: that grammar had the same name, byteIndex, type and length rules
    (checked here through Field), took ``""`` or ``big-endian`` as the
    endianness of ``bool`` and ``char``, and a last part only on ``uint`` and
    ``int``, as a highBit from L-1 to 8*ceil(L/8)-1.
    """
    tokens = text.split()
    if len(text) > MAX_CONFIG_CHARS or not tokens:
        return False
    names = set()
    for token in tokens:
        parts = token.split(":")
        if not 4 <= len(parts) <= 6:
            return False
        name, index, kind, length, *rest = parts
        endianness, high_bit = (rest + ["", ""])[:2]
        wholes = [part for part in (index, length, high_bit) if part]
        if endianness not in _ENDIANNESS or not all(_WHOLE.fullmatch(part) for part in wholes):
            return False
        if not length or name in names:
            return False
        names.add(name)
        try:
            Field(name, int(index) if index else None, kind, int(length))
        except ConfigError:
            return False
        if _ENDIANNESS[endianness] and kind in ("bool", "char"):
            return False
        if high_bit:
            span_bits = 8 * ((int(length) + 7) // 8)
            if kind not in ("uint", "int") or not int(length) - 1 <= int(high_bit) < span_bits:
                return False
    return True


def legacy_meaning_changed(config: str) -> str | None:
    """Why a config stored under the old grammar may decode differently now, or None.

    The old grammar (this module up to commit 5206977) read the last part as
    a highBit counted within the field's own ceil(L/8) bytes, and always
    started a field with an empty byteIndex on the byte after the previous
    field. Compared field by field:

    - a highBit on a ``uint``/``int`` of up to 8 bits names the same bits as
      the bitOffset of that number; on a longer field it is 8 or more, which
      is refused now;
    - big-endian lengths that are not whole bytes read the top bits in both;
      little-endian ones are refused now;
    - ``char`` took an endianness where it takes a bitOffset now;
    - after a field given a bitOffset, a field (not a bool) with an empty
      byteIndex starts on the last byte used, one byte earlier than before.

    So a config both grammars accept reads the same unless the last case
    occurs (tests/readings/test_payload.py checks this against the old decoder).

    Returns a short reason when the new grammar refuses a config the old one
    accepted, accepts one it refused (stored messages were never decoded
    with it), or moves a field; None when the config reads the same under
    both, including when both refuse it. Raises ConfigError if config is
    not text.
    """
    if not isinstance(config, str):
        raise ConfigError(f"config must be text, got {type(config).__name__}")
    old_accepted = _accepted_by_old_grammar(config)
    try:
        fields = parse_config(config)
    except ConfigError as error:
        return f"refused now: {error}" if old_accepted else None
    if not old_accepted:
        return "the old grammar refused it; it decodes now"
    starts = _layout(fields)
    for number in range(2, len(fields) + 1):
        previous, field, start = fields[number - 2], fields[number - 1], starts[number - 1]
        if previous.bit_offset is not None and field.byte_index is None and field.kind != "bool":
            return (
                f"field {number} ({field.name!r}) starts on byte {start} now, not {start + 1}: "
                f"it follows {previous.name!r}, which has a bitOffset, so its empty byteIndex "
                f"means the last byte used"
            )
    return None
