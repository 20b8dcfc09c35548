// Link quality (device page) as Chart.js draws it, from the buckets of
// /api/devices/<id>/link/. Pure: no DOM, no Chart.js.

export function linkSeries(buckets) {
  // Points {x, y} at the middle of each bucket: the RSSI band and means where
  // a bucket has them, bars where it lost messages or saw the sequence counter
  // reset. `resets` is null for answers from before the server counted them.
  const mid = function (b) { return (b.start + b.end) / 2; };
  const pick = function (name) {
    return buckets.filter(function (b) { return b[name] !== null; })
      .map(function (b) { return { x: mid(b), y: b[name] }; });
  };
  // A count the answer lacks is 0.
  const count = function (b, name) { return b[name] || 0; };
  const bars = function (name) {
    return buckets.filter(function (b) { return count(b, name) > 0; })
      .map(function (b) { return { x: mid(b), y: count(b, name) }; });
  };
  const total = function (name) {
    return buckets.reduce(function (sum, b) { return sum + count(b, name); }, 0);
  };
  const countsResets = buckets.some(function (b) { return b.resets !== undefined; });
  return {
    rssiMin: pick("rssi_min"),
    rssiMax: pick("rssi_max"),
    rssiAvg: pick("rssi_avg"),
    snrAvg: pick("snr_avg"),
    lost: bars("lost"),
    resets: countsResets ? bars("resets") : null,
    totals: { messages: total("messages"), lost: total("lost"), resets: total("resets") },
  };
}

export function linkSummary(totals) {
  // {text, kind} of the link quality's status line.
  if (!totals.messages) return { text: "No messages in this range.", kind: "empty" };
  let text = totals.messages.toLocaleString("en") + " messages, " + totals.lost.toLocaleString("en") + " lost";
  if (totals.resets) {
    text += ", " + totals.resets.toLocaleString("en") + (totals.resets === 1 ? " counter reset" : " counter resets");
  }
  return { text: text + ".", kind: "ready" };
}
