"""Tests for readings.payload: plain pytest, no database, no Django.

The grammar is the one of /work/shared/sigfox/CALLBACKS.md section 3 (the
Sigfox backend's help text): name:byteIndex:type:length[:endianness][:bitOffset].
"""

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
VECTORS_PATH = Path(__file__).resolve().parents[1] / "data" / "payload-vectors.json"
SHARED_VECTORS_PATH = Path(__file__).resolve().parents[3] / "shared" / "sigfox" / "payload-vectors.json"
VECTORS = json.loads(VECTORS_PATH.read_text())

# Enough examples to find layout bugs while the file still runs in seconds: twice
# the profile's count (tests/conftest.py), 100 by hand and 400 in CI.
MODERATE = settings(max_examples=2 * settings.default.max_examples, deadline=None)
# The old grammar against the new, over more of the space of configs: 150 and 600.
WIDE = settings(max_examples=3 * settings.default.max_examples, deadline=None)

OLD_REFUSED = "the old grammar refused it; it decodes now"


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


def test_it_keeps_the_vector_copy_byte_for_byte():
    if not SHARED_VECTORS_PATH.exists():
        pytest.skip("shared/ is not beside this clone")
    assert VECTORS_PATH.read_bytes() == SHARED_VECTORS_PATH.read_bytes()


def test_it_has_the_bit_offset_vectors():
    configs = {vector["config"] for vector in VECTORS["vectors"]}
    assert "x:1:uint:8:big-endian:5" in configs
    assert {"x::uint:8:big-endian:8", "x::uint:12:little-endian:3"} <= set(VECTORS["invalid_configs"])


# Config errors: one message per case


