// The readings as Chart.js draws them: which series are chosen, where a line
// breaks, how live readings join the loaded ones, what the status line says.
// Pure: no DOM, no Chart.js; datasets are plain objects {data: [{x, y}], ...}.

export function seriesKey(series) {
  return series.device + "\u0000" + series.sensor + "\u0000" + series.quantity;
}

export function axisId(series) {
  return "y-" + (series.unit || series.quantity);
}

export function chooseSeries(keys, devices, quantities, maxSeries) {
  // The series of the ticked devices and quantities (null: that picker is
  // not on the page, so every one), no more than the server draws.
  return keys.filter(function (k) {
    return (devices === null || devices.indexOf(k.device) !== -1) &&
           (quantities === null || quantities.indexOf(k.quantity) !== -1);
  }).slice(0, maxSeries);
}

// -- outages ------------------------------------------------------------------------
// A line between two readings claims values for the time between them. Where a
// series went silent for much longer than it usually does (the device out of
// range or out of battery, the server down), the line breaks instead: a point
// without a value (y null) between the two readings, which Chart.js leaves out
// of the line (spanGaps is off).
//
// A series' usual interval is the median spacing of its consecutive readings:
// unlike the mean, the median does not grow with the outages it is to find. A
// spacing of more than GAP_FACTOR times it is an outage. Sigfox loses a message
// now and then (no base station heard it), and one or two lost in a row leave a
// spacing of two or three intervals: a line across them still tells the trend,
// and clock jitter is far smaller. A longer silence is no longer "a message
// lost" but a time nothing is known about.
export const GAP_FACTOR = 3;
// Fewer spacings than this tell no usual interval: the line is left whole.
const MIN_SPACINGS = 3;

export function weightedMedian(samples) {
  // samples: [value, weight]; the value at half the total weight, or null.
  const usable = samples.filter(function (s) { return s[0] > 0 && s[1] > 0; })
    .sort(function (a, b) { return a[0] - b[0]; });
  const total = usable.reduce(function (sum, s) { return sum + s[1]; }, 0);
  if (total < MIN_SPACINGS) return null;
  let seen = 0;
  for (let i = 0; i < usable.length; i++) {
    seen += usable[i][1];
    if (seen >= total / 2) return usable[i][0];
  }
  return null;
}

function spacings(answer) {
  // {pairs, samples}: pairs [a, b] are the times of consecutive readings with
  // none between them, where the line may break; samples [spacing, weight] tell
  // the usual interval.
  const points = answer.points || [];
  const buckets = answer.method === "m4" && answer.buckets;
  if (buckets && buckets.length && buckets.every(function (b) {
    return b.count > 0 && b.first_time != null && b.last_time != null;
  })) {
    // Downsampled (M4): a bucket's first, lowest, highest and last readings
    // stand for all of its readings, so two of its points may be far apart
    // with readings between them; the line never breaks inside a bucket. Its
    // readings count as evenly spread over its first to last reading. Between
    // one bucket's last reading and the next non-empty bucket's first there is
    // none (empty buckets send no points): that is where an outage shows.
    const pairs = [], samples = [];
    buckets.forEach(function (b, i) {
      if (b.count > 1) samples.push([(b.last_time - b.first_time) / (b.count - 1), b.count - 1]);
      if (i > 0) {
        const pair = [buckets[i - 1].last_time, b.first_time];
        pairs.push(pair);
        samples.push([pair[1] - pair[0], 1]);
      }
    });
    return { pairs: pairs, samples: samples };
  }
  const pairs = [];
  for (let i = 1; i < points.length; i++) pairs.push([points[i - 1][0], points[i][0]]);
  return { pairs: pairs, samples: pairs.map(function (p) { return [p[1] - p[0], 1]; }) };
}

