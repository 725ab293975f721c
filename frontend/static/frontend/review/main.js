// The review page (/projects/{id}/review; review.html loads it as a module):
// GET /api/projects/{id}/review/next, then POST /api/annotations/{id}/review with approve / reject /
// correct. Keyboard first (review/keys.js): J/K select an annotation, A approves, R rejects, C corrects.
// review/next leases the item to this reviewer until `expires_at` (shown); an item awaiting adjudication is
// decided by a correction only, and a rejected annotation stays on screen out of the vote (review/loop.js).

import { $, isTyping, readJson, renderMeta } from "../lib/dom.js";
import { api, errorText } from "../lib/http.js";
import { correctionValue, startCorrection, toggleLabel, toggleSpan as toggleKept } from "./correct.js";
import { reviewKeyAction } from "./keys.js";
import { adjudicationText, conflictText, firstCounting, leaseText, rejectOutcome, verdictBlocked } from "./loop.js";
import { describe, makeRenderer } from "./render.js";

const root = $("review-app");
if (root) start(root);

function start(root) {
  const config = readJson("review-config");
  const task = config.taskType;
  const view = makeRenderer(config);
  const el = {
    waiting: $("review-waiting"),
    status: $("review-status"),
    error: $("review-error"),
    loading: $("review-loading"),
    empty: $("review-empty"),
    item: $("review-item"),
    externalId: $("review-external-id"),
    disagreement: $("review-disagreement"),
    adjudication: $("review-adjudication"),
    adjudicationNote: $("review-adjudication-note"),
    lease: $("review-lease"),
    approve: $("review-approve"),
    reject: $("review-reject"),
    text: $("review-text"),
    meta: $("review-meta"),
    suggestion: $("review-suggestion"),
    list: $("review-annotations"),
    correct: $("review-correct"),
    correctHint: $("review-correct-hint"),
    correctOptions: $("review-correct-options"),
    comment: $("review-comment"),
    help: $("review-help"),
  };
  const labelByKey = new Map(config.labels.filter((l) => l.hotkey).map((l) => [l.hotkey.toLowerCase(), l]));
  const labelKeys = new Set(labelByKey.keys());

  // the page's state: the item under review (JSON of review/next), the selected annotation, a
  // verdict in flight, and the correction being made (correct.js)
  const state = { task: null, selected: 0, busy: false, correcting: null };

  const say = (message) => (el.status.textContent = message);
  const timeOf = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  function fail(message) {
    el.error.textContent = message;
    el.error.hidden = !message;
  }

  // ------------------------------------------------------------------ rendering
  function renderText() {
    view.renderText(el.text, state.task.item.data.text || "", state.task.annotations[state.selected]);
  }

  function render() {
    const t = state.task;
    el.loading.hidden = true;
    if (!t) {
      el.item.hidden = true;
      el.empty.hidden = false;
      el.waiting.textContent = "";
      el.lease.textContent = "";
      return;
    }
    el.empty.hidden = true;
    el.item.hidden = false;
    el.externalId.textContent = t.item.external_id;
    el.disagreement.hidden = !t.disagreement;
    el.adjudication.hidden = !t.adjudication;
    el.adjudicationNote.hidden = !t.adjudication;
    if (t.adjudication) el.adjudicationNote.textContent = adjudicationText(t, config.maxRejections);
    el.lease.textContent = leaseText(t, timeOf);
    el.approve.disabled = !!t.adjudication;
    el.reject.disabled = !!t.adjudication;
    el.waiting.textContent = t.waiting + (t.waiting === 1 ? " item" : " items") + " awaiting review";
    renderMeta(el.meta, t.item.data);
    const prediction = t.item.prediction;
    el.suggestion.hidden = !(prediction && prediction.value);
    if (prediction && prediction.value) {
      const unsure = typeof prediction.uncertainty === "number" ? " (uncertainty " + prediction.uncertainty.toFixed(2) + ")" : "";
      el.suggestion.textContent = "Model suggestion: " + describe(task, prediction.value) + unsure + ".";
    }
    view.renderAnnotations(el.list, t, state.selected, select);
    renderText();
    closeCorrect();
  }

  function select(i) {
    if (!state.task) return;
    const n = state.task.annotations.length;
    state.selected = (i + n) % n;
    view.markSelected(el.list, state.task, state.selected);
    renderText();
    const card = el.list.querySelector('[data-index="' + state.selected + '"]');
    if (card) card.scrollIntoView({ block: "nearest" });
  }

  // ------------------------------------------------------------------ loading and verdicts
  async function loadNext() {
    el.loading.hidden = false;
    fail("");
    const { status, data } = await api("GET", "/api/projects/" + config.project + "/review/next");
    if (status === 204) {
      state.task = null;
    } else if (status === 200) {
      state.task = data;
      state.selected = firstCounting(data.annotations);
      el.comment.value = "";
    } else {
      el.loading.hidden = true;
      fail(
        status === 0
          ? "Could not load the next item: the server could not be reached."
          : errorText(data, "Could not load the next item (HTTP " + status + ")."),
      );
      return;
    }
    render();
    if (state.task) el.list.focus({ preventScroll: true });
  }

  async function send(verdict, value) {
    if (!state.task || state.busy) return;
    const ann = state.task.annotations[state.selected];
    const blocked = verdictBlocked(state.task, ann, verdict);
    if (blocked) {
      say(blocked);
      return;
    }
    const body = { verdict };
    if (value !== undefined) body.value = value;
    const comment = el.comment.value.trim();
    if (comment) body.comment = comment;
    state.busy = true;
    root.setAttribute("aria-busy", "true");
    try {
      const { status, data } = await api("POST", "/api/annotations/" + ann.id + "/review", { body });
      const name = state.task.item.external_id;
      if (status === 201 || status === 200) {
        say(
          verdict === "reject"
            ? rejectOutcome(name, data)
            : (verdict === "approve" ? "Approved" : "Corrected") + " item " + name + ": " + describe(task, data.final) + ".",
        );
        await loadNext();
      } else if (status === 409) {
        say(conflictText(name, data, timeOf));
        await loadNext();
      } else if (status === 0) {
        fail("The verdict was not saved: the server could not be reached. Try again.");
      } else {
        fail(errorText(data, "The verdict was not saved (HTTP " + status + ")."));
      }
    } finally {
      state.busy = false;
      root.removeAttribute("aria-busy");
    }
  }

  // ------------------------------------------------------------------ correct mode
  function openCorrect() {
    if (!state.task) return;
    const ann = state.task.annotations[state.selected];
    state.correcting = startCorrection(task, ann.value);
    el.correctHint.textContent =
      task === "classification"
        ? "Press a label's key (or click it) to save it as the final label."
        : task === "multilabel"
          ? "Starts from " + ann.annotator + "'s labels. Keys toggle labels; Enter saves the final label."
          : "Starts from " + ann.annotator + "'s spans. Number keys keep or drop a span; Enter saves the kept ones.";
    el.correct.hidden = false;
    renderCorrect();
    const first = el.correctOptions.querySelector("button");
    if (first) first.focus({ preventScroll: true });
  }

  function closeCorrect() {
    state.correcting = null;
    el.correct.hidden = true;
    el.correctOptions.textContent = "";
  }

  function renderCorrect() {
    view.renderCorrectOptions(el.correctOptions, state.correcting, state.task.item.data.text, {
      onPick: pickLabel,
      onToggle: toggleSpan,
    });
  }

  function pickLabel(label) {
    const c = state.correcting;
    if (!c) return;
    if (task === "classification") {
      closeCorrect();
      send("correct", { label: label.name });
    } else if (task === "multilabel") {
      toggleLabel(c, label.name);
      renderCorrect();
    }
  }

  function toggleSpan(i) {
    if (toggleKept(state.correcting, i)) renderCorrect();
  }

  function saveCorrect() {
    const c = state.correcting;
    if (!c || task === "classification") return;
    const value = correctionValue(task, config.labels.map((l) => l.name), c);
    closeCorrect();
    send("correct", value);
  }

  // ------------------------------------------------------------------ keys
  const actions = {
    leaveField: (_, event) => {
      event.target.blur();
      el.list.focus({ preventScroll: true });
    },
    help: () => el.help.showModal(),
    closeCorrect: () => {
      closeCorrect();
      el.list.focus({ preventScroll: true });
    },
    saveCorrect,
    toggleSpan,
    pickLabel: (key) => pickLabel(labelByKey.get(key)),
    select: (delta) => select(state.selected + delta),
    approve: () => send("approve"),
    reject: () => send("reject"),
    openCorrect,
    comment: () => el.comment.focus(),
  };

  document.addEventListener("keydown", (event) => {
    const t = event.target;
    const act = reviewKeyAction(event, {
      helpOpen: el.help.open,
      typing: isTyping(t),
      hasTask: !!state.task,
      busy: state.busy,
      correcting: !!state.correcting,
      task,
      labelKeys,
      onOptionButton: !!(t && t.tagName === "BUTTON" && el.correctOptions.contains(t)),
    });
    if (!act) return;
    if (act.prevent) event.preventDefault();
    actions[act.action](act.arg, event);
  });

  el.approve.addEventListener("click", () => send("approve"));
  el.reject.addEventListener("click", () => send("reject"));
  $("review-correct-open").addEventListener("click", openCorrect);
  $("review-correct-save").addEventListener("click", () => {
    if (task === "classification") {
      el.correctHint.textContent = "Pick a label: for a single-label project the label is saved when you choose it.";
      return;
    }
    saveCorrect();
  });
  $("review-correct-cancel").addEventListener("click", closeCorrect);
  $("review-refresh").addEventListener("click", loadNext);
  $("review-help-open").addEventListener("click", () => el.help.showModal());
  const keyList = config.labels.filter((l) => l.hotkey).map((l) => l.hotkey.toUpperCase() + " " + l.name);
  $("review-help-labels").textContent = keyList.length ? "Label keys in correct mode: " + keyList.join(", ") + "." : "";

  loadNext();
}
