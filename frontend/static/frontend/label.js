// Tandem labeling page: a keyboard-first loop over the REST API (docs/frontend.md).
//
// - GET /api/projects/{id}/next?exclude=…  → the item (plus one prefetched while the expert works)
// - POST /api/items/{id}/annotations with an Idempotency-Key, sent in the background from an outbox
//   kept in localStorage until the server acknowledges it (so an offline submit is retried, never lost
//   and never doubled); POST /api/items/{id}/skip; PATCH /api/annotations/{id}/ for undo.
// - Offsets in values are Python characters (Unicode code points); JS strings are UTF-16, so every
//   offset is converted at the boundary (codePointIndex). The text is rendered with textContent only.

const cfg = JSON.parse(document.getElementById("label-config").textContent);
const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
const $ = (id) => document.getElementById(id);
const TASK = cfg.taskType;
const LABELS = cfg.labels.map((l) => l.name);
const LABEL_ORDER = new Map(LABELS.map((n, i) => [n, i]));
const HOTKEYS = new Map(cfg.labels.filter((l) => l.hotkey).map((l) => [l.hotkey.toLowerCase(), l.name]));
const COLORS = new Map(cfg.labels.map((l) => [l.name, /^#[0-9a-f]{3,8}$/i.test(l.color) ? l.color : "#6b7280"]));
const PREFETCH_MAX_EXCLUDE = 5;

// ---------------------------------------------------------------- offsets (code points <-> UTF-16)
export function codePointIndex(text) {
  const cpToU16 = [];
  const u16ToCp = new Int32Array(text.length + 1);
  let u = 0;
  let cp = 0;
  for (const ch of text) {
    cpToU16.push(u);
    for (let k = 0; k < ch.length; k++) u16ToCp[u + k] = cp;
    u += ch.length;
    cp += 1;
  }
  cpToU16.push(u);
  u16ToCp[u] = cp;
  return { cpToU16, u16ToCp, length: cp };
}

// ---------------------------------------------------------------- storage (drafts + outbox)
const store = {
  get(k) {
    try {
      return JSON.parse(localStorage.getItem(k));
    } catch {
      return null;
    }
  },
  set(k, v) {
    try {
      localStorage.setItem(k, JSON.stringify(v));
    } catch {
      /* storage full or disabled: the page still works, without drafts */
    }
  },
  del(k) {
    try {
      localStorage.removeItem(k);
    } catch {
      /* ignore */
    }
  },
};
const draftKey = (itemId) => `tandem:draft:${cfg.user}:${itemId}`;
const OUTBOX_KEY = `tandem:outbox:${cfg.user}:${cfg.project}`;
const CURRENT_KEY = `tandem:current:${cfg.user}:${cfg.project}`;
const outbox = {
  all() {
    return store.get(OUTBOX_KEY) || [];
  },
  add(entry) {
    store.set(OUTBOX_KEY, [...this.all().filter((e) => e.key !== entry.key), entry]);
  },
  remove(key) {
    store.set(OUTBOX_KEY, this.all().filter((e) => e.key !== key));
  },
  itemIds() {
    return this.all().map((e) => e.item);
  },
};

function newKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b); // works outside secure contexts too (unlike crypto.randomUUID)
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// ---------------------------------------------------------------- values
function emptyValue() {
  if (TASK === "classification") return { label: null };
  if (TASK === "multilabel") return { labels: [] };
  return { spans: [] };
}

function canonical(value) {
  if (!value) return null;
  if (TASK === "classification") return { label: value.label ?? null };
  if (TASK === "multilabel") {
    const labels = [...new Set(value.labels || [])].filter((l) => LABEL_ORDER.has(l));
    labels.sort((a, b) => LABEL_ORDER.get(a) - LABEL_ORDER.get(b));
    return { labels };
  }
  const seen = new Set();
  const spans = [];
  for (const s of value.spans || []) {
    const key = `${s.start}:${s.end}:${s.label}`;
    if (!seen.has(key) && LABEL_ORDER.has(s.label)) {
      seen.add(key);
      spans.push({ start: s.start, end: s.end, label: s.label });
    }
  }
  spans.sort((a, b) => a.start - b.start || a.end - b.end || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  return { spans };
}

const sameValue = (a, b) => JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));

function isComplete(value) {
  return TASK !== "classification" || (value && value.label);
}

function suggestionOf(item) {
  const p = item.prediction;
  if (!p || !p.value || typeof p.value !== "object") return null;
  const v = canonical(p.value);
  if (TASK === "classification" && !LABEL_ORDER.has(v.label)) return null;
  if (TASK === "spans") {
    const n = codePointIndex(item.data.text || "").length;
    v.spans = v.spans.filter((s) => Number.isInteger(s.start) && Number.isInteger(s.end) && s.start >= 0 && s.start < s.end && s.end <= n);
  }
  return v;
}

function confidenceOf(item, label) {
  const probs = item.prediction && item.prediction.probabilities;
  const p = probs && typeof probs[label] === "number" ? probs[label] : null;
  return p;
}

const pct = (p) => `${Math.round(p * 100)}%`;

// ---------------------------------------------------------------- HTTP
async function api(method, url, { body, headers } = {}) {
  const h = { Accept: "application/json", ...(headers || {}) };
  if (method !== "GET") h["X-CSRFToken"] = csrfToken;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const res = await fetch(url, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  let data = null;
  if (res.status !== 204) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  }
  return { status: res.status, data };
}

function errorText(data, fallback) {
  if (!data || typeof data !== "object") return fallback;
  const parts = [data.detail || fallback];
  for (const e of data.errors || []) parts.push(e.field ? `${e.field}: ${e.message}` : e.message);
  return parts.filter(Boolean).join(" ");
}

// ---------------------------------------------------------------- state
const S = {
  current: null, // the item shown (JSON of /next)
  idx: null, // codePointIndex of its text
  value: emptyValue(),
  suggestion: null,
  renderedAt: 0,
  editing: null, // {item, value, key, annotationId} while undo reopened the last answer
  stashed: null, // the item undo displaced; shown again when the edit is done
  prefetched: null,
  prefetchSupported: true, // false once the server showed it ignores ?exclude=
  prefetching: null,
  lastSubmitted: null,
  sending: new Map(), // Idempotency-Key -> promise of the POST
  reasonsOn: false,
  reasonsWanted: true, // the expert's choice (R toggles it): reasons shown for every suggestion by default
  reasons: new Map(), // item id -> tokens
  kb: null, // keyboard selection in span tasks: {anchor, focus} token indices
  tokens: [],
  submitT0: null,
  done: cfg.progress ? cfg.progress.done : 0,
  left: cfg.progress ? cfg.progress.left : 0,
  retryTimer: null,
  retryDelay: 1000,
  waitingForSave: false,
};

// ---------------------------------------------------------------- messages
function say(text) {
  $("status").textContent = text;
}
function alertMsg(text) {
  const el = $("alert");
  el.textContent = text;
  el.hidden = !text;
}
function setState(state) {
  document.body.dataset.state = state;
}
function updateProgress() {
  const total = S.done + S.left;
  $("progress").max = Math.max(total, 1);
  $("progress").value = S.done;
  $("progress-text").textContent = `${S.done} done · ${Math.max(S.left, 0)} left`;
  document.body.dataset.outbox = String(outbox.all().length);
}

// ---------------------------------------------------------------- loading items
function nextUrl(exclude) {
  const ids = [...new Set(exclude.filter((x) => x != null))].slice(0, PREFETCH_MAX_EXCLUDE);
  const q = ids.length ? `?exclude=${ids.join(",")}` : "";
  return `/api/projects/${cfg.project}/next${q}`;
}

async function fetchNext(exclude) {
  const res = await api("GET", nextUrl(exclude));
  if (res.status === 200) return res.data;
  if (res.status === 204) return null;
  if (res.status === 401 || res.status === 403) {
    throw Object.assign(new Error(errorText(res.data, "Not allowed.")), { fatal: true });
  }
  throw new Error(errorText(res.data, `The server answered ${res.status}.`));
}

function inflightIds() {
  return outbox.itemIds();
}

async function loadNext() {
  setState("loading");
  say("Loading the next item…");
  let item;
  try {
    item = await fetchNext(inflightIds());
  } catch (err) {
    if (err.fatal) {
      alertMsg(`${err.message} Your session may have ended: reload the page and log in again.`);
      setState("error");
      return;
    }
    say("Can't reach the server; retrying…");
    setTimeout(loadNext, 2000);
    return;
  }
  if (item && inflightIds().includes(item.id)) {
    // the server still holds this item for us because the answer is not saved yet (offline)
    S.waitingForSave = true;
    say("Saving your last answer… (the next item loads once it is saved)");
    setState("waiting");
    scheduleRetry();
    return;
  }
  if (!item) return showEmpty();
  showItem(item);
}

function showEmpty() {
  S.current = null;
  $("workspace").hidden = true;
  $("empty").hidden = false;
  S.left = 0;
  updateProgress();
  delete document.body.dataset.itemId;
  setState("empty");
  say(outbox.all().length ? "Nothing left to label; some answers are still being saved." : "Nothing left to label.");
}

async function prefetch() {
  if (!S.prefetchSupported || S.prefetched || S.prefetching || !S.current || S.editing) return;
  const forItem = S.current.id;
  document.body.dataset.prefetch = "pending";
  const exclude = [forItem, ...inflightIds(), S.stashed && S.stashed.id];
  const run = (async () => {
    let item;
    try {
      item = await fetchNext(exclude);
    } catch {
      return; // try again on the next render
    }
    if (!item) {
      document.body.dataset.prefetch = "none";
      return; // nothing else now; after the submit we ask again
    }
    if (item.id === forItem || exclude.includes(item.id)) {
      // this server ignores ?exclude= and hands back the item we hold: fetch after each submit instead
      S.prefetchSupported = false;
      document.body.dataset.prefetch = "off";
      return;
    }
    if (S.current && item.id === S.current.id) return;
    S.prefetched = item;
    document.body.dataset.prefetch = "ready";
  })();
  S.prefetching = run;
  try {
    await run;
  } finally {
    S.prefetching = null;
  }
}

// ---------------------------------------------------------------- rendering
function showItem(item, { value = null, editing = null } = {}) {
  S.current = item;
  S.editing = editing;
  S.idx = codePointIndex(item.data.text || "");
  S.suggestion = suggestionOf(item);
  S.kb = null;
  S.tokens = [];
  S.reasonsOn = S.reasonsWanted && !!item.prediction;
  const draft = editing ? null : store.get(draftKey(item.id));
  if (value) S.value = JSON.parse(JSON.stringify(value));
  else if (draft && draft.value) S.value = draft.value;
  else if (S.suggestion) S.value = JSON.parse(JSON.stringify(S.suggestion));
  else S.value = emptyValue();
  if (!editing) store.set(CURRENT_KEY, item.id);

  $("empty").hidden = true;
  $("workspace").hidden = false;
  $("item-id").textContent = `Item ${item.external_id}`;
  $("edit-badge").hidden = !editing;
  $("undo").disabled = !S.lastSubmitted || !!editing;
  $("skip").disabled = !!editing;
  renderMeta();
  renderSuggestion();
  renderLabels();
  renderText();
  $("text").scrollTop = 0;
  $("reasons-toggle").hidden = !item.prediction;
  $("reasons-toggle").setAttribute("aria-pressed", String(S.reasonsOn));
  $("reasons-status").textContent = "";
  if (S.reasonsOn) loadReasons(item.id);
  alertMsgKeepOnce();
  S.renderedAt = performance.now();
  document.body.dataset.itemId = String(item.id);
  setState(editing ? "editing" : "ready");
  updateProgress();
  if (S.submitT0 !== null && !editing) {
    const ms = S.renderedAt - S.submitT0;
    performance.measure("tandem:submit-to-render", { start: S.submitT0, end: S.renderedAt });
    document.body.dataset.lastSubmitToRenderMs = ms.toFixed(2);
    S.submitT0 = null;
  }
  say(editing ? `Editing your answer for item ${item.external_id}. Enter saves, Escape cancels.` : `Item ${item.external_id}.`);
  if (!editing) prefetch();
}

let keepAlert = false;
function alertMsgKeepOnce() {
  if (keepAlert) keepAlert = false;
  else alertMsg("");
}

function renderMeta() {
  const dl = $("meta");
  dl.replaceChildren();
  for (const [k, v] of Object.entries(S.current.data || {})) {
    if (k === "text") continue;
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = typeof v === "string" ? v : JSON.stringify(v);
    dl.append(dt, dd);
  }
  dl.hidden = dl.childElementCount === 0;
}

function renderSuggestion() {
  const el = $("suggestion");
  const sug = S.suggestion;
  el.replaceChildren();
  if (!sug) {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  const head = document.createElement("strong");
  head.textContent = "Model suggestion: ";
  const body = document.createElement("span");
  if (TASK === "classification") {
    const p = confidenceOf(S.current, sug.label);
    body.textContent = `${sug.label}${p !== null ? ` (${pct(p)} confident)` : ""}`;
  } else if (TASK === "multilabel") {
    body.textContent = sug.labels.length
      ? sug.labels.map((l) => {
          const p = confidenceOf(S.current, l);
          return p !== null ? `${l} (${pct(p)})` : l;
        }).join(", ")
      : "none of the labels";
  } else {
    body.textContent = `${sug.spans.length} span${sug.spans.length === 1 ? "" : "s"}, pre-filled below`;
  }
  const hint = document.createElement("span");
  hint.className = "hint";
  hint.textContent = " — pre-selected; press Enter to accept.";
  el.append(head, body, hint);
  if (S.current.prediction.model_version != null) el.title = `model version ${S.current.prediction.model_version}`;
}

function renderLabels() {
  const box = $("labels");
  if (!box.childElementCount) {
    for (const lab of cfg.labels) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "label-btn";
      b.dataset.label = lab.name;
      b.style.setProperty("--label-color", COLORS.get(lab.name));
      // the accessible name is the visible text (WCAG 2.5.3), plus a visually hidden verb
      const verb = document.createElement("span");
      verb.className = "visually-hidden";
      verb.textContent = TASK === "spans" ? "Label the selection as " : TASK === "multilabel" ? "Toggle " : "Choose ";
      const name = document.createElement("span");
      name.className = "label-name";
      name.textContent = lab.name;
      b.append(verb, name);
      if (lab.hotkey) {
        const k = document.createElement("kbd");
        k.textContent = lab.hotkey;
        b.append(" ", k);
      }
      const badge = document.createElement("span");
      badge.className = "suggested-badge";
      b.append(badge);
      b.addEventListener("click", () => chooseLabel(lab.name));
      box.append(b);
    }
  }
  for (const b of box.querySelectorAll(".label-btn")) {
    const name = b.dataset.label;
    let pressed = false;
    let suggested = false;
    if (TASK === "classification") {
      pressed = S.value.label === name;
      suggested = !!S.suggestion && S.suggestion.label === name;
    } else if (TASK === "multilabel") {
      pressed = S.value.labels.includes(name);
      suggested = !!S.suggestion && S.suggestion.labels.includes(name);
    }
    if (TASK !== "spans") b.setAttribute("aria-pressed", String(pressed));
    b.classList.toggle("suggested", suggested);
    const p = S.current ? confidenceOf(S.current, name) : null;
    const badge = b.querySelector(".suggested-badge");
    badge.textContent = suggested ? `suggested${p !== null ? ` ${pct(p)}` : ""}` : "";
  }
  renderSpanList();
}

function renderSpanList() {
  const wrap = $("spans-list-wrap");
  if (TASK !== "spans") {
    wrap.hidden = true;
    return;
  }
  wrap.hidden = false;
  const ul = $("spans-list");
  const text = S.current.data.text || "";
  const focusedKey = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.spanKey : null;
  ul.replaceChildren();
  const sugKeys = new Set((S.suggestion ? S.suggestion.spans : []).map((s) => `${s.start}:${s.end}:${s.label}`));
  const sugScores = new Map(
    ((S.current.prediction && S.current.prediction.value && S.current.prediction.value.spans) || []).map((s) => [
      `${s.start}:${s.end}:${s.label}`,
      s.score,
    ]),
  );
  S.value.spans.forEach((s, i) => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "span-chip";
    b.dataset.index = String(i);
    b.dataset.spanKey = `${s.start}:${s.end}:${s.label}`;
    b.style.setProperty("--label-color", COLORS.get(s.label));
    const quote = text.slice(S.idx.cpToU16[s.start], S.idx.cpToU16[s.end]);
    const lab = document.createElement("span");
    lab.className = "chip-label";
    lab.textContent = s.label;
    const q = document.createElement("span");
    q.className = "chip-text";
    q.textContent = quote.length > 60 ? `${quote.slice(0, 57)}…` : quote;
    const pos = document.createElement("span");
    pos.className = "chip-pos";
    pos.textContent = `${s.start}–${s.end}`;
    const verb = document.createElement("span");
    verb.className = "visually-hidden";
    verb.textContent = "Remove span ";
    b.append(verb, lab, " ", q, " ", pos);
    const key = b.dataset.spanKey;
    if (sugKeys.has(key)) {
      const sc = sugScores.get(key);
      const badge = document.createElement("span");
      badge.className = "suggested-badge";
      badge.textContent = `suggested${typeof sc === "number" ? ` ${pct(sc)}` : ""}`;
      b.append(" ", badge);
    }
    b.title = `Remove: ${s.label} “${quote}” (characters ${s.start}–${s.end})`;
    b.addEventListener("click", () => removeSpan(i));
    li.append(b);
    ul.append(li);
  });
  if (focusedKey) {
    const again = ul.querySelector(`[data-span-key="${CSS.escape(focusedKey)}"]`);
    if (again) again.focus();
  }
}

