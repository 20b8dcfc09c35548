"""GET /: the fleet overview (dashboard/overview.py), and the health part of /devices/<id>."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from alerts.models import Channel, DeviceHealth, DeviceTypeHealth, Notification, StateChange
from dashboard import overview
from readings.models import Device, DeviceType, Message
from tests.dashboard.test_browser import browser, page, post  # noqa: F401  (fixtures)
from tests.helpers import store


@pytest.fixture(autouse=True)
def _database(request):
    # Every test here uses the test database except the browser's, which reads
    # the served one (and whose event loop the database teardown must not meet).
    if request.node.get_closest_marker("browser") is None:
        request.getfixturevalue("db")


def device(sigfox_id: str, *, state: str | None = None, last_seen=None, name="", device_type=None,
           **health) -> Device:
    """A device, with a DeviceHealth row in `state` (none when state is None)."""
    made = Device.objects.create(sigfox_id=sigfox_id, name=name, device_type=device_type,
                                 last_seen=last_seen)
    if state is not None:
        DeviceHealth.objects.create(device=made, state=state, **health)
    return made


def listed(response) -> list[str]:
    """The Sigfox ids of the overview's rows, in order."""
    assert response.status_code == 200
    return re.findall(r'<tr data-device="([0-9A-F]+)"', response.content.decode())


def ago(minutes: float) -> datetime:
    return timezone.now() - timedelta(minutes=minutes)


@pytest.fixture
def fleet():
    """One device in each state, two down; and one the worker has not seen yet."""
    device("A1", state="up", last_seen=ago(1))
    device("A2", state="down", last_seen=ago(300))
    device("A3", state="late", last_seen=ago(30))
    device("A4", state="muted", last_seen=ago(2))
    device("A5", state="new", last_seen=ago(5))
    device("A6", state="down", last_seen=ago(90))
    device("A7", last_seen=ago(3))  # no DeviceHealth row yet


# -- access ---------------------------------------------------------------------

def test_it_redirects_anonymous_users_to_log_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_it_is_public_with_public_dashboard(client, settings, fleet):
    settings.PUBLIC_DASHBOARD = True
    assert len(listed(client.get("/"))) == 7


def test_it_is_the_landing_page_and_the_chart_page_stays(admin_client):
    assert admin_client.get("/").status_code == 200
    assert admin_client.get("/graph").status_code == 200
    assert 'href="/">Devices</a>' in admin_client.get("/graph").content.decode()


def test_it_shows_the_empty_state_without_devices(admin_client):
    content = admin_client.get("/").content.decode()
    assert "No readings yet" in content
    assert "http://testserver/data/1" in content


# -- order ------------------------------------------------------------------------

def test_it_lists_devices_that_need_attention_first(admin_client, fleet):
    # down, late, new (with a row or none yet), muted, up; newest last seen first within each.
    assert listed(admin_client.get("/")) == ["A6", "A2", "A3", "A7", "A5", "A4", "A1"]


def test_it_shows_a_device_without_health_as_new(admin_client, fleet):
    content = admin_client.get("/").content.decode()
    assert '<tr data-device="A7" data-state="new">' in content


def test_it_sorts_by_state_the_other_way(admin_client, fleet):
    assert listed(admin_client.get("/?sort=-state")) == ["A1", "A4", "A7", "A5", "A3", "A6", "A2"]


def test_it_sorts_by_last_seen_both_ways(admin_client, fleet):
    device("A8")  # never seen: last when newest first, first when oldest first
    newest = ["A1", "A4", "A7", "A5", "A3", "A6", "A2", "A8"]
    assert listed(admin_client.get("/?sort=-last_seen")) == newest
    assert listed(admin_client.get("/?sort=last_seen")) == ["A8", *reversed(newest[:-1])]


def test_it_ignores_an_unknown_sort(admin_client, fleet):
    assert listed(admin_client.get("/?sort=name")) == listed(admin_client.get("/"))


