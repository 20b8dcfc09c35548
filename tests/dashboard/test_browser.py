"""The chart pages in a real headless Chromium, driven by Playwright."""

import json
import math
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import missing_dependency
from tests.helpers import request

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# The README's screenshot is kept small.
SCREENSHOT_MAX_BYTES = 200_000
# The served site's zone (conftest's server fixture).
SITE_ZONE = ZoneInfo("Europe/Paris")


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        missing_dependency(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_dependency("Playwright is not installed (pip install -r requirements-dev.txt)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _page(browser, viewport):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    foreign, errors = [], []
    page.on("request", lambda req: foreign.append(req.url)
            if not req.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page, foreign, errors


@pytest.fixture
def page(browser):
    context, page, foreign, errors = _page(browser, {"width": 1100, "height": 700})
    yield page
    context.close()
    assert foreign == [], f"the page loaded from other hosts: {foreign}"
    assert errors == [], f"the page raised: {errors}"


@pytest.fixture
def phone(browser):
    context, page, foreign, errors = _page(browser, {"width": 375, "height": 740})
    yield page
    context.close()
    assert foreign == [] and errors == []


def post(server, body: dict, sensor="1"):
    status = request(f"{server.url}/data/{sensor}", json.dumps(body))[0]
    assert status == 204, (status, body)


def post_many(server, bodies):
    """(body, sensor) pairs: each device's in order (sequence numbers count lost
    messages), devices side by side."""
    by_device = {}
    for body, sensor in bodies:
        by_device.setdefault(body["device"], []).append((body, sensor))

    def send(pairs):
        for body, sensor in pairs:
            post(server, body, sensor)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, by_device.values()))


# The readiness contract of dashboard/static/dashboard/js/main.js: data
# attributes on the canvases, and the charts through Chart.js's own lookup.
CHART = "Chart.getChart('chart')"
LINK_CHART = "Chart.getChart('link-chart')"
CANVAS = "document.getElementById('chart').dataset"
DRAWN = f"['ready', 'empty'].includes({CANVAS}.state)"


def chart_state(page) -> list[dict]:
    return page.evaluate(
        f"""() => {CHART}.data.datasets.map(d => ({{
               label: d.label, points: d.data.map(p => [p.x, p.y])}}))"""
    )


def loads(page) -> int:
    return page.evaluate(f"() => Number({CANVAS}.loads)")


def wait_for_load(page, count: int):
    page.wait_for_function(f"() => Number({CANVAS}.loads) >= {count} && {DRAWN}", timeout=15_000)


def wait_for_polls(page, more: int, appeared: str):
    """Until the poll timer ran `more` times from now, or the JS expression
    `appeared` holds (what the poll should not have done)."""
    ticks = page.evaluate(f"() => Number({CANVAS}.ticks || 0)")
    page.wait_for_function(
        f"() => Number({CANVAS}.ticks || 0) >= {ticks + more} || ({appeared})", timeout=10_000)


def x_window(page) -> list[float]:
    return page.evaluate(f"() => [{CHART}.scales.x.min, {CHART}.scales.x.max]")


def tick_labels(page) -> list[str]:
    return page.evaluate(f"() => {CHART}.scales.x.ticks.map(t => t.label)")


def wait_for_window_loaded(page):
    """Until the data drawn is the data asked for the x axis as it now stands
    (wheel events may still be zooming when the first reload starts)."""
    page.wait_for_function(
        f"""() => {{ const asked = {CANVAS}, x = {CHART}.scales.x;
                   return Number(asked.loads) >= 2 && {DRAWN}
                       && Math.abs(Number(asked.since) - x.min) < 1000
                       && Math.abs(Number(asked.until) - x.max) < 1000; }}""",
        timeout=15_000,
    )


def link_datasets(page) -> dict[str, list]:
    return page.evaluate(
        f"""() => Object.fromEntries({LINK_CHART}.data.datasets.map(
               d => [d.label, d.data.map(p => p.y)]))""")


def visible_points(page) -> int:
    return page.evaluate(
        f"""() => {{ const c = {CHART}, x = c.scales.x;
                   return c.data.datasets.reduce((n, d) =>
                       n + d.data.filter(p => p.x >= x.min && p.x <= x.max).length, 0); }}"""
    )


@pytest.fixture(scope="module")
def a_day(server):
    """A day of readings of two devices, nine minutes apart, with a spike and lost
    messages. They span 21.5 hours: the "last day" of the later tests (23 hours
    on the day clocks go forward) still holds them all."""
    end = int(time.time()) - 60
    bodies = []
    for i in range(144):
        t = end - (143 - i) * 540
        temp = round(18 + 4 * math.sin(i / 23), 2) + (9 if i == 90 else 0)
        seq = i + (2 if i >= 100 else 0)
        bodies.append(({"device": "DA1A01", "time": str(t), "seqNumber": seq, "temp": temp,
                        "vbat_mv": 3300 - i, "rssi": -115 - (i * 7) % 13, "snr": 6 + (i * 5) % 9},
                       "1"))
        if i % 2 == 0:
            bodies.append(({"device": "DA1A02", "time": str(t + 60),
                            "hum": round(55 + 12 * math.cos(i / 17), 1)}, "kitchen"))
    post_many(server, bodies)
    return end


@pytest.fixture(scope="module")
def an_outage(server):
    """A device that sent every ten minutes for a day, then nothing for three days,
    then again for six hours until two hours ago. Each message has temp and hum:
    two tests add a later reading of their own (at distinct times) to one each."""
    end = int(time.time()) - 7200
    resume = end - 35 * 600
    stop = resume - 3 * 86400
    first = stop - 143 * 600
    times = [first + i * 600 for i in range(144)] + [resume + i * 600 for i in range(36)]
    bodies = [{"device": "DEAD01", "time": str(t), "temp": round(15 + 3 * math.sin(i / 20), 2),
               "hum": 60 + i % 7} for i, t in enumerate(times)]
    post(server, bodies[0])  # creates the device; then the others side by side
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda body: post(server, body), bodies[1:]))
    return {"first": first * 1000, "stop": stop * 1000, "resume": resume * 1000, "end": end * 1000}