// The text: one text node when nothing is marked; else segments split at every span / reason boundary.
function renderText() {
  const el = $("text");
  const text = S.current.data.text || "";
  const cp = S.idx.cpToU16;
  const spans = TASK === "spans" ? S.value.spans.map((s, i) => ({ ...s, i, a: cp[s.start], b: cp[s.end] })) : [];
  const tokens = S.reasonsOn ? S.reasons.get(S.current.id) || [] : [];
  const maxW = Math.max(0, ...tokens.map((t) => Math.max(0, Number(t.weight) || 0)));
  const reasons = tokens
    .filter((t) => Number.isInteger(t.start) && Number.isInteger(t.end) && t.end > t.start && t.end <= S.idx.length)
    .map((t) => ({ a: cp[t.start], b: cp[t.end], w: maxW > 0 ? Math.max(0, Number(t.weight) || 0) / maxW : 0 }));
  el.classList.toggle("reasons-on", S.reasonsOn && reasons.length > 0);
  if (!spans.length && !reasons.length) {
    el.textContent = text;
    return;
  }
  const cuts = new Set([0, text.length]);
  for (const s of spans) cuts.add(s.a).add(s.b);
  for (const r of reasons) cuts.add(r.a).add(r.b);
  const points = [...cuts].filter((x) => x >= 0 && x <= text.length).sort((x, y) => x - y);
  const frag = document.createDocumentFragment();
  for (let k = 0; k < points.length - 1; k++) {
    const a = points[k];
    const b = points[k + 1];
    if (a === b) continue;
    const piece = text.slice(a, b);
    const covering = spans.filter((s) => s.a <= a && s.b >= b).sort((x, y) => y.b - y.a - (x.b - x.a));
    const w = Math.max(0, ...reasons.filter((r) => r.a <= a && r.b >= b).map((r) => r.w));
    if (!covering.length && w <= 0) {
      frag.append(document.createTextNode(piece));
      continue;
    }
    const seg = document.createElement("span");
    seg.className = "seg";
    seg.textContent = piece;
    if (w > 0) {
      seg.classList.add("reason");
      seg.style.setProperty("--w", w.toFixed(3));
    }
    if (covering.length) {
      const inner = covering[covering.length - 1];
      seg.classList.add("span");
      seg.dataset.spans = covering.map((s) => s.i).join(",");
      seg.style.setProperty("--label-color", COLORS.get(inner.label));
      // one underline per nesting level, outermost lowest
      seg.style.setProperty(
        "box-shadow",
        covering.map((s, depth) => `inset 0 -${3 * (covering.length - depth)}px 0 ${COLORS.get(s.label)}`).join(", "),
      );
      if (covering.some((s) => s.a === a)) seg.classList.add("s-start");
      const ending = covering.filter((s) => s.b === b);
      if (ending.length) {
        seg.classList.add("s-end");
        seg.dataset.endLabel = ending.map((s) => s.label).join(" / ");
      }
      seg.title = covering.map((s) => s.label).join(" › ");
    }
    frag.append(seg);
  }
  el.replaceChildren(frag);
}

