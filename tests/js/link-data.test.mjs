// node --test: link quality as drawn (dashboard/static/dashboard/js/link-data.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { linkSeries, linkSummary } from "../../dashboard/static/dashboard/js/link-data.js";

function bucket(start, fields) {
  return Object.assign({ start: start, end: start + 100, messages: 0, lost: 0, resets: 0,
                         rssi_min: null, rssi_max: null, rssi_avg: null, snr_avg: null }, fields);
}

const BUCKETS = [
  bucket(0, { messages: 3, rssi_min: -120, rssi_max: -110, rssi_avg: -115, snr_avg: 8 }),
  bucket(100, {}),
  bucket(200, { messages: 2, lost: 2, resets: 1, rssi_min: -125, rssi_max: -118, rssi_avg: -121, snr_avg: 5 }),
];

test("it draws the band and means at the middle of the buckets that have them", () => {
  const link = linkSeries(BUCKETS);
  assert.deepEqual(link.rssiMin, [{ x: 50, y: -120 }, { x: 250, y: -125 }]);
  assert.deepEqual(link.snrAvg, [{ x: 50, y: 8 }, { x: 250, y: 5 }]);
});

test("it draws bars only where messages were lost or the counter reset", () => {
  const link = linkSeries(BUCKETS);
  assert.deepEqual(link.lost, [{ x: 250, y: 2 }]);
  assert.deepEqual(link.resets, [{ x: 250, y: 1 }]);
  assert.deepEqual(link.totals, { messages: 5, lost: 2, resets: 1 });
});

test("it draws no resets for answers that do not count them", () => {
  const old = BUCKETS.map((b) => { const copy = Object.assign({}, b); delete copy.resets; return copy; });
  const link = linkSeries(old);
  assert.equal(link.resets, null);
  assert.equal(link.totals.resets, 0);
});

test("it sums up the messages, losses and resets", () => {
  assert.deepEqual(linkSummary({ messages: 144, lost: 2, resets: 0 }), { text: "144 messages, 2 lost.", kind: "ready" });
  assert.equal(linkSummary({ messages: 1440, lost: 0, resets: 1 }).text, "1,440 messages, 0 lost, 1 counter reset.");
  assert.equal(linkSummary({ messages: 9, lost: 0, resets: 2 }).text, "9 messages, 0 lost, 2 counter resets.");
  assert.deepEqual(linkSummary({ messages: 0, lost: 0, resets: 0 }), { text: "No messages in this range.", kind: "empty" });
});
