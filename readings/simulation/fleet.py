"""The simulated fleet: what each device measures, when, and the callbacks it causes.

Pure module: no Django, no I/O, no threads. Given the same seed, a fleet
yields the very same frames, and callbacks_for() the very same requests, so a
run can be repeated exactly and the tests can compute what a server must
have stored.

The timeline: device i's k-th frame has the reception time
time_start + (k + i/devices) * interval, so the devices are spread evenly
over each interval. Sigfox stamps frames in whole seconds, so the reception
time is that instant rounded down; `due_s` keeps the exact instant, for a
live run to send the frame when it falls due.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

from readings.sigfox import DEVICE_ID_MAX_CHARS, SEQ_MODULO

ENCODINGS = ("json", "form", "text", "get")
# What a device of the raw mode sends, and the config that decodes it on the
# server. Akeru's toHex() dumps AVR memory, which is little-endian: a float is
# 4 bytes, an unsigned int 2.
RAW_PAYLOAD_CONFIG = "temp::float:32:little-endian battery_mv::uint:16:little-endian"
# Device ids are hex(device_base + i); this base makes them easy to tell apart
# from real devices ("5F" for "simulated fleet").
DEFAULT_DEVICE_BASE = 0x5F0000
DEVICE_ID_MAX = 16**DEVICE_ID_MAX_CHARS - 1
# The fleet's device type in `simulate --sigfox-api`: 24 hex characters, "5f" again.
DEFAULT_DEVICE_TYPE_ID = "5f" + "0" * 21 + "1"
# "redelivery": the backend's own retry of a callback that failed (simulate --sigfox-api).
KINDS = ("first", "retry", "duplicate", "redelivery")


@dataclass(slots=True)
class DeviceState:
    """One device between two frames: its ids, its sensor's trend, its radio."""

    sigfox_id: str
    base_temp_c: float
    drift_c: float
    battery_mv: float
    seq_number: int
    station: str
    rssi_dbm: float
    snr_db: float


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of one device, as the backend knows it once a station heard it."""

    device: str
    time_s: int
    due_s: float
    seq_number: int
    temp_c: float
    battery_mv: int
    station: str
    rssi_dbm: float
    snr_db: float

    def payload_hex(self) -> str:
        """The 6 bytes RAW_PAYLOAD_CONFIG decodes, as lower-case hex like the backend's {data}."""
        return struct.pack("<fH", self.temp_c, self.battery_mv).hex()

    def variables(self, *, raw: bool, metadata: bool, duplicate: bool = False,
                  device_type_id: str | None = None) -> dict:
        """The callback's variables, in the order a user's template would list them.

        `device_type_id` (24 hex characters) adds {deviceTypeId}, as the
        backend of `simulate --sigfox-api` sends it.
        """
        variables: dict = {"device": self.device, "time": str(self.time_s)}
        if device_type_id is not None:
            variables["deviceTypeId"] = device_type_id
        if raw:
            variables["data"] = self.payload_hex()
            variables["seqNumber"] = self.seq_number
        else:
            # The tutorial's template: values decoded by the backend (customData).
            variables["temp"] = self.temp_c
            variables["battery_mv"] = self.battery_mv
        if metadata:
            variables.update(
                duplicate=duplicate,
                station=self.station,
                rssi=self.rssi_dbm,
                snr=self.snr_db,
            )
        return variables


class Fleet:
    """Devices with plausible readings: a daily temperature cycle plus a random
    walk, a battery draining slowly, radio levels with noise."""

    def __init__(self, *, devices: int, device_base: int, interval_s: float, time_start_s: float,
                 seed: int, quiet: int = 0, quiet_from_s: float = math.inf):
        """quiet: how many devices (the last ones) send nothing due at or after
        quiet_from_s, as a device does when it breaks (a demo of alerts)."""
        # Its own generator, so that the readings depend only on the seed and
        # the fleet, not on how the frames are sent (encoding, retries...).
        self.rng = random.Random(f"{seed}:fleet")
        self.interval_s = interval_s
        self.time_start_s = time_start_s
        self.devices = [self._new_device(device_base + i) for i in range(devices)]
        self.quiet = min(quiet, devices)
        self.quiet_from_s = quiet_from_s
        self._timeline = self._all_frames()
        self._next_frame: Frame | None = None  # made, but due after the last until_s

    def _new_device(self, number: int) -> DeviceState:
        rng = self.rng
        return DeviceState(
            sigfox_id=f"{number:X}",
            base_temp_c=rng.uniform(16.0, 24.0),
            drift_c=0.0,
            battery_mv=rng.uniform(3150.0, 3300.0),
            seq_number=rng.randrange(SEQ_MODULO),
            station=f"{rng.randrange(0x10000):04X}",
            rssi_dbm=rng.uniform(-135.0, -95.0),
            snr_db=rng.uniform(5.0, 30.0),
        )

    def frames(self, *, count: int | None = None, until_s: float = math.inf) -> Iterator[Frame]:
        """Every device's frames in order of time: `count` of them, or those due
        by `until_s`, whichever ends first; without either, without end.

        The fleet lives on: another call goes on where this one stopped.
        """
        taken = 0
        while count is None or taken < count:
            if self._next_frame is None:
                self._next_frame = next(self._timeline, None)
                if self._next_frame is None:  # every device has gone quiet
                    return
            if self._next_frame.due_s > until_s:
                return
            frame, self._next_frame = self._next_frame, None
            taken += 1
            yield frame

    def _all_frames(self) -> Iterator[Frame]:
        count = len(self.devices)
        talking = count - self.quiet
        for k in itertools.count():
            for i, device in enumerate(self.devices):
                # interval >= 1 s, so one device's whole-second times never repeat.
                due_s = self.time_start_s + (k + i / count) * self.interval_s
                if i >= talking and due_s >= self.quiet_from_s:
                    if talking == 0:
                        return
                    continue
                yield self._advance(device, due_s)

    def _advance(self, device: DeviceState, due_s: float) -> Frame:
        rng = self.rng
        time_s = math.floor(due_s)
        # Warmest mid-afternoon UTC; the drift is a mean-reverting walk.
        daily_c = 3.0 * math.sin(2 * math.pi * ((time_s % 86_400) / 86_400 - 0.375))
        device.drift_c = 0.9 * device.drift_c + rng.gauss(0.0, 0.3)
        # Sixteenths of a degree (a DS18B20's resolution) survive float32 and
        # decimal text exactly, so every encoding stores the very same value.
        temp_c = round((device.base_temp_c + daily_c + device.drift_c) * 16) / 16
        device.battery_mv = max(2700.0, device.battery_mv - rng.uniform(0.0, 0.1))
        frame = Frame(
            device=device.sigfox_id,
            time_s=time_s,
            due_s=due_s,
            seq_number=device.seq_number,
            temp_c=temp_c,
            battery_mv=round(device.battery_mv + rng.gauss(0.0, 2.0)),
            station=device.station,
            rssi_dbm=round(device.rssi_dbm + rng.gauss(0.0, 3.0), 2),
            snr_db=round(max(0.0, device.snr_db + rng.gauss(0.0, 2.0)), 2),
        )
        device.seq_number = (device.seq_number + 1) % SEQ_MODULO
        return frame


