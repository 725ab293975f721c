// The import page (manage_import.html): upload a file, then follow its Job with a live progress bar
// (GET /api/jobs/{id} until it succeeded or failed) and show the counts and the rows with errors.

import { $, make, sleep } from "../lib/dom.js";
import { api } from "../lib/http.js";
import { errorOf, showErrors } from "./errors.js";

export const POLL_MS = 400;

/** What the progress line says for a Job (pure). */
export function jobText(job) {
  if (job.status === "succeeded") return "Done.";
  if (job.status === "failed") return "The import failed: " + (job.error || "see the rows below") + ". Nothing was imported.";
  if (job.status === "queued") return "Waiting for a worker…";
  const pct = job.total ? Math.floor((100 * Math.min(job.progress, job.total)) / job.total) : 0;
  return "Importing… " + pct + "%";
}

export const jobFinished = (job) => job.status === "succeeded" || job.status === "failed";

export function importPage(root) {
  const project = root.dataset.project;
  const form = $("import-form");
  const errorsBox = $("import-errors");
  const jobBox = $("import-job");
  const bar = $("import-progress");
  const text = $("import-progress-text");
  const resultBox = $("import-result");
  const start = $("import-start");

  function showResult(job) {
    const result = job.result || {};
    $("import-created").textContent = result.created ?? 0;
    $("import-duplicates").textContent = result.duplicates ?? 0;
    $("import-gold").textContent = result.gold ?? 0;
    $("import-error-count").textContent = result.error_count ?? (result.errors || []).length;
    const rowsBody = $("import-error-rows");
    rowsBody.textContent = "";
    for (const e of result.errors || []) {
      const tr = make("tr");
      tr.appendChild(make("td", null, e.line ?? ""));
      tr.appendChild(make("td", null, e.field ?? ""));
      tr.appendChild(make("td", null, e.message));
      rowsBody.appendChild(tr);
    }
    $("import-error-table").hidden = (result.errors || []).length === 0;
    resultBox.hidden = false;
  }

  // a file rejected at once (400) lists its rows like a finished Job does
  function showErrorRows(errors) {
    showResult({ result: { created: 0, duplicates: 0, errors, error_count: errors.length } });
  }

  async function poll(jobId) {
    for (;;) {
      const res = await api("GET", "/api/jobs/" + jobId);
      if (res.status !== 200) {
        showErrors(errorsBox, form, errorOf(res));
        return;
      }
      const job = res.data;
      if (job.total) {
        bar.max = job.total;
        bar.value = Math.min(job.progress, job.total);
      }
      root.dataset.jobStatus = job.status;
      text.textContent = jobText(job);
      if (jobFinished(job)) {
        bar.value = bar.max;
        jobBox.classList.add(job.status);
        showResult(job);
        start.disabled = false;
        return;
      }
      await sleep(POLL_MS);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("import-file");
    if (!input.files.length) {
      showErrors(errorsBox, form, { detail: "Choose a file to import.", errors: [{ field: "file", message: "Required." }] });
      return;
    }
    const file = input.files[0];
    const body = new FormData();
    body.append("file", file);
    const onError = $("import-on-error").value;
    showErrors(errorsBox, form, null);
    resultBox.hidden = true;
    jobBox.hidden = false;
    jobBox.classList.remove("succeeded", "failed");
    $("import-filename").textContent = file.name;
    bar.removeAttribute("value");
    text.textContent = "Uploading…";
    start.disabled = true;
    const res = await api("POST", "/api/projects/" + project + "/import?on_error=" + encodeURIComponent(onError), { body });
    if (res.status === 202) {
      bar.value = 0;
      root.dataset.job = res.data.job;
      await poll(res.data.job);
      return;
    }
    start.disabled = false;
    jobBox.hidden = true;
    showErrors(errorsBox, form, errorOf(res));
    const rowErrors = ((res.data && res.data.errors) || []).filter((e) => e.line !== undefined);
    if (rowErrors.length) showErrorRows(rowErrors);
  });
}
