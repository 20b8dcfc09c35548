"""Tests for readings.payload: plain pytest, no database, no Django."""

import json
import math
import re
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from readings import payload
from readings.payload import ConfigError, DataError, Field, PayloadError

# The repo keeps its own copy so a clone runs without /work/shared.
VECTORS_PATH = Path(__file__).parent / "data" / "payload-vectors.json"
SHARED_VECTORS_PATH = Path(__file__).resolve().parents[2] / "shared" / "sigfox" / "payload-vectors.json"
VECTORS = json.loads(VECTORS_PATH.read_text())

# Enough examples to find layout bugs while the file still runs in seconds.
MODERATE = settings(max_examples=300, deadline=None)


def config_error(config):
    with pytest.raises(ConfigError) as info:
        payload.parse_config(config)
    return str(info.value)


def same(a, b):
    """Equality that treats NaN as equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


# Vectors


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: f"{v['config']}|{v['hex']}")
def test_it_decodes_each_vector(vector):
    assert payload.decode(vector["config"], vector["hex"]) == vector["expect"]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: f"{v['config']}|{v['hex']}")
def test_it_keeps_field_order_of_each_vector(vector):
    assert list(payload.decode(vector["config"], vector["hex"])) == list(vector["expect"])


@pytest.mark.parametrize("config", VECTORS["invalid_configs"])
def test_it_rejects_each_invalid_config(config):
    message = config_error(config)
    match = re.match(r"field (\d+) \('([^']*)'\): \S", message)
    assert match, message
    number, token = int(match[1]), match[2]
    assert config.split()[number - 1] == token


def test_it_keeps_the_vector_copy_in_sync():
    if not SHARED_VECTORS_PATH.exists():
        pytest.skip("shared/ is not beside this clone")
    assert json.loads(SHARED_VECTORS_PATH.read_text()) == VECTORS


# Config errors: one message per case


@pytest.mark.parametrize(
    "config, message",
    [
        ("temp::int:0", "field 1 ('temp::int:0'): length must be 1 to 64 bits, got 0"),
        ("a::uint:8 temp::int:65", "field 2 ('temp::int:65'): length must be 1 to 64 bits, got 65"),
        ("temp", "field 1 ('temp'): expected name:byteIndex:type:param[:endianness[:highBit]]"),
        ("temp::int", "field 1 ('temp::int'): expected name:byteIndex:type:param[:endianness[:highBit]]"),
        ("t::uint:4::3:9", "field 1 ('t::uint:4::3:9'): expected name:byteIndex:type:param[:endianness[:highBit]]"),
        ("temp::integer:8", "field 1 ('temp::integer:8'): unknown type 'integer' (expected bool, char, float, uint or int)"),
        ("temp::float:16", "field 1 ('temp::float:16'): float length must be 32 or 64, got 16"),
        ("b::bool:8", "field 1 ('b::bool:8'): bit must be 0 to 7, got 8"),
        ("temp:x:int:8", "field 1 ('temp:x:int:8'): byte index must be a whole number, got 'x'"),
        ("temp:-1:int:8", "field 1 ('temp:-1:int:8'): byte index must be a whole number, got '-1'"),
        ("temp:64:int:8", "field 1 ('temp:64:int:8'): byte index must be 0 to 63, got 64"),
        ("temp::int:8:middle-endian", "field 1 ('temp::int:8:middle-endian'): endianness must be big-endian or little-endian, got 'middle-endian'"),
        ("bad name::int:8", "field 1 ('bad'): expected name:byteIndex:type:param[:endianness[:highBit]]"),
        ("t√::int:8", "field 1 ('t√::int:8'): name must be 1 to 64 letters, digits, _ or -, got 't√'"),
        ("::int:8", "field 1 ('::int:8'): name must be 1 to 64 letters, digits, _ or -, got ''"),
        ("s::char:0", "field 1 ('s::char:0'): length must be 1 to 64 bytes, got 0"),
        ("s::char:3:little-endian", "field 1 ('s::char:3:little-endian'): endianness is only for uint, int and float, not char"),
        ("b::bool:1:little-endian", "field 1 ('b::bool:1:little-endian'): endianness is only for uint, int and float, not bool"),
        ("b::bool:1::0", "field 1 ('b::bool:1::0'): highBit is only for uint and int, not bool"),
        ("f::float:32::31", "field 1 ('f::float:32::31'): highBit is only for uint and int, not float"),
        ("s::uint:4::2", "field 1 ('s::uint:4::2'): highBit must be 3 to 7 for uint:4, got 2"),
        ("s::uint:4::8", "field 1 ('s::uint:4::8'): highBit must be 3 to 7 for uint:4, got 8"),
        ("s::int:12::10", "field 1 ('s::int:12::10'): highBit must be 11 to 15 for int:12, got 10"),
        ("s::uint:4::x", "field 1 ('s::uint:4::x'): highBit must be a whole number, got 'x'"),
        ("s::uint:+8", "field 1 ('s::uint:+8'): length must be a whole number, got '+8'"),
        ("s::uint:８", "field 1 ('s::uint:８'): length must be a whole number, got '８'"),
        ("a::uint:8 b::uint:8 a::int:8", "field 3 ('a::int:8'): duplicate name 'a' (also field 1)"),
    ],
)
def test_it_says_what_is_wrong_and_where(config, message):
    assert config_error(config) == message


@pytest.mark.parametrize("config", ["", "   ", "\n\t"])
def test_it_rejects_an_empty_config(config):
    assert config_error(config) == "config is empty"


def test_it_rejects_a_huge_config():
    assert config_error("a::uint:8 " * 1000) == "config is longer than 4096 characters"


def test_it_rejects_a_config_that_is_not_text():
    with pytest.raises(ConfigError):
        payload.parse_config(["a::uint:8"])


def test_it_rejects_an_empty_field_tuple():
    with pytest.raises(ConfigError, match="config is empty"):
        payload.decode((), "00")


def test_it_rejects_duplicate_names_in_a_field_tuple():
    field = Field("a", None, "uint", 8)
    with pytest.raises(ConfigError, match=r"field 2 \('a::uint:8'\): duplicate name 'a'"):
        payload.decode((field, field), "0000")


def test_it_rejects_a_field_built_by_hand_with_a_bad_size():
    with pytest.raises(ConfigError, match="length must be 1 to 64 bits"):
        Field("a", None, "uint", 0)


def test_it_rejects_a_bool_as_byte_index():
    with pytest.raises(ConfigError, match="byte index"):
        Field("a", True, "uint", 8)


def test_it_makes_every_error_a_value_error():
    assert issubclass(ConfigError, PayloadError)
    assert issubclass(DataError, PayloadError)
    assert issubclass(PayloadError, ValueError)


# Parsing


def test_it_parses_all_six_parts():
    assert payload.parse_config("s:1:int:12:little-endian:15") == (Field("s", 1, "int", 12, True, 15),)


def test_it_parses_an_empty_byte_index_as_none():
    assert payload.parse_config("t::int:8")[0].byte_index is None


def test_it_treats_an_empty_endianness_as_big_endian():
    assert payload.parse_config("s:1:uint:4::3") == (Field("s", 1, "uint", 4, False, 3),)


def test_it_accepts_an_explicit_big_endian():
    assert payload.parse_config("t::uint:16:big-endian") == payload.parse_config("t::uint:16")


def test_it_splits_fields_on_any_white_space():
    assert [f.name for f in payload.parse_config(" a::uint:8\n\tb::uint:8  ")] == ["a", "b"]


def test_it_accepts_names_with_dashes_and_underscores():
    assert payload.parse_config("a-b_C9::uint:8")[0].name == "a-b_C9"


def test_it_caches_parsed_configs():
    assert payload.parse_config("cached::uint:8") is payload.parse_config("cached::uint:8")


# Decoding


def test_it_accepts_bytes():
    assert payload.decode("t::uint:8 p::uint:16", bytes.fromhex("1C03F4")) == {"t": 28, "p": 1012}


def test_it_accepts_a_bytearray():
    assert payload.decode("t::uint:8", bytearray(b"\x1c")) == {"t": 28}


def test_it_accepts_hex_in_either_case():
    assert payload.decode("v::uint:16", "abCD") == payload.decode("v::uint:16", "ABcd") == {"v": 0xABCD}


def test_it_accepts_a_field_tuple():
    fields = payload.parse_config("t::uint:8 p::uint:16")
    assert payload.decode(fields, "1C03F4") == {"t": 28, "p": 1012}


def test_it_accepts_a_field_list():
    assert payload.decode([Field("t", None, "uint", 8)], "1C") == {"t": 28}


@pytest.mark.parametrize("hex_text", ["1", "123", "ABC"])
def test_it_rejects_an_odd_number_of_hex_digits(hex_text):
    with pytest.raises(DataError, match="odd number of hex digits"):
        payload.decode("t::uint:8", hex_text)


@pytest.mark.parametrize("hex_text", ["zz", "12 34", "0x12", "12\n", "１２", "12g4"])
def test_it_rejects_text_that_is_not_hex(hex_text):
    with pytest.raises(DataError, match="payload is not hex"):
        payload.decode("t::uint:8", hex_text)


def test_it_rejects_a_payload_longer_than_64_bytes():
    with pytest.raises(DataError, match="longer than 64 bytes"):
        payload.decode("t::uint:8", "00" * 65)


def test_it_accepts_a_payload_of_64_bytes():
    assert payload.decode("t:63:uint:8", "00" * 63 + "2A") == {"t": 42}


def test_it_rejects_a_payload_of_another_type():
    with pytest.raises(DataError, match="hex text or bytes"):
        payload.decode("t::uint:8", 42)


def test_it_decodes_a_field_partly_past_the_end_as_none():
    assert payload.decode("t::uint:8 p::uint:16", "1C03") == {"t": 28, "p": None}


def test_it_decodes_everything_as_none_on_an_empty_payload():
    assert payload.decode("b::bool:0 s::char:2 f::float:32", b"") == {"b": None, "s": None, "f": None}


def test_it_keeps_a_bool_on_the_last_byte_of_a_wide_field():
    assert payload.decode("v::uint:16 b::bool:0", "0001") == {"v": 1, "b": True}


def test_it_starts_a_first_bool_on_byte_zero():
    assert payload.decode("b::bool:7 v::uint:8", "802A") == {"b": True, "v": 42}


def test_it_follows_the_previous_field_not_the_furthest_one():
    assert payload.decode("a:3:uint:8 b:0:uint:8 c::uint:8", "01020304") == {"a": 4, "b": 1, "c": 2}


def test_it_continues_after_an_explicit_index():
    assert payload.decode("a:2:uint:8 b::uint:8", "00000304") == {"a": 3, "b": 4}


def test_it_decodes_char_as_latin1_and_strips_trailing_nuls():
    assert payload.decode("s::char:4", "41E90000") == {"s": "Aé"}


def test_it_keeps_inner_nuls_in_char():
    assert payload.decode("s::char:3", "410042") == {"s": "A\x00B"}


def test_it_returns_nan_as_is():
    assert math.isnan(payload.decode("f::float:32", "7FC00000")["f"])


def test_it_returns_infinity_as_is():
    assert payload.decode("f::float:64", "FFF0000000000000") == {"f": -math.inf}


def test_it_reads_the_top_bits_without_high_bit():
    assert payload.decode("a::uint:3", "A0") == {"a": 5}


def test_it_sign_extends_short_ints():
    assert payload.decode("a::int:4 b:0:int:4::3", "F7") == {"a": -1, "b": 7}


def test_it_reads_a_12_bit_field_across_two_bytes():
    assert payload.decode("hi::uint:4 lo:0:uint:12::11", "ABCD") == {"hi": 0xA, "lo": 0xBCD}


def test_it_reads_a_short_little_endian_span():
    # Bytes 34 12 read little-endian are 0x1234; the top 12 bits are 0x123.
    assert payload.decode("v::uint:12:little-endian", "3412") == {"v": 0x123}


def test_it_reads_64_bit_ints():
    assert payload.decode("u::uint:64 i:0:int:64", "FF" * 8) == {"u": 2**64 - 1, "i": -1}


# format_config


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["config"])
def test_it_round_trips_each_vector_config(vector):
    fields = payload.parse_config(vector["config"])
    assert payload.parse_config(payload.format_config(fields)) == fields


def test_it_formats_a_canonical_config():
    fields = payload.parse_config(" a:1:uint:16:big-endian\tb::int:12:little-endian  c:2:uint:4::3 ")
    assert payload.format_config(fields) == "a:1:uint:16 b::int:12:little-endian c:2:uint:4::3"


def test_it_refuses_to_format_no_fields():
    with pytest.raises(ConfigError, match="config is empty"):
        payload.format_config(())


# Properties

# Each part drawn from plausible and wrong values, so that random configs
# are sometimes valid and otherwise fail at any of the checks.
grammar_field = st.tuples(
    st.sampled_from(["a", "b", "t-1", "T_2", "", "é", "a b"]),
    st.sampled_from(["", "", "0", "1", "63", "64", "x", "-1"]),
    st.sampled_from(["bool", "char", "float", "uint", "int", "integer", ""]),
    st.sampled_from(["0", "1", "3", "7", "8", "12", "32", "64", "65", "", "+8"]),
    st.lists(st.sampled_from(["", "big-endian", "little-endian", "middle", "3", "11", "x"]), max_size=3),
).map(lambda parts: ":".join([*parts[:4], *parts[4]]))
grammar_text = st.lists(grammar_field, max_size=6).map(" ".join)


@MODERATE
@given(config=st.one_of(st.text(max_size=60), grammar_text), data=st.one_of(st.binary(max_size=70), st.text(max_size=20)))
def test_it_returns_a_dict_or_raises_a_payload_error(config, data):
    try:
        result = payload.decode(config, data)
    except PayloadError:
        return
    assert isinstance(result, dict)


@st.composite
def fields(draw, name):
    kind = draw(st.sampled_from(payload.KINDS))
    size = {
        "bool": st.integers(0, 7),
        "char": st.integers(1, 64),
        "float": st.sampled_from([32, 64]),
        "uint": st.integers(1, 64),
        "int": st.integers(1, 64),
    }[kind]
    size = draw(size)
    high_bit = None
    if kind in ("uint", "int"):
        span_bits = 8 * ((size + 7) // 8)
        high_bit = draw(st.none() | st.integers(size - 1, span_bits - 1))
    return Field(
        name=name,
        byte_index=draw(st.none() | st.integers(0, 63)),
        kind=kind,
        size=size,
        little_endian=kind in ("uint", "int", "float") and draw(st.booleans()),
        high_bit=high_bit,
    )


NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
names = st.text(alphabet=NAME_CHARS, min_size=1, max_size=8)
field_tuples = st.lists(names, min_size=1, max_size=8, unique=True).flatmap(
    lambda ns: st.tuples(*(fields(n) for n in ns))
)

EXPECTED_TYPES = {"bool": bool, "char": str, "float": float, "uint": int, "int": int}


@MODERATE
@given(fields=field_tuples, data=st.binary(max_size=64))
def test_it_decodes_any_valid_config(fields, data):
    result = payload.decode(fields, data)
    assert list(result) == [f.name for f in fields]
    for field in fields:
        value = result[field.name]
        assert value is None or type(value) is EXPECTED_TYPES[field.kind]
    text_result = payload.decode(payload.format_config(fields), data.hex())
    assert all(same(result[k], text_result[k]) for k in result)


@MODERATE
@given(fields=field_tuples)
def test_it_round_trips_any_valid_config(fields):
    assert payload.parse_config(payload.format_config(fields)) == fields


@MODERATE
@given(data=st.data(), kind=st.sampled_from(["uint", "int"]), length=st.integers(1, 64),
       little_endian=st.booleans(), offset=st.integers(0, 8))
def test_it_reads_back_an_encoded_integer(data, kind, length, little_endian, offset):
    if kind == "int":
        value = data.draw(st.integers(-(2 ** (length - 1)), 2 ** (length - 1) - 1))
    else:
        value = data.draw(st.integers(0, 2**length - 1))
    span = (length + 7) // 8
    order = "little" if little_endian else "big"
    high_bit = data.draw(st.integers(length - 1, 8 * span - 1))
    low_bit = high_bit - length + 1
    mask = ((1 << length) - 1) << low_bit
    # Random bits around the field must not leak into it.
    noise = data.draw(st.integers(0, 2 ** (8 * span) - 1))
    raw = (noise & ~mask) | ((value << low_bit) & mask)
    prefix = data.draw(st.binary(min_size=offset, max_size=offset))
    endianness = "little-endian" if little_endian else ""
    config = f"v:{offset}:{kind}:{length}:{endianness}:{high_bit}"
    assert payload.decode(config, prefix + raw.to_bytes(span, order)) == {"v": value}


@MODERATE
@given(kind=st.sampled_from(["uint", "int"]), span=st.integers(1, 8), little_endian=st.booleans(), data=st.data())
def test_it_reads_back_a_whole_byte_integer(kind, span, little_endian, data):
    signed = kind == "int"
    bits = 8 * span
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    value = data.draw(st.integers(low, high))
    encoded = value.to_bytes(span, "little" if little_endian else "big", signed=signed)
    config = f"v::{kind}:{bits}" + (":little-endian" if little_endian else "")
    assert payload.decode(config, encoded) == {"v": value}


@MODERATE
@given(value=st.floats(allow_nan=False), little_endian=st.booleans())
def test_it_reads_back_a_packed_double(value, little_endian):
    encoded = struct.pack("<d" if little_endian else ">d", value)
    config = "f::float:64" + (":little-endian" if little_endian else "")
    assert payload.decode(config, encoded) == {"f": value}


def test_it_limits_names_to_64_characters():
    assert payload.decode("x" * 64 + "::uint:8", "05") == {"x" * 64: 5}
    with pytest.raises(payload.ConfigError, match="name must be 1 to 64"):
        payload.parse_config("x" * 65 + "::uint:8")
