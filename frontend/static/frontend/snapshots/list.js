// One snapshot as the page shows it: the words and numbers (pure functions, tested in Node) and its card
// (renderSnapshot, DOM). Every name and value from the API goes in as text, never as HTML.

import { button, make } from "../lib/dom.js";

// the download formats, in the order offered (conll only for span projects: the API answers 400 otherwise)
export const FORMATS = [
  { format: "jsonl", text: "JSON Lines" },
  { format: "csv", text: "CSV" },
  { format: "parquet", text: "Parquet" },
  { format: "hf", text: "Hugging Face (tar)" },
  { format: "conll", text: "CoNLL", spansOnly: true },
  { format: "labelstudio", text: "Label Studio JSON" },
  { format: "card", text: "Dataset card" },
];

/** The formats a project of this task type can download. */
export const formatsFor = (taskType) => FORMATS.filter((f) => !f.spansOnly || taskType === "spans");

export const downloadUrl = (id, format) => "/api/snapshots/" + id + "/download?format=" + encodeURIComponent(format);

/** The first 12 hex digits of a sha256 (enough to tell snapshots apart by eye), or "–" before there is one. */
export const shortSha = (sha) => (sha ? String(sha).slice(0, 12) : "–");

const SPLITS = ["train", "validation", "test"];

/** "train 80 · validation 10 · test 10", the three in that order, then any other split the API names. */
export function splitsText(splits) {
  const s = splits || {};
  const names = [...SPLITS, ...Object.keys(s).filter((k) => !SPLITS.includes(k)).sort()];
  return names.filter((k) => k in s).map((k) => k + " " + s[k]).join(" · ") || "–";
}

/** The label distribution, labels with rows only, in the API's order (the project's): "tech 5 · sports 2". */
export function distributionText(distribution) {
  const parts = Object.entries(distribution || {}).filter(([, n]) => n > 0);
  return parts.map(([name, n]) => name + " " + n).join(" · ") || "–";
}

/** The agreement of the rows a snapshot holds: "93.3 % mean item agreement · Krippendorff's α 0.812". */
export function agreementText(agreement) {
  const a = agreement || {};
  const parts = [];
  if (typeof a.mean_item_agreement === "number") parts.push((100 * a.mean_item_agreement).toFixed(1) + " % mean item agreement");
  if (typeof a.krippendorff_alpha === "number") parts.push("Krippendorff's α " + a.krippendorff_alpha.toFixed(3));
  return parts.join(" · ") || "–";
}

/** A byte count for people: 512 B, 12.3 kB, 4.5 MB. */
export function sizeText(bytes) {
  if (typeof bytes !== "number" || !Number.isFinite(bytes) || bytes < 0) return "";
  if (bytes < 1000) return bytes + " B";
  const units = ["kB", "MB", "GB", "TB"];
  let n = bytes;
  let unit = -1;
  while (n >= 1000 && unit < units.length - 1) {
    n /= 1000;
    unit += 1;
  }
  return (n >= 100 ? Math.round(n) : n.toFixed(1)) + " " + units[unit];
}

/** An ISO time as "2026-12-07 21:15 UTC" (the page shows UTC, as the API stores it). */
export function timeText(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return "–";
  return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

/** The model version the suggestions came from: "v3", or "none" when no version was active. */
export const modelText = (version) => (version === null || version === undefined ? "none" : "v" + version);

function valueText(value) {
  if (Array.isArray(value)) return value.map(valueText).join(", ");
  if (value && typeof value === "object") {
    return Object.entries(value)
      .map(([k, v]) => k + " = " + valueText(v))
      .join(", ");
  }
  return String(value);
}

/**
 * The filters that narrow a snapshot, in words ("status approved; labels tech, sports"): the keys the API
 * stored with a value that selects something (empty lists, nulls and gold "include" say nothing and are left out).
 */
export function filtersText(filters) {
  const parts = [];
  for (const [key, value] of Object.entries(filters || {})) {
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value) && !value.length) continue;
    if (typeof value === "object" && !Array.isArray(value) && !Object.keys(value).length) continue;
    if (key === "gold" && value === "include") continue;
    parts.push(key.replace(/_/g, " ") + " " + valueText(value));
  }
  return parts.join("; ") || "none";
}

/** The split settings in words: "0.8 / 0.1 / 0.1, seed 0, stratified, grouped by source". */
export function splitText(split) {
  const s = split || {};
  const ratios = [s.train, s.validation, s.test];
  if (ratios.every((v) => v === undefined || v === null)) return "–";
  const parts = [ratios.map((v) => (v === undefined || v === null ? "?" : v)).join(" / ")];
  if (s.seed !== undefined && s.seed !== null) parts.push("seed " + s.seed);
  if (s.stratify) parts.push("stratified");
  if (s.group_by) parts.push("grouped by " + s.group_by);
  return parts.join(", ");
}