// ---------------------------------------------------------------- reasons (explanations)
async function loadReasons(itemId) {
  if (S.reasons.has(itemId)) {
    renderText();
    return;
  }
  const status = $("reasons-status");
  status.textContent = "Computing the reasons…";
  const delays = [250, 500, 1000, 1500, 2000]; // ≈ 5 s in all
  for (let attempt = 0; ; attempt++) {
    let res;
    try {
      res = await api("GET", `/api/items/${itemId}/explanation`);
    } catch {
      status.textContent = "Can't reach the server for the reasons.";
      return;
    }
    if (!S.current || S.current.id !== itemId || !S.reasonsOn) return;
    if (res.status === 200 && res.data && Array.isArray(res.data.tokens)) {
      S.reasons.set(itemId, res.data.tokens);
      status.textContent = `Highlighted: the words that weighed most for “${res.data.label ?? "the suggestion"}”.`;
      renderText();
      return;
    }
    if (res.status === 404) {
      status.textContent = "There are no reasons for this item (no model suggestion).";
      return;
    }
    if (res.status !== 202 || attempt >= delays.length) {
      status.textContent =
        res.status === 202 ? "The reasons are still being computed; press R again in a moment." : errorText(res.data, "No reasons available.");
      return;
    }
    await new Promise((r) => setTimeout(r, delays[attempt]));
  }
}

