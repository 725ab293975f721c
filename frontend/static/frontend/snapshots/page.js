// The snapshot page (snapshots.html): the list of the project's snapshots (GET /api/projects/{id}/snapshots,
// newest first, paged), the "New snapshot" panel (POST, errors shown at the fields they name), and each building
// snapshot followed through its Job (GET /api/jobs/{id}) until the card turns ready or failed.

import { $, make, sleep } from "../lib/dom.js";
import { api, errorText } from "../lib/http.js";
import { errorOf, showErrors } from "../manage/errors.js";
import { errorTarget, snapshotBody, splitSumText } from "./body.js";
import { jobFinished, pollDelay, renderSnapshot, updateProgress } from "./list.js";

export const PAGE_SIZE = 20;

export function snapshotsPage(root, config) {
  const project = config.project;
  const panel = $("snapshot-panel");
  const toggle = $("snapshot-new");
  const form = $("snapshot-form");
  const errorsBox = $("snapshot-errors");
  const status = $("snapshot-status");
  const listStatus = $("snapshot-list-status");
  const list = $("snapshot-list");
  const empty = $("snapshot-empty");
  const pager = $("snapshot-pages");
  const create = $("snapshot-create");
  const metaRows = $("meta-rows");
  const following = new Set(); // ids of the building snapshots being polled
  let page = 1;
  let metaCount = 0;

  // --- the panel: opened by its button, closed by Cancel or Escape (focus back on the button) ---
  function openPanel(focus) {
    panel.hidden = false;
    toggle.setAttribute("aria-expanded", "true");
    if (focus) $("s-name").focus();
  }
  function closePanel() {
    panel.hidden = true;
    toggle.setAttribute("aria-expanded", "false");
    toggle.focus();
  }
  toggle.addEventListener("click", () => (panel.hidden ? openPanel(true) : closePanel()));
  $("snapshot-cancel").addEventListener("click", closePanel);
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !event.defaultPrevented) {
      event.preventDefault();
      closePanel();
    }
  });

  // --- metadata conditions: rows of field = value ---
  function addMetaRow(focus) {
    const n = ++metaCount;
    const row = make("div", "meta-row");
    const field = make("input", "meta-field");
    field.id = "meta-field-" + n;
    field.autocomplete = "off";
    const value = make("input", "meta-value");
    value.id = "meta-value-" + n;
    value.autocomplete = "off";
    const fieldLabel = make("label", null, "Field");
    fieldLabel.htmlFor = field.id;
    const valueLabel = make("label", null, "equals");
    valueLabel.htmlFor = value.id;
    const remove = make("button", "btn btn-quiet", "Remove");
    remove.type = "button";
    remove.setAttribute("aria-label", "Remove metadata condition " + n);
    remove.addEventListener("click", () => {
      row.remove();
      $("meta-add").focus();
    });
    row.append(fieldLabel, field, valueLabel, value, remove);
    metaRows.appendChild(row);
    if (focus) field.focus();
  }
  $("meta-add").addEventListener("click", () => addMetaRow(true));

  // --- the split's live "sums to" hint ---
  const sumHint = $("split-sum");
  function syncSum() {
    const { ok, text } = splitSumText(readValues());
    sumHint.textContent = text;
    sumHint.classList.toggle("bad", !ok);
  }
  for (const id of ["s-train", "s-validation", "s-test"]) $(id).addEventListener("input", syncSum);

  function checked(name) {
    return [...form.querySelectorAll('input[name="' + name + '"]:checked')].map((n) => n.value);
  }

  function readValues() {
    const value = (id) => $(id).value;
    return {
      name: value("s-name"),
      status: checked("status"),
      source: checked("source"),
      labels: checked("labels"),
      min_agreement: value("s-min_agreement"),
      annotators: value("s-annotators"),
      created_after: value("s-created_after"),
      created_before: value("s-created_before"),
      decided_after: value("s-decided_after"),
      decided_before: value("s-decided_before"),
      meta: [...metaRows.querySelectorAll(".meta-row")].map((row) => ({
        field: row.querySelector(".meta-field").value,
        value: row.querySelector(".meta-value").value,
      })),
      gold: value("s-gold"),
      train: value("s-train"),
      validation: value("s-validation"),
      test: value("s-test"),
      seed: value("s-seed"),
      stratify: $("s-stratify").checked,
      group_by: value("s-group_by"),
      pseudonymize: $("s-pseudonymize").checked,
    };
  }

  // --- errors: the summary above the form, and each message at the field it names ---
  function showFieldErrors(data) {
    showErrors(errorsBox, form, data);
    for (const node of form.querySelectorAll(".field-error")) node.remove();
    for (const node of form.querySelectorAll("[data-error-described]")) {
      node.setAttribute("aria-describedby", node.dataset.errorDescribed);
      if (!node.dataset.errorDescribed) node.removeAttribute("aria-describedby");
      delete node.dataset.errorDescribed;
    }
    if (!data) return;
    const known = new Set([...form.querySelectorAll("[data-field]")].map((n) => n.dataset.field));
    let n = 0;
    for (const e of data.errors || []) {
      const target = e && errorTarget(e.field, known);
      if (!target) continue;
      const node = form.querySelector('[data-field="' + CSS.escape(target) + '"]');
      node.setAttribute("aria-invalid", "true");
      const message = make("p", "field-error", e.message);
      message.id = "snapshot-error-" + ++n;
      message.dataset.errorFor = target;
      if (node.tagName === "FIELDSET") {
        const legend = node.querySelector("legend");
        if (legend) legend.after(message);
        else node.prepend(message);
      } else {
        (node.closest(".field") || node.parentElement).appendChild(message);
        if (!("errorDescribed" in node.dataset)) node.dataset.errorDescribed = node.getAttribute("aria-describedby") || "";
        node.setAttribute("aria-describedby", (node.getAttribute("aria-describedby") || "") + " " + message.id);
      }
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = snapshotBody(readValues());
    create.disabled = true;
    status.textContent = "Creating the snapshot…";
    const res = await api("POST", "/api/projects/" + project + "/snapshots", { body });
    create.disabled = false;
    if (res.status === 202) {
      showFieldErrors(null);
      status.textContent = "Snapshot “" + body.name + "” is being built; it shows below.";
      $("s-name").value = "";
      closePanel();
      root.dataset.created = res.data.snapshot;
      page = 1;
      await loadPage();
      return;
    }
    status.textContent = "";
    showFieldErrors(errorOf(res));
    const first = form.querySelector('[aria-invalid="true"]');
    if (first) (first.tagName === "FIELDSET" ? first.querySelector("input, select") || first : first).focus();
  });

  // --- the list ---
  async function copySha(sha, copyButton) {
    try {
      await navigator.clipboard.writeText(sha);
      listStatus.textContent = "SHA-256 copied: " + sha;
      copyButton.textContent = "Copied";
      setTimeout(() => (copyButton.textContent = "Copy"), 2000);
    } catch {
      listStatus.textContent = "Could not copy it here; the SHA-256 is " + sha;
    }
  }

  const cardOf = (id) => list.querySelector('li[data-snapshot="' + id + '"]');
  const card = (s) => renderSnapshot(s, { taskType: config.taskType, onCopy: copySha });

  async function loadPage() {
    const res = await api("GET", "/api/projects/" + project + "/snapshots?page=" + page + "&page_size=" + PAGE_SIZE);
    if (res.status === 404 && page > 1) {
      page = 1; // the page we were on is gone (fewer snapshots now)
      return loadPage();
    }
    if (res.status !== 200) {
      listStatus.textContent = errorText(res.data, "The snapshots could not be loaded (HTTP " + res.status + ").");
      return;
    }
    const { count, next, previous, results } = res.data;
    list.replaceChildren(...results.map(card));
    empty.hidden = count > 0;
    if (count === 0 && !root.dataset.loaded) openPanel(false); // nothing to list yet: the form is what to do
    pager.hidden = !next && !previous;
    $("snapshot-prev").disabled = !previous;
    $("snapshot-next").disabled = !next;
    $("snapshot-page-text").textContent = "Page " + page + " of " + Math.max(1, Math.ceil(count / PAGE_SIZE));
    root.dataset.loaded = "true";
    for (const s of results) if (s.status === "building") follow(s);
  }

  $("snapshot-prev").addEventListener("click", () => {
    page = Math.max(1, page - 1);
    loadPage();
  });
  $("snapshot-next").addEventListener("click", () => {
    page += 1;
    loadPage();
  });

  /** Polls a building snapshot's Job (progress on its card), then the snapshot until it is ready or failed. */
  async function follow(s) {
    if (following.has(s.id)) return;
    following.add(s.id);
    try {
      for (let n = 0; ; n++) {
        let job = null;
        if (s.job) {
          const r = await api("GET", "/api/jobs/" + s.job);
          if (r.status === 200) job = r.data;
        }
        let li = cardOf(s.id);
        if (!li) return; // paged away; it is followed again when shown
        if (job) updateProgress(li, job);
        if (!job || jobFinished(job)) {
          const r = await api("GET", "/api/snapshots/" + s.id);
          if (r.status === 404) {
            li.remove();
            return;
          }
          if (r.status === 200 && r.data.status !== "building") {
            li = cardOf(s.id);
            if (li) li.replaceWith(card(r.data));
            if (root.dataset.created === String(s.id)) status.textContent = ""; // "being built" is over: said below
            listStatus.textContent =
              r.data.status === "ready"
                ? "Snapshot “" + r.data.name + "” is ready: " + r.data.rows + " row" + (r.data.rows === 1 ? "" : "s") + "."
                : "Snapshot “" + r.data.name + "” failed: " + (r.data.error || "no reason was recorded.");
            return;
          }
        }
        await sleep(pollDelay(n));
      }
    } finally {
      following.delete(s.id);
    }
  }

  syncSum();
  loadPage();
}