/** The status line of a building snapshot from its Job: "Waiting for a worker…", "Building… 40% (400 of 1000)". */
export function progressText(job) {
  if (!job || job.status === "queued") return "Waiting for a worker…";
  if (job.status === "failed") return "The build failed" + (job.error ? ": " + job.error : ".");
  if (job.status === "succeeded") return "Built.";
  if (!job.total) return "Building…";
  const done = Math.min(job.progress || 0, job.total);
  return "Building… " + Math.floor((100 * done) / job.total) + "% (" + done + " of " + job.total + ")";
}

export const jobFinished = (job) => !!job && (job.status === "succeeded" || job.status === "failed");

/** Milliseconds before the n-th poll (from 0) of a build: every second at first, then backing off to 10 s. */
export function pollDelay(n) {
  return n < 10 ? 1000 : Math.min(10_000, Math.round(1000 * 1.5 ** (n - 9)));
}

function fact(dl, term, value, cls) {
  const dd = make("dd", cls);
  if (value instanceof Node) dd.appendChild(value);
  else dd.textContent = value;
  dl.append(make("dt", null, term), dd);
  return dd;
}

/**
 * The card of one snapshot (an <li data-snapshot data-status>). `onCopy(sha, button)` copies its hash.
 * A building one holds a <progress> the page's poller fills (updateProgress).
 */
export function renderSnapshot(s, { taskType, onCopy }) {
  const li = make("li", "snapshot");
  li.dataset.snapshot = s.id;
  li.dataset.status = s.status;
  const head = make("div", "snapshot-head");
  const title = make("h3", "snapshot-name", s.name);
  head.append(title, make("span", "badge badge-" + s.status, s.status));
  head.append(make("span", "muted snapshot-when", "#" + s.id + " · " + timeText(s.created_at)));
  li.appendChild(head);

  const dl = make("dl", "snapshot-facts");
  const ready = s.status === "ready";
  if (ready) {
    // what the build counted; a building or failed snapshot has none of these yet
    fact(dl, "Rows", String(s.rows), "snapshot-rows");
    fact(dl, "Splits", splitsText(s.splits), "snapshot-splits");
    fact(dl, "Labels", distributionText(s.label_distribution), "snapshot-labels");
    fact(dl, "Agreement", agreementText(s.agreement), "snapshot-agreement");
    fact(dl, "Model version", modelText(s.model_version), "snapshot-model");
  }
  if (ready && s.sha256) {
    const wrap = make("span", "sha");
    const code = make("code", null, shortSha(s.sha256));
    code.title = s.sha256;
    code.dataset.sha256 = s.sha256;
    const copy = button("btn btn-quiet btn-small", "Copy");
    copy.setAttribute("aria-label", "Copy the SHA-256 of " + s.name);
    copy.addEventListener("click", () => onCopy(s.sha256, copy));
    wrap.append(code, copy);
    fact(dl, "SHA-256", wrap, "snapshot-sha");
  }
  fact(dl, "Filters", filtersText(s.filters), "snapshot-filters");
  fact(dl, "Split", splitText(s.split) + (s.pseudonymize ? "; annotators pseudonymized" : ""), "snapshot-split");
  li.appendChild(dl);

  if (s.status === "building") {
    const box = make("div", "snapshot-progress");
    const bar = make("progress");
    bar.setAttribute("aria-label", "Building " + s.name);
    const text = make("p", "progress-text", "Waiting for a worker…");
    text.setAttribute("role", "status");
    box.append(bar, text);
    li.appendChild(box);
  } else if (s.status === "failed") {
    li.appendChild(make("p", "snapshot-error", "The build failed: " + (s.error || "no reason was recorded.")));
  } else if (s.status === "ready") {
    if (!s.rows) li.appendChild(make("p", "snapshot-empty-note", "Empty: no item matched these filters."));
    const p = make("p", "snapshot-downloads");
    p.appendChild(make("span", "downloads-title", "Download:"));
    for (const f of formatsFor(taskType)) {
      const a = make("a", "btn btn-small");
      a.href = downloadUrl(s.id, f.format);
      a.dataset.format = f.format;
      a.setAttribute("download", "");
      a.append(f.text, make("span", "visually-hidden", " of " + s.name));
      const size = sizeText(((s.formats || {})[f.format] || {}).bytes);
      if (size) a.appendChild(make("span", "size", size));
      p.appendChild(a);
    }
    li.appendChild(p);
  }
  return li;
}

/** Shows a building snapshot's Job on its card. */
export function updateProgress(li, job) {
  const bar = li.querySelector(".snapshot-progress progress");
  const text = li.querySelector(".snapshot-progress .progress-text");
  if (!bar || !text) return;
  if (job && job.total) {
    bar.max = job.total;
    bar.value = Math.min(job.progress || 0, job.total);
  }
  text.textContent = progressText(job);
}
