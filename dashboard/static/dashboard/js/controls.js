// The controls: the form (devices, quantities, range, dates) and the zoom and
// pan buttons. The address keeps what is shown, for a reload or a bookmark.
import { chooseSeries } from "./series.js";

function checked(form, name) {
  // The values ticked, or null when the page has no such boxes.
  const boxes = form.querySelectorAll('input[type=checkbox][name="' + name + '"]');
  if (!boxes.length) return null;
  return Array.from(boxes).filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
}

function readForm(form, config) {
  // {series, range, from, to} as the form chooses them.
  const devices = checked(form, "device");
  const quantities = checked(form, "quantity");
  const count = form.querySelector("#device-choices .count");
  if (count && devices) count.textContent = "(" + devices.length + " chosen)";
  const choice = {
    series: chooseSeries(config.keys, devices, quantities, config.maxSeries),
    range: form.elements.range.value,
    from: form.elements.from.value,
    to: form.elements.to.value,
  };
  const query = new URLSearchParams(new FormData(form));
  if (choice.range !== "custom") { query.delete("from"); query.delete("to"); }
  history.replaceState(null, "", location.pathname + "?" + query);
  return choice;
}

export function connectForm(form, config, apply) {
  // apply(choice) draws what the form now chooses.
  form.addEventListener("change", function (event) {
    // The server knows the series of the chosen devices only: ask it again.
    if (event.target.name === "device") { form.submit(); return; }
    if ((event.target.name === "from" || event.target.name === "to") && event.target.value) {
      form.elements.range.value = "custom";
    }
    apply(readForm(form, config));
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    apply(readForm(form, config));
  });
}

// Each button zooms by this factor, or pans by this share of the chart's width.
const ZOOM_FACTOR = 1.5;
const PAN_SHARE = 1 / 3;

export function connectTools(tools, chart, { enabled, reset, moved }) {
  // reset() goes back to the chosen range; moved() after a zoom or pan.
  tools.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-action]");
    if (!button || !enabled()) return;
    const action = button.dataset.action;
    if (action === "reset") { reset(); return; }
    const width = chart.chartArea ? chart.chartArea.right - chart.chartArea.left : 300;
    if (action === "zoom-in") chart.zoom(ZOOM_FACTOR, "none");
    if (action === "zoom-out") chart.zoom(1 / ZOOM_FACTOR, "none");
    if (action === "earlier") chart.pan({ x: width * PAN_SHARE }, undefined, "none");
    if (action === "later") chart.pan({ x: -width * PAN_SHARE }, undefined, "none");
    moved();
  });
}
