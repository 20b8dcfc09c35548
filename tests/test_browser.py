"""The chart page in a real headless Chromium, driven by Playwright."""

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import missing_dependency
from tests.test_server import request

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


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


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 700})
    page = context.new_page()
    foreign = []
    page.on("request", lambda req: foreign.append(req.url)
            if not req.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    yield page
    context.close()
    assert foreign == [], f"the page loaded from other hosts: {foreign}"


def chart_state(page) -> list[dict]:
    return page.evaluate(
        """() => window.sigfoxChart.data.datasets.map(d => ({
               label: d.label, points: d.data.map(p => [p.x, p.y])}))"""
    )


def test_it_draws_a_callback_sent_over_http(server, page, tmp_path):
    now = int(time.time()) - 3600
    for i, temp in enumerate([19, 21, -3]):
        body = json.dumps({"device": "C0FFEE", "time": str(now + 600 * i), "temp": temp})
        assert request(f"{server.url}/data/1", body)[0] == 204

    page.goto(f"{server.url}/graph?device=C0FFEE")
    page.wait_for_selector("canvas#chart[data-ready=true]", timeout=15_000)
    series = chart_state(page)
    assert [s["label"] for s in series] == ["C0FFEE · sensor 1 · temp"]
    assert series[0]["points"] == [[(now + 600 * i) * 1000, t] for i, t in enumerate([19, 21, -3])]

    # The time axis is labelled in the site's zone (Europe/Paris for this server).
    assert page.evaluate("() => window.sigfoxChart.options.scales.x.title.text") == "Time (Europe/Paris)"
    tick = page.evaluate(
        """() => { const s = window.sigfoxChart.scales.x;
                   return s._adapter.format(s.min, 'ZZZZ'); }"""
    )
    assert tick in {"CET", "CEST", "GMT+1", "GMT+2"}

    # Something was painted: the canvas is not blank.
    painted = page.evaluate(
        """() => { const c = document.getElementById('chart');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"""
    )
    assert painted > 1000

    shot = tmp_path / "graph.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["SCREENSHOT_DIR"]) / "graph.png")


def test_it_switches_device_with_the_picker_by_keyboard(server, page):
    now = int(time.time()) - 7200
    for device, temp in [("AB01", 5), ("AB02", 6)]:
        body = json.dumps({"device": device, "time": str(now), "temp": temp})
        assert request(f"{server.url}/data/kitchen", body)[0] == 204

    page.goto(f"{server.url}/graph")
    page.wait_for_selector("canvas#chart[data-ready=true]")
    page.focus("select#device")
    page.select_option("select#device", "AB02")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/graph?device=AB02")
    page.wait_for_selector("canvas#chart[data-ready=true]")
    assert chart_state(page) == [{"label": "AB02 · sensor kitchen · temp", "points": [[now * 1000, 6]]}]