function toggleReasons() {
  if (!S.current || !S.current.prediction) return;
  S.reasonsOn = !S.reasonsOn;
  S.reasonsWanted = S.reasonsOn;
  $("reasons-toggle").setAttribute("aria-pressed", String(S.reasonsOn));
  if (S.reasonsOn) loadReasons(S.current.id);
  else {
    $("reasons-status").textContent = "";
    renderText();
  }
}

// ---------------------------------------------------------------- editing the value
function changed() {
  if (!S.editing && S.current) store.set(draftKey(S.current.id), { value: S.value, at: Date.now() });
  renderLabels();
  if (TASK === "spans") renderText();
}

function chooseLabel(name) {
  if (!S.current) return;
  if (TASK === "classification") {
    S.value = { label: name };
  } else if (TASK === "multilabel") {
    const set = new Set(S.value.labels);
    if (set.has(name)) set.delete(name);
    else set.add(name);
    S.value = { labels: [...set] };
  } else {
    const sel = selectionOffsets();
    if (!sel) {
      say("Select some text first (mouse, or Shift+arrow keys), then press a label's key.");
      return;
    }
    if (!S.value.spans.some((s) => s.start === sel.start && s.end === sel.end && s.label === name)) {
      S.value = { spans: [...S.value.spans, { start: sel.start, end: sel.end, label: name }] };
    }
    window.getSelection().removeAllRanges();
    if (S.kb) S.kb = { anchor: S.kb.focus, focus: S.kb.focus };
    say(`${name}: characters ${sel.start} to ${sel.end}.`);
  }
  changed();
}