def test_it_draws_a_callback_sent_over_http(server, page):
    now = int(time.time()) - 3600
    for i, temp in enumerate([19, 21, -3]):
        post(server, {"device": "C0FFEE", "time": str(now + 600 * i), "temp": temp})

    page.goto(f"{server.url}/graph?device=C0FFEE")
    page.wait_for_selector("canvas#chart[data-state=ready]", timeout=15_000)
    series = chart_state(page)
    assert [s["label"] for s in series] == ["C0FFEE · sensor 1 · temp (°C)"]
    assert series[0]["points"] == [[(now + 600 * i) * 1000, t] for i, t in enumerate([19, 21, -3])]

    # The time axis is labelled in the site's zone (Europe/Paris for this server).
    assert page.evaluate(f"() => {CHART}.options.scales.x.title.text") == "Time (Europe/Paris)"
    tick = page.evaluate(
        f"""() => {{ const s = {CHART}.scales.x;
                   return s._adapter.format(s.min, 'ZZZZ'); }}"""
    )
    assert tick in {"CET", "CEST", "GMT+1", "GMT+2"}

    # Something was painted: the canvas is not blank.
    painted = page.evaluate(
        """() => { const c = document.getElementById('chart');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"""
    )
    assert painted > 1000
    assert page.text_content("#chart-status") == "3 readings."


