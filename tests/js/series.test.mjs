// node --test: how readings become lines (dashboard/static/dashboard/js/series.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  GAP_FACTOR, appendReading, axisId, chooseSeries, dropBefore, mergeReadings, newestTimes, pointRadius,
  readingsSummary, seriesKey, weightedMedian, withBreaks,
} from "../../dashboard/static/dashboard/js/series.js";

const MINUTE_MS = 60 * 1000;
const T0 = Date.parse("2024-06-15T00:00:00Z");

function every10Minutes(count, start = T0) {
  return Array.from({ length: count }, (_, i) => [start + i * 10 * MINUTE_MS, 20 + i]);
}

function breaksOf(data) {
  return data.filter((p) => p.y === null).map((p) => p.x);
}

const TEMP = { device: "1A2B3C", sensor: "1", quantity: "temp", unit: "°C", label: "temp" };
const HUM = { device: "1A2B3C", sensor: "1", quantity: "hum", unit: "%", label: "hum" };

test("it takes the weighted median, or none from too few samples", () => {
  assert.equal(weightedMedian([[10, 1], [20, 1], [1000, 1]]), 20);
  assert.equal(weightedMedian([[10, 5], [1000, 1]]), 10);
  assert.equal(weightedMedian([[10, 1], [20, 1]]), null);
  assert.equal(weightedMedian([[0, 5], [10, 1], [20, 0]]), null);  // no spacing, no weight
});

test("it draws a regular series as one line", () => {
  const drawn = withBreaks({ method: "raw", points: every10Minutes(50) });
  assert.equal(drawn.data.length, 50);
  assert.deepEqual(breaksOf(drawn.data), []);
  assert.equal(drawn.gapMs, GAP_FACTOR * 10 * MINUTE_MS);
});

test("it breaks the line in the middle of an outage", () => {
  const before = every10Minutes(20);
  const resume = before[19][0] + 3 * 24 * 60 * MINUTE_MS;
  const points = before.concat(every10Minutes(20, resume));
  const drawn = withBreaks({ method: "raw", points: points });
  assert.deepEqual(breaksOf(drawn.data), [(before[19][0] + resume) / 2]);
  assert.equal(drawn.data.length, 41);
  assert.deepEqual(drawn.data[20], { x: (before[19][0] + resume) / 2, y: null });
});

test("it keeps the line across two lost messages, not across more than three intervals", () => {
  const points = every10Minutes(20);
  const threeIntervals = points.slice(0, 10).concat(points.slice(12));  // two lost: 30 minutes
  assert.deepEqual(breaksOf(withBreaks({ method: "raw", points: threeIntervals }).data), []);
  const fourIntervals = points.slice(0, 10).concat(points.slice(13));  // three lost: 40 minutes
  assert.equal(breaksOf(withBreaks({ method: "raw", points: fourIntervals }).data).length, 1);
});

test("it leaves a line of too few readings whole", () => {
  const points = [[T0, 1], [T0 + MINUTE_MS, 2], [T0 + 1000 * MINUTE_MS, 3]];
  const drawn = withBreaks({ method: "raw", points: points });
  assert.equal(drawn.gapMs, null);
  assert.deepEqual(breaksOf(drawn.data), []);
});

test("it breaks a downsampled line between buckets only", () => {
  // Three buckets of readings a minute apart, the third after a day of silence;
  // inside a bucket, its first and last points are an hour apart.
  const bucket = (first, count) => ({ count: count, first_time: first, last_time: first + (count - 1) * MINUTE_MS });
  const hour = 60 * MINUTE_MS;
  const buckets = [bucket(T0, 61), bucket(T0 + hour + MINUTE_MS, 61), bucket(T0 + 26 * hour, 61)];
  const points = [];
  buckets.forEach((b) => { points.push([b.first_time, 1], [b.last_time, 2]); });
  const drawn = withBreaks({ method: "m4", buckets: buckets, points: points });
  assert.deepEqual(breaksOf(drawn.data), [(buckets[1].last_time + buckets[2].first_time) / 2]);
  assert.equal(drawn.gapMs, GAP_FACTOR * MINUTE_MS);
});

test("it breaks a live reading off a raw line after a long silence", () => {
  const target = { method: "raw", data: withBreaks({ method: "raw", points: every10Minutes(10) }).data };
  const last = target.data[9].x;
  appendReading(target, last + 10 * MINUTE_MS, 99);
  assert.deepEqual(breaksOf(target.data), []);
  appendReading(target, last + 200 * MINUTE_MS, 100);
  assert.deepEqual(target.data.slice(-2), [{ x: last + 105 * MINUTE_MS, y: null }, { x: last + 200 * MINUTE_MS, y: 100 }]);
});

test("it breaks a live reading off a downsampled line by the interval found at the load", () => {
  const target = { method: "m4", gapMs: 30 * MINUTE_MS, data: [{ x: T0, y: 1 }, { x: T0 + MINUTE_MS, y: 2 }] };
  appendReading(target, T0 + 20 * MINUTE_MS, 3);
  assert.deepEqual(breaksOf(target.data), []);
  appendReading(target, T0 + 60 * MINUTE_MS, 4);
  assert.deepEqual(target.data.slice(-2), [{ x: T0 + 40 * MINUTE_MS, y: null }, { x: T0 + 60 * MINUTE_MS, y: 4 }]);
});