function removeSpan(i) {
  const spans = S.value.spans.slice();
  const [gone] = spans.splice(i, 1);
  if (!gone) return;
  S.value = { spans };
  say(`Removed ${gone.label} (${gone.start}–${gone.end}).`);
  changed();
  const chips = $("spans-list").querySelectorAll(".span-chip");
  if (chips.length) chips[Math.min(i, chips.length - 1)].focus();
  else $("text").focus();
}

// the current text selection in code points, whitespace trimmed; null if none inside the text
function selectionOffsets() {
  const el = $("text");
  const sel = window.getSelection();
  if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
  const range = sel.getRangeAt(0);
  if (!range.intersectsNode(el)) return null;
  const all = document.createRange();
  all.selectNodeContents(el);
  const text = S.current.data.text || "";
  const offsetOf = (node, off) => {
    const r = document.createRange();
    r.setStart(el, 0);
    r.setEnd(node, off);
    return r.toString().length;
  };
  let a = range.compareBoundaryPoints(Range.START_TO_START, all) <= 0 ? 0 : offsetOf(range.startContainer, range.startOffset);
  let b = range.compareBoundaryPoints(Range.END_TO_END, all) >= 0 ? text.length : offsetOf(range.endContainer, range.endOffset);
  while (a < b && /\s/.test(text[a])) a++;
  while (b > a && /\s/.test(text[b - 1])) b--;
  // never split a surrogate pair (an emoji is two UTF-16 units and one Python character)
  if (a > 0 && /[\uDC00-\uDFFF]/.test(text[a])) a--;
  if (b < text.length && /[\uDC00-\uDFFF]/.test(text[b])) b++;
  if (a >= b) return null;
  return { start: S.idx.u16ToCp[a], end: S.idx.u16ToCp[b] };
}

