// Draws the series that the page embeds as JSON (id "chart-data") with Chart.js.
(function () {
  "use strict";
  const source = document.getElementById("chart-data");
  if (!source) return;
  const chart = JSON.parse(source.textContent);
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

  const datasets = chart.series.map(function (series, index) {
    const colour = palette[index % palette.length];
    return {
      label: series.label,
      data: series.points.map(function (point) { return { x: point[0], y: point[1] }; }),
      borderColor: colour,
      backgroundColor: colour,
      borderWidth: 2,
      pointRadius: series.points.length > 60 ? 0 : 3,
      tension: 0,
    };
  });

  const canvas = document.getElementById("chart");
  window.sigfoxChart = new Chart(canvas, {
    type: "line",
    data: { datasets: datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      interaction: { mode: "nearest", intersect: false },
      scales: {
        x: {
          type: "time",
          // The luxon adapter shows every time in the site's zone.
          adapters: { date: { zone: chart.timeZone } },
          time: { tooltipFormat: "yyyy-MM-dd HH:mm:ss" },
          title: { display: true, text: "Time (" + chart.timeZone + ")" },
        },
        y: { title: { display: true, text: "Value" } },
      },
    },
  });
  canvas.dataset.ready = "true";
})();
