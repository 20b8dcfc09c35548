// The readings chart: a line per series over a time axis in the site's zone,
// zoomed and panned by wheel, pinch and drag. Chart.js, luxon, the luxon
// adapter and the zoom plugin are the page's classic scripts before this one
// (globals Chart and luxon).
import { axisId, pointRadius, seriesKey, withBreaks } from "./series.js";
import { tickLabel } from "./ticks.js";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
// A zoom closer than this shows no more: readings are seconds apart at best.
const MIN_ZOOM_RANGE_MS = 60 * 1000;

export function timeScale(zone) {
  // The x axis of both charts, in the site's zone.
  const DateTime = luxon.DateTime;
  return {
    type: "time",
    // The luxon adapter shows every time in the site's zone.
    adapters: { date: { zone: zone } },
    time: { tooltipFormat: "yyyy-MM-dd HH:mm:ss" },
    // Major ticks (midnights, for hourly ticks) survive the skipping of crowded
    // labels, so a range of days is labelled by its days.
    ticks: {
      maxRotation: 0,
      autoSkipPadding: 12,
      major: { enabled: true },
      callback: function (value) { return tickLabel(value, this.max - this.min, zone, DateTime); },
    },
    title: { display: true, text: "Time (" + zone + ")" },
  };
}

export function createReadingsChart(canvas, { zone, onMoving, onMoved }) {
  // onMoving: at once when the user zooms or pans (a wheel's completion waits
  // 250 ms); onMoved: when the move completes.
  return new Chart(canvas, {
    type: "line",
    data: { datasets: [] },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      // Outages break the line through null points (series.js, withBreaks).
      spanGaps: false,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      plugins: {
        legend: { labels: { boxWidth: 14 } },
        zoom: {
          limits: { x: { minRange: MIN_ZOOM_RANGE_MS } },
          zoom: {
            wheel: { enabled: true },
            pinch: { enabled: true },
            mode: "x",
            onZoom: onMoving,
            onZoomComplete: onMoved,
          },
          pan: { enabled: true, mode: "x", onPan: onMoving, onPanComplete: onMoved },
        },
      },
      scales: { x: timeScale(zone) },
    },
  });
}

function yScales(seriesList) {
  // One axis per unit: the first on the left with the grid, the others right.
  const scales = {};
  seriesList.forEach(function (series) {
    const id = axisId(series);
    if (scales[id]) return;
    const first = Object.keys(scales).length === 0;
    scales[id] = {
      type: "linear",
      position: first ? "left" : "right",
      title: { display: true, text: series.unit || series.quantity },
      grid: { drawOnChartArea: first },
    };
  });
  return scales;
}

function dataset(series, index, answer) {
  // `method` and `gapMs` tell how a live reading joins the line (appendReading).
  const colour = PALETTE[index % PALETTE.length];
  const drawn = withBreaks(answer);
  return {
    label: series.label,
    seriesKey: seriesKey(series),
    method: answer.method,
    gapMs: drawn.gapMs,
    yAxisID: axisId(series),
    data: drawn.data,
    borderColor: colour,
    backgroundColor: colour,
    borderWidth: 1.5,
    pointRadius: pointRadius,
    pointHitRadius: 6,
    tension: 0,
  };
}

export function drawReadings(chart, seriesList, answers) {
  // The answers of /api/series/, one per series; the caller updates the chart.
  chart.data.datasets = answers.map(function (answer, index) {
    return dataset(seriesList[index], index, answer);
  });
  Object.keys(chart.options.scales).forEach(function (id) {
    if (id !== "x") delete chart.options.scales[id];
  });
  Object.assign(chart.options.scales, yScales(seriesList));
}

export function setXWindow(chart, shown) {
  chart.options.scales.x.min = shown.min;
  chart.options.scales.x.max = shown.max;
}