// keyboard selection: words (letters, digits, marks) and single punctuation characters are the steps
function textTokens() {
  if (!S.tokens.length) {
    const text = S.current.data.text || "";
    S.tokens = [...text.matchAll(/[\p{L}\p{N}\p{M}_]+|[^\s\p{L}\p{N}\p{M}_]/gu)].map((m) => [m.index, m.index + m[0].length]);
  }
  return S.tokens;
}

function domPoint(u16) {
  const el = $("text");
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  let seen = 0;
  let node = walker.nextNode();
  while (node) {
    const len = node.data.length;
    if (u16 <= seen + len) return [node, u16 - seen];
    seen += len;
    node = walker.nextNode();
  }
  return [el, el.childNodes.length];
}

function moveKeyboardSelection(dir, extend) {
  const toks = textTokens();
  if (!toks.length) return;
  if (!S.kb) {
    const i = dir > 0 ? 0 : toks.length - 1;
    S.kb = { anchor: i, focus: i };
  } else {
    const f = Math.min(toks.length - 1, Math.max(0, S.kb.focus + dir));
    S.kb = extend ? { anchor: S.kb.anchor, focus: f } : { anchor: f, focus: f };
  }
  const lo = Math.min(S.kb.anchor, S.kb.focus);
  const hi = Math.max(S.kb.anchor, S.kb.focus);
  const [sn, so] = domPoint(toks[lo][0]);
  const [en, eo] = domPoint(toks[hi][1]);
  const r = document.createRange();
  r.setStart(sn, so);
  r.setEnd(en, eo);
  const sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(r);
  const box = sn.parentElement;
  if (box && box.scrollIntoView) box.scrollIntoView({ block: "nearest" });
  say(`Selected: ${(S.current.data.text || "").slice(toks[lo][0], toks[hi][1])}`);
}

