// The chart pages (/graph and a device's page). The page embeds its config as
// JSON (json_script "chart-data", built by dashboard/views.py _chart_context):
// the series, the range, the API's addresses, and the server's bounds (range
// lengths, point counts, poll interval and page size), never copied here. The
// readings come from the read API: /api/series/ downsampled to about one point
// per pixel for the window shown (again after every zoom or pan), and
// /api/readings/ every few seconds for new ones (polling.js). Times are shown
// in the site's zone through the luxon adapter.
//
// Readiness contract, for tests and benchmarks; the page itself never reads it.
// On canvas#chart:
//   data-state    "loading" while /api/series/ is asked; then "ready" (readings
//                 drawn), "empty" (no series chosen, or no readings in the
//                 window) or "error" (a request failed; the status line says).
//   data-loads    how many answers of /api/series/ were drawn; new readings
//                 added by polling are not loads.
//   data-since, data-until, data-points
//                 the window (epoch ms; absent for an open end) and the point
//                 count of the latest /api/series/ request.
//   data-zoomed   "true" once the user zoomed or panned away from the range.
//   data-ticks    how many times the poll timer ran, whether it asked or not.
// On canvas#link-chart (device page): data-state as above, for the link API.
// The Chart.js charts: Chart.getChart(canvas), Chart.js's own lookup. Each
// readings dataset has `seriesKey` and `method` ("raw" or "m4", of the answer).
// The performance mark "sigfox-chart-ready" is set when the first load is drawn.
import { csvQuery, getJSON, linkQuery, seriesQuery } from "./api.js";
import { connectForm, connectTools } from "./controls.js";
import { createLinkChart, drawLinkQuality } from "./link-chart.js";
import { startPolling } from "./polling.js";
import { drawnWindow, follows, linkPointCount, pointCount, rangeWindow } from "./ranges.js";
import { createReadingsChart, drawReadings, setXWindow, timeScale } from "./readings-chart.js";
import { newReadingsText, newestTimes, readingsSummary } from "./series.js";

// A zoom or pan reloads once the moves stop for this long.
const RELOAD_DELAY_MS = 150;

function setStatus(element, text, kind) {
  if (!element) return;
  element.textContent = text;
  element.dataset.kind = kind;
}

