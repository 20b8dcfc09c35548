// What time the chart shows: the window of a range, the point count asked
// for, and how the window moves with new readings. Pure: no DOM, no Chart.js;
// luxon's DateTime is passed in where days of the site's zone are reckoned.

// A chart this many pixels wide or less (or not laid out yet) still asks for
// enough points to draw a readable line.
const MIN_AUTO_POINTS = 100;
// The window shown when neither the range nor the answers bound it.
const FALLBACK_SPAN_MS = 24 * 3600 * 1000;

// `ranges` is the page config's {name: length in ms}: null for "all" and
// "custom", which have no length.
export function isPreset(ranges, name) {
  return typeof ranges[name] === "number";
}

export function follows(ranges, name) {
  // Whether the window moves with the newest readings: "the last day" does,
  // and so does "all"; dates picked by hand do not.
  return isPreset(ranges, name) || name === "all";
}

export function rangeWindow(choice, { ranges, zone, nowMs, DateTime }) {
  // {since, until} in epoch ms of {range, from, to}; null means "from the
  // first" or "up to now". Custom dates are whole days of the site's zone,
  // `to` included.
  if (isPreset(ranges, choice.range)) {
    return { since: nowMs - ranges[choice.range], until: nowMs };
  }
  if (choice.range === "custom") {
    const day = function (text, after) {
      if (!text) return null;
      const start = DateTime.fromISO(text, { zone: zone }).plus({ days: after ? 1 : 0 }).startOf("day");
      return start.isValid ? start.toMillis() : null;
    };
    return { since: day(choice.from, false), until: day(choice.to, true) };
  }
  return { since: null, until: null };
}

export function drawnWindow(asked, answers, nowMs) {
  // {min, max} of the x axis once answers to `asked` came: an open end of
  // the range is where the readings answered start or end.
  let min = asked.since, max = asked.until;
  answers.forEach(function (answer) {
    const since = answer.since && Date.parse(answer.since);
    const until = answer.until && Date.parse(answer.until);
    if (asked.since == null && since) min = min == null ? since : Math.min(min, since);
    if (asked.until == null && until) max = max == null ? until : Math.max(max, until);
  });
  if (max == null) max = nowMs;
  if (min == null) min = max - FALLBACK_SPAN_MS;
  return { min: min, max: max };
}

export function liveWindow(shown, fresh, newestMs) {
  // {min, max} after new readings came while the window follows them: a
  // preset's fresh window (null for "all", which keeps its start), stretched
  // to the newest reading, whose clock may run ahead of ours.
  if (fresh) return { min: fresh.since, max: Math.max(fresh.until, newestMs) };
  return { min: shown.min, max: Math.max(shown.max, newestMs) };
}

function clamp(value, low, high) {
  return Math.min(high, Math.max(low, value));
}

export function pointCount(points, widthPx) {
  // How many points to ask /api/series/ for, within the server's bounds
  // (config `points`): the number the address asked for, else about one
  // per pixel of the chart's width.
  if (points.fixed) return clamp(points.fixed, points.min, points.max);
  return clamp(Math.round(widthPx || points.default), Math.max(points.min, MIN_AUTO_POINTS), points.max);
}

export function linkPointCount(points, widthPx) {
  // Wider buckets than the readings': a few pixels each keeps the band readable.
  return clamp(Math.round(pointCount(points, widthPx) / 8), points.min, points.max);
}