def test_its_sort_links_toggle_and_keep_the_filters(admin_client, fleet):
    content = admin_client.get("/?state=down&sort=-last_seen&page=1").content.decode()
    assert 'href="?state=down&amp;sort=last_seen" id="sort-last-seen"' in content
    assert 'href="?state=down" id="sort-state"' in content
    assert 'aria-sort="descending"' in content


# -- filters and search ---------------------------------------------------------------

@pytest.mark.parametrize("state, expected", [
    ("down", ["A6", "A2"]),
    ("late", ["A3"]),
    ("new", ["A7", "A5"]),
    ("muted", ["A4"]),
    ("up", ["A1"]),
    ("", ["A6", "A2", "A3", "A7", "A5", "A4", "A1"]),
    ("bogus", ["A6", "A2", "A3", "A7", "A5", "A4", "A1"]),
])
def test_it_filters_by_state(admin_client, fleet, state, expected):
    assert listed(admin_client.get(f"/?state={state}")) == expected


def test_it_filters_by_device_type(admin_client, fleet):
    sensors = DeviceType.objects.create(sigfox_id="5F00", name="sensors")
    DeviceType.objects.create(sigfox_id="6A00")
    device("B1", state="up", last_seen=ago(1), device_type=sensors)
    device("B2", last_seen=ago(2), device_type=sensors)
    response = admin_client.get("/?type=5f00")
    assert listed(response) == ["B2", "B1"]
    content = response.content.decode()
    assert '<option value="5F00" selected>5F00 (sensors)</option>' in content
    assert '<option value="6A00">6A00</option>' in content
    assert listed(admin_client.get("/?type=6A00")) == []


def test_it_combines_filters(admin_client, fleet):
    sensors = DeviceType.objects.create(sigfox_id="5F00")
    device("B1", state="down", last_seen=ago(1), device_type=sensors)
    assert listed(admin_client.get("/?type=5F00&state=down")) == ["B1"]
    assert listed(admin_client.get("/?type=5F00&state=up")) == []


def test_it_searches_by_id_prefix(admin_client, fleet):
    device("BEEF01", state="up", last_seen=ago(1))
    assert listed(admin_client.get("/?q=beef")) == ["BEEF01"]
    assert listed(admin_client.get("/?q=00beef")) == ["BEEF01"]  # in any spelling
    assert listed(admin_client.get("/?q=eef")) == []  # a prefix, not any part


def test_it_searches_by_name(admin_client, fleet):
    device("C1", name="Kitchen fridge", last_seen=ago(1))
    response = admin_client.get("/?q=fridge")
    assert listed(response) == ["C1"]
    assert 'value="fridge"' in response.content.decode()


def test_it_says_when_nothing_matches(admin_client, fleet):
    content = admin_client.get("/?q=nothing-like-it").content.decode()
    assert 'id="fleet-empty"' in content
    assert "No readings yet" not in content


# -- paging -------------------------------------------------------------------------------

@pytest.fixture
def many():
    """120 devices, all up, the lower the id the more recently seen."""
    now = timezone.now()
    devices = Device.objects.bulk_create(
        Device(sigfox_id=f"D{i:03d}", last_seen=now - timedelta(minutes=i)) for i in range(120)
    )
    DeviceHealth.objects.bulk_create(DeviceHealth(device=d, state="up") for d in devices)


def test_it_pages_fifty_devices_at_a_time(admin_client, many):
    first = admin_client.get("/")
    assert listed(first) == [f"D{i:03d}" for i in range(50)]
    content = first.content.decode()
    assert "1–50 of 120" in content
    assert 'href="?page=2" rel="next"' in content
    assert 'rel="prev"' not in content
    last = admin_client.get("/?page=3")
    assert listed(last) == [f"D{i:03d}" for i in range(100, 120)]
    content = last.content.decode()
    assert "101–120 of 120" in content
    assert 'href="?page=2" rel="prev"' in content
    assert 'rel="next"' not in content


