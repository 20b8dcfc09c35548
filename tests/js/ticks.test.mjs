// node --test: labels of the time axis (dashboard/static/dashboard/js/ticks.js).
import assert from "node:assert/strict";
import { test } from "node:test";
import { DateTime, Settings } from "luxon";

import { tickLabel } from "../../dashboard/static/dashboard/js/ticks.js";

Settings.defaultLocale = "en-US";
const MINUTE_MS = 60 * 1000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const ZONE = "Europe/Paris";

function label(iso, spanMs) {
  return tickLabel(Date.parse(iso), spanMs, ZONE, DateTime);
}

test("it shows seconds on an axis of minutes", () => {
  assert.equal(label("2024-06-15T10:20:30Z", 5 * MINUTE_MS), "12:20:30");
});

test("it shows times in the site's zone over a day, and the date at midnight", () => {
  assert.equal(label("2024-06-15T10:00:00Z", DAY_MS), "12:00");
  assert.equal(label("2024-06-14T22:00:00Z", DAY_MS), "Jun 15");
  assert.equal(label("2024-01-14T23:00:00Z", DAY_MS), "Jan 15");
});

test("it dates every tick of an axis of days", () => {
  assert.equal(label("2024-06-15T10:00:00Z", 7 * DAY_MS), "Jun 15 12:00");
  assert.equal(label("2024-06-14T22:00:00Z", 7 * DAY_MS), "Jun 15");
});

test("it shows the year on an axis of most of one", () => {
  assert.equal(label("2024-06-15T10:00:00Z", 365 * DAY_MS), "Jun 15, 2024");
  assert.equal(label("2024-05-31T22:00:00Z", 365 * DAY_MS), "Jun 2024");
  assert.equal(label("2024-06-14T22:00:00Z", 365 * DAY_MS), "Jun 15, 2024");
});