function liveSetup() {
  const dataset = { seriesKey: seriesKey(TEMP), method: "raw", data: [{ x: T0, y: 20 }, { x: T0 + 10 * MINUTE_MS, y: 21 }] };
  const lastTime = { [seriesKey(TEMP)]: T0 + 10 * MINUTE_MS };
  return { dataset, lastTime };
}

function reading(series, minutes, value) {
  return { device: series.device, sensor: series.sensor, quantity: series.quantity,
           time: new Date(T0 + minutes * MINUTE_MS).toISOString(), value: value };
}

test("it merges live readings oldest first, after the newest drawn", () => {
  const { dataset, lastTime } = liveSetup();
  // /api/readings/ answers newest first.
  const results = [reading(TEMP, 30, 23), reading(TEMP, 20, 22), reading(TEMP, 10, 21), reading(TEMP, 5, 0)];
  const added = mergeReadings([dataset], results, lastTime, { follow: true, shownMin: T0, shownMax: T0 });
  assert.equal(added, 2);
  assert.deepEqual(dataset.data.map((p) => p.y), [20, 21, 22, 23]);
  assert.equal(lastTime[seriesKey(TEMP)], T0 + 30 * MINUTE_MS);
});

test("it merges no live reading outside a window that stays put", () => {
  const { dataset, lastTime } = liveSetup();
  const results = [reading(TEMP, 90, 25), reading(TEMP, 20, 22)];
  const added = mergeReadings([dataset], results, lastTime,
                              { follow: false, shownMin: T0, shownMax: T0 + 60 * MINUTE_MS });
  assert.equal(added, 1);
  assert.deepEqual(dataset.data.map((p) => p.y), [20, 21, 22]);
  assert.equal(lastTime[seriesKey(TEMP)], T0 + 20 * MINUTE_MS);
});

test("it merges a live reading outside the window when the window follows", () => {
  const { dataset, lastTime } = liveSetup();
  const added = mergeReadings([dataset], [reading(TEMP, 90, 25)], lastTime,
                              { follow: true, shownMin: T0, shownMax: T0 + 60 * MINUTE_MS });
  assert.equal(added, 1);
  assert.deepEqual(dataset.data.at(-1), { x: T0 + 90 * MINUTE_MS, y: 25 });
});

test("it merges no reading of a series not drawn", () => {
  const { dataset, lastTime } = liveSetup();
  assert.equal(mergeReadings([dataset], [reading(HUM, 20, 55)], lastTime, { follow: true }), 0);
  assert.equal(dataset.data.length, 2);
});

test("it starts live readings after each series' newest point, or the window's start", () => {
  const answers = [{ points: [[T0, 1], [T0 + 5, 2]] }, { points: [] }];
  assert.deepEqual(newestTimes([TEMP, HUM], answers, T0 - 99),
                   { [seriesKey(TEMP)]: T0 + 5, [seriesKey(HUM)]: T0 - 99 });
});

test("it drops points that slid out of the window, and a break left first", () => {
  const dataset = { data: [{ x: 1, y: 1 }, { x: 2, y: null }, { x: 3, y: 3 }, { x: 4, y: null }, { x: 5, y: 5 }] };
  dropBefore(dataset, 2);
  assert.deepEqual(dataset.data, [{ x: 3, y: 3 }, { x: 4, y: null }, { x: 5, y: 5 }]);
});

test("it chooses the series of the ticked devices and quantities, no more than the server draws", () => {
  const other = { device: "BF1327", sensor: "2", quantity: "temp" };
  const keys = [TEMP, HUM, other];
  assert.deepEqual(chooseSeries(keys, ["1A2B3C"], null, 24), [TEMP, HUM]);
  assert.deepEqual(chooseSeries(keys, null, ["temp"], 24), [TEMP, other]);
  assert.deepEqual(chooseSeries(keys, [], ["temp"], 24), []);
  assert.deepEqual(chooseSeries(keys, null, null, 2), [TEMP, HUM]);
});

test("it gives each unit an axis, and tells series apart", () => {
  assert.equal(axisId(TEMP), "y-°C");
  assert.equal(axisId({ quantity: "count", unit: "" }), "y-count");
  assert.notEqual(seriesKey(TEMP), seriesKey(HUM));
});

test("it dots few points, and a reading alone between outages", () => {
  const few = { dataset: { data: [{ x: 1, y: 1 }] }, type: "data", dataIndex: 0 };
  assert.equal(pointRadius(few), 3);
  const data = Array.from({ length: 100 }, (_, i) => ({ x: i, y: i === 50 || i === 52 ? null : i }));
  assert.equal(pointRadius({ dataset: { data }, type: "data", dataIndex: 51 }), 2);
  assert.equal(pointRadius({ dataset: { data }, type: "data", dataIndex: 10 }), 0);
});

test("it sums up what was drawn", () => {
  assert.deepEqual(readingsSummary([{ count: 0, points: [] }]),
                   { text: "No readings in this range. Choose a longer range, or All.", kind: "empty" });
  assert.deepEqual(readingsSummary([{ count: 2, points: [[1, 1], [2, 2]] }, { count: 1, points: [[1, 1]] }]),
                   { text: "3 readings.", kind: "ready" });
  const downsampled = readingsSummary([{ count: 12345, points: new Array(20).fill([1, 1]) }]);
  assert.match(downsampled.text, /^12,345 readings, drawn as 20 points /);
});