def test_its_pages_keep_the_filters(admin_client, many):
    content = admin_client.get("/?state=up&sort=-last_seen").content.decode()
    assert 'href="?state=up&amp;sort=-last_seen&amp;page=2" rel="next"' in content


@pytest.mark.parametrize("number", ["0", "-3", "x", ""])
def test_it_shows_the_first_page_for_a_bad_page_number(admin_client, many, number):
    assert listed(admin_client.get(f"/?page={number}"))[0] == "D000"


def test_it_shows_an_empty_page_past_the_end(admin_client, many):
    response = admin_client.get("/?page=9")
    assert listed(response) == []
    assert 'id="fleet-empty"' in response.content.decode()


def test_it_stops_counting_at_the_cap(admin_client, many, monkeypatch):
    monkeypatch.setattr(overview, "COUNT_CAP", 100)
    monkeypatch.setattr(overview, "MAX_PAGES", 2)
    content = admin_client.get("/").content.decode()
    assert "1–50 of more than 100" in content
    content = admin_client.get("/?page=7").content.decode()  # past the last page offered
    assert "51–100 of more than 100" in content
    assert 'rel="next"' not in content
    assert "Search or filter to see more." in content


def test_a_page_of_fifty_devices_costs_a_bounded_number_of_queries(
        admin_client, django_assert_max_num_queries):
    kind = DeviceType.objects.create(sigfox_id="5F00")
    DeviceTypeHealth.objects.create(device_type=kind, interval_s=600)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(50):
        points = [(start + timedelta(minutes=10 * n), float(n)) for n in range(3)]
        made = store(f"E{i:02d}", points, rssi=-100, snr=10)
        store(made.sigfox_id, points, quantity="vbat")
        store(made.sigfox_id, points, sensor="2", quantity="hum")
        made.device_type = kind
        made.save()
        if i % 2:
            DeviceHealth.objects.create(device=made, state="up", learned_interval_s=600)
    # Session, user; devices; count; types; latest values; their units; signals.
    with django_assert_max_num_queries(9):
        response = admin_client.get("/")
    assert len(listed(response)) == 50


# -- what a row shows ---------------------------------------------------------------------

def test_it_shows_last_seen_ago_with_the_exact_time_on_hover(admin_client, settings):
    settings.TIME_ZONE = "Europe/Paris"
    seen = timezone.now().replace(microsecond=0) - timedelta(minutes=4, seconds=10)
    device("F1", state="up", last_seen=seen)
    content = admin_client.get("/").content.decode()
    local = seen.astimezone(timezone.get_default_timezone())
    zone = local.strftime("%Z")  # CET or CEST
    assert (f'<time datetime="{seen.isoformat()}" title="{local:%Y-%m-%d %H:%M:%S} {zone}">'
            "4\xa0minutes ago</time>") in content


def test_it_shows_the_interval_in_force(admin_client):
    kind = DeviceType.objects.create(sigfox_id="5F00")
    DeviceTypeHealth.objects.create(device_type=kind, interval_s=3600)
    device("91", state="up", last_seen=ago(1), learned_interval_s=600)
    device("92", state="up", last_seen=ago(2), learned_interval_s=600, device_type=kind)
    device("93", state="up", last_seen=ago(3), learned_interval_s=600, device_type=kind,
           interval_s=5400)
    device("94", state="new", last_seen=ago(4))
    content = admin_client.get("/").content.decode()
    cells = {sigfox_id: re.search(rf'data-device="{sigfox_id}".*?</tr>', content, re.DOTALL).group(0)
             for sigfox_id in ("91", "92", "93", "94")}
    assert "<td>10 min</td>" in cells["91"]  # learned
    assert "<td>1 h</td>" in cells["92"]  # the type's
    assert "<td>1 h 30 min</td>" in cells["93"]  # its own
    assert "<td>–</td>" in cells["94"]