def duplicate_copy(frame: Frame, rng: random.Random) -> Frame:
    """The same frame heard by another base station, a little weaker."""
    return dataclasses.replace(
        frame,
        station=f"{(int(frame.station, 16) + rng.randrange(1, 0x100)) % 0x10000:04X}",
        rssi_dbm=round(frame.rssi_dbm - rng.uniform(1.0, 10.0), 2),
        snr_db=round(max(0.0, frame.snr_db - rng.uniform(0.0, 5.0)), 2),
    )


# --- Callbacks: the HTTP requests the backend makes ----------------------------------


@dataclass(frozen=True, slots=True)
class Callback:
    """One HTTP request of the backend, and why it is made."""

    kind: str  # "first", "retry" or "duplicate"
    method: str
    target: str  # path and query string, as on the request line
    headers: dict[str, str]  # those of the encoding; the sender adds its own
    body: bytes | None
    # The frame it reports (a duplicate's: the other station's copy), for the
    # simulated cloud's records; None for a bare request.
    frame: Frame | None = dataclasses.field(default=None, compare=False, repr=False)
    # What was substituted, for the cloud's records.
    variables: dict | None = dataclasses.field(default=None, compare=False, repr=False)


def as_text(value) -> str:
    """A variable as the backend substitutes it into a form or query string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_callback(*, kind: str, encoding: str, path: str, variables: dict,
                   frame: Frame | None = None) -> Callback:
    """The request that carries `variables` to `path` in one of ENCODINGS."""
    if encoding == "get":
        query = urlencode({name: as_text(value) for name, value in variables.items()})
        return Callback(kind, "GET", f"{path}?{query}", {}, None, frame, variables)
    if encoding == "form":
        body = urlencode({name: as_text(value) for name, value in variables.items()})
        return Callback(kind, "POST", path, {"Content-Type": "application/x-www-form-urlencoded"},
                        body.encode(), frame, variables)
    if encoding not in ("json", "text"):
        raise ValueError(f"unknown encoding {encoding!r}")
    body = json.dumps(variables, separators=(",", ":")).encode()
    content_type = "application/json" if encoding == "json" else "text/plain"
    return Callback(kind, "POST", path, {"Content-Type": content_type}, body, frame, variables)


def callbacks_for(frame: Frame, *, encoding: str, path: str, raw: bool, metadata: bool,
                  retry_probability: float, duplicate_probability: float,
                  rng: random.Random, device_type_id: str | None = None) -> list[Callback]:
    """The requests one frame causes, to be sent in this order by one worker.

    `encoding` is one of ENCODINGS, or "mixed" for a random one per frame.
    The choices are drawn from `rng`, apart from the fleet's generator, so
    that they leave the readings alone. `device_type_id`: see Frame.variables.
    """
    if encoding == "mixed":
        encoding = rng.choice(ENCODINGS)
    variables = frame.variables(raw=raw, metadata=metadata, device_type_id=device_type_id)
    first = build_callback(kind="first", encoding=encoding, path=path, variables=variables,
                           frame=frame)
    group = [first]
    if rng.random() < retry_probability:
        # A retry is the very same request again.
        group.append(dataclasses.replace(first, kind="retry"))
    if rng.random() < duplicate_probability:
        copy = duplicate_copy(frame, rng)
        group.append(build_callback(
            kind="duplicate", encoding=encoding, path=path,
            variables=copy.variables(raw=raw, metadata=True, duplicate=True,
                                     device_type_id=device_type_id),
            frame=copy,
        ))
    return group
