// DOM helpers shared by the pages. Nothing here touches the document at import time.
// Content from items, labels and users goes in as text (textContent), never as HTML.

export const $ = (id) => document.getElementById(id);

/** A new element with an optional class name and text. */
export function make(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** The JSON of a <script type="application/json"> block rendered by Django's json_script. */
export function readJson(id) {
  return JSON.parse(document.getElementById(id).textContent);
}

/** A button of type "button" (never a form submit by accident). */
export function button(cls, text) {
  const b = make("button", cls, text);
  b.type = "button";
  return b;
}

/** Fills a <select> with [{value, label}] choices, selecting `value`. */
export function fillSelect(select, choices, value) {
  for (const c of choices) {
    const option = make("option", null, c.label);
    option.value = c.value;
    if (c.value === value) option.selected = true;
    select.appendChild(option);
  }
}

/** An item's metadata (every field but the text) as a definition list; hidden when there is none. */
export function renderMeta(dl, data) {
  dl.replaceChildren();
  for (const [k, v] of Object.entries(data || {})) {
    if (k === "text") continue;
    dl.append(make("dt", null, k), make("dd", null, typeof v === "string" ? v : JSON.stringify(v)));
  }
  dl.hidden = dl.childElementCount === 0;
}

/** A label color usable in CSS (a hex color), or a neutral grey. */
export function safeColor(color) {
  return /^#[0-9a-f]{3,8}$/i.test(color || "") ? color : "#6b7280";
}

/** True when the key event happens while the user types (a form field or editable content). */
export function isTyping(target) {
  const t = target instanceof Element ? target : null;
  return !!(t && t.closest("input, textarea, select, [contenteditable='true'], [contenteditable='']"));
}

/** A promise resolved after ms milliseconds. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
