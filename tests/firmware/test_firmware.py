"""Host tests of the Akeru sketch in firmware/: build its scenario runner with
g++, run it, and decode every frame it sent with the payload config the
sketch documents. No board and no database needed."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from readings.payload import decode, parse_config
from tests.conftest import missing_dependency

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
SKETCH = FIRMWARE / "akeru_sensor"
STAND_INS = FIRMWARE / "tests" / "host"
SOURCES = [
    FIRMWARE / "tests" / "host_test.cpp",
    STAND_INS / "Arduino.cpp",
    STAND_INS / "Akeru.cpp",
    SKETCH / "sensor_logic.cpp",
]
CXXFLAGS = ["-std=c++11", "-Wall", "-Wextra", "-Werror", f"-I{STAND_INS}", f"-I{SKETCH}"]

TUTORIAL_CONFIG = "temp::int:8"
MAX_PAYLOAD_BYTES = 12
# The scenarios of firmware/tests/host_test.cpp; each must send frames.
SCENARIOS = [
    "normal_readings",
    "negative_temperatures",
    "millis_overflow",
    "budget_two_days",
    "downlink_interval",
    "downlink_interval_clamped",
    "downlink_ignored",
    "demo_toggle",
    "demo_at_boot",
    "failed_send",
    "sensor_errors",
    "send_gate",
]


def gxx() -> str:
    path = shutil.which("g++")
    if path is None:
        missing_dependency("g++ is not installed (Debian: apt-get install g++)")
    return path


def public_api(header: Path) -> list[str]:
    """The method declarations of a header's public: section."""
    section = header.read_text().split("public:", 1)[1]
    section = re.split(r"\bprivate:|---- test controls", section)[0]
    return [" ".join(line.split()) for line in section.splitlines() if line.strip().endswith(");")]


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> subprocess.CompletedProcess:
    binary = tmp_path_factory.mktemp("firmware") / "host_test"
    build = subprocess.run(
        [gxx(), *CXXFLAGS, *map(str, SOURCES), "-o", str(binary)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    return subprocess.run([str(binary)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def frames(runner) -> list[dict]:
    return [json.loads(line) for line in runner.stdout.splitlines()]


@pytest.fixture(scope="module")
def payload_config() -> str:
    return (FIRMWARE / "PAYLOAD_CONFIG").read_text().strip()


def frames_of(frames: list[dict], scenario: str) -> list[dict]:
    found = [frame for frame in frames if frame["scenario"] == scenario]
    assert found, f"scenario {scenario} sent no frame"
    return found


def test_it_passes_the_runners_budget_and_timing_checks(runner):
    assert runner.returncode == 0, runner.stderr


def test_it_sends_frames_in_every_scenario(frames):
    assert sorted({frame["scenario"] for frame in frames}) == sorted(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_it_decodes_every_frame_to_what_the_scenario_put_in(frames, payload_config, scenario):
    for frame in frames_of(frames, scenario):
        assert decode(payload_config, frame["hex"]) == frame["expect"], frame


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_it_decodes_the_temp_with_the_tutorial_config(frames, scenario):
    for frame in frames_of(frames, scenario):
        assert decode(TUTORIAL_CONFIG, frame["hex"]) == {"temp": frame["expect"]["temp"]}, frame


def test_it_keeps_the_sketch_config_and_the_file_in_step(payload_config):
    header = (SKETCH / "sensor_logic.h").read_text()
    defined = re.search(r'^#define PAYLOAD_CONFIG "([^"]*)"$', header, re.MULTILINE)
    assert defined is not None
    assert defined.group(1) == payload_config


def test_it_keeps_the_config_file_to_one_line():
    assert len((FIRMWARE / "PAYLOAD_CONFIG").read_text().splitlines()) == 1


def test_it_starts_the_config_with_the_tutorial_temp(payload_config):
    first = parse_config(payload_config)[0]
    assert (first.name, first.byte_index, first.kind, first.size) == ("temp", None, "int", 8)


def test_it_fits_every_field_in_the_frame(frames, payload_config):
    lengths = {len(frame["hex"]) // 2 for frame in frames}
    assert max(lengths) <= MAX_PAYLOAD_BYTES
    shortest = next(frame["hex"] for frame in frames if len(frame["hex"]) // 2 == min(lengths))
    assert None not in decode(payload_config, shortest).values()


def test_it_flags_the_frame_after_a_failed_send(frames, payload_config):
    sent = frames_of(frames, "failed_send")
    after_failure = [later for earlier, later in zip(sent, sent[1:]) if not earlier["ok"]]
    assert after_failure
    assert all(decode(payload_config, frame["hex"])["last_send_failed"] for frame in after_failure)


def test_it_compiles_the_sketch_against_the_stand_ins():
    # As the Arduino build does: the .ino is C++ with Arduino.h included first.
    result = subprocess.run(
        [gxx(), *CXXFLAGS, "-fsyntax-only", "-x", "c++", "-include", "Arduino.h",
         str(SKETCH / "akeru_sensor.ino")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_it_keeps_the_fake_akeru_api_in_step_with_the_avr_one():
    avr = public_api(FIRMWARE / "tests" / "avr-libs" / "Akeru" / "Akeru.h")
    assert "bool receive(String *data);" in avr
    assert public_api(STAND_INS / "Akeru.h") == avr


def test_it_documents_the_config_and_the_downlink_layout(payload_config):
    readme = (FIRMWARE / "README.md").read_text()
    # The server's admin help links to firmware/README.md#downlink-layout.
    assert re.search(r"^## Downlink layout$", readme, re.MULTILINE)
    assert payload_config in readme