def test_it_makes_the_readme_screenshot(server, page, a_day, tmp_path):
    page.goto(f"{server.url}/graph?device=DA1A01&device=DA1A02&range=day")
    wait_for_load(page, 1)
    labels = [s["label"] for s in chart_state(page)]
    assert labels == ["DA1A01 · sensor 1 · temp (°C)", "DA1A01 · sensor 1 · vbat_mv (mV)",
                      "DA1A02 · sensor kitchen · hum (%)"]
    shot = tmp_path / "graph.png"
    page.screenshot(path=str(shot), full_page=True)
    assert 10_000 < shot.stat().st_size < SCREENSHOT_MAX_BYTES
    if os.environ.get("SCREENSHOT_DIR"):
        target = Path(os.environ["SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / "graph.png")


def test_it_keeps_the_spike_of_a_downsampled_day(server, page, a_day):
    page.goto(f"{server.url}/graph?device=DA1A01&quantity=temp&range=day&points=20")
    wait_for_load(page, 1)
    points = chart_state(page)[0]["points"]
    assert len(points) <= 20
    assert max(v for _, v in points) == round(18 + 4 * math.sin(90 / 23), 2) + 9
    assert "drawn as" in page.text_content("#chart-status")
    # Five buckets of 4.3 hours: their points are hours apart, with readings
    # between them nine minutes apart; no outage, no break.
    assert all(v is not None for _, v in points)
    # A day is labelled by its times, and its midnight by the date.
    labels = tick_labels(page)
    assert all(re.fullmatch(r"\d\d:\d\d|\S+ \d{1,2}", label) for label in labels), labels
    assert sum(bool(re.fullmatch(r"\d\d:\d\d", label)) for label in labels) >= 3, labels


def test_it_changes_the_data_with_the_range(server, page):
    now = int(time.time())
    post(server, {"device": "BA0001", "time": str(now - 3 * 86400), "temp": 2})
    post(server, {"device": "BA0001", "time": str(now - 7200), "temp": 1})

    page.goto(f"{server.url}/graph?device=BA0001")
    wait_for_load(page, 1)
    assert page.input_value("#range") == "day"
    assert [v for _, v in chart_state(page)[0]["points"]] == [1]

    page.select_option("#range", "week")
    wait_for_load(page, 2)
    assert [v for _, v in chart_state(page)[0]["points"]] == [2, 1]
    assert "range=week" in page.url

    # Dates pick a custom range; one without readings says so.
    page.fill("#from", "2020-01-01")
    page.fill("#to", "2020-01-02")
    page.dispatch_event("#to", "change")
    page.wait_for_function("() => document.getElementById('chart-status').dataset.kind === 'empty'")
    assert page.input_value("#range") == "custom"
    assert "No readings in this range" in page.text_content("#chart-status")
    assert chart_state(page)[0]["points"] == []


def test_it_shows_a_new_reading_without_a_reload(server, page):
    now = int(time.time())
    post(server, {"device": "11FE01", "time": str(now - 600), "temp": 20})
    page.goto(f"{server.url}/graph?device=11FE01&poll_ms=500")
    wait_for_load(page, 1)
    page.evaluate("() => { window.notReloaded = true; }")

    post(server, {"device": "11FE01", "time": str(now), "temp": 23.5})
    page.wait_for_function(
        f"() => {CHART}.data.datasets[0].data.some(p => p.y === 23.5)", timeout=10_000)
    assert page.evaluate("() => window.notReloaded") is True
    assert chart_state(page)[0]["points"] == [[(now - 600) * 1000, 20], [now * 1000, 23.5]]
    assert loads(page) == 1


def test_it_fetches_finer_data_when_zooming(server, page, a_day):
    series_requests = []
    page.on("request", lambda req: series_requests.append(req.url) if "/api/series/" in req.url else None)
    page.goto(f"{server.url}/graph?device=DA1A01&quantity=temp&range=day&points=20")
    wait_for_load(page, 1)
    assert visible_points(page) <= 20

    box = page.locator("canvas#chart").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
    for _ in range(12):
        page.mouse.wheel(0, -200)
        page.wait_for_timeout(30)
    wait_for_window_loaded(page)

    shown = x_window(page)
    day_ms = 86_400_000
    assert shown[1] - shown[0] < day_ms / 2
    query = parse_qs(urlparse(series_requests[-1]).query)
    asked = [time.mktime(time.strptime(query[k][0][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
             for k in ("since", "until")]
    assert abs(asked[0] * 1000 - shown[0]) < 1000 and abs(asked[1] * 1000 - shown[1]) < 1000
    # The same twenty points now cover a shorter time: each stands for less of it.
    first, last = (page.request.get(url).json() for url in (series_requests[0], series_requests[-1]))
    width = lambda answer: answer["buckets"][0]["end"] - answer["buckets"][0]["start"]  # noqa: E731
    assert width(last) < width(first) / 2
    # Buckets of an hour or more lie on whole hours (the rollups' grid), so the
    # first and last reach past a zoomed window's edges: fewer of the twenty show.
    assert visible_points(page) >= 4


def test_it_zooms_and_pans_with_buttons(server, page, a_day):
    page.goto(f"{server.url}/graph?device=DA1A01&quantity=temp&range=day&points=20")
    wait_for_load(page, 1)
    shown = x_window(page)
    width = shown[1] - shown[0]
    page.click("button[data-action=zoom-in]")
    wait_for_load(page, 2)
    zoomed = x_window(page)
    assert zoomed[1] - zoomed[0] < width * 0.75
    page.click("button[data-action=earlier]")
    wait_for_load(page, 3)
    panned = x_window(page)[0]
    assert panned < zoomed[0]
    page.click("button[data-action=reset]")
    wait_for_load(page, 4)
    reset = x_window(page)
    assert reset[1] - reset[0] >= width - 5000


def test_it_links_the_csv_of_what_is_shown(server, page, a_day):
    page.goto(f"{server.url}/graph?device=DA1A01&quantity=temp&range=day")
    wait_for_load(page, 1)
    href = page.get_attribute("#csv-link", "href")
    query = parse_qs(urlparse(href).query)
    assert query["device"] == ["DA1A01"] and query["quantity"] == ["temp"]
    assert {"since", "until"} <= set(query)
    response = page.request.get(server.url + href)
    lines = response.text().splitlines()
    assert lines[0] == "time,device,sensor,quantity,value,unit"
    assert len(lines) == 145
    assert lines[1].split(",")[1:4] == ["DA1A01", "1", "temp"]


def test_it_switches_device_with_the_picker_by_keyboard(server, page):
    now = int(time.time()) - 7200
    for device, temp in [("AB01", 5), ("AB02", 6)]:
        post(server, {"device": device, "time": str(now), "temp": temp}, sensor="kitchen")

    # The search narrows the picker to these two (other tests' devices share the server).
    page.goto(f"{server.url}/graph?device=AB01&q=AB0")
    wait_for_load(page, 1)
    if not page.evaluate("() => document.getElementById('device-choices').open"):
        page.focus("#device-choices summary")
        page.keyboard.press("Enter")
    page.focus("#device-AB01")
    page.keyboard.press("Tab")  # the link to AB01's page
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "device-AB02"
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid", "keyboard focus must be visible"
    # The server knows the series of the chosen devices only: a pick reloads the page.
    with page.expect_navigation():
        page.keyboard.press("Space")
    wait_for_load(page, 1)
    page.focus("#device-AB01")
    with page.expect_navigation():
        page.keyboard.press("Space")
    wait_for_load(page, 1)
    assert chart_state(page) == [{"label": "AB02 · sensor kitchen · temp (°C)", "points": [[now * 1000, 6]]}]
    assert "device=AB02" in page.url and "device=AB01" not in page.url


def test_it_works_with_the_keyboard(server, page, a_day):
    page.goto(f"{server.url}/graph?device=DA1A01&range=day")
    wait_for_load(page, 1)
    # Quantities: a checkbox toggled with the space bar.
    page.focus("#quantity-choices input[value=vbat_mv]")
    page.keyboard.press("Space")
    wait_for_load(page, 2)
    assert [s["label"] for s in chart_state(page)] == ["DA1A01 · sensor 1 · temp (°C)"]
    # The range: a select changed with the arrow keys.
    page.focus("#range")
    page.keyboard.press("ArrowDown")
    wait_for_load(page, 3)
    assert page.input_value("#range") == "week"
    # The zoom buttons take Enter.
    page.focus("button[data-action=zoom-in]")
    page.keyboard.press("Enter")
    wait_for_load(page, 4)
    assert page.evaluate(f"() => {CANVAS}.zoomed") == "true"
    # Every control is reachable with Tab.
    reached = set()
    page.focus("#range")
    for _ in range(20):  # a date input takes a Tab per part
        page.keyboard.press("Tab")
        reached.add(page.evaluate("() => document.activeElement.id || document.activeElement.dataset.action"))
    assert {"from", "to", "zoom-in", "zoom-out", "earlier", "later", "reset", "csv-link"} <= reached


def test_it_fits_a_phone_screen(server, phone, a_day):
    phone.goto(f"{server.url}/graph?device=DA1A01&device=DA1A02&range=day")
    wait_for_load(phone, 1)
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 375
    assert phone.evaluate("() => document.getElementById('chart').getBoundingClientRect().right") <= 375
    assert phone.locator("#range").is_visible() and phone.locator("#csv-link").is_visible()


def test_it_shows_link_quality_on_the_device_page(server, page, a_day):
    page.goto(f"{server.url}/devices/DA1A01?range=day")
    wait_for_load(page, 1)
    page.wait_for_selector("canvas#link-chart[data-state=ready]", timeout=15_000)
    datasets = link_datasets(page)
    assert min(datasets["RSSI lowest"]) >= -127 and max(datasets["RSSI highest"]) <= -115
    assert datasets["SNR mean (dB)"]
    assert sum(datasets["Lost messages"]) == 2
    assert "144 messages, 2 lost." == page.text_content("#link-status")


def test_it_serves_the_api_docs_from_this_site(server, page):
    page.goto(f"{server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info", timeout=15_000)
    assert "sigfoxsite API" in page.text_content(".swagger-ui .info")
    assert page.locator("text=/api/series/").count() >= 1


def test_it_breaks_the_line_across_an_outage(server, page, a_day, an_outage):
    page.goto(f"{server.url}/graph?device=DEAD01&device=DA1A01&quantity=temp&range=week"
              "&poll_ms=500")
    wait_for_load(page, 1)
    series = {s["label"].split(" ")[0]: s["points"] for s in chart_state(page)}
    outage, steady = series["DEAD01"], series["DA1A01"]
    assert len([v for _, v in outage if v is not None]) == 180
    # One break (a null point), inside the three days without readings.
    breaks = [t for t, v in outage if v is None]
    assert len(breaks) == 1 and an_outage["stop"] < breaks[0] < an_outage["resume"]
    # A series that never went silent is one line.
    assert all(v is not None for _, v in steady)

    # A reading that comes after an hour more of silence starts a line of its own.
    now = an_outage["end"] // 1000 + 3600
    post(server, {"device": "DEAD01", "time": str(now), "temp": 99.5})
    page.wait_for_function(f"""() => {CHART}.data.datasets.some(
        d => d.label.startsWith('DEAD01') && d.data.some(p => p.y === 99.5))""", timeout=10_000)
    outage = {s["label"].split(" ")[0]: s["points"] for s in chart_state(page)}["DEAD01"]
    assert outage[-1] == [now * 1000, 99.5]
    assert outage[-2][1] is None and an_outage["end"] < outage[-2][0] < now * 1000
    assert loads(page) == 1


def test_it_breaks_a_downsampled_line_only_between_buckets(server, page, an_outage):
    # Ten buckets of 16.8 hours: the day before the outage fills two or three.
    page.goto(f"{server.url}/graph?device=DEAD01&quantity=hum&range=week&points=40&poll_ms=500")
    wait_for_load(page, 1)
    [points] = [s["points"] for s in chart_state(page)]
    breaks = [t for t, v in points if v is None]
    assert len([t for t in breaks if an_outage["stop"] < t < an_outage["resume"]]) == 1
    assert not [t for t in breaks if an_outage["first"] < t < an_outage["stop"]
                or an_outage["resume"] < t < an_outage["end"]]
    assert len([v for _, v in points if v is not None]) <= 40
    assert page.evaluate(f"() => {CHART}.data.datasets[0].method") == "m4"

    # Live readings follow the same rule: after an hour and a half of silence, a break.
    now = an_outage["end"] // 1000 + 5400
    post(server, {"device": "DEAD01", "time": str(now), "hum": 66.5})
    page.wait_for_function(
        f"() => {CHART}.data.datasets[0].data.some(p => p.y === 66.5)", timeout=10_000)
    [points] = [s["points"] for s in chart_state(page)]
    assert points[-1] == [now * 1000, 66.5]
    assert points[-2][1] is None and an_outage["end"] < points[-2][0] < now * 1000


def test_it_dates_the_ticks_of_a_week(server, page, a_day):
    page.goto(f"{server.url}/graph?device=DA1A01&quantity=temp&range=week")
    wait_for_load(page, 1)
    labels = tick_labels(page)
    assert len(labels) >= 4, labels
    today = datetime.now(SITE_ZONE)
    days = {str((today - timedelta(days=n)).day) for n in range(8)}
    # "Nov 3" or "Nov 3 14:00": every tick tells its day, one of the week's.
    for label in labels:
        match = re.fullmatch(r"\S+ (\d{1,2})( \d\d:\d\d)?", label)
        assert match and match[1] in days, labels


def test_it_adds_no_reading_after_a_zoom_into_the_past(server, page):
    now = int(time.time())
    for i in range(6):
        post(server, {"device": "5A0001", "time": str(now - 600 - 4 * 3600 * i), "temp": i})
    page.goto(f"{server.url}/graph?device=5A0001&range=day&poll_ms=500")
    wait_for_load(page, 1)
    page.click("button[data-action=zoom-in]")  # the middle two thirds: up to 4 hours ago
    wait_for_load(page, 2)
    shown, before = x_window(page), chart_state(page)
    assert shown[1] < (now - 3 * 3600) * 1000

    post(server, {"device": "5A0001", "time": str(now), "temp": 42})
    wait_for_polls(page, 3, f"{CHART}.data.datasets[0].data.some(p => p.y === 42)")
    assert chart_state(page) == before
    assert x_window(page) == shown
    assert loads(page) == 2


def test_it_adds_no_reading_to_a_range_in_the_past(server, page):
    today = datetime.now(SITE_ZONE).date()
    days = [today - timedelta(days=3), today - timedelta(days=2)]
    for n, day in enumerate(days):
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=SITE_ZONE)
        post(server, {"device": "5A0002", "time": str(int(noon.timestamp())), "temp": n})
    page.goto(f"{server.url}/graph?device=5A0002&range=custom&from={days[0]}&to={days[1]}"
              "&poll_ms=500")
    wait_for_load(page, 1)
    shown, before = x_window(page), chart_state(page)
    assert [v for _, v in before[0]["points"]] == [0, 1]

    post(server, {"device": "5A0002", "time": str(int(time.time())), "temp": 42})
    wait_for_polls(page, 3, f"{CHART}.data.datasets[0].data.some(p => p.y === 42)")
    assert chart_state(page) == before
    assert x_window(page) == shown


@pytest.mark.parametrize("reset", [True, False], ids=["resets", "no-resets-field"])
def test_it_shows_counter_resets_apart_from_losses(server, page, a_day, reset):
    """Buckets of the link API count resets of the sequence counter: drawn beside
    the losses, not as losses. a_day has none: one is added here; or the field is
    taken out, as the server answered before it counted resets."""
    def rewrite(route):
        response = route.fetch()
        answer = response.json()
        for bucket in answer["buckets"]:
            bucket.pop("resets", None)
            if reset:
                bucket["resets"] = 0
        if reset:
            busy = [b for b in answer["buckets"] if b["messages"]]
            busy[len(busy) // 2]["resets"] = 1
        route.fulfill(response=response, json=answer)

    page.route(re.compile(r"/api/devices/DA1A01/link/"), rewrite)
    page.goto(f"{server.url}/devices/DA1A01?range=day")
    page.wait_for_selector("canvas#link-chart[data-state=ready]", timeout=15_000)
    datasets = link_datasets(page)
    assert sum(datasets["Lost messages"]) == 2
    if reset:
        assert sum(datasets["Counter resets"]) == 1
        assert page.text_content("#link-status") == "144 messages, 2 lost, 1 counter reset."
    else:
        assert "Counter resets" not in datasets
        assert page.text_content("#link-status") == "144 messages, 2 lost."
