// New readings without a reload: every config.pollMs, /api/readings/ since
// the newest reading drawn. They are drawn only while the chart shows "now".
import { getJSON, newReadingsQuery } from "./api.js";
import { isPreset, liveWindow } from "./ranges.js";
import { dropBefore, mergeReadings, seriesKey } from "./series.js";

// A window that ended less than this ago still takes a reading that came late.
const LATE_GRACE_MS = 60 * 1000;

export function startPolling(page) {
  // page: main.js's view of the chart (its state, chart and actions).
  const config = page.config, state = page.state, chart = page.chart;
  let busy = false;

  async function poll() {
    page.ticked();
    if (busy || document.hidden || !state.series.length || !state.shown) return;
    const follow = page.following();
    // What the x axis shows now (a zoom or pan moves it before its reload).
    const shownMin = chart.scales.x.min, shownMax = chart.scales.x.max;
    // A window that ended in the past gets nothing new: a custom range of past
    // days, or a zoom or pan into the past.
    if (!follow && !(shownMax > Date.now() - LATE_GRACE_MS)) return;
    const generation = state.generation;
    busy = true;
    try {
      const times = state.series.map(function (s) { return state.lastTime[seriesKey(s)]; });
      const query = newReadingsQuery(state.series, Math.min.apply(null, times) + 1, config.pollPageSize);
      const answer = await getJSON(config.urls.readings + "?" + query);
      // The chart changed meanwhile (a zoom, a pan, other choices): its load decides.
      if (generation !== state.generation || follow !== page.following()) return;
      if (answer.next) {
        // Too much arrived at once: load afresh, the same window if it stays put.
        page.load(state.zoomed ? { since: Math.floor(shownMin), until: Math.ceil(shownMax) } : page.rangeWindow());
        return;
      }
      const added = mergeReadings(chart.data.datasets, answer.results, state.lastTime,
                                  { follow: follow, shownMin: shownMin, shownMax: shownMax });
      if (!added) return;
      if (follow) {
        const newest = Math.max.apply(null, Object.values(state.lastTime));
        const fresh = isPreset(config.ranges, state.range) ? page.rangeWindow() : null;
        page.setShown(liveWindow(state.shown, fresh, newest));
        if (fresh) chart.data.datasets.forEach(function (d) { dropBefore(d, fresh.since); });
      }
      page.liveAdded(added);
    } catch (error) {
      // The next poll tries again; a lasting problem shows on the next load.
    } finally {
      busy = false;
    }
  }

  return setInterval(poll, config.pollMs);
}