@pytest.mark.parametrize(
    "config, message",
    [
        ("temp::int:0", "field 1 ('temp::int:0'): length must be 1 to 64 bits, got 0"),
        ("a::uint:8 temp::int:65", "field 2 ('temp::int:65'): length must be 1 to 64 bits, got 65"),
        ("temp", "field 1 ('temp'): expected name:byteIndex:type:length[:endianness][:bitOffset]"),
        ("temp::int", "field 1 ('temp::int'): expected name:byteIndex:type:length[:endianness][:bitOffset]"),
        ("t::uint:4::3:9", "field 1 ('t::uint:4::3:9'): expected name:byteIndex:type:length[:endianness][:bitOffset]"),
        ("temp::integer:8", "field 1 ('temp::integer:8'): unknown type 'integer' (expected bool, char, float, uint or int)"),
        ("temp::float:16", "field 1 ('temp::float:16'): float length must be 32 or 64, got 16"),
        ("b::bool:8", "field 1 ('b::bool:8'): bit must be 0 to 7, got 8"),
        ("temp:x:int:8", "field 1 ('temp:x:int:8'): byteIndex must be a whole number, got 'x'"),
        ("temp:-1:int:8", "field 1 ('temp:-1:int:8'): byteIndex must be a whole number, got '-1'"),
        ("temp:64:int:8", "field 1 ('temp:64:int:8'): byteIndex must be 0 to 63, got 64"),
        ("temp::int:8:middle-endian", "field 1 ('temp::int:8:middle-endian'): endianness must be big-endian or little-endian, got 'middle-endian'"),
        ("x::uint:8:3", "field 1 ('x::uint:8:3'): endianness must be big-endian or little-endian, got '3' (leave it empty before a bitOffset: '::3')"),
        ("bad name::int:8", "field 1 ('bad'): expected name:byteIndex:type:length[:endianness][:bitOffset]"),
        ("t√::int:8", "field 1 ('t√::int:8'): name must be 1 to 64 letters, digits, _ or -, got 't√'"),
        ("::int:8", "field 1 ('::int:8'): name must be 1 to 64 letters, digits, _ or -, got ''"),
        ("s::char:0", "field 1 ('s::char:0'): length must be 1 to 64 bytes, got 0"),
        ("s::char:3:little-endian", "field 1 ('s::char:3:little-endian'): endianness is only for uint, int and float, not char"),
        ("s::char:3:big-endian", "field 1 ('s::char:3:big-endian'): endianness is only for uint, int and float, not char"),
        ("s::char:3::5", "field 1 ('s::char:3::5'): expected name:byteIndex:char:length[:bitOffset] (char has no endianness)"),
        ("s::char:3:8", "field 1 ('s::char:3:8'): bitOffset must be 0 to 7, got 8"),
        ("b::bool:1:little-endian", "field 1 ('b::bool:1:little-endian'): endianness is only for uint, int and float, not bool"),
        ("b::bool:1::0", "field 1 ('b::bool:1::0'): bitOffset is only for uint, int, float and char, not bool"),
        ("x::uint:8:big-endian:8", "field 1 ('x::uint:8:big-endian:8'): bitOffset must be 0 to 7, got 8"),
        ("f::float:32::31", "field 1 ('f::float:32::31'): bitOffset must be 0 to 7, got 31"),
        ("s::int:12::11", "field 1 ('s::int:12::11'): bitOffset must be 0 to 7, got 11"),
        ("s::uint:4::x", "field 1 ('s::uint:4::x'): bitOffset must be a whole number, got 'x'"),
        ("s::uint:4::-1", "field 1 ('s::uint:4::-1'): bitOffset must be a whole number, got '-1'"),
        ("x::uint:12:little-endian:3", "field 1 ('x::uint:12:little-endian:3'): little-endian is not defined by Sigfox for a length that is not a whole number of bytes, got uint:12"),
        ("x::int:4:little-endian", "field 1 ('x::int:4:little-endian'): little-endian is not defined by Sigfox for a length that is not a whole number of bytes, got int:4"),
        ("x::uint:16:little-endian:3", "field 1 ('x::uint:16:little-endian:3'): little-endian is not defined by Sigfox with a bitOffset other than 7, got 3"),
        ("f::float:32:little-endian:0", "field 1 ('f::float:32:little-endian:0'): little-endian is not defined by Sigfox with a bitOffset other than 7, got 0"),
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
    with pytest.raises(ConfigError, match="byteIndex"):
        Field("a", True, "uint", 8)


def test_it_rejects_a_bool_as_bit_offset():
    with pytest.raises(ConfigError, match="bitOffset must be 0 to 7, got True"):
        Field("a", None, "uint", 8, bit_offset=True)


def test_it_rejects_a_little_endian_field_built_by_hand_with_an_offset():
    with pytest.raises(ConfigError, match="little-endian is not defined by Sigfox with a bitOffset"):
        Field("a", None, "uint", 16, little_endian=True, bit_offset=6)


def test_it_makes_every_error_a_value_error():
    assert issubclass(ConfigError, PayloadError)
    assert issubclass(DataError, PayloadError)
    assert issubclass(PayloadError, ValueError)


# Parsing


def test_it_parses_all_six_parts():
    assert payload.parse_config("s:1:int:16:little-endian:7") == (Field("s", 1, "int", 16, True, 7),)


def test_it_calls_the_last_part_bit_offset():
    assert payload.parse_config("s:1:uint:4::3")[0].bit_offset == 3
    assert not hasattr(payload.parse_config("s:1:uint:4::3")[0], "high_bit")


def test_it_parses_an_empty_byte_index_as_none():
    assert payload.parse_config("t::int:8")[0].byte_index is None


def test_it_treats_an_empty_endianness_as_big_endian():
    assert payload.parse_config("Status:1:uint:4::3") == (Field("Status", 1, "uint", 4, False, 3),)


def test_it_accepts_an_explicit_big_endian():
    assert payload.parse_config("t::uint:16:big-endian") == payload.parse_config("t::uint:16")


def test_it_parses_an_empty_bit_offset_as_none():
    assert payload.parse_config("t::uint:16::")[0].bit_offset is None


def test_it_keeps_an_explicit_bit_offset_of_7():
    assert payload.parse_config("t::uint:16::7")[0].bit_offset == 7


def test_it_reads_the_part_after_a_char_length_as_bit_offset():
    assert payload.parse_config("s:2:char:3:5") == (Field("s", 2, "char", 3, False, 5),)


def test_it_parses_an_empty_char_bit_offset_as_none():
    assert payload.parse_config("s::char:3:")[0].bit_offset is None


def test_it_accepts_a_float_bit_offset():
    assert payload.parse_config("f:0:float:32:big-endian:3")[0].bit_offset == 3


@pytest.mark.parametrize("config", ["b::bool:1:", "b::bool:1:big-endian", "b::bool:1::", "b::bool:1:big-endian:"])
def test_it_still_accepts_empty_or_big_endian_parts_on_a_bool(config):
    assert payload.parse_config(config) == (Field("b", None, "bool", 1),)


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


def test_it_reads_the_top_bits_without_bit_offset():
    assert payload.decode("a::uint:3", "A0") == {"a": 5}


def test_it_sign_extends_short_ints():
    assert payload.decode("a::int:4 b:0:int:4::3", "F7") == {"a": -1, "b": 7}


def test_it_reads_64_bit_ints():
    assert payload.decode("u::uint:64 i:0:int:64", "FF" * 8) == {"u": 2**64 - 1, "i": -1}


# Decoding: bitOffset (CALLBACKS.md section 3)


def test_it_reads_two_nibbles_of_one_byte_with_bit_offsets():
    config = "mode::uint:4:big-endian:7 batt::uint:4:big-endian:3 temp:1:int:8"
    assert payload.decode(config, "a51b") == {"mode": 10, "batt": 5, "temp": 27}


def test_it_continues_a_bit_offset_field_into_the_next_byte():
    assert payload.decode("x:1:uint:8:big-endian:5", "0025b2") == {"x": 150}


def test_it_reads_10_bits_from_an_explicit_bit_7():
    assert payload.decode("x:0:uint:10:big-endian:7", "ffc0") == {"x": 1023}


def test_it_reads_10_bits_from_bit_7_by_default():
    assert payload.decode("x:0:uint:10", "ffc0") == {"x": 1023}


def test_it_reads_a_float_from_an_explicit_bit_7():
    assert payload.decode("f:0:float:32:big-endian:7", "41b40000") == {"f": 22.5}


def test_it_reads_a_float_that_starts_mid_byte():
    # 41b40000 shifted right by a nibble, after the nibble a.
    assert payload.decode("f:0:float:32::3", "a41b400000") == {"f": 22.5}


def test_it_reads_a_char_that_starts_mid_byte():
    assert payload.decode("s:0:char:2:3", "04142430") == {"s": "AB"}


def test_it_reads_a_char_with_its_bit_offset_after_the_length():
    # Bytes 2 to 5 are 11010100 00011001 00011010 00111111; from bit 5 of byte 2,
    # 24 bits are 01010000 01100100 01101000, "Pdh".
    assert payload.decode("s:2:char:3:5", "0000d4191a3f") == {"s": "Pdh"}


def test_it_sign_extends_an_int_that_crosses_bytes():
    assert payload.decode("t:0:int:12::3", "f800") == {"t": -2048}


def test_it_reads_a_low_nibble_like_the_backend_example():
    assert payload.decode("Status:1:uint:4::3", "2A9C") == {"Status": 12}


def test_it_reads_bit_0_alone():
    assert payload.decode("x:0:uint:1::0", "01") == {"x": 1}


def test_it_reads_64_bits_across_nine_bytes():
    assert payload.decode("x:0:uint:64::3", "0f" + "ff" * 7 + "f0") == {"x": 2**64 - 1}


def test_it_decodes_a_bit_offset_field_past_the_end_as_none():
    assert payload.decode("x:1:uint:8::3", "0012") == {"x": None}


def test_it_reads_the_same_nibble_twice_after_an_offset_field():
    assert payload.decode("a::uint:4:big-endian:7 b::uint:4", "a5") == {"a": 10, "b": 10}


def test_it_starts_on_the_next_byte_after_a_field_without_offset():
    assert payload.decode("a::uint:4 b::uint:4", "a5b6") == {"a": 10, "b": 11}


def test_it_counts_an_explicit_bit_offset_of_7_as_given():
    assert payload.decode("a::uint:8::7 b::uint:8", "0102") == {"a": 1, "b": 1}


def test_it_does_not_count_an_empty_bit_offset_as_given():
    assert payload.decode("a::uint:8:: b::uint:8", "0102") == {"a": 1, "b": 2}


def test_it_follows_on_the_last_byte_a_crossing_field_used():
    # a: bits 3..0 of byte 0 then 7..4 of byte 1; b: the low nibble of byte 1.
    assert payload.decode("a::uint:8::3 b::uint:4::3", "1234") == {"a": 0x23, "b": 4}


def test_it_starts_at_bit_7_of_the_last_byte_without_its_own_offset():
    assert payload.decode("a::uint:8::3 b::uint:4", "1234") == {"a": 0x23, "b": 3}


def test_it_keeps_a_bool_on_the_last_byte_a_crossing_field_used():
    assert payload.decode("a::uint:8::3 f::bool:0", "1235") == {"a": 0x23, "f": True}


def test_it_keeps_a_bool_on_the_byte_of_an_offset_field():
    assert payload.decode("a::uint:4::7 f::bool:3", "08") == {"a": 0, "f": True}


def test_it_starts_on_the_next_byte_after_a_bool():
    assert payload.decode("a::uint:4::7 f::bool:3 b::uint:8", "082a") == {"a": 0, "f": True, "b": 42}


def test_it_obeys_an_explicit_index_after_an_offset_field():
    assert payload.decode("a::uint:4::3 b:2:uint:8", "01022a") == {"a": 1, "b": 42}


def test_it_reads_a_little_endian_field_with_an_explicit_bit_7():
    assert payload.decode("x::uint:16:little-endian:7", "3412") == {"x": 0x1234}


def test_it_follows_a_little_endian_field_given_bit_7_on_its_last_byte():
    assert payload.decode("x::uint:16:little-endian:7 y::uint:8", "341256") == {"x": 0x1234, "y": 0x12}


# format_config


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["config"])
def test_it_round_trips_each_vector_config(vector):
    fields = payload.parse_config(vector["config"])
    assert payload.parse_config(payload.format_config(fields)) == fields


def test_it_formats_a_canonical_config():
    fields = payload.parse_config(" a:1:uint:16:big-endian\tb::int:16:little-endian  c:2:uint:4::3 ")
    assert payload.format_config(fields) == "a:1:uint:16 b::int:16:little-endian c:2:uint:4::3"


def test_it_formats_a_char_bit_offset_without_an_endianness():
    assert payload.format_config(payload.parse_config("s:2:char:3:5")) == "s:2:char:3:5"


def test_it_formats_an_explicit_bit_offset_of_7():
    assert payload.format_config(payload.parse_config("a::uint:8:big-endian:7")) == "a::uint:8::7"


def test_it_refuses_to_format_no_fields():
    with pytest.raises(ConfigError, match="config is empty"):
        payload.format_config(())


# wide_fields


def test_it_names_fields_that_can_exceed_2_53():
    assert payload.wide_fields("a::uint:53 b::uint:54 c::int:54 d::int:55 e::float:64 f::char:8") == ["b", "d"]


def test_it_finds_no_wide_field_in_the_vectors():
    assert all(payload.wide_fields(vector["config"]) == [] for vector in VECTORS["vectors"])


def test_it_calls_wide_exactly_the_lengths_whose_values_a_float_rounds():
    for kind in ("uint", "int"):
        for length in range(1, 65):
            low, high = (0, 2**length - 1) if kind == "uint" else (-(2 ** (length - 1)), 2 ** (length - 1) - 1)
            rounded = int(float(low)) != low or int(float(high)) != high
            assert payload.wide_fields(f"v::{kind}:{length}") == (["v"] if rounded else []), (kind, length)


def test_it_finds_wide_fields_in_a_field_tuple():
    assert payload.wide_fields((Field("u", None, "uint", 64),)) == ["u"]


def test_it_refuses_a_bad_config_when_looking_for_wide_fields():
    with pytest.raises(ConfigError, match="length must be 1 to 64 bits"):
        payload.wide_fields("u::uint:65")


# legacy_meaning_changed: configs stored under the old highBit grammar


@pytest.mark.parametrize(
    "config",
    [
        "temp::int:8 vbat::uint:16:little-endian",
        "Speed::uint:8 Direction::uint:4 Status:1:uint:4::3",
        "Speed::uint:8 Direction::uint:4 Status::uint:4",
        "x::uint:12 y::uint:4",
        "s::uint:4::3",
        "a::uint:4::7 b:0:uint:4::3",
        "s::uint:4::3 t::bool:1",
        "a::uint:8:: b::uint:8",
        "s::char:3: f::float:32:: b::bool:1:big-endian",
        "temp::int:99",
        "x::uint:16:little-endian:3",
    ],
)
def test_it_finds_no_change_where_both_grammars_read_the_same(config):
    assert payload.legacy_meaning_changed(config) is None


@pytest.mark.parametrize(
    "config, reason",
    [
        ("s::int:12::11", "refused now: field 1 ('s::int:12::11'): bitOffset must be 0 to 7, got 11"),
        ("t::int:8 v::uint:16:little-endian:15", "refused now: field 2 ('v::uint:16:little-endian:15'): bitOffset must be 0 to 7, got 15"),
        ("x::uint:12:little-endian", "refused now: field 1 ('x::uint:12:little-endian'): little-endian is not defined by Sigfox for a length that is not a whole number of bytes, got uint:12"),
        ("x::uint:4:little-endian:3", "refused now: field 1 ('x::uint:4:little-endian:3'): little-endian is not defined by Sigfox for a length that is not a whole number of bytes, got uint:4"),
        ("s::char:3:big-endian", "refused now: field 1 ('s::char:3:big-endian'): endianness is only for uint, int and float, not char"),
        ("s::char:3::", "refused now: field 1 ('s::char:3::'): expected name:byteIndex:char:length[:bitOffset] (char has no endianness)"),
    ],
)
def test_it_says_when_a_legacy_config_is_refused_now(config, reason):
    assert payload.legacy_meaning_changed(config) == reason


@pytest.mark.parametrize(
    "config",
    ["s::char:3:5", "x::uint:12::3", "f::float:32::7", "x:1:uint:8:big-endian:5", "x::uint:4::2"],
)
def test_it_says_when_a_config_the_old_grammar_refused_decodes_now(config):
    assert payload.legacy_meaning_changed(config) == OLD_REFUSED


@pytest.mark.parametrize(
    "config, reason",
    [
        ("s::uint:4::3 t::uint:8", "field 2 ('t') starts on byte 0 now, not 1: it follows 's', which has a bitOffset, so its empty byteIndex means the last byte used"),
        ("a:2:uint:8::7 b::uint:8", "field 2 ('b') starts on byte 2 now, not 3: it follows 'a', which has a bitOffset, so its empty byteIndex means the last byte used"),
        ("x::uint:8:little-endian:7 y::uint:8", "field 2 ('y') starts on byte 0 now, not 1: it follows 'x', which has a bitOffset, so its empty byteIndex means the last byte used"),
        ("t::uint:8 mode::uint:4::7 batt::uint:4::3", "field 3 ('batt') starts on byte 1 now, not 2: it follows 'mode', which has a bitOffset, so its empty byteIndex means the last byte used"),
    ],
)
def test_it_says_which_field_moves_after_a_bit_offset(config, reason):
    assert payload.legacy_meaning_changed(config) == reason


def test_it_flags_the_nibble_vector_that_read_differently_before():
    assert payload.legacy_meaning_changed(VECTORS["vectors"][19]["config"]).startswith("field 2 ('batt')")


def test_it_refuses_to_compare_a_config_that_is_not_text():
    with pytest.raises(ConfigError, match="config must be text"):
        payload.legacy_meaning_changed(["a::uint:8"])


def old_grammar_decode(config: str, data: bytes) -> dict | None:
    """What the decoder before the bitOffset correction returned; None where it refused.

    Frozen oracle of readings/payload.py as of commit 5206977: the last part
    was a highBit within the field's own ceil(L/8) bytes (read in the field's
    byte order), and an empty byteIndex always meant the byte after the
    previous field (its own byte for a bool).
    """
    tokens = config.split()
    if not tokens or len(config) > 4096:
        return None
    fields, names = [], set()
    limits = {"bool": range(8), "char": range(1, 65), "float": (32, 64), "uint": range(1, 65), "int": range(1, 65)}
    for token in tokens:
        parts = token.split(":")
        if not 4 <= len(parts) <= 6:
            return None
        name, index, kind, length, *rest = parts
        endianness, high_bit = (rest + ["", ""])[:2]
        if endianness not in ("", "big-endian", "little-endian") or kind not in limits:
            return None
        if not all(re.fullmatch("[0-9]+", part) for part in (index or "0", length, high_bit or "0")):
            return None
        if name in names or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            return None
        names.add(name)
        size, little = int(length), endianness == "little-endian"
        if (index and int(index) > 63) or size not in limits[kind] or (little and kind in ("bool", "char")):
            return None
        span = {"bool": 1, "char": size, "float": size // 8}.get(kind, (size + 7) // 8)
        if high_bit and (kind not in ("uint", "int") or not size - 1 <= int(high_bit) <= 8 * span - 1):
            return None
        top = int(high_bit) if high_bit else 8 * span - 1
        fields.append((name, int(index) if index else None, kind, size, little, top, span))
    result, last = {}, None
    for name, index, kind, size, little, top, span in fields:
        if index is not None:
            start = index
        else:
            start = 0 if last is None else last if kind == "bool" else last + 1
        last = start + span - 1
        chunk = data[start : start + span]
        if len(chunk) < span:
            result[name] = None
        elif kind == "bool":
            result[name] = bool(chunk[0] >> size & 1)
        elif kind == "char":
            result[name] = chunk.decode("latin-1").rstrip("\x00")
        elif kind == "float":
            result[name] = struct.unpack(("<" if little else ">") + ("f" if size == 32 else "d"), chunk)[0]
        else:
            value = int.from_bytes(chunk, "little" if little else "big") >> (top - size + 1) & ((1 << size) - 1)
            result[name] = value - (1 << size) if kind == "int" and value >> (size - 1) else value
    return result


def test_the_oracle_reads_the_old_high_bit():
    assert old_grammar_decode("s::int:12::11 t::uint:8", bytes.fromhex("f80012")) == {"s": -2048, "t": 0x12}


# Drawn around the boundaries of both grammars, so that most configs are
# valid under one or both and the differences are reached often.
LEGACY_LENGTHS = {
    "bool": ["0", "3", "7", "8"],
    "char": ["1", "3", "0"],
    "float": ["32", "64", "16"],
    "uint": ["1", "3", "4", "7", "8", "9", "12", "16", "32", "64"],
    "int": ["1", "3", "4", "7", "8", "9", "12", "16", "32", "64"],
}
legacy_part_lists = st.lists(
    st.sampled_from(["uint", "int", "uint", "int", "bool", "char", "float"]).flatmap(
        lambda kind: st.tuples(
            st.sampled_from(["", "", "", "0", "1", "2", "63"]),
            st.just(kind),
            st.sampled_from(LEGACY_LENGTHS[kind]),
            st.sampled_from([None, None, None, "", "big-endian", "little-endian"]),
            st.sampled_from([None, None, None, None, "", "0", "3", "5", "7", "7", "8", "11", "15"]),
        )
    ),
    min_size=1,
    max_size=4,
)


def legacy_config(part_lists) -> str:
    tokens = []
    for number, (index, kind, length, endianness, last) in enumerate(part_lists):
        parts = [f"f{number}", index, kind, length]
        if endianness is not None or last is not None:
            parts.append(endianness or "")
        if last is not None:
            parts.append(last)
        tokens.append(":".join(parts))
    return " ".join(tokens)


@WIDE
@given(part_lists=legacy_part_lists, data=st.binary(max_size=12))
def test_it_agrees_with_the_old_decoder_exactly_when_it_finds_no_change(part_lists, data):
    config = legacy_config(part_lists)
    old = old_grammar_decode(config, data)
    try:
        new = payload.decode(config, data)
    except ConfigError:
        new = None
    reason = payload.legacy_meaning_changed(config)
    if reason is None:
        assert (old is None) == (new is None)
        assert old is None or all(same(old[name], new[name]) for name in old)
    elif reason.startswith("refused now: "):
        assert old is not None and new is None
    elif reason == OLD_REFUSED:
        assert old is None and new is not None
    else:
        assert "starts on byte" in reason and old is not None and new is not None


@st.composite
def old_valid_token(draw, name):
    """A field the old grammar accepted, with its highBit anywhere it allowed."""
    kind = draw(st.sampled_from(["uint", "int", "uint", "int", "bool", "char", "float"]))
    index = draw(st.sampled_from(["", "", "", "0", "1", "5", "63"]))
    length = draw({"bool": st.integers(0, 7), "char": st.integers(1, 4), "float": st.sampled_from([32, 64])}.get(
        kind, st.sampled_from([1, 3, 4, 7, 8, 9, 12, 15, 16, 24, 31, 32, 53, 64])))
    endianness = draw(st.sampled_from([None, "", "big-endian"] + (["little-endian"] if kind in ("uint", "int", "float") else [])))
    parts = [name, index, kind, str(length)]
    if kind in ("uint", "int") and draw(st.booleans()):
        span_bits = 8 * ((length + 7) // 8)
        parts += [endianness or "", str(draw(st.integers(length - 1, span_bits - 1)))]
    elif endianness is not None:
        parts.append(endianness)
    return ":".join(parts)


old_valid_configs = st.integers(1, 4).flatmap(
    lambda count: st.tuples(*(old_valid_token(f"f{number}") for number in range(count)))
).map(" ".join)


@WIDE
@given(config=old_valid_configs, data=st.binary(max_size=12))
def test_it_reads_an_old_config_as_before_unless_it_says_otherwise(config, data):
    old = old_grammar_decode(config, data)
    assert old is not None
    reason = payload.legacy_meaning_changed(config)
    if reason is None:
        new = payload.decode(config, data)
        assert all(same(old[name], new[name]) for name in old)
    elif reason.startswith("refused now: "):
        with pytest.raises(ConfigError):
            payload.parse_config(config)
    else:
        assert "starts on byte" in reason
        payload.parse_config(config)


# Properties

# Each part drawn from plausible and wrong values, so that random configs
# are sometimes valid and otherwise fail at any of the checks.
grammar_field = st.tuples(
    st.sampled_from(["a", "b", "t-1", "T_2", "", "é", "a b"]),
    st.sampled_from(["", "", "0", "1", "63", "64", "x", "-1"]),
    st.sampled_from(["bool", "char", "float", "uint", "int", "integer", ""]),
    st.sampled_from(["0", "1", "3", "7", "8", "12", "32", "64", "65", "", "+8"]),
    st.lists(st.sampled_from(["", "big-endian", "little-endian", "middle", "3", "7", "11", "x"]), max_size=3),
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


@MODERATE
@given(config=st.one_of(st.text(max_size=60), grammar_text))
def test_it_returns_a_reason_or_none_for_any_text(config):
    reason = payload.legacy_meaning_changed(config)
    assert reason is None or isinstance(reason, str)


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
    bit_offset = None if kind == "bool" else draw(st.none() | st.integers(0, 7))
    # Sigfox leaves little-endian undefined off whole bytes read from bit 7.
    little_endian_defined = kind in ("uint", "int", "float") and size % 8 == 0 and bit_offset in (None, 7)
    return Field(
        name=name,
        byte_index=draw(st.none() | st.integers(0, 63)),
        kind=kind,
        size=size,
        little_endian=little_endian_defined and draw(st.booleans()),
        bit_offset=bit_offset,
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


def bits_at(data, start_byte: int, bit_offset: int, length: int, bits: int) -> bytes:
    """Random bytes with `bits` (length bits) written from bit_offset of start_byte on."""
    first_bit = 8 * start_byte + 7 - bit_offset
    total_bytes = (first_bit + length + 7) // 8 + data.draw(st.integers(0, 2))
    shift = 8 * total_bytes - first_bit - length
    mask = ((1 << length) - 1) << shift
    # Random bits around the field must not leak into it.
    noise = data.draw(st.integers(0, 2 ** (8 * total_bytes) - 1))
    return ((noise & ~mask) | (bits << shift)).to_bytes(total_bytes, "big")


@MODERATE
@given(data=st.data(), kind=st.sampled_from(["uint", "int"]), length=st.integers(1, 64),
       bit_offset=st.integers(0, 7), start_byte=st.integers(0, 8))
def test_it_reads_back_an_integer_written_from_any_bit(data, kind, length, bit_offset, start_byte):
    if kind == "int":
        value = data.draw(st.integers(-(2 ** (length - 1)), 2 ** (length - 1) - 1))
    else:
        value = data.draw(st.integers(0, 2**length - 1))
    encoded = bits_at(data, start_byte, bit_offset, length, value & ((1 << length) - 1))
    config = f"v:{start_byte}:{kind}:{length}::{bit_offset}"
    assert payload.decode(config, encoded) == {"v": value}


@MODERATE
@given(data=st.data(), text=st.binary(min_size=1, max_size=8), bit_offset=st.integers(0, 7), start_byte=st.integers(0, 4))
def test_it_reads_back_a_char_written_from_any_bit(data, text, bit_offset, start_byte):
    encoded = bits_at(data, start_byte, bit_offset, 8 * len(text), int.from_bytes(text, "big"))
    config = f"s:{start_byte}:char:{len(text)}:{bit_offset}"
    assert payload.decode(config, encoded) == {"s": text.decode("latin-1").rstrip("\x00")}


@MODERATE
@given(data=st.data(), value=st.floats(allow_nan=False), bit_offset=st.integers(0, 7), start_byte=st.integers(0, 4))
def test_it_reads_back_a_double_written_from_any_bit(data, value, bit_offset, start_byte):
    encoded = bits_at(data, start_byte, bit_offset, 64, int.from_bytes(struct.pack(">d", value), "big"))
    assert payload.decode(f"f:{start_byte}:float:64::{bit_offset}", encoded) == {"f": value}


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
