// Drawing the labeling page's parts from explicit arguments (no page state here). Item content goes
// in with textContent only. textPieces() is pure and unit-tested.

import { make, button } from "../lib/dom.js";
import { segments } from "../lib/offsets.js";
import { confidenceOf, isZeroShot, pct, spanKey, suggestionSource, suggestionText } from "./values.js";

/**
 * The model suggestion banner; hidden without a suggestion. Says which model version suggested it, and whether
 * it is pre-selected (only a confident trained model's is: values.preselectOf); otherwise nothing is chosen.
 */
export function renderSuggestion(el, schema, item, sug, preselected) {
  el.replaceChildren();
  el.dataset.preselected = String(!!(sug && preselected));
  if (!sug) {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  const how = preselected
    ? " — pre-selected; press Enter to accept."
    : isZeroShot(item)
      ? " — not pre-selected: a zero-shot model's guess; choose the label yourself."
      : " — not pre-selected: the model is not confident enough; choose the label yourself.";
  el.append(
    make("strong", null, "Model suggestion: "),
    make("span", null, suggestionText(schema, item, sug, { preselected })),
    make("span", "suggestion-source hint", ` (${suggestionSource(item)})`),
    make("span", "hint", how),
  );
}

/** The label buttons: made once (onChoose(name) on click), then their pressed / suggested state. */
export function renderLabels(box, schema, { item, value, suggestion }, onChoose) {
  const task = schema.task;
  if (!box.childElementCount) {
    for (const lab of schema.labels) {
      const b = button("label-btn");
      b.dataset.label = lab.name;
      b.style.setProperty("--label-color", schema.colors.get(lab.name));
      // the accessible name is the visible text (WCAG 2.5.3), plus a visually hidden verb
      const verb = task === "spans" ? "Label the selection as " : task === "multilabel" ? "Toggle " : "Choose ";
      b.append(make("span", "visually-hidden", verb), make("span", "label-name", lab.name));
      if (lab.hotkey) b.append(" ", make("kbd", null, lab.hotkey));
      b.append(make("span", "suggested-badge"));
      b.addEventListener("click", () => onChoose(lab.name));
      box.append(b);
    }
  }
  for (const b of box.querySelectorAll(".label-btn")) {
    const name = b.dataset.label;
    let pressed = false;
    let suggested = false;
    if (task === "classification") {
      pressed = value.label === name;
      suggested = !!suggestion && suggestion.label === name;
    } else if (task === "multilabel") {
      pressed = value.labels.includes(name);
      suggested = !!suggestion && suggestion.labels.includes(name);
    }
    if (task !== "spans") b.setAttribute("aria-pressed", String(pressed));
    b.classList.toggle("suggested", suggested);
    // a zero-shot model's probability is uncalibrated: the banner shows it as a score, the badge not at all
    const p = item && !isZeroShot(item) ? confidenceOf(item, name) : null;
    b.querySelector(".suggested-badge").textContent = suggested ? `suggested${p !== null ? ` ${pct(p)}` : ""}` : "";
  }
}

/** The spans as removable chips (onRemove(i) on click); focus stays on the same span across redraws. */
export function renderSpanList(wrap, ul, schema, { item, idx, value, suggestion }, onRemove) {
  if (schema.task !== "spans") {
    wrap.hidden = true;
    return;
  }
  wrap.hidden = false;
  const text = item.data.text || "";
  const active = document.activeElement;
  const focusedKey = active && active.dataset ? active.dataset.spanKey : null;
  ul.replaceChildren();
  const sugKeys = new Set((suggestion ? suggestion.spans : []).map(spanKey));
  const predicted = (item.prediction && item.prediction.value && item.prediction.value.spans) || [];
  const sugScores = new Map(predicted.map((s) => [spanKey(s), s.score]));
  value.spans.forEach((s, i) => {
    const b = button("span-chip");
    b.dataset.index = String(i);
    b.dataset.spanKey = spanKey(s);
    b.style.setProperty("--label-color", schema.colors.get(s.label));
    const quote = text.slice(idx.cpToU16[s.start], idx.cpToU16[s.end]);
    b.append(
      make("span", "visually-hidden", "Remove span "),
      make("span", "chip-label", s.label),
      " ",
      make("span", "chip-text", quote.length > 60 ? `${quote.slice(0, 57)}…` : quote),
      " ",
      make("span", "chip-pos", `${s.start}–${s.end}`),
    );
    if (sugKeys.has(b.dataset.spanKey)) {
      const sc = sugScores.get(b.dataset.spanKey);
      b.append(" ", make("span", "suggested-badge", `suggested${typeof sc === "number" ? ` ${pct(sc)}` : ""}`));
    }
    b.title = `Remove: ${s.label} “${quote}” (characters ${s.start}–${s.end})`;
    b.addEventListener("click", () => onRemove(i));
    const li = make("li");
    li.append(b);
    ul.append(li);
  });
  if (focusedKey) {
    const again = ul.querySelector(`[data-span-key="${CSS.escape(focusedKey)}"]`);
    if (again) again.focus();
  }
}

/**
 * The text cut at every span and reason boundary, in UTF-16 units: [{a, b, spans, w}], spans the
 * spans covering the piece, outermost first ({start, end, label, i}: i its index in the value), w
 * the strongest reason weight on it (0: none). spans: code point offsets; reasons: {a, b, w} in UTF-16.
 */
export function textPieces(text, idx, spans, reasons) {
  const cp = idx.cpToU16;
  const ranges = spans.map((s, i) => ({ ...s, i, a: cp[s.start], b: cp[s.end], kind: "span" }));
  const all = [...ranges, ...reasons.map((r) => ({ ...r, kind: "reason" }))];
  return segments(text.length, all).map(({ a, b, covering }) => ({
    a,
    b,
    spans: covering.filter((r) => r.kind === "span").sort((x, y) => y.b - y.a - (x.b - x.a)),
    w: Math.max(0, ...covering.filter((r) => r.kind === "reason").map((r) => r.w)),
  }));
}

/**
 * The item text: one text node when nothing is marked; else segments, span segments underlined once
 * per nesting level (outermost lowest) and reason segments shaded by weight (--w).
 */
export function renderText(el, schema, { text, idx, spans, reasons, reasonsOn }) {
  el.classList.toggle("reasons-on", reasonsOn && reasons.length > 0);
  if (!spans.length && !reasons.length) {
    el.textContent = text;
    return;
  }
  const color = (label) => schema.colors.get(label);
  const frag = document.createDocumentFragment();
  for (const { a, b, spans: covering, w } of textPieces(text, idx, spans, reasons)) {
    const piece = text.slice(a, b);
    if (!covering.length && w <= 0) {
      frag.append(document.createTextNode(piece));
      continue;
    }
    const seg = make("span", "seg", piece);
    if (w > 0) {
      seg.classList.add("reason");
      seg.style.setProperty("--w", w.toFixed(3));
    }
    if (covering.length) {
      const inner = covering[covering.length - 1];
      seg.classList.add("span");
      seg.dataset.spans = covering.map((s) => s.i).join(",");
      seg.style.setProperty("--label-color", color(inner.label));
      seg.style.setProperty(
        "box-shadow",
        covering.map((s, depth) => `inset 0 -${3 * (covering.length - depth)}px 0 ${color(s.label)}`).join(", "),
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
