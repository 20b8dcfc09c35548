"""manage.py sigfox setup and manage.py sigfox callbacks, against the API stand-in."""

import base64
import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sigfoxapi.client import SigfoxAPI
from tests.sigfoxapi.conftest import API_LOGIN, API_PASSWORD, CALLBACK_TOKEN, DEVICE_TYPE

SITE = "https://sigfox.example.org"
BEARER = {"Authorization": f"Bearer {CALLBACK_TOKEN}"}


def run(*args) -> str:
    out = StringIO()
    call_command("sigfox", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def setup(*extra) -> str:
    return run("setup", "--device-type", DEVICE_TYPE, "--url", SITE, *extra)


def callbacks_of(cloud) -> list[dict]:
    return sorted(cloud.callbacks[DEVICE_TYPE].values(),
                  key=lambda cb: (cb["callbackType"], cb["callbackSubtype"], cb["url"]))


def by_kind(cloud) -> dict[tuple[int, int], dict]:
    return {(cb["callbackType"], cb["callbackSubtype"]): cb for cb in callbacks_of(cloud)}


def api(cloud) -> SigfoxAPI:
    return SigfoxAPI(base_url=cloud.url, login=API_LOGIN, password=API_PASSWORD)


def create(cloud, **fields) -> str:
    body = {"channel": "URL", "callbackType": 0, "callbackSubtype": 2, "httpMethod": "POST",
            "contentType": "application/json", **fields}
    return api(cloud).post(f"/device-types/{DEVICE_TYPE}/callbacks", body)["id"]


def test_it_creates_the_five_callbacks(cloud):
    out = setup()
    found = by_kind(cloud)
    assert len(callbacks_of(cloud)) == 5
    assert {kind: cb["url"] for kind, cb in found.items()} == {
        (0, 2): f"{SITE}/data/1",
        (0, 6): f"{SITE}/data/1",
        (1, 4): f"{SITE}/sigfox/acknowledge",
        (1, 0): f"{SITE}/sigfox/status",
        (2, 0): f"{SITE}/sigfox/error",
    }
    for cb in found.values():
        assert (cb["channel"], cb["httpMethod"], cb["contentType"], cb["enabled"]) == (
            "URL", "POST", "application/json", True)
        assert cb["headers"] == BEARER
        assert not cb["downlinkHook"]
    assert len(re.findall(r"^created ", out, re.MULTILINE)) == 5
    assert "5 created, 0 updated, 0 unchanged" in out
    assert CALLBACK_TOKEN not in out


def test_the_uplink_body_is_the_readme_s_raw_payload_body(cloud):
    setup()
    body = by_kind(cloud)[(0, 2)]["bodyTemplate"]
    assert body == ('{"device":"{device}","time":{time},"seqNumber":{seqNumber},"data":"{data}",'
                    '"deviceTypeId":"{deviceTypeId}","station":"{station}","rssi":{rssi},'
                    '"snr":{snr}}')


def test_every_body_is_json_once_its_variables_are_filled(cloud):
    setup("--bidir")
    values = {"device": "1A2B3C", "time": "1700000000", "seqNumber": "12", "ack": "true",
              "longPolling": "false", "rssi": "-120.5", "computedLocation": '{"lat":1}',
              "duplicates": "[]", "infoCode": "0", "downlinkAck": "true",
              "downlinkOverusage": "false", "linkQuality": "2", "temp": "21.5", "batt": "3.3",
              "duplicate": "false", "snr": "10", "avgSnr": "12"}
    for cb in callbacks_of(cloud):
        filled = re.sub(r"\{(\w+)\}", lambda m: values.get(m[1], "x"), cb["bodyTemplate"])
        parsed = json.loads(filled)
        assert {"device", "time"} <= set(parsed)


def test_the_advanced_and_service_bodies_carry_their_variables(cloud):
    setup()
    found = by_kind(cloud)
    for name in ("lqi", "linkQuality", "computedLocation", "duplicates", "operatorName",
                 "countryCode", "fixedLat", "fixedLng", "data", "seqNumber"):
        assert f"{{{name}}}" in found[(0, 6)]["bodyTemplate"]
    for name in ("infoCode", "infoMessage", "downlinkAck", "downlinkOverusage"):
        assert f"{{{name}}}" in found[(1, 4)]["bodyTemplate"]
    for name in ("temp", "batt", "seqNumber", "avgSnr"):
        assert f"{{{name}}}" in found[(1, 0)]["bodyTemplate"]
    for name in ("severity", "info"):
        assert f"{{{name}}}" in found[(2, 0)]["bodyTemplate"]


def test_it_says_error_s_callback_type_is_unconfirmed(cloud):
    assert "unconfirmed" in setup()


def test_a_second_run_changes_nothing(cloud):
    setup()
    before = callbacks_of(cloud)
    cloud.arrived.clear()
    out = setup()
    assert cloud.writes() == []
    assert callbacks_of(cloud) == before
    assert len(re.findall(r"^unchanged ", out, re.MULTILINE)) == 5


def test_a_changed_body_is_updated_not_duplicated(cloud):
    setup()
    uplink = by_kind(cloud)[(0, 2)]
    uplink["bodyTemplate"] = '{"device":"{device}"}'
    cloud.arrived.clear()
    out = setup()
    assert len(callbacks_of(cloud)) == 5
    assert '"seqNumber":{seqNumber}' in by_kind(cloud)[(0, 2)]["bodyTemplate"]
    assert cloud.writes() == [("PUT", f"/v2/device-types/{DEVICE_TYPE}/callbacks/{uplink['id']}")]
    assert re.search(r"updated\s+DATA UPLINK\s+https://sigfox.example.org/data/1", out)
    assert "changed: bodyTemplate" in out


@pytest.mark.parametrize("field,value", [
    ("headers", {"Authorization": "Bearer old-token"}),
    ("contentType", "text/plain"),
    ("httpMethod", "PUT"),
    ("enabled", False),
])
def test_a_changed_field_is_updated(cloud, field, value):
    setup()
    by_kind(cloud)[(1, 0)][field] = value
    out = setup()
    assert by_kind(cloud)[(1, 0)][field] == {
        "headers": BEARER, "contentType": "application/json", "httpMethod": "POST",
        "enabled": True}[field]
    assert re.search(r"updated\s+SERVICE STATUS", out)
    assert "old-token" not in out


def test_other_headers_of_a_callback_are_kept(cloud):
    create(cloud, callbackType=1, callbackSubtype=0, url=f"{SITE}/sigfox/status",
           headers={"X-Trace": "1"}, bodyTemplate="{}")
    setup()
    assert by_kind(cloud)[(1, 0)]["headers"] == {"X-Trace": "1", **BEARER}
    assert len(callbacks_of(cloud)) == 5


def test_callbacks_not_ours_are_left_alone(cloud):
    other = create(cloud, url="https://elsewhere.example.com/data/1", bodyTemplate="{}")
    sensor_2 = create(cloud, url=f"{SITE}/data/2", bodyTemplate="{}")
    setup()
    kept = {cb["id"]: cb for cb in callbacks_of(cloud)}
    assert len(kept) == 7
    assert kept[other]["url"] == "https://elsewhere.example.com/data/1"
    assert kept[other]["bodyTemplate"] == "{}"
    assert kept[sensor_2]["bodyTemplate"] == "{}"
    assert all(method != "DELETE" for method, _ in cloud.arrived)


def test_dry_run_only_reads(cloud):
    out = setup("--dry-run")
    assert cloud.writes() == []
    assert callbacks_of(cloud) == []
    assert len(re.findall(r"^would create ", out, re.MULTILINE)) == 5
    assert "dry run" in out


def test_dry_run_says_what_it_would_update(cloud):
    setup()
    by_kind(cloud)[(1, 4)]["bodyTemplate"] = "{}"
    cloud.arrived.clear()
    out = setup("--dry-run")
    assert cloud.writes() == []
    assert by_kind(cloud)[(1, 4)]["bodyTemplate"] == "{}"
    assert re.search(r"would update\s+SERVICE ACKNOWLEDGE", out)


def test_bidir_replaces_the_uplink_callback(cloud):
    setup("--bidir", "--sensor", "kitchen")
    found = by_kind(cloud)
    assert (0, 2) not in found
    assert found[(0, 3)]["url"] == f"{SITE}/data/kitchen"
    assert "{ack}" in found[(0, 3)]["bodyTemplate"]
    assert not found[(0, 3)]["downlinkHook"]


def test_downlink_marks_the_bidir_callback(cloud):
    out = setup("--downlink")
    bidir = by_kind(cloud)[(0, 3)]
    assert bidir["downlinkHook"]
    assert ("PUT", f"/v2/device-types/{DEVICE_TYPE}/callbacks/{bidir['id']}/downlink") in (
        cloud.writes())
    assert "(downlink)" in out


def test_downlink_marks_an_existing_bidir_callback(cloud):
    setup("--bidir")
    out = setup("--downlink")
    assert by_kind(cloud)[(0, 3)]["downlinkHook"]
    assert len(callbacks_of(cloud)) == 5
    assert "changed: downlinkHook" in out


def test_it_notes_an_uplink_callback_left_beside_the_bidir_one(cloud):
    setup()
    out = setup("--bidir")
    assert "a DATA UPLINK callback to https://sigfox.example.org/data/1 is there too" in out


def test_it_refuses_without_a_callback_token(cloud, settings):
    settings.SIGFOX_CALLBACK_TOKEN = ""
    with pytest.raises(CommandError, match="SIGFOX_CALLBACK_TOKEN is empty"):
        setup()
    assert cloud.arrived == []


def test_a_wrong_api_password_is_a_clear_error(cloud, settings):
    settings.SIGFOX_API_PASSWORD = "wrong"
    with pytest.raises(CommandError, match="SIGFOX_API_LOGIN / SIGFOX_API_PASSWORD") as caught:
        setup()
    assert "401" in str(caught.value)
    assert len(cloud.arrived) == 1


def test_a_missing_api_login_is_a_clear_error(cloud, settings):
    settings.SIGFOX_API_LOGIN = ""
    with pytest.raises(CommandError, match="SIGFOX_API_LOGIN"):
        setup()
    assert cloud.arrived == []


def test_an_unknown_device_type_is_named(cloud):
    with pytest.raises(CommandError, match="device type 0123456789abcdef01234567"):
        run("setup", "--device-type", "0123456789abcdef01234567", "--url", SITE)


def test_a_bad_url_is_refused(cloud):
    with pytest.raises(CommandError, match="root URL"):
        run("setup", "--device-type", DEVICE_TYPE, "--url", "ftp://example.org")


# --- callbacks ------------------------------------------------------------------------


def listing(*extra) -> str:
    return run("callbacks", "--device-type", DEVICE_TYPE, *extra)


def test_it_lists_the_callbacks_of_setup_without_problems(cloud):
    setup("--downlink")
    out = listing()
    lines = out.splitlines()
    assert len(lines) == 6
    assert re.search(r"DATA BIDIR\s+enabled\s+POST https://sigfox.example.org/data/1 "
                     r"application/json downlink", out)
    assert "!" not in out
    assert "5 callbacks, 5 pointing at https://sigfox.example.org, 0 with problems" in out
    assert CALLBACK_TOKEN not in out


def test_it_flags_a_body_without_device_or_time(cloud):
    create(cloud, url=f"{SITE}/data/1", headers=BEARER,
           bodyTemplate='{"temp":{customData#temp},"data":"{data}","seqNumber":{seqNumber}}')
    out = listing()
    assert "! the body has no {device}" in out
    assert "! the body has no {time}" in out
    assert "1 with problems" in out


def test_it_flags_an_uplink_body_without_data_or_seq_number(cloud):
    create(cloud, url=f"{SITE}/data/1", headers=BEARER,
           bodyTemplate='{"device":"{device}","time":"{time}","temp":{customData#temp}}')
    out = listing()
    assert "! the body has no {data}" in out
    assert "! the body has no {seqNumber}" in out


def test_it_flags_a_json_body_sent_as_a_form(cloud):
    create(cloud, callbackType=1, callbackSubtype=0, url=f"{SITE}/sigfox/status",
           headers=BEARER, bodyTemplate='{"device":"{device}","time":{time}}',
           contentType="application/x-www-form-urlencoded")
    assert "! content type application/x-www-form-urlencoded for a JSON body" in listing()


def test_it_flags_a_missing_token(cloud):
    create(cloud, url=f"{SITE}/data/1", headers={},
           bodyTemplate='{"device":"{device}","time":{time},"data":"{data}",'
                        '"seqNumber":{seqNumber}}')
    out = listing()
    assert "! no token" in out
    assert "1 with problems" in out


def test_it_flags_a_wrong_token_without_printing_it(cloud):
    create(cloud, callbackType=1, callbackSubtype=0, url=f"{SITE}/sigfox/status?token=stale-one",
           bodyTemplate='{"device":"{device}","time":{time}}')
    out = listing()
    assert "! its token is not SIGFOX_CALLBACK_TOKEN" in out
    assert "stale-one" not in out
    assert "token=***" in out


@pytest.mark.parametrize("where", ["query", "basic", "userinfo"])
def test_a_token_in_the_url_or_basic_auth_counts(cloud, where):
    url, headers = f"{SITE}/sigfox/status", {}
    if where == "query":
        url += f"?token={CALLBACK_TOKEN}"
    elif where == "basic":
        headers = {"authorization": "Basic " + base64.b64encode(
            f"sigfox:{CALLBACK_TOKEN}".encode()).decode()}
    else:
        url = url.replace("https://", f"https://sigfox:{CALLBACK_TOKEN}@")
    create(cloud, callbackType=1, callbackSubtype=0, url=url, headers=headers,
           bodyTemplate='{"device":"{device}","time":{time}}')
    out = listing("--url", SITE)
    assert "0 with problems" in out
    assert "1 pointing at" in out
    assert CALLBACK_TOKEN not in out


def test_callbacks_of_other_servers_are_listed_not_checked(cloud):
    create(cloud, url="https://sigfox.example.org.evil.test/data/1", bodyTemplate="x")
    out = listing()
    assert "https://sigfox.example.org.evil.test/data/1" in out
    assert "0 pointing at" in out
    assert "!" not in out


def test_the_url_option_chooses_the_server(cloud):
    create(cloud, url="https://other.example.net/data/1", bodyTemplate="{}")
    assert "1 pointing at https://other.example.net" in listing("--url",
                                                                "https://other.example.net/")


def test_callbacks_gives_a_clear_error_on_401(cloud, settings):
    settings.SIGFOX_API_PASSWORD = "wrong"
    with pytest.raises(CommandError, match="SIGFOX_API_PASSWORD"):
        listing()


def test_an_error_callback_the_api_refuses_says_why(cloud, monkeypatch):
    # An API that does not know callbackType 2 (API.md: unconfirmed).
    from readings.simulation import cloud as stand_in

    monkeypatch.setitem(stand_in.CALLBACK_FIELDS, "callbackType", stand_in._integer_in(range(2)))
    with pytest.raises(CommandError, match="set the ERROR callback up in the portal"):
        setup()
    assert len(callbacks_of(cloud)) == 4


@pytest.mark.parametrize("action", ["setup", "callbacks"])
@pytest.mark.parametrize("field", [{"url": 5}, {"headers": "Bearer x"}, {"headers": {"A": 1}},
                                   {"bodyTemplate": 7}, {"callbackType": True}])
def test_a_callback_the_api_lists_that_cannot_be_read_is_a_clear_error(
        scripted_api, settings, action, field):
    settings.SIGFOX_API_URL, settings.SIGFOX_API_LOGIN = scripted_api.url, API_LOGIN
    settings.SIGFOX_API_PASSWORD, settings.SIGFOX_CALLBACK_TOKEN = API_PASSWORD, CALLBACK_TOKEN
    scripted_api.then(200, {"data": [{"id": "a" * 24, "channel": "URL", "callbackType": 0,
                                      "callbackSubtype": 2, "url": f"{SITE}/data/1", **field}]})
    name = next(iter(field))
    with pytest.raises(CommandError, match=f"has a {name} this command cannot read"):
        run(action, "--device-type", DEVICE_TYPE, "--url", SITE)
    assert [arrived.method for arrived in scripted_api.arrived] == ["GET"]
