// The chart pages. The page embeds what to draw as JSON (id "chart-data");
// the readings come from the read API: /api/series/ downsampled to about one
// point per pixel for the range shown (again after every zoom or pan), and
// /api/readings/ every few seconds for new readings. Times are shown in the
// site's time zone through the luxon adapter. The line breaks where a series
// went silent, and new readings are drawn only while the chart shows "now".
(function () {
  "use strict";
  const source = document.getElementById("chart-data");
  if (!source) return;
  const config = JSON.parse(source.textContent);
  const DateTime = luxon.DateTime;
  const zone = config.timeZone;

  const canvas = document.getElementById("chart");
  const box = document.getElementById("chart-box");
  const statusLine = document.getElementById("chart-status");
  const form = document.getElementById("chart-controls");
  const csvLink = document.getElementById("csv-link");
  const linkCanvas = document.getElementById("link-chart");
  const linkStatus = document.getElementById("link-status");

  const pollMs = Math.max(200, parseInt(box.dataset.pollMs, 10) || 5000);
  const fixedPoints = parseInt(box.dataset.points, 10) || 0;
  const PRESETS = {
    hour: { hours: 1 }, day: { days: 1 }, week: { weeks: 1 }, month: { months: 1 }, year: { years: 1 },
  };
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

  const state = {
    series: config.series,   // what is drawn: [{device, sensor, quantity, unit, label}]
    range: config.range,     // hour, day, week, month, year, all or custom
    from: config.from,       // YYYY-MM-DD in the site's zone, for custom
    to: config.to,
    shown: null,             // {min, max} epoch ms of the x axis
    zoomed: false,           // the user zoomed or panned away from the range
    generation: 0,           // answers to superseded requests are dropped
    lastTime: {},            // series key -> time of its newest point (ms)
    loads: 0,                // how many times data was loaded, for tests
    polls: 0,                // answers of /api/readings/ to a poll
    ticks: 0,                // runs of the poll timer, polling or not
    lastRequest: null,       // {since, until, points} of the latest series request
  };
  window.sigfoxState = state;

  function key(series) {
    return series.device + "\u0000" + series.sensor + "\u0000" + series.quantity;
  }

  function axisId(series) {
    return "y-" + (series.unit || series.quantity);
  }

  function setStatus(element, text, kind) {
    if (!element) return;
    element.textContent = text;
    element.dataset.kind = kind;
  }

  // -- ranges -------------------------------------------------------------------

  function rangeWindow() {
    // {since, until} in epoch ms; null means "from the first" / "up to now".
    const now = DateTime.now().setZone(zone);
    if (PRESETS[state.range]) {
      return { since: now.minus(PRESETS[state.range]).toMillis(), until: now.toMillis() };
    }
    if (state.range === "custom") {
      const since = state.from ? DateTime.fromISO(state.from, { zone: zone }).startOf("day") : null;
      const until = state.to ? DateTime.fromISO(state.to, { zone: zone }).plus({ days: 1 }).startOf("day") : null;
      return { since: since && since.isValid ? since.toMillis() : null,
               until: until && until.isValid ? until.toMillis() : null };
    }
    return { since: null, until: null };
  }

  function pointCount() {
    if (fixedPoints) return Math.min(2000, Math.max(10, fixedPoints));
    // About one point per pixel of the chart's width.
    return Math.min(2000, Math.max(100, Math.round(canvas.clientWidth || 1000)));
  }

  function iso(ms) {
    return new Date(ms).toISOString();
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = JSON.stringify(await response.json()); } catch (error) { /* not JSON */ }
      throw new Error(response.status + " " + detail);
    }
    return response.json();
  }

  // -- outages -----------------------------------------------------------------------
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
  const GAP_FACTOR = 3;
  // Fewer spacings than this tell no usual interval: the line is left whole.
  const MIN_SPACINGS = 3;

  function weightedMedian(samples) {
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

  function withBreaks(answer) {
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

  function realPoints(dataset_) {
    return dataset_.data.filter(function (p) { return p.y !== null; })
      .map(function (p) { return [p.x, p.y]; });
  }

  function pointRadius(context) {
    // Few points are drawn as dots. Many are drawn as a line only, but for a
    // reading alone between two outages: without a dot it would not show at all.
    const data = context.dataset.data;
    if (data.length <= 60) return 3;
    if (context.type !== "data") return 0;
    const before = data[context.dataIndex - 1], after = data[context.dataIndex + 1];
    const alone = (!before || before.y === null) && (!after || after.y === null);
    return alone ? 2 : 0;
  }

  // -- tick labels ----------------------------------------------------------------------

  const HOUR_MS = 3600 * 1000;
  const DAY_MS = 24 * HOUR_MS;

  function tickLabel(value) {
    // `this` is the scale. Times for a day or less (the day preset is 23 to 25
    // hours), with the date at midnight; the date on every tick once the axis
    // spans days; the year once it spans most of one.
    const span = this.max - this.min;
    const time = DateTime.fromMillis(value, { zone: zone });
    const midnight = time.hour === 0 && time.minute === 0 && time.second === 0;
    if (span <= 10 * 60 * 1000) return time.toFormat("HH:mm:ss");
    if (span > 300 * DAY_MS) return time.toFormat(midnight && time.day === 1 ? "MMM yyyy" : "MMM d, yyyy");
    if (midnight) return time.toFormat("MMM d");
    if (span > 26 * HOUR_MS) return time.toFormat("MMM d HH:mm");
    return time.toFormat("HH:mm");
  }

  // -- the readings chart ----------------------------------------------------------

  const xScale = {
    type: "time",
    // The luxon adapter shows every time in the site's zone.
    adapters: { date: { zone: zone } },
    time: {
      tooltipFormat: "yyyy-MM-dd HH:mm:ss",
      displayFormats: { minute: "HH:mm", hour: "HH:mm", day: "MMM d", week: "MMM d", month: "MMM yyyy" },
    },
    // Major ticks (midnights, for hourly ticks) survive the skipping of crowded
    // labels, so a range of days is labelled by its days.
    ticks: { maxRotation: 0, autoSkipPadding: 12, callback: tickLabel, major: { enabled: true } },
    title: { display: true, text: "Time (" + zone + ")" },
  };

  function userMoving() {
    // At once, not when the move completes (a wheel's completion waits 250 ms):
    // a poll meanwhile must neither slide the window back nor add to it.
    state.zoomed = true;
  }

  function afterUserMove() {
    state.zoomed = true;
    scheduleReload();
  }

  const chart = new Chart(canvas, {
    type: "line",
    data: { datasets: [] },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      // Outages break the line through null points (see withBreaks).
      spanGaps: false,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      plugins: {
        legend: { labels: { boxWidth: 14 } },
        zoom: {
          limits: { x: { minRange: 60 * 1000 } },
          zoom: {
            wheel: { enabled: true },
            pinch: { enabled: true },
            mode: "x",
            onZoom: userMoving,
            onZoomComplete: afterUserMove,
          },
          pan: { enabled: true, mode: "x", onPan: userMoving, onPanComplete: afterUserMove },
        },
      },
      scales: { x: xScale },
    },
  });
  window.sigfoxChart = chart;

  function yScales(seriesList) {
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
    const colour = palette[index % palette.length];
    const drawn = withBreaks(answer);
    return {
      label: series.label,
      seriesKey: key(series),
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

  function setShown(min, max) {
    state.shown = { min: min, max: max };
    chart.options.scales.x.min = min;
    chart.options.scales.x.max = max;
  }

  function updateCsvLink() {
    if (!csvLink || !state.shown) return;
    const query = filterQuery();
    query.set("since", iso(Math.floor(state.shown.min)));
    query.set("until", iso(Math.ceil(state.shown.max) + 1));
    csvLink.href = config.urls.csv + "?" + query;
  }

  function filterQuery() {
    const unique = function (name) {
      return Array.from(new Set(state.series.map(function (s) { return s[name]; }))).join(",");
    };
    return new URLSearchParams({ device: unique("device"), sensor: unique("sensor"), quantity: unique("quantity") });
  }

  async function load(window_) {
    const generation = ++state.generation;
    delete canvas.dataset.ready;
    box.setAttribute("aria-busy", "true");
    if (!state.series.length) {
      chart.data.datasets = [];
      chart.update("none");
      setStatus(statusLine, "Choose at least one device and one quantity.", "empty");
      box.setAttribute("aria-busy", "false");
      canvas.dataset.ready = "true";
      return;
    }
    setStatus(statusLine, "Loading…", "loading");
    const points = pointCount();
    state.lastRequest = { since: window_.since, until: window_.until, points: points };
    let answers;
    try {
      answers = await Promise.all(state.series.map(function (series) {
        const query = new URLSearchParams({ device: series.device, sensor: series.sensor,
                                            quantity: series.quantity, points: points });
        if (window_.since != null) query.set("since", iso(window_.since));
        if (window_.until != null) query.set("until", iso(window_.until));
        return getJSON(config.urls.series + "?" + query);
      }));
    } catch (error) {
      if (generation === state.generation) {
        setStatus(statusLine, "Could not load the readings: " + error.message, "error");
        box.setAttribute("aria-busy", "false");
      }
      return;
    }
    if (generation !== state.generation) return;
    draw(answers, window_);
    loadLinkQuality(generation);
  }

  function draw(answers, window_) {
    const seriesList = state.series;
    chart.data.datasets = answers.map(function (answer, index) {
      return dataset(seriesList[index], index, answer);
    });
    const scales = yScales(seriesList);
    Object.keys(chart.options.scales).forEach(function (id) {
      if (id !== "x") delete chart.options.scales[id];
    });
    Object.assign(chart.options.scales, scales);

    let min = window_.since, max = window_.until;
    answers.forEach(function (answer) {
      const since = answer.since && Date.parse(answer.since);
      const until = answer.until && Date.parse(answer.until);
      if (window_.since == null && since) min = min == null ? since : Math.min(min, since);
      if (window_.until == null && until) max = max == null ? until : Math.max(max, until);
    });
    if (min == null || max == null) {
      const now = Date.now();
      min = min == null ? now - 86400000 : min;
      max = max == null ? now : max;
    }
    setShown(min, max);

    state.lastTime = {};
    answers.forEach(function (answer, index) {
      const pts = answer.points;
      state.lastTime[key(seriesList[index])] = pts.length ? pts[pts.length - 1][0] : min;
    });
    chart.update("none");

    const total = answers.reduce(function (sum, a) { return sum + a.count; }, 0);
    const drawn = answers.reduce(function (sum, a) { return sum + a.points.length; }, 0);
    if (total === 0) {
      setStatus(statusLine, "No readings in this range. Choose a longer range, or All.", "empty");
    } else if (drawn < total) {
      setStatus(statusLine, total.toLocaleString("en") + " readings, drawn as " + drawn.toLocaleString("en") +
                " points that keep each period's first, lowest, highest and last value. Zoom in for detail.", "ready");
    } else {
      setStatus(statusLine, total.toLocaleString("en") + " readings.", "ready");
    }
    updateCsvLink();
    box.setAttribute("aria-busy", "false");
    state.loads += 1;
    canvas.dataset.loads = String(state.loads);
    canvas.dataset.ready = "true";
    if (state.loads === 1 && window.performance && performance.mark) {
      performance.mark("sigfox-chart-ready");
    }
  }

  let reloadTimer = null;
  function scheduleReload() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(function () {
      const scale = chart.scales.x;
      load({ since: Math.floor(scale.min), until: Math.ceil(scale.max) });
    }, 150);
  }

  // -- link quality (device page) -----------------------------------------------------

  let linkChart = null;
  if (linkCanvas) {
    linkChart = new Chart(linkCanvas, {
      type: "line",
      data: { datasets: [] },
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: false,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        plugins: { legend: { labels: { boxWidth: 14 } } },
        scales: {
          x: Object.assign({}, xScale),
          rssi: { type: "linear", position: "left", title: { display: true, text: "RSSI (dBm)" } },
          snr: { type: "linear", position: "right", title: { display: true, text: "SNR (dB)" },
                 grid: { drawOnChartArea: false } },
          lost: { type: "linear", position: "right", beginAtZero: true, ticks: { precision: 0 },
                  title: { display: true, text: "Messages" }, grid: { drawOnChartArea: false } },
        },
      },
    });
    window.sigfoxLinkChart = linkChart;
  }

  async function loadLinkQuality(generation) {
    if (!linkChart || !state.shown) return;
    const query = new URLSearchParams({
      since: iso(Math.floor(state.shown.min)), until: iso(Math.ceil(state.shown.max) + 1),
      // Wider buckets than the readings': a few pixels each keeps the band readable.
      points: Math.max(10, Math.round(pointCount() / 8)),
    });
    let answer;
    try {
      answer = await getJSON(config.urls.link + "?" + query);
    } catch (error) {
      setStatus(linkStatus, "Could not load the link quality: " + error.message, "error");
      return;
    }
    if (generation !== state.generation) return;
    const mid = function (b) { return (b.start + b.end) / 2; };
    const pick = function (name) {
      return answer.buckets.filter(function (b) { return b[name] !== null; })
        .map(function (b) { return { x: mid(b), y: b[name] }; });
    };
    // A count the answer may lack (resets, before the server counted them) is 0.
    const count = function (b, name) { return b[name] || 0; };
    const bars = function (name) {
      return answer.buckets.filter(function (b) { return count(b, name) > 0; })
        .map(function (b) { return { x: mid(b), y: count(b, name) }; });
    };
    const total = function (name) {
      return answer.buckets.reduce(function (sum, b) { return sum + count(b, name); }, 0);
    };
    linkChart.data.datasets = [
      { label: "RSSI lowest", data: pick("rssi_min"), yAxisID: "rssi", borderColor: "rgba(31,119,180,0.25)",
        backgroundColor: "rgba(31,119,180,0.12)", borderWidth: 1, pointRadius: 0, fill: false },
      { label: "RSSI highest", data: pick("rssi_max"), yAxisID: "rssi", borderColor: "rgba(31,119,180,0.25)",
        backgroundColor: "rgba(31,119,180,0.12)", borderWidth: 1, pointRadius: 0, fill: "-1" },
      { label: "RSSI mean (dBm)", data: pick("rssi_avg"), yAxisID: "rssi", borderColor: "#1f77b4",
        backgroundColor: "#1f77b4", borderWidth: 1.5, pointRadius: 0 },
      { label: "SNR mean (dB)", data: pick("snr_avg"), yAxisID: "snr", borderColor: "#2ca02c",
        backgroundColor: "#2ca02c", borderWidth: 1.5, pointRadius: 0 },
      { type: "bar", label: "Lost messages", yAxisID: "lost", backgroundColor: "#d62728",
        data: bars("lost") },
    ];
    // Resets of the sequence counter (a jump too large for the time between, as
    // after a reboot) lose nothing: drawn apart from the losses. Answers from
    // before the server counted them have no "resets": no such bars then.
    const countsResets = answer.buckets.some(function (b) { return b.resets !== undefined; });
    if (countsResets) {
      linkChart.data.datasets.push({ type: "bar", label: "Counter resets", yAxisID: "lost",
                                     backgroundColor: "#9467bd", data: bars("resets") });
    }
    linkChart.options.scales.x.min = state.shown.min;
    linkChart.options.scales.x.max = state.shown.max;
    linkChart.update("none");
    const messages = total("messages"), lost = total("lost"), resets = total("resets");
    let text = "No messages in this range.";
    if (messages) {
      text = messages.toLocaleString("en") + " messages, " + lost.toLocaleString("en") + " lost";
      if (resets) text += ", " + resets.toLocaleString("en") + (resets === 1 ? " counter reset" : " counter resets");
      text += ".";
    }
    setStatus(linkStatus, text, messages ? "ready" : "empty");
    linkCanvas.dataset.ready = "true";
  }

  // -- new readings, without a reload ----------------------------------------------------

  let polling = false;

  function following() {
    // The window moves with the newest readings: a preset range ("the last
    // day") or all of them, as long as the user did not zoom or pan.
    return !state.zoomed && (PRESETS[state.range] !== undefined || state.range === "all");
  }

  function append(target, time, value) {
    // A new reading after the series' newest, breaking the line by the same
    // rule as the loaded points.
    if (target.method !== "m4") {
      // Every reading is drawn: the rule is worked out again over all of them.
      const points = realPoints(target);
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

  async function poll() {
    state.ticks += 1;
    if (polling || document.hidden || !state.series.length || !state.shown) return;
    const follow = following();
    // What the x axis shows now (a zoom or pan moves it before its reload).
    const shownMin = chart.scales.x.min, shownMax = chart.scales.x.max;
    // A window that ended in the past gets nothing new: a custom range of past
    // days, or a zoom or pan into the past. A minute of grace lets in a reading
    // that arrived late.
    if (!follow && !(shownMax > Date.now() - 60000)) return;
    const generation = state.generation;
    polling = true;
    try {
      const times = state.series.map(function (s) { return state.lastTime[key(s)]; });
      const query = filterQuery();
      query.set("since", iso(Math.min.apply(null, times) + 1));
      query.set("page_size", "1000");
      const page = await getJSON(config.urls.readings + "?" + query);
      state.polls += 1;
      // The chart changed meanwhile (a zoom, a pan, other choices): its load decides.
      if (generation !== state.generation || follow !== following()) return;
      if (page.next) {
        // Too much arrived at once: load afresh, the same window if it stays put.
        load(state.zoomed ? { since: Math.floor(shownMin), until: Math.ceil(shownMax) } : rangeWindow());
        return;
      }
      let added = 0;
      const byKey = {};
      chart.data.datasets.forEach(function (d) { byKey[d.seriesKey] = d; });
      page.results.slice().reverse().forEach(function (reading) {
        const k = key(reading);
        const target = byKey[k];
        const time = Date.parse(reading.time);
        if (!target || !(time > state.lastTime[k])) return;
        // A window that stays put draws only what falls inside it.
        if (!follow && (time < shownMin || time > shownMax)) return;
        append(target, time, reading.value);
        state.lastTime[k] = time;
        added += 1;
      });
      if (!added) return;
      if (follow) {
        const newest = Math.max.apply(null, Object.values(state.lastTime));
        if (PRESETS[state.range]) {
          const fresh = rangeWindow();
          setShown(fresh.since, Math.max(fresh.until, newest));
          chart.data.datasets.forEach(function (d) {
            while (d.data.length && (d.data[0].x < fresh.since || d.data[0].y === null)) d.data.shift();
          });
        } else {
          setShown(state.shown.min, Math.max(state.shown.max, newest));
        }
      }
      chart.update("none");
      updateCsvLink();
      canvas.dataset.live = String((parseInt(canvas.dataset.live, 10) || 0) + added);
      setStatus(statusLine, added + (added === 1 ? " new reading." : " new readings."), "ready");
    } catch (error) {
      // The next poll tries again; a lasting problem shows on the next load.
    } finally {
      polling = false;
    }
  }
  setInterval(poll, pollMs);

  // -- controls ---------------------------------------------------------------------

  function checked(name) {
    if (!form) return null;
    const boxes = form.querySelectorAll('input[type=checkbox][name="' + name + '"]');
    if (!boxes.length) return null;
    return Array.from(boxes).filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
  }

  function readForm() {
    const devices = checked("device");
    const quantities = checked("quantity");
    state.series = config.keys.filter(function (k) {
      return (devices === null || devices.indexOf(k.device) !== -1) &&
             (quantities === null || quantities.indexOf(k.quantity) !== -1);
    }).slice(0, config.maxSeries);
    state.range = form.elements.range.value;
    state.from = form.elements.from.value;
    state.to = form.elements.to.value;
    const count = form.querySelector("#device-choices .count");
    if (count && devices) count.textContent = "(" + devices.length + " chosen)";
    // The address keeps what is shown, for a reload or a bookmark.
    const query = new URLSearchParams(new FormData(form));
    if (state.range !== "custom") { query.delete("from"); query.delete("to"); }
    history.replaceState(null, "", location.pathname + "?" + query);
  }

  function apply() {
    readForm();
    state.zoomed = false;
    load(rangeWindow());
  }

  if (form) {
    form.addEventListener("change", function (event) {
      // The server knows the series of the chosen devices only: ask it again.
      if (event.target.name === "device") { form.submit(); return; }
      if ((event.target.name === "from" || event.target.name === "to") && event.target.value) {
        form.elements.range.value = "custom";
      }
      apply();
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      apply();
    });
  }

  const tools = document.querySelector(".chart-tools");
  if (tools) {
    tools.addEventListener("click", function (event) {
      const button = event.target.closest("button[data-action]");
      if (!button || !state.shown) return;
      const action = button.dataset.action;
      const width = chart.chartArea ? chart.chartArea.right - chart.chartArea.left : 300;
      if (action === "reset") {
        state.zoomed = false;
        load(rangeWindow());
        return;
      }
      if (action === "zoom-in") chart.zoom(1.5, "none");
      if (action === "zoom-out") chart.zoom(1 / 1.5, "none");
      if (action === "earlier") chart.pan({ x: width / 3 }, undefined, "none");
      if (action === "later") chart.pan({ x: -width / 3 }, undefined, "none");
      state.zoomed = true;
      scheduleReload();
    });
  }

  load(rangeWindow());
})();
