// node --test: the pure range arithmetic of the chart pages (dashboard/static/dashboard/js/ranges.js).
import assert from "node:assert/strict";
import { test } from "node:test";
import { DateTime } from "luxon";

import {
  drawnWindow, follows, isPreset, linkPointCount, liveWindow, pointCount, rangeWindow,
} from "../../dashboard/static/dashboard/js/ranges.js";

const HOUR_MS = 3600 * 1000;
const DAY_MS = 24 * HOUR_MS;
// As the page's config carries them (dashboard/views.py, _chart_context).
const RANGES = { hour: HOUR_MS, day: DAY_MS, week: 7 * DAY_MS, month: 31 * DAY_MS, year: 365 * DAY_MS,
                 all: null, custom: null };
const POINTS = { min: 10, max: 2000, default: 1000, fixed: null };
const NOW_MS = Date.parse("2024-06-15T12:00:00Z");
const PARIS = { ranges: RANGES, zone: "Europe/Paris", nowMs: NOW_MS, DateTime: DateTime };

test("it knows the presets from the config", () => {
  assert.deepEqual(Object.keys(RANGES).filter((name) => isPreset(RANGES, name)),
                   ["hour", "day", "week", "month", "year"]);
  assert.equal(isPreset(RANGES, "fortnight"), false);
});

test("it follows the newest readings for presets and all only", () => {
  assert.equal(follows(RANGES, "day"), true);
  assert.equal(follows(RANGES, "all"), true);
  assert.equal(follows(RANGES, "custom"), false);
});

test("it ends a preset's window now, its length from the config", () => {
  for (const name of ["hour", "day", "week", "month", "year"]) {
    assert.deepEqual(rangeWindow({ range: name }, PARIS), { since: NOW_MS - RANGES[name], until: NOW_MS });
  }
  const longerDays = Object.assign({}, RANGES, { day: 2 * DAY_MS });
  assert.equal(rangeWindow({ range: "day" }, Object.assign({}, PARIS, { ranges: longerDays })).since,
               NOW_MS - 2 * DAY_MS);
});

test("it leaves both ends of all open", () => {
  assert.deepEqual(rangeWindow({ range: "all" }, PARIS), { since: null, until: null });
});

test("it reads custom dates as whole days of the site's zone, the last included", () => {
  const window_ = rangeWindow({ range: "custom", from: "2024-01-10", to: "2024-01-11" }, PARIS);
  assert.deepEqual(window_, { since: Date.parse("2024-01-09T23:00:00Z"), until: Date.parse("2024-01-11T23:00:00Z") });
});

test("it gives a day of 23 hours when the clocks go forward", () => {
  const window_ = rangeWindow({ range: "custom", from: "2024-03-31", to: "2024-03-31" }, PARIS);
  assert.equal(window_.until - window_.since, 23 * HOUR_MS);
});

test("it leaves a missing or malformed date open", () => {
  assert.deepEqual(rangeWindow({ range: "custom", from: "", to: "2024-01-11" }, PARIS),
                   { since: null, until: Date.parse("2024-01-11T23:00:00Z") });
  assert.deepEqual(rangeWindow({ range: "custom", from: "2024-02-30", to: "" }, PARIS),
                   { since: null, until: null });
});

test("it bounds an open window by the readings answered", () => {
  const answers = [
    { since: "2024-06-01T00:00:00Z", until: "2024-06-02T00:00:00Z" },
    { since: "2024-05-30T00:00:00Z", until: "2024-06-01T12:00:00Z" },
  ];
  assert.deepEqual(drawnWindow({ since: null, until: null }, answers, NOW_MS),
                   { min: Date.parse("2024-05-30T00:00:00Z"), max: Date.parse("2024-06-02T00:00:00Z") });
  // A window asked for stays as it is.
  assert.deepEqual(drawnWindow({ since: 1000, until: 2000 }, answers, NOW_MS), { min: 1000, max: 2000 });
});

test("it shows the day up to now when nothing bounds the window", () => {
  const empty = [{ since: null, until: null }];
  assert.deepEqual(drawnWindow({ since: null, until: null }, empty, NOW_MS), { min: NOW_MS - DAY_MS, max: NOW_MS });
  assert.deepEqual(drawnWindow({ since: null, until: 5 * DAY_MS }, empty, NOW_MS), { min: 4 * DAY_MS, max: 5 * DAY_MS });
});

test("it slides a preset's window with new readings, and stretches it to a reading ahead", () => {
  const shown = { min: NOW_MS - DAY_MS - 60000, max: NOW_MS - 60000 };
  const fresh = { since: NOW_MS - DAY_MS, until: NOW_MS };
  assert.deepEqual(liveWindow(shown, fresh, NOW_MS - 5000), { min: fresh.since, max: NOW_MS });
  assert.deepEqual(liveWindow(shown, fresh, NOW_MS + 5000), { min: fresh.since, max: NOW_MS + 5000 });
});

test("it keeps the start of all and stretches its end", () => {
  const shown = { min: 1000, max: 5000 };
  assert.deepEqual(liveWindow(shown, null, 7000), { min: 1000, max: 7000 });
  assert.deepEqual(liveWindow(shown, null, 3000), { min: 1000, max: 5000 });
});

test("it asks for about a point per pixel, within the server's bounds", () => {
  assert.equal(pointCount(POINTS, 873.4), 873);
  assert.equal(pointCount(POINTS, 0), 1000);  // not laid out yet: the server's default
  assert.equal(pointCount(POINTS, 40), 100);
  assert.equal(pointCount(POINTS, 5000), 2000);
  assert.equal(pointCount(Object.assign({}, POINTS, { max: 500 }), 873), 500);
});

test("it asks for the points of the address as they are, within bounds", () => {
  assert.equal(pointCount(Object.assign({}, POINTS, { fixed: 20 }), 873), 20);
  assert.equal(pointCount(Object.assign({}, POINTS, { fixed: 5 }), 873), 10);
  assert.equal(pointCount(Object.assign({}, POINTS, { fixed: 9000 }), 873), 2000);
});

test("it asks the link API for an eighth of the points, not fewer than the server takes", () => {
  assert.equal(linkPointCount(POINTS, 800), 100);
  assert.equal(linkPointCount(Object.assign({}, POINTS, { fixed: 20 }), 800), 10);
});