function start(config) {
  const zone = config.timeZone;
  const canvas = document.getElementById("chart");
  const box = document.getElementById("chart-box");
  const statusLine = document.getElementById("chart-status");
  const csvLink = document.getElementById("csv-link");
  const linkCanvas = document.getElementById("link-chart");
  const linkStatus = document.getElementById("link-status");

  const state = {
    series: config.series,   // what is drawn: [{device, sensor, quantity, unit, label}]
    range: config.range,     // a name of config.ranges
    from: config.from,       // YYYY-MM-DD in the site's zone, for custom
    to: config.to,
    shown: null,             // {min, max} epoch ms of the x axis
    zoomed: false,           // the user zoomed or panned away from the range
    generation: 0,           // answers to superseded requests are dropped
    lastTime: {},            // series key -> time of its newest point (ms)
    loads: 0,
    ticks: 0,
  };

  function setZoomed(zoomed) {
    state.zoomed = zoomed;
    canvas.dataset.zoomed = String(zoomed);
  }

  function settle(text, kind) {
    // The end of a load: "ready", "empty" or "error".
    setStatus(statusLine, text, kind);
    box.setAttribute("aria-busy", "false");
    canvas.dataset.state = kind;
  }

  function currentWindow() {
    return rangeWindow(state, { ranges: config.ranges, zone: zone, nowMs: Date.now(), DateTime: luxon.DateTime });
  }

  function following() {
    // The window moves with the newest readings unless the user moved it.
    return !state.zoomed && follows(config.ranges, state.range);
  }

  function setShown(shown) {
    state.shown = shown;
    setXWindow(chart, shown);
  }

  function updateCsvLink() {
    if (!csvLink || !state.shown) return;
    csvLink.href = config.urls.csv + "?" + csvQuery(state.series, state.shown);
  }

  let reloadTimer = null;
  function scheduleReload() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(function () {
      const scale = chart.scales.x;
      load({ since: Math.floor(scale.min), until: Math.ceil(scale.max) });
    }, RELOAD_DELAY_MS);
  }

  const chart = createReadingsChart(canvas, {
    zone: zone,
    // A poll meanwhile must neither slide the window back nor add to it.
    onMoving: function () { setZoomed(true); },
    onMoved: function () { setZoomed(true); scheduleReload(); },
  });
  const linkChart = linkCanvas ? createLinkChart(linkCanvas, timeScale(zone)) : null;

  async function load(window_) {
    const generation = ++state.generation;
    canvas.dataset.state = "loading";
    box.setAttribute("aria-busy", "true");
    if (!state.series.length) {
      chart.data.datasets = [];
      chart.update("none");
      settle("Choose at least one device and one quantity.", "empty");
      return;
    }
    setStatus(statusLine, "Loading…", "loading");
    const points = pointCount(config.points, canvas.clientWidth);
    ["since", "until"].forEach(function (end) {
      if (window_[end] == null) delete canvas.dataset[end];
      else canvas.dataset[end] = String(window_[end]);
    });
    canvas.dataset.points = String(points);
    let answers;
    try {
      answers = await Promise.all(state.series.map(function (series) {
        return getJSON(config.urls.series + "?" + seriesQuery(series, window_, points));
      }));
    } catch (error) {
      if (generation === state.generation) settle("Could not load the readings: " + error.message, "error");
      return;
    }
    if (generation !== state.generation) return;
    draw(answers, window_);
    loadLinkQuality(generation);
  }

  function draw(answers, window_) {
    drawReadings(chart, state.series, answers);
    setShown(drawnWindow(window_, answers, Date.now()));
    state.lastTime = newestTimes(state.series, answers, state.shown.min);
    chart.update("none");
    updateCsvLink();
    state.loads += 1;
    canvas.dataset.loads = String(state.loads);
    const summary = readingsSummary(answers);
    settle(summary.text, summary.kind);
    if (state.loads === 1 && window.performance && performance.mark) {
      performance.mark("sigfox-chart-ready");
    }
  }

  async function loadLinkQuality(generation) {
    if (!linkChart || !state.shown) return;
    linkCanvas.dataset.state = "loading";
    const query = linkQuery(state.shown, linkPointCount(config.points, canvas.clientWidth));
    let answer;
    try {
      answer = await getJSON(config.urls.link + "?" + query);
    } catch (error) {
      if (generation !== state.generation) return;
      setStatus(linkStatus, "Could not load the link quality: " + error.message, "error");
      linkCanvas.dataset.state = "error";
      return;
    }
    if (generation !== state.generation) return;
    const summary = drawLinkQuality(linkChart, answer, state.shown);
    setStatus(linkStatus, summary.text, summary.kind);
    linkCanvas.dataset.state = summary.kind;
  }

  function reset() {
    setZoomed(false);
    load(currentWindow());
  }

  const form = document.getElementById("chart-controls");
  if (form) {
    connectForm(form, config, function (choice) {
      Object.assign(state, choice);
      reset();
    });
  }
  const tools = document.querySelector(".chart-tools");
  if (tools) {
    connectTools(tools, chart, {
      enabled: function () { return state.shown !== null; },
      reset: reset,
      moved: function () { setZoomed(true); scheduleReload(); },
    });
  }

  startPolling({
    config: config,
    state: state,
    chart: chart,
    following: following,
    rangeWindow: currentWindow,
    load: load,
    setShown: setShown,
    ticked: function () {
      state.ticks += 1;
      canvas.dataset.ticks = String(state.ticks);
    },
    liveAdded: function (added) {
      chart.update("none");
      updateCsvLink();
      settle(newReadingsText(added), "ready");
    },
  });

  canvas.dataset.loads = "0";
  canvas.dataset.ticks = "0";
  setZoomed(false);
  load(currentWindow());
}

const source = document.getElementById("chart-data");
if (source) start(JSON.parse(source.textContent));
