"""manage.py decodepayload CONFIG HEX."""

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[2]


def decode(*args) -> dict:
    out = StringIO()
    call_command("decodepayload", *args, stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def run(*args) -> tuple[str, str]:
    """(stdout, stderr) of the command."""
    out, err = StringIO(), StringIO()
    call_command("decodepayload", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_prints_the_fields_as_json():
    assert decode("temp::int:8 vbat::uint:16:little-endian", "15e40c") == {"temp": 21, "vbat": 3300}


def test_it_decodes_the_firmware_frame():
    config = (ROOT / "firmware" / "PAYLOAD_CONFIG").read_text().strip()
    fields = decode(config, "15e40c00006a0220")
    assert fields["temp"] == 21 and fields["vbat_mv"] == 3300 and fields["boot"] is True


def test_it_decodes_with_bit_offsets():
    config = "mode::uint:4:big-endian:7 batt::uint:4:big-endian:3 temp:1:int:8"
    assert decode(config, "a51b") == {"mode": 10, "batt": 5, "temp": 27}


def test_it_refuses_little_endian_with_a_bit_offset():
    with pytest.raises(CommandError, match="little-endian is not defined by Sigfox"):
        call_command("decodepayload", "x::uint:12:little-endian:3", "ffff", stdout=StringIO())


def test_it_warns_about_a_field_that_can_exceed_2_53():
    _, err = run("u::uint:64", "ffffffffffffffff")
    assert err == (
        "warning: u can exceed 2**53: JavaScript and most JSON readers round such values; "
        "it is printed exactly here.\n"
    )


def test_it_prints_a_wide_value_exactly():
    out, _ = run("u::uint:64", "ffffffffffffffff")
    assert out == '{"u": 18446744073709551615}\n'


def test_it_prints_a_wide_negative_value_exactly():
    out, _ = run("i::int:64", "8000000000000001")
    assert json.loads(out) == {"i": -(2**63) + 1}
    assert "-9223372036854775807" in out


def test_it_warns_once_per_wide_field_in_config_order():
    _, err = run("b::uint:54 a::uint:8 c::int:55", "00" * 16)
    assert [line.split()[1] for line in err.splitlines()] == ["b", "c"]


def test_it_warns_even_when_the_value_is_small():
    out, err = run("u::uint:64", "0000000000000001")
    assert json.loads(out) == {"u": 1}
    assert err.startswith("warning: u can exceed 2**53")


@pytest.mark.parametrize(
    "config", ["u::uint:53", "i::int:54", "f::float:64", "temp::int:8 vbat::uint:16:little-endian"]
)
def test_it_does_not_warn_about_fields_a_float_holds_exactly(config):
    out, err = run(config, "00" * 8)
    assert err == ""
    assert json.loads(out)


def test_it_keeps_stdout_one_json_object_when_it_warns():
    out, err = run("u::uint:64 t::int:8", "ffffffffffffffff15")
    assert json.loads(out) == {"u": 2**64 - 1, "t": 21}
    assert "warning" not in out and "warning" in err


def test_it_prints_null_beyond_the_payload():
    assert decode("a::uint:8 b::uint:8", "01") == {"a": 1, "b": None}


def test_it_prints_non_finite_floats_as_null():
    assert decode("f::float:32", "7fc00000") == {"f": None}


@pytest.mark.parametrize(
    "config, hex, message",
    [
        ("temp::int:99", "15", "bad config: field 1 ('temp::int:99')"),
        ("temp", "15", "bad config"),
        ("temp::int:8", "1", "bad payload: payload has an odd number of hex digits"),
        ("temp::int:8", "zz", "bad payload"),
    ],
)
def test_it_explains_a_bad_config_or_payload(config, hex, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("decodepayload", config, hex, stdout=StringIO())


def test_it_exits_non_zero_without_a_traceback():
    result = subprocess.run(
        [sys.executable, "manage.py", "decodepayload", "temp::int:0", "15"], cwd=ROOT,
        capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "DEBUG": "true", "SIGFOXSITE_READ_DOT_ENV": "false"},
    )
    assert result.returncode == 1
    assert result.stderr.startswith("CommandError: bad config: field 1 ('temp::int:0')")
    assert "Traceback" not in result.stderr


def test_it_warns_on_stderr_and_prints_exactly_from_the_command_line():
    result = subprocess.run(
        [sys.executable, "manage.py", "decodepayload", "u::uint:64", "ff" * 8], cwd=ROOT,
        capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "DEBUG": "true", "SIGFOXSITE_READ_DOT_ENV": "false"},
    )
    assert result.returncode == 0
    assert result.stdout == '{"u": 18446744073709551615}\n'
    assert result.stderr.startswith("warning: u can exceed 2**53")
