// Labels of the time axis. Pure: luxon's DateTime is passed in.

const MINUTE_MS = 60 * 1000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

export function tickLabel(valueMs, spanMs, zone, DateTime) {
  // Seconds when the axis spans minutes; times for a day or a bit more (a
  // following window stretches to the newest reading), with the date at
  // midnight; the date on every tick once the axis spans days; the year once
  // it spans most of one.
  const time = DateTime.fromMillis(valueMs, { zone: zone });
  const midnight = time.hour === 0 && time.minute === 0 && time.second === 0;
  if (spanMs <= 10 * MINUTE_MS) return time.toFormat("HH:mm:ss");
  if (spanMs > 300 * DAY_MS) return time.toFormat(midnight && time.day === 1 ? "MMM yyyy" : "MMM d, yyyy");
  if (midnight) return time.toFormat("MMM d");
  if (spanMs > 26 * HOUR_MS) return time.toFormat("MMM d HH:mm");
  return time.toFormat("HH:mm");
}