def test_it_shows_latest_values_with_units_battery_and_signal(admin_client):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    store("AB1", [(start, 20.0), (start + timedelta(minutes=10), 21.5)], rssi=-120, snr=7.5)
    store("AB1", [(start, 3.6), (start + timedelta(minutes=10), 3.55)], quantity="vbat")
    store("AB1", [(start, 40.0)], sensor="2", quantity="hum")
    content = admin_client.get("/").content.decode()
    row = re.search(r'data-device="AB1".*?</tr>', content, re.DOTALL).group(0)
    assert "hum <b>40</b> %" in row
    assert "temp <b>21.5</b> °C" in row
    assert ">3.55 V</span>" in row  # the battery, in its own column
    assert "vbat <b>" not in row
    assert "-120 dBm" in row and "SNR 7.5 dB" in row


def test_it_shows_a_few_values_and_how_many_more(admin_client):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for quantity in ("a", "b", "c", "d", "e", "f"):
        store("AB2", [(start, 1.0)], quantity=quantity)
    row = admin_client.get("/").content.decode()
    assert row.count('class="value"') == overview.VALUES_SHOWN
    assert "+2</span>" in row


@pytest.mark.parametrize("quantities, expected", [
    (["temp", "vbat"], "vbat"),
    (["battery_v", "vbat_mv"], "battery_v"),
    (["temp", "vbat_mv"], "vbat_mv"),
    (["temp", "bat_level"], "bat_level"),
    (["temp", "hum"], None),
])
def test_it_picks_the_battery_like_quantity(quantities, expected):
    assert overview.battery_quantity(quantities) == expected


# -- the device page's health ---------------------------------------------------------------

def test_the_device_page_shows_a_device_without_health_as_new(admin_client):
    store("1A2B3C", [(datetime(2026, 1, 1, tzinfo=UTC), 20.0)])
    content = admin_client.get("/devices/1A2B3C").content.decode()
    assert 'id="health-state">new</span>' in content
    assert "No rhythm learned yet" in content
    assert "No change of state recorded." in content


def test_the_device_page_shows_state_interval_and_rhythm(admin_client):
    made = store("1A2B3C", [(datetime(2026, 1, 1, tzinfo=UTC), 20.0)])
    since = timezone.now() - timedelta(hours=2)
    DeviceHealth.objects.create(device=made, state="late", state_since=since, learned_interval_s=600,
                                samples=[600, 590, 610, 300, 800, 1000, 2000])
    content = admin_client.get("/devices/1A2B3C").content.decode()
    assert 'id="health-state">late</span>' in content
    assert "since <time" in content and "2\xa0hours ago</time>" in content
    assert 'id="health-interval">10 min <span class="muted">(learned)</span>' in content
    rhythm = re.search(r'id="health-rhythm".*?</table>', content, re.DOTALL).group(0)
    counts = re.findall(r"<td>(early|on time|later than usual|late|down)</td>.*?</meter> (\d+)</td>",
                        rhythm, re.DOTALL)
    # early < 9 min <= on time < 11 min <= later < 15 min <= late < 30 min <= down
    assert counts == [("early", "1"), ("on time", "3"), ("later than usual", "1"), ("late", "1"),
                      ("down", "1")]


def test_the_device_page_shows_the_rules_in_force_and_where_they_come_from(admin_client, settings):
    settings.SIGFOX_GRACE_S = 60
    kind = DeviceType.objects.create(sigfox_id="5F00")
    DeviceTypeHealth.objects.create(device_type=kind, down_after=4)
    made = store("1A2B3C", [(datetime(2026, 1, 1, tzinfo=UTC), 20.0)])
    made.device_type = kind
    made.save()
    DeviceHealth.objects.create(device=made, state="up", interval_s=600, late_after=2)
    content = admin_client.get("/devices/1A2B3C").content.decode()
    rules = re.search(r'id="health-rules".*?</table>', content, re.DOTALL).group(0)
    assert re.search(r"Late after</td><td>2 × the interval.*?= 21 min without.*?<td>device</td>", rules)
    assert re.search(r"Down after</td><td>4 × the interval.*?= 41 min without.*?<td>type</td>", rules)
    assert re.search(r"Grace</td><td>1 min .*?<td>site</td>", rules)
    assert "10 min <span class=\"muted\">(set on the device)</span>" in content


