// The review page (/projects/{id}/review): GET /api/projects/{id}/review/next, then
// POST /api/annotations/{id}/review with approve / reject / correct. Keyboard first:
// J/K (or arrows) select an annotation, A approves it, R rejects, C corrects (then label keys),
// Enter saves a multilabel/spans correction, Esc cancels, / comments, ? helps.
// Every piece of item or annotation content is put into the page with textContent, never as HTML.
(function () {
  "use strict";

  const root = document.getElementById("review-app");
  if (!root) return;
  const config = JSON.parse(document.getElementById("review-config").textContent);
  const csrf = root.dataset.csrf;
  const $ = (id) => document.getElementById(id);
  const el = {
    waiting: $("review-waiting"),
    status: $("review-status"),
    error: $("review-error"),
    loading: $("review-loading"),
    empty: $("review-empty"),
    item: $("review-item"),
    externalId: $("review-external-id"),
    disagreement: $("review-disagreement"),
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
  const labelsByName = new Map(config.labels.map((l) => [l.name, l]));
  const labelByKey = new Map(config.labels.filter((l) => l.hotkey).map((l) => [l.hotkey.toLowerCase(), l]));

  const state = { task: null, selected: 0, busy: false, correcting: null };

  function make(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function chip(name) {
    const c = make("span", "label-chip", name);
    const label = labelsByName.get(name);
    if (label && label.color) c.style.setProperty("--label-color", label.color);
    return c;
  }

  // Span offsets are Unicode code points; JS strings index UTF-16 units, so work on Array.from(text).
  function codePoints(text) {
    return Array.from(text || "");
  }

  function say(message) {
    el.status.textContent = message;
  }

  function fail(message) {
    el.error.textContent = message;
    el.error.hidden = !message;
  }

  function errorText(body, fallback) {
    if (!body || typeof body !== "object") return fallback;
    const parts = [body.detail || fallback];
    for (const e of body.errors || []) {
      parts.push((e.field ? e.field + ": " : "") + e.message);
    }
    return parts.join(" — ");
  }

  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRFToken"] = csrf;
    const response = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch (e) {
        data = null;
      }
    }
    return { status: response.status, data };
  }

  // ------------------------------------------------------------------ rendering

  function valueNode(value, text) {
    const box = make("div", "ann-value");
    if (config.taskType === "classification") {
      box.appendChild(chip(value.label));
    } else if (config.taskType === "multilabel") {
      if (!value.labels || value.labels.length === 0) box.appendChild(make("span", "muted", "(no labels)"));
      for (const name of value.labels || []) box.appendChild(chip(name));
    } else {
      const spans = value.spans || [];
      if (spans.length === 0) box.appendChild(make("span", "muted", "(no spans)"));
      const chars = codePoints(text);
      const list = make("ul", "span-list");
      for (const s of spans) {
        const li = make("li");
        li.appendChild(chip(s.label));
        li.appendChild(make("q", "span-text", chars.slice(s.start, s.end).join("")));
        li.appendChild(make("span", "muted", " " + s.start + "–" + s.end));
        list.appendChild(li);
      }
      box.appendChild(list);
    }
    return box;
  }

  function describe(value) {
    if (config.taskType === "classification") return value.label;
    if (config.taskType === "multilabel") return (value.labels || []).join(", ") || "no labels";
    return (value.spans || []).map((s) => s.label + " " + s.start + "–" + s.end).join(", ") || "no spans";
  }

  // The item text, with the selected annotation's spans marked (spans projects only).
  function renderText() {
    const task = state.task;
    const text = task.item.data.text || "";
    el.text.textContent = "";
    const ann = task.annotations[state.selected];
    if (config.taskType !== "spans" || !ann) {
      el.text.textContent = text;
      return;
    }
    const chars = codePoints(text);
    const spans = (ann.value.spans || []).filter((s) => s.end <= chars.length);
    const cuts = new Set([0, chars.length]);
    for (const s of spans) {
      cuts.add(s.start);
      cuts.add(s.end);
    }
    const points = Array.from(cuts).sort((a, b) => a - b);
    for (let i = 0; i + 1 < points.length; i++) {
      const [a, b] = [points[i], points[i + 1]];
      const piece = chars.slice(a, b).join("");
      const covering = spans.filter((s) => s.start <= a && s.end >= b);
      if (covering.length === 0) {
        el.text.appendChild(document.createTextNode(piece));
        continue;
      }
      const mark = make("mark", covering.length > 1 ? "span-mark nested" : "span-mark", piece);
      const label = labelsByName.get(covering[covering.length - 1].label);
      if (label && label.color) mark.style.setProperty("--label-color", label.color);
      mark.title = covering.map((s) => s.label).join(" + ");
      el.text.appendChild(mark);
    }
  }

  function renderMeta(data) {
    el.meta.textContent = "";
    for (const [key, val] of Object.entries(data || {})) {
      if (key === "text") continue;
      el.meta.appendChild(make("dt", null, key));
      el.meta.appendChild(make("dd", null, typeof val === "string" ? val : JSON.stringify(val)));
    }
    el.meta.hidden = el.meta.children.length === 0;
  }

  function renderAnnotations() {
    const task = state.task;
    const total = task.annotations.length;
    el.list.textContent = "";
    task.annotations.forEach((ann, i) => {
      const card = make("div", "ann-card");
      card.id = "ann-" + ann.id;
      card.setAttribute("role", "option");
      card.dataset.index = String(i);
      card.dataset.annotation = String(ann.id);
      const selected = i === state.selected;
      card.setAttribute("aria-selected", selected ? "true" : "false");
      if (selected) card.classList.add("selected");
      if (task.disagreement) card.classList.add(ann.agreeing * 2 > total ? "majority" : "minority");
      const head = make("div", "ann-head");
      head.appendChild(make("strong", "ann-annotator", ann.annotator));
      head.appendChild(make("span", "muted", ann.agreeing + " of " + total + " agree"));
      card.appendChild(head);
      card.appendChild(valueNode(ann.value, task.item.data.text));
      const foot = make("div", "ann-foot muted");
      const when = ann.created_at ? new Date(ann.created_at).toLocaleString() : "";
      foot.textContent =
        when +
        (ann.lead_time_ms != null ? " · " + Math.round(ann.lead_time_ms / 100) / 10 + " s" : "") +
        (ann.accepted_suggestion ? " · accepted the suggestion" : "");
      card.appendChild(foot);
      card.addEventListener("click", () => select(i));
      el.list.appendChild(card);
    });
    const current = task.annotations[state.selected];
    if (current) el.list.setAttribute("aria-activedescendant", "ann-" + current.id);
  }

  function render() {
    const task = state.task;
    el.loading.hidden = true;
    if (!task) {
      el.item.hidden = true;
      el.empty.hidden = false;
      el.waiting.textContent = "";
      return;
    }
    el.empty.hidden = true;
    el.item.hidden = false;
    el.externalId.textContent = task.item.external_id;
    el.disagreement.hidden = !task.disagreement;
    el.waiting.textContent = task.waiting + (task.waiting === 1 ? " item" : " items") + " awaiting review";
    renderMeta(task.item.data);
    const prediction = task.item.prediction;
    el.suggestion.hidden = !(prediction && prediction.value);
    if (prediction && prediction.value) {
      const unsure = typeof prediction.uncertainty === "number" ? " (uncertainty " + prediction.uncertainty.toFixed(2) + ")" : "";
      el.suggestion.textContent = "Model suggestion: " + describe(prediction.value) + unsure + ".";
    }
    renderAnnotations();
    renderText();
    closeCorrect();
  }

  function select(i) {
    if (!state.task) return;
    const n = state.task.annotations.length;
    state.selected = (i + n) % n;
    renderAnnotations();
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
      state.selected = 0;
      el.comment.value = "";
    } else {
      el.loading.hidden = true;
      fail(errorText(data, "Could not load the next item (HTTP " + status + ")."));
      return;
    }
    render();
    if (state.task) el.list.focus({ preventScroll: true });
  }

  async function send(verdict, value) {
    if (!state.task || state.busy) return;
    const ann = state.task.annotations[state.selected];
    const body = { verdict };
    if (value !== undefined) body.value = value;
    const comment = el.comment.value.trim();
    if (comment) body.comment = comment;
    state.busy = true;
    root.setAttribute("aria-busy", "true");
    try {
      const { status, data } = await api("POST", "/api/annotations/" + ann.id + "/review", body);
      if (status === 201 || status === 200) {
        const done =
          verdict === "reject"
            ? "Rejected item " + state.task.item.external_id + "."
            : (verdict === "approve" ? "Approved" : "Corrected") +
              " item " +
              state.task.item.external_id +
              ": " +
              describe(data.final) +
              ".";
        say(done);
        await loadNext();
      } else if (status === 409) {
        say("Someone else already decided item " + state.task.item.external_id + "; here is the next one.");
        await loadNext();
      } else {
        fail(errorText(data, "The verdict was not saved (HTTP " + status + ")."));
      }
    } catch (e) {
      fail("The verdict was not saved: the server could not be reached. Try again.");
    } finally {
      state.busy = false;
      root.removeAttribute("aria-busy");
    }
  }

  // ------------------------------------------------------------------ correct mode

  function openCorrect() {
    if (!state.task) return;
    const ann = state.task.annotations[state.selected];
    if (config.taskType === "classification") {
      state.correcting = { label: null };
      el.correctHint.textContent = "Press a label's key (or click it) to save it as the final label.";
    } else if (config.taskType === "multilabel") {
      state.correcting = { labels: new Set(ann.value.labels || []) };
      el.correctHint.textContent =
        "Starts from " + ann.annotator + "'s labels. Keys toggle labels; Enter saves the final label.";
    } else {
      state.correcting = { spans: (ann.value.spans || []).map((s) => ({ ...s, keep: true })) };
      el.correctHint.textContent =
        "Starts from " + ann.annotator + "'s spans. Number keys keep or drop a span; Enter saves the kept ones.";
    }
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
    const c = state.correcting;
    el.correctOptions.textContent = "";
    if (config.taskType === "spans") {
      const chars = codePoints(state.task.item.data.text);
      c.spans.forEach((s, i) => {
        const b = make("button", "btn label-option");
        b.type = "button";
        b.setAttribute("aria-pressed", s.keep ? "true" : "false");
        if (i < 9) b.appendChild(make("kbd", null, String(i + 1)));
        b.appendChild(chip(s.label));
        b.appendChild(make("span", null, " “" + chars.slice(s.start, s.end).join("") + "”" + (s.keep ? "" : " (dropped)")));
        b.addEventListener("click", () => toggleSpan(i));
        el.correctOptions.appendChild(b);
      });
      if (c.spans.length === 0) el.correctOptions.appendChild(make("span", "muted", "No spans: saving makes the final value empty."));
      return;
    }
    for (const label of config.labels) {
      const b = make("button", "btn label-option");
      b.type = "button";
      b.dataset.label = label.name;
      if (config.taskType === "multilabel") b.setAttribute("aria-pressed", c.labels.has(label.name) ? "true" : "false");
      if (label.hotkey) b.appendChild(make("kbd", null, label.hotkey.toUpperCase()));
      b.appendChild(chip(label.name));
      b.addEventListener("click", () => pickLabel(label));
      el.correctOptions.appendChild(b);
    }
  }

  function pickLabel(label) {
    const c = state.correcting;
    if (!c) return;
    if (config.taskType === "classification") {
      closeCorrect();
      send("correct", { label: label.name });
    } else if (config.taskType === "multilabel") {
      if (c.labels.has(label.name)) c.labels.delete(label.name);
      else c.labels.add(label.name);
      renderCorrect();
    }
  }

  function toggleSpan(i) {
    const s = state.correcting && state.correcting.spans && state.correcting.spans[i];
    if (!s) return;
    s.keep = !s.keep;
    renderCorrect();
  }

  function saveCorrect() {
    const c = state.correcting;
    if (!c || config.taskType === "classification") return;
    let value;
    if (config.taskType === "multilabel") {
      value = { labels: config.labels.map((l) => l.name).filter((n) => c.labels.has(n)) };
    } else {
      value = { spans: c.spans.filter((s) => s.keep).map((s) => ({ start: s.start, end: s.end, label: s.label })) };
    }
    closeCorrect();
    send("correct", value);
  }

  // ------------------------------------------------------------------ keys

  function typing(target) {
    return target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.isContentEditable);
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    if (el.help.open) return; // the dialog handles Esc itself
    if (typing(event.target)) {
      if (key === "Escape") {
        event.target.blur();
        el.list.focus({ preventScroll: true });
      }
      return;
    }
    if (key === "?") {
      event.preventDefault();
      el.help.showModal();
      return;
    }
    if (!state.task || state.busy) return;
    const lower = key.length === 1 ? key.toLowerCase() : key;

    if (state.correcting) {
      if (key === "Escape") {
        closeCorrect();
        el.list.focus({ preventScroll: true });
      } else if (key === "Enter") {
        if (event.target.tagName === "BUTTON" && el.correctOptions.contains(event.target)) {
          // Enter on a focused option button toggles it (native click); save with the Save button or Enter elsewhere
          if (config.taskType === "classification") return;
        }
        saveCorrect();
      } else if (config.taskType === "spans" && /^[1-9]$/.test(key)) {
        toggleSpan(Number(key) - 1);
      } else if (labelByKey.has(lower) && config.taskType !== "spans") {
        pickLabel(labelByKey.get(lower));
      } else {
        return;
      }
      event.preventDefault();
      return;
    }

    switch (lower) {
      case "j":
      case "ArrowDown":
      case "ArrowRight":
        select(state.selected + 1);
        break;
      case "k":
      case "ArrowUp":
      case "ArrowLeft":
        select(state.selected - 1);
        break;
      case "a":
        send("approve");
        break;
      case "r":
        send("reject");
        break;
      case "c":
        openCorrect();
        break;
      case "/":
        el.comment.focus();
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  $("review-approve").addEventListener("click", () => send("approve"));
  $("review-reject").addEventListener("click", () => send("reject"));
  $("review-correct-open").addEventListener("click", openCorrect);
  $("review-correct-save").addEventListener("click", () => {
    if (config.taskType === "classification") {
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
})();
