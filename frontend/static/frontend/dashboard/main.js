// The dashboard page's entry (dashboard.html loads it as a module; Chart.js, when installed, is loaded before it).

import { $, readJson, sleep } from "../lib/dom.js";
import { api, errorText } from "../lib/http.js";
import { loadAnnotators, pausedMap, renderPaused } from "./annotators.js";
import { renderAll, renderAnnotators } from "./panels.js";
import { metricsUrl, rangeFrom, rangeText } from "./range.js";
import { charts, emptyNote } from "./render.js";

const config = readJson("dashboard-config");
const range = rangeFrom(location.search);
const ctx = { project: config.project, labels: config.labels, paused: null, modelVersion: null };
let metrics = null;

function say(text, isError = false) {
  $("dash-status").textContent = isError ? "" : text;
  const error = $("dash-error");
  error.textContent = isError ? text : "";
  error.hidden = !isError;
}

async function loadMetrics() {
  // a first request may find the figures still being computed (202): ask again a few times
  for (let attempt = 0; attempt < 30; attempt++) {
    const res = await api("GET", metricsUrl(config.project, range));
    if (res.status === 200 && res.data && res.data.agreement) return res.data;
    if (res.status !== 202) {
      const why = res.status === 0 ? "The server could not be reached." : `HTTP ${res.status}.`;
      say(errorText(res.data, `The metrics could not be loaded: ${why}`), true);
      return null;
    }
    say("Computing the figures…");
    await sleep(2000);
  }
  say("The figures are still being computed: reload the page in a minute.", true);
  return null;
}

async function refreshPaused() {
  const rows = await loadAnnotators(config.project);
  ctx.paused = pausedMap(rows);
  renderPaused($("dash-paused"), rows, { project: config.project, canManage: config.canManage, onChange: unpaused, say });
  if (metrics) renderAnnotators(metrics, ctx);
}

// the button that had the focus is gone with the list it was in: the focus goes to the list's box
async function unpaused() {
  await refreshPaused();
  $("dash-paused").focus();
}

/** Every panel says the figures are missing (they stay in place, not busy forever). */
function unavailable() {
  for (const panel of document.querySelectorAll(".panel")) {
    panel.querySelector(".panel-body").replaceChildren(emptyNote("No figures: see the error above."));
    panel.setAttribute("aria-busy", "false");
  }
}

async function start() {
  $("dash-since").value = range.since;
  $("dash-until").value = range.until;
  const [m] = await Promise.all([loadMetrics(), refreshPaused()]);
  if (!m) {
    $("dash-computed").textContent = "not available";
    return unavailable();
  }
  metrics = m;
  renderAll(metrics, ctx);
  $("dash-computed").textContent = metrics.computed_at
    ? `computed at ${new Date(metrics.computed_at).toISOString().replace("T", " ").slice(0, 19)} UTC`
    : "not computed yet";
  if (charts.missing) $("dash-no-charts").hidden = false;
  say(`Showing ${rangeText(range)}.`);
}

start();