def test_the_device_page_shows_the_alert_history_newest_first(admin_client):
    made = store("1A2B3C", [(datetime(2026, 1, 1, tzinfo=UTC), 20.0)])
    DeviceHealth.objects.create(device=made, state="up")
    now = timezone.now()
    down = StateChange.objects.create(device=made, time=now - timedelta(hours=3), from_state="up",
                                      to_state="down", reason="no message for longer than expected")
    StateChange.objects.create(device=made, time=now - timedelta(hours=1), from_state="down",
                               to_state="up", reason="a message arrived")
    pager = Channel.objects.create(name="pager", url="ntfys://secret-token@ntfy.sh/topic")
    Notification.objects.create(change=down, url=pager.url, channel=pager, kind="alert",
                                status="sent", attempts=1, next_attempt_at=now)
    Notification.objects.create(change=down, url="json://example.com/hook", kind="alert",
                                status="failed", attempts=3, next_attempt_at=now)
    content = admin_client.get("/devices/1A2B3C").content.decode()
    history = re.search(r'id="health-history".*?</table>', content, re.DOTALL).group(0)
    assert history.index("a message arrived") < history.index("no message for longer")
    assert "pager: alert sent" in history
    assert "site channel: alert failed (3 tries)" in history
    assert "secret-token" not in content  # a channel's URL holds its credentials


def test_the_device_page_bounds_the_alert_history(admin_client):
    made = store("1A2B3C", [(datetime(2026, 1, 1, tzinfo=UTC), 20.0)])
    now = timezone.now()
    StateChange.objects.bulk_create(
        StateChange(device=made, time=now - timedelta(minutes=i), from_state="up", to_state="late",
                    reason=f"change {i}")
        for i in range(overview.HISTORY_SHOWN + 5)
    )
    content = admin_client.get("/devices/1A2B3C").content.decode()
    assert content.count("<td>change ") == overview.HISTORY_SHOWN
    assert "<td>change 0</td>" in content


def test_the_device_page_shows_a_device_that_is_muted(admin_client):
    made = store("1A2B3C", [(datetime(2026, 1, 1, tzinfo=UTC), 20.0)])
    DeviceHealth.objects.create(device=made, state="muted",
                                muted_until=datetime(2030, 5, 1, 12, tzinfo=UTC))
    content = admin_client.get("/devices/1A2B3C").content.decode()
    assert "<dt>Muted until</dt><dd>2030-05-01 12:00 UTC</dd>" in content


def test_the_device_page_links_back_to_the_overview(admin_client):
    store("1A2B3C", [(datetime(2026, 1, 1, tzinfo=UTC), 20.0)])
    assert Message.objects.count() == 1
    assert 'href="/">Devices</a>' in admin_client.get("/devices/1A2B3C").content.decode()


# -- in a browser ----------------------------------------------------------------------------

@pytest.mark.browser
def test_the_overview_renders_in_a_browser_and_a_row_leads_to_its_device(server, page):  # noqa: F811
    now = int(timezone.now().timestamp())
    for i, temp in enumerate([19, 21]):
        post(server, {"device": "C0FFEE", "time": str(now - 600 * (1 - i)), "temp": temp, "vbat": 3.6})
    page.goto(f"{server.url}/")
    row = page.locator('#fleet tr[data-device="C0FFEE"]')
    assert row.get_attribute("data-state") == "new"
    assert "temp 21 °C" in row.inner_text()
    assert row.locator("time").get_attribute("title").endswith(("CET", "CEST"))
    row.get_by_role("link", name="C0FFEE").click()
    page.wait_for_url(f"{server.url}/devices/C0FFEE")
    assert page.text_content("#health-state") == "new"