export function withBreaks(answer) {
  // {data, gapMs}: the points for Chart.js, with a null point in each outage,
  // and the spacing beyond which a reading starts a new line (null: unknown).
  const found = spacings(answer);
  const usual = weightedMedian(found.samples);
  const gapMs = usual == null ? null : GAP_FACTOR * usual;
  const breaks = gapMs == null ? [] : found.pairs
    .filter(function (p) { return p[1] - p[0] > gapMs; })
    .map(function (p) { return (p[0] + p[1]) / 2; });
  const data = [];
  let next = 0;
  (answer.points || []).forEach(function (p) {
    while (next < breaks.length && breaks[next] < p[0]) data.push({ x: breaks[next++], y: null });
    data.push({ x: p[0], y: p[1] });
  });
  return { data: data, gapMs: gapMs };
}

export function appendReading(target, time, value) {
  // A new reading after the dataset's newest, breaking the line by the same
  // rule as the loaded points.
  if (target.method !== "m4") {
    // Every reading is drawn: the rule is worked out again over all of them.
    const points = target.data.filter(function (p) { return p.y !== null; })
      .map(function (p) { return [p.x, p.y]; });
    points.push([time, value]);
    const drawn = withBreaks({ method: "raw", points: points });
    target.data = drawn.data;
    target.gapMs = drawn.gapMs;
    return;
  }
  // Downsampled: the usual interval is the one found at the load.
  let last = null;
  for (let i = target.data.length - 1; i >= 0 && last === null; i--) {
    if (target.data[i].y !== null) last = target.data[i].x;
  }
  if (last !== null && target.gapMs != null && time - last > target.gapMs) {
    target.data.push({ x: (last + time) / 2, y: null });
  }
  target.data.push({ x: time, y: value });
}

export function newestTimes(seriesList, answers, fallbackMs) {
  // Series key -> time of its newest point (ms): live readings start after
  // it. A series without points starts at the window's start.
  const times = {};
  answers.forEach(function (answer, index) {
    const points = answer.points;
    times[seriesKey(seriesList[index])] = points.length ? points[points.length - 1][0] : fallbackMs;
  });
  return times;
}

export function mergeReadings(datasets, results, lastTime, { follow, shownMin, shownMax }) {
  // Adds readings of /api/readings/ (newest first) to the datasets of their
  // series; returns how many. lastTime (series key -> newest time drawn, ms)
  // moves with them. Only readings newer than a series' newest count; a
  // window that stays put (!follow) takes only those that fall inside it.
  const byKey = {};
  datasets.forEach(function (d) { byKey[d.seriesKey] = d; });
  let added = 0;
  results.slice().reverse().forEach(function (reading) {
    const key = seriesKey(reading);
    const target = byKey[key];
    const time = Date.parse(reading.time);
    if (!target || !(time > lastTime[key])) return;
    if (!follow && (time < shownMin || time > shownMax)) return;
    appendReading(target, time, reading.value);
    lastTime[key] = time;
    added += 1;
  });
  return added;
}

export function dropBefore(dataset, sinceMs) {
  // Points that slid out of a following window, and a break left leading.
  while (dataset.data.length && (dataset.data[0].x < sinceMs || dataset.data[0].y === null)) {
    dataset.data.shift();
  }
}

export function pointRadius(context) {
  // Few points are drawn as dots. Many are drawn as a line only, but for a
  // reading alone between two outages: without a dot it would not show at all.
  const data = context.dataset.data;
  if (data.length <= 60) return 3;
  if (context.type !== "data") return 0;
  const before = data[context.dataIndex - 1], after = data[context.dataIndex + 1];
  const alone = (!before || before.y === null) && (!after || after.y === null);
  return alone ? 2 : 0;
}

export function readingsSummary(answers) {
  // {text, kind} of the status line once answers of /api/series/ are drawn.
  const total = answers.reduce(function (sum, a) { return sum + a.count; }, 0);
  const drawn = answers.reduce(function (sum, a) { return sum + a.points.length; }, 0);
  if (total === 0) {
    return { text: "No readings in this range. Choose a longer range, or All.", kind: "empty" };
  }
  if (drawn < total) {
    return { text: total.toLocaleString("en") + " readings, drawn as " + drawn.toLocaleString("en") +
             " points that keep each period's first, lowest, highest and last value. Zoom in for detail.",
             kind: "ready" };
  }
  return { text: total.toLocaleString("en") + " readings.", kind: "ready" };
}

export function newReadingsText(added) {
  return added + (added === 1 ? " new reading." : " new readings.");
}