// ---------------------------------------------------------------- submit, skip, undo (outbox)
function send(entry) {
  if (S.sending.has(entry.key)) return S.sending.get(entry.key);
  const p = (async () => {
    let res;
    try {
      res =
        entry.kind === "skip"
          ? await api("POST", `/api/items/${entry.item}/skip`, { headers: { "Idempotency-Key": entry.key } })
          : await api("POST", `/api/items/${entry.item}/annotations`, { body: entry.body, headers: { "Idempotency-Key": entry.key } });
    } catch {
      scheduleRetry();
      return { outcome: "offline" };
    } finally {
      S.sending.delete(entry.key);
    }
    if (res.status === 200 || res.status === 201 || res.status === 204) {
      outbox.remove(entry.key);
      store.del(draftKey(entry.item));
      if (S.lastSubmitted && S.lastSubmitted.key === entry.key && res.data) S.lastSubmitted.annotationId = res.data.id;
      updateProgress();
      return { outcome: "ok", data: res.data };
    }
    if (res.status >= 500 || res.status === 429) {
      scheduleRetry();
      return { outcome: "offline" };
    }
    const detail = (res.data && res.data.detail) || "";
    if (res.status === 401 || (res.status === 403 && /CSRF/i.test(detail))) {
      // the session ended: keep the answer (same key) and send it once the expert has logged in again
      keepAlert = true;
      alertMsg("Your session has ended. Log in again (in another tab), then come back: your answers are kept and will be sent.");
      scheduleRetry();
      return { outcome: "offline" };
    }
    outbox.remove(entry.key);
    updateProgress();
    if (res.status === 409) {
      store.del(draftKey(entry.item));
      keepAlert = true;
      alertMsg(`Item ${entry.external_id || entry.item}: ${errorText(res.data, "this item's slots were taken meanwhile")} Your answer was not needed there; moving on.`);
      if (S.lastSubmitted && S.lastSubmitted.key === entry.key) S.lastSubmitted = null;
      $("undo").disabled = !S.lastSubmitted || !!S.editing;
      return { outcome: "gone" };
    }
    keepAlert = true;
    alertMsg(`Item ${entry.external_id || entry.item}: ${errorText(res.data, `not saved (HTTP ${res.status}).`)}`);
    return { outcome: "error" };
  })();
  S.sending.set(entry.key, p);
  return p;
}

function scheduleRetry() {
  if (S.retryTimer) return;
  S.retryTimer = setTimeout(() => {
    S.retryTimer = null;
    flushOutbox();
  }, S.retryDelay);
  S.retryDelay = Math.min(S.retryDelay * 2, 30000);
}

async function flushOutbox() {
  const entries = outbox.all();
  if (!entries.length) return;
  const results = await Promise.all(entries.map((e) => send(e)));
  if (results.every((r) => r.outcome !== "offline")) S.retryDelay = 1000;
  updateProgress();
  if (S.waitingForSave && !outbox.all().length) {
    S.waitingForSave = false;
    loadNext();
  } else if (S.waitingForSave) {
    scheduleRetry();
  }
}

async function advance(sending) {
  if (S.stashed) {
    const item = S.stashed;
    S.stashed = null;
    showItem(item);
    return;
  }
  if (S.prefetched) {
    const item = S.prefetched;
    S.prefetched = null;
    document.body.dataset.prefetch = "";
    showItem(item); // at once: the answer goes to the server in the background
    return;
  }
  S.current = null;
  setState("loading");
  say("Saving…");
  if (S.prefetching) await S.prefetching;
  if (S.prefetched) return advance(sending);
  await sending;
  loadNext();
}

function submit() {
  if (!S.current) return;
  if (!isComplete(S.value)) {
    say("Choose a label first (its key, or click it).");
    return;
  }
  if (S.editing) return submitEdit();
  const item = S.current;
  const value = canonical(S.value);
  const body = { value, lead_time_ms: Math.max(0, Math.round(performance.now() - S.renderedAt)) };
  if (S.suggestion) body.accepted_suggestion = sameValue(value, S.suggestion);
  const entry = { kind: "annotate", key: newKey(), item: item.id, external_id: item.external_id, body, at: Date.now() };
  outbox.add(entry);
  S.lastSubmitted = { item, value, key: entry.key, annotationId: null };
  S.done += 1;
  S.left = Math.max(0, S.left - 1);
  S.submitT0 = performance.now();
  const sending = send(entry);
  advance(sending);
}

function skip() {
  if (!S.current || S.editing) return;
  const item = S.current;
  const entry = { kind: "skip", key: newKey(), item: item.id, external_id: item.external_id, at: Date.now() };
  outbox.add(entry);
  S.left = Math.max(0, S.left - 1);
  S.submitT0 = performance.now();
  say(`Skipped item ${item.external_id}.`);
  advance(send(entry));
}

function undo() {
  if (!S.lastSubmitted || S.editing || !S.current) {
    if (!S.lastSubmitted) say("Nothing to undo yet.");
    return;
  }
  S.stashed = S.current;
  const last = S.lastSubmitted;
  showItem(last.item, { value: last.value, editing: last });
}

function cancelEdit() {
  if (!S.editing) return;
  const item = S.stashed;
  S.stashed = null;
  S.editing = null;
  if (item) showItem(item);
  else loadNext();
}

