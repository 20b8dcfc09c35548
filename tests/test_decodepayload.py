"""manage.py decodepayload CONFIG HEX."""

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parent.parent


def decode(*args) -> dict:
    out = StringIO()
    call_command("decodepayload", *args, stdout=out)
    return json.loads(out.getvalue())


def test_it_prints_the_fields_as_json():
    assert decode("temp::int:8 vbat::uint:16:little-endian", "15e40c") == {"temp": 21, "vbat": 3300}


def test_it_decodes_the_firmware_frame():
    config = (ROOT / "firmware" / "PAYLOAD_CONFIG").read_text().strip()
    fields = decode(config, "15e40c00006a0220")
    assert fields["temp"] == 21 and fields["vbat_mv"] == 3300 and fields["boot"] is True


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
