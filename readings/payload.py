"""Decode Sigfox payloads with the backend's "custom payload config" grammar.

Pure module: standard library only, no Django, so it can be tested and reused
(re-decoding stored messages) without a database.

A config is fields separated by white space; each field is::

    name:byteIndex:type:param[:endianness[:highBit]]

name
    ASCII letters, digits, ``_`` and ``-`` (at most 64); unique within the config.
byteIndex
    Offset of the field's first byte, 0 to 63. Left empty, the first field
    starts at byte 0; a ``bool`` stays on the last byte used by the previous
    field; any other type starts on the byte after it. "Previous" means the
    field just before in the config, so an explicit index resets the cursor.
type:param
    ``bool:B``      bit B (0 to 7, 7 = most significant) of one byte.
    ``char:N``      N bytes (1 to 64) as text, decoded as latin-1 (every byte
                    maps to one character, so decoding never fails); trailing
                    NUL characters are stripped.
    ``float:32|64`` IEEE 754. NaN and infinities are returned as they are;
                    the caller decides whether to store them.
    ``uint:L``      L bits (1 to 64), unsigned.
    ``int:L``       L bits (1 to 64), two's complement.
endianness
    ``big-endian`` (the default, also when left empty) or ``little-endian``;
    only for ``uint``, ``int`` and ``float``.
highBit
    Only for ``uint`` and ``int``. An L-bit field spans ceil(L/8) bytes, read
    as one unsigned integer in the field's byte order; the value is its bits
    highBit..highBit-L+1 (bit 0 = least significant). highBit defaults to the
    top bit of the span, so a length that is not a multiple of 8 reads the
    top L bits. It must satisfy L-1 <= highBit <= 8*ceil(L/8)-1: for a field
    of one byte that is 0 to 7, and the field never leaves its span.

A field whose bytes are not all inside the payload decodes to ``None``.
Payloads are hex text (either case, possibly empty) or bytes, up to 64 bytes.
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
]

KINDS = ("bool", "char", "float", "uint", "int")
MAX_BYTE_INDEX = 63
MAX_PAYLOAD_BYTES = 64
# Configs come from users; cap them so a pasted novel cannot fill the cache.
MAX_CONFIG_CHARS = 4096

# Names become reading quantities, stored in 64 characters.
MAX_NAME_CHARS = 64
_NAME = re.compile(r"[A-Za-z0-9_-]{1,%d}" % MAX_NAME_CHARS)
_WHOLE = re.compile(r"[0-9]+")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*")
_ENDIANNESS = {"": False, "big-endian": False, "little-endian": True}
_FORMAT = "expected name:byteIndex:type:param[:endianness[:highBit]]"

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
    previous field" (see the module docstring).
    """

    name: str
    byte_index: int | None
    kind: str
    size: int
    little_endian: bool = False
    high_bit: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigError(
                f"name must be 1 to {MAX_NAME_CHARS} letters, digits, _ or -, got {self.name!r}"
            )
        if self.byte_index is not None and not _is_int_in(self.byte_index, 0, MAX_BYTE_INDEX):
            raise ConfigError(f"byte index must be 0 to {MAX_BYTE_INDEX}, got {self.byte_index!r}")
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
        if self.high_bit is not None:
            if self.kind not in ("uint", "int"):
                raise ConfigError(f"highBit is only for uint and int, not {self.kind}")
            low, high = self.size - 1, 8 * _span(self) - 1
            if not _is_int_in(self.high_bit, low, high):
                raise ConfigError(
                    f"highBit must be {low} to {high} for {self.kind}:{self.size}, got {self.high_bit!r}"
                )


def _is_int_in(value: object, low: int, high: int) -> bool:
    # bool is an int subclass; True must not pass as byte index 1.
    return type(value) is int and low <= value <= high


def _span(field: Field) -> int:
    """Number of bytes the field reads."""
    if field.kind == "bool":
        return 1
    if field.kind == "char":
        return field.size
    return (field.size + 7) // 8


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
    name, index, kind, param, *rest = parts
    endianness = rest[0] if rest else ""
    high_bit = rest[1] if len(rest) > 1 else ""
    if endianness not in _ENDIANNESS:
        raise ConfigError(f"endianness must be big-endian or little-endian, got {endianness!r}")
    if kind not in KINDS:
        # Checked before the param so "temp::integer:8" says what is wrong.
        raise ConfigError(f"unknown type {kind!r} (expected bool, char, float, uint or int)")
    what = "bit" if kind == "bool" else "length"
    return Field(
        name=name,
        byte_index=_whole(index, "byte index") if index else None,
        kind=kind,
        size=_whole(param, what),
        little_endian=_ENDIANNESS[endianness],
        high_bit=_whole(high_bit, "highBit") if high_bit else None,
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
    if field.little_endian or field.high_bit is not None:
        parts.append("little-endian" if field.little_endian else "")
    if field.high_bit is not None:
        parts.append(str(field.high_bit))
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
    last_used: int | None = None  # last byte of the previous field
    for field in fields:
        if field.byte_index is not None:
            start = field.byte_index
        elif last_used is None:
            start = 0
        elif field.kind == "bool":
            start = last_used
        else:
            start = last_used + 1
        starts.append(start)
        last_used = start + _span(field) - 1
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
    chunk = data[start : start + _span(field)]
    if len(chunk) < _span(field):
        return None
    if field.kind == "bool":
        return bool(chunk[0] >> field.size & 1)
    if field.kind == "char":
        return chunk.decode("latin-1").rstrip("\x00")
    order = "little" if field.little_endian else "big"
    if field.kind == "float":
        code = ("<" if field.little_endian else ">") + ("f" if field.size == 32 else "d")
        return float(struct.unpack(code, chunk)[0])
    high_bit = 8 * len(chunk) - 1 if field.high_bit is None else field.high_bit
    value = int.from_bytes(chunk, order) >> (high_bit - field.size + 1) & ((1 << field.size) - 1)
    if field.kind == "int" and value >> (field.size - 1):
        value -= 1 << field.size
    return value


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
