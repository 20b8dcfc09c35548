// node --test: the read API's queries (dashboard/static/dashboard/js/api.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  csvQuery, filterQuery, linkQuery, newReadingsQuery, seriesQuery,
} from "../../dashboard/static/dashboard/js/api.js";

const T0 = Date.parse("2024-06-15T00:00:00Z");
const SERIES = [
  { device: "1A2B3C", sensor: "1", quantity: "temp" },
  { device: "1A2B3C", sensor: "1", quantity: "hum" },
  { device: "BF1327", sensor: "2", quantity: "temp" },
];

test("it filters by each device, sensor and quantity once", () => {
  assert.equal(filterQuery(SERIES).toString(), "device=1A2B3C%2CBF1327&sensor=1%2C2&quantity=temp%2Chum");
});

test("it asks for a series over a window, an open end left out", () => {
  const query = seriesQuery(SERIES[0], { since: T0, until: null }, 500);
  assert.deepEqual(Object.fromEntries(query), { device: "1A2B3C", sensor: "1", quantity: "temp", points: "500",
                                                since: "2024-06-15T00:00:00.000Z" });
});

test("it asks for the CSV of what is shown, its last millisecond included", () => {
  const query = csvQuery(SERIES.slice(0, 1), { min: T0 + 0.4, max: T0 + 1000.2 });
  assert.equal(query.get("since"), "2024-06-15T00:00:00.000Z");
  assert.equal(query.get("until"), "2024-06-15T00:00:01.002Z");
});

test("it asks for a page of new readings since a time", () => {
  const query = newReadingsQuery(SERIES, T0 + 1, 1000);
  assert.equal(query.get("since"), "2024-06-15T00:00:00.001Z");
  assert.equal(query.get("page_size"), "1000");
  assert.equal(query.get("device"), "1A2B3C,BF1327");
});

test("it asks for the link quality of what is shown", () => {
  assert.deepEqual(Object.fromEntries(linkQuery({ min: T0, max: T0 + 1000 }, 100)),
                   { since: "2024-06-15T00:00:00.000Z", until: "2024-06-15T00:00:01.001Z", points: "100" });
});
