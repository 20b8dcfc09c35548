// The link quality chart of the device page: RSSI and SNR per period, lost
// messages and counter resets as bars. Chart.js is the page's global.
import { linkSeries, linkSummary } from "./link-data.js";
import { setXWindow } from "./readings-chart.js";

export function createLinkChart(canvas, xScale) {
  return new Chart(canvas, {
    type: "line",
    data: { datasets: [] },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      plugins: { legend: { labels: { boxWidth: 14 } } },
      scales: {
        x: xScale,
        rssi: { type: "linear", position: "left", title: { display: true, text: "RSSI (dBm)" } },
        snr: { type: "linear", position: "right", title: { display: true, text: "SNR (dB)" },
               grid: { drawOnChartArea: false } },
        lost: { type: "linear", position: "right", beginAtZero: true, ticks: { precision: 0 },
                title: { display: true, text: "Messages" }, grid: { drawOnChartArea: false } },
      },
    },
  });
}

export function drawLinkQuality(chart, answer, shown) {
  // Draws an answer of /api/devices/<id>/link/ over the window `shown`;
  // returns the status line's {text, kind}.
  const link = linkSeries(answer.buckets);
  const band = { yAxisID: "rssi", borderColor: "rgba(31,119,180,0.25)", backgroundColor: "rgba(31,119,180,0.12)",
                 borderWidth: 1, pointRadius: 0 };
  chart.data.datasets = [
    Object.assign({ label: "RSSI lowest", data: link.rssiMin, fill: false }, band),
    Object.assign({ label: "RSSI highest", data: link.rssiMax, fill: "-1" }, band),
    { label: "RSSI mean (dBm)", data: link.rssiAvg, yAxisID: "rssi", borderColor: "#1f77b4",
      backgroundColor: "#1f77b4", borderWidth: 1.5, pointRadius: 0 },
    { label: "SNR mean (dB)", data: link.snrAvg, yAxisID: "snr", borderColor: "#2ca02c",
      backgroundColor: "#2ca02c", borderWidth: 1.5, pointRadius: 0 },
    { type: "bar", label: "Lost messages", yAxisID: "lost", backgroundColor: "#d62728", data: link.lost },
  ];
  // Resets of the sequence counter (a jump too large for the time between, as
  // after a reboot) lose nothing: drawn apart from the losses.
  if (link.resets) {
    chart.data.datasets.push({ type: "bar", label: "Counter resets", yAxisID: "lost",
                               backgroundColor: "#9467bd", data: link.resets });
  }
  setXWindow(chart, shown);
  chart.update("none");
  return linkSummary(link.totals);
}