async function submitEdit() {
  const last = S.editing;
  const value = canonical(S.value);
  say("Saving your change…");
  let id = last.annotationId;
  if (!id) {
    const entry = outbox.all().find((e) => e.key === last.key);
    const r = entry ? await send(entry) : null;
    id = last.annotationId || (r && r.data && r.data.id);
    if (!id) {
      alertMsg("Your earlier answer is not saved yet (offline?), so it cannot be changed now. Try again in a moment.");
      return;
    }
  }
  let res;
  try {
    res = await api("PATCH", `/api/annotations/${id}/`, { body: { value } });
  } catch {
    alertMsg("Can't reach the server to save the change; try again.");
    return;
  }
  if (res.status !== 200) {
    alertMsg(errorText(res.data, `The change was not saved (HTTP ${res.status}).`));
    return;
  }
  last.value = value;
  last.annotationId = id;
  keepAlert = true;
  alertMsg("");
  say(`Changed your answer for item ${last.item.external_id}.`);
  S.editing = null;
  const item = S.stashed;
  S.stashed = null;
  if (item) showItem(item);
  else loadNext();
}

// ---------------------------------------------------------------- keyboard
function toggleHelp() {
  const d = $("help");
  if (d.open) d.close();
  else d.showModal();
}

function toggleGuidelines() {
  const g = $("guidelines");
  if (g.hidden) return;
  g.open = !g.open;
}

document.addEventListener("keydown", (ev) => {
  if (ev.defaultPrevented || ev.isComposing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target instanceof Element ? ev.target : null;
  if (t && t.closest("input, textarea, select, [contenteditable='true'], [contenteditable='']")) return;
  if ($("help").open) {
    if (ev.key === "?") {
      ev.preventDefault();
      toggleHelp();
    }
    return; // the dialog closes itself on Escape
  }
  const key = ev.key;
  if (key === "?") {
    ev.preventDefault();
    toggleHelp();
    return;
  }
  if (!S.current) return;
  if (key === "Enter") {
    // a focused control keeps its own Enter (a label button chooses, a link follows), except span chips:
    // there Enter submits, and Backspace / Delete / click remove
    if (t && t.matches("button, a, summary") && t.id !== "submit" && !t.classList.contains("span-chip")) return;
    ev.preventDefault();
    submit();
    return;
  }
  const lower = key.length === 1 ? key.toLowerCase() : key;
  if (HOTKEYS.has(lower)) {
    ev.preventDefault();
    chooseLabel(HOTKEYS.get(lower));
    return;
  }
  if (lower === "s") {
    ev.preventDefault();
    skip();
  } else if (lower === "u") {
    ev.preventDefault();
    undo();
  } else if (lower === "r") {
    ev.preventDefault();
    toggleReasons();
  } else if (lower === "g") {
    ev.preventDefault();
    toggleGuidelines();
  } else if (key === "Escape") {
    if (S.editing) cancelEdit();
    else {
      window.getSelection().removeAllRanges();
      S.kb = null;
    }
  } else if (TASK === "spans" && (key === "ArrowRight" || key === "ArrowLeft")) {
    if (t && t.closest("#labels, .actions, #spans-list, details")) return;
    ev.preventDefault();
    moveKeyboardSelection(key === "ArrowRight" ? 1 : -1, ev.shiftKey);
  } else if (TASK === "spans" && (key === "Backspace" || key === "Delete")) {
    ev.preventDefault();
    const chip = t && t.closest(".span-chip");
    if (chip) removeSpan(Number(chip.dataset.index));
    else if (S.value.spans.length) removeSpan(S.value.spans.length - 1);
  }
});

$("submit").addEventListener("click", submit);
$("skip").addEventListener("click", skip);
$("undo").addEventListener("click", undo);
$("reasons-toggle").addEventListener("click", toggleReasons);
$("help-open").addEventListener("click", toggleHelp);
$("check-again").addEventListener("click", () => loadNext());
window.addEventListener("online", () => {
  S.retryDelay = 1000;
  flushOutbox();
});

// ---------------------------------------------------------------- start
async function start() {
  updateProgress();
  flushOutbox(); // answers a previous visit could not send
  setState("loading");
  let first;
  try {
    first = await fetchNext(inflightIds());
  } catch (err) {
    if (err.fatal) {
      alertMsg(`${err.message} Reload the page and log in again.`);
      setState("error");
      return;
    }
    say("Can't reach the server; retrying…");
    setTimeout(loadNext, 2000);
    return;
  }
  if (!first) return showEmpty();
  if (inflightIds().includes(first.id)) {
    S.waitingForSave = true;
    say("Saving your last answer…");
    setState("waiting");
    return;
  }
  // After a reload the server may hand back the prefetched lease first: return to the item with a draft.
  const last = store.get(CURRENT_KEY);
  if (last && last !== first.id && store.get(draftKey(last))) {
    try {
      const other = await fetchNext([first.id, ...inflightIds()]);
      if (other && other.id === last) {
        S.prefetched = first;
        showItem(other);
        return;
      }
    } catch {
      /* show the first one */
    }
  }
  showItem(first);
}

start();
