// Data access: the read API's queries and its JSON answers. Nothing here
// touches the page; getJSON needs fetch, the rest is pure.

function iso(ms) {
  return new Date(ms).toISOString();
}

export function filterQuery(seriesList) {
  // The devices, sensors and quantities of the series, each listed once: the
  // filters of /api/readings/ and of its CSV.
  const unique = function (name) {
    return Array.from(new Set(seriesList.map(function (s) { return s[name]; }))).join(",");
  };
  return new URLSearchParams({ device: unique("device"), sensor: unique("sensor"), quantity: unique("quantity") });
}

export function seriesQuery(series, window_, points) {
  // /api/series/ of one series over {since, until} (epoch ms, null: open).
  const query = new URLSearchParams({ device: series.device, sensor: series.sensor,
                                      quantity: series.quantity, points: points });
  if (window_.since != null) query.set("since", iso(window_.since));
  if (window_.until != null) query.set("until", iso(window_.until));
  return query;
}

export function csvQuery(seriesList, shown) {
  // The CSV of what the x axis shows, its last millisecond included.
  const query = filterQuery(seriesList);
  query.set("since", iso(Math.floor(shown.min)));
  query.set("until", iso(Math.ceil(shown.max) + 1));
  return query;
}

export function newReadingsQuery(seriesList, sinceMs, pageSize) {
  const query = filterQuery(seriesList);
  query.set("since", iso(sinceMs));
  query.set("page_size", String(pageSize));
  return query;
}

export function linkQuery(shown, points) {
  return new URLSearchParams({
    since: iso(Math.floor(shown.min)), until: iso(Math.ceil(shown.max) + 1), points: points,
  });
}

export async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = JSON.stringify(await response.json()); } catch (error) { /* not JSON */ }
    throw new Error(response.status + " " + detail);
  }
  return response.json();
}
